//! The end of a run: what it measured, as text for people or one JSON object for scripts.

use std::fmt::Write as _;

use super::stats::{Counters, Histogram};

/// Everything a run reports.
pub struct Report {
    /// "cove" or "irc".
    pub mode: &'static str,
    /// Server address.
    pub server: String,
    /// Clients, rooms, members per room, messages per client.
    pub shape: (u32, u32, u32, u32),
    /// Messages per second per client, `None` flat out.
    pub rate: Option<f64>,
    /// Body bytes.
    pub size: usize,
    /// Generator threads.
    pub threads: usize,
    /// Deliveries to other members the plan expects.
    pub expected: u64,
    /// Counters summed over threads.
    pub counters: Counters,
    /// Latency of deliveries, ns.
    pub latency: Histogram,
    /// Whether the server echoes a message to its sender (cove does).
    pub echoes_expected: bool,
    /// Run start to last delivery, seconds.
    pub active_s: f64,
    /// Run start to stop, seconds.
    pub wall_s: f64,
    /// Whether every expected message arrived (else the run ended on a stall).
    pub complete: bool,
    /// Generator CPU time during the run, seconds.
    pub gen_cpu_s: f64,
    /// Server CPU time during the run (with --server-pid), seconds.
    pub server_cpu_s: Option<f64>,
    /// Server peak RSS (with --server-pid), KiB.
    pub server_rss_kib: Option<u64>,
    /// The first refusal and cut-off.
    pub notes: (Option<String>, Option<String>),
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "null".to_string(), |v| v.to_string())
}

impl Report {
    /// Messages that should have arrived and did not (to others and, for cove, echoes).
    pub fn lost(&self) -> u64 {
        let k = &self.counters;
        let others = k.sent * u64::from(self.shape.2.saturating_sub(1));
        let mut lost = others.saturating_sub(k.deliveries);
        if self.echoes_expected {
            lost += k.sent.saturating_sub(k.echoes);
        }
        lost
    }

    /// Deliveries per second over the active time.
    pub fn rate_per_s(&self) -> f64 {
        if self.active_s > 0.0 {
            self.counters.deliveries as f64 / self.active_s
        } else {
            0.0
        }
    }

    /// Generator CPU as a fraction of wall time × threads.
    pub fn gen_cpu_frac(&self) -> f64 {
        let avail = self.wall_s * self.threads as f64;
        if avail > 0.0 {
            self.gen_cpu_s / avail
        } else {
            0.0
        }
    }

    fn cpu_per_delivery_us(&self) -> Option<f64> {
        let d = self.counters.deliveries;
        self.server_cpu_s
            .filter(|_| d > 0)
            .map(|s| s * 1e6 / d as f64)
    }

    /// One JSON object (one line).
    pub fn json(&self) -> String {
        let k = &self.counters;
        let h = &self.latency;
        let (n, r, m, msgs) = self.shape;
        let mut o = String::from("{");
        let mut f = |key: &str, val: String| {
            if o.len() > 1 {
                o.push(',');
            }
            let _ = write!(o, "{}:{val}", json_str(key));
        };
        f("mode", json_str(self.mode));
        f("server", json_str(&self.server));
        f("clients", n.to_string());
        f("rooms", r.to_string());
        f("members", m.to_string());
        f("msgs", msgs.to_string());
        f("rate", json_opt(self.rate));
        f("size", self.size.to_string());
        f("threads", self.threads.to_string());
        f("complete", self.complete.to_string());
        f("sent", k.sent.to_string());
        f("expected", self.expected.to_string());
        f("deliveries", k.deliveries.to_string());
        f("echoes", k.echoes.to_string());
        f("duration_s", format!("{:.6}", self.active_s));
        f("wall_s", format!("{:.6}", self.wall_s));
        f("deliveries_per_s", format!("{:.1}", self.rate_per_s()));
        f("p50_ms", format!("{:.4}", ms(h.quantile(0.5))));
        f("p90_ms", format!("{:.4}", ms(h.quantile(0.9))));
        f("p99_ms", format!("{:.4}", ms(h.quantile(0.99))));
        f("p999_ms", format!("{:.4}", ms(h.quantile(0.999))));
        f("max_ms", format!("{:.4}", ms(h.max())));
        f("lost", self.lost().to_string());
        f("duplicated", k.duplicated.to_string());
        f("reordered", k.reordered.to_string());
        f("malformed", k.malformed.to_string());
        f("refused", k.refused.to_string());
        f("cut_off", k.cut_off.to_string());
        f("acks", k.acks.to_string());
        f("gen_cpu_s", format!("{:.3}", self.gen_cpu_s));
        f("gen_cpu_frac", format!("{:.3}", self.gen_cpu_frac()));
        f(
            "server_cpu_s",
            json_opt(self.server_cpu_s.map(|s| format!("{s:.3}"))),
        );
        f(
            "server_cpu_per_delivery_us",
            json_opt(self.cpu_per_delivery_us().map(|s| format!("{s:.4}"))),
        );
        f("server_peak_rss_kib", json_opt(self.server_rss_kib));
        f(
            "first_refusal",
            self.notes.0.as_deref().map_or("null".into(), json_str),
        );
        f(
            "first_cut_off",
            self.notes.1.as_deref().map_or("null".into(), json_str),
        );
        o.push('}');
        o
    }

