//! The seed corpora, made deterministically: valid frames and handshakes, every message
//! type, and sessions that walk the state machines through their main paths.
//!
//! `cargo run -p cove-fuzz --example gen_corpus` writes them to `fuzz/corpus/<target>/`.
//! They are committed; regenerate them after changing an input format.

use std::io;
use std::path::Path;

use cove_core::crypto::{RUST_CRYPTO, Suite, SuiteSet};
use cove_core::handshake::{ClientHandshake, SYN_ACK_LEN, SYN_LEN, ServerHandshake};
use cove_core::session::Session;
use cove_core::wire::{
    AckStatus, Alert, AuthMode, ClientMsg, ErrorCode, FRAME_ACK, FRAME_RECORD, FrameType,
    NameListBuilder, RoomEntry, RoomId, RoomListBuilder, ServerMsg, Status, UserListBuilder,
    encode_header,
};

use crate::arb::{Bytes, ToArb};
use crate::client::{ClientInput, ClientOp, ClientSetup, Command, ServerMsgSpec};
use crate::connection::{
    ClientMsgSpec, ConnInput, ConnOp, ConnSetup, MsgSel, NameSel, PeerOp, RoomSel,
};
use crate::handshake::{self as hs, CLIENT_NAME};
use crate::hub::{HubInput, HubOp, HubReq, Limits};
use crate::util::{T0, client_identity, rng, server_identity};

/// One seed: a file name and its bytes.
pub type Seed = (String, Vec<u8>);

fn frame(typ: FrameType, payload: &[u8]) -> Vec<u8> {
    let mut f = encode_header(typ, payload.len() as u32).to_vec();
    f.extend_from_slice(payload);
    f
}

fn enc_client(m: &ClientMsg<'_>) -> Vec<u8> {
    let mut out = vec![0u8; m.encoded_len()];
    let n = m.encode(&mut out).expect("seed message encodes");
    out.truncate(n);
    out
}

fn enc_server(m: &ServerMsg<'_>) -> Vec<u8> {
    let mut out = vec![0u8; m.encoded_len()];
    let n = m.encode(&mut out).expect("seed message encodes");
    out.truncate(n);
    out
}

const ROOM: RoomId = RoomId(*b"ABC234");

/// One of every client message.
pub fn client_messages() -> Vec<(&'static str, Vec<u8>)> {
    use ClientMsg::*;
    vec![
        (
            "get_public_key",
            GetPublicKey {
                req: 1,
                name: "bob",
            },
        ),
        (
            "send_dm",
            SendDm {
                req: 2,
                to: "bob",
                body: b"sealed",
            },
        ),
        ("fetch_pending", FetchPending { req: 3 }),
        (
            "set_status",
            SetStatus {
                req: 4,
                status: Status::Away,
            },
        ),
        ("list_users", ListUsers { req: 5 }),
        ("logout", Logout),
        ("ack_dm", AckDm { msg_id: 77 }),
        (
            "create_room",
            CreateRoom {
                req: 6,
                title: "lobby",
            },
        ),
        ("join_room", JoinRoom { req: 7, room: ROOM }),
        ("leave_room", LeaveRoom { req: 8, room: ROOM }),
        ("list_rooms", ListRooms { req: 9 }),
        (
            "room_message",
            RoomMessage {
                req: 10,
                room: ROOM,
                body: b"hello",
            },
        ),
        (
            "upload_prekeys",
            UploadPrekeys {
                req: 11,
                bundle: &[1, 2, 3],
            },
        ),
        (
            "fetch_prekeys",
            FetchPrekeys {
                req: 12,
                name: "bob",
            },
        ),
        ("ping", Ping { nonce: 5 }),
        ("pong", Pong { nonce: 6 }),
        (
            "key_update",
            KeyUpdate {
                request_update: true,
            },
        ),
        (
            "close",
            Close {
                code: ErrorCode::ConnectionTerminated,
                text: "bye",
            },
        ),
    ]
    .into_iter()
    .map(|(n, m)| (n, enc_client(&m)))
    .collect()
}

