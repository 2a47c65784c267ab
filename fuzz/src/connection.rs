//! A `ServerConnection` wired to a real `Hub`, fed by a fuzzed client.
//!
//! The harness completes a real handshake (unless the input says not to), then applies a
//! sequence of operations: messages and raw plaintexts sealed with the client's own
//! session keys (so they pass the AEAD and reach the message parser and the hub), raw or
//! corrupted bytes, partial deliveries, timers, and a second user acting through the hub.
//! Everything the server writes is read back by the client side and must be valid.
//!
//! Invariants checked after every step: no panic; the transmit queue stays within its
//! configured bound; the pending events stay within the connection's own cap; exactly one
//! `Closed` event, after which the connection is silent; the rate limit holds; every byte
//! the server sends is a valid frame, every record opens with the client's keys and parses;
//! and no room exceeds its capacity.

use std::sync::Arc;

use arbitrary::Arbitrary;
use cove_core::crypto::{RUST_CRYPTO, SuiteSet};
use cove_core::handshake::{ACK_MAX_LEN, ClientHandshake, SYN_ACK_LEN, SYN_LEN};
use cove_core::hub::{ConnId, Hub, HubConfig, Reply, Request};
use cove_core::server::{ListScratch, ServerConfig, ServerConnection, ServerEvent, encode_reply};
use cove_core::session::{Session, SessionConfig};
use cove_core::store::{MemoryStore, Store};
use cove_core::time::Duration;
use cove_core::wire::{
    Alert, AuthMode, ClientMsg, ErrorCode, FrameType, HEADER_LEN, MAX_TEXT_LEN, RoomId, ServerMsg,
    Status, decode_frame, encode_header,
};
use cove_core::{Instant, wire};

use crate::arb::{ArbWriter, Bytes, ToArb, decode};
use crate::handshake::CLIENT_NAME;
use crate::util::{T0, client_identity, rng, server_identity, suite};

/// Names the selectors pick from: the fuzzing client, the peer, and a stranger.
pub const NAMES: [&str; 3] = [CLIENT_NAME, "bob", "carol"];

/// Most events a connection holds before it stops reading (its `MAX_PENDING_EVENTS`).
const MAX_PENDING_EVENTS: usize = 64;
/// The fuzzing client's connection.
const CONN: ConnId = ConnId(1);
/// The peer's connection (it talks to the hub directly).
const PEER: ConnId = ConnId(2);

/// A user name: one of [`NAMES`] or any bytes.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum NameSel {
    /// `NAMES[i % 3]`.
    Known(u8),
    /// Lossy UTF-8 of the bytes (may well be invalid on the wire).
    Raw(Bytes),
}

impl NameSel {
    /// The name.
    pub fn resolve(&self) -> String {
        match self {
            NameSel::Known(i) => NAMES[usize::from(*i) % NAMES.len()].to_owned(),
            NameSel::Raw(b) => String::from_utf8_lossy(&b.0).into_owned(),
        }
    }
}

impl ToArb for NameSel {
    fn write(&self, w: &mut ArbWriter) {
        match self {
            NameSel::Known(i) => {
                w.variant(0, 2).u8(*i);
            }
            NameSel::Raw(b) => {
                w.variant(1, 2);
                b.write(w);
            }
        }
    }
}

/// A room: one the client has heard of, or any six alphabet indices.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum RoomSel {
    /// The `i`-th room heard of (modulo how many); a fixed ID when none.
    Known(u8),
    /// `RoomId::from_indices`.
    Raw([u8; 6]),
}

impl RoomSel {
    /// The room ID, given the rooms heard of so far.
    pub fn resolve(&self, known: &[RoomId]) -> RoomId {
        match self {
            RoomSel::Known(i) if !known.is_empty() => known[usize::from(*i) % known.len()],
            RoomSel::Known(i) => RoomId::from_indices([*i; 6]),
            RoomSel::Raw(ix) => RoomId::from_indices(*ix),
        }
    }
}

