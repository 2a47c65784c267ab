//! A reply whose record would exceed the client's frame limit is never sealed, the
//! largest body the hub accepts reaches a default client, and a client that announces a
//! small frame limit is never sent more: bodies that would not fit it are refused to
//! their senders, or skipped for it when they were accepted before it said so.

mod common;

use std::sync::Arc;

use common::World;
use cove_core::hub::{HubConfig, Reply};
use cove_core::server::ServerConfig;
use cove_core::wire::{AuthMode, ErrorCode, MAX_BODY_LEN, MAX_NAME_LEN, RoomId};

fn room_message(len: usize) -> Reply {
    Reply::RoomMessage {
        room: RoomId(*b"ABCDEF"),
        seq: 1,
        from: "x".repeat(MAX_NAME_LEN).into(),
        timestamp: 1,
        body: Arc::from(vec![7u8; len]),
    }
}

fn received_bodies(w: &World, p: usize) -> Vec<usize> {
    w.replies(p)
        .into_iter()
        .filter_map(|r| match r {
            Reply::RoomMessage { body, .. } => Some(body.len()),
            _ => None,
        })
        .collect()
}

#[test]
fn the_largest_body_reaches_a_default_client() {
    let mut w = World::new(ServerConfig::default(), HubConfig::default());
    let p = w.add_peer("nora");
    w.connect(p, AuthMode::Register);
    let id = w.peers[p].conn.unwrap();
    let now = w.now;
    w.conns
        .get_mut(&id)
        .unwrap()
        .handle_reply(now, &room_message(MAX_BODY_LEN));
    w.run();
    assert_eq!(received_bodies(&w, p), [MAX_BODY_LEN]);
    assert_eq!(w.closed(p), None);
}

#[test]
fn a_room_message_over_the_clients_limit_becomes_a_gap_and_the_connection_stays() {
    let mut w = World::new(ServerConfig::default(), HubConfig::default());
    let p = w.add_peer("otto");
    w.connect(p, AuthMode::Register);
    let id = w.peers[p].conn.unwrap();
    let now = w.now;
    // 65,500 bytes encode (the wire allows 65,535) but do not fit a 64 KiB frame.
    let conn = w.conns.get_mut(&id).unwrap();
    conn.handle_reply(now, &room_message(65_500));
    assert_eq!(conn.close_code(), None);
    w.run();
    assert!(received_bodies(&w, p).is_empty());
    // The client skips it, as it skips what retention dropped, and stays connected.
    let gap = Reply::RoomGap {
        room: RoomId(*b"ABCDEF"),
        first_available: 2,
    };
    assert!(w.replies(p).contains(&gap), "{:?}", w.replies(p));
    assert_eq!(w.closed(p), None);
}

/// A world with `small` (announcing a 4 KiB frame limit) and `big` (the default) in one
/// room; returns it, the two peers and the room.
fn small_and_big() -> (World, usize, usize, RoomId) {
    let mut w = World::new(ServerConfig::default(), HubConfig::default());
    let big = w.add_peer("big");
    let small = w.add_peer("small");
    w.connect(big, AuthMode::Register);
    let now = w.now;
    w.client(big).create_room(now, "mixed").unwrap();
    w.run();
    let room = w.client(big).rooms()[0];
    w.client_config.max_frame = 4096;
    w.connect(small, AuthMode::Register);
    w.client(small).join_room(now, room).unwrap();
    w.run();
    assert_eq!(w.client(small).rooms(), [room]);
    (w, small, big, room)
}