/// One of every server message (lists with two entries).
pub fn server_messages() -> Vec<(&'static str, Vec<u8>)> {
    use ServerMsg::*;
    let mut users = UserListBuilder::new();
    users.push("alice", Status::Online).expect("entry");
    users.push("bob", Status::Away).expect("entry");
    let mut names = NameListBuilder::new();
    names.push("alice").expect("entry");
    names.push("bob").expect("entry");
    let mut rooms = RoomListBuilder::new();
    for (room, title) in [(ROOM, "lobby"), (RoomId(*b"XYZ789"), "")] {
        rooms
            .push(&RoomEntry {
                room,
                title,
                members: 2,
                capacity: 20,
            })
            .expect("entry");
    }
    vec![
        (
            "register_ok",
            AuthResponse {
                mode: AuthMode::Register,
                result: Ok(2),
            },
        ),
        (
            "login_refused",
            AuthResponse {
                mode: AuthMode::Login,
                result: Err(ErrorCode::AuthFailed),
            },
        ),
        (
            "public_key",
            PublicKey {
                req: 1,
                name: "bob",
                key: Some([7; 32]),
            },
        ),
        (
            "public_key_none",
            PublicKey {
                req: 1,
                name: "bob",
                key: None,
            },
        ),
        (
            "message_ack",
            MessageAck {
                req: 2,
                msg_id: 9,
                status: AckStatus::Queued,
            },
        ),
        (
            "incoming_dm",
            IncomingDm {
                msg_id: 9,
                from: "bob",
                timestamp: 1_000,
                body: b"sealed",
            },
        ),
        (
            "user_list",
            UserList {
                req: 3,
                users: users.entries(),
            },
        ),
        (
            "status_update",
            StatusUpdate {
                name: "bob",
                status: Status::Offline,
            },
        ),
        (
            "error",
            Error {
                req: 4,
                code: ErrorCode::RoomFull,
                text: "room is full",
            },
        ),
        (
            "room_joined",
            RoomJoined {
                req: 5,
                room: ROOM,
                title: "lobby",
                members: names.entries(),
            },
        ),
        ("room_left", RoomLeft { req: 6, room: ROOM }),
        (
            "room_list",
            RoomList {
                req: 7,
                rooms: rooms.entries(),
            },
        ),
        (
            "room_message",
            RoomMessage {
                room: ROOM,
                seq: 3,
                from: "bob",
                timestamp: 2_000,
                body: b"hi all",
            },
        ),
        (
            "member_joined",
            MemberJoined {
                room: ROOM,
                name: "carol",
            },
        ),
        (
            "member_left",
            MemberLeft {
                room: ROOM,
                name: "carol",
            },
        ),
        (
            "prekey_bundle",
            PrekeyBundle {
                req: 8,
                name: "bob",
                bundle: Some(&[1, 2, 3]),
            },
        ),
        (
            "prekey_bundle_none",
            PrekeyBundle {
                req: 8,
                name: "bob",
                bundle: None,
            },
        ),
        ("ok", Ok { req: 9 }),
        ("pending_done", PendingDone { req: 10, count: 2 }),
        ("ping", Ping { nonce: 11 }),
        ("pong", Pong { nonce: 12 }),
        (
            "key_update",
            KeyUpdate {
                request_update: false,
            },
        ),
        (
            "close",
            Close {
                code: ErrorCode::IdleTimeout,
                text: "idle timeout",
            },
        ),
    ]
    .into_iter()
    .map(|(n, m)| (n, enc_server(&m)))
    .collect()
}

fn alert_payload(code: ErrorCode, text: &str) -> Vec<u8> {
    let a = Alert { code, text };
    let mut out = vec![0u8; a.encoded_len()];
    let n = a.encode(&mut out).expect("alert encodes");
    out.truncate(n);
    out
}

/// An honest handshake's three frames and a first record.
fn honest_frames() -> Vec<Vec<u8>> {
    let mut client = ClientHandshake::new(
        &RUST_CRYPTO,
        client_identity(),
        Suite::AesGcm,
        AuthMode::Register,
        CLIENT_NAME,
        &mut rng(30),
    )
    .expect("client");
    let mut server =
        ServerHandshake::new(&RUST_CRYPTO, server_identity(), SuiteSet::ALL, &mut rng(31));
    let mut syn = [0u8; SYN_LEN];
    client.write_syn(&mut syn).expect("SYN");
    server.read_syn(&syn).expect("SYN");
    let mut syn_ack = [0u8; SYN_ACK_LEN];
    server.write_syn_ack(&mut syn_ack).expect("SYN-ACK");
    client.read_syn_ack(&syn_ack).expect("SYN-ACK");
    let mut ack = [0u8; 256];
    let (n, mut session) = client.write_ack(&mut ack).expect("ACK");
    let plain = enc_client(&ClientMsg::ListRooms { req: 1 });
    let mut rec = vec![0u8; plain.len() + Session::seal_max_overhead()];
    let r = session.seal_record(T0, &plain, &mut rec).expect("record");
    rec.truncate(r);
    vec![
        frame(FrameType::Syn, &syn),
        frame(FrameType::SynAck, &syn_ack),
        frame(FrameType::Ack, &ack[..n]),
        rec,
    ]
}

