//! The adapter around the connection under test: the client side, the driver, the store,
//! and the checks.

use std::sync::Arc;

use cove_core::crypto::{RUST_CRYPTO, TAG_LEN};
use cove_core::handshake::{ACK_MAX_LEN, ClientHandshake, SYN_ACK_LEN, SYN_LEN};
use cove_core::hub::{Hub, HubConfig, Reply, Request};
use cove_core::server::{
    Driver, DriverConfig, ListScratch, ServerConfig, ServerConnection, ServerEvent, encode_reply,
};
use cove_core::session::Session;
use cove_core::store::{MemoryStore, Store};
use cove_core::time::Duration;
use cove_core::wire::{
    Alert, AuthMode, DEFAULT_MAX_FRAME, ErrorCode, FrameType, HEADER_LEN, MAX_TEXT_LEN, RoomId,
    ServerMsg, decode_frame, encode_header,
};
use cove_core::{Instant, wire};

use super::{
    CONN, ConnInput, ConnOp, ConnSetup, MAX_PENDING_EVENTS, NAMES, PEER, PeerOp, server_config,
};
use crate::arb::decode;
use crate::handshake::CLIENT_NAME;
use crate::util::{T0, client_identity, rng, server_identity, suite};

struct Harness {
    now: Instant,
    config: Arc<ServerConfig>,
    conn: ServerConnection,
    driver: Driver,
    store: MemoryStore,
    scratch: ListScratch,
    /// Client → server bytes not yet consumed.
    wire: Vec<u8>,
    /// Server → client bytes read but not yet parsed.
    inbox: Vec<u8>,
    session: Option<Session>,
    /// The server's output ended (an alert, or a `Close` record).
    server_done: bool,
    closed_events: usize,
    /// How the connection closed: its code, whether the peer did it, and whether the
    /// handshake had finished.
    closed_how: Option<(ErrorCode, bool, bool)>,
    /// The handshake finished (the connection said `Authenticate`).
    established: bool,
    /// The code of the alert or `Close` the server sent, if any.
    told: Option<ErrorCode>,
    /// Rate-limited requests forwarded to the hub.
    limited_requests: u64,
    rooms: Vec<RoomId>,
    dms: Vec<u64>,
}

impl Harness {
    fn new(setup: &ConnSetup) -> Harness {
        let config = Arc::new(server_config(setup));
        let conn = ServerConnection::new(
            T0,
            config.clone(),
            &RUST_CRYPTO,
            server_identity(),
            &mut rng(11),
        );
        let hub_config = HubConfig {
            room_capacity: 3,
            max_rooms: 8,
            max_rooms_per_user: 4,
            max_queue_per_user: 8,
            dm_window: 4,
            max_list_entries: 8,
            ..HubConfig::default()
        };
        let mut h = Harness {
            now: T0,
            config,
            conn,
            driver: Driver::new(Hub::new(hub_config, 5), DriverConfig::default()),
            store: MemoryStore::new(),
            scratch: ListScratch::default(),
            wire: Vec::new(),
            inbox: Vec::new(),
            session: None,
            server_done: false,
            closed_events: 0,
            closed_how: None,
            established: false,
            told: None,
            limited_requests: 0,
            rooms: Vec::new(),
            dms: Vec::new(),
        };
        // The peer registers and opens a room the client can find.
        let login = ServerEvent::Authenticate {
            name: NAMES[1].into(),
            key: [0xb0; 32],
            mode: AuthMode::Register,
            max_frame: cove_core::wire::DEFAULT_MAX_FRAME,
        };
        h.driver.handle_event(T0, PEER, login);
        h.peer(&PeerOp::CreateRoom);
        h.settle_hub();
        h
    }

