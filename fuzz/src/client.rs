//! The client state machine fed fuzzed server messages.
//!
//! The harness plays the server: it answers the client's SYN with a real `ServerHandshake`
//! (unless the input says not to), keeps the server's session, and seals whatever the
//! input asks for — structured server messages, raw plaintexts, key updates — so that the
//! bytes pass the AEAD and reach the client's message handling. Raw and corrupted bytes,
//! partial deliveries, timers and the application's commands are mixed in.
//!
//! Invariants checked after every step: no panic; the transmit queue never exceeds its
//! size; every byte the client writes is a valid frame whose records open with the
//! server's keys and parse as client messages; each message event is exactly the message
//! the server sealed; one `Closed` event at most, after which nothing happens; at most one
//! `Authenticated`; direct messages are shown once, in increasing order; the room list
//! matches the joins and leaves the client was told of and never holds a room twice.

use arbitrary::Arbitrary;
use cove_core::Instant;
use cove_core::client::{Client, ClientConfig, ClientError, ClientEvent, ClientState, MAX_ROOMS};
use cove_core::crypto::{RUST_CRYPTO, SuiteSet};
use cove_core::handshake::{SYN_ACK_LEN, ServerHandshake};
use cove_core::session::{Session, SessionConfig};
use cove_core::time::Duration;
use cove_core::wire::{
    AckStatus, AuthMode, ClientMsg, FrameType, HEADER_LEN, NameListBuilder, RoomEntry, RoomId,
    RoomListBuilder, ServerMsg, UserListBuilder, decode_frame, encode_header,
};

use crate::arb::{ArbWriter, Bytes, ToArb, decode};
use crate::connection::{NameSel, RoomSel, code_of, status_of, text_of};
use crate::handshake::CLIENT_NAME;
use crate::util::{T0, client_identity, rng, server_identity, suite};

/// The client's transmit queue size in this target: small, so it fills.
pub const TX: usize = 2048;