fn frame_seeds() -> Vec<Seed> {
    let frames = honest_frames();
    let limit = 6u8; // 64 KiB in `MAX_PAYLOADS`
    let mut seeds = Vec::new();
    for (name, f) in ["syn", "syn_ack", "ack", "record"].iter().zip(&frames) {
        let mut s = vec![limit];
        s.extend_from_slice(f);
        seeds.push((name.to_string(), s));
    }
    let mut stream = vec![limit];
    for f in &frames {
        stream.extend_from_slice(f);
    }
    seeds.push(("stream".into(), stream));
    let mut alert = vec![limit];
    alert.extend(frame(
        FrameType::Alert,
        &alert_payload(ErrorCode::UnsupportedSuite, "unsupported cipher suite"),
    ));
    seeds.push(("alert".into(), alert));
    seeds.push(("too_large".into(), vec![3, 0, 0, 1, 0, FRAME_RECORD, 1, 2]));
    seeds.push(("unknown_type".into(), vec![limit, 0, 0, 0, 1, 0x42, 9]));
    seeds.push((
        "partial".into(),
        vec![limit, 0, 0, 0, 9, FRAME_ACK, 1, 2, 3],
    ));
    seeds.push(("empty_payload".into(), vec![0, 0, 0, 0, 0, FRAME_RECORD]));
    seeds
}

fn alert_seeds() -> Vec<Seed> {
    vec![
        (
            "unsupported_version".into(),
            alert_payload(
                ErrorCode::UnsupportedVersion,
                "unsupported protocol version",
            ),
        ),
        (
            "handshake_timeout".into(),
            alert_payload(ErrorCode::HandshakeTimeout, "handshake timed out"),
        ),
        (
            "empty_text".into(),
            alert_payload(ErrorCode::AuthFailed, ""),
        ),
        (
            "utf8_text".into(),
            alert_payload(ErrorCode::ShuttingDown, "au revoir, à bientôt"),
        ),
    ]
}

fn with_ctl(ctl: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![ctl];
    v.extend_from_slice(body);
    v
}

fn responder_seeds() -> Vec<Seed> {
    let mut seeds = Vec::new();
    for (suite, bit, name) in [(Suite::AesGcm, 0, "aes"), (Suite::ChaChaPoly, 4, "chacha")] {
        let mut client = ClientHandshake::new(
            &RUST_CRYPTO,
            client_identity(),
            suite,
            AuthMode::Register,
            CLIENT_NAME,
            &mut rng(2),
        )
        .expect("client");
        let mut syn = [0u8; SYN_LEN];
        client.write_syn(&mut syn).expect("SYN");
        seeds.push((
            format!("raw_syn_{name}"),
            with_ctl(hs::RESPONDER_RAW_SYN | bit, &syn),
        ));
        seeds.push((
            format!("raw_ack_{name}"),
            with_ctl(hs::RESPONDER_RAW_ACK | bit, &hs::honest_ack(suite)),
        ));
        let mut spec = vec![0u8, AuthMode::Login as u8, 0];
        spec.extend_from_slice(b"alice");
        seeds.push((
            format!("signed_ack_{name}"),
            with_ctl(hs::RESPONDER_SIGNED_ACK | bit, &spec),
        ));
        seeds.push((
            format!("crafted_ack_{name}"),
            with_ctl(
                hs::RESPONDER_CRAFTED_ACK | bit,
                &hs::valid_crafted_ack(suite),
            ),
        ));
    }
    // The server allows only ChaCha; the client offers AES.
    let mut syn_only_chacha = vec![hs::RESPONDER_RAW_SYN | (2 << 3)];
    syn_only_chacha.extend_from_slice(&[1, Suite::AesGcm.to_u8()]);
    syn_only_chacha.extend_from_slice(&[9; SYN_LEN - 2]);
    seeds.push(("raw_syn_suite_refused".into(), syn_only_chacha));
    seeds.push((
        "signed_ack_bad_name".into(),
        with_ctl(hs::RESPONDER_SIGNED_ACK, b"\x00\x01\x00al ice"),
    ));
    seeds.push((
        "signed_ack_bad_sig".into(),
        with_ctl(hs::RESPONDER_SIGNED_ACK, b"\x00\x01\x11alice"),
    ));
    seeds
}

