//! One sample of every message, at the limits of each field, and helpers to encode them.

extern crate alloc;

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::wire::*;

pub(super) const USERS_RAW: &[u8] = b"\x05alice\x01\x03bob\x02\x05carol\x00";
pub(super) const MEMBERS_RAW: &[u8] = b"\x05alice\x03bob";
pub(super) const ROOMS_RAW: &[u8] = b"ABC234\x07Lobby 1\x03\x14XYZ789\x00\x00\x14";
pub(super) const NAME32: &str = "abcdefghijklmnopqrstuvwxyz012345";

pub(super) fn room(s: &[u8; 6]) -> RoomId {
    RoomId::parse(s).expect("test room IDs are valid")
}

pub(super) fn title64() -> String {
    "t".repeat(MAX_TITLE_LEN)
}

pub(super) fn text256() -> String {
    "é".repeat(MAX_TEXT_LEN / 2)
}

pub(super) fn client_samples<'a>(
    title: &'a str,
    text: &'a str,
    big: &'a [u8],
) -> Vec<ClientMsg<'a>> {
    use ClientMsg::*;
    vec![
        GetPublicKey {
            req: 1,
            name: "bob",
        },
        GetPublicKey {
            req: u32::MAX,
            name: NAME32,
        },
        SendDm {
            req: 7,
            to: "bob",
            body: b"hi",
        },
        SendDm {
            req: 0,
            to: "a.b-c_d",
            body: b"",
        },
        SendDm {
            req: 9,
            to: "x",
            body: big,
        },
        FetchPending { req: 3 },
        SetStatus {
            req: 4,
            status: Status::Away,
        },
        SetStatus {
            req: 4,
            status: Status::Online,
        },
        ListUsers { req: 5 },
        Logout,
        AckDm { msg_id: u64::MAX },
        CreateRoom {
            req: 6,
            private: false,
            title: "Lobby",
        },
        CreateRoom {
            req: 6,
            private: true,
            title: "",
        },
        CreateRoom {
            req: 6,
            private: true,
            title,
        },
        JoinRoom {
            req: 8,
            room: room(b"ABC234"),
        },
        LeaveRoom {
            req: 8,
            room: room(b"ZZZZZZ"),
        },
        ListRooms { req: 10 },
        RoomMessage {
            req: 11,
            room: room(b"XYZ789"),
            body: b"\x00\x01\x02",
        },
        UploadPrekeys {
            req: 12,
            bundle: b"bundle",
        },
        FetchPrekeys {
            req: 13,
            name: "carol",
        },
        InviteMember {
            req: 14,
            room: room(b"ABC234"),
            name: NAME32,
        },
        RemoveMember {
            req: 15,
            room: room(b"ABC234"),
            name: "dave",
        },
        SetRoomTitle {
            req: 16,
            room: room(b"ABC234"),
            title,
        },
        SetRoomTitle {
            req: 16,
            room: room(b"ABC234"),
            title: "",
        },
        AckRoom {
            room: room(b"XYZ789"),
            seq: u64::MAX,
        },
        FetchHistory {
            req: 17,
            room: room(b"XYZ789"),
            before: u64::MAX,
            limit: u8::MAX,
        },
        FetchHistory {
            req: 17,
            room: room(b"XYZ789"),
            before: 0,
            limit: 0,
        },
        UploadKeyPackages {
            req: 18,
            last_resort: true,
            packages: KeyPackageList::parse(&[0, 1, 7]).expect("valid"),
        },
        FetchKeyPackage {
            req: 19,
            name: "bob",
        },
        InitGroup {
            req: 20,
            room: room(b"XYZ789"),
            group_info: big,
        },
        GroupCommit {
            req: 21,
            room: room(b"XYZ789"),
            commit: b"c",
            group_info: b"g",
            add: Some("carol"),
            welcome: b"w",
        },
        GroupCommit {
            req: 21,
            room: room(b"XYZ789"),
            commit: b"",
            group_info: b"",
            add: None,
            welcome: b"",
        },
        GetGroupInfo {
            req: 22,
            room: room(b"XYZ789"),
        },
        OpenDirect {
            req: 23,
            peer: "bob",
            group_info: b"g",
            welcome: b"w",
        },
        Ping { nonce: 1 },
        Pong { nonce: 2 },
        KeyUpdate {
            request_update: true,
        },
        KeyUpdate {
            request_update: false,
        },
        Close {
            code: ErrorCode::ConnectionTerminated,
            text: "bye",
        },
        Close {
            code: ErrorCode::NotAuthenticated,
            text,
        },
    ]
}

