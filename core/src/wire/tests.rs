//! Tests of the whole wire module: round trips, prefixes, limits, vectors, byte soup.

extern crate alloc;

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::*;

const USERS_RAW: &[u8] = b"\x05alice\x01\x03bob\x02\x05carol\x00";
const MEMBERS_RAW: &[u8] = b"\x05alice\x03bob";
const ROOMS_RAW: &[u8] = b"ABC234\x07Lobby 1\x03\x14XYZ789\x00\x00\x14";
const NAME32: &str = "abcdefghijklmnopqrstuvwxyz012345";

fn room(s: &[u8; 6]) -> RoomId {
    RoomId::parse(s).expect("test room IDs are valid")
}

fn title64() -> String {
    "t".repeat(MAX_TITLE_LEN)
}

fn text256() -> String {
    "é".repeat(MAX_TEXT_LEN / 2)
}

fn client_samples<'a>(title: &'a str, text: &'a str, big: &'a [u8]) -> Vec<ClientMsg<'a>> {
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
            title: "Lobby",
        },
        CreateRoom { req: 6, title: "" },
        CreateRoom { req: 6, title },
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

fn server_samples<'a>(title: &'a str, text: &'a str, big: &'a [u8]) -> Vec<ServerMsg<'a>> {
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
            title,
            members: NameEntries::new(2, MEMBERS_RAW).expect("valid"),
        },
        RoomJoined {
            req: 6,
            room: room(b"ABC234"),
            title: "",
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
fn with_encodings(mut f: impl FnMut(&[u8], bool)) {
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

fn decode_any(buf: &[u8], client: bool) -> Result<(), WireError> {
    if client {
        ClientMsg::decode(buf).map(drop)
    } else {
        ServerMsg::decode(buf).map(drop)
    }
}

#[test]
fn every_client_message_round_trips() {
    let (title, text, big) = (title64(), text256(), vec![0xA5u8; u16::MAX as usize]);
    let samples = client_samples(&title, &text, &big);
    let mut types: Vec<u8> = samples.iter().map(ClientMsg::msg_type).collect();
    types.sort_unstable();
    types.dedup();
    let all: Vec<u8> = (0x03..=0x09)
        .chain(0x10..=0x16)
        .chain(0x20..=0x23)
        .collect();
    assert_eq!(types, all, "a sample of every client message");
    for msg in samples {
        let mut buf = vec![0u8; msg.encoded_len()];
        assert_eq!(msg.encode(&mut buf), Result::Ok(buf.len()));
        assert_eq!(buf[0], msg.msg_type());
        assert_eq!(ClientMsg::decode(&buf), Result::Ok(msg));
    }
}

#[test]
fn every_server_message_round_trips() {
    let (title, text, big) = (title64(), text256(), vec![0xA5u8; u16::MAX as usize]);
    let samples = server_samples(&title, &text, &big);
    let mut types: Vec<u8> = samples.iter().map(ServerMsg::msg_type).collect();
    types.sort_unstable();
    types.dedup();
    let all: Vec<u8> = (0x20..=0x23).chain(0x81..=0x91).collect();
    assert_eq!(types, all, "a sample of every server message");
    for msg in samples {
        let mut buf = vec![0u8; msg.encoded_len()];
        assert_eq!(msg.encode(&mut buf), Result::Ok(buf.len()));
        assert_eq!(buf[0], msg.msg_type());
        assert_eq!(ServerMsg::decode(&buf), Result::Ok(msg));
    }
}

#[test]
fn every_strict_prefix_is_refused() {
    with_encodings(|buf, client| {
        for i in 0..buf.len() {
            assert!(
                decode_any(&buf[..i], client).is_err(),
                "prefix {i} of {buf:02x?} accepted"
            );
        }
    });
}

#[test]
fn a_trailing_byte_is_refused() {
    with_encodings(|buf, client| {
        let mut longer = buf.to_vec();
        longer.push(0);
        assert_eq!(decode_any(&longer, client), Err(WireError::TrailingBytes));
    });
}

#[test]
fn unknown_types_are_refused() {
    let (title, text, big) = (title64(), text256(), vec![]);
    let client: Vec<u8> = client_samples(&title, &text, &big)
        .iter()
        .map(ClientMsg::msg_type)
        .collect();
    let server: Vec<u8> = server_samples(&title, &text, &big)
        .iter()
        .map(ServerMsg::msg_type)
        .collect();
    for t in 0..=255u8 {
        if !client.contains(&t) {
            assert_eq!(ClientMsg::decode(&[t]), Err(WireError::UnknownType(t)));
            // Padded so that no known type could be satisfied either.
            assert_eq!(
                ClientMsg::decode(&[t, 0, 0, 0, 0]),
                Err(WireError::UnknownType(t))
            );
        }
        if !server.contains(&t) {
            assert_eq!(ServerMsg::decode(&[t]), Err(WireError::UnknownType(t)));
        }
    }
    assert_eq!(ClientMsg::decode(&[]), Err(WireError::Truncated));
    assert_eq!(ServerMsg::decode(&[]), Err(WireError::Truncated));
    // A server message is not a client message and vice versa.
    assert_eq!(
        ClientMsg::decode(&[MSG_OK, 0, 0, 0, 1]),
        Err(WireError::UnknownType(MSG_OK))
    );
    assert_eq!(
        ServerMsg::decode(&[MSG_LIST_USERS, 0, 0, 0, 1]),
        Err(WireError::UnknownType(MSG_LIST_USERS))
    );
}

#[test]
fn a_small_buffer_gets_the_needed_size_and_stays_untouched() {
    let (title, text, big) = (title64(), text256(), vec![1u8; 300]);
    let check = |needed: usize, encode: &dyn Fn(&mut [u8]) -> Result<usize, WireError>| {
        for size in [0, 1, needed / 2, needed - 1]
            .into_iter()
            .filter(|&s| s < needed)
        {
            let mut buf = vec![0xEEu8; size];
            assert_eq!(encode(&mut buf), Err(WireError::BufferTooSmall { needed }));
            assert!(buf.iter().all(|&b| b == 0xEE), "buffer written on failure");
        }
        let mut buf = vec![0xEEu8; needed + 3];
        assert_eq!(encode(&mut buf), Result::Ok(needed));
        assert_eq!(buf[needed..], [0xEE; 3], "wrote past the message");
    };
    for msg in client_samples(&title, &text, &big) {
        check(msg.encoded_len(), &|out| msg.encode(out));
    }
    for msg in server_samples(&title, &text, &big) {
        check(msg.encoded_len(), &|out| msg.encode(out));
    }
}

#[test]
fn bad_names_are_refused_both_ways() {
    let long = "a".repeat(MAX_NAME_LEN + 1);
    for bad in ["al\u{7}ice", "al ice", "", long.as_str(), "é"] {
        let msg = ClientMsg::SendDm {
            req: 1,
            to: bad,
            body: b"x",
        };
        let mut buf = [0xEEu8; 128];
        assert_eq!(msg.encode(&mut buf), Err(WireError::BadName), "{bad:?}");
        assert!(buf.iter().all(|&b| b == 0xEE));
        let mut raw = vec![MSG_GET_PUBLIC_KEY, 0, 0, 0, 1, bad.len() as u8];
        raw.extend_from_slice(bad.as_bytes());
        assert_eq!(ClientMsg::decode(&raw), Err(WireError::BadName), "{bad:?}");
    }
    // Invalid UTF-8 is a bad name, not a panic.
    let raw = [MSG_STATUS_UPDATE, 2, 0xC3, 0x28, 1];
    assert_eq!(ServerMsg::decode(&raw), Err(WireError::BadName));
    // 32 bytes is fine.
    let ok = ClientMsg::GetPublicKey {
        req: 1,
        name: NAME32,
    };
    assert_eq!(ok.encoded_len(), 1 + 4 + 1 + 32);
    assert!(ok.encode(&mut [0; 38]).is_ok());
}

#[test]
fn bad_titles_texts_and_values_are_refused() {
    let long_title = "t".repeat(MAX_TITLE_LEN + 1);
    let long_text = "x".repeat(MAX_TEXT_LEN + 1);
    let mut buf = [0u8; 512];
    let enc = |m: ClientMsg<'_>, buf: &mut [u8]| m.encode(buf);
    assert_eq!(
        enc(
            ClientMsg::CreateRoom {
                req: 1,
                title: &long_title
            },
            &mut buf
        ),
        Err(WireError::TooLong)
    );
    assert_eq!(
        enc(
            ClientMsg::CreateRoom {
                req: 1,
                title: "a\nb"
            },
            &mut buf
        ),
        Err(WireError::BadText)
    );
    assert_eq!(
        enc(
            ClientMsg::Close {
                code: ErrorCode::ServerError,
                text: &long_text
            },
            &mut buf
        ),
        Err(WireError::TooLong)
    );
    let big = vec![0u8; u16::MAX as usize + 1];
    let mut out = vec![0u8; big.len() + 16];
    assert_eq!(
        ClientMsg::UploadPrekeys {
            req: 1,
            bundle: &big
        }
        .encode(&mut out),
        Err(WireError::TooLong)
    );
    assert_eq!(
        enc(
            ClientMsg::JoinRoom {
                req: 1,
                room: RoomId(*b"ABC23O")
            },
            &mut buf
        ),
        Err(WireError::BadRoomId)
    );

    // Decoding.
    let mut raw = vec![MSG_CREATE_ROOM, 0, 0, 0, 1, 65];
    raw.extend_from_slice(long_title.as_bytes());
    assert_eq!(ClientMsg::decode(&raw), Err(WireError::TooLong));
    assert_eq!(
        ClientMsg::decode(&[MSG_CREATE_ROOM, 0, 0, 0, 1, 3, b'a', 0x1B, b'b']),
        Err(WireError::BadText)
    );
    assert_eq!(
        ClientMsg::decode(&[MSG_CLOSE, 0x01, 0x01, 0x01]),
        Err(WireError::TooLong),
        "a 257-byte text is refused from its length"
    );
    assert_eq!(
        ClientMsg::decode(b"\x11\x00\x00\x00\x01abc234"),
        Err(WireError::BadRoomId),
        "room IDs are upper case on the wire"
    );
    assert_eq!(
        ClientMsg::decode(b"\x11\x00\x00\x00\x01ABC23I"),
        Err(WireError::BadRoomId)
    );
    assert_eq!(
        ClientMsg::decode(&[MSG_SET_STATUS, 0, 0, 0, 1, 3]),
        Err(WireError::BadValue)
    );
    assert_eq!(
        ClientMsg::decode(&[MSG_KEY_UPDATE, 2]),
        Err(WireError::BadValue)
    );
    assert_eq!(
        ClientMsg::decode(&[MSG_CLOSE, 0x09, 0, 0]),
        Err(WireError::BadValue),
        "unknown error code"
    );
    assert_eq!(
        ServerMsg::decode(&[MSG_PUBLIC_KEY, 0, 0, 0, 1, 1, b'a', 2]),
        Err(WireError::BadValue),
        "found flag other than 0/1"
    );
    assert_eq!(
        ServerMsg::decode(&[MSG_MESSAGE_ACK, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 3]),
        Err(WireError::BadValue)
    );
}

#[test]
fn auth_response_is_canonical() {
    fn d(b: &[u8]) -> Result<ServerMsg<'_>, WireError> {
        ServerMsg::decode(b)
    }
    assert_eq!(
        d(&[0x81, 1, 0, 0, 0, 0, 2]),
        Result::Ok(ServerMsg::AuthResponse {
            mode: AuthMode::Register,
            result: Result::Ok(2)
        })
    );
    assert_eq!(
        d(&[0x82, 0, 4, 0, 0, 0, 0]),
        Result::Ok(ServerMsg::AuthResponse {
            mode: AuthMode::Login,
            result: Result::Err(ErrorCode::AuthFailed)
        })
    );
    assert_eq!(
        d(&[0x81, 1, 4, 0, 0, 0, 0]),
        Err(WireError::BadValue),
        "ok with a code"
    );
    assert_eq!(
        d(&[0x81, 0, 0, 0, 0, 0, 0]),
        Err(WireError::BadValue),
        "failure without a code"
    );
    assert_eq!(
        d(&[0x81, 0, 0x77, 0, 0, 0, 0]),
        Err(WireError::BadValue),
        "unknown code"
    );
    assert_eq!(
        d(&[0x81, 0, 4, 0, 0, 0, 1]),
        Err(WireError::BadValue),
        "failure with pending"
    );
    assert_eq!(
        d(&[0x81, 2, 0, 0, 0, 0, 0]),
        Err(WireError::BadValue),
        "ok byte 2"
    );
}

#[test]
fn lists_iterate_and_are_checked() {
    let users = UserEntries::new(3, USERS_RAW).expect("valid");
    let got: Vec<_> = users.iter().collect();
    assert_eq!(
        got,
        [
            ("alice", Status::Online),
            ("bob", Status::Away),
            ("carol", Status::Offline)
        ]
    );
    assert_eq!(users.len(), 3);
    let names: Vec<_> = NameEntries::new(2, MEMBERS_RAW)
        .expect("valid")
        .into_iter()
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    let rooms: Vec<_> = RoomEntries::new(2, ROOMS_RAW)
        .expect("valid")
        .iter()
        .collect();
    assert_eq!(
        rooms,
        [
            RoomEntry {
                room: room(b"ABC234"),
                title: "Lobby 1",
                members: 3,
                capacity: 20
            },
            RoomEntry {
                room: room(b"XYZ789"),
                title: "",
                members: 0,
                capacity: 20
            },
        ]
    );

    // Wrong counts and bad entries.
    assert_eq!(
        UserEntries::new(2, USERS_RAW),
        Err(WireError::TrailingBytes)
    );
    assert_eq!(UserEntries::new(4, USERS_RAW), Err(WireError::Truncated));
    assert_eq!(
        UserEntries::new(1, b"\x03bob\x07"),
        Err(WireError::BadValue)
    );
    assert_eq!(NameEntries::new(1, b"\x03b b"), Err(WireError::BadName));
    assert_eq!(
        RoomEntries::new(1, b"abc234\x00\x00\x00"),
        Err(WireError::BadRoomId)
    );

    // A hand-made bad list is refused when encoding, and iterates without panicking.
    let bogus = UserEntries {
        count: 5,
        raw: b"\x03bob\x01\xFF",
    };
    assert_eq!(bogus.iter().count(), 1);
    let msg = ServerMsg::UserList {
        req: 1,
        users: bogus,
    };
    assert_eq!(msg.encode(&mut [0; 64]), Err(WireError::BadName));

    // The same bytes are built entry by entry into a caller buffer, without allocation.
    let mut buf = [0u8; 64];
    let mut n = 0;
    for (name, status) in [
        ("alice", Status::Online),
        ("bob", Status::Away),
        ("carol", Status::Offline),
    ] {
        assert_eq!(UserEntries::entry_len(name), 2 + name.len());
        n += UserEntries::encode_entry(&mut buf[n..], name, status).expect("fits");
    }
    assert_eq!(&buf[..n], USERS_RAW);
    let mut buf = [0u8; 64];
    let mut n = 0;
    for name in ["alice", "bob"] {
        n += NameEntries::encode_entry(&mut buf[n..], name).expect("fits");
    }
    assert_eq!(&buf[..n], MEMBERS_RAW);
    let mut n = 0;
    for e in &rooms {
        assert_eq!(RoomEntries::entry_len(e), 9 + e.title.len());
        n += RoomEntries::encode_entry(&mut buf[n..], e).expect("fits");
    }
    assert_eq!(&buf[..n], ROOMS_RAW);
    assert_eq!(
        UserEntries::encode_entry(&mut [0; 3], "alice", Status::Online),
        Err(WireError::BufferTooSmall { needed: 7 })
    );
    assert_eq!(
        NameEntries::encode_entry(&mut [0; 64], "a\u{0}"),
        Err(WireError::BadName)
    );
}

#[cfg(feature = "alloc")]
#[test]
fn builders_accumulate_checked_entries() {
    let mut users = UserListBuilder::new();
    users.push("alice", Status::Online).expect("valid");
    users.push("bob", Status::Away).expect("valid");
    assert_eq!(
        users.push("b\u{7f}b", Status::Away),
        Err(WireError::BadName)
    );
    users.push("carol", Status::Offline).expect("valid");
    assert_eq!(users.len(), 3);
    assert_eq!(users.raw_len(), USERS_RAW.len());
    assert_eq!(
        users.entries(),
        UserEntries::new(3, USERS_RAW).expect("valid")
    );

    let mut names = NameListBuilder::new();
    assert!(names.is_empty());
    names.push("alice").expect("valid");
    names.push("bob").expect("valid");
    assert_eq!(names.entries().raw, MEMBERS_RAW);
    for _ in 2..255 {
        names.push("x").expect("room for 255");
    }
    assert_eq!(names.push("y"), Err(WireError::TooLong));
    assert_eq!(names.len(), 255);
    let joined = ServerMsg::RoomJoined {
        req: 1,
        room: room(b"ABC234"),
        title: "t",
        members: names.entries(),
    };
    let mut buf = vec![0u8; joined.encoded_len()];
    joined.encode(&mut buf).expect("valid");
    assert_eq!(ServerMsg::decode(&buf), Result::Ok(joined));
    names.clear();
    assert_eq!(names.entries(), NameEntries::EMPTY);

    let mut rooms = RoomListBuilder::new();
    for e in RoomEntries::new(2, ROOMS_RAW).expect("valid") {
        rooms.push(&e).expect("valid");
    }
    assert_eq!(rooms.entries().raw, ROOMS_RAW);
    let bad = RoomEntry {
        room: room(b"ABC234"),
        title: "\u{0}",
        members: 0,
        capacity: 1,
    };
    assert_eq!(rooms.push(&bad), Err(WireError::BadText));
    assert_eq!(rooms.len(), 2);
}

/// The vectors printed in docs/PROTOCOL.md.
#[test]
fn documented_vectors() {
    let h = |msg_len: usize, enc: &dyn Fn(&mut [u8]) -> Result<usize, WireError>| {
        let mut buf = vec![0u8; msg_len];
        let n = enc(&mut buf).expect("vector encodes");
        hex::encode(&buf[..n])
    };

    let dm = ClientMsg::SendDm {
        req: 7,
        to: "bob",
        body: b"hi",
    };
    assert_eq!(
        h(dm.encoded_len(), &|o| dm.encode(o)),
        "040000000703626f6200026869"
    );
    assert_eq!(
        ClientMsg::decode(&hex::decode("040000000703626f6200026869").expect("hex")),
        Result::Ok(dm)
    );

    let auth = ServerMsg::AuthResponse {
        mode: AuthMode::Login,
        result: Result::Ok(3),
    };
    assert_eq!(h(auth.encoded_len(), &|o| auth.encode(o)), "82010000000003");

    let list = ServerMsg::UserList {
        req: 1,
        users: UserEntries::new(2, b"\x05alice\x01\x03bob\x02").expect("valid"),
    };
    assert_eq!(
        h(list.encoded_len(), &|o| list.encode(o)),
        "8600000001000205616c6963650103626f6202"
    );

    let rm = ServerMsg::RoomMessage {
        room: room(b"ABC234"),
        seq: 5,
        from: "alice",
        timestamp: 1_000_000,
        body: b"\xCA\xFE",
    };
    assert_eq!(
        h(rm.encoded_len(), &|o| rm.encode(o)),
        "8c414243323334000000000000000505616c69636500000000000f42400002cafe"
    );

    let alert = Alert {
        code: ErrorCode::FrameTooLarge,
        text: "too big",
    };
    assert_eq!(
        h(alert.encoded_len() + HEADER_LEN, &|o| alert.encode_frame(o)),
        "0000000a15140007746f6f20626967"
    );
    let frame = hex::decode("0000000a15140007746f6f20626967").expect("hex");
    let (f, used) = decode_frame(&frame, 1024)
        .expect("valid")
        .expect("complete");
    assert_eq!((f.typ, used), (FrameType::Alert, frame.len()));
    assert_eq!(Alert::decode(f.payload), Result::Ok(alert));
}

// ---------------------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------------------

#[test]
fn frames_wait_for_their_bytes() {
    let mut buf = [0u8; 64];
    let n = encode_frame(FrameType::Record, b"0123456789abcdef!", &mut buf).expect("fits");
    assert_eq!(n, HEADER_LEN + 17);
    assert_eq!(buf[..HEADER_LEN], encode_header(FrameType::Record, 17));
    for i in 0..n {
        assert_eq!(
            decode_frame(&buf[..i], 1024),
            Result::Ok(None),
            "prefix {i}"
        );
        let want = if i < HEADER_LEN { HEADER_LEN } else { n };
        assert_eq!(needed_len(&buf[..i], 1024), Result::Ok(want));
    }
    let (frame, used) = decode_frame(&buf[..n], 1024)
        .expect("ok")
        .expect("complete");
    assert_eq!(used, n);
    assert_eq!(frame.typ, FrameType::Record);
    assert_eq!(frame.payload, b"0123456789abcdef!");
    assert_eq!(frame.encoded_len(), n);
    // An empty payload is a complete frame of 5 bytes.
    assert_eq!(
        decode_frame(&[0, 0, 0, 0, FRAME_SYN], 0),
        Result::Ok(Some((
            Frame {
                typ: FrameType::Syn,
                payload: &[]
            },
            5
        )))
    );
}

#[test]
fn an_oversize_frame_is_refused_from_its_header() {
    let header = [0xFF, 0xFF, 0xFF, 0xFF, FRAME_RECORD];
    let err = FrameError::TooLarge {
        len: u32::MAX,
        max: 65_536,
    };
    assert_eq!(decode_frame(&header, 65_536), Err(err));
    assert_eq!(needed_len(&header, 65_536), Err(err));
    assert_eq!(err.code(), ErrorCode::FrameTooLarge);
    // Exactly the maximum is allowed; one more is not.
    assert_eq!(
        decode_frame(&[0, 0, 1, 0, FRAME_RECORD], 256),
        Result::Ok(None)
    );
    assert_eq!(
        decode_frame(&[0, 0, 1, 1, FRAME_RECORD], 256),
        Err(FrameError::TooLarge { len: 257, max: 256 })
    );
    // Four bytes of a huge length are not judged yet.
    assert_eq!(decode_frame(&header[..4], 16), Result::Ok(None));
}

#[test]
fn an_unknown_frame_type_is_refused_from_its_header() {
    for t in 0..=255u8 {
        let header = [0, 0, 0, 1, t];
        let r = decode_frame(&header, 16);
        match FrameType::from_u8(t) {
            Some(ft) => {
                assert_eq!(ft.as_u8(), t);
                assert_eq!(r, Result::Ok(None));
            }
            None => assert_eq!(r, Err(FrameError::UnknownType(t))),
        }
    }
    assert_eq!(FrameError::UnknownType(9).code(), ErrorCode::InvalidFormat);
}

#[test]
fn back_to_back_frames_report_what_they_consumed() {
    let mut stream = [0u8; 64];
    let a = encode_frame(FrameType::Syn, b"abc", &mut stream).expect("fits");
    let b = encode_frame(FrameType::Ack, b"defgh", &mut stream[a..]).expect("fits");
    let stream = &stream[..a + b + 2]; // plus 2 bytes of a third header
    let (f1, n1) = decode_frame(stream, 16).expect("ok").expect("complete");
    assert_eq!((f1.typ, f1.payload, n1), (FrameType::Syn, &b"abc"[..], 8));
    let (f2, n2) = decode_frame(&stream[n1..], 16)
        .expect("ok")
        .expect("complete");
    assert_eq!(
        (f2.typ, f2.payload, n2),
        (FrameType::Ack, &b"defgh"[..], 10)
    );
    assert_eq!(decode_frame(&stream[n1 + n2..], 16), Result::Ok(None));
}

#[test]
fn frame_encoding_refuses_small_buffers_untouched() {
    let mut buf = [0xEEu8; 7];
    assert_eq!(
        encode_frame(FrameType::Record, b"abc", &mut buf),
        Err(BufferTooSmall { needed: 8 })
    );
    assert_eq!(buf, [0xEE; 7]);
    let f = Frame {
        typ: FrameType::SynAck,
        payload: b"abc",
    };
    let mut buf = [0u8; 8];
    assert_eq!(f.encode(&mut buf), Result::Ok(8));
    assert_eq!(buf, [0, 0, 0, 3, FRAME_SYN_ACK, b'a', b'b', b'c']);
}

#[test]
fn alerts_round_trip_and_are_checked() {
    let a = Alert {
        code: ErrorCode::UnsupportedVersion,
        text: "v2 only",
    };
    let mut buf = [0xEEu8; 32];
    assert_eq!(
        a.encode(&mut buf[..4]),
        Err(WireError::BufferTooSmall { needed: 10 })
    );
    assert_eq!(buf, [0xEE; 32]);
    let n = a.encode(&mut buf).expect("fits");
    assert_eq!(n, a.encoded_len());
    assert_eq!(Alert::decode(&buf[..n]), Result::Ok(a));
    for i in 0..n {
        assert!(Alert::decode(&buf[..i]).is_err());
    }
    assert_eq!(Alert::decode(&buf[..n + 1]), Err(WireError::TrailingBytes));
    let mut frame = [0u8; 32];
    let m = a.encode_frame(&mut frame).expect("fits");
    assert_eq!(
        frame[..HEADER_LEN],
        encode_header(FrameType::Alert, n as u32)
    );
    assert_eq!(frame[HEADER_LEN..m], buf[..n]);
    assert_eq!(
        Alert::decode(&[0x00, 0, 0]),
        Err(WireError::BadValue),
        "code 0 is not a code"
    );
    let bad = Alert {
        code: ErrorCode::ServerError,
        text: "a\rb",
    };
    assert_eq!(bad.encode_frame(&mut frame), Err(WireError::BadText));
}

#[test]
fn errors_display() {
    use core::fmt::Write;
    let mut s = String::new();
    write!(
        s,
        "{} / {} / {}",
        WireError::UnknownType(0x42),
        FrameError::TooLarge { len: 9, max: 8 },
        BufferTooSmall { needed: 3 }
    )
    .expect("string");
    assert_eq!(
        s,
        "unknown message type 0x42 / frame payload of 9 bytes exceeds the maximum of 8 / \
         output buffer too small: 3 bytes needed"
    );
    let _: &dyn core::error::Error = &WireError::Truncated;
    let _: &dyn core::error::Error = &FrameError::UnknownType(0);
}

// ---------------------------------------------------------------------------------------
// Byte soup
// ---------------------------------------------------------------------------------------

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> usize {
        (self.next() % n) as usize
    }
}