impl ToArb for RoomSel {
    fn write(&self, w: &mut ArbWriter) {
        match self {
            RoomSel::Known(i) => {
                w.variant(0, 2).u8(*i);
            }
            RoomSel::Raw(ix) => {
                w.variant(1, 2);
                ix.write(w);
            }
        }
    }
}

/// A direct-message ID: one the client received, or any.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum MsgSel {
    /// The `i`-th ID received (modulo how many); 1 when none.
    Known(u8),
    /// Any ID.
    Raw(u64),
}

impl ToArb for MsgSel {
    fn write(&self, w: &mut ArbWriter) {
        match self {
            MsgSel::Known(i) => {
                w.variant(0, 2).u8(*i);
            }
            MsgSel::Raw(id) => {
                w.variant(1, 2).u64(*id);
            }
        }
    }
}

/// A client message, in owned form with selectors.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum ClientMsgSpec {
    GetPublicKey {
        req: u32,
        name: NameSel,
    },
    SendDm {
        req: u32,
        to: NameSel,
        body: Bytes,
    },
    FetchPending {
        req: u32,
    },
    SetStatus {
        req: u32,
        status: u8,
    },
    ListUsers {
        req: u32,
    },
    Logout,
    AckDm {
        msg: MsgSel,
    },
    CreateRoom {
        req: u32,
        title: Bytes,
    },
    JoinRoom {
        req: u32,
        room: RoomSel,
    },
    LeaveRoom {
        req: u32,
        room: RoomSel,
    },
    ListRooms {
        req: u32,
    },
    RoomMessage {
        req: u32,
        room: RoomSel,
        body: Bytes,
    },
    UploadPrekeys {
        req: u32,
        bundle: Bytes,
    },
    FetchPrekeys {
        req: u32,
        name: NameSel,
    },
    Ping {
        nonce: u64,
    },
    Pong {
        nonce: u64,
    },
    Close {
        code: u8,
        text: Bytes,
    },
}

const CLIENT_MSG_VARIANTS: u32 = 17;

impl ToArb for ClientMsgSpec {
    fn write(&self, w: &mut ArbWriter) {
        use ClientMsgSpec::*;
        let v = |w: &mut ArbWriter, i| {
            w.variant(i, CLIENT_MSG_VARIANTS);
        };
        match self {
            GetPublicKey { req, name } => {
                v(w, 0);
                req.write(w);
                name.write(w);
            }
            SendDm { req, to, body } => {
                v(w, 1);
                req.write(w);
                to.write(w);
                body.write(w);
            }
            FetchPending { req } => {
                v(w, 2);
                req.write(w);
            }
            SetStatus { req, status } => {
                v(w, 3);
                req.write(w);
                status.write(w);
            }
            ListUsers { req } => {
                v(w, 4);
                req.write(w);
            }
            Logout => v(w, 5),
            AckDm { msg } => {
                v(w, 6);
                msg.write(w);
            }
            CreateRoom { req, title } => {
                v(w, 7);
                req.write(w);
                title.write(w);
            }
            JoinRoom { req, room } => {
                v(w, 8);
                req.write(w);
                room.write(w);
            }
            LeaveRoom { req, room } => {
                v(w, 9);
                req.write(w);
                room.write(w);
            }
            ListRooms { req } => {
                v(w, 10);
                req.write(w);
            }
            RoomMessage { req, room, body } => {
                v(w, 11);
                req.write(w);
                room.write(w);
                body.write(w);
            }
            UploadPrekeys { req, bundle } => {
                v(w, 12);
                req.write(w);
                bundle.write(w);
            }
            FetchPrekeys { req, name } => {
                v(w, 13);
                req.write(w);
                name.write(w);
            }
            Ping { nonce } => {
                v(w, 14);
                nonce.write(w);
            }
            Pong { nonce } => {
                v(w, 15);
                nonce.write(w);
            }
            Close { code, text } => {
                v(w, 16);
                code.write(w);
                text.write(w);
            }
        }
    }
}

/// An error code from a byte (unknown bytes become `InvalidFormat`).
pub fn code_of(b: u8) -> ErrorCode {
    ErrorCode::from_u8(b).unwrap_or(ErrorCode::InvalidFormat)
}

