//! The list views and their builders.

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;

use super::samples::*;
use crate::wire::*;

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
        private: true,
        direct: false,
        title: "t",
        admin: NAME32,
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

    // The count's width bounds a list: a u16 list takes 65535 entries, and a refused entry
    // leaves the list as it was.
    let mut many = UserListBuilder::new();
    for _ in 0..u16::MAX {
        many.push("x", Status::Online).expect("room for 65535");
    }
    let raw_len = many.raw_len();
    assert_eq!(many.push("y", Status::Online), Err(WireError::TooLong));
    assert_eq!((many.len(), many.raw_len()), (65535, raw_len));
}