/// A server message, in owned form with selectors.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum ServerMsgSpec {
    Auth {
        login: bool,
        ok: bool,
        code: u8,
        pending: u32,
    },
    PublicKey {
        req: u32,
        name: NameSel,
        key: Option<[u8; 32]>,
    },
    MessageAck {
        req: u32,
        msg_id: u64,
        status: u8,
    },
    IncomingDm {
        msg_id: u64,
        from: NameSel,
        timestamp: u64,
        body: Bytes,
    },
    UserList {
        req: u32,
        users: Vec<(NameSel, u8)>,
    },
    StatusUpdate {
        name: NameSel,
        status: u8,
    },
    Error {
        req: u32,
        code: u8,
        text: Bytes,
    },
    RoomJoined {
        req: u32,
        room: RoomSel,
        title: Bytes,
        members: Vec<NameSel>,
    },
    RoomLeft {
        req: u32,
        room: RoomSel,
    },
    RoomList {
        req: u32,
        rooms: Vec<(RoomSel, Bytes, u8, u8)>,
    },
    RoomMessage {
        room: RoomSel,
        seq: u64,
        from: NameSel,
        timestamp: u64,
        body: Bytes,
    },
    MemberJoined {
        room: RoomSel,
        name: NameSel,
    },
    MemberLeft {
        room: RoomSel,
        name: NameSel,
    },
    PrekeyBundle {
        req: u32,
        name: NameSel,
        bundle: Option<Bytes>,
    },
    Ok {
        req: u32,
    },
    PendingDone {
        req: u32,
        count: u32,
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

impl ToArb for ServerMsgSpec {
    fn write(&self, w: &mut ArbWriter) {
        use ServerMsgSpec as S;
        const N: u32 = 19;
        match self {
            S::Auth {
                login,
                ok,
                code,
                pending,
            } => {
                w.variant(0, N)
                    .bool(*login)
                    .bool(*ok)
                    .u8(*code)
                    .u32(*pending);
            }
            S::PublicKey { req, name, key } => {
                w.variant(1, N).u32(*req);
                name.write(w);
                w.bool(key.is_some());
                if let Some(k) = key {
                    k.write(w);
                }
            }
            S::MessageAck {
                req,
                msg_id,
                status,
            } => {
                w.variant(2, N).u32(*req).u64(*msg_id).u8(*status);
            }
            S::IncomingDm {
                msg_id,
                from,
                timestamp,
                body,
            } => {
                w.variant(3, N).u64(*msg_id);
                from.write(w);
                w.u64(*timestamp);
                body.write(w);
            }
            S::UserList { req, users } => {
                w.variant(4, N).u32(*req);
                w.vec(users, |w, (n, s)| {
                    n.write(w);
                    w.u8(*s);
                });
            }
            S::StatusUpdate { name, status } => {
                w.variant(5, N);
                name.write(w);
                w.u8(*status);
            }
            S::Error { req, code, text } => {
                w.variant(6, N).u32(*req).u8(*code);
                text.write(w);
            }
            S::RoomJoined {
                req,
                room,
                title,
                members,
            } => {
                w.variant(7, N).u32(*req);
                room.write(w);
                title.write(w);
                members.write(w);
            }
            S::RoomLeft { req, room } => {
                w.variant(8, N).u32(*req);
                room.write(w);
            }
            S::RoomList { req, rooms } => {
                w.variant(9, N).u32(*req);
                w.vec(rooms, |w, (r, t, m, c)| {
                    r.write(w);
                    t.write(w);
                    w.u8(*m).u8(*c);
                });
            }
            S::RoomMessage {
                room,
                seq,
                from,
                timestamp,
                body,
            } => {
                w.variant(10, N);
                room.write(w);
                w.u64(*seq);
                from.write(w);
                w.u64(*timestamp);
                body.write(w);
            }
            S::MemberJoined { room, name } => {
                w.variant(11, N);
                room.write(w);
                name.write(w);
            }
            S::MemberLeft { room, name } => {
                w.variant(12, N);
                room.write(w);
                name.write(w);
            }
            S::PrekeyBundle { req, name, bundle } => {
                w.variant(13, N).u32(*req);
                name.write(w);
                w.bool(bundle.is_some());
                if let Some(b) = bundle {
                    b.write(w);
                }
            }
            S::Ok { req } => {
                w.variant(14, N).u32(*req);
            }
            S::PendingDone { req, count } => {
                w.variant(15, N).u32(*req).u32(*count);
            }
            S::Ping { nonce } => {
                w.variant(16, N).u64(*nonce);
            }
            S::Pong { nonce } => {
                w.variant(17, N).u64(*nonce);
            }
            S::Close { code, text } => {
                w.variant(18, N).u8(*code);
                text.write(w);
            }
        }
    }
}

impl ServerMsgSpec {
    /// Encodes the message; `None` when it does not pass the encoder's checks.
    pub fn encode(&self, rooms: &[RoomId]) -> Option<Vec<u8>> {
        use ServerMsgSpec as S;
        let (n1, t1);
        let mut users = UserListBuilder::new();
        let mut names = NameListBuilder::new();
        let mut list = RoomListBuilder::new();
        let msg = match self {
            S::Auth {
                login,
                ok,
                code,
                pending,
            } => ServerMsg::AuthResponse {
                mode: if *login {
                    AuthMode::Login
                } else {
                    AuthMode::Register
                },
                result: if *ok {
                    Ok(*pending)
                } else {
                    Err(code_of(*code))
                },
            },
            S::PublicKey { req, name, key } => {
                n1 = name.resolve();
                ServerMsg::PublicKey {
                    req: *req,
                    name: &n1,
                    key: *key,
                }
            }
            S::MessageAck {
                req,
                msg_id,
                status,
            } => ServerMsg::MessageAck {
                req: *req,
                msg_id: *msg_id,
                status: AckStatus::from_u8(status % 3).unwrap_or(AckStatus::Failed),
            },
            S::IncomingDm {
                msg_id,
                from,
                timestamp,
                body,
            } => {
                n1 = from.resolve();
                ServerMsg::IncomingDm {
                    msg_id: *msg_id,
                    from: &n1,
                    timestamp: *timestamp,
                    body: &body.0,
                }
            }
            S::UserList { req, users: u } => {
                for (n, s) in u {
                    users.push(&n.resolve(), status_of(*s)).ok()?;
                }
                ServerMsg::UserList {
                    req: *req,
                    users: users.entries(),
                }
            }
            S::StatusUpdate { name, status } => {
                n1 = name.resolve();
                ServerMsg::StatusUpdate {
                    name: &n1,
                    status: status_of(*status),
                }
            }
            S::Error { req, code, text } => {
                t1 = text_of(text);
                ServerMsg::Error {
                    req: *req,
                    code: code_of(*code),
                    text: &t1,
                }
            }
            S::RoomJoined {
                req,
                room,
                title,
                members,
            } => {
                for m in members {
                    names.push(&m.resolve()).ok()?;
                }
                t1 = text_of(title);
                ServerMsg::RoomJoined {
                    req: *req,
                    room: room.resolve(rooms),
                    title: &t1,
                    members: names.entries(),
                }
            }
            S::RoomLeft { req, room } => ServerMsg::RoomLeft {
                req: *req,
                room: room.resolve(rooms),
            },
            S::RoomList { req, rooms: r } => {
                for (room, title, members, capacity) in r {
                    list.push(&RoomEntry {
                        room: room.resolve(rooms),
                        title: &text_of(title),
                        members: *members,
                        capacity: *capacity,
                    })
                    .ok()?;
                }
                ServerMsg::RoomList {
                    req: *req,
                    rooms: list.entries(),
                }
            }
            S::RoomMessage {
                room,
                seq,
                from,
                timestamp,
                body,
            } => {
                n1 = from.resolve();
                ServerMsg::RoomMessage {
                    room: room.resolve(rooms),
                    seq: *seq,
                    from: &n1,
                    timestamp: *timestamp,
                    body: &body.0,
                }
            }
            S::MemberJoined { room, name } => {
                n1 = name.resolve();
                ServerMsg::MemberJoined {
                    room: room.resolve(rooms),
                    name: &n1,
                }
            }
            S::MemberLeft { room, name } => {
                n1 = name.resolve();
                ServerMsg::MemberLeft {
                    room: room.resolve(rooms),
                    name: &n1,
                }
            }
            S::PrekeyBundle { req, name, bundle } => {
                n1 = name.resolve();
                ServerMsg::PrekeyBundle {
                    req: *req,
                    name: &n1,
                    bundle: bundle.as_ref().map(|b| b.0.as_slice()),
                }
            }
            S::Ok { req } => ServerMsg::Ok { req: *req },
            S::PendingDone { req, count } => ServerMsg::PendingDone {
                req: *req,
                count: *count,
            },
            S::Ping { nonce } => ServerMsg::Ping { nonce: *nonce },
            S::Pong { nonce } => ServerMsg::Pong { nonce: *nonce },
            S::Close { code, text } => {
                t1 = text_of(text);
                ServerMsg::Close {
                    code: code_of(*code),
                    text: &t1,
                }
            }
        };
        let mut out = vec![0u8; msg.encoded_len()];
        let n = msg.encode(&mut out).ok()?;
        out.truncate(n);
        Some(out)
    }
}

/// What the application asks of the client.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Command {
    CreateRoom(Bytes),
    JoinRoom(RoomSel),
    LeaveRoom(RoomSel),
    ListRooms,
    SendRoom(RoomSel, Bytes),
    SendDm(NameSel, Bytes),
    SetStatus(u8),
    ListUsers,
    GetPublicKey(NameSel),
    FetchPending,
    UploadPrekeys(Bytes),
    FetchPrekeys(NameSel),
    KeyUpdate,
    Logout,
    Close(u8),
}

