#!/usr/bin/env bash
# Side-by-side comparison of cove (both runtimes) with ngircd on loopback, driven by the
# same generator (`cove bench`, with --irc for ngircd). Builds cove, installs ngircd
# (Debian package) if missing, and for each scenario runs ngircd, cove-std and cove-smol
# in alternation (A B C, A B C, ...), each run on a freshly started server, then prints
# the median over the pairs of the ratios cove/ngircd.
#
# Usage: bench/run.sh [--quick] [--pairs N] [--scenarios a,b,...] [--servers a,b,...]
#                     [--list] [--keep DIR]
#   --quick       2 pairs and shorter scenarios (a smoke run of a few minutes)
#   --pairs N     rounds of (ngircd, cove-std, cove-smol); default 3
#   --scenarios   comma-separated names (see --list); default all
#   --servers     which of ngircd,cove-std,cove-smol to run; default all three
#   --keep DIR    keep the JSON results and server logs in DIR
# Environment: CARGO_TARGET_DIR is honoured; COVE_BENCH_THREADS sets the generator's
# --threads; COVE_SERVE_ARGS adds arguments to `cove serve` (e.g. "--sync normal").
# Paced scenarios use TCP_QUICKACK clients: ngircd does not set TCP_NODELAY, and its Nagle
# delay meeting the clients' delayed ACKs would add up to 40 ms to ngircd's latency.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PAIRS=""
QUICK=0
SCENARIOS=""
SERVERS="ngircd cove-std cove-smol"
KEEP=""

# The limits a cove server needs raised for a benchmark from one address (the same list
# `cove bench --help` prints under SERVER LIMITS).
COVE_FLAGS=(--rate 1000000 --rate-burst 1000000
  --max-connections 100000 --max-connections-per-address 100000
  --max-unauthenticated 100000 --max-unauthenticated-per-address 100000
  --handshake-rate 1000000 --registration-burst 1000000)

ALL="flat100 flat1000 paced10 c2000 c10k"
describe() {
  case $1 in
    flat100) echo "flat out, 200 clients, 10 rooms of 20, 100 msgs each" ;;
    flat1000) echo "flat out, 200 clients, 10 rooms of 20, 1,000 msgs each" ;;
    paced10) echo "paced 10 msg/s per client, 200 clients, 10 rooms of 20, TCP_QUICKACK clients" ;;
    c2000) echo "2,000 clients in 100 rooms of 20 at 1 msg/s, TCP_QUICKACK clients" ;;
    c10k) echo "10,000 clients in 500 rooms of 20 at 0.1 msg/s, TCP_QUICKACK clients" ;;
  esac
}
# The `cove bench` arguments of a scenario (quick: shorter).
workload() {
  local q=$QUICK
  case $1 in
    flat100) echo "--clients 200 --rooms 10 --members 20 --msgs 100 --rate max" ;;
    flat1000) [ "$q" = 1 ] && echo "--clients 200 --rooms 10 --members 20 --msgs 300 --rate max" \
      || echo "--clients 200 --rooms 10 --members 20 --msgs 1000 --rate max" ;;
    paced10) [ "$q" = 1 ] && echo "--clients 200 --rooms 10 --members 20 --msgs 30 --rate 10 --quickack" \
      || echo "--clients 200 --rooms 10 --members 20 --msgs 100 --rate 10 --quickack" ;;
    c2000) [ "$q" = 1 ] && echo "--clients 2000 --rooms 100 --members 20 --msgs 10 --rate 1 --quickack" \
      || echo "--clients 2000 --rooms 100 --members 20 --msgs 30 --rate 1 --quickack" ;;
    c10k) [ "$q" = 1 ] && echo "--clients 10000 --rooms 500 --members 20 --msgs 2 --rate 0.1 --quickack" \
      || echo "--clients 10000 --rooms 500 --members 20 --msgs 6 --rate 0.1 --quickack" ;;
    *) echo "unknown scenario $1 (see --list)" >&2; exit 2 ;;
  esac
}

while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1 ;;
    --pairs) PAIRS=$2; shift ;;
    --scenarios) SCENARIOS=$(echo "$2" | tr ',' ' '); shift ;;
    --servers)
      SERVERS=$(echo "$2" | tr ',' ' '); shift
      for k in $SERVERS; do
        case $k in ngircd | cove-std | cove-smol) ;;
          *) echo "unknown server $k (ngircd, cove-std, cove-smol)" >&2; exit 2 ;;
        esac
      done ;;
    --keep) KEEP=$2; shift ;;
    --list)
      for s in $ALL; do printf '%-9s %s\n' "$s" "$(describe "$s")"; done
      exit 0 ;;
    -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$SCENARIOS" ] || SCENARIOS=$ALL
for s in $SCENARIOS; do workload "$s" >/dev/null; done
[ -n "$PAIRS" ] || { [ "$QUICK" = 1 ] && PAIRS=2 || PAIRS=3; }

say() { printf '%s\n' "$*" >&2; }

# 1. cove, release build.
say "== building cove (release)"
(cd "$ROOT" && cargo build --release -p cove --quiet)
COVE="${CARGO_TARGET_DIR:-$ROOT/target}/release/cove"
[ -x "$COVE" ] || { say "no binary at $COVE"; exit 1; }

