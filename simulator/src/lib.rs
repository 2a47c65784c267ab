//! cove-sim: deterministic simulation of a whole cove deployment in one thread.
//!
//! The simulator drives the real protocol code — `ServerConnection`s, the `Driver` (which
//! owns the `Hub`) and `Client`s from `cove-core`, with the real crypto provider by
//! default — over a seeded model of TCP, on a virtual clock, with faults drawn per seed.
//! After every hub step and every client event it checks the outputs against a reference
//! [`model`]; at the end it heals everything and requires the world to converge.
//!
//! Everything is a function of [`SimConfig`]: the same seed and options give the same
//! [`Summary::trace_hash`], on any machine, so any failure replays from one command line
//! ([`replay_command`]).
//!
//! # One run
//!
//! 1. **Setup.** The seed is split into sub-seeds (knobs, workload, network, faults,
//!    crypto RNG, hub). The [`knobs::Knobs`] are drawn (swarm testing), then overridden by
//!    `--set name=value`.
//! 2. **Safety phase** (`safety_secs` of simulated time). Clients connect, register or log
//!    in, create public and private rooms and join them (popularity skewed so the last
//!    seats are contested), invite, remove and retitle as admins, post, fetch history,
//!    acknowledge the room messages they have shown (now or at their next action), send
//!    DMs to anyone (often offline), change status, log out, come back. Rooms are durable:
//!    membership outlives connections and restarts, and each login replays what a member
//!    has not acknowledged, through a window, after a gap if retention dropped some.
//!    Faults fire: latency and stalls, resets, partitions (one client, a group, one direction), client
//!    crashes with or without local state, server crashes that lose everything not yet
//!    committed to the simulated disk, clock drift, key rotation thresholds low enough
//!    that transport keys rotate often. Every `e2ee_every`-th user encrypts end to end:
//!    it runs an MLS session beside its client and does the same through it, in
//!    encrypted rooms and direct conversations of its own (see `world::secure`); the
//!    server must never hold its plaintexts, each member must decrypt every message of
//!    its membership, no epoch may take two Commits, and a removed member's old state
//!    must not read what is sent after its removal.
//! 3. **Liveness phase.** Faults stop, partitions and stalls heal, the server comes back,
//!    every user reconnects; within `liveness_secs` every queue must drain, every client
//!    must agree with the hub on its rooms, every member must have been shown and have
//!    acknowledged every message of its membership interval, and every DM whose sender
//!    was told "delivered" or "queued" must have been shown.
//!
//! A violated invariant stops the run at once with a [`Failure`] (see
//! [`FailureKind::exit_code`]).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "inject-bugs")]
mod bugs;
mod check;
pub mod crypto;
pub mod knobs;
pub mod model;
pub mod rng;
mod summary;
pub mod trace;
mod world;

use std::fmt::Write as _;

#[cfg(feature = "inject-bugs")]
pub use bugs::{BUG_NAMES, Bugs, enable_bug};
pub use knobs::Knobs;
pub use summary::{E2eeSummary, Summary};
pub use world::Sim;

/// Everything a run depends on. Same config, same run.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The seed everything derives from.
    pub seed: u64,
    /// Number of simulated users (each with its own client).
    pub clients: usize,
    /// Simulated seconds of the safety phase (workload and faults).
    pub safety_secs: u64,
    /// Simulated seconds the liveness phase may take to converge.
    pub liveness_secs: u64,
    /// Use the cheap deterministic crypto provider (for the very largest runs only).
    pub cheap_crypto: bool,
    /// Also check that the plaintext users' body canary never reaches the server's
    /// decrypted requests or its store. Off by default: those users do not encrypt end
    /// to end, so it fails unless every user does (`e2ee_every=1`). The encrypted users'
    /// own canary is checked in every run.
    pub check_e2e_canary: bool,
    /// Start with every fault class off.
    pub no_faults: bool,
    /// Knob overrides, `(name, value)`, applied after the draw.
    pub overrides: Vec<(String, String)>,
    /// How many recent events to keep for the trace file (0: none).
    pub trace_events: usize,
    /// Stop with a liveness failure after this many events (0: no limit). A guard
    /// against event storms, which are bugs too.
    pub max_events: u64,
    /// Deliberate bugs: the hub's and driver's, and the simulated clients' (tests of the
    /// simulator itself).
    #[cfg(feature = "inject-bugs")]
    pub bugs: Bugs,
}