impl ToArb for Command {
    fn write(&self, w: &mut ArbWriter) {
        const N: u32 = 15;
        match self {
            Command::CreateRoom(b) => {
                w.variant(0, N);
                b.write(w);
            }
            Command::JoinRoom(r) => {
                w.variant(1, N);
                r.write(w);
            }
            Command::LeaveRoom(r) => {
                w.variant(2, N);
                r.write(w);
            }
            Command::ListRooms => {
                w.variant(3, N);
            }
            Command::SendRoom(r, b) => {
                w.variant(4, N);
                r.write(w);
                b.write(w);
            }
            Command::SendDm(n, b) => {
                w.variant(5, N);
                n.write(w);
                b.write(w);
            }
            Command::SetStatus(s) => {
                w.variant(6, N).u8(*s);
            }
            Command::ListUsers => {
                w.variant(7, N);
            }
            Command::GetPublicKey(n) => {
                w.variant(8, N);
                n.write(w);
            }
            Command::FetchPending => {
                w.variant(9, N);
            }
            Command::UploadPrekeys(b) => {
                w.variant(10, N);
                b.write(w);
            }
            Command::FetchPrekeys(n) => {
                w.variant(11, N);
                n.write(w);
            }
            Command::KeyUpdate => {
                w.variant(12, N);
            }
            Command::Logout => {
                w.variant(13, N);
            }
            Command::Close(c) => {
                w.variant(14, N).u8(*c);
            }
        }
    }
}