# 2. ngircd, from the distribution.
if ! command -v ngircd >/dev/null 2>&1 && [ ! -x /usr/sbin/ngircd ]; then
  say "== installing ngircd"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q ngircd >/dev/null
  # The package may start a system-wide instance; it is not the one measured.
fi
NGIRCD=$(command -v ngircd || echo /usr/sbin/ngircd)

# 3. Open files: 10,000 clients need more than the usual 1,024 (both sides).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 10300 ]; then
  case " $SCENARIOS " in *" c10k "*)
    say "open files limit $(ulimit -n) < 10300: skipping c10k (raise the hard limit)"
    SCENARIOS=$(echo " $SCENARIOS " | sed 's/ c10k / /') ;;
  esac
fi

WORK=$(mktemp -d /tmp/cove-bench.XXXXXX)
SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}
cleanup() {
  stop_server
  if [ -n "$KEEP" ]; then
    mkdir -p "$KEEP" && cp -r "$WORK"/. "$KEEP"/ && say "results kept in $KEEP"
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts server $1 (ngircd | cove-std | cove-smol) for run $2; sets SERVER_PID, ADDR.
start_server() {
  local kind=$1 run=$2 dir="$WORK/$2"
  mkdir -p "$dir"
  case $kind in
    ngircd)
      local port
      port=$(free_port)
      echo "cove bench" >"$dir/motd"
      sed -e "s|@PORT@|$port|" -e "s|@MOTD@|$dir/motd|" -e "s|@PIDFILE@|$dir/ngircd.pid|" \
        "$ROOT/bench/ngircd.conf.in" >"$dir/ngircd.conf"
      "$NGIRCD" -n -f "$dir/ngircd.conf" >"$dir/server.log" 2>&1 &
      SERVER_PID=$!
      ADDR="127.0.0.1:$port"
      for _ in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.05
      done
      say "ngircd did not start: $(tail -3 "$dir/server.log")"; return 1 ;;
    cove-std | cove-smol)
      RUST_LOG=warn "$COVE" serve --listen 127.0.0.1:0 --data "$dir/data" \
        --runtime "${kind#cove-}" "${COVE_FLAGS[@]}" "${SERVE_ARGS[@]}" >"$dir/server.log" 2>&1 &
      SERVER_PID=$!
      for _ in $(seq 400); do
        ADDR=$(sed -n 's/^listening on //p' "$dir/server.log" 2>/dev/null)
        [ -n "$ADDR" ] && return 0
        sleep 0.05
      done
      say "cove serve did not start: $(tail -3 "$dir/server.log")"; return 1 ;;
  esac
}

SERVE_ARGS=()
[ -n "${COVE_SERVE_ARGS:-}" ] && read -r -a SERVE_ARGS <<<"$COVE_SERVE_ARGS"

RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
THREADS=()
[ -n "${COVE_BENCH_THREADS:-}" ] && THREADS=(--threads "$COVE_BENCH_THREADS")

say "== $PAIRS pairs of: $(echo $SCENARIOS | sed 's/ /, /g')"
for scenario in $SCENARIOS; do
  say "== $scenario: $(describe "$scenario")"
  read -r -a WL <<<"$(workload "$scenario")"
  for pair in $(seq "$PAIRS"); do
    for kind in $SERVERS; do
      run="$scenario-$pair-$kind"
      start_server "$kind" "$run" || { stop_server; continue; }
      IRC=()
      [ "$kind" = ngircd ] && IRC=(--irc)
      rc=0
      out=$("$COVE" bench --server "$ADDR" "${IRC[@]}" "${WL[@]}" "${THREADS[@]}" \
        --server-pid "$SERVER_PID" --json 2>"$WORK/$run/bench.err") || rc=$?
      stop_server
      if [ -z "$out" ]; then
        say "   $kind pair $pair: FAILED (exit $rc): $(tail -2 "$WORK/$run/bench.err")"
        python3 -c 'import json, sys; print(json.dumps(dict(scenario=sys.argv[1], pair=int(sys.argv[2]), server=sys.argv[3], failed=sys.argv[4])))' \
          "$scenario" "$pair" "$kind" "$(tail -1 "$WORK/$run/bench.err")" >>"$RESULTS"
        continue
      fi
      printf '%s\n' "$out" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
r.update(scenario=sys.argv[1], pair=int(sys.argv[2]), server=sys.argv[3])
print(json.dumps(r))
k = r
sys.stderr.write("   %-9s pair %s: %9.0f deliveries/s  p99 %8.3f ms  CPU %s us/delivery  RSS %s KiB%s\n" % (
  sys.argv[3], sys.argv[2], k["deliveries_per_s"], k["p99_ms"], k["server_cpu_per_delivery_us"],
  k["server_peak_rss_kib"],
  "" if k["complete"] and k["lost"] == 0 and k["cut_off"] == 0 else
  "  [lost %d, cut off %d%s]" % (k["lost"], k["cut_off"], "" if k["complete"] else ", incomplete")))
' "$scenario" "$pair" "$kind" >>"$RESULTS"
    done
  done
done

say ""
python3 "$ROOT/bench/table.py" "$RESULTS"
