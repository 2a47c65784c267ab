//! The server process: one `ServerConnection` per accepted connection and the core's
//! [`Driver`] (which owns the hub), driven exactly as the runtime adapters drive them:
//!
//! - every connection event goes to `driver.handle_event` (unless the driver is full:
//!   then the connection's input stays unread until a batch is durable — back-pressure);
//! - every batch `driver.poll_batch` hands out is written to the simulated disk, which
//!   reports it durable `fsync_us` later (`driver.handle_durable`); one is in flight at
//!   a time;
//! - every reply `driver.poll_outgoing` releases goes into its connection
//!   (`ServerConnection::handle_outgoing`: a room message is encoded once for all its
//!   recipients), and the connection's bytes go on the wire at once.
//!
//! A crash loses the batch in flight, everything not yet batched, and every connection;
//! the restarted hub restores from the disk. Each hub step is checked against the model
//! through the driver's step observation (`Driver::last_step`).

mod disk;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use cove_core::crypto::Identity;
use cove_core::hub::{ConnId, Hub, HubConfig, Request};
use cove_core::server::{Batch, Driver, DriverConfig, ServerConfig, ServerConnection, ServerEvent};
use cove_core::store::Records;
use cove_core::time::Instant;
use cove_core::wire::AuthMode;

use super::net::Segment;
use super::secure::is_secure;
use super::{Event, Sim};
use crate::check;
use crate::model::Checked;
use crate::rng::split;
use crate::trace::Kind;

/// The server's side of one connection.
pub(super) struct ServerConn {
    pub(super) conn: ServerConnection,
    /// The user whose client opened the connection.
    pub(super) user: usize,
    /// Received bytes the connection has not consumed yet.
    pub(super) rx: Vec<u8>,
    /// The time a `ServerTimer` event is queued for, if any.
    pub(super) timer_at: Option<u64>,
}

/// The server process and its disk.
pub(super) struct Server {
    pub(super) up: bool,
    /// Bumped by each crash: events of an earlier life are stale.
    pub(super) epoch: u32,
    /// The pipeline, which owns the hub.
    pub(super) driver: Driver,
    pub(super) conns: BTreeMap<u64, ServerConn>,
    /// What the disk holds.
    pub(super) durable: Records,
    /// The batch the disk is writing, and when it will be durable.
    pub(super) in_flight: Option<(Batch, u64)>,
    /// A server crash waits for the next batch handed out, to strike mid-commit.
    pub(super) crash_armed: bool,
    /// Connections with output to write after this step.
    pub(super) touched: BTreeSet<u64>,
    /// Connections whose input or events wait because the driver was full.
    pub(super) blocked: BTreeSet<u64>,
    /// The blocked connections in the order they were held back: each commit lets them
    /// read on in turn, as far as the driver has room, so none starves and a commit costs
    /// only the connections it wakes.
    pub(super) blocked_order: VecDeque<u64>,
    identity: Identity,
    /// The server's public Ed25519 key, which clients must see.
    pub(super) ed_public: [u8; 32],
    config: Arc<ServerConfig>,
    hub_config: HubConfig,
    driver_config: DriverConfig,
}

/// What the model needs of an event that moves into the driver.
enum StepKind {
    Connect(AuthMode),
    Request(Request),
    Disconnect,
}

impl Server {
    /// A running server with an empty disk.
    pub(super) fn new(
        identity: Identity,
        config: ServerConfig,
        hub_config: HubConfig,
        driver_config: DriverConfig,
        seed: u64,
    ) -> Server {
        let ed_public = identity.public().ed25519;
        let hub = Hub::new(hub_config.clone(), split(seed, "hub"));
        Server {
            up: true,
            epoch: 0,
            driver: Driver::new(hub, driver_config.clone()),
            conns: BTreeMap::new(),
            durable: Records::default(),
            in_flight: None,
            crash_armed: false,
            touched: BTreeSet::new(),
            blocked: BTreeSet::new(),
            blocked_order: VecDeque::new(),
            identity,
            ed_public,
            config: Arc::new(config),
            hub_config,
            driver_config,
        }
    }

    /// Whether the server is down or has work not yet durable or not yet sent.
    pub(super) fn busy(&self) -> bool {
        !self.up || self.in_flight.is_some() || !self.driver.is_drained()
    }
}

impl Sim {
    /// A server connection's timer event.
    pub(super) fn server_timer(&mut self, conn: u64) -> Checked {
        let Some(sc) = self.server.conns.get_mut(&conn) else {
            return Ok(());
        };
        if sc.timer_at != Some(self.now) {
            return Ok(());
        }
        sc.timer_at = None;
        if let Some(t) = sc.conn.poll_timeout().filter(|t| t.0 > self.now) {
            sc.timer_at = Some(t.0);
            self.schedule(t.0, Event::ServerTimer { conn });
            return Ok(());
        }
        sc.conn.handle_timeout(Instant(self.now));
        check::timers::server_timer_not_busy(conn, &sc.conn, self.now)?;
        self.trace.note(self.now, Kind::ServerTimer, conn, 0);
        self.server.touched.insert(conn);
        self.feed(conn)?;
        self.finish_server_step()
    }

