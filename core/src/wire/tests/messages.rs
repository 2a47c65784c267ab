//! Messages: round trips, refused prefixes and trailers, limits, canonical forms and the
//! vectors printed in docs/PROTOCOL.md.

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;

use super::samples::*;
use crate::wire::*;

#[test]
fn every_client_message_round_trips() {
    let (title, text, big) = (title64(), text256(), vec![0xA5u8; u16::MAX as usize]);
    let samples = client_samples(&title, &text, &big);
    let mut types: Vec<u8> = samples.iter().map(ClientMsg::msg_type).collect();
    types.sort_unstable();
    types.dedup();
    let all: Vec<u8> = (0x03..=0x09)
        .chain(0x10..=0x1B)
        .chain(0x20..=0x23)
        .chain(0x30..=0x35)
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
    let all: Vec<u8> = (0x20..=0x23).chain(0x81..=0x9A).collect();
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
                private: false,
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
                private: true,
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
    let mut raw = vec![MSG_CREATE_ROOM, 0, 0, 0, 1, ROOM_FLAG_PRIVATE, 65];
    raw.extend_from_slice(long_title.as_bytes());
    assert_eq!(ClientMsg::decode(&raw), Err(WireError::TooLong));
    assert_eq!(
        ClientMsg::decode(&[MSG_CREATE_ROOM, 0, 0, 0, 1, 0, 3, b'a', 0x1B, b'b']),
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