impl SimConfig {
    /// Defaults for `seed`: 1,000 clients, 120 s of safety, up to 120 s to converge.
    pub fn new(seed: u64) -> SimConfig {
        SimConfig {
            seed,
            clients: 1_000,
            safety_secs: 120,
            liveness_secs: 120,
            cheap_crypto: false,
            check_e2e_canary: false,
            no_faults: false,
            overrides: Vec::new(),
            trace_events: 0,
            max_events: 0,
            #[cfg(feature = "inject-bugs")]
            bugs: Bugs::default(),
        }
    }
}

/// The kind of a failure, each with its own exit code (as TigerBeetle's VOPR).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// An invariant broke (exit 129).
    Correctness,
    /// The world did not converge after healing (exit 128).
    Liveness,
    /// The code under test (or the simulator) panicked (exit 127).
    Crash,
}

impl FailureKind {
    /// The process exit code for this kind.
    pub fn exit_code(self) -> i32 {
        match self {
            FailureKind::Crash => 127,
            FailureKind::Liveness => 128,
            FailureKind::Correctness => 129,
        }
    }

    /// A short lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::Crash => "crash",
            FailureKind::Liveness => "liveness",
            FailureKind::Correctness => "correctness",
        }
    }
}

/// Why a run failed.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The kind.
    pub kind: FailureKind,
    /// The invariant.
    pub check: &'static str,
    /// What was seen.
    pub detail: String,
    /// Simulated time, µs.
    pub at_us: u64,
    /// Events processed when it happened.
    pub event: u64,
}

/// What a run produced.
#[derive(Clone, Debug)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// The knobs in force.
    pub knobs: Knobs,
    /// Counters.
    pub summary: Summary,
    /// Why it failed, if it did.
    pub failure: Option<Failure>,
    /// The last events (when `trace_events` > 0), oldest first.
    pub trace: Vec<String>,
}

/// Where a run is, for progress displays.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Events so far.
    pub events: u64,
    /// Simulated time, µs.
    pub sim_us: u64,
    /// In the liveness phase.
    pub liveness: bool,
}

/// Runs one simulation. `Err` only for an invalid configuration (e.g. an unknown knob).
pub fn run(cfg: SimConfig, progress: &mut dyn FnMut(&Progress)) -> Result<Report, String> {
    let sim = Sim::new(cfg)?;
    Ok(sim.run(progress))
}

/// The command line that replays `cfg` exactly.
pub fn replay_command(cfg: &SimConfig) -> String {
    let mut cmd = String::from("cargo run --release -p cove-sim");
    #[cfg(feature = "inject-bugs")]
    let bugs = cfg.bugs.names();
    #[cfg(not(feature = "inject-bugs"))]
    let bugs: Vec<&str> = Vec::new();
    if !bugs.is_empty() {
        cmd.push_str(" --features inject-bugs");
    }
    let _ = write!(cmd, " -- --seed {} --clients {}", cfg.seed, cfg.clients);
    let _ = write!(
        cmd,
        " --safety-secs {} --liveness-secs {}",
        cfg.safety_secs, cfg.liveness_secs
    );
    if cfg.cheap_crypto {
        cmd.push_str(" --cheap-crypto");
    }
    if cfg.check_e2e_canary {
        cmd.push_str(" --check-e2e-canary");
    }
    if cfg.no_faults {
        cmd.push_str(" --no-faults");
    }
    if cfg.max_events > 0 {
        let _ = write!(cmd, " --max-events {}", cfg.max_events);
    }
    for (k, v) in &cfg.overrides {
        let _ = write!(cmd, " --set {k}={v}");
    }
    for b in bugs {
        let _ = write!(cmd, " --inject-bug {b}");
    }
    cmd
}

/// The failure report: kind, invariant, seed, knobs and the replay line.
pub fn failure_report(cfg: &SimConfig, report: &Report, failure: &Failure) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "SIMULATION FAILED {}({}): {}: {}",
        failure.kind.name(),
        failure.kind.exit_code(),
        failure.check,
        failure.detail
    );
    let _ = writeln!(
        s,
        "  seed={} at t={:.6}s event={} trace_hash={:016x}",
        cfg.seed,
        failure.at_us as f64 / 1e6,
        failure.event,
        report.summary.trace_hash
    );
    let _ = writeln!(s, "  knobs: {}", report.knobs.one_line());
    let _ = writeln!(s, "  replay: {}", replay_command(cfg));
    s
}