    /// Runs the honest handshake: SYN, SYN-ACK (read back by the client), ACK.
    fn handshake(&mut self, setup: &ConnSetup) {
        let mode = if setup.login {
            AuthMode::Login
        } else {
            AuthMode::Register
        };
        let mut hs = ClientHandshake::new(
            &RUST_CRYPTO,
            client_identity(),
            suite(setup.chacha),
            mode,
            CLIENT_NAME,
            &mut rng(12),
        )
        .expect("valid name");
        let mut syn = [0u8; SYN_LEN];
        let n = hs.write_syn(&mut syn).expect("SYN");
        self.push_frame(FrameType::Syn, &syn[..n]);
        self.deliver(0);
        let out = self.conn.pending_transmit().to_vec();
        self.conn.advance_transmit(out.len());
        let (frame, used) = decode_frame(&out, DEFAULT_MAX_FRAME)
            .expect("server output is framed")
            .expect("SYN-ACK is whole");
        assert_eq!(
            frame.typ,
            FrameType::SynAck,
            "server did not answer the SYN"
        );
        assert_eq!(frame.payload.len(), SYN_ACK_LEN);
        assert_eq!(used, out.len(), "server wrote more than the SYN-ACK");
        let hello = hs.read_syn_ack(frame.payload).expect("server's SYN-ACK");
        assert_eq!(hello.ed25519, server_identity().public().ed25519);
        let mut ack = [0u8; ACK_MAX_LEN];
        let (n, session) = hs.write_ack(&mut ack).expect("ACK");
        self.session = Some(session);
        self.push_frame(FrameType::Ack, &ack[..n]);
        self.deliver(0);
        assert!(self.conn.is_established() || self.conn.is_closed());
        self.read(0);
    }

    fn push_frame(&mut self, typ: FrameType, payload: &[u8]) {
        self.wire
            .extend_from_slice(&encode_header(typ, payload.len() as u32));
        self.wire.extend_from_slice(payload);
    }

    /// Seals `plain` with the client's session onto the wire.
    fn seal(&mut self, plain: &[u8]) {
        let now = self.now;
        let Some(session) = self.session.as_mut() else {
            return;
        };
        if plain.first() == Some(&wire::MSG_KEY_UPDATE) {
            session.request_key_update();
            return;
        }
        let mut out = vec![0u8; plain.len() + Session::seal_max_overhead()];
        if let Ok(n) = session.seal_record(now, plain, &mut out) {
            self.wire.extend_from_slice(&out[..n]);
        }
    }

    /// Hands up to `max` wire bytes (0 = all) to the server, routing what comes out.
    /// One call to `handle_input` may take many frames; the events they make must stay
    /// within the connection's cap.
    fn deliver(&mut self, max: usize) {
        loop {
            let limit = if max == 0 {
                self.wire.len()
            } else {
                max.min(self.wire.len())
            };
            let before = self.conn.is_closed();
            let used = self.conn.handle_input(self.now, &mut self.wire[..limit]);
            assert!(used <= limit, "consumed more than given");
            if before {
                assert_eq!(used, 0, "a closed connection consumed input");
            }
            self.wire.drain(..used);
            let n = self.drain_events();
            assert!(
                n <= MAX_PENDING_EVENTS,
                "{n} events piled up past the connection's cap"
            );
            if used == 0 || max != 0 {
                return;
            }
        }
    }

    /// Routes the connection's events to the driver and its output back; returns how many
    /// events were waiting (routing can add a `Closed`, which is not counted).
    fn drain_events(&mut self) -> usize {
        let waiting: Vec<ServerEvent> = std::iter::from_fn(|| self.conn.poll_event()).collect();
        let n = waiting.len();
        let mut events = std::collections::VecDeque::from(waiting);
        while let Some(ev) = events.pop_front().or_else(|| self.conn.poll_event()) {
            assert_eq!(self.closed_events, 0, "an event after Closed: {ev:?}");
            match &ev {
                ServerEvent::Authenticate { name, key, .. } => {
                    self.established = true;
                    assert_eq!(&**name, CLIENT_NAME);
                    assert_eq!(*key, client_identity().public().ed25519);
                }
                ServerEvent::Request(r) => {
                    if !matches!(r, Request::AckDm { .. }) {
                        self.limited_requests += 1;
                    }
                }
                ServerEvent::Closed { code, by_peer } => {
                    self.closed_events += 1;
                    self.closed_how = Some((*code, *by_peer, self.established));
                    assert!(self.conn.is_closed());
                    assert_eq!(self.conn.close_code(), Some(*code));
                }
            }
            self.driver.handle_event(self.now, CONN, ev);
            self.settle_hub();
        }
        self.check();
        n
    }