fn initiator_seeds() -> Vec<Seed> {
    let mut seeds = Vec::new();
    for (suite, bit, name) in [(Suite::AesGcm, 0, "aes"), (Suite::ChaChaPoly, 4, "chacha")] {
        seeds.push((
            format!("raw_syn_ack_{name}"),
            with_ctl(hs::INITIATOR_RAW_SYN_ACK | bit, &hs::honest_syn_ack(suite)),
        ));
        seeds.push((
            format!("signed_syn_ack_{name}"),
            with_ctl(hs::INITIATOR_SIGNED_SYN_ACK | bit, &[0, 0, 0, 0, 0, 42]),
        ));
        seeds.push((
            format!("crafted_syn_ack_{name}"),
            with_ctl(
                hs::INITIATOR_CRAFTED_SYN_ACK | bit,
                &hs::valid_crafted_syn_ack(suite),
            ),
        ));
    }
    seeds.push((
        "signed_syn_ack_bad_ack".into(),
        with_ctl(hs::INITIATOR_SIGNED_SYN_ACK, &[1, 0, 0, 0, 0, 42]),
    ));
    seeds.push(("out_of_order".into(), vec![3, 1, 2, 3]));
    seeds
}

fn bytes(b: &[u8]) -> Bytes {
    Bytes(b.to_vec())
}

fn conn_setup() -> ConnSetup {
    ConnSetup {
        chacha: false,
        no_handshake: false,
        login: false,
        rotate_after: 0,
        send_queue: 0,
        rate_burst: 0,
        max_frame: 0,
    }
}

fn conn_seed(setup: ConnSetup, ops: Vec<ConnOp>) -> Vec<u8> {
    ConnInput { setup, ops }.to_arb_bytes()
}

/// One client message of each kind, as the fuzzed client sends them.
fn client_specs() -> Vec<(&'static str, ClientMsgSpec)> {
    use ClientMsgSpec::*;
    vec![
        (
            "get_public_key",
            GetPublicKey {
                req: 1,
                name: NameSel::Known(1),
            },
        ),
        (
            "send_dm",
            SendDm {
                req: 2,
                to: NameSel::Known(1),
                body: bytes(b"sealed"),
            },
        ),
        ("fetch_pending", FetchPending { req: 3 }),
        ("set_status", SetStatus { req: 4, status: 2 }),
        ("list_users", ListUsers { req: 5 }),
        ("logout", Logout),
        (
            "ack_dm",
            AckDm {
                msg: MsgSel::Known(0),
            },
        ),
        (
            "create_room",
            CreateRoom {
                req: 6,
                title: bytes(b"mine"),
            },
        ),
        (
            "join_room",
            JoinRoom {
                req: 7,
                room: RoomSel::Known(0),
            },
        ),
        (
            "leave_room",
            LeaveRoom {
                req: 8,
                room: RoomSel::Known(0),
            },
        ),
        ("list_rooms", ListRooms { req: 9 }),
        (
            "room_message",
            RoomMessage {
                req: 10,
                room: RoomSel::Known(0),
                body: bytes(b"hello"),
            },
        ),
        (
            "upload_prekeys",
            UploadPrekeys {
                req: 11,
                bundle: bytes(&[1, 2, 3]),
            },
        ),
        (
            "fetch_prekeys",
            FetchPrekeys {
                req: 12,
                name: NameSel::Known(1),
            },
        ),
        ("ping", Ping { nonce: 5 }),
        ("pong", Pong { nonce: 6 }),
        (
            "close",
            Close {
                code: 8,
                text: bytes(b"bye"),
            },
        ),
    ]
}

