//! The simulated world: one server (connections, hub, disk), many clients, a seeded TCP
//! network, a virtual clock and an event queue. See the crate docs for the big picture.
//!
//! This module holds the world's state and its event loop; each part of the world lives in
//! its own submodule:
//!
//! - [`net`]: the simulated TCP connections (pipes), latency, stalls and resets;
//! - [`server`]: the server process — connections, the core's driver and hub, the disk,
//!   crashes;
//! - [`client`]: the users, their clients and clocks;
//! - [`workload`]: what users do;
//! - [`faults`]: which fault fires when;
//! - [`phases`]: the safety and liveness phases, and the run's statistics;
//! - [`secure`]: the end-to-end encrypted users (their sessions, application and
//!   workload) and the encrypted rooms.
//!
//! The invariants are checked in [`crate::check`] and [`crate::model`], fed by these
//! modules through narrow calls.

mod client;
mod faults;
mod net;
mod phases;
pub(crate) mod secure;
mod server;
mod sim_client;
mod workload;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use cove_core::client::ClientConfig;
use cove_core::crypto::{CryptoProvider, Identity, RUST_CRYPTO, Suite};
use cove_core::hub::HubConfig;
use cove_core::server::{DriverConfig, ServerConfig};
use cove_core::session::SessionConfig;
use cove_core::time::Duration;
use cove_core::wire::AuthMode;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::check::canary::Canary;
use crate::crypto::CHEAP_CRYPTO;
use crate::knobs::Knobs;
use crate::model::{Checked, DmLimits, Model, RoomLimits};
use crate::rng::{Prng, split};
use crate::trace::Trace;
use crate::{Failure, FailureKind, Progress, Report, SimConfig, Summary};

pub(crate) use client::{PendingRequest, RoomMark, RoomView, User};
use net::Pipe;
use secure::SecureWorld;
use server::Server;

/// One thing that happens at a point of simulated time. Events are queued by time and
/// then by the order they were scheduled in; stale ones (a generation or epoch that moved
/// on, a timer re-armed since) are dropped when they come due.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// The front segment of one direction of a connection is due.
    Arrive {
        conn: u64,
        up: bool,
    },
    ClientTimer {
        user: u32,
    },
    ServerTimer {
        conn: u64,
    },
    /// The disk has made `batch` durable.
    Commit {
        epoch: u32,
        batch: u64,
    },
    /// A server crash armed to strike while a batch is being written.
    ServerCrash {
        epoch: u32,
    },
    Act {
        user: u32,
        generation: u32,
    },
    Connect {
        user: u32,
        generation: u32,
    },
    Fault,
    ServerUp {
        epoch: u32,
    },
    Liveness,
    Check,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Safety,
    Liveness,
    Done,
}

/// The world. Built by [`crate::run`].
pub struct Sim {
    cfg: SimConfig,
    knobs: Knobs,
    provider: &'static dyn CryptoProvider,
    now: u64,
    queue: BinaryHeap<Reverse<(u64, u64, Event)>>,
    seq: u64,
    work: Prng,
    /// Draws edge body sizes (a stream of its own, so the workload's draws stay put).
    edge: Prng,
    net: Prng,
    faults: Prng,
    crypto: ChaCha20Rng,
    server: Server,
    users: Vec<User>,
    pipes: BTreeMap<u64, Pipe>,
    next_pipe: u64,
    model: Model,
    trace: Trace,
    phase: Phase,
    liveness_deadline: u64,
    canary: Canary,
    body: Vec<u8>,
    client_config: ClientConfig,
    /// The end-to-end encrypted side: encrypted rooms, their checkers.
    secure: SecureWorld,
    /// Statistics for the summary.
    pub stats: Summary,
}

/// `now + d`, saturating.
fn add(now: u64, d: u64) -> u64 {
    now.saturating_add(d)
}

