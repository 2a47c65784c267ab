//! The simulated world: one server (connections, hub, disk), many clients, a seeded TCP
//! network, a virtual clock and an event queue. See the crate docs for the big picture.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};
use std::sync::Arc;

use cove_core::client::{Client, ClientConfig, ClientError, ClientEvent, ClientState};
use cove_core::crypto::{CryptoProvider, Identity, RUST_CRYPTO, Suite};
use cove_core::hub::{ConnId, Hub, HubConfig, Reply, Request};
use cove_core::server::{ServerConfig, ServerConnection, ServerEvent};
use cove_core::session::SessionConfig;
use cove_core::store::{MemoryStore, Records, StoreOp};
use cove_core::time::{Duration, Instant};
use cove_core::wire::{AckStatus, AuthMode, ErrorCode, RoomId, ServerMsg, Status};
use memchr::memmem;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::crypto::CHEAP_CRYPTO;
use crate::knobs::Knobs;
use crate::model::{Checked, Model, Violation, user_of_name};
use crate::rng::{Prng, split};
use crate::trace::{Kind, Trace};
use crate::{Failure, FailureKind, Progress, Report, SimConfig, Summary};

/// The client's transmit queue size: enough for what one step produces, since the
/// simulator writes it out after every step.
const CLIENT_TX: usize = 8 * 1024;
type SimClient = Client<CLIENT_TX>;