fn connection_seeds() -> Vec<Seed> {
    use ConnOp::*;
    let mut seeds = Vec::new();
    for (name, spec) in client_specs() {
        seeds.push((
            format!("msg_{name}"),
            conn_seed(conn_setup(), vec![Send(spec), Read(0)]),
        ));
    }
    let session = vec![
        Send(ClientMsgSpec::JoinRoom {
            req: 1,
            room: RoomSel::Known(0),
        }),
        Peer(PeerOp::Say(RoomSel::Known(0), bytes(b"welcome"))),
        Send(ClientMsgSpec::RoomMessage {
            req: 2,
            room: RoomSel::Known(0),
            body: bytes(b"thanks"),
        }),
        Peer(PeerOp::Dm(bytes(b"psst"))),
        Read(0),
        Send(ClientMsgSpec::AckDm {
            msg: MsgSel::Known(0),
        }),
        KeyUpdate,
        Send(ClientMsgSpec::ListRooms { req: 3 }),
        Send(ClientMsgSpec::SendDm {
            req: 4,
            to: NameSel::Known(1),
            body: bytes(b"hi bob"),
        }),
        Advance(200),
        Read(0),
        Send(ClientMsgSpec::Pong { nonce: 0 }),
        Send(ClientMsgSpec::LeaveRoom {
            req: 5,
            room: RoomSel::Known(0),
        }),
        Send(ClientMsgSpec::Logout),
        Read(0),
    ];
    seeds.push(("session".into(), conn_seed(conn_setup(), session.clone())));
    let mut rotating = conn_setup();
    rotating.rotate_after = 2;
    rotating.chacha = true;
    seeds.push((
        "session_rotating_chacha".into(),
        conn_seed(rotating, session),
    ));
    let mut tight = conn_setup();
    tight.send_queue = 1;
    let mut flood = vec![Peer(PeerOp::Dm(bytes(&[0x55; 200]))); 6];
    flood.push(Read(0));
    seeds.push(("send_queue_exceeded".into(), conn_seed(tight, flood)));
    let mut limited = conn_setup();
    limited.rate_burst = 3;
    let burst = vec![Send(ClientMsgSpec::ListUsers { req: 1 }); 12];
    seeds.push(("rate_limited".into(), conn_seed(limited, burst)));
    let mut login = conn_setup();
    login.login = true;
    seeds.push(("login_unknown".into(), conn_seed(login, vec![Read(0)])));
    let frames = honest_frames();
    let mut raw = conn_setup();
    raw.no_handshake = true;
    seeds.push((
        "raw_syn_split".into(),
        conn_seed(
            raw.clone(),
            vec![
                Raw(Bytes(frames[0][..20].to_vec())),
                Raw(Bytes(frames[0][20..].to_vec())),
                Read(0),
                Raw(Bytes(frames[2].clone())),
                Advance(100),
            ],
        ),
    ));
    seeds.push((
        "raw_alert".into(),
        conn_seed(
            raw,
            vec![Raw(Bytes(frame(
                FrameType::Alert,
                &alert_payload(ErrorCode::ConnectionTerminated, "bye"),
            )))],
        ),
    ));
    seeds.push((
        "tampered_record".into(),
        conn_seed(
            conn_setup(),
            vec![
                Send(ClientMsgSpec::Ping { nonce: 1 }),
                Flip { at: 9, bit: 3 },
                Deliver(3),
                Deliver(0),
                Read(0),
            ],
        ),
    ));
    seeds.push((
        "plain_bad_message".into(),
        conn_seed(
            conn_setup(),
            vec![Plain(bytes(&[0x99, 1, 2])), Read(0), Eof],
        ),
    ));
    let mut small = conn_setup();
    small.max_frame = 1;
    seeds.push((
        "frame_too_large".into(),
        conn_seed(
            small,
            vec![
                Send(ClientMsgSpec::UploadPrekeys {
                    req: 1,
                    bundle: Bytes(vec![7; 400]),
                }),
                Read(0),
            ],
        ),
    ));
    seeds.push((
        "idle_timeout".into(),
        conn_seed(
            conn_setup(),
            vec![Advance(150), Read(0), Advance(300), Read(0)],
        ),
    ));
    seeds
}

fn limits(cap: u8) -> Limits {
    Limits {
        room_capacity: cap,
        max_rooms: 3,
        max_rooms_per_user: 1,
        max_queue_per_user: 2,
        dm_window: 1,
        max_online: 5,
        max_accounts: 5,
        max_list_entries: 3,
    }
}