/// One step of the client target.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum ClientOp {
    /// The server seals a message.
    Send(ServerMsgSpec),
    /// The server seals raw plaintext (one starting with the `KeyUpdate` type byte asks for
    /// a key update instead).
    Plain(Bytes),
    /// The server rotates its key with its next record and asks the client to.
    KeyUpdate,
    /// Raw bytes to the client.
    Raw(Bytes),
    /// Flips bit `bit % 8` of undelivered byte `at` (modulo how many there are).
    Flip {
        /// Which byte.
        at: u16,
        /// Which bit.
        bit: u8,
    },
    /// Delivers at most this many bytes (0 = all) to the client.
    Deliver(u16),
    /// The application calls a command.
    Command(Command),
    /// The server reads at most this many bytes (0 = all) of the client's output.
    Read(u16),
    /// The clock moves `n` × 250 ms and due timers fire.
    Advance(u16),
    /// The TCP connection drops.
    Eof,
}

impl ToArb for ClientOp {
    fn write(&self, w: &mut ArbWriter) {
        const N: u32 = 10;
        match self {
            ClientOp::Send(m) => {
                w.variant(0, N);
                m.write(w);
            }
            ClientOp::Plain(b) => {
                w.variant(1, N);
                b.write(w);
            }
            ClientOp::KeyUpdate => {
                w.variant(2, N);
            }
            ClientOp::Raw(b) => {
                w.variant(3, N);
                b.write(w);
            }
            ClientOp::Flip { at, bit } => {
                w.variant(4, N).u16(*at).u8(*bit);
            }
            ClientOp::Deliver(n) => {
                w.variant(5, N).u16(*n);
            }
            ClientOp::Command(c) => {
                w.variant(6, N);
                c.write(w);
            }
            ClientOp::Read(n) => {
                w.variant(7, N).u16(*n);
            }
            ClientOp::Advance(n) => {
                w.variant(8, N).u16(*n);
            }
            ClientOp::Eof => {
                w.variant(9, N);
            }
        }
    }
}

/// How the client is set up.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct ClientSetup {
    /// ChaCha20-Poly1305 instead of AES-256-GCM.
    pub chacha: bool,
    /// Leave the handshake to the operations (raw bytes to a client awaiting its SYN-ACK).
    pub no_handshake: bool,
    /// Pin a server key that is not the server's.
    pub pin_wrong_key: bool,
    /// Key rotation after this many records on both sides (0 = default).
    pub rotate_after: u8,
}

impl ToArb for ClientSetup {
    fn write(&self, w: &mut ArbWriter) {
        w.bool(self.chacha)
            .bool(self.no_handshake)
            .bool(self.pin_wrong_key)
            .u8(self.rotate_after);
    }
}

/// The whole input of the client target.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct ClientInput {
    /// Setup.
    pub setup: ClientSetup,
    /// Operations, in order.
    pub ops: Vec<ClientOp>,
}

impl ToArb for ClientInput {
    fn write(&self, w: &mut ArbWriter) {
        self.setup.write(w);
        self.ops.write(w);
    }
}

