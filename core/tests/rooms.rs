//! Durable rooms through real clients: catch-up after an absence, the application's
//! acknowledgements, and no repeats once acknowledged.

mod common;

use common::World;
use cove_core::hub::{HubConfig, Reply};
use cove_core::server::ServerConfig;
use cove_core::wire::{AuthMode, RoomId};

fn seqs(w: &World, p: usize) -> Vec<u64> {
    w.replies(p)
        .into_iter()
        .filter_map(|r| match r {
            Reply::RoomMessage { seq, .. } => Some(seq),
            _ => None,
        })
        .collect()
}

/// alice's room with bob in it; bob leaves the network and alice says three things.
fn bob_misses_three() -> (World, usize, usize, RoomId) {
    let mut w = World::new(ServerConfig::default(), HubConfig::default());
    let (alice, bob) = (w.add_peer("alice"), w.add_peer("bob"));
    w.connect(alice, AuthMode::Register);
    w.connect(bob, AuthMode::Register);
    let now = w.now;
    w.client(alice).create_room(now, "lobby").unwrap();
    w.run();
    let room = w
        .replies(alice)
        .into_iter()
        .find_map(|r| match r {
            Reply::RoomJoined { room, .. } => Some(room),
            _ => None,
        })
        .unwrap();
    w.client(bob).join_room(now, room).unwrap();
    w.run();
    w.drop_connection(bob);
    for text in ["m1", "m2", "m3"] {
        let now = w.now;
        w.client(alice)
            .send_room(now, room, text.as_bytes())
            .unwrap();
        w.run();
    }
    w.client_config.auto_ack_rooms = false;
    w.take_seen(bob);
    (w, alice, bob, room)
}

#[test]
fn a_returning_member_catches_up_and_stays_a_member() {
    let (mut w, _, bob, room) = bob_misses_three();
    w.connect(bob, AuthMode::Login);
    let replies = w.replies(bob);
    assert!(
        matches!(&replies[0], Reply::RoomJoined { req: 0, room: r, .. } if *r == room),
        "the room is announced before its catch-up: {replies:?}"
    );
    assert_eq!(seqs(&w, bob), [1, 2, 3]);
    assert_eq!(w.client(bob).rooms(), [room]);
    assert_eq!(w.hub().room_members(room).unwrap().count(), 2);
}

#[test]
fn unacknowledged_room_messages_come_again_and_acknowledged_ones_never() {
    let (mut w, _, bob, room) = bob_misses_three();
    w.connect(bob, AuthMode::Login);
    assert_eq!(seqs(&w, bob), [1, 2, 3]);
    // The application showed only the first two before it died.
    let now = w.now;
    w.client(bob).ack_room(now, room, 2).unwrap();
    w.run();
    w.drop_connection(bob);
    w.take_seen(bob);
    w.connect(bob, AuthMode::Login);
    assert_eq!(seqs(&w, bob), [3], "not replayed from the cursor");
    // It acknowledges the third, but the ack is lost with the connection.
    let now = w.now;
    w.client(bob).ack_room(now, room, 3).unwrap();
    let c = w.client(bob);
    let n = c.pending_transmit().len();
    c.advance_transmit(n);
    w.drop_connection(bob);
    w.take_seen(bob);
    w.connect(bob, AuthMode::Login);
    assert!(
        seqs(&w, bob).is_empty(),
        "an acknowledged message was shown again"
    );
    assert_eq!(w.client(bob).room_cursor(room), 3);
}