fn connect(slot: u8, user: u8) -> HubOp {
    HubOp::Connect {
        slot,
        user,
        wrong_key: false,
        login: false,
    }
}

fn req(slot: u8, req: HubReq) -> HubOp {
    HubOp::Request { slot, req }
}

fn hub_seeds() -> Vec<Seed> {
    use HubReq::*;
    let rooms = vec![
        connect(0, 0),
        connect(1, 1),
        connect(2, 2),
        req(0, CreateRoom),
        req(1, JoinRoom(RoomSel::Known(0))),
        req(2, JoinRoom(RoomSel::Known(0))),
        req(0, RoomMessage(RoomSel::Known(0))),
        req(1, RoomMessage(RoomSel::Known(0))),
        req(2, LeaveRoom(RoomSel::Known(0))),
        req(2, JoinRoom(RoomSel::Known(0))),
        req(0, RoomMessage(RoomSel::Known(0))),
        req(1, ListRooms),
        req(1, SetStatus(2)),
        HubOp::Disconnect { slot: 0 },
        req(1, RoomMessage(RoomSel::Known(0))),
        req(1, LeaveRoom(RoomSel::Known(0))),
        req(2, LeaveRoom(RoomSel::Known(0))),
        req(2, CreateRoom),
        req(2, CreateRoom),
    ];
    let dms = vec![
        connect(0, 0),
        connect(1, 1),
        HubOp::Disconnect { slot: 1 },
        req(0, SendDm { to: 1, body: 1 }),
        req(0, SendDm { to: 1, body: 2 }),
        req(0, SendDm { to: 1, body: 3 }),
        req(0, SendDm { to: 6, body: 3 }),
        HubOp::Connect {
            slot: 1,
            user: 1,
            wrong_key: false,
            login: true,
        },
        req(1, AckDm(MsgSel::Known(0))),
        req(1, FetchPending),
        req(1, AckDm(MsgSel::Known(1))),
        req(0, SendDm { to: 1, body: 0 }),
        req(1, ListUsers),
        req(1, UploadPrekeys(5)),
        req(0, FetchPrekeys { name: 1 }),
        req(0, GetPublicKey { name: 1 }),
        req(0, GetPublicKey { name: 6 }),
        req(1, Logout),
        req(0, SendDm { to: 1, body: 2 }),
        HubOp::Restart,
        req(2, SendDm { to: 1, body: 1 }),
        connect(2, 2),
        req(2, SendDm { to: 1, body: 1 }),
        HubOp::Connect {
            slot: 1,
            user: 1,
            wrong_key: false,
            login: true,
        },
        req(1, AckDm(MsgSel::Known(3))),
    ];
    let logins = vec![
        connect(0, 0),
        HubOp::Connect {
            slot: 1,
            user: 0,
            wrong_key: true,
            login: true,
        },
        HubOp::Connect {
            slot: 1,
            user: 0,
            wrong_key: false,
            login: true,
        },
        req(0, ListUsers),
        connect(1, 0),
        connect(2, 3),
        connect(3, 3),
        req(4, ListRooms),
        HubOp::Advance(60),
        connect(5, 5),
    ];
    vec![
        (
            "rooms".into(),
            HubInput {
                limits: limits(1),
                ops: rooms,
            }
            .to_arb_bytes(),
        ),
        (
            "rooms_capacity_one".into(),
            HubInput {
                limits: limits(0),
                ops: vec![
                    connect(0, 0),
                    connect(1, 1),
                    req(0, CreateRoom),
                    req(1, JoinRoom(RoomSel::Known(0))),
                    req(0, RoomMessage(RoomSel::Known(0))),
                    req(1, RoomMessage(RoomSel::Known(0))),
                ],
            }
            .to_arb_bytes(),
        ),
        (
            "direct_messages".into(),
            HubInput {
                limits: limits(3),
                ops: dms,
            }
            .to_arb_bytes(),
        ),
        (
            "logins".into(),
            HubInput {
                limits: limits(3),
                ops: logins,
            }
            .to_arb_bytes(),
        ),
    ]
}

fn client_setup() -> ClientSetup {
    ClientSetup {
        chacha: false,
        no_handshake: false,
        pin_wrong_key: false,
        rotate_after: 0,
    }
}