#[test]
fn a_body_over_a_members_limit_is_refused_to_its_sender() {
    let (mut w, small, big, room) = small_and_big();
    let now = w.now;
    // The largest body whose relayed record fits 4,096 bytes, and one byte more.
    let overhead = 62 - 32 + "big".len() + 16;
    let fits = 4096 - overhead;
    w.client(big).send_room(now, room, &vec![1; fits]).unwrap();
    w.client(big)
        .send_room(now, room, &vec![2; fits + 1])
        .unwrap();
    w.client(big).send_room(now, room, &vec![3; 8000]).unwrap();
    w.client(big).send_dm(now, "small", &vec![4; 8000]).unwrap();
    w.client(big).send_dm(now, "small", &[5; 100]).unwrap();
    w.run();
    assert_eq!(received_bodies(&w, small), [fits]);
    let dms: Vec<usize> = (w.replies(small).into_iter())
        .filter_map(|r| match r {
            Reply::IncomingDm { body, .. } => Some(body.len()),
            _ => None,
        })
        .collect();
    assert_eq!(dms, [100]);
    let too_large = ErrorCode::TooLargeForRecipient;
    assert_eq!(w.errors(big), [too_large, too_large, too_large]);
    assert_eq!(w.closed(small), None);
    assert_eq!(w.closed(big), None);
    // The sender's own copy of the message that fitted came back to it.
    assert_eq!(received_bodies(&w, big), [fits]);
}

#[test]
fn what_was_accepted_before_a_member_announced_a_smaller_limit_is_skipped_for_it() {
    let mut w = World::new(ServerConfig::default(), HubConfig::default());
    let big = w.add_peer("big");
    let small = w.add_peer("small");
    w.connect(big, AuthMode::Register);
    w.connect(small, AuthMode::Register);
    let now = w.now;
    w.client(big).create_room(now, "later").unwrap();
    w.run();
    let room = w.client(big).rooms()[0];
    w.client(small).join_room(now, room).unwrap();
    w.run();
    w.drop_connection(small);
    // While `small` is away it was last seen with the default limit: these are accepted.
    w.client(big).send_room(now, room, &vec![1; 8000]).unwrap();
    w.client(big).send_room(now, room, &[2; 10]).unwrap();
    w.client(big).send_dm(now, "small", &vec![3; 8000]).unwrap();
    w.client(big).send_dm(now, "small", &[4; 20]).unwrap();
    w.run();
    assert_eq!(w.errors(big), []);
    w.take_seen(small);
    // It comes back on a board.
    w.client_config.max_frame = 4096;
    w.connect(small, AuthMode::Login);
    assert_eq!(w.closed(small), None);
    let seen = w.replies(small);
    assert!(seen.contains(&Reply::RoomGap {
        room,
        first_available: 2
    }));
    assert_eq!(received_bodies(&w, small), [10]);
    let dms: Vec<usize> = (seen.iter())
        .filter_map(|r| match r {
            Reply::IncomingDm { body, .. } => Some(body.len()),
            _ => None,
        })
        .collect();
    assert_eq!(dms, [20]);
    assert_eq!(w.errors(small), [ErrorCode::TooLargeForRecipient]);
    // The large DM stays queued for a connection that can take it.
    assert_eq!(w.hub().queued_for("small"), 1);
    // From now on its limit is known: a large body is refused to its sender.
    w.client(big).send_room(now, room, &vec![5; 8000]).unwrap();
    w.run();
    assert_eq!(w.errors(big), [ErrorCode::TooLargeForRecipient]);
    assert_eq!(w.closed(small), None);
}

/// A direct message to a member with a 4 KiB limit: the largest body whose record fits
/// exactly is delivered, one byte more is refused to its sender.
#[test]
fn a_direct_message_at_a_members_limit_fits_and_one_byte_more_is_refused() {
    let (mut w, small, big, _room) = small_and_big();
    let now = w.now;
    let header = cove_core::wire::ServerMsg::IncomingDm {
        msg_id: 0,
        from: "big",
        timestamp: 0,
        body: &[],
    }
    .encoded_len();
    let fits = 4096 - header - 16;
    w.client(big).send_dm(now, "small", &vec![1; fits]).unwrap();
    w.client(big)
        .send_dm(now, "small", &vec![2; fits + 1])
        .unwrap();
    w.run();
    let dms: Vec<usize> = (w.replies(small).into_iter())
        .filter_map(|r| match r {
            Reply::IncomingDm { body, .. } => Some(body.len()),
            _ => None,
        })
        .collect();
    assert_eq!(dms, [fits]);
    assert_eq!(w.errors(big), [ErrorCode::TooLargeForRecipient]);
    assert_eq!(w.closed(small), None);
}
