//! The conversions of every message that protocol version 2 added or changed: a client
//! message becomes the hub request with the same fields, and a reply survives
//! `encode_reply` → `ServerMsg::decode` → `reply_from` unchanged.

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::wire::RoomId;

fn room() -> RoomId {
    RoomId(*b"ABC234")
}

#[test]
fn v2_client_messages_become_their_requests() {
    let cases = [
        (
            ClientMsg::CreateRoom {
                req: 1,
                private: true,
                title: "Lobby",
            },
            Request::CreateRoom {
                req: 1,
                title: "Lobby".into(),
                private: true,
            },
        ),
        (
            ClientMsg::CreateRoom {
                req: 2,
                private: false,
                title: "",
            },
            Request::CreateRoom {
                req: 2,
                title: "".into(),
                private: false,
            },
        ),
        (
            ClientMsg::InviteMember {
                req: 3,
                room: room(),
                name: "bob",
            },
            Request::InviteMember {
                req: 3,
                room: room(),
                name: "bob".into(),
            },
        ),
        (
            ClientMsg::RemoveMember {
                req: 4,
                room: room(),
                name: "carol",
            },
            Request::RemoveMember {
                req: 4,
                room: room(),
                name: "carol".into(),
            },
        ),
        (
            ClientMsg::SetRoomTitle {
                req: 5,
                room: room(),
                title: "New",
            },
            Request::SetRoomTitle {
                req: 5,
                room: room(),
                title: "New".into(),
            },
        ),
        (
            ClientMsg::AckRoom {
                room: room(),
                seq: 42,
            },
            Request::AckRoom {
                room: room(),
                seq: 42,
            },
        ),
        (
            ClientMsg::FetchHistory {
                req: 6,
                room: room(),
                before: 99,
                limit: 7,
            },
            Request::FetchHistory {
                req: 6,
                room: room(),
                before: 99,
                limit: 7,
            },
        ),
    ];
    for (msg, want) in cases {
        assert_eq!(request_from(&msg), Some(want), "{msg:?}");
    }
}

fn v2_replies() -> Vec<Reply> {
    let name = |s: &str| -> Arc<str> { s.into() };
    vec![
        Reply::RoomJoined {
            req: 1,
            room: room(),
            title: name("Lobby"),
            members: vec![name("alice"), name("bob")],
            private: true,
            direct: false,
            admin: name("alice"),
        },
        Reply::RoomJoined {
            req: 0,
            room: room(),
            title: name(""),
            members: vec![name("bob")],
            private: false,
            direct: false,
            admin: name("bob"),
        },
        Reply::RoomGap {
            room: room(),
            first_available: 17,
        },
        Reply::RoomInvited {
            room: room(),
            title: name("Secret"),
            by: name("alice"),
        },
        Reply::RoomRemoved {
            room: room(),
            by: name("alice"),
        },
        Reply::RoomTitle {
            room: room(),
            title: name("Renamed"),
        },
        Reply::HistoryMessage {
            req: 2,
            room: room(),
            seq: 17,
            from: name("bob"),
            timestamp: 1_000_000,
            body: Arc::from(&b"\xCA\xFE"[..]),
        },
        Reply::HistoryDone {
            req: 2,
            room: room(),
            first_available: 17,
            count: 1,
        },
    ]
}

#[test]
fn v2_replies_survive_the_wire() {
    let mut scratch = ListScratch::default();
    let mut out = Vec::new();
    for reply in v2_replies() {
        encode_reply(&reply, &mut scratch, &mut out).expect("valid reply");
        let msg = ServerMsg::decode(&out).expect("decodes");
        assert_eq!(reply_from(&msg), Some(reply));
    }
}

#[test]
fn a_reply_with_an_invalid_admin_is_not_encoded() {
    let reply = Reply::RoomJoined {
        req: 1,
        room: room(),
        title: "t".into(),
        members: vec![],
        private: false,
        direct: false,
        admin: "".into(),
    };
    let mut out = Vec::new();
    assert_eq!(
        encode_reply(&reply, &mut ListScratch::default(), &mut out),
        Err(WireError::BadName)
    );
}
