//! The users and their clients: each user has a name, a key, a skewed clock, the local
//! state its application keeps across restarts, and at most one live client connection.
//! Every client event goes through the checks in [`crate::check`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use cove_core::client::ClientEvent;
use cove_core::crypto::{CryptoProvider, Identity, Suite};
use cove_core::hub::ConnId;
use cove_core::time::Instant;
use cove_core::wire::{AuthMode, ErrorCode, RoomId, ServerMsg};
use rand_chacha::ChaCha20Rng;

use super::net::{Direction, Pipe, Segment};
use super::secure::{SecureUser, is_secure};
use super::sim_client::{SimClient, is_edge_user};
use super::{Event, Sim, add};
use crate::check;
use crate::knobs::Knobs;
use crate::model::{Checked, Violation};
use crate::rng::Prng;
use crate::trace::Kind;

/// A request a client sent and still awaits the answer to.
#[derive(Clone, Copy, Debug)]
pub(crate) enum PendingRequest {
    Create,
    Join(RoomId),
    Leave(RoomId),
    /// A DM to this user.
    Dm(usize),
    /// An invitation, a removal or a new title (answered `Ok` or an error).
    Admin,
    /// A history page.
    History,
}

/// What a client connection knows of one room it is in.
#[derive(Debug)]
pub(crate) struct RoomView {
    /// The room's incarnation in the model.
    pub(crate) inc: u64,
    pub(crate) members: usize,
}

/// The application's read marker of one room: part of its local state, saved before it
/// acknowledges, lost with it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RoomMark {
    /// The room's incarnation in the model.
    pub(crate) inc: u64,
    /// The highest sequence number shown.
    pub(crate) shown: u64,
    /// The next sequence number the application must be shown (past `shown + 1` after a
    /// gap).
    pub(crate) next: u64,
}

/// A user's live client connection.
pub(crate) struct ClientConn {
    /// The connection (pipe) ID, which is also the hub's `ConnId`.
    pub(crate) pipe: u64,
    pub(crate) client: SimClient,
    /// Received bytes the client has not consumed yet.
    pub(crate) rx: Vec<u8>,
    pub(crate) authed: bool,
    pub(crate) rooms: BTreeMap<RoomId, RoomView>,
    pub(crate) pending: BTreeMap<u32, PendingRequest>,
    /// History pages being received: their messages' sequence numbers, by request.
    pub(crate) history: BTreeMap<u32, Vec<u64>>,
    /// Room messages shown and not acknowledged yet (lazy acks): the highest per room.
    pub(crate) owed_acks: BTreeMap<RoomId, u64>,
    /// When (global time) the simulator last called `handle_timeout`.
    pub(crate) fired_at: Option<u64>,
}

/// One simulated user.
pub(crate) struct User {
    pub(crate) name: Arc<str>,
    pub(crate) identity: Identity,
    pub(crate) ed_public: [u8; 32],
    suite: Suite,
    pub(crate) registered: bool,
    /// The persisted "last DM shown" (the client's local state).
    pub(crate) local_last_dm: u64,
    /// Bumped when the client loses its local state: DMs shown before may be shown again.
    pub(crate) amnesia: u32,
    /// Every DM shown, with the `amnesia` it was shown in.
    pub(crate) shown: BTreeMap<u64, u32>,
    pub(crate) last_shown: u64,
    /// DMs shown whose ack could not be sent: they may be shown again.
    pub(crate) unacked: BTreeSet<u64>,
    /// The read marker per room (local state, like `local_last_dm`).
    pub(crate) marks: BTreeMap<RoomId, RoomMark>,
    /// The highest room message ever shown per room incarnation, across lost local
    /// states (to count what is shown again after a state loss).
    pub(crate) room_high: BTreeMap<u64, u64>,
    skew_offset: u64,
    skew_ppm: i64,
    pub(crate) conn: Option<ClientConn>,
    /// The time a `ClientTimer` event is queued for, if any.
    pub(crate) timer_at: Option<u64>,
    pub(crate) act_gen: u32,
    pub(crate) connect_gen: u32,
    /// Logged out until then.
    pub(crate) away_until: u64,
    /// Partitioned until then: `[up, down]`.
    pub(crate) cut_until: [u64; 2],
    /// Numbers the bodies it sends.
    pub(crate) counter: u64,
    /// An end-to-end encrypted user's application (its session and what it keeps).
    pub(crate) secure: Option<Box<SecureUser>>,
}