/// A status from a byte.
pub fn status_of(b: u8) -> Status {
    Status::from_u8(b % 3).unwrap_or(Status::Online)
}

/// Lossy UTF-8 text from bytes.
pub fn text_of(b: &Bytes) -> String {
    String::from_utf8_lossy(&b.0).into_owned()
}

impl ClientMsgSpec {
    /// Encodes the message; `None` when it does not pass the encoder's checks.
    pub fn encode(&self, rooms: &[RoomId], dms: &[u64]) -> Option<Vec<u8>> {
        use ClientMsgSpec as S;
        let name;
        let text;
        let msg = match self {
            S::GetPublicKey { req, name: n } => {
                name = n.resolve();
                ClientMsg::GetPublicKey {
                    req: *req,
                    name: &name,
                }
            }
            S::SendDm { req, to, body } => {
                name = to.resolve();
                ClientMsg::SendDm {
                    req: *req,
                    to: &name,
                    body: &body.0,
                }
            }
            S::FetchPending { req } => ClientMsg::FetchPending { req: *req },
            S::SetStatus { req, status } => ClientMsg::SetStatus {
                req: *req,
                status: status_of(*status),
            },
            S::ListUsers { req } => ClientMsg::ListUsers { req: *req },
            S::Logout => ClientMsg::Logout,
            S::AckDm { msg } => ClientMsg::AckDm {
                msg_id: match msg {
                    MsgSel::Known(i) if !dms.is_empty() => dms[usize::from(*i) % dms.len()],
                    MsgSel::Known(_) => 1,
                    MsgSel::Raw(id) => *id,
                },
            },
            S::CreateRoom { req, title } => {
                text = text_of(title);
                ClientMsg::CreateRoom {
                    req: *req,
                    title: &text,
                }
            }
            S::JoinRoom { req, room } => ClientMsg::JoinRoom {
                req: *req,
                room: room.resolve(rooms),
            },
            S::LeaveRoom { req, room } => ClientMsg::LeaveRoom {
                req: *req,
                room: room.resolve(rooms),
            },
            S::ListRooms { req } => ClientMsg::ListRooms { req: *req },
            S::RoomMessage { req, room, body } => ClientMsg::RoomMessage {
                req: *req,
                room: room.resolve(rooms),
                body: &body.0,
            },
            S::UploadPrekeys { req, bundle } => ClientMsg::UploadPrekeys {
                req: *req,
                bundle: &bundle.0,
            },
            S::FetchPrekeys { req, name: n } => {
                name = n.resolve();
                ClientMsg::FetchPrekeys {
                    req: *req,
                    name: &name,
                }
            }
            S::Ping { nonce } => ClientMsg::Ping { nonce: *nonce },
            S::Pong { nonce } => ClientMsg::Pong { nonce: *nonce },
            S::Close { code, text: t } => {
                text = text_of(t);
                ClientMsg::Close {
                    code: code_of(*code),
                    text: &text,
                }
            }
        };
        let mut out = vec![0u8; msg.encoded_len()];
        let n = msg.encode(&mut out).ok()?;
        out.truncate(n);
        Some(out)
    }
}

/// What the peer (`bob`, logged in on the hub directly) does.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum PeerOp {
    /// Sends a direct message to the fuzzing client.
    Dm(Bytes),
    /// Creates a room.
    CreateRoom,
    /// Joins a room.
    Join(RoomSel),
    /// Leaves a room.
    Leave(RoomSel),
    /// Says something in a room.
    Say(RoomSel, Bytes),
}

impl ToArb for PeerOp {
    fn write(&self, w: &mut ArbWriter) {
        match self {
            PeerOp::Dm(b) => {
                w.variant(0, 5);
                b.write(w);
            }
            PeerOp::CreateRoom => {
                w.variant(1, 5);
            }
            PeerOp::Join(r) => {
                w.variant(2, 5);
                r.write(w);
            }
            PeerOp::Leave(r) => {
                w.variant(3, 5);
                r.write(w);
            }
            PeerOp::Say(r, b) => {
                w.variant(4, 5);
                r.write(w);
                b.write(w);
            }
        }
    }
}

