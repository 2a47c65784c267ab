//! Seeds of the client target.

use cove_core::wire::{ErrorCode, FrameType, encode_header};

use super::{Seed, alert_payload, bytes, frame};
use crate::arb::{Bytes, ToArb};
use crate::client::{ClientInput, ClientOp, ClientSetup, Command, ServerMsgSpec};
use crate::connection::{MsgSel, NameSel, RoomSel};

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

pub(super) fn client_seeds() -> Vec<Seed> {
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
    // Direct messages acknowledged by the application: shown until acknowledged, then
    // re-acknowledged silently; and the same with the client's own acknowledgements.
    let dm = |msg_id| {
        Send(ServerMsgSpec::IncomingDm {
            msg_id,
            from: NameSel::Known(1),
            timestamp: 5,
            body: bytes(b"x"),
        })
    };
    let acks = vec![
        auth_ok(),
        dm(1),
        dm(1),
        Command(self::Command::AckDm(MsgSel::Known(0))),
        dm(1),
        dm(2),
        Command(self::Command::AckDm(MsgSel::Raw(5))),
        dm(3),
        dm(6),
        Read(0),
    ];
    seeds.push(("dm_acks".into(), client_seed(client_setup(), acks.clone())));
    let mut auto = client_setup();
    auto.rotate_after = 0x80;
    seeds.push(("dm_auto_acks".into(), client_seed(auto, acks)));
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
