//! The durable-rooms messages of protocol version 2: their exact layout (hand-computed from
//! docs/PROTOCOL.md, so a field order shared by a wrong encoder and a wrong decoder is still
//! caught), the room flags byte, and refusals of truncated, padded and invalid input.

extern crate alloc;

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::samples::*;
use crate::wire::*;

fn enc_client(m: &ClientMsg<'_>) -> String {
    let mut buf = vec![0u8; m.encoded_len()];
    let n = m.encode(&mut buf).expect("valid message");
    hex::encode(&buf[..n])
}

fn enc_server(m: &ServerMsg<'_>) -> String {
    let mut buf = vec![0u8; m.encoded_len()];
    let n = m.encode(&mut buf).expect("valid message");
    hex::encode(&buf[..n])
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).expect("test hex")
}

fn members() -> NameEntries<'static> {
    NameEntries::new(2, MEMBERS_RAW).expect("valid")
}

/// Every new or changed client message, with its bytes (spaces between fields).
fn client_layouts() -> Vec<(ClientMsg<'static>, &'static str)> {
    use ClientMsg::*;
    let abc = room(b"ABC234");
    vec![
        (
            CreateRoom {
                req: 6,
                private: true,
                title: "Lobby",
            },
            "10 00000006 01 05 4c6f626279",
        ),
        (
            CreateRoom {
                req: 6,
                private: false,
                title: "",
            },
            "10 00000006 00 00",
        ),
        (
            InviteMember {
                req: 14,
                room: abc,
                name: "bob",
            },
            "17 0000000e 414243323334 03 626f62",
        ),
        (
            RemoveMember {
                req: 15,
                room: abc,
                name: "bob",
            },
            "18 0000000f 414243323334 03 626f62",
        ),
        (
            SetRoomTitle {
                req: 16,
                room: abc,
                title: "Lobby",
            },
            "19 00000010 414243323334 05 4c6f626279",
        ),
        (
            AckRoom { room: abc, seq: 5 },
            "1a 414243323334 0000000000000005",
        ),
        (
            FetchHistory {
                req: 17,
                room: abc,
                before: 100,
                limit: 50,
            },
            "1b 00000011 414243323334 0000000000000064 32",
        ),
    ]
}

/// Every new or changed server message, with its bytes (spaces between fields).
fn server_layouts() -> Vec<(ServerMsg<'static>, &'static str)> {
    use ServerMsg::*;
    let abc = room(b"ABC234");
    vec![
        (
            RoomJoined {
                req: 6,
                room: abc,
                private: true,
                direct: false,
                title: "Lobby",
                admin: "alice",
                members: members(),
            },
            "89 00000006 414243323334 01 05 4c6f626279 05 616c696365 02 05 616c696365 03 626f62",
        ),
        (
            RoomGap {
                room: abc,
                first_available: 7,
            },
            "92 414243323334 0000000000000007",
        ),
        (
            RoomInvited {
                room: abc,
                title: "Lobby",
                by: "alice",
            },
            "93 414243323334 05 4c6f626279 05 616c696365",
        ),
        (
            RoomRemoved {
                room: abc,
                by: "alice",
            },
            "94 414243323334 05 616c696365",
        ),
        (
            RoomTitle {
                room: abc,
                title: "Lobby",
            },
            "95 414243323334 05 4c6f626279",
        ),
        (
            HistoryMessage {
                req: 17,
                room: abc,
                seq: 5,
                from: "alice",
                timestamp: 1_000_000,
                body: b"\xCA\xFE",
            },
            "96 00000011 414243323334 0000000000000005 05 616c696365 00000000000f4240 0002 cafe",
        ),
        (
            HistoryDone {
                req: 17,
                room: abc,
                first_available: 3,
                count: 2,
            },
            "97 00000011 414243323334 0000000000000003 0002",
        ),
    ]
}