impl Sim {
    /// A world for `cfg`, with knobs drawn from its seed and then overridden.
    pub fn new(cfg: SimConfig) -> Result<Sim, String> {
        let seed = cfg.seed;
        let mut knob_rng = Prng::new(split(seed, "knobs"));
        let mut knobs = Knobs::draw(&mut knob_rng);
        if cfg.no_faults {
            knobs.faults_off();
        }
        for (k, v) in &cfg.overrides {
            knobs.set(k, v)?;
        }
        if knobs.room_capacity == 0 || knobs.room_capacity > 255 {
            return Err("room_capacity must be 1..=255".into());
        }
        let provider: &'static dyn CryptoProvider = if cfg.cheap_crypto {
            &CHEAP_CRYPTO
        } else {
            &RUST_CRYPTO
        };
        let mut crypto = ChaCha20Rng::seed_from_u64(split(seed, "crypto"));
        let mut work = Prng::new(split(seed, "workload"));
        let session = SessionConfig {
            rotate_after_records: knobs.rotate_after_records,
            rotate_after_bytes: knobs.rotate_after_bytes,
            rotate_after: Duration::from_millis(knobs.rotate_after_ms),
        };
        let server_config = ServerConfig {
            ping_interval: Duration::from_millis(knobs.ping_ms),
            idle_timeout: Duration::from_millis(knobs.idle_ms),
            session,
            ..ServerConfig::default()
        };
        #[allow(unused_mut)]
        let mut hub_config = HubConfig {
            room_capacity: knobs.room_capacity,
            dm_window: knobs.dm_window.max(1),
            max_queue_per_user: knobs.max_queue.max(1),
            max_rooms_per_user: 32,
            room_window: knobs.room_window.max(1),
            log_max_messages: knobs.log_max_messages.max(1),
            log_max_bytes: knobs.log_max_bytes,
            log_memory_messages: knobs.log_memory_messages.max(1),
            log_memory_bytes: knobs.log_memory_bytes,
            max_queue_bytes_per_user: knobs.max_queue_bytes,
            // Encrypted users' rooms (and a room per direct conversation) share the
            // server's room budget with the plaintext model's, which never sees them:
            // one no run reaches keeps the model's "room limit" answers exact.
            max_rooms: 1_000_000,
            ..HubConfig::default()
        };
        #[allow(unused_mut)]
        let mut secure = SecureWorld::new(seed, knobs.e2ee_every);
        #[cfg(feature = "inject-bugs")]
        {
            hub_config.bugs = cfg.bugs.hub.clone();
            secure.skip_commit = cfg.bugs.skip_commit;
            secure.keep_removed_keys = cfg.bugs.keep_removed_keys;
        }
        let server_identity = Identity::generate_with(&mut crypto, provider);
        let mut client_config = ClientConfig::new(Suite::AesGcm, AuthMode::Register);
        client_config.server_key = Some(server_identity.public().ed25519);
        client_config.ping_interval = Duration::from_millis(knobs.ping_ms);
        client_config.idle_timeout = Duration::from_millis(knobs.idle_ms);
        client_config.session = session;
        let users = User::generate(cfg.clients, &knobs, provider, &mut crypto, &mut work);
        let mut canary = [0u8; 16];
        for c in canary.chunks_mut(8) {
            c.copy_from_slice(&work.next_u64().to_le_bytes());
        }
        let limits = RoomLimits {
            max_messages: hub_config.log_max_messages,
            max_bytes: hub_config.log_max_bytes,
            memory_messages: hub_config.log_memory_messages,
            memory_bytes: hub_config.log_memory_bytes,
            window: hub_config.room_window as u64,
            history_page: hub_config.history_page,
            max_rooms_per_user: hub_config.max_rooms_per_user,
            max_rooms: hub_config.max_rooms,
            max_invites: hub_config.max_invites_per_room,
        };
        let dm_limits = DmLimits {
            max_queue: hub_config.max_queue_per_user,
            max_bytes: hub_config.max_queue_bytes_per_user,
            max_bytes_total: hub_config.max_queue_bytes_total,
        };
        let model = Model::new(cfg.clients, knobs.room_capacity, dm_limits, limits);
        let driver_config = DriverConfig {
            max_held_replies: knobs.max_held_replies.max(1),
            max_pending_ops: knobs.max_pending_ops.max(1),
            // The model checks every hub step.
            observe_steps: true,
            // Connections are not passed through admission (`handle_accept`): its fair
            // shares are not simulated yet, so they stay at their defaults, unused.
            ..DriverConfig::default()
        };
        let server = Server::new(
            server_identity,
            server_config,
            hub_config,
            driver_config,
            seed,
        );
        let trace = Trace::new(cfg.trace_events);
        let mut sim = Sim {
            knobs,
            provider,
            now: 0,
            queue: BinaryHeap::new(),
            seq: 0,
            edge: Prng::new(split(seed, "edge sizes")),
            net: Prng::new(split(seed, "network")),
            faults: Prng::new(split(seed, "faults")),
            work,
            crypto,
            server,
            users,
            pipes: BTreeMap::new(),
            next_pipe: 1,
            model,
            trace,
            phase: Phase::Safety,
            liveness_deadline: u64::MAX,
            canary: Canary::new(canary, cfg.check_e2e_canary),
            body: Vec::new(),
            client_config,
            secure,
            stats: Summary::default(),
            cfg,
        };
        sim.stats.clients = sim.cfg.clients;
        sim.stats.e2ee.users = sim.users.iter().filter(|u| u.secure.is_some()).count();
        sim.stats.cheap_crypto = sim.cfg.cheap_crypto;
        Ok(sim)
    }

    /// The knobs in force.
    pub fn knobs(&self) -> &Knobs {
        &self.knobs
    }

    fn schedule(&mut self, at: u64, ev: Event) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, ev)));
    }

    // ----- the run loop -------------------------------------------------------------

    /// Runs to the end, calling `progress` now and then.
    pub fn run(mut self, progress: &mut dyn FnMut(&Progress)) -> Report {
        let wall = std::time::Instant::now();
        let safety = self.cfg.safety_secs.saturating_mul(1_000_000);
        self.schedule(safety, Event::Liveness);
        self.schedule_fault();
        // Everyone connects within the first couple of seconds.
        for u in 0..self.users.len() {
            let at = self.work.below(2_000_000);
            self.users[u].connect_gen += 1;
            let generation = self.users[u].connect_gen;
            self.schedule(
                at,
                Event::Connect {
                    user: u as u32,
                    generation,
                },
            );
        }
        let mut failure = None;
        let mut events = 0u64;
        while let Some(Reverse((at, _, ev))) = self.queue.pop() {
            self.now = at;
            events += 1;
            if let Err(v) = self.step(ev) {
                failure = Some(Failure {
                    kind: if matches!(v.check, "liveness" | "busy timer") {
                        FailureKind::Liveness
                    } else {
                        FailureKind::Correctness
                    },
                    check: v.check,
                    detail: v.detail,
                    at_us: self.now,
                    event: events,
                });
                break;
            }
            if events.is_multiple_of(8192) {
                progress(&Progress {
                    events,
                    sim_us: self.now,
                    liveness: self.phase != Phase::Safety,
                });
            }
            if self.phase == Phase::Done {
                break;
            }
            if self.cfg.max_events > 0 && events >= self.cfg.max_events {
                failure = Some(Failure {
                    kind: FailureKind::Liveness,
                    check: "event budget",
                    detail: format!("{events} events without finishing (an event storm?)"),
                    at_us: self.now,
                    event: events,
                });
                break;
            }
        }
        if failure.is_none() && self.phase != Phase::Done {
            failure = Some(Failure {
                kind: FailureKind::Liveness,
                check: "liveness",
                detail: "the event queue ran dry before convergence".into(),
                at_us: self.now,
                event: events,
            });
        }
        self.collect_session_stats();
        let mut stats = self.stats.clone();
        stats.events = events;
        stats.sim_us = self.now;
        stats.wall_secs = wall.elapsed().as_secs_f64();
        stats.rooms = self.model.rooms_created;
        stats.trace_hash = self.trace.hash();
        Report {
            seed: self.cfg.seed,
            knobs: self.knobs.clone(),
            summary: stats,
            failure,
            trace: self.trace.lines(),
        }
    }

    /// Handles one due event.
    fn step(&mut self, ev: Event) -> Checked {
        match ev {
            Event::Arrive { conn, up } => self.arrive(conn, up),
            Event::ClientTimer { user } => self.client_timer(user),
            Event::ServerTimer { conn } => self.server_timer(conn),
            Event::Commit { epoch, batch } => self.commit_due(epoch, batch),
            Event::ServerCrash { epoch } => self.crash_due(epoch),
            Event::Act { user, generation } => self.act_due(user, generation),
            Event::Connect { user, generation } => self.connect_due(user, generation),
            Event::Fault => self.fault(),
            Event::ServerUp { epoch } => {
                if epoch != self.server.epoch || self.server.up {
                    return Ok(());
                }
                self.server_up()
            }
            Event::Liveness => self.start_liveness(),
            Event::Check => self.check_convergence(),
        }
    }
}