    /// Makes each batch of store ops durable at once, then hands the released replies to
    /// the connection.
    fn settle_hub(&mut self) {
        while let Some(batch) = self.driver.poll_batch() {
            self.store.apply(&batch.ops).expect("memory store");
            self.driver
                .handle_durable(batch.id)
                .expect("the batch just handed out is in flight");
        }
        while let Some((id, reply)) = self.driver.poll_reply() {
            let mut plain = Vec::new();
            encode_reply(&reply, &mut self.scratch, &mut plain)
                .expect("the hub built a reply that does not encode");
            assert!(
                plain.len() + TAG_LEN <= DEFAULT_MAX_FRAME as usize,
                "the hub built a {}-byte reply: its record exceeds a client's frame",
                plain.len()
            );
            if id == CONN {
                self.conn.handle_reply(self.now, &reply);
            } else {
                assert_eq!(id, PEER, "delivery to an unknown connection");
                if let Reply::RoomJoined { room, .. } = reply
                    && !self.rooms.contains(&room)
                {
                    self.rooms.push(room);
                }
            }
        }
    }

    fn peer(&mut self, op: &PeerOp) {
        let now = self.now;
        let request = match op {
            PeerOp::Dm(b) => Request::SendDm {
                req: 1,
                to: CLIENT_NAME.into(),
                body: b.0.as_slice().into(),
            },
            PeerOp::CreateRoom => Request::CreateRoom {
                req: 2,
                title: "lobby".into(),
                private: false,
            },
            PeerOp::Join(r) => Request::JoinRoom {
                req: 3,
                room: r.resolve(&self.rooms),
            },
            PeerOp::Leave(r) => Request::LeaveRoom {
                req: 4,
                room: r.resolve(&self.rooms),
            },
            PeerOp::Say(r, b) => Request::RoomMessage {
                req: 5,
                room: r.resolve(&self.rooms),
                body: b.0.as_slice().into(),
            },
        };
        // The peer's requests come from the wire too, so they obey its limits.
        if let Request::SendDm { body, .. } | Request::RoomMessage { body, .. } = &request
            && body.len() > usize::from(u16::MAX)
        {
            return;
        }
        self.driver
            .handle_event(now, PEER, ServerEvent::Request(request));
        self.settle_hub();
        self.check();
    }

    /// The client reads up to `max` bytes (0 = all) of the server's output and checks it.
    fn read(&mut self, max: usize) {
        let pending = self.conn.pending_transmit();
        let n = if max == 0 {
            pending.len()
        } else {
            max.min(pending.len())
        };
        self.inbox.extend_from_slice(&pending[..n]);
        self.conn.advance_transmit(n);
        loop {
            // The client's real limit: a bigger frame would make it close.
            let (typ, used) = match decode_frame(&self.inbox, DEFAULT_MAX_FRAME) {
                Ok(Some((f, used))) => (f.typ, used),
                Ok(None) => break,
                Err(e) => panic!("server wrote a bad frame header: {e:?}"),
            };
            assert!(!self.server_done, "server wrote after closing");
            let mut frame: Vec<u8> = self.inbox.drain(..used).collect();
            let (header, payload) = frame.split_at_mut(HEADER_LEN);
            match typ {
                FrameType::Alert => {
                    let alert = Alert::decode(payload).expect("server wrote a bad alert");
                    assert!(alert.text.len() <= MAX_TEXT_LEN);
                    self.server_done = true;
                    self.told = Some(alert.code);
                }
                FrameType::Record => {
                    let session = self
                        .session
                        .as_mut()
                        .expect("a record before the handshake finished");
                    let header: [u8; HEADER_LEN] = header.try_into().expect("5 bytes");
                    let plain = session
                        .open_record(self.now, &header, payload)
                        .expect("a server record does not open with the client's keys");
                    let msg = ServerMsg::decode(plain).expect("server sent a bad message");
                    match msg {
                        ServerMsg::Close { code, .. } => {
                            self.server_done = true;
                            self.told = Some(code);
                        }
                        ServerMsg::RoomJoined { room, .. } if !self.rooms.contains(&room) => {
                            self.rooms.push(room)
                        }
                        ServerMsg::RoomList { rooms, .. } => {
                            for e in rooms.iter() {
                                if !self.rooms.contains(&e.room) {
                                    self.rooms.push(e.room);
                                }
                            }
                        }
                        ServerMsg::IncomingDm { msg_id, .. } => self.dms.push(msg_id),
                        _ => {}
                    }
                }
                FrameType::SynAck => assert!(
                    self.session.is_none() && !self.conn.is_established(),
                    "server wrote a SYN-ACK after the handshake"
                ),
                other => panic!("server wrote a {other:?} frame"),
            }
        }
    }