struct Harness {
    now: Instant,
    client: Client<TX>,
    /// The server's session, once the handshake is done.
    session: Option<Session>,
    /// Server → client bytes not yet delivered.
    wire: Vec<u8>,
    /// Client → server bytes read but not parsed.
    inbox: Vec<u8>,
    /// Plaintexts sealed and not yet seen by the client, in order (while untampered).
    sent: std::collections::VecDeque<Vec<u8>>,
    tampered: bool,
    /// The client's output ended (with its `Close`).
    client_done: bool,
    closed: bool,
    authenticated: bool,
    identity_seen: bool,
    last_dm: u64,
    rooms: Vec<RoomId>,
    /// Rooms heard of, for the selectors.
    known: Vec<RoomId>,
}

impl Harness {
    fn new(setup: &ClientSetup) -> Harness {
        let mut config = ClientConfig::new(suite(setup.chacha), AuthMode::Register);
        if setup.rotate_after != 0 {
            config.session = SessionConfig {
                rotate_after_records: u64::from(setup.rotate_after),
                ..SessionConfig::default()
            };
        }
        if setup.pin_wrong_key {
            config.server_key = Some([0x11; 32]);
        }
        let client = Client::new(
            T0,
            config,
            &RUST_CRYPTO,
            client_identity(),
            CLIENT_NAME,
            &mut rng(21),
        )
        .expect("client starts");
        assert_eq!(client.state(), ClientState::Handshaking);
        Harness {
            now: T0,
            client,
            session: None,
            wire: Vec::new(),
            inbox: Vec::new(),
            sent: Default::default(),
            tampered: false,
            client_done: false,
            closed: false,
            authenticated: false,
            identity_seen: false,
            last_dm: 0,
            rooms: Vec::new(),
            known: Vec::new(),
        }
    }

    /// Answers the client's SYN as a real server would and reads its ACK.
    fn handshake(&mut self, setup: &ClientSetup) {
        let mut server =
            ServerHandshake::new(&RUST_CRYPTO, server_identity(), SuiteSet::ALL, &mut rng(22));
        if setup.rotate_after != 0 {
            server.set_session_config(SessionConfig {
                rotate_after_records: u64::from(setup.rotate_after),
                ..SessionConfig::default()
            });
        }
        let syn = self.take_frame(FrameType::Syn);
        server.read_syn(&syn).expect("client's SYN");
        let mut syn_ack = [0u8; SYN_ACK_LEN];
        let n = server.write_syn_ack(&mut syn_ack).expect("SYN-ACK");
        self.wire
            .extend_from_slice(&encode_header(FrameType::SynAck, n as u32));
        self.wire.extend_from_slice(&syn_ack[..n]);
        self.deliver(0);
        if setup.pin_wrong_key {
            assert!(self.closed, "a wrong server key was accepted");
            return;
        }
        assert!(self.identity_seen);
        assert_eq!(self.client.state(), ClientState::Authenticating);
        let ack = self.take_frame(FrameType::Ack);
        let (hello, session) = server.read_ack(&ack).expect("client's ACK");
        assert_eq!(hello.name.as_str(), CLIENT_NAME);
        self.session = Some(session);
    }

    /// Takes one whole handshake frame of type `typ` from the client's output.
    fn take_frame(&mut self, typ: FrameType) -> Vec<u8> {
        let out = self.client.pending_transmit().to_vec();
        let (frame, used) = decode_frame(&out, u32::MAX)
            .expect("client output is framed")
            .expect("client wrote a whole frame");
        assert_eq!(frame.typ, typ);
        let payload = frame.payload.to_vec();
        self.client.advance_transmit(used);
        payload
    }

    /// Seals `plain` with the server's session onto the wire.
    fn seal(&mut self, plain: &[u8]) {
        let now = self.now;
        let Some(session) = self.session.as_mut() else {
            return;
        };
        if plain.first() == Some(&cove_core::wire::MSG_KEY_UPDATE) {
            session.request_key_update();
            return;
        }
        let mut out = vec![0u8; plain.len() + Session::seal_max_overhead()];
        if let Ok(n) = session.seal_record(now, plain, &mut out) {
            self.wire.extend_from_slice(&out[..n]);
            self.sent.push_back(plain.to_vec());
        }
    }