pub(super) fn server_samples<'a>(
    title: &'a str,
    text: &'a str,
    big: &'a [u8],
) -> Vec<ServerMsg<'a>> {
    use ServerMsg::*;
    vec![
        AuthResponse {
            mode: AuthMode::Register,
            result: Result::Ok(0),
        },
        AuthResponse {
            mode: AuthMode::Login,
            result: Result::Ok(3),
        },
        AuthResponse {
            mode: AuthMode::Register,
            result: Result::Err(ErrorCode::UserExists),
        },
        AuthResponse {
            mode: AuthMode::Login,
            result: Result::Err(ErrorCode::AuthFailed),
        },
        PublicKey {
            req: 1,
            name: "bob",
            key: Some([7; 32]),
        },
        PublicKey {
            req: 1,
            name: "nobody",
            key: None,
        },
        MessageAck {
            req: 7,
            msg_id: 42,
            status: AckStatus::Queued,
        },
        MessageAck {
            req: 7,
            msg_id: 43,
            status: AckStatus::Failed,
        },
        IncomingDm {
            msg_id: 42,
            from: "alice",
            timestamp: 1_700_000_000_000_000,
            body: big,
        },
        UserList {
            req: 5,
            users: UserEntries::new(3, USERS_RAW).expect("valid"),
        },
        UserList {
            req: 5,
            users: UserEntries::EMPTY,
        },
        StatusUpdate {
            name: "bob",
            status: Status::Offline,
        },
        Error {
            req: 0,
            code: ErrorCode::RateLimited,
            text: "slow down",
        },
        Error {
            req: 9,
            code: ErrorCode::RoomFull,
            text,
        },
        RoomJoined {
            req: 6,
            room: room(b"ABC234"),
            private: true,
            direct: false,
            title,
            admin: NAME32,
            members: NameEntries::new(2, MEMBERS_RAW).expect("valid"),
        },
        RoomJoined {
            req: 0,
            room: room(b"ABC234"),
            private: false,
            direct: false,
            title: "",
            admin: "alice",
            members: NameEntries::EMPTY,
        },
        RoomLeft {
            req: 8,
            room: room(b"ABC234"),
        },
        RoomList {
            req: 10,
            rooms: RoomEntries::new(2, ROOMS_RAW).expect("valid"),
        },
        RoomList {
            req: 10,
            rooms: RoomEntries::EMPTY,
        },
        RoomMessage {
            room: room(b"XYZ789"),
            seq: 1,
            from: "alice",
            timestamp: 5,
            body: b"\x00\x01",
        },
        MemberJoined {
            room: room(b"XYZ789"),
            name: "dave",
        },
        MemberLeft {
            room: room(b"XYZ789"),
            name: "dave",
        },
        PrekeyBundle {
            req: 13,
            name: "carol",
            bundle: Some(b"bundle"),
        },
        PrekeyBundle {
            req: 13,
            name: "carol",
            bundle: Some(b""),
        },
        PrekeyBundle {
            req: 13,
            name: "carol",
            bundle: None,
        },
        Ok { req: 99 },
        PendingDone { req: 3, count: 17 },
        RoomGap {
            room: room(b"XYZ789"),
            first_available: 1 << 40,
        },
        RoomInvited {
            room: room(b"ABC234"),
            title,
            by: NAME32,
        },
        RoomInvited {
            room: room(b"ABC234"),
            title: "",
            by: "alice",
        },
        RoomRemoved {
            room: room(b"ABC234"),
            by: "alice",
        },
        RoomTitle {
            room: room(b"ABC234"),
            title,
        },
        HistoryMessage {
            req: 17,
            room: room(b"XYZ789"),
            seq: 12,
            from: NAME32,
            timestamp: u64::MAX,
            body: big,
        },
        HistoryMessage {
            req: 17,
            room: room(b"XYZ789"),
            seq: 13,
            from: "bob",
            timestamp: 0,
            body: b"",
        },
        HistoryDone {
            req: 17,
            room: room(b"XYZ789"),
            first_available: 12,
            count: u16::MAX,
        },
        KeyPackage {
            req: 19,
            name: "bob",
            package: big,
        },
        GroupInfo {
            req: 22,
            room: room(b"XYZ789"),
            epoch: u64::MAX,
            group_info: b"g",
        },
        KeyPackagesLow { remaining: 0 },
        Ping { nonce: 3 },
        Pong { nonce: 4 },
        KeyUpdate {
            request_update: true,
        },
        Close {
            code: ErrorCode::ShuttingDown,
            text: "maintenance",
        },
    ]
}

/// Calls `f` with every sample's encoding (client and server), checked to round-trip.
pub(super) fn with_encodings(mut f: impl FnMut(&[u8], bool)) {
    let (title, text, big) = (title64(), text256(), vec![0xA5u8; u16::MAX as usize]);
    for msg in client_samples(&title, &text, &big) {
        let mut buf = vec![0u8; msg.encoded_len()];
        let n = msg.encode(&mut buf).expect("sample encodes");
        assert_eq!(n, buf.len(), "{msg:?}");
        f(&buf, true);
    }
    for msg in server_samples(&title, &text, &big) {
        let mut buf = vec![0u8; msg.encoded_len()];
        let n = msg.encode(&mut buf).expect("sample encodes");
        assert_eq!(n, buf.len(), "{msg:?}");
        f(&buf, false);
    }
}

pub(super) fn decode_any(buf: &[u8], client: bool) -> Result<(), WireError> {
    if client {
        ClientMsg::decode(buf).map(drop)
    } else {
        ServerMsg::decode(buf).map(drop)
    }
}