    fn advance(&mut self, n: u16) {
        self.now = self.now + Duration::from_millis(250 * u64::from(n));
        match self.conn.poll_timeout() {
            Some(t) if t <= self.now => self.conn.handle_timeout(self.now),
            Some(_) => {}
            None => assert!(self.conn.is_closed(), "an open connection has no timer"),
        }
        self.drain_events();
    }

    fn check(&mut self) {
        // The transmit queue: the configured bound, plus the handshake's and an alert's
        // frames, which are written before the bound applies.
        let slack = HEADER_LEN + SYN_ACK_LEN + HEADER_LEN + 3 + MAX_TEXT_LEN;
        let pending = self.conn.pending_transmit().len();
        assert!(
            pending <= self.config.send_queue_bytes + slack,
            "transmit queue of {pending} bytes exceeds its bound {}",
            self.config.send_queue_bytes
        );
        if self.conn.is_closed() {
            assert!(self.conn.poll_timeout().is_none());
            assert!(self.conn.close_code().is_some());
        }
        // The token bucket: a full burst, then `rate_per_sec` per second.
        let secs = self.now.saturating_since(T0).micros().div_ceil(1_000_000);
        let allowed =
            u64::from(self.config.rate_burst.max(1)) + u64::from(self.config.rate_per_sec) * secs;
        assert!(
            self.limited_requests <= allowed,
            "{} requests passed a limit of {allowed}",
            self.limited_requests
        );
        let hub = self.driver.hub();
        let cap = hub.config().room_capacity;
        for room in &self.rooms {
            if let Some(members) = hub.room_members(*room) {
                assert!(members.count() <= cap, "room {room} over capacity");
            }
        }
    }

    fn apply(&mut self, op: &ConnOp) {
        match op {
            ConnOp::Send(spec) => {
                if let Some(plain) = spec.encode(&self.rooms, &self.dms) {
                    self.seal(&plain);
                    self.deliver(0);
                }
            }
            ConnOp::Plain(b) => {
                self.seal(&b.0);
                self.deliver(0);
            }
            ConnOp::KeyUpdate => {
                if let Some(s) = self.session.as_mut() {
                    s.request_key_update();
                }
            }
            ConnOp::Raw(b) => {
                self.wire.extend_from_slice(&b.0);
                self.deliver(0);
            }
            ConnOp::Flip { at, bit } => {
                if !self.wire.is_empty() {
                    let i = usize::from(*at) % self.wire.len();
                    self.wire[i] ^= 1 << (bit % 8);
                }
            }
            ConnOp::Deliver(max) => self.deliver(usize::from(*max)),
            ConnOp::Read(n) => self.read(usize::from(*n)),
            ConnOp::Advance(n) => self.advance(*n),
            ConnOp::Peer(p) => self.peer(p),
            ConnOp::Eof => {
                self.conn.handle_eof(self.now);
                self.drain_events();
            }
        }
        self.check();
    }
}

/// A server connection after a valid handshake, fed fuzzed records and bytes.
pub fn server_connection(data: &[u8]) {
    let Some(input) = decode::<ConnInput>(data) else {
        return;
    };
    let mut h = Harness::new(&input.setup);
    if !input.setup.no_handshake {
        h.handshake(&input.setup);
    }
    for op in &input.ops {
        h.apply(op);
    }
    h.deliver(0);
    h.read(0);
    if h.conn.is_closed() {
        assert_eq!(h.closed_events, 1, "a closed connection must say so once");
        // A close the server decided before the handshake finished is told to the client
        // in a cleartext alert with the same code (after it, with a `Close` record, unless
        // the session or the send queue cannot carry one).
        if let Some((code, false, false)) = h.closed_how {
            assert_eq!(h.told, Some(code), "handshake failure without its alert");
        }
    } else {
        assert_eq!(h.closed_events, 0);
    }
}