    /// Hands up to `max` bytes (0 = all) to the client, one frame per call.
    fn deliver(&mut self, max: usize) {
        let limit = if max == 0 {
            self.wire.len()
        } else {
            max.min(self.wire.len())
        };
        let mut pos = 0;
        loop {
            let was_closed = self.closed;
            let input = self
                .client
                .handle_input(self.now, &mut self.wire[pos..limit]);
            let used = input.consumed;
            assert!(used <= limit - pos);
            if was_closed {
                assert_eq!(used, 0, "a closed client consumed input");
                assert!(input.event.is_none(), "a closed client made an event");
            }
            let event = input.event.map(owned);
            if let Some(ev) = event {
                self.on_event(ev);
            }
            while let Some(ev) = self.client.poll_event() {
                self.on_event(owned(ev));
            }
            self.check();
            if used == 0 {
                break;
            }
            pos += used;
        }
        self.wire.drain(..pos);
    }

    fn on_event(&mut self, ev: Event) {
        assert!(!self.closed, "an event after Closed: {ev:?}");
        match ev {
            Event::Identity(key) => {
                assert!(!self.identity_seen, "server identity reported twice");
                assert_eq!(key, server_identity().public().ed25519);
                self.identity_seen = true;
            }
            Event::Authenticated(plain) => {
                assert!(!self.authenticated, "authenticated twice");
                self.authenticated = true;
                self.expect_sent(&plain);
            }
            Event::Message(plain) => {
                self.expect_sent(&plain);
                match ServerMsg::decode(&plain).expect("events re-encode") {
                    ServerMsg::IncomingDm { msg_id, .. } => {
                        assert!(msg_id > self.last_dm, "direct message {msg_id} shown twice");
                        self.last_dm = msg_id;
                        assert_eq!(self.client.last_dm_id(), msg_id);
                    }
                    ServerMsg::RoomJoined { room, .. } => {
                        if !self.rooms.contains(&room) && self.rooms.len() < MAX_ROOMS {
                            self.rooms.push(room);
                        }
                        if !self.known.contains(&room) {
                            self.known.push(room);
                        }
                    }
                    ServerMsg::RoomLeft { room, .. } => self.rooms.retain(|r| *r != room),
                    m => assert!(
                        !matches!(
                            m,
                            ServerMsg::Ping { .. }
                                | ServerMsg::Pong { .. }
                                | ServerMsg::KeyUpdate { .. }
                                | ServerMsg::AuthResponse { .. }
                                | ServerMsg::Close { .. }
                        ),
                        "a control message surfaced as an event"
                    ),
                }
            }
            Event::Closed => {
                self.closed = true;
                assert_eq!(self.client.state(), ClientState::Closed);
                assert!(self.client.close_code().is_some());
            }
        }
    }

    /// The client showed `plain`: it must be a message the server sealed, in order, after
    /// any the client handles silently.
    fn expect_sent(&mut self, plain: &[u8]) {
        if self.tampered {
            return;
        }
        while let Some(front) = self.sent.pop_front() {
            if front == plain {
                return;
            }
            let silent = matches!(
                ServerMsg::decode(&front),
                Ok(ServerMsg::Ping { .. } | ServerMsg::Pong { .. } | ServerMsg::KeyUpdate { .. })
            ) || matches!(
                ServerMsg::decode(&front),
                Ok(ServerMsg::IncomingDm { msg_id, .. }) if msg_id <= self.last_dm
            );
            assert!(silent, "the client skipped a message the server sent");
        }
        panic!("the client showed a message the server never sent");
    }

