//! Seeds of the server-connection target.

use cove_core::wire::{ErrorCode, FrameType, MAX_BODY_LEN};

use super::handshake::honest_frames;
use super::{Seed, alert_payload, bytes, frame};
use crate::arb::{Bytes, ToArb};
use crate::connection::{
    ClientMsgSpec, ConnInput, ConnOp, ConnSetup, MsgSel, NameSel, PeerOp, RoomSel,
};

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

pub(super) fn connection_seeds() -> Vec<Seed> {
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
    // Bodies at the hub's limit, relayed both ways, and one over it: every record the
    // client gets must fit its 64 KiB frame.
    let max = vec![0x6d; MAX_BODY_LEN];
    let over = vec![0x6f; MAX_BODY_LEN + 1];
    seeds.push((
        "max_bodies".into(),
        conn_seed(
            conn_setup(),
            vec![
                Send(ClientMsgSpec::JoinRoom {
                    req: 1,
                    room: RoomSel::Known(0),
                }),
                Peer(PeerOp::Say(RoomSel::Known(0), Bytes(max.clone()))),
                Peer(PeerOp::Dm(Bytes(max.clone()))),
                Peer(PeerOp::Dm(Bytes(over.clone()))),
                Read(0),
                Send(ClientMsgSpec::RoomMessage {
                    req: 2,
                    room: RoomSel::Known(0),
                    body: Bytes(max.clone()),
                }),
                Send(ClientMsgSpec::SendDm {
                    req: 3,
                    to: NameSel::Known(1),
                    body: Bytes(over),
                }),
                Send(ClientMsgSpec::UploadPrekeys {
                    req: 4,
                    bundle: Bytes(max),
                }),
                Send(ClientMsgSpec::FetchPrekeys {
                    req: 5,
                    name: NameSel::Known(0),
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
