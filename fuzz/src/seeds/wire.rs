//! Seeds of the decoders: one of every message, frames and alerts.

use cove_core::wire::{
    AckStatus, AuthMode, ClientMsg, ErrorCode, FRAME_ACK, FRAME_RECORD, FrameType, NameListBuilder,
    RoomEntry, RoomId, RoomListBuilder, ServerMsg, Status, UserListBuilder,
};

use super::handshake::honest_frames;
use super::{ROOM, Seed, alert_payload, enc_client, enc_server, frame};

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
                private: false,
                title: "lobby",
            },
        ),
        (
            "create_private_room",
            CreateRoom {
                req: 6,
                private: true,
                title: "den",
            },
        ),
        (
            "invite_member",
            InviteMember {
                req: 12,
                room: ROOM,
                name: "bob",
            },
        ),
        (
            "remove_member",
            RemoveMember {
                req: 13,
                room: ROOM,
                name: "bob",
            },
        ),
        (
            "set_room_title",
            SetRoomTitle {
                req: 14,
                room: ROOM,
                title: "new title",
            },
        ),
        ("ack_room", AckRoom { room: ROOM, seq: 9 }),
        (
            "fetch_history",
            FetchHistory {
                req: 15,
                room: ROOM,
                before: 100,
                limit: 20,
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
                private: true,
                direct: false,
                title: "lobby",
                admin: "alice",
                members: names.entries(),
            },
        ),
        (
            "room_gap",
            RoomGap {
                room: ROOM,
                first_available: 40,
            },
        ),
        (
            "room_invited",
            RoomInvited {
                room: ROOM,
                title: "den",
                by: "alice",
            },
        ),
        (
            "room_removed",
            RoomRemoved {
                room: ROOM,
                by: "alice",
            },
        ),
        (
            "room_title",
            RoomTitle {
                room: ROOM,
                title: "new title",
            },
        ),
        (
            "history_message",
            HistoryMessage {
                req: 16,
                room: ROOM,
                seq: 41,
                from: "bob",
                timestamp: 1_700_000_000_000_000,
                body: b"then",
            },
        ),
        (
            "history_done",
            HistoryDone {
                req: 16,
                room: ROOM,
                first_available: 40,
                count: 1,
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

pub(super) fn frame_seeds() -> Vec<Seed> {
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

pub(super) fn alert_seeds() -> Vec<Seed> {
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