#[test]
fn v2_messages_have_the_documented_layout() {
    for (msg, hex) in client_layouts() {
        let bytes = unhex(hex);
        assert_eq!(enc_client(&msg), hex::encode(&bytes), "{msg:?}");
        assert_eq!(msg.encoded_len(), bytes.len());
        assert_eq!(ClientMsg::decode(&bytes), Result::Ok(msg));
    }
    for (msg, hex) in server_layouts() {
        let bytes = unhex(hex);
        assert_eq!(enc_server(&msg), hex::encode(&bytes), "{msg:?}");
        assert_eq!(msg.encoded_len(), bytes.len());
        assert_eq!(ServerMsg::decode(&bytes), Result::Ok(msg));
    }
}

#[test]
fn v2_messages_refuse_every_truncation_and_a_trailing_byte() {
    let client = client_layouts().into_iter().map(|(_, h)| (unhex(h), true));
    let server = server_layouts().into_iter().map(|(_, h)| (unhex(h), false));
    for (bytes, is_client) in client.chain(server) {
        for cut in 0..bytes.len() {
            assert_eq!(
                decode_any(&bytes[..cut], is_client),
                Err(WireError::Truncated),
                "prefix {cut} of {bytes:02x?}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            decode_any(&longer, is_client),
            Err(WireError::TrailingBytes)
        );
    }
}

#[test]
fn room_flags_define_the_private_and_direct_bits() {
    // CreateRoom: [type][req][flags][title]; RoomJoined: [type][req][room][flags]...
    let create = unhex("10 00000006 01 05 4c6f626279");
    let joined = unhex(server_layouts()[0].1);
    for flags in 0..=255u8 {
        let mut c = create.clone();
        c[5] = flags;
        let mut j = joined.clone();
        j[11] = flags;
        match flags {
            0 | ROOM_FLAG_PRIVATE => {
                let want = flags == ROOM_FLAG_PRIVATE;
                let Result::Ok(ClientMsg::CreateRoom { private, .. }) = ClientMsg::decode(&c)
                else {
                    panic!("CreateRoom with flags {flags} refused");
                };
                assert_eq!(private, want);
                let Result::Ok(ServerMsg::RoomJoined { private, .. }) = ServerMsg::decode(&j)
                else {
                    panic!("RoomJoined with flags {flags} refused");
                };
                assert_eq!(private, want);
            }
            f if f & !(ROOM_FLAG_PRIVATE | ROOM_FLAG_DIRECT) == 0 => {
                // The direct bit is the server's to set: a client cannot create one.
                assert_eq!(ClientMsg::decode(&c), Err(WireError::BadValue), "{flags}");
                let Result::Ok(ServerMsg::RoomJoined {
                    private, direct, ..
                }) = ServerMsg::decode(&j)
                else {
                    panic!("RoomJoined with flags {flags} refused");
                };
                assert!(direct);
                assert_eq!(private, f & ROOM_FLAG_PRIVATE != 0);
            }
            _ => {
                assert_eq!(ClientMsg::decode(&c), Err(WireError::BadValue), "{flags}");
                assert_eq!(ServerMsg::decode(&j), Err(WireError::BadValue), "{flags}");
            }
        }
    }
}

#[test]
fn a_version_1_create_room_is_not_read_as_version_2() {
    // Version 1 had no flags byte: `[0x10][req][title]`. Its title length is read as the
    // flags byte; any title longer than one byte sets a reserved bit and is refused.
    let v1 = unhex("10 00000006 05 4c6f626279");
    assert_eq!(ClientMsg::decode(&v1), Err(WireError::BadValue));
    let v1_empty = unhex("10 00000006 00");
    assert_eq!(ClientMsg::decode(&v1_empty), Err(WireError::Truncated));
}

#[test]
fn v2_fields_are_checked_on_encode_and_decode() {
    let abc = room(b"ABC234");
    let long_title = "t".repeat(MAX_TITLE_LEN + 1);
    let mut buf = [0xEEu8; 256];
    let refused = |m: ClientMsg<'_>| {
        let mut out = [0xEEu8; 256];
        let got = m.encode(&mut out);
        assert!(out.iter().all(|&b| b == 0xEE), "written on failure");
        got
    };
    assert_eq!(
        refused(ClientMsg::InviteMember {
            req: 1,
            room: abc,
            name: "no one"
        }),
        Err(WireError::BadName)
    );
    assert_eq!(
        refused(ClientMsg::RemoveMember {
            req: 1,
            room: abc,
            name: ""
        }),
        Err(WireError::BadName)
    );
    assert_eq!(
        refused(ClientMsg::SetRoomTitle {
            req: 1,
            room: abc,
            title: &long_title
        }),
        Err(WireError::TooLong)
    );
    assert_eq!(
        refused(ClientMsg::SetRoomTitle {
            req: 1,
            room: abc,
            title: "a\tb"
        }),
        Err(WireError::BadText)
    );
    assert_eq!(
        refused(ClientMsg::AckRoom {
            room: RoomId(*b"ABC23O"),
            seq: 1
        }),
        Err(WireError::BadRoomId)
    );
    let no_admin = ServerMsg::RoomJoined {
        req: 1,
        room: abc,
        private: false,
        direct: false,
        title: "",
        admin: "",
        members: NameEntries::EMPTY,
    };
    assert_eq!(no_admin.encode(&mut buf), Err(WireError::BadName));
    let bad_by = ServerMsg::RoomInvited {
        room: abc,
        title: "",
        by: "b\u{e9}",
    };
    assert_eq!(bad_by.encode(&mut buf), Err(WireError::BadName));
    let huge = vec![0u8; usize::from(u16::MAX) + 1];
    let mut out = vec![0u8; huge.len() + 64];
    let too_big = ServerMsg::HistoryMessage {
        req: 1,
        room: abc,
        seq: 1,
        from: "a",
        timestamp: 0,
        body: &huge,
    };
    assert_eq!(too_big.encode(&mut out), Err(WireError::TooLong));
    assert!(buf.iter().all(|&b| b == 0xEE), "written on failure");

    // Decoding: lowercase room IDs, empty names and control characters are refused.
    assert_eq!(
        ClientMsg::decode(&unhex("1a 616263323334 0000000000000005")),
        Err(WireError::BadRoomId)
    );
    assert_eq!(
        ClientMsg::decode(&unhex("17 0000000e 414243323334 00")),
        Err(WireError::BadName)
    );
    assert_eq!(
        ServerMsg::decode(&unhex("95 414243323334 03 61 0a 62")),
        Err(WireError::BadText)
    );
    assert_eq!(
        ServerMsg::decode(&unhex("89 00000006 414243323334 00 00 00 00")),
        Err(WireError::BadName),
        "RoomJoined needs an admin"
    );
    // A client type is not a server type and vice versa.
    assert_eq!(
        ServerMsg::decode(&unhex("1a 414243323334 0000000000000005")),
        Err(WireError::UnknownType(MSG_ACK_ROOM))
    );
    assert_eq!(
        ClientMsg::decode(&unhex("92 414243323334 0000000000000007")),
        Err(WireError::UnknownType(MSG_ROOM_GAP))
    );
}

/// The largest history message still fits a default frame: the body limit leaves room.
#[test]
fn the_largest_history_message_fits_a_default_frame() {
    let body = vec![0u8; MAX_BODY_LEN];
    let msg = ServerMsg::HistoryMessage {
        req: u32::MAX,
        room: room(b"ABC234"),
        seq: u64::MAX,
        from: NAME32,
        timestamp: u64::MAX,
        body: &body,
    };
    assert_eq!(msg.encoded_len(), MAX_BODY_LEN + 62);
    // 16 bytes of record tag.
    assert!(msg.encoded_len() + 16 <= DEFAULT_MAX_FRAME as usize);
}