/// One step of the server-connection target.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum ConnOp {
    /// The client seals a message with its session keys.
    Send(ClientMsgSpec),
    /// The client seals raw plaintext (one starting with the `KeyUpdate` type byte asks
    /// for a key update instead: only the session may send those).
    Plain(Bytes),
    /// The client rotates its key with its next record and asks the server to.
    KeyUpdate,
    /// Raw bytes on the wire.
    Raw(Bytes),
    /// Flips bit `bit % 8` of the undelivered byte `at` (modulo how many there are).
    Flip {
        /// Which byte.
        at: u16,
        /// Which bit.
        bit: u8,
    },
    /// Delivers at most this many bytes (0 = all) to the server in one call.
    Deliver(u16),
    /// The client reads at most `max` bytes (0 = all) of what the server wrote.
    Read(u16),
    /// The clock moves `n` × 250 ms and due timers fire.
    Advance(u16),
    /// The peer acts through the hub.
    Peer(PeerOp),
    /// The TCP connection drops.
    Eof,
}

impl ToArb for ConnOp {
    fn write(&self, w: &mut ArbWriter) {
        const N: u32 = 10;
        match self {
            ConnOp::Send(m) => {
                w.variant(0, N);
                m.write(w);
            }
            ConnOp::Plain(b) => {
                w.variant(1, N);
                b.write(w);
            }
            ConnOp::KeyUpdate => {
                w.variant(2, N);
            }
            ConnOp::Raw(b) => {
                w.variant(3, N);
                b.write(w);
            }
            ConnOp::Flip { at, bit } => {
                w.variant(4, N).u16(*at).u8(*bit);
            }
            ConnOp::Deliver(max) => {
                w.variant(5, N).u16(*max);
            }
            ConnOp::Read(n) => {
                w.variant(6, N).u16(*n);
            }
            ConnOp::Advance(n) => {
                w.variant(7, N).u16(*n);
            }
            ConnOp::Peer(p) => {
                w.variant(8, N);
                p.write(w);
            }
            ConnOp::Eof => {
                w.variant(9, N);
            }
        }
    }
}

/// How the connection is set up.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct ConnSetup {
    /// ChaCha20-Poly1305 instead of AES-256-GCM.
    pub chacha: bool,
    /// Leave the handshake to the operations (raw bytes to a fresh connection).
    pub no_handshake: bool,
    /// Log in (as a user that does not exist) instead of registering.
    pub login: bool,
    /// Server key rotation after this many records (0 = default).
    pub rotate_after: u8,
    /// Send queue of 256 + 64 × this many bytes (0 = default 4 MiB).
    pub send_queue: u8,
    /// Rate limit burst (0 = default).
    pub rate_burst: u8,
    /// Largest frame 256 + 64 × this (0 = default 64 KiB).
    pub max_frame: u8,
}

impl ToArb for ConnSetup {
    fn write(&self, w: &mut ArbWriter) {
        w.bool(self.chacha)
            .bool(self.no_handshake)
            .bool(self.login)
            .u8(self.rotate_after)
            .u8(self.send_queue)
            .u8(self.rate_burst)
            .u8(self.max_frame);
    }
}

/// The whole input of the server-connection target.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct ConnInput {
    /// Setup.
    pub setup: ConnSetup,
    /// Operations, in order.
    pub ops: Vec<ConnOp>,
}

impl ToArb for ConnInput {
    fn write(&self, w: &mut ArbWriter) {
        self.setup.write(w);
        self.ops.write(w);
    }
}

/// The server configuration a setup asks for.
pub fn server_config(s: &ConnSetup) -> ServerConfig {
    let mut c = ServerConfig::default();
    if s.rotate_after != 0 {
        c.session = SessionConfig {
            rotate_after_records: u64::from(s.rotate_after),
            ..SessionConfig::default()
        };
    }
    if s.send_queue != 0 {
        c.send_queue_bytes = 256 + 64 * usize::from(s.send_queue);
    }
    if s.rate_burst != 0 {
        c.rate_burst = u32::from(s.rate_burst);
        c.rate_per_sec = u32::from(s.rate_burst % 8);
        c.rate_strikes = u32::from(s.rate_burst % 5) + 1;
    }
    if s.max_frame != 0 {
        c.max_frame = 256 + 64 * u32::from(s.max_frame);
    }
    c.suites = SuiteSet::ALL;
    c
}