    /// A segment reached the server's end of connection `id`.
    pub(super) fn arrive_at_server(&mut self, id: u64, seg: Segment) -> Checked {
        let (alive, accepted, server_gone, user) = match self.pipes.get(&id) {
            Some(p) => (
                p.epoch == self.server.epoch && self.server.up,
                p.accepted,
                p.server_gone,
                p.user,
            ),
            None => return Ok(()),
        };
        let now = Instant(self.now);
        if seg.rst {
            if let Some(sc) = self.server.conns.get_mut(&id) {
                sc.conn.handle_eof(now);
                self.server.touched.insert(id);
                self.feed(id)?;
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
                now,
                self.server.config.clone(),
                self.provider,
                &self.server.identity,
                &mut self.crypto,
            );
            self.server.conns.insert(
                id,
                ServerConn {
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
        if !seg.data.is_empty() {
            let Some(sc) = self.server.conns.get_mut(&id) else {
                return Ok(());
            };
            if sc.rx.is_empty() {
                sc.rx = seg.data;
            } else {
                sc.rx.extend_from_slice(&seg.data);
            }
            self.read_input(id)?;
        }
        if seg.fin
            && let Some(sc) = self.server.conns.get_mut(&id)
        {
            sc.conn.handle_eof(now);
            self.server.touched.insert(id);
            self.feed(id)?;
        }
        self.finish_server_step()
    }

    /// Lets connection `id` consume its buffered input, feeding its events to the driver,
    /// until the input runs out or the driver is full.
    fn read_input(&mut self, id: u64) -> Checked {
        let now = Instant(self.now);
        while !self.server.blocked.contains(&id) {
            let Some(sc) = self.server.conns.get_mut(&id) else {
                break;
            };
            let used = sc.conn.handle_input(now, &mut sc.rx);
            sc.rx.drain(..used);
            self.server.touched.insert(id);
            self.feed(id)?;
            if used == 0 {
                break;
            }
        }
        Ok(())
    }

    /// Hands connection `id`'s events to the driver, checking each hub step against the
    /// model, until none is left or the driver is full (then the connection waits).
    pub(super) fn feed(&mut self, id: u64) -> Checked {
        while !self.server.driver.is_full() {
            let Some(sc) = self.server.conns.get_mut(&id) else {
                return Ok(());
            };
            let Some(ev) = sc.conn.poll_event() else {
                return Ok(());
            };
            let user = sc.user;
            self.hub_step(id, user, ev)?;
        }
        if self.server.blocked.insert(id) {
            self.server.blocked_order.push_back(id);
            self.stats.held_back += 1;
        }
        Ok(())
    }

    /// One event of connection `id` (opened by `user`) through the driver, checked.
    fn hub_step(&mut self, id: u64, user: usize, ev: ServerEvent) -> Checked {
        let conn = ConnId(id);
        let secure = self.secure.is_secure(user);
        self.secure.canary.check_event(id, &ev)?;
        let (kind, code) = match &ev {
            ServerEvent::Authenticate {
                name, key, mode, ..
            } => {
                let own_key = &self.users[user].ed_public;
                check::handshake::authenticated_as_own_user(user, name, key, own_key)?;
                (StepKind::Connect(*mode), 1)
            }
            ServerEvent::Request(request) => {
                self.canary.check_request(request)?;
                (StepKind::Request(request.clone()), 2)
            }
            ServerEvent::Closed { code, .. } => {
                check::session::server_close(user, id, *code)?;
                (StepKind::Disconnect, 3)
            }
        };
        self.server.driver.handle_event(Instant(self.now), conn, ev);
        self.trace.note(self.now, Kind::Hub, id, code);
        self.check_step_ops()?;
        let step = self.server.driver.last_step();
        if secure {
            // Encrypted users' steps are not the plaintext model's: their rooms have
            // their own checkers.
            return Ok(());
        }
        if let StepKind::Request(Request::ListRooms { .. }) = &kind {
            self.model.foreign_public = self.secure.rooms.public();
        }
        let (replies, ops, loads) = (&step.replies, &step.ops, &step.loads);
        match kind {
            StepKind::Connect(mode) => self.model.on_connect(conn, user, mode, replies, ops, loads),
            StepKind::Request(request) => {
                self.model.on_request(conn, &request, replies, ops, loads)
            }
            StepKind::Disconnect => self.model.on_disconnect(conn, replies, ops, loads),
        }
    }

    /// The canaries look at the last step's store operations, and the encrypted users'
    /// rooms and epochs follow them.
    pub(super) fn check_step_ops(&mut self) -> Checked {
        let step = self.server.driver.last_step();
        let every = self.secure.every;
        for op in &step.ops {
            self.canary.check_store_op(op)?;
            self.secure.canary.check_store_op(op)?;
            self.secure.rooms.apply(op, |u| is_secure(u, every));
        }
        self.secure.epochs.step(&step.ops)
    }

    /// After a server step: hand a batch to the disk if one is ready, put released
    /// replies into their connections (feeding the closes they cause back to the driver),
    /// then write out every touched connection.
    pub(super) fn finish_server_step(&mut self) -> Checked {
        let now = Instant(self.now);
        loop {
            self.start_commit()?;
            let mut closed = Vec::new();
            while let Some((conn, out)) = self.server.driver.poll_outgoing() {
                self.secure.canary.check_reply(&out.reply)?;
                if let Some(sc) = self.server.conns.get_mut(&conn.0) {
                    let was_closed = sc.conn.is_closed();
                    sc.conn.handle_outgoing(now, &out);
                    self.server.touched.insert(conn.0);
                    if !was_closed && sc.conn.is_closed() {
                        closed.push(conn.0);
                    }
                }
            }
            if closed.is_empty() {
                break;
            }
            for id in closed {
                self.feed(id)?;
            }
        }
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
            // A connection whose `Closed` the driver has not heard yet stays until it has.
            let closed = sc.conn.is_closed() && !self.server.blocked.contains(&id);
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
        self.schedule(t, Event::ServerTimer { conn: id });
    }
}