fn auth_ok() -> ClientOp {
    ClientOp::Send(ServerMsgSpec::Auth {
        login: false,
        ok: true,
        code: 0,
        pending: 1,
    })
}

fn server_specs() -> Vec<(&'static str, ServerMsgSpec)> {
    use ServerMsgSpec::*;
    vec![
        (
            "public_key",
            PublicKey {
                req: 1,
                name: NameSel::Known(1),
                key: Some([3; 32]),
            },
        ),
        (
            "message_ack",
            MessageAck {
                req: 2,
                msg_id: 4,
                status: 1,
            },
        ),
        (
            "incoming_dm",
            IncomingDm {
                msg_id: 4,
                from: NameSel::Known(1),
                timestamp: 9,
                body: bytes(b"sealed"),
            },
        ),
        (
            "user_list",
            UserList {
                req: 3,
                users: vec![(NameSel::Known(0), 1), (NameSel::Known(1), 2)],
            },
        ),
        (
            "status_update",
            StatusUpdate {
                name: NameSel::Known(1),
                status: 2,
            },
        ),
        (
            "error",
            Error {
                req: 4,
                code: 0x10,
                text: bytes(b"room is full"),
            },
        ),
        (
            "room_joined",
            RoomJoined {
                req: 5,
                room: RoomSel::Raw([1, 2, 3, 4, 5, 6]),
                title: bytes(b"lobby"),
                members: vec![NameSel::Known(0), NameSel::Known(1)],
            },
        ),
        (
            "room_left",
            RoomLeft {
                req: 6,
                room: RoomSel::Known(0),
            },
        ),
        (
            "room_list",
            RoomList {
                req: 7,
                rooms: vec![(RoomSel::Raw([9; 6]), bytes(b"t"), 1, 20)],
            },
        ),
        (
            "room_message",
            RoomMessage {
                room: RoomSel::Known(0),
                seq: 1,
                from: NameSel::Known(1),
                timestamp: 10,
                body: bytes(b"hi"),
            },
        ),
        (
            "member_joined",
            MemberJoined {
                room: RoomSel::Known(0),
                name: NameSel::Known(2),
            },
        ),
        (
            "member_left",
            MemberLeft {
                room: RoomSel::Known(0),
                name: NameSel::Known(2),
            },
        ),
        (
            "prekey_bundle",
            PrekeyBundle {
                req: 8,
                name: NameSel::Known(1),
                bundle: Some(bytes(&[1, 2])),
            },
        ),
        ("ok", Ok { req: 9 }),
        ("pending_done", PendingDone { req: 10, count: 1 }),
        ("ping", Ping { nonce: 77 }),
        ("pong", Pong { nonce: 78 }),
        (
            "close",
            Close {
                code: 0x1E,
                text: bytes(b"server shutting down"),
            },
        ),
    ]
}

fn client_seed(setup: ClientSetup, ops: Vec<ClientOp>) -> Vec<u8> {
    ClientInput { setup, ops }.to_arb_bytes()
}