impl User {
    /// The simulated users `u0`, `u1`, …: keys from `crypto`, suite and clock from `work`.
    pub(super) fn generate(
        clients: usize,
        knobs: &Knobs,
        provider: &'static dyn CryptoProvider,
        crypto: &mut ChaCha20Rng,
        work: &mut Prng,
    ) -> Vec<User> {
        let mut users = Vec::with_capacity(clients);
        for i in 0..clients {
            let identity = Identity::generate_with(crypto, provider);
            let ed_public = identity.public().ed25519;
            // The draws stay in this order: it is part of what a seed means.
            let skew_ppm = if knobs.skew_ppm_max == 0 {
                0
            } else {
                work.range(0, 2 * knobs.skew_ppm_max) as i64 - knobs.skew_ppm_max as i64
            };
            let suite = if work.chance(0.5) {
                Suite::AesGcm
            } else {
                Suite::ChaChaPoly
            };
            let skew_offset = work.below(knobs.skew_offset_max_ms.saturating_mul(1000) + 1);
            users.push(User {
                name: Arc::from(format!("u{i}")),
                identity,
                ed_public,
                suite,
                registered: false,
                local_last_dm: 0,
                amnesia: 0,
                shown: BTreeMap::new(),
                last_shown: 0,
                unacked: BTreeSet::new(),
                marks: BTreeMap::new(),
                room_high: BTreeMap::new(),
                skew_offset,
                skew_ppm,
                conn: None,
                timer_at: None,
                act_gen: 0,
                connect_gen: 0,
                away_until: 0,
                cut_until: [0, 0],
                counter: 0,
                secure: is_secure(i, knobs.e2ee_every).then(Box::default),
            });
        }
        users
    }
}

impl Sim {
    // ----- clocks -------------------------------------------------------------------