struct Harness {
    now: Instant,
    config: Arc<ServerConfig>,
    conn: ServerConnection,
    hub: Hub,
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
            hub: Hub::new(hub_config, 5),
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
        h.hub
            .handle_connect(T0, PEER, NAMES[1], [0xb0; 32], AuthMode::Register);
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
        let (frame, used) = decode_frame(&out, u32::MAX)
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

    /// Routes the connection's events to the hub and the hub's output back; returns how
    /// many events were waiting (routing can add a `Closed`, which is not counted).
    fn drain_events(&mut self) -> usize {
        let waiting: Vec<ServerEvent> = std::iter::from_fn(|| self.conn.poll_event()).collect();
        let n = waiting.len();
        let mut events = std::collections::VecDeque::from(waiting);
        while let Some(ev) = events.pop_front().or_else(|| self.conn.poll_event()) {
            assert_eq!(self.closed_events, 0, "an event after Closed: {ev:?}");
            match ev {
                ServerEvent::Authenticate { name, key, mode } => {
                    self.established = true;
                    assert_eq!(&*name, CLIENT_NAME);
                    assert_eq!(key, client_identity().public().ed25519);
                    self.hub.handle_connect(self.now, CONN, &name, key, mode);
                }
                ServerEvent::Request(r) => {
                    if !matches!(r, Request::AckDm { .. }) {
                        self.limited_requests += 1;
                    }
                    self.hub.handle_request(self.now, CONN, r);
                }
                ServerEvent::Closed { code, by_peer } => {
                    self.closed_events += 1;
                    self.closed_how = Some((code, by_peer, self.established));
                    assert!(self.conn.is_closed());
                    assert_eq!(self.conn.close_code(), Some(code));
                    self.hub.handle_disconnect(self.now, CONN);
                }
            }
            self.settle_hub();
        }
        self.check();
        n
    }

    /// Makes store ops durable, then hands deliveries to the connections.
    fn settle_hub(&mut self) {
        let ops: Vec<_> = std::iter::from_fn(|| self.hub.poll_store_op()).collect();
        self.store.apply(&ops).expect("memory store");
        while let Some((id, reply)) = self.hub.poll_delivery() {
            let mut plain = Vec::new();
            encode_reply(&reply, &mut self.scratch, &mut plain)
                .expect("the hub built a reply that does not encode");
            if id == CONN {
                self.conn.send_reply(self.now, &reply);
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
        self.hub.handle_request(now, PEER, request);
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
            let (typ, used) = match decode_frame(&self.inbox, u32::MAX) {
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
        let cap = self.hub.config().room_capacity;
        for room in &self.rooms {
            if let Some(members) = self.hub.room_members(*room) {
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
                self.conn.handle_eof();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_writer_round_trips() {
        let input = ConnInput {
            setup: ConnSetup {
                chacha: true,
                no_handshake: false,
                login: false,
                rotate_after: 3,
                send_queue: 9,
                rate_burst: 0,
                max_frame: 2,
            },
            ops: vec![
                ConnOp::Send(ClientMsgSpec::CreateRoom {
                    req: 7,
                    title: Bytes(b"hi".to_vec()),
                }),
                ConnOp::Send(ClientMsgSpec::AckDm {
                    msg: MsgSel::Raw(99),
                }),
                ConnOp::Send(ClientMsgSpec::Close {
                    code: 5,
                    text: Bytes(vec![]),
                }),
                ConnOp::Peer(PeerOp::Say(RoomSel::Raw([1; 6]), Bytes(vec![3]))),
                ConnOp::Flip { at: 3, bit: 4 },
                ConnOp::Deliver(9),
                ConnOp::Eof,
            ],
        };
        assert_eq!(decode::<ConnInput>(&input.to_arb_bytes()), Some(input));
    }
}