fn client_seeds() -> Vec<Seed> {
    use ClientOp::*;
    let mut seeds = Vec::new();
    for (name, spec) in server_specs() {
        seeds.push((
            format!("msg_{name}"),
            client_seed(client_setup(), vec![auth_ok(), Send(spec), Read(0)]),
        ));
    }
    let session = vec![
        auth_ok(),
        Command(self::Command::CreateRoom(bytes(b"mine"))),
        Read(0),
        Send(ServerMsgSpec::RoomJoined {
            req: 1,
            room: RoomSel::Raw([4; 6]),
            title: bytes(b"mine"),
            members: vec![NameSel::Known(0)],
        }),
        Command(self::Command::SendRoom(RoomSel::Known(0), bytes(b"hi"))),
        Send(ServerMsgSpec::IncomingDm {
            msg_id: 1,
            from: NameSel::Known(1),
            timestamp: 5,
            body: bytes(b"x"),
        }),
        Send(ServerMsgSpec::IncomingDm {
            msg_id: 1,
            from: NameSel::Known(1),
            timestamp: 5,
            body: bytes(b"x"),
        }),
        KeyUpdate,
        Send(ServerMsgSpec::Ping { nonce: 3 }),
        Read(0),
        Command(self::Command::KeyUpdate),
        Command(self::Command::SendDm(NameSel::Known(1), bytes(b"yo"))),
        Command(self::Command::LeaveRoom(RoomSel::Known(0))),
        Send(ServerMsgSpec::RoomLeft {
            req: 3,
            room: RoomSel::Known(0),
        }),
        Advance(130),
        Read(0),
        Command(self::Command::Logout),
        Read(0),
        Send(ServerMsgSpec::Close {
            code: 8,
            text: bytes(b""),
        }),
    ];
    seeds.push((
        "session".into(),
        client_seed(client_setup(), session.clone()),
    ));
    let mut rotating = client_setup();
    rotating.rotate_after = 1;
    rotating.chacha = true;
    seeds.push((
        "session_rotating_chacha".into(),
        client_seed(rotating, session),
    ));
    seeds.push((
        "auth_refused".into(),
        client_seed(
            client_setup(),
            vec![
                Send(ServerMsgSpec::Auth {
                    login: false,
                    ok: false,
                    code: 2,
                    pending: 0,
                }),
                Read(0),
            ],
        ),
    ));
    let mut pinned = client_setup();
    pinned.pin_wrong_key = true;
    seeds.push((
        "pinned_wrong_key".into(),
        client_seed(pinned, vec![Read(0)]),
    ));
    let mut raw = client_setup();
    raw.no_handshake = true;
    seeds.push((
        "raw_alert".into(),
        client_seed(
            raw.clone(),
            vec![Raw(Bytes(frame(
                FrameType::Alert,
                &alert_payload(ErrorCode::UnsupportedSuite, "unsupported cipher suite"),
            )))],
        ),
    ));
    seeds.push((
        "handshake_timeout".into(),
        client_seed(raw, vec![Advance(50), Read(0)]),
    ));
    seeds.push((
        "full_queue".into(),
        client_seed(
            client_setup(),
            vec![
                auth_ok(),
                Command(self::Command::UploadPrekeys(Bytes(vec![1; 1000]))),
                Command(self::Command::UploadPrekeys(Bytes(vec![2; 1000]))),
                Command(self::Command::UploadPrekeys(Bytes(vec![3; 1000]))),
                Read(100),
                Command(self::Command::ListUsers),
                Read(0),
            ],
        ),
    ));
    // A record that does not authenticate (an attacker on the path can always send one):
    // the client must close once, without sending over its now unusable session.
    let mut forged = encode_header(FrameType::Record, 20).to_vec();
    forged.extend_from_slice(&[0x5a; 20]);
    seeds.push((
        "forged_record".into(),
        client_seed(
            client_setup(),
            vec![auth_ok(), Raw(Bytes(forged.clone())), Read(0)],
        ),
    ));
    seeds.push((
        "tampered".into(),
        client_seed(
            client_setup(),
            vec![
                auth_ok(),
                Raw(Bytes(forged[..7].to_vec())),
                Send(ServerMsgSpec::Ok { req: 1 }),
                Flip { at: 7, bit: 1 },
                Deliver(0),
                Read(0),
            ],
        ),
    ));
    seeds
}

/// Every target's seeds, by target name.
pub fn corpora() -> Vec<(&'static str, Vec<Seed>)> {
    let named = |v: Vec<(&'static str, Vec<u8>)>| -> Vec<Seed> {
        v.into_iter().map(|(n, b)| (n.to_owned(), b)).collect()
    };
    vec![
        ("frame_decoder", frame_seeds()),
        ("client_msg_decoder", named(client_messages())),
        ("server_msg_decoder", named(server_messages())),
        ("alert_decoder", alert_seeds()),
        ("handshake_responder", responder_seeds()),
        ("handshake_initiator", initiator_seeds()),
        ("server_connection", connection_seeds()),
        ("hub_sequence", hub_seeds()),
        ("client_state_machine", client_seeds()),
    ]
}

/// Writes every seed to `dir/<target>/seed-<name>`, replacing older seeds (files whose
/// names start with `seed-`); other files, such as inputs the fuzzer found, stay.
pub fn write_corpora(dir: &Path) -> io::Result<usize> {
    let mut n = 0;
    for (target, seeds) in corpora() {
        let d = dir.join(target);
        std::fs::create_dir_all(&d)?;
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with("seed-") {
                std::fs::remove_file(entry.path())?;
            }
        }
        for (name, bytes) in seeds {
            std::fs::write(d.join(format!("seed-{name}")), bytes)?;
            n += 1;
        }
    }
    Ok(n)
}