    /// The server reads up to `max` bytes (0 = all) of the client's output and checks it.
    fn read(&mut self, max: usize) {
        let pending = self.client.pending_transmit();
        let n = if max == 0 {
            pending.len()
        } else {
            max.min(pending.len())
        };
        self.inbox.extend_from_slice(&pending[..n]);
        self.client.advance_transmit(n);
        loop {
            let (typ, used) = match decode_frame(&self.inbox, u32::MAX) {
                Ok(Some((f, used))) => (f.typ, used),
                Ok(None) => break,
                Err(e) => panic!("client wrote a bad frame header: {e:?}"),
            };
            let mut frame: Vec<u8> = self.inbox.drain(..used).collect();
            let Some(session) = self.session.as_mut() else {
                // Without the harness's handshake the client writes its SYN, and its ACK
                // only if the input holds the honest SYN-ACK.
                assert!(
                    matches!(typ, FrameType::Syn | FrameType::Ack),
                    "client wrote a {typ:?} frame before the handshake"
                );
                continue;
            };
            assert!(!self.client_done, "client wrote after its Close");
            assert_eq!(typ, FrameType::Record, "client wrote a {typ:?} frame");
            let (header, payload) = frame.split_at_mut(HEADER_LEN);
            let header: [u8; HEADER_LEN] = header.try_into().expect("5 bytes");
            let plain = session
                .open_record(self.now, &header, payload)
                .expect("a client record does not open with the server's keys");
            if let ClientMsg::Close { .. } =
                ClientMsg::decode(plain).expect("client sent a bad message")
            {
                self.client_done = true;
            }
        }
    }

    fn command(&mut self, c: &Command) {
        let now = self.now;
        let c_ = &mut self.client;
        let r: Result<u32, ClientError> = match c {
            Command::CreateRoom(t) => c_.create_room(now, &text_of(t)),
            Command::JoinRoom(r) => c_.join_room(now, r.resolve(&self.known)),
            Command::LeaveRoom(r) => c_.leave_room(now, r.resolve(&self.known)),
            Command::ListRooms => c_.list_rooms(now),
            Command::SendRoom(r, b) => c_.send_room(now, r.resolve(&self.known), &b.0),
            Command::SendDm(n, b) => c_.send_dm(now, &n.resolve(), &b.0),
            Command::SetStatus(s) => c_.set_status(now, status_of(*s)),
            Command::ListUsers => c_.list_users(now),
            Command::GetPublicKey(n) => c_.get_public_key(now, &n.resolve()),
            Command::FetchPending => c_.fetch_pending(now),
            Command::UploadPrekeys(b) => c_.upload_prekeys(now, &b.0),
            Command::FetchPrekeys(n) => c_.fetch_prekeys(now, &n.resolve()),
            Command::KeyUpdate => {
                c_.request_key_update();
                Ok(0)
            }
            Command::Logout => c_.logout(now).map(|()| 0),
            Command::Close(code) => {
                c_.close(now, code_of(*code), false);
                Ok(0)
            }
        };
        match r {
            Ok(_) => {}
            Err(ClientError::Closed) => assert!(
                self.closed || self.client.state() == ClientState::Closed,
                "Closed error from an open client"
            ),
            Err(ClientError::NotReady) => assert!(matches!(
                self.client.state(),
                ClientState::Handshaking | ClientState::Authenticating
            )),
            Err(_) => {}
        }
        while let Some(ev) = self.client.poll_event() {
            self.on_event(owned(ev));
        }
    }

    fn advance(&mut self, n: u16) {
        self.now = self.now + Duration::from_millis(250 * u64::from(n));
        match self.client.poll_timeout() {
            Some(t) if t <= self.now => self.client.handle_timeout(self.now),
            Some(_) => {}
            None => assert_eq!(self.client.state(), ClientState::Closed),
        }
        while let Some(ev) = self.client.poll_event() {
            self.on_event(owned(ev));
        }
    }

    fn check(&self) {
        assert!(self.client.pending_transmit().len() <= TX);
        let rooms = self.client.rooms();
        assert!(rooms.len() <= MAX_ROOMS);
        for (i, r) in rooms.iter().enumerate() {
            assert!(!rooms[..i].contains(r), "room {r} listed twice");
        }
        if !self.tampered {
            assert_eq!(
                rooms,
                &self.rooms[..],
                "room list differs from joins and leaves"
            );
        }
        assert_eq!(self.client.last_dm_id(), self.last_dm);
        match self.client.state() {
            ClientState::Closed => {
                assert!(self.client.poll_timeout().is_none());
            }
            ClientState::InLobby => assert!(rooms.is_empty() && self.authenticated),
            ClientState::InRoom => assert!(!rooms.is_empty() && self.authenticated),
            ClientState::Handshaking | ClientState::Authenticating => {
                assert!(!self.authenticated);
            }
        }
        assert_eq!(self.closed, self.client.state() == ClientState::Closed);
    }