/// How often the liveness phase checks for convergence.
const CHECK_EVERY: u64 = 250_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
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
    Commit {
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

#[derive(Debug)]
struct Seg {
    at: u64,
    data: Vec<u8>,
    /// The sender closed its side (after `data`).
    fin: bool,
    /// A reset: the receiver sees an error at once.
    rst: bool,
}

#[derive(Debug, Default)]
struct Dir {
    segs: VecDeque<Seg>,
    last: u64,
    stalled_until: u64,
    scheduled: Option<u64>,
}

#[derive(Debug)]
struct Pipe {
    user: usize,
    latency: u64,
    /// Server life the connection was opened in.
    epoch: u32,
    up: Dir,
    down: Dir,
    accepted: bool,
    client_gone: bool,
    server_gone: bool,
    /// Client data reached a dead server while it was down: reset once it is back.
    pending_rst: bool,
}

struct SConn {
    conn: ServerConnection,
    user: usize,
    rx: Vec<u8>,
    timer_at: Option<u64>,
}

#[derive(Clone, Copy, Debug)]
enum Pending {
    Create,
    Join(RoomId),
    Leave(RoomId),
    Dm(usize),
}

#[derive(Debug)]
struct RoomView {
    inc: u64,
    next_seq: u64,
    members: usize,
}

struct CConn {
    pipe: u64,
    client: Box<SimClient>,
    rx: Vec<u8>,
    authed: bool,
    rooms: BTreeMap<RoomId, RoomView>,
    pending: BTreeMap<u32, Pending>,
    /// When (global time) the simulator last called `handle_timeout`.
    fired_at: Option<u64>,
    /// The handshake deadline, in the client's clock.
    hs_deadline: Instant,
}

struct User {
    name: Arc<str>,
    identity: Identity,
    ed_public: [u8; 32],
    suite: Suite,
    registered: bool,
    /// The persisted "last DM shown" (the client's local state).
    local_last_dm: u64,
    /// Bumped when the client loses its local state: DMs shown before may be shown again.
    amnesia: u32,
    shown: BTreeMap<u64, u32>,
    last_shown: u64,
    skew_offset: u64,
    skew_ppm: i64,
    conn: Option<CConn>,
    timer_at: Option<u64>,
    act_gen: u32,
    connect_gen: u32,
    away_until: u64,
    favorites: Vec<RoomId>,
    cut_until: [u64; 2],
    counter: u64,
}

struct Server {
    up: bool,
    epoch: u32,
    hub: Hub,
    conns: BTreeMap<u64, SConn>,
    durable: Records,
    uncommitted: Vec<StoreOp>,
    commit_at: Option<u64>,
    touched: BTreeSet<u64>,
    closing: Vec<u64>,
    identity: Identity,
    ed_public: [u8; 32],
    config: Arc<ServerConfig>,
    hub_config: HubConfig,
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
    queue: BinaryHeap<Reverse<(u64, u64, Ev)>>,
    seq: u64,
    work: Prng,
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
    canary: [u8; 16],
    canary_finder: memmem::Finder<'static>,
    deliv: Vec<(ConnId, Reply)>,
    body: Vec<u8>,
    client_config: ClientConfig,
    /// Statistics for the summary.
    pub stats: Summary,
}

fn add(now: u64, d: u64) -> u64 {
    now.saturating_add(d)
}

/// Close codes that only a broken protocol, key schedule or hub produces here: the
/// simulated network never corrupts bytes, and the clients only send valid requests.
fn broken_close(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::DecryptFailed
            | ErrorCode::InvalidFormat
            | ErrorCode::ServerError
            | ErrorCode::FrameTooLarge
            | ErrorCode::UnsupportedVersion
            | ErrorCode::UnsupportedSuite
            | ErrorCode::AuthFailed
            | ErrorCode::InvalidUsername
            | ErrorCode::NotAuthenticated
    )
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
            ..HubConfig::default()
        };
        #[cfg(feature = "inject-bugs")]
        {
            hub_config.bugs = cfg.bugs.clone();
        }
        let server_identity = Identity::generate_with(&mut crypto, provider);
        let server_ed = server_identity.public().ed25519;
        let mut client_config = ClientConfig::new(Suite::AesGcm, AuthMode::Register);
        client_config.server_key = Some(server_ed);
        client_config.ping_interval = Duration::from_millis(knobs.ping_ms);
        client_config.idle_timeout = Duration::from_millis(knobs.idle_ms);
        client_config.session = session;
        let mut users = Vec::with_capacity(cfg.clients);
        for i in 0..cfg.clients {
            let identity = Identity::generate_with(&mut crypto, provider);
            let ed_public = identity.public().ed25519;
            let skew_ppm = if knobs.skew_ppm_max == 0 {
                0
            } else {
                work.range(0, 2 * knobs.skew_ppm_max) as i64 - knobs.skew_ppm_max as i64
            };
            users.push(User {
                name: Arc::from(format!("u{i}")),
                identity,
                ed_public,
                suite: if work.chance(0.5) {
                    Suite::AesGcm
                } else {
                    Suite::ChaChaPoly
                },
                registered: false,
                local_last_dm: 0,
                amnesia: 0,
                shown: BTreeMap::new(),
                last_shown: 0,
                skew_offset: work.below(knobs.skew_offset_max_ms.saturating_mul(1000) + 1),
                skew_ppm,
                conn: None,
                timer_at: None,
                act_gen: 0,
                connect_gen: 0,
                away_until: 0,
                favorites: Vec::new(),
                cut_until: [0, 0],
                counter: 0,
            });
        }
        let mut canary = [0u8; 16];
        for c in canary.chunks_mut(8) {
            c.copy_from_slice(&work.next_u64().to_le_bytes());
        }
        let model = Model::new(cfg.clients, knobs.room_capacity, knobs.max_queue.max(1));
        let hub = Hub::new(hub_config.clone(), split(seed, "hub"));
        let trace = Trace::new(cfg.trace_events);
        let mut sim = Sim {
            knobs,
            provider,
            now: 0,
            queue: BinaryHeap::new(),
            seq: 0,
            net: Prng::new(split(seed, "network")),
            faults: Prng::new(split(seed, "faults")),
            work,
            crypto,
            server: Server {
                up: true,
                epoch: 0,
                hub,
                conns: BTreeMap::new(),
                durable: Records::default(),
                uncommitted: Vec::new(),
                commit_at: None,
                touched: BTreeSet::new(),
                closing: Vec::new(),
                identity: server_identity,
                ed_public: server_ed,
                config: Arc::new(server_config),
                hub_config,
            },
            users,
            pipes: BTreeMap::new(),
            next_pipe: 1,
            model,
            trace,
            phase: Phase::Safety,
            liveness_deadline: u64::MAX,
            canary,
            canary_finder: memmem::Finder::new(&canary).into_owned(),
            deliv: Vec::new(),
            body: Vec::new(),
            client_config,
            stats: Summary::default(),
            cfg,
        };
        sim.stats.clients = sim.cfg.clients;
        sim.stats.cheap_crypto = sim.cfg.cheap_crypto;
        Ok(sim)
    }

    /// The knobs in force.
    pub fn knobs(&self) -> &Knobs {
        &self.knobs
    }

    fn schedule(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, ev)));
    }

    // ----- clocks -------------------------------------------------------------------

    fn client_now(&self, u: usize) -> Instant {
        let user = &self.users[u];
        let g = i128::from(self.now);
        let t = g + g * i128::from(user.skew_ppm) / 1_000_000 + i128::from(user.skew_offset);
        Instant(t.max(0) as u64)
    }

    /// The earliest global time at which user `u`'s clock reads at least `t`.
    fn global_for_client(&self, u: usize, t: Instant) -> u64 {
        let user = &self.users[u];
        let target = i128::from(t.0) - i128::from(user.skew_offset);
        if target <= 0 {
            return self.now;
        }
        let rate = 1_000_000 + i128::from(user.skew_ppm);
        let mut g = (target * 1_000_000 / rate).max(0) as u64;
        let reads = |g: u64| {
            let g = i128::from(g);
            g + g * i128::from(user.skew_ppm) / 1_000_000 + i128::from(user.skew_offset)
        };
        while reads(g) < i128::from(t.0) {
            g += 1;
        }
        while g > 0 && reads(g - 1) >= i128::from(t.0) {
            g -= 1;
        }
        g.max(self.now)
    }

    // ----- the run loop -------------------------------------------------------------

    /// Runs to the end, calling `progress` now and then.
    pub fn run(mut self, progress: &mut dyn FnMut(&Progress)) -> Report {
        let wall = std::time::Instant::now();
        let safety = self.cfg.safety_secs.saturating_mul(1_000_000);
        self.schedule(safety, Ev::Liveness);
        self.schedule_fault();
        // Everyone connects within the first couple of seconds.
        for u in 0..self.users.len() {
            let at = self.work.below(2_000_000);
            self.users[u].connect_gen += 1;
            let generation = self.users[u].connect_gen;
            self.schedule(
                at,
                Ev::Connect {
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

    fn step(&mut self, ev: Ev) -> Checked {
        match ev {
            Ev::Arrive { conn, up } => self.arrive(conn, up),
            Ev::ClientTimer { user } => {
                let u = user as usize;
                if self.users[u].timer_at != Some(self.now) {
                    return Ok(());
                }
                self.users[u].timer_at = None;
                // Timers are armed lazily: a deadline that moved later since this event
                // was queued is re-armed here rather than on every change.
                let due = self.users[u]
                    .conn
                    .as_ref()
                    .and_then(|c| c.client.poll_timeout());
                if let Some(t) = due {
                    let g = self.global_for_client(u, t);
                    if g > self.now {
                        self.users[u].timer_at = Some(g);
                        self.schedule(g, Ev::ClientTimer { user });
                        return Ok(());
                    }
                }
                self.trace.note(self.now, Kind::ClientTimer, u as u64, 0);
                let now = self.client_now(u);
                if let Some(c) = self.users[u].conn.as_mut() {
                    c.client.handle_timeout(now);
                    c.fired_at = Some(self.now);
                }
                self.after_client(u)
            }
            Ev::ServerTimer { conn } => {
                let Some(sc) = self.server.conns.get_mut(&conn) else {
                    return Ok(());
                };
                if sc.timer_at != Some(self.now) {
                    return Ok(());
                }
                sc.timer_at = None;
                if let Some(t) = sc.conn.poll_timeout().filter(|t| t.0 > self.now) {
                    sc.timer_at = Some(t.0);
                    self.schedule(t.0, Ev::ServerTimer { conn });
                    return Ok(());
                }
                sc.conn.handle_timeout(Instant(self.now));
                let busy =
                    !sc.conn.is_closed() && sc.conn.poll_timeout().is_some_and(|t| t.0 <= self.now);
                if busy {
                    return Err(Violation::new(
                        "busy timer",
                        format!(
                            "server connection {conn} asks to be woken now, but handle_timeout \
                             changes nothing: an adapter trusting poll_timeout spins"
                        ),
                    ));
                }
                self.trace.note(self.now, Kind::ServerTimer, conn, 0);
                self.server.touched.insert(conn);
                self.drain_server(conn)?;
                self.finish_server_step()
            }
            Ev::Commit { epoch } => {
                if epoch != self.server.epoch || self.server.commit_at != Some(self.now) {
                    return Ok(());
                }
                self.trace.note(
                    self.now,
                    Kind::Commit,
                    self.server.uncommitted.len() as u64,
                    0,
                );
                self.commit()
            }
            Ev::Act { user, generation } => {
                let u = user as usize;
                if generation != self.users[u].act_gen || self.phase != Phase::Safety {
                    return Ok(());
                }
                self.trace.note(self.now, Kind::Act, u as u64, 0);
                self.act(u)
            }
            Ev::Connect { user, generation } => {
                let u = user as usize;
                if generation != self.users[u].connect_gen || self.users[u].conn.is_some() {
                    return Ok(());
                }
                self.trace.note(self.now, Kind::Connect, u as u64, 0);
                self.connect(u)
            }
            Ev::Fault => self.fault(),
            Ev::ServerUp { epoch } => {
                if epoch != self.server.epoch || self.server.up {
                    return Ok(());
                }
                self.server_up()
            }
            Ev::Liveness => self.start_liveness(),
            Ev::Check => self.check_convergence(),
        }
    }

    // ----- network ------------------------------------------------------------------

    fn effective(&self, pipe: &Pipe, up: bool, seg_at: u64) -> u64 {
        let dir = if up { &pipe.up } else { &pipe.down };
        let cut = self.users[pipe.user].cut_until[usize::from(!up)];
        seg_at.max(dir.stalled_until).max(cut)
    }

    fn schedule_dir(&mut self, id: u64, up: bool) {
        let Some(pipe) = self.pipes.get(&id) else {
            return;
        };
        let dir = if up { &pipe.up } else { &pipe.down };
        let Some(front) = dir.segs.front() else {
            return;
        };
        let t = self.effective(pipe, up, front.at).max(self.now);
        if dir.scheduled == Some(t) {
            return;
        }
        if let Some(pipe) = self.pipes.get_mut(&id) {
            let dir = if up { &mut pipe.up } else { &mut pipe.down };
            dir.scheduled = Some(t);
        }
        self.schedule(t, Ev::Arrive { conn: id, up });
    }

    /// Puts bytes (and/or a FIN or RST) on one direction of a connection.
    fn send(&mut self, id: u64, up: bool, data: Vec<u8>, fin: bool, rst: bool) {
        let jitter = self.net.below(self.knobs.jitter_us + 1);
        let now = self.now;
        let Some(pipe) = self.pipes.get_mut(&id) else {
            return;
        };
        let latency = pipe.latency;
        let dir = if up { &mut pipe.up } else { &mut pipe.down };
        let at = add(now, latency + jitter).max(dir.last);
        dir.last = at;
        dir.segs.push_back(Seg { at, data, fin, rst });
        self.schedule_dir(id, up);
    }

    fn arrive(&mut self, id: u64, up: bool) -> Checked {
        let now = self.now;
        let mut segs = Vec::new();
        {
            let Some(pipe) = self.pipes.get(&id) else {
                return Ok(());
            };
            let dir = if up { &pipe.up } else { &pipe.down };
            if dir.scheduled != Some(now) {
                return Ok(());
            }
            let due = dir
                .segs
                .front()
                .is_some_and(|s| self.effective(pipe, up, s.at) <= now);
            let Some(pipe) = self.pipes.get_mut(&id) else {
                return Ok(());
            };
            let dir = if up { &mut pipe.up } else { &mut pipe.down };
            dir.scheduled = None;
            if due {
                // Everything due now on this direction, in order.
                while dir.segs.front().is_some_and(|s| s.at <= now) {
                    if let Some(s) = dir.segs.pop_front() {
                        segs.push(s);
                    }
                }
            }
        }
        self.schedule_dir(id, up);
        for seg in segs {
            self.trace.note(
                now,
                Kind::Arrive,
                id,
                u64::from(up) | (seg.data.len() as u64) << 1,
            );
            self.trace.bytes(&seg.data);
            if self.canary_finder.find(&seg.data).is_some() {
                return Err(Violation::new(
                    "plaintext on the wire",
                    format!("a body canary crossed connection {id} in the clear"),
                ));
            }
            if up {
                self.arrive_at_server(id, seg)?;
            } else {
                self.arrive_at_client(id, seg)?;
            }
        }
        self.reap(id);
        Ok(())
    }

    /// Drops a connection once both ends are gone and nothing is in flight.
    fn reap(&mut self, id: u64) {
        if let Some(p) = self.pipes.get(&id)
            && p.client_gone
            && p.server_gone
            && p.up.segs.is_empty()
            && p.down.segs.is_empty()
        {
            self.pipes.remove(&id);
        }
    }

    fn arrive_at_server(&mut self, id: u64, seg: Seg) -> Checked {
        let (alive, accepted, server_gone, user) = match self.pipes.get(&id) {
            Some(p) => (
                p.epoch == self.server.epoch && self.server.up,
                p.accepted,
                p.server_gone,
                p.user,
            ),
            None => return Ok(()),
        };
        if seg.rst {
            if let Some(sc) = self.server.conns.get_mut(&id) {
                sc.conn.handle_eof();
                self.server.touched.insert(id);
                self.drain_server(id)?;
                return self.finish_server_step();
            }
            return Ok(());
        }
        if !alive || server_gone {
            // Nobody listens on this connection any more: the peer's TCP answers with a reset.
            if let Some(p) = self.pipes.get_mut(&id) {
                p.server_gone = true;
            }
            if !self.server.up {
                if let Some(p) = self.pipes.get_mut(&id) {
                    p.pending_rst = true;
                }
            } else if !seg.fin && !self.pipes.get(&id).is_some_and(|p| p.client_gone) {
                self.send(id, false, Vec::new(), false, true);
            }
            return Ok(());
        }
        if !accepted {
            let conn = ServerConnection::new(
                Instant(self.now),
                self.server.config.clone(),
                self.provider,
                &self.server.identity,
                &mut self.crypto,
            );
            self.server.conns.insert(
                id,
                SConn {
                    conn,
                    user,
                    rx: Vec::new(),
                    timer_at: None,
                },
            );
            if let Some(p) = self.pipes.get_mut(&id) {
                p.accepted = true;
            }
            self.stats.connections += 1;
        }
        let now = Instant(self.now);
        if !seg.data.is_empty() {
            let Some(sc) = self.server.conns.get_mut(&id) else {
                return Ok(());
            };
            if sc.rx.is_empty() {
                sc.rx = seg.data;
            } else {
                sc.rx.extend_from_slice(&seg.data);
            }
            while let Some(sc) = self.server.conns.get_mut(&id) {
                let used = sc.conn.handle_input(now, &mut sc.rx);
                sc.rx.drain(..used);
                self.server.touched.insert(id);
                self.drain_server(id)?;
                if used == 0 {
                    break;
                }
            }
        }
        if seg.fin
            && let Some(sc) = self.server.conns.get_mut(&id)
        {
            sc.conn.handle_eof();
            self.server.touched.insert(id);
            self.drain_server(id)?;
        }
        self.finish_server_step()
    }

    fn arrive_at_client(&mut self, id: u64, seg: Seg) -> Checked {
        let Some(pipe) = self.pipes.get(&id) else {
            return Ok(());
        };
        let u = pipe.user;
        let current = self.users[u].conn.as_ref().is_some_and(|c| c.pipe == id);
        if !current {
            // The client is gone: its OS answers with a reset.
            if !seg.rst && !seg.fin && !seg.data.is_empty() {
                self.send(id, true, Vec::new(), false, true);
            }
            return Ok(());
        }
        if seg.rst {
            if let Some(c) = self.users[u].conn.as_mut() {
                c.client.handle_eof();
            }
            return self.after_client(u);
        }
        if !seg.data.is_empty() {
            if let Some(c) = self.users[u].conn.as_mut() {
                if c.rx.is_empty() {
                    c.rx = seg.data;
                } else {
                    c.rx.extend_from_slice(&seg.data);
                }
            }
            self.client_input(u, id)?;
        }
        if seg.fin
            && let Some(c) = self.users[u].conn.as_mut().filter(|c| c.pipe == id)
        {
            c.client.handle_eof();
        }
        self.after_client(u)
    }

    // ----- server side --------------------------------------------------------------

    /// Hands a connection's events to the hub, checking each hub step against the model.
    fn drain_server(&mut self, id: u64) -> Checked {
        let mut work = vec![id];
        while let Some(id) = work.pop() {
            while let Some(sc) = self.server.conns.get_mut(&id) {
                let Some(ev) = sc.conn.poll_event() else {
                    break;
                };
                let user = sc.user;
                let conn = ConnId(id);
                let now = Instant(self.now);
                match ev {
                    ServerEvent::Authenticate { name, key, mode } => {
                        let u = user_of_name(&name).filter(|u| *u < self.users.len());
                        if u != Some(user) || key != self.users[user].ed_public {
                            return Err(Violation::new(
                                "handshake identity",
                                format!("connection of u{user} authenticated as {name}"),
                            ));
                        }
                        self.server.hub.handle_connect(now, conn, &name, key, mode);
                        self.trace.note(self.now, Kind::Hub, id, 1);
                        self.hub_outputs()?;
                        let deliv = std::mem::take(&mut self.deliv);
                        let r = self.model.on_connect(conn, user, mode, &deliv);
                        self.deliv = deliv;
                        r?;
                    }
                    ServerEvent::Request(request) => {
                        if self.cfg.check_e2e_canary {
                            self.check_request_canary(&request)?;
                        }
                        self.server.hub.handle_request(now, conn, request.clone());
                        self.trace.note(self.now, Kind::Hub, id, 2);
                        self.hub_outputs()?;
                        let deliv = std::mem::take(&mut self.deliv);
                        let r = self.model.on_request(conn, &request, &deliv);
                        self.deliv = deliv;
                        r?;
                    }
                    ServerEvent::Closed { code, .. } => {
                        if broken_close(code) {
                            return Err(Violation::new(
                                "session broken",
                                format!("server closed u{user}'s connection {id} with {code:?}"),
                            ));
                        }
                        self.server.hub.handle_disconnect(now, conn);
                        self.trace.note(self.now, Kind::Hub, id, 3);
                        self.hub_outputs()?;
                        let deliv = std::mem::take(&mut self.deliv);
                        let r = self.model.on_disconnect(conn, &deliv);
                        self.deliv = deliv;
                        r?;
                    }
                }
                self.deliver()?;
                work.append(&mut self.server.closing);
            }
        }
        Ok(())
    }

    /// Collects the hub's store ops (uncommitted until the disk commits) and deliveries.
    fn hub_outputs(&mut self) -> Checked {
        while let Some(op) = self.server.hub.poll_store_op() {
            if self.cfg.check_e2e_canary
                && let StoreOp::DmQueued(dm) = &op
                && self.canary_finder.find(&dm.body).is_some()
            {
                return Err(Violation::new(
                    "plaintext at the server",
                    format!(
                        "DM {} from {} stored with a readable body canary",
                        dm.msg_id, dm.from
                    ),
                ));
            }
            self.server.uncommitted.push(op);
        }
        self.deliv.clear();
        while let Some(d) = self.server.hub.poll_delivery() {
            self.deliv.push(d);
        }
        Ok(())
    }

    /// Encrypts this step's replies into their connections (sent after the next commit).
    fn deliver(&mut self) -> Checked {
        let now = Instant(self.now);
        let deliv = std::mem::take(&mut self.deliv);
        for (conn, reply) in &deliv {
            if let Some(sc) = self.server.conns.get_mut(&conn.0) {
                let was_closed = sc.conn.is_closed();
                sc.conn.send_reply(now, reply);
                self.server.touched.insert(conn.0);
                if !was_closed && sc.conn.is_closed() {
                    self.server.closing.push(conn.0);
                }
            }
        }
        self.deliv = deliv;
        self.deliv.clear();
        Ok(())
    }

    fn check_request_canary(&self, request: &Request) -> Checked {
        let body = match request {
            Request::RoomMessage { body, .. } | Request::SendDm { body, .. } => body,
            _ => return Ok(()),
        };
        if self.canary_finder.find(body).is_some() {
            return Err(Violation::new(
                "plaintext at the server",
                "the server decrypted a request whose body holds the plaintext canary \
                 (bodies are not end-to-end encrypted yet)",
            ));
        }
        Ok(())
    }

    /// After a server step: write out replies now, or after the pending commit.
    fn finish_server_step(&mut self) -> Checked {
        if !self.server.uncommitted.is_empty() && self.server.commit_at.is_none() {
            let at = add(self.now, self.knobs.fsync_us);
            self.server.commit_at = Some(at);
            let epoch = self.server.epoch;
            self.schedule(at, Ev::Commit { epoch });
        }
        if self.server.commit_at.is_none() {
            self.flush_server();
        }
        Ok(())
    }

    fn commit(&mut self) -> Checked {
        for op in self.server.uncommitted.drain(..) {
            MemoryStore::apply_to(&mut self.server.durable, &op);
        }
        self.stats.commits += 1;
        self.model.commit();
        self.server.commit_at = None;
        self.flush_server();
        Ok(())
    }

    /// Writes every touched connection's pending bytes; closes finished connections.
    fn flush_server(&mut self) {
        let touched = std::mem::take(&mut self.server.touched);
        for id in touched {
            let Some(sc) = self.server.conns.get_mut(&id) else {
                continue;
            };
            let out = sc.conn.pending_transmit();
            let data = if out.is_empty() {
                None
            } else {
                Some(out.to_vec())
            };
            if let Some(d) = &data {
                let n = d.len();
                sc.conn.advance_transmit(n);
            }
            let closed = sc.conn.is_closed();
            if closed {
                if let Some(sc) = self.server.conns.remove(&id) {
                    self.count_session(sc.conn.session().map(|s| s.stats()));
                }
                if let Some(p) = self.pipes.get_mut(&id) {
                    p.server_gone = true;
                }
            }
            if data.is_some() || closed {
                self.send(id, false, data.unwrap_or_default(), closed, false);
            }
            if !closed {
                self.arm_server_timer(id);
            }
        }
    }

    fn arm_server_timer(&mut self, id: u64) {
        let Some(sc) = self.server.conns.get_mut(&id) else {
            return;
        };
        let Some(t) = sc.conn.poll_timeout() else {
            return;
        };
        let t = t.0.max(self.now);
        if sc.timer_at.is_some_and(|s| s <= t) {
            // An earlier wake-up is queued; it re-arms for the later deadline.
            return;
        }
        sc.timer_at = Some(t);
        self.schedule(t, Ev::ServerTimer { conn: id });
    }

    fn server_crash(&mut self) {
        self.stats.server_crashes += 1;
        self.server.up = false;
        self.server.epoch += 1;
        self.server.uncommitted.clear();
        self.server.commit_at = None;
        self.server.touched.clear();
        self.server.closing.clear();
        let conns = std::mem::take(&mut self.server.conns);
        for (id, sc) in conns {
            self.count_session(sc.conn.session().map(|s| s.stats()));
            if let Some(p) = self.pipes.get_mut(&id) {
                p.server_gone = true;
            }
        }
        for p in self.pipes.values_mut() {
            p.server_gone = true;
        }
        self.model.crash();
        let down = self.faults.below(self.knobs.server_down_max_ms * 1000 + 1);
        let epoch = self.server.epoch;
        let at = add(self.now, down);
        self.trace.note_text(self.now, Kind::Fault, 0, || {
            format!("server crash, down {down} µs")
        });
        self.schedule(at, Ev::ServerUp { epoch });
    }

    fn server_up(&mut self) -> Checked {
        self.trace.note_text(
            self.now,
            Kind::ServerUp,
            u64::from(self.server.epoch),
            || "server restarts from its store".into(),
        );
        let mut hub = Hub::new(
            self.server.hub_config.clone(),
            split(self.cfg.seed, "hub") ^ u64::from(self.server.epoch),
        );
        hub.restore(self.server.durable.clone());
        self.server.hub = hub;
        self.server.up = true;
        for u in 0..self.users.len() {
            let held = self.server.hub.queued_for(&self.users[u].name);
            let expected = self.model.queue_len(u);
            self.stats.dms_restored += expected as u64;
            if held != expected {
                return Err(Violation::new(
                    "durable queue",
                    format!(
                        "after restart the hub holds {held} DMs for u{u}, {expected} were durable"
                    ),
                ));
            }
        }
        let resets: Vec<u64> = self
            .pipes
            .iter()
            .filter(|(_, p)| p.pending_rst && !p.client_gone)
            .map(|(id, _)| *id)
            .collect();
        for id in resets {
            if let Some(p) = self.pipes.get_mut(&id) {
                p.pending_rst = false;
            }
            self.send(id, false, Vec::new(), false, true);
        }
        Ok(())
    }

    // ----- client side --------------------------------------------------------------

    fn connect(&mut self, u: usize) -> Checked {
        let mut config = self.client_config.clone();
        config.suite = self.users[u].suite;
        config.mode = if self.users[u].registered {
            AuthMode::Login
        } else {
            AuthMode::Register
        };
        let now = self.client_now(u);
        let user = &self.users[u];
        let client = SimClient::new(
            now,
            config,
            self.provider,
            &user.identity,
            &user.name,
            &mut self.crypto,
        )
        .map_err(|e| Violation::new("client start", format!("u{u}: {e:?}")))?;
        let mut client = Box::new(client);
        client.set_last_dm_id(self.users[u].local_last_dm);
        let id = self.next_pipe;
        self.next_pipe += 1;
        let latency = self.net.range(
            self.knobs.latency_min_us,
            self.knobs.latency_max_us.max(self.knobs.latency_min_us),
        );
        self.pipes.insert(
            id,
            Pipe {
                user: u,
                latency,
                epoch: self.server.epoch,
                up: Dir::default(),
                down: Dir::default(),
                accepted: false,
                client_gone: false,
                server_gone: false,
                pending_rst: false,
            },
        );
        self.users[u].conn = Some(CConn {
            pipe: id,
            client,
            rx: Vec::new(),
            authed: false,
            rooms: BTreeMap::new(),
            pending: BTreeMap::new(),
            fired_at: None,
            hs_deadline: now + self.client_config.handshake_timeout,
        });
        self.after_client(u)
    }

    /// Feeds the client's buffered input, one frame at a time, checking every event.
    fn client_input(&mut self, u: usize, id: u64) -> Checked {
        let Some(c) = self.users[u].conn.as_mut() else {
            return Ok(());
        };
        let mut rx = std::mem::take(&mut c.rx);
        let mut pos = 0;
        let result = loop {
            let now = self.client_now(u);
            let Some(c) = self.users[u].conn.as_mut().filter(|c| c.pipe == id) else {
                break Ok(());
            };
            let input = c.client.handle_input(now, &mut rx[pos..]);
            let used = input.consumed;
            let r = match input.event {
                Some(ev) => self.client_event(u, id, ev),
                None => Ok(()),
            };
            pos += used;
            if r.is_err() {
                break r;
            }
            // Acks and pongs the client queued go out right away.
            self.flush_client(u);
            if used == 0 {
                break Ok(());
            }
        };
        rx.drain(..pos);
        if let Some(c) = self.users[u].conn.as_mut().filter(|c| c.pipe == id) {
            c.rx = rx;
        }
        result
    }

    fn flush_client(&mut self, u: usize) {
        let Some(c) = self.users[u].conn.as_mut() else {
            return;
        };
        let out = c.client.pending_transmit();
        if out.is_empty() {
            return;
        }
        let data = out.to_vec();
        let n = data.len();
        c.client.advance_transmit(n);
        let pipe = c.pipe;
        self.send(pipe, true, data, false, false);
    }

    /// After anything happened to a client: events, output, close, timer.
    fn after_client(&mut self, u: usize) -> Checked {
        loop {
            let Some(c) = self.users[u].conn.as_mut() else {
                return Ok(());
            };
            let id = c.pipe;
            let Some(ev) = c.client.poll_event() else {
                break;
            };
            self.client_event(u, id, ev)?;
        }
        self.flush_client(u);
        let closed = self.users[u]
            .conn
            .as_ref()
            .is_some_and(|c| c.client.close_code().is_some());
        if closed {
            self.teardown_client(u, true);
            return Ok(());
        }
        let Some(c) = self.users[u].conn.as_ref() else {
            return Ok(());
        };
        let (t, fired_at, hs_deadline, state) = (
            c.client.poll_timeout(),
            c.fired_at,
            c.hs_deadline,
            c.client.state(),
        );
        if let Some(t) = t {
            let mut g = self.global_for_client(u, t);
            if g <= self.now && fired_at == Some(self.now) {
                // handle_timeout just ran at this instant and the client still wants
                // to be woken now: any adapter trusting poll_timeout would spin.
                let handshake = matches!(
                    state,
                    ClientState::Handshaking | ClientState::Authenticating
                );
                if !(self.cfg.tolerate_busy_timers && handshake) {
                    return Err(Violation::new(
                        "busy timer",
                        format!(
                            "u{u}'s client ({state:?}) asks to be woken at {t:?}, but handle_timeout \
                             then changes nothing: an adapter trusting poll_timeout spins"
                        ),
                    ));
                }
                self.stats.busy_timer_workarounds += 1;
                g = self.global_for_client(u, hs_deadline);
            }
            if self.users[u].timer_at.is_none_or(|s| s > g) {
                self.users[u].timer_at = Some(g);
                self.schedule(g, Ev::ClientTimer { user: u as u32 });
            }
        }
        Ok(())
    }

    /// The client's connection is over: close the socket (FIN) if the process lives, and
    /// plan the reconnect.
    fn teardown_client(&mut self, u: usize, fin: bool) {
        let Some(c) = self.users[u].conn.take() else {
            return;
        };
        self.users[u].local_last_dm = c.client.last_dm_id();
        self.count_session(c.client.session().map(|s| s.stats()));
        self.model.forget_conn_notes(ConnId(c.pipe));
        self.users[u].timer_at = None;
        self.users[u].act_gen += 1;
        if let Some(p) = self.pipes.get_mut(&c.pipe) {
            p.client_gone = true;
        }
        if fin {
            self.send(c.pipe, true, Vec::new(), true, false);
        }
        self.reap(c.pipe);
        let spread = self.knobs.reconnect_ms * 1000;
        let delay = spread / 2 + self.work.below(spread + 1);
        let at = add(self.now, delay).max(self.users[u].away_until);
        self.users[u].connect_gen += 1;
        let generation = self.users[u].connect_gen;
        self.schedule(
            at,
            Ev::Connect {
                user: u as u32,
                generation,
            },
        );
    }

    fn client_event(&mut self, u: usize, id: u64, ev: ClientEvent<'_>) -> Checked {
        self.trace.note(self.now, Kind::Client, u as u64, id);
        match ev {
            ClientEvent::ServerIdentity { key } => {
                if key != self.server.ed_public {
                    return Err(Violation::new(
                        "server identity",
                        format!("u{u} saw another server key"),
                    ));
                }
            }
            ClientEvent::Authenticated { .. } => {
                self.stats.logins += 1;
                let user = &mut self.users[u];
                user.registered = true;
                let Some(c) = user.conn.as_mut() else {
                    return Ok(());
                };
                c.authed = true;
                // Back into the rooms it likes: after a restart everyone rushes back.
                let favorites: Vec<RoomId> = user
                    .favorites
                    .iter()
                    .copied()
                    .take(self.knobs.rooms_per_client)
                    .collect();
                let now = self.client_now(u);
                for room in favorites {
                    if let Some(c) = self.users[u].conn.as_mut()
                        && let Ok(req) = c.client.join_room(now, room)
                    {
                        c.pending.insert(req, Pending::Join(room));
                    }
                }
                self.schedule_act(u);
            }
            ClientEvent::Message(msg) => self.client_message(u, id, msg)?,
            ClientEvent::Closed { code, .. } => {
                if broken_close(code) {
                    return Err(Violation::new(
                        "session broken",
                        format!("u{u}'s connection {id} closed with {code:?}"),
                    ));
                }
                match code {
                    ErrorCode::UserNotFound if self.users[u].registered => {
                        return Err(Violation::new(
                            "accounts",
                            format!(
                                "u{u} was told it registered, then its login was refused as unknown"
                            ),
                        ));
                    }
                    ErrorCode::UserExists => self.users[u].registered = true,
                    _ => {}
                }
                self.stats.disconnects += 1;
            }
        }
        if let Some(c) = self.users[u].conn.as_ref() {
            self.users[u].local_last_dm = c.client.last_dm_id();
        }
        Ok(())
    }

    fn client_message(&mut self, u: usize, id: u64, msg: ServerMsg<'_>) -> Checked {
        let cap = self.model.capacity();
        match msg {
            ServerMsg::RoomJoined {
                req, room, members, ..
            } => {
                let Some(note) = self.model.take_join_note(ConnId(id), room) else {
                    return Err(Violation::new(
                        "rooms",
                        format!("u{u} saw a join of {room:?} the hub never sent"),
                    ));
                };
                if members.len() > cap {
                    return Err(Violation::new(
                        "room cap",
                        format!(
                            "u{u} joined {room:?} with {} members (cap {cap})",
                            members.len()
                        ),
                    ));
                }
                let user = &mut self.users[u];
                if !user.favorites.contains(&room) {
                    user.favorites.push(room);
                }
                if let Some(c) = user.conn.as_mut() {
                    c.pending.remove(&req);
                    c.rooms.insert(
                        room,
                        RoomView {
                            inc: note.inc,
                            next_seq: note.first_seq,
                            members: members.len(),
                        },
                    );
                }
                self.stats.joins += 1;
            }
            ServerMsg::RoomLeft { req, room } => {
                if let Some(c) = self.users[u].conn.as_mut() {
                    if let Some(Pending::Leave(asked)) = c.pending.remove(&req)
                        && asked != room
                    {
                        return Err(Violation::new(
                            "replies",
                            format!("u{u} asked to leave {asked:?}, was told it left {room:?}"),
                        ));
                    }
                    if c.rooms.remove(&room).is_none() {
                        return Err(Violation::new(
                            "rooms",
                            format!("u{u} left {room:?} it was not in"),
                        ));
                    }
                }
            }
            ServerMsg::MemberJoined { room, name } | ServerMsg::MemberLeft { room, name } => {
                let joined = matches!(msg, ServerMsg::MemberJoined { .. });
                let Some(view) = self.users[u]
                    .conn
                    .as_mut()
                    .and_then(|c| c.rooms.get_mut(&room))
                else {
                    return Err(Violation::new(
                        "delivery to non-member",
                        format!("u{u} told about {name} in {room:?}, a room it is not in"),
                    ));
                };
                if joined {
                    view.members += 1;
                    if view.members > cap {
                        return Err(Violation::new(
                            "room cap",
                            format!("u{u} sees {} members in {room:?} (cap {cap})", view.members),
                        ));
                    }
                } else {
                    view.members = view.members.saturating_sub(1);
                }
            }
            ServerMsg::RoomMessage {
                room,
                seq,
                from,
                body,
                ..
            } => {
                let Some(view) = self.users[u]
                    .conn
                    .as_mut()
                    .and_then(|c| c.rooms.get_mut(&room))
                else {
                    return Err(Violation::new(
                        "delivery to non-member",
                        format!("u{u} received {room:?}#{seq} while not a member"),
                    ));
                };
                if seq != view.next_seq {
                    return Err(Violation::new(
                        "room order",
                        format!(
                            "u{u} received {room:?}#{seq}, expected #{} (gap, repeat or reorder)",
                            view.next_seq
                        ),
                    ));
                }
                view.next_seq += 1;
                let inc = view.inc;
                let agreed = self
                    .model
                    .room_message(inc, seq)
                    .is_some_and(|(sender, b)| **self.model.name(*sender) == *from && **b == *body);
                if !agreed {
                    return Err(Violation::new(
                        "room agreement",
                        format!("u{u}'s {room:?}#{seq} differs from what the hub stamped"),
                    ));
                }
                self.stats.room_deliveries += 1;
            }
            ServerMsg::IncomingDm {
                msg_id, from, body, ..
            } => {
                let Some(dm) = self.model.dms.get_mut(&msg_id) else {
                    return Err(Violation::new(
                        "dm integrity",
                        format!("u{u} shown DM {msg_id} the hub never accepted durably"),
                    ));
                };
                let sender_ok = user_of_name(from) == Some(dm.from);
                if dm.to != u || !sender_ok || *dm.body != *body {
                    return Err(Violation::new(
                        "dm integrity",
                        format!("u{u} shown a DM {msg_id} that is not the one sent"),
                    ));
                }
                dm.shown = true;
                let user = &mut self.users[u];
                if let Some(epoch) = user.shown.get(&msg_id) {
                    if *epoch == user.amnesia {
                        return Err(Violation::new(
                            "no duplicates",
                            format!("u{u} shown DM {msg_id} twice"),
                        ));
                    }
                    self.stats.dms_reshown_after_state_loss += 1;
                }
                if msg_id <= user.last_shown {
                    return Err(Violation::new(
                        "dm order",
                        format!("u{u} shown DM {msg_id} after DM {}", user.last_shown),
                    ));
                }
                user.last_shown = msg_id;
                user.shown.insert(msg_id, user.amnesia);
                self.stats.dm_deliveries += 1;
            }
            ServerMsg::MessageAck {
                req,
                msg_id,
                status,
            } => {
                let pending = self.users[u]
                    .conn
                    .as_mut()
                    .and_then(|c| c.pending.remove(&req));
                if let Some(Pending::Dm(to)) = pending
                    && status != AckStatus::Failed
                {
                    let Some(dm) = self.model.dms.get(&msg_id) else {
                        return Err(Violation::new(
                            "dm ack",
                            format!("u{u} acked DM {msg_id} the model lost"),
                        ));
                    };
                    if dm.from != u || dm.to != to {
                        return Err(Violation::new(
                            "dm ack",
                            format!("u{u}'s ack {msg_id} names another DM"),
                        ));
                    }
                    self.model.promise(msg_id);
                    self.stats.dms_acked += 1;
                }
            }
            ServerMsg::Error { req, code, .. } => {
                if matches!(code, ErrorCode::InvalidFormat | ErrorCode::NotAuthenticated) {
                    return Err(Violation::new(
                        "requests",
                        format!("u{u}'s request {req} refused with {code:?}"),
                    ));
                }
                if code == ErrorCode::RoomFull {
                    self.stats.joins_refused_full += 1;
                }
                let pending = self.users[u]
                    .conn
                    .as_mut()
                    .and_then(|c| c.pending.remove(&req));
                if let Some(Pending::Join(room)) = pending {
                    self.users[u].favorites.retain(|r| *r != room);
                }
            }
            _ => {}
        }
        Ok(())
    }

    // ----- workload -----------------------------------------------------------------

    fn schedule_act(&mut self, u: usize) {
        if self.phase != Phase::Safety {
            return;
        }
        let mean = self.knobs.think_ms as f64 * 1000.0;
        let at = add(self.now, self.work.exp(mean) as u64 + 1);
        self.users[u].act_gen += 1;
        let generation = self.users[u].act_gen;
        self.schedule(
            at,
            Ev::Act {
                user: u as u32,
                generation,
            },
        );
    }

    fn make_body(&mut self, u: usize, kind: u8) {
        self.users[u].counter += 1;
        let pad = self.work.below(48) as usize;
        self.body.clear();
        self.body.extend_from_slice(&self.canary);
        self.body.push(kind);
        self.body.extend_from_slice(&(u as u32).to_le_bytes());
        self.body
            .extend_from_slice(&self.users[u].counter.to_le_bytes());
        self.body.extend(std::iter::repeat_n(b'.', pad));
    }

    fn act(&mut self, u: usize) -> Checked {
        let authed = self.users[u].conn.as_ref().is_some_and(|c| c.authed);
        if !authed {
            return Ok(());
        }
        let k = &self.knobs;
        let weights = [
            k.w_create,
            k.w_join,
            k.w_leave,
            k.w_room_msg,
            k.w_dm,
            k.w_status,
            k.w_list,
            k.w_logout,
            k.w_key_update,
        ];
        let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
        let mut pick = self.work.below(total.max(1));
        let mut kind = 3;
        for (i, w) in weights.iter().enumerate() {
            if pick < u64::from(*w) {
                kind = i;
                break;
            }
            pick -= u64::from(*w);
        }
        let in_rooms: Vec<RoomId> = self.users[u]
            .conn
            .as_ref()
            .map(|c| c.rooms.keys().copied().collect())
            .unwrap_or_default();
        // Fall back to a room post, a join or a DM when the action does not apply.
        let kind = loop {
            kind = match kind {
                0 if in_rooms.len() >= self.knobs.rooms_per_client.max(1) => 3,
                1 if self.model.directory_len() == 0 => 0,
                2 if in_rooms.is_empty() => 4,
                3 if in_rooms.is_empty() => 1,
                other => break other,
            };
        };
        let result = self.do_action(u, kind, &in_rooms);
        match result {
            Ok(()) | Err(ClientError::SendQueueFull { .. }) => {}
            Err(ClientError::Closed) | Err(ClientError::NotReady) => {}
            Err(e) => return Err(Violation::new("client command", format!("u{u}: {e}"))),
        }
        self.schedule_act(u);
        self.after_client(u)
    }

    fn do_action(&mut self, u: usize, kind: usize, in_rooms: &[RoomId]) -> Result<(), ClientError> {
        let now = self.client_now(u);
        match kind {
            0 => {
                let title = format!("room of u{u}");
                if let Some(c) = self.users[u].conn.as_mut() {
                    let req = c.client.create_room(now, &title)?;
                    c.pending.insert(req, Pending::Create);
                }
            }
            1 => {
                let rank = self.work.skewed(self.model.directory_len());
                let Some(room) = self.model.directory_entry(rank) else {
                    return Ok(());
                };
                if let Some(c) = self.users[u].conn.as_mut() {
                    let asked = c
                        .pending
                        .values()
                        .any(|p| matches!(p, Pending::Join(r) if *r == room));
                    if !c.rooms.contains_key(&room) && !asked {
                        let req = c.client.join_room(now, room)?;
                        c.pending.insert(req, Pending::Join(room));
                    }
                }
            }
            2 => {
                let room = in_rooms[self.work.index(in_rooms.len())];
                self.users[u].favorites.retain(|r| *r != room);
                if let Some(c) = self.users[u].conn.as_mut() {
                    let req = c.client.leave_room(now, room)?;
                    c.pending.insert(req, Pending::Leave(room));
                }
            }
            3 => {
                let room = in_rooms[self.work.index(in_rooms.len())];
                self.make_body(u, b'R');
                let body = std::mem::take(&mut self.body);
                let r = match self.users[u].conn.as_mut() {
                    Some(c) => c.client.send_room(now, room, &body).map(|_| ()),
                    None => Ok(()),
                };
                self.body = body;
                r?;
                self.stats.room_posts += 1;
            }
            4 => {
                let mut to = self.work.index(self.users.len());
                if to == u && self.users.len() > 1 {
                    to = (to + 1) % self.users.len();
                }
                self.make_body(u, b'D');
                let body = std::mem::take(&mut self.body);
                let name = self.users[to].name.clone();
                let r = match self.users[u].conn.as_mut() {
                    Some(c) => c.client.send_dm(now, &name, &body).map(|req| {
                        c.pending.insert(req, Pending::Dm(to));
                    }),
                    None => Ok(()),
                };
                self.body = body;
                r?;
                self.stats.dms_sent += 1;
            }
            5 => {
                let status = if self.work.chance(0.5) {
                    Status::Away
                } else {
                    Status::Online
                };
                if let Some(c) = self.users[u].conn.as_mut() {
                    c.client.set_status(now, status)?;
                }
            }
            6 => {
                let rooms = self.work.chance(0.5);
                if let Some(c) = self.users[u].conn.as_mut() {
                    if rooms {
                        c.client.list_rooms(now)?;
                    } else {
                        c.client.list_users(now)?;
                    }
                }
            }
            7 => {
                let away = self.work.exp(self.knobs.offline_ms as f64 * 1000.0) as u64;
                self.users[u].away_until = add(self.now, away);
                self.stats.logouts += 1;
                if let Some(c) = self.users[u].conn.as_mut() {
                    c.client.logout(now)?;
                }
            }
            _ => {
                if let Some(c) = self.users[u].conn.as_mut() {
                    c.client.request_key_update();
                }
            }
        }
        Ok(())
    }

    // ----- faults -------------------------------------------------------------------

    fn fault_rates(&self) -> [f64; 5] {
        let n = self.users.len() as f64;
        let k = &self.knobs;
        [
            k.stall_rate * n / 60.0,
            k.reset_rate * n / 60.0,
            k.partition_rate / 60.0,
            k.client_crash_rate * n / 60.0,
            k.server_crash_rate / 60.0,
        ]
    }

    fn schedule_fault(&mut self) {
        if self.phase != Phase::Safety {
            return;
        }
        let total: f64 = self.fault_rates().iter().sum();
        if total <= 0.0 {
            return;
        }
        let gap = self.faults.exp(1e6 / total) as u64 + 1;
        self.schedule(add(self.now, gap), Ev::Fault);
    }

    /// A random user with a live client connection.
    fn connected_user(&mut self) -> Option<usize> {
        for _ in 0..16 {
            let u = self.faults.index(self.users.len());
            if self.users[u].conn.is_some() {
                return Some(u);
            }
        }
        None
    }

    fn fault(&mut self) -> Checked {
        if self.phase != Phase::Safety {
            return Ok(());
        }
        let rates = self.fault_rates();
        let total: f64 = rates.iter().sum();
        let mut x = self.faults.unit() * total;
        let mut class = 0;
        for (i, r) in rates.iter().enumerate() {
            if x < *r {
                class = i;
                break;
            }
            x -= r;
        }
        self.trace.note(self.now, Kind::Fault, class as u64, 0);
        match class {
            0 => {
                if let Some(u) = self.connected_user() {
                    let pipe = self.users[u].conn.as_ref().map_or(0, |c| c.pipe);
                    let up = self.faults.chance(0.5);
                    let len = self
                        .faults
                        .range(100_000, self.knobs.stall_max_ms.max(100) * 1000);
                    let until = add(self.now, len);
                    if let Some(p) = self.pipes.get_mut(&pipe) {
                        let dir = if up { &mut p.up } else { &mut p.down };
                        dir.stalled_until = dir.stalled_until.max(until);
                        self.stats.stalls += 1;
                    }
                }
            }
            1 => {
                if let Some(u) = self.connected_user() {
                    let pipe = self.users[u].conn.as_ref().map_or(0, |c| c.pipe);
                    self.stats.resets += 1;
                    self.trace.note_text(self.now, Kind::Fault, u as u64, || {
                        format!("reset of u{u}'s connection {pipe}")
                    });
                    if let Some(p) = self.pipes.get_mut(&pipe) {
                        p.up.segs.clear();
                        p.down.segs.clear();
                    }
                    if let Some(c) = self.users[u].conn.as_mut() {
                        c.client.handle_eof();
                    }
                    self.after_client(u)?;
                    if let Some(sc) = self.server.conns.get_mut(&pipe) {
                        sc.conn.handle_eof();
                        self.server.touched.insert(pipe);
                        self.drain_server(pipe)?;
                        self.finish_server_step()?;
                    }
                }
            }
            2 => {
                self.stats.partitions += 1;
                let len = self
                    .faults
                    .range(500_000, self.knobs.partition_max_ms.max(500) * 1000);
                let until = add(self.now, len);
                let shape = self.faults.below(10);
                let (count, dirs): (usize, &[usize]) = match shape {
                    0..=4 => (1, &[0, 1]),
                    5..=7 => (
                        self.faults
                            .range(2, self.knobs.partition_group_max.max(2) as u64)
                            as usize,
                        &[0, 1],
                    ),
                    8 => (1, &[0]),
                    _ => (1, &[1]),
                };
                let first = self.faults.index(self.users.len());
                for i in 0..count.min(self.users.len()) {
                    let u = (first + i * 7919) % self.users.len();
                    for &d in dirs {
                        self.users[u].cut_until[d] = self.users[u].cut_until[d].max(until);
                    }
                }
                self.trace
                    .note_text(self.now, Kind::Fault, first as u64, || {
                        format!(
                            "partition of {count} client(s) from u{first}, dirs {dirs:?}, {len} µs"
                        )
                    });
            }
            3 => {
                if let Some(u) = self.connected_user() {
                    self.stats.client_crashes += 1;
                    let keep = self.faults.chance(self.knobs.keep_state_prob);
                    // A process crash closes the socket (FIN); a power cut leaves it half-open.
                    let fin = self.faults.chance(0.5);
                    self.trace.note_text(self.now, Kind::Fault, u as u64, || {
                        format!("client u{u} crashes, keeps state: {keep}, socket closed: {fin}")
                    });
                    self.teardown_client(u, fin);
                    if !keep {
                        self.users[u].local_last_dm = 0;
                        self.users[u].last_shown = 0;
                        self.users[u].amnesia += 1;
                    }
                }
            }
            _ => {
                if self.server.up {
                    self.server_crash();
                }
            }
        }
        self.schedule_fault();
        Ok(())
    }

    // ----- phases -------------------------------------------------------------------

    fn start_liveness(&mut self) -> Checked {
        self.phase = Phase::Liveness;
        self.knobs.faults_off();
        self.trace.note_text(self.now, Kind::Phase, 1, || {
            "liveness: faults off, network healed, everyone back".into()
        });
        self.liveness_deadline = add(self.now, self.cfg.liveness_secs.saturating_mul(1_000_000));
        self.stats.safety_end_us = self.now;
        for u in 0..self.users.len() {
            self.users[u].cut_until = [0, 0];
            self.users[u].away_until = 0;
            if self.users[u].conn.is_none() {
                self.users[u].connect_gen += 1;
                let generation = self.users[u].connect_gen;
                let at = add(self.now, self.work.below(1_000_000));
                self.schedule(
                    at,
                    Ev::Connect {
                        user: u as u32,
                        generation,
                    },
                );
            }
        }
        let ids: Vec<u64> = self.pipes.keys().copied().collect();
        for id in ids {
            if let Some(p) = self.pipes.get_mut(&id) {
                p.up.stalled_until = 0;
                p.down.stalled_until = 0;
            }
            self.schedule_dir(id, true);
            self.schedule_dir(id, false);
        }
        if !self.server.up {
            self.server_up()?;
        }
        self.schedule(add(self.now, CHECK_EVERY), Ev::Check);
        Ok(())
    }

    /// The first reason the world has not converged yet, if any.
    fn unconverged(&self) -> Option<String> {
        if !self.server.up || self.server.commit_at.is_some() {
            return Some("the server has uncommitted or unsent work".into());
        }
        for (u, user) in self.users.iter().enumerate() {
            let Some(c) = user.conn.as_ref().filter(|c| c.authed) else {
                return Some(format!("u{u} is not logged in"));
            };
            if self.model.conn_of(u) != Some(ConnId(c.pipe)) {
                return Some(format!("u{u}'s connection {} is not the hub's", c.pipe));
            }
            if self.model.queue_len(u) != 0 || self.server.hub.queued_for(&user.name) != 0 {
                return Some(format!(
                    "u{u} still has {} queued DMs (model {})",
                    self.server.hub.queued_for(&user.name),
                    self.model.queue_len(u)
                ));
            }
            let mine: BTreeSet<RoomId> = c.rooms.keys().copied().collect();
            if mine != *self.model.rooms_of(u) {
                return Some(format!(
                    "u{u} thinks it is in {mine:?}, the hub says {:?}",
                    self.model.rooms_of(u)
                ));
            }
            for (room, view) in &c.rooms {
                if let Some(r) = self.model.rooms.get(room)
                    && (view.next_seq != r.next_seq || view.members != r.members.len())
                {
                    return Some(format!(
                        "u{u} has {room:?} up to #{} with {} members; the room is at #{} with {}",
                        view.next_seq - 1,
                        view.members,
                        r.next_seq - 1,
                        r.members.len()
                    ));
                }
            }
            if !c.pending.is_empty() {
                return Some(format!("u{u} awaits {} replies", c.pending.len()));
            }
        }
        for (id, dm) in &self.model.dms {
            if dm.promised && !dm.shown {
                return Some(format!(
                    "DM {id} from u{} to u{} was acked but never shown",
                    dm.from, dm.to
                ));
            }
        }
        None
    }

    fn check_convergence(&mut self) -> Checked {
        self.trace.note(self.now, Kind::Check, 0, 0);
        match self.unconverged() {
            None => {
                self.stats.converged_us = self.now.saturating_sub(self.stats.safety_end_us);
                self.phase = Phase::Done;
                Ok(())
            }
            Some(why) if self.now >= self.liveness_deadline => Err(Violation::new(
                "liveness",
                format!(
                    "not converged {} s after healing: {why}",
                    self.cfg.liveness_secs
                ),
            )),
            Some(_) => {
                self.schedule(add(self.now, CHECK_EVERY), Ev::Check);
                Ok(())
            }
        }
    }

    // ----- statistics ---------------------------------------------------------------

    fn count_session(&mut self, stats: Option<cove_core::session::SessionStats>) {
        if let Some(s) = stats {
            self.stats.key_updates += s.key_updates_sent;
        }
    }

    fn collect_session_stats(&mut self) {
        let mut total = 0;
        for sc in self.server.conns.values() {
            total += sc.conn.session().map_or(0, |s| s.stats().key_updates_sent);
        }
        for user in &self.users {
            if let Some(c) = user.conn.as_ref() {
                total += c.client.session().map_or(0, |s| s.stats().key_updates_sent);
            }
        }
        self.stats.key_updates += total;
        self.stats.room_messages = self.model.room_messages;
    }
}