    /// User `u`'s clock now.
    pub(super) fn client_now(&self, u: usize) -> Instant {
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

    // ----- events -------------------------------------------------------------------

    /// A client's timer event.
    pub(super) fn client_timer(&mut self, user: u32) -> Checked {
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
                self.schedule(g, Event::ClientTimer { user });
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

    /// A user's (re)connect event.
    pub(super) fn connect_due(&mut self, user: u32, generation: u32) -> Checked {
        let u = user as usize;
        if generation != self.users[u].connect_gen || self.users[u].conn.is_some() {
            return Ok(());
        }
        self.trace.note(self.now, Kind::Connect, u as u64, 0);
        self.connect(u)
    }

    /// Starts a client for user `u` on a new connection.
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
        let large = self.users[u].secure.is_some() || is_edge_user(u);
        let mut client = SimClient::new(
            large,
            now,
            config,
            self.provider,
            &user.identity,
            &user.name,
            &mut self.crypto,
        )
        .map_err(|e| Violation::new("client start", format!("u{u}: {e:?}")))?;
        client.set_last_dm_id(self.users[u].local_last_dm);
        // The application hands the client its read markers, so replays of what it has
        // shown are acknowledged again and not shown.
        for (room, mark) in &self.users[u].marks {
            client.set_room_cursor(*room, mark.shown);
        }
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
                up: Direction::default(),
                down: Direction::default(),
                accepted: false,
                client_gone: false,
                server_gone: false,
                pending_rst: false,
            },
        );
        self.users[u].conn = Some(ClientConn {
            pipe: id,
            client,
            rx: Vec::new(),
            authed: false,
            rooms: BTreeMap::new(),
            pending: BTreeMap::new(),
            history: BTreeMap::new(),
            owed_acks: BTreeMap::new(),
            fired_at: None,
        });
        self.secure_connect(u)?;
        self.after_client(u)
    }

    /// A segment reached the client's end of connection `id`.
    pub(super) fn arrive_at_client(&mut self, id: u64, seg: Segment) -> Checked {
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
        let now = self.client_now(u);
        if seg.rst {
            if let Some(c) = self.users[u].conn.as_mut() {
                c.client.handle_eof(now);
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
            c.client.handle_eof(now);
        }
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

    /// Writes out what the client queued.
    pub(super) fn flush_client(&mut self, u: usize) {
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
    pub(super) fn after_client(&mut self, u: usize) -> Checked {
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
        self.secure_settle(u)?;
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
        let (t, fired_at, state) = (c.client.poll_timeout(), c.fired_at, c.client.state());
        if let Some(t) = t {
            let g = self.global_for_client(u, t);
            if g <= self.now && fired_at == Some(self.now) {
                // handle_timeout just ran at this instant and the client still wants
                // to be woken now: any adapter trusting poll_timeout would spin.
                check::timers::busy_client_timer(u, state, t)?;
            }
            if self.users[u].timer_at.is_none_or(|s| s > g) {
                self.users[u].timer_at = Some(g);
                self.schedule(g, Event::ClientTimer { user: u as u32 });
            }
        }
        Ok(())
    }

    /// The client's connection is over: close the socket (FIN) if the process lives, and
    /// plan the reconnect.
    pub(super) fn teardown_client(&mut self, u: usize, fin: bool) {
        self.secure_teardown(u);
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
            Event::Connect {
                user: u as u32,
                generation,
            },
        );
    }

    /// The application has shown DM `msg_id` (its local state is saved with the ack):
    /// it acknowledges it. If the ack cannot be sent, the DM will be shown again.
    fn ack_shown_dm(&mut self, u: usize, msg_id: u64) {
        let now = self.client_now(u);
        let user = &mut self.users[u];
        let acked = user
            .conn
            .as_mut()
            .is_some_and(|c| c.client.ack_dm(now, msg_id).is_ok());
        if !acked {
            user.unacked.insert(msg_id);
        }
    }

    /// One event of user `u`'s client on connection `id`, checked.
    fn client_event(&mut self, u: usize, id: u64, ev: ClientEvent<'_>) -> Checked {
        self.trace.note(self.now, Kind::Client, u as u64, id);
        match ev {
            ClientEvent::LoggedIn { server_key, .. } => {
                check::handshake::server_identity(u, &server_key, &self.server.ed_public)?;
                if self.users[u].secure.is_some() {
                    // The plaintext model does not know encrypted users: the disk does.
                    let name = &self.users[u].name;
                    check::durability::account_on_disk(&self.server.durable, u, name)?;
                } else {
                    check::durability::logged_in(&self.model, u)?;
                }
                self.stats.logins += 1;
                let user = &mut self.users[u];
                user.registered = true;
                let Some(c) = user.conn.as_mut() else {
                    return Ok(());
                };
                // Its rooms come back by themselves: the hub announces each one.
                c.authed = true;
                self.schedule_act(u);
                self.secure_logged_in(u)?;
            }
            ClientEvent::Message(msg) if self.users[u].secure.is_some() => {
                self.secure_message(u, msg)?;
            }
            ClientEvent::Message(msg) => {
                enum Then {
                    Nothing,
                    AckDm(u64),
                    AckRoom(RoomId, u64),
                    Invited(RoomId),
                }
                let then = match msg {
                    ServerMsg::IncomingDm { msg_id, .. } => Then::AckDm(msg_id),
                    ServerMsg::RoomMessage { room, seq, .. } => Then::AckRoom(room, seq),
                    ServerMsg::RoomInvited { room, .. } => Then::Invited(room),
                    _ => Then::Nothing,
                };
                check::client_view::on_message(
                    &mut self.model,
                    &mut self.users[u],
                    &mut self.stats,
                    u,
                    id,
                    msg,
                )?;
                match then {
                    Then::Nothing => {}
                    Then::AckDm(msg_id) => self.ack_shown_dm(u, msg_id),
                    Then::AckRoom(room, seq) => self.ack_shown_room(u, room, seq),
                    Then::Invited(room) => {
                        self.stats.invitations += 1;
                        self.accept_invitation(u, room);
                    }
                }
            }
            ClientEvent::Closed { code, .. } => {
                check::session::client_close(u, id, code)?;
                check::client_view::on_close(u, code, self.users[u].registered)?;
                if code == ErrorCode::UserExists {
                    self.users[u].registered = true;
                }
                self.stats.disconnects += 1;
            }
        }
        if let Some(c) = self.users[u].conn.as_ref() {
            self.users[u].local_last_dm = c.client.last_dm_id();
        }
        Ok(())
    }
}