    /// The summary for people.
    pub fn text(&self) -> String {
        let k = &self.counters;
        let h = &self.latency;
        let (n, r, m, msgs) = self.shape;
        let rate = self
            .rate
            .map_or_else(|| "flat out".to_string(), |r| format!("at {r} msg/s"));
        let mut o = String::new();
        let _ = writeln!(
            o,
            "{} server at {}: {n} clients, {r} rooms of {m}, {msgs} msgs per client {rate}, \
             {} B bodies, {} generator threads",
            self.mode, self.server, self.size, self.threads
        );
        let echoes = if self.echoes_expected {
            format!(" (+{} echoes to their senders)", k.echoes)
        } else {
            String::new()
        };
        let _ = writeln!(
            o,
            "sent        {} messages; deliveries {} of {} expected{echoes}",
            k.sent, k.deliveries, self.expected
        );
        let _ = writeln!(
            o,
            "throughput  {:.0} deliveries/s ({:.3} s from the first send to the last delivery)",
            self.rate_per_s(),
            self.active_s
        );
        let _ = writeln!(
            o,
            "latency     p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  max {:.3} ms",
            ms(h.quantile(0.5)),
            ms(h.quantile(0.9)),
            ms(h.quantile(0.99)),
            ms(h.quantile(0.999)),
            ms(h.max())
        );
        let _ = writeln!(
            o,
            "errors      lost {}  duplicated {}  reordered {}  malformed {}  refused {}  cut off {}",
            self.lost(),
            k.duplicated,
            k.reordered,
            k.malformed,
            k.refused,
            k.cut_off
        );
        let frac = self.gen_cpu_frac();
        let warn = if frac > 0.9 {
            "  <- saturated: the generator limits these figures"
        } else {
            ""
        };
        let _ = writeln!(
            o,
            "generator   CPU {:.2} s = {:.0}% of {} threads x {:.2} s{warn}",
            self.gen_cpu_s,
            frac * 100.0,
            self.threads,
            self.wall_s
        );
        if let Some(s) = self.server_cpu_s {
            let per = self
                .cpu_per_delivery_us()
                .map_or_else(|| "-".to_string(), |u| format!("{u:.3} µs"));
            let rss = self.server_rss_kib.map_or_else(
                || "-".to_string(),
                |k| format!("{:.1} MiB", k as f64 / 1024.0),
            );
            let _ = writeln!(
                o,
                "server      CPU {s:.2} s = {per} per delivery; peak RSS {rss}"
            );
        }
        if !self.complete {
            let _ = writeln!(
                o,
                "INCOMPLETE: the run ended when deliveries stopped coming"
            );
        }
        if let Some(why) = &self.notes.0 {
            let _ = writeln!(o, "first refusal: {why}");
        }
        if let Some(why) = &self.notes.1 {
            let _ = writeln!(o, "first cut-off: {why}");
        }
        o
    }
}
