//! `cove-sim`: run one seed of the deterministic simulation.
//!
//! Exit codes: 0 all invariants held and the world converged; 129 correctness; 128
//! liveness; 127 crash (panic); 2 bad arguments.

use std::io::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::ExitCode;
use std::time::Duration as WallDuration;

use clap::Parser;
use cove_sim::{FailureKind, Progress, SimConfig, failure_report, replay_command};
use indicatif::{ProgressBar, ProgressStyle};

/// Deterministic simulation of cove: thousands of virtual clients, seeded faults,
/// invariants checked after every event, one-line replay.
#[derive(Parser, Debug)]
#[command(name = "cove-sim", version)]
struct Args {
    /// The seed (decimal or 0x-prefixed hex). Everything derives from it.
    #[arg(long, default_value = "1", value_parser = parse_seed)]
    seed: u64,
    /// Number of simulated clients.
    #[arg(long, default_value_t = 1_000)]
    clients: usize,
    /// Simulated seconds of workload with faults (the safety phase).
    #[arg(long, default_value_t = 120)]
    safety_secs: u64,
    /// Simulated seconds allowed to converge after healing (the liveness phase).
    #[arg(long, default_value_t = 120)]
    liveness_secs: u64,
    /// Use the cheap deterministic crypto provider (NOT real crypto; for the largest runs).
    #[arg(long)]
    cheap_crypto: bool,
    /// Also fail if the plaintext users' body canary reaches the server's decrypted
    /// requests or its store: expected to fail unless every user encrypts end to end
    /// (`--set e2ee_every=1`). The encrypted users' canary is checked in every run.
    #[arg(long)]
    check_e2e_canary: bool,
    /// Start with every fault class off.
    #[arg(long)]
    no_faults: bool,
    /// Override a drawn knob: `--set name=value` (repeatable; names are printed at start).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    overrides: Vec<String>,
    /// Write the last events to this file when the run fails.
    #[arg(long, value_name = "FILE")]
    trace: Option<std::path::PathBuf>,
    /// How many events the trace file keeps.
    #[arg(long, default_value_t = 10_000)]
    trace_events: usize,
    /// Fail (as liveness) after this many events; 0 for no limit.
    #[arg(long, default_value_t = 0)]
    max_events: u64,
    /// No progress bar (CI and logs).
    #[arg(long)]
    no_progress: bool,
    /// Print only the summary line with the trace hash (and failures).
    #[arg(long)]
    quiet: bool,
    /// Switch on a deliberate hub, driver or end-to-end client bug (tests of the
    /// simulator; needs `--features inject-bugs`).
    #[cfg(feature = "inject-bugs")]
    #[arg(long = "inject-bug", value_name = "NAME")]
    bugs: Vec<String>,
}

fn parse_seed(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("bad seed {s:?}: {e}"))
}

fn config(args: &Args) -> Result<SimConfig, String> {
    let mut cfg = SimConfig::new(args.seed);
    cfg.clients = args.clients.max(1);
    cfg.safety_secs = args.safety_secs;
    cfg.liveness_secs = args.liveness_secs;
    cfg.cheap_crypto = args.cheap_crypto;
    cfg.check_e2e_canary = args.check_e2e_canary;
    cfg.no_faults = args.no_faults;
    cfg.max_events = args.max_events;
    cfg.trace_events = if args.trace.is_some() {
        args.trace_events
    } else {
        0
    };
    for o in &args.overrides {
        let (k, v) = o
            .split_once('=')
            .ok_or_else(|| format!("--set wants NAME=VALUE, got {o:?}"))?;
        cfg.overrides
            .push((k.trim().to_string(), v.trim().to_string()));
    }
    #[cfg(feature = "inject-bugs")]
    for b in &args.bugs {
        cove_sim::enable_bug(&mut cfg.bugs, b)?;
    }
    Ok(cfg)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let cfg = match config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cove-sim: {e}");
            return ExitCode::from(2);
        }
    };
    let sim = match cove_sim::Sim::new(cfg.clone()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cove-sim: {e}");
            return ExitCode::from(2);
        }
    };
    if !args.quiet {
        println!(
            "cove-sim seed={} clients={} safety={}s liveness<={}s",
            cfg.seed, cfg.clients, cfg.safety_secs, cfg.liveness_secs
        );
        if cfg.cheap_crypto {
            println!("crypto: CHEAP deterministic provider (not real crypto)");
        }
        if cfg.check_e2e_canary {
            println!(
                "checking the plaintext users' canary at the server too (fails unless every user encrypts: e2ee_every=1)"
            );
        }
        println!("knobs: {}", sim.knobs().one_line());
        println!("replay: {}", replay_command(&cfg));
    }
    let total_us = (cfg.safety_secs + cfg.liveness_secs).max(1) * 1_000_000;
    let bar = if args.no_progress || args.quiet {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new(total_us / 1_000_000);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} sim s  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(WallDuration::from_millis(200));
        bar
    };
    let started = std::time::Instant::now();
    // Quiet the default panic message: the report below says everything, once.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
    }));
    let mut on_progress = |p: &Progress| {
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        bar.set_position(p.sim_us / 1_000_000);
        bar.set_message(format!(
            "{:.0} events/s, {:.0}x{}",
            p.events as f64 / secs,
            p.sim_us as f64 / 1e6 / secs,
            if p.liveness { ", converging" } else { "" }
        ));
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| sim.run(&mut on_progress)));
    bar.finish_and_clear();
    let report = match outcome {
        Ok(r) => r,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            eprintln!("SIMULATION FAILED crash(127): panic: {msg}");
            eprintln!("  seed={}", cfg.seed);
            eprintln!("  replay: {}", replay_command(&cfg));
            return ExitCode::from(FailureKind::Crash.exit_code() as u8);
        }
    };
    if let Some(f) = &report.failure {
        eprint!("{}", failure_report(&cfg, &report, f));
        if let Some(path) = &args.trace {
            match write_trace(path, &report.trace) {
                Ok(()) => eprintln!(
                    "  trace: {} (last {} events)",
                    path.display(),
                    report.trace.len()
                ),
                Err(e) => eprintln!("  trace: could not write {}: {e}", path.display()),
            }
        }
        if !args.quiet {
            println!("summary (at failure):\n{}", report.summary.render());
        }
        return ExitCode::from(f.kind.exit_code() as u8);
    }
    if args.quiet {
        println!(
            "seed={} ok trace_hash={:016x}",
            cfg.seed, report.summary.trace_hash
        );
    } else {
        println!(
            "all invariants held; converged.\nsummary:\n{}",
            report.summary.render()
        );
    }
    ExitCode::SUCCESS
}

fn write_trace(path: &std::path::Path, lines: &[String]) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    for l in lines {
        writeln!(f, "{l}")?;
    }
    f.flush()
}
