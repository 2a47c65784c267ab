#!/usr/bin/env python3
"""Ratio table of bench/run.sh: for each scenario, the median over the pairs of
cove-std/ngircd and cove-smol/ngircd, each ratio taken within one pair (same minute, same
machine state), and ngircd's own median for scale.

Usage: table.py results.jsonl   (one `cove bench --json` object per line, with the
scenario, pair and server fields run.sh adds)."""

import json
import statistics
import sys

METRICS = [
    ("deliveries_per_s", "deliveries/s", lambda v: f"{v / 1e6:.3f} M/s" if v >= 1e5 else f"{v / 1e3:.1f} k/s"),
    ("p99_ms", "p99 latency", lambda v: f"{v:.2f} ms"),
    ("server_cpu_per_delivery_us", "server CPU per delivery", lambda v: f"{v:.3f} us"),
    ("server_peak_rss_kib", "server peak RSS", lambda v: f"{v / 1024:.1f} MiB"),
]
COVES = ["cove-std", "cove-smol"]


def ratio(r):
    """Two decimals, or two significant digits below 0.1 (0.00091, not 0.00)."""
    return f"{r:9.2f}" if r >= 0.1 else f"{r:9.2g}"


def main(path):
    every = [json.loads(line) for line in open(path) if line.strip()]
    failed = [r for r in every if "failed" in r]
    runs = [r for r in every if "failed" not in r]
    by = {}
    for r in runs:
        by.setdefault(r["scenario"], {}).setdefault(r["pair"], {})[r["server"]] = r
    order = []
    for r in runs:
        if r["scenario"] not in order:
            order.append(r["scenario"])
    print("Ratios cove/ngircd, median over pairs (lower is better except deliveries/s)")
    print(f"{'scenario':<10} {'figure':<24} {'cove-std':>9} {'cove-smol':>9}   ngircd (median)")
    problems = []
    for sc in order:
        pairs = by[sc]
        for key, label, fmt in METRICS:
            cells = []
            for cove in COVES:
                ratios = []
                for p in pairs.values():
                    a, b = p.get(cove), p.get("ngircd")
                    if a and b and a.get(key) is not None and b.get(key):
                        ratios.append(a[key] / b[key])
                cells.append(ratio(statistics.median(ratios)) if ratios else f"{'-':>9}")
            base = [p["ngircd"][key] for p in pairs.values() if "ngircd" in p and p["ngircd"].get(key) is not None]
            base_s = fmt(statistics.median(base)) if base else "-"
            print(f"{sc:<10} {label:<24} {cells[0]} {cells[1]}   {base_s}")
        for pair, p in sorted(pairs.items()):
            for server, r in sorted(p.items()):
                bad = []
                if not r["complete"]:
                    bad.append("incomplete")
                for k in ("lost", "duplicated", "reordered", "cut_off", "refused"):
                    if r.get(k):
                        bad.append(f"{k} {r[k]}")
                if r.get("gen_cpu_frac", 0) > 0.9:
                    bad.append(f"generator saturated ({r['gen_cpu_frac']:.0%})")
                if bad:
                    problems.append(f"{sc} pair {pair} {server}: " + ", ".join(bad))
    problems += [f"{r['scenario']} pair {r['pair']} {r['server']}: FAILED: {r['failed']}" for r in failed]
    if problems:
        print("\nRuns with problems (their figures are in the medians above):")
        for p in problems:
            print("  " + p)


if __name__ == "__main__":
    main(sys.argv[1])