/// Whatever decodes must encode back to the very same bytes (the encoding is canonical).
fn check_canonical(buf: &[u8]) -> usize {
    let mut accepted = 0;
    if let Result::Ok(m) = ClientMsg::decode(buf) {
        let mut out = vec![0u8; m.encoded_len()];
        assert_eq!(m.encode(&mut out), Result::Ok(buf.len()), "{buf:02x?}");
        assert_eq!(out, buf);
        accepted += 1;
    }
    if let Result::Ok(m) = ServerMsg::decode(buf) {
        let mut out = vec![0u8; m.encoded_len()];
        assert_eq!(m.encode(&mut out), Result::Ok(buf.len()), "{buf:02x?}");
        assert_eq!(out, buf);
        if let ServerMsg::UserList { users, .. } = m {
            assert_eq!(users.iter().count(), users.len());
        }
        if let ServerMsg::RoomJoined { members, .. } = m {
            assert_eq!(members.iter().count(), members.len());
        }
        if let ServerMsg::RoomList { rooms, .. } = m {
            assert_eq!(rooms.iter().count(), rooms.len());
        }
        accepted += 1;
    }
    if let Result::Ok(a) = Alert::decode(buf) {
        let mut out = vec![0u8; a.encoded_len()];
        assert_eq!(a.encode(&mut out), Result::Ok(buf.len()));
        assert_eq!(out, buf);
    }
    let _ = decode_frame(buf, 64);
    let _ = decode_frame(buf, u32::MAX);
    accepted
}

