//! A reply whose record would exceed the client's frame limit is never sealed, and the
//! largest body the hub accepts reaches a default client.

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
fn a_record_over_the_clients_limit_is_not_sealed() {
    let mut w = World::new(ServerConfig::default(), HubConfig::default());
    let p = w.add_peer("otto");
    w.connect(p, AuthMode::Register);
    let id = w.peers[p].conn.unwrap();
    let now = w.now;
    // 65,500 bytes encode (the wire allows 65,535) but do not fit a 64 KiB frame.
    let conn = w.conns.get_mut(&id).unwrap();
    conn.handle_reply(now, &room_message(65_500));
    assert_eq!(conn.close_code(), Some(ErrorCode::ServerError));
    w.run();
    assert!(received_bodies(&w, p).is_empty());
    // The client was told why, rather than choking on a frame it cannot take.
    assert_eq!(w.closed(p), Some(ErrorCode::ServerError));
}
