//! The server side of the client under test, and the checks.

use cove_core::Instant;
use cove_core::client::{Client, ClientConfig, ClientError, ClientEvent, ClientState, MAX_ROOMS};
use cove_core::crypto::{RUST_CRYPTO, SuiteSet};
use cove_core::handshake::{SYN_ACK_LEN, ServerHandshake};
use cove_core::session::{Session, SessionConfig};
use cove_core::time::Duration;
use cove_core::wire::{
    AuthMode, ClientMsg, DEFAULT_MAX_FRAME, FrameType, HEADER_LEN, RoomId, ServerMsg, decode_frame,
    encode_header,
};

use super::{ClientInput, ClientOp, ClientSetup, Command, TX};
use crate::arb::decode;
use crate::connection::{MsgSel, code_of, status_of, text_of};
use crate::handshake::CLIENT_NAME;
use crate::util::{T0, client_identity, rng, server_identity, suite};

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
    /// The client acknowledges each direct message itself.
    auto_ack: bool,
    /// The highest direct-message ID acknowledged: what `last_dm_id` must say.
    acked: u64,
    /// Direct-message IDs shown, for the `AckDm` selector.
    shown_dms: Vec<u64>,
    rooms: Vec<RoomId>,
    /// Rooms heard of, for the selectors.
    known: Vec<RoomId>,
}

impl Harness {
    fn new(setup: &ClientSetup) -> Harness {
        let mut config = ClientConfig::new(suite(setup.chacha), AuthMode::Register);
        if let Some(session) = session_config(setup) {
            config.session = session;
        }
        config.auto_ack_dms = auto_ack(setup);
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
            auto_ack: auto_ack(setup),
            acked: 0,
            shown_dms: Vec::new(),
            rooms: Vec::new(),
            known: Vec::new(),
        }
    }

    /// Answers the client's SYN as a real server would and reads its ACK.
    fn handshake(&mut self, setup: &ClientSetup) {
        let mut server =
            ServerHandshake::new(&RUST_CRYPTO, server_identity(), SuiteSet::ALL, &mut rng(22));
        if let Some(session) = session_config(setup) {
            server.set_session_config(session);
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
        // The server's identity is checked now but reported only with `LoggedIn`.
        assert_eq!(self.client.state(), ClientState::Authenticating);
        let ack = self.take_frame(FrameType::Ack);
        let (hello, session) = server.read_ack(&ack).expect("client's ACK");
        assert_eq!(hello.name.as_str(), CLIENT_NAME);
        self.session = Some(session);
    }

    /// Takes one whole handshake frame of type `typ` from the client's output.
    fn take_frame(&mut self, typ: FrameType) -> Vec<u8> {
        let out = self.client.pending_transmit().to_vec();
        let (frame, used) = decode_frame(&out, DEFAULT_MAX_FRAME)
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
            Event::LoggedIn { server_key, auth } => {
                assert!(!self.authenticated, "logged in twice");
                assert_eq!(server_key, server_identity().public().ed25519);
                self.authenticated = true;
                self.expect_sent(&auth);
            }
            Event::Message(plain) => {
                self.expect_sent(&plain);
                match ServerMsg::decode(&plain).expect("events re-encode") {
                    ServerMsg::IncomingDm { msg_id, .. } => {
                        assert!(
                            msg_id > self.acked,
                            "direct message {msg_id} shown after {} was acknowledged",
                            self.acked
                        );
                        self.shown_dms.push(msg_id);
                        // An auto-ack may fail (a full transmit queue): then nothing moves.
                        let last = self.client.last_dm_id();
                        if self.auto_ack && last != self.acked {
                            assert_eq!(last, msg_id, "auto-ack acknowledged another ID");
                            self.acked = last;
                        }
                        assert_eq!(last, self.acked, "last_dm_id moved without an ack");
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
                Ok(ServerMsg::IncomingDm { msg_id, .. }) if msg_id <= self.acked
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
            let (typ, used) = match decode_frame(&self.inbox, DEFAULT_MAX_FRAME) {
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
                c_.close(now, code_of(*code));
                Ok(0)
            }
            Command::AckDm(m) => {
                let msg_id = match m {
                    MsgSel::Known(i) if !self.shown_dms.is_empty() => {
                        self.shown_dms[usize::from(*i) % self.shown_dms.len()]
                    }
                    MsgSel::Known(_) => 1,
                    MsgSel::Raw(id) => *id,
                };
                let r = c_.ack_dm(now, msg_id);
                if r.is_ok() {
                    self.acked = self.acked.max(msg_id);
                }
                r.map(|()| 0)
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
        assert_eq!(self.client.last_dm_id(), self.acked);
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
                self.client.handle_eof(self.now);
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
    LoggedIn {
        server_key: [u8; 32],
        /// The `AuthResponse` that caused it, re-encoded.
        auth: Vec<u8>,
    },
    Message(Vec<u8>),
    Closed,
}

/// The session configuration both sides use, when the setup asks for rotation.
fn session_config(setup: &ClientSetup) -> Option<SessionConfig> {
    let records = setup.rotate_after & 0x7f;
    (records != 0).then(|| SessionConfig {
        rotate_after_records: u64::from(records),
        ..SessionConfig::default()
    })
}

/// Whether the setup turns on the client's own acknowledgements.
fn auto_ack(setup: &ClientSetup) -> bool {
    setup.rotate_after & 0x80 != 0
}

fn encode(msg: &ServerMsg<'_>) -> Vec<u8> {
    let mut out = vec![0u8; msg.encoded_len()];
    let n = msg.encode(&mut out).expect("an event's message encodes");
    out.truncate(n);
    out
}

fn owned(ev: ClientEvent<'_>) -> Event {
    match ev {
        ClientEvent::LoggedIn {
            server_key,
            mode,
            pending,
        } => Event::LoggedIn {
            server_key,
            auth: encode(&ServerMsg::AuthResponse {
                mode,
                result: Ok(pending),
            }),
        },
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