#[test]
fn random_byte_soup_never_panics() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let types: Vec<u8> = (0x03..=0x09)
        .chain(0x10..=0x16)
        .chain(0x20..=0x23)
        .chain(0x81..=0x91)
        .collect();
    let mut accepted = 0;
    for _ in 0..20_000 {
        let len = rng.below(48);
        let mut buf: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Mostly valid type bytes and small lengths, so parsing gets past the first field.
        if let Some(first) = buf.first_mut()
            && rng.below(4) != 0
        {
            *first = types[rng.below(types.len() as u64)];
        }
        for b in buf.iter_mut().skip(1) {
            if rng.below(3) == 0 {
                *b = rng.below(6) as u8;
            }
        }
        accepted += check_canonical(&buf);
    }
    assert!(accepted > 100, "soup too thin: only {accepted} accepted");
}

#[test]
fn mutated_samples_never_panic() {
    let mut rng = XorShift(0xD1B5_4A32_D192_ED03);
    let mut encodings = Vec::new();
    with_encodings(|buf, _| {
        if buf.len() < 600 {
            encodings.push(buf.to_vec());
        }
    });
    for round in 0..20_000 {
        let mut buf = encodings[round % encodings.len()].clone();
        for _ in 0..=rng.below(3) {
            match rng.below(4) {
                0 if !buf.is_empty() => {
                    let i = rng.below(buf.len() as u64);
                    buf[i] = rng.next() as u8;
                }
                1 if !buf.is_empty() => {
                    let i = rng.below(buf.len() as u64);
                    buf[i] ^= 1 << rng.below(8);
                }
                2 => buf.truncate(rng.below(buf.len() as u64 + 1)),
                _ => buf.push(rng.next() as u8),
            }
        }
        check_canonical(&buf);
        // As a frame stream too.
        let mut framed = encode_header(FrameType::Record, buf.len() as u32).to_vec();
        framed.extend_from_slice(&buf);
        let cut = rng.below(framed.len() as u64 + 1);
        let _ = decode_frame(&framed[..cut], 256);
    }
}
