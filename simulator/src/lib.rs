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
//!    that transport keys rotate often.
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

mod check;
pub mod crypto;
pub mod knobs;
pub mod model;
pub mod rng;
pub mod trace;
mod world;

use std::fmt::Write as _;

pub use knobs::Knobs;
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
    /// Check that no body canary reaches the server's decrypted requests or its store.
    /// Off by default: it fails until bodies are end-to-end encrypted.
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
    /// Deliberate hub and driver bugs (tests of the simulator itself).
    #[cfg(feature = "inject-bugs")]
    pub bugs: cove_core::hub::InjectedBugs,
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
            bugs: cove_core::hub::InjectedBugs::default(),
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

/// Counters of one run.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Simulated users.
    pub clients: usize,
    /// Whether the cheap crypto provider was used.
    pub cheap_crypto: bool,
    /// Rooms created.
    pub rooms: u64,
    /// Room messages the hub stamped.
    pub room_messages: u64,
    /// Room posts clients sent.
    pub room_posts: u64,
    /// Room messages clients were shown (and checked).
    pub room_deliveries: u64,
    /// Room messages shown again to a client that had lost its local state (allowed).
    pub room_reshown_after_state_loss: u64,
    /// Retention gaps announced to clients.
    pub room_gaps: u64,
    /// History pages clients received (and checked).
    pub history_pages: u64,
    /// Invitations clients received.
    pub invitations: u64,
    /// Removals by an admin that reached the removed member.
    pub removals: u64,
    /// Direct messages clients sent.
    pub dms_sent: u64,
    /// Direct messages acknowledged to their sender as delivered or queued.
    pub dms_acked: u64,
    /// Direct messages shown to recipients.
    pub dm_deliveries: u64,
    /// DMs shown again to a client that had lost its local state (allowed).
    pub dms_reshown_after_state_loss: u64,
    /// Queued DMs the hub restored from the store after server restarts.
    pub dms_restored: u64,
    /// Bodies sent at exactly the protocol's largest or one byte less (edge users).
    pub edge_bodies: u64,
    /// Bodies sent one byte over the protocol's largest (edge users).
    pub edge_bodies_over: u64,
    /// Requests clients saw refused as `BodyTooLarge`.
    pub bodies_refused: u64,
    /// DMs clients saw refused as `QueueFull`.
    pub dms_refused_full: u64,
    /// Joins that succeeded.
    pub joins: u64,
    /// Joins refused because the room was full.
    pub joins_refused_full: u64,
    /// Transport key updates sent (both sides).
    pub key_updates: u64,
    /// Server connections accepted.
    pub connections: u64,
    /// Successful logins and registrations.
    pub logins: u64,
    /// Client connections that closed.
    pub disconnects: u64,
    /// Logouts.
    pub logouts: u64,
    /// Client crashes.
    pub client_crashes: u64,
    /// Server crashes.
    pub server_crashes: u64,
    /// Server crashes that struck while a batch was being made durable.
    pub server_crashes_mid_commit: u64,
    /// Connection resets.
    pub resets: u64,
    /// Partitions.
    pub partitions: u64,
    /// Stalls.
    pub stalls: u64,
    /// Batches the disk made durable.
    pub commits: u64,
    /// Times a connection's input was left unread because the driver was full.
    pub held_back: u64,
    /// Events processed.
    pub events: u64,
    /// Simulated time at the end, µs.
    pub sim_us: u64,
    /// When the safety phase ended, µs.
    pub safety_end_us: u64,
    /// Time the liveness phase took to converge, µs.
    pub converged_us: u64,
    /// Wall-clock seconds the run took (not part of the trace).
    pub wall_secs: f64,
    /// The trace hash: equal for equal runs.
    pub trace_hash: u64,
}

impl Summary {
    /// Events per wall-clock second.
    pub fn events_per_sec(&self) -> f64 {
        self.events as f64 / self.wall_secs.max(1e-9)
    }

    /// Simulated time over wall-clock time.
    pub fn compression(&self) -> f64 {
        self.sim_us as f64 / 1e6 / self.wall_secs.max(1e-9)
    }