    fn apply(&mut self, op: &ClientOp) {
        match op {
            ClientOp::Send(spec) => {
                if let Some(plain) = spec.encode(&self.known) {
                    self.seal(&plain);
                    self.deliver(0);
                }
            }
            ClientOp::Plain(b) => {
                self.seal(&b.0);
                self.deliver(0);
            }
            ClientOp::KeyUpdate => {
                if let Some(s) = self.session.as_mut() {
                    s.request_key_update();
                }
            }
            ClientOp::Raw(b) => {
                if !b.0.is_empty() {
                    self.tampered = true;
                }
                self.wire.extend_from_slice(&b.0);
                self.deliver(0);
            }
            ClientOp::Flip { at, bit } => {
                if !self.wire.is_empty() {
                    let i = usize::from(*at) % self.wire.len();
                    self.wire[i] ^= 1 << (bit % 8);
                    self.tampered = true;
                }
            }
            ClientOp::Deliver(n) => self.deliver(usize::from(*n)),
            ClientOp::Command(c) => self.command(c),
            ClientOp::Read(n) => self.read(usize::from(*n)),
            ClientOp::Advance(n) => self.advance(*n),
            ClientOp::Eof => {
                self.client.handle_eof();
                while let Some(ev) = self.client.poll_event() {
                    self.on_event(owned(ev));
                }
            }
        }
        self.check();
    }
}

/// An event, owned: messages as their re-encoded bytes.
#[derive(Debug)]
enum Event {
    Identity([u8; 32]),
    /// The `AuthResponse` that caused it, re-encoded.
    Authenticated(Vec<u8>),
    Message(Vec<u8>),
    Closed,
}

fn encode(msg: &ServerMsg<'_>) -> Vec<u8> {
    let mut out = vec![0u8; msg.encoded_len()];
    let n = msg.encode(&mut out).expect("an event's message encodes");
    out.truncate(n);
    out
}

fn owned(ev: ClientEvent<'_>) -> Event {
    match ev {
        ClientEvent::ServerIdentity { key } => Event::Identity(key),
        ClientEvent::Authenticated { mode, pending } => {
            Event::Authenticated(encode(&ServerMsg::AuthResponse {
                mode,
                result: Ok(pending),
            }))
        }
        ClientEvent::Message(m) => Event::Message(encode(&m)),
        ClientEvent::Closed { .. } => Event::Closed,
    }
}

/// The client state machine fed fuzzed server messages.
pub fn client_state_machine(data: &[u8]) {
    let Some(input) = decode::<ClientInput>(data) else {
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
    if h.session.is_some() {
        h.read(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_writer_round_trips() {
        let input = ClientInput {
            setup: ClientSetup {
                chacha: false,
                no_handshake: false,
                pin_wrong_key: false,
                rotate_after: 2,
            },
            ops: vec![
                ClientOp::Send(ServerMsgSpec::Auth {
                    login: false,
                    ok: true,
                    code: 0,
                    pending: 3,
                }),
                ClientOp::Send(ServerMsgSpec::UserList {
                    req: 1,
                    users: vec![
                        (NameSel::Known(1), 1),
                        (NameSel::Raw(Bytes(b"x".to_vec())), 2),
                    ],
                }),
                ClientOp::Send(ServerMsgSpec::RoomList {
                    req: 1,
                    rooms: vec![(RoomSel::Known(0), Bytes(vec![b'a']), 1, 20)],
                }),
                ClientOp::Send(ServerMsgSpec::PublicKey {
                    req: 2,
                    name: NameSel::Known(0),
                    key: Some([9; 32]),
                }),
                ClientOp::Send(ServerMsgSpec::PrekeyBundle {
                    req: 2,
                    name: NameSel::Known(0),
                    bundle: Some(Bytes(vec![1, 2])),
                }),
                ClientOp::Command(Command::SendRoom(RoomSel::Raw([3; 6]), Bytes(vec![]))),
                ClientOp::Read(0),
                ClientOp::Eof,
            ],
        };
        assert_eq!(decode::<ClientInput>(&input.to_arb_bytes()), Some(input));
    }
}