    /// The summary as text, one counter per line.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let provider = if self.cheap_crypto {
            "cheap deterministic (NOT real crypto: --cheap-crypto)"
        } else {
            "real (RustCrypto + dalek)"
        };
        let _ = writeln!(s, "  clients          {}", self.clients);
        let _ = writeln!(s, "  crypto provider  {provider}");
        let _ = writeln!(s, "  rooms created    {}", self.rooms);
        let _ = writeln!(
            s,
            "  room messages    {} stamped, {} shown, {} re-shown after a client lost its state",
            self.room_messages, self.room_deliveries, self.room_reshown_after_state_loss
        );
        let _ = writeln!(
            s,
            "  room extras      {} retention gaps seen, {} history pages, {} invitations, {} removals",
            self.room_gaps, self.history_pages, self.invitations, self.removals
        );
        let _ = writeln!(
            s,
            "  direct messages  {} sent, {} acked, {} shown",
            self.dms_sent, self.dms_acked, self.dm_deliveries
        );
        let _ = writeln!(
            s,
            "  dm recovery      {} restored from the store after restarts, {} re-shown after a client lost its state",
            self.dms_restored, self.dms_reshown_after_state_loss
        );
        let _ = writeln!(
            s,
            "  limits           {} bodies drawn of the largest size or 1 less, {} of 1 byte more; {} refused as too large, {} DMs refused as queue full",
            self.edge_bodies, self.edge_bodies_over, self.bodies_refused, self.dms_refused_full
        );
        let _ = writeln!(
            s,
            "  joins            {} ok, {} refused as full",
            self.joins, self.joins_refused_full
        );
        let _ = writeln!(s, "  key rotations    {}", self.key_updates);
        let _ = writeln!(
            s,
            "  connections      {} accepted, {} logins, {} closed, {} logouts",
            self.connections, self.logins, self.disconnects, self.logouts
        );
        let _ = writeln!(
            s,
            "  faults           {} client crashes, {} server crashes ({} mid-commit), {} resets, {} partitions, {} stalls",
            self.client_crashes,
            self.server_crashes,
            self.server_crashes_mid_commit,
            self.resets,
            self.partitions,
            self.stalls
        );
        let _ = writeln!(
            s,
            "  disk commits     {} batches; {} connections held back by a full pipeline",
            self.commits, self.held_back
        );
        let _ = writeln!(
            s,
            "  simulated time   {:.1} s (safety {:.1} s, converged {:.1} s after healing)",
            self.sim_us as f64 / 1e6,
            self.safety_end_us as f64 / 1e6,
            self.converged_us as f64 / 1e6
        );
        let _ = writeln!(s, "  events           {}", self.events);
        let _ = writeln!(s, "  wall time        {:.2} s", self.wall_secs);
        let _ = writeln!(s, "  events/s         {:.0}", self.events_per_sec());
        let _ = writeln!(s, "  time compression {:.1}x", self.compression());
        let _ = writeln!(s, "  trace hash       {:016x}", self.trace_hash);
        s
    }
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
    let bugs = bug_names(&cfg.bugs);
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

/// The names `--inject-bug` accepts.
#[cfg(feature = "inject-bugs")]
pub const BUG_NAMES: [&str; 8] = [
    "skip_sequence",
    "admit_over_capacity",
    "drop_queued_on_restore",
    "deliver_to_departed",
    "release_before_durable",
    "catchup_skips_one",
    "catchup_replays_acked",
    "membership_not_durable",
];

/// Switches on the injected bug `name`.
#[cfg(feature = "inject-bugs")]
pub fn enable_bug(bugs: &mut cove_core::hub::InjectedBugs, name: &str) -> Result<(), String> {
    match name {
        "skip_sequence" => bugs.skip_sequence = true,
        "admit_over_capacity" => bugs.admit_over_capacity = true,
        "drop_queued_on_restore" => bugs.drop_queued_on_restore = true,
        "deliver_to_departed" => bugs.deliver_to_departed = true,
        "release_before_durable" => bugs.release_before_durable = true,
        "catchup_skips_one" => bugs.catchup_skips_one = true,
        "catchup_replays_acked" => bugs.catchup_replays_acked = true,
        "membership_not_durable" => bugs.membership_not_durable = true,
        _ => return Err(format!("unknown bug {name:?}; one of {BUG_NAMES:?}")),
    }
    Ok(())
}

#[cfg(feature = "inject-bugs")]
fn bug_names(bugs: &cove_core::hub::InjectedBugs) -> Vec<&'static str> {
    let mut out = Vec::new();
    if bugs.skip_sequence {
        out.push("skip_sequence");
    }
    if bugs.admit_over_capacity {
        out.push("admit_over_capacity");
    }
    if bugs.drop_queued_on_restore {
        out.push("drop_queued_on_restore");
    }
    if bugs.deliver_to_departed {
        out.push("deliver_to_departed");
    }
    if bugs.release_before_durable {
        out.push("release_before_durable");
    }
    if bugs.catchup_skips_one {
        out.push("catchup_skips_one");
    }
    if bugs.catchup_replays_acked {
        out.push("catchup_replays_acked");
    }
    if bugs.membership_not_durable {
        out.push("membership_not_durable");
    }
    out
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
