//! Reads of older room messages through the pipeline: handed out in batches after the
//! batch's writes, answered with `handle_loaded`, their replies ordered like any step's.

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::tests::{T, register, replies, request, say_hello};
use super::*;
use crate::hub::{HubConfig, Request};
use crate::store::MemoryStore;
use crate::wire::{AuthMode, DEFAULT_MAX_FRAME, RoomId};

/// A driver whose hub keeps only each room's newest message in memory.
fn forgetful() -> Driver {
    let hub = HubConfig {
        log_memory_messages: 1,
        ..HubConfig::default()
    };
    Driver::new(Hub::new(hub, 7), DriverConfig::default())
}

/// Hands every batch to `store` as an adapter does, until none is left; the loads read.
fn store_all(d: &mut Driver, store: &mut MemoryStore) -> usize {
    let mut loads = 0;
    while let Some(b) = d.poll_batch() {
        loads += b.loads.len();
        let loaded = b.apply_to(store).unwrap();
        d.handle_stored(T, b.id, loaded).unwrap();
    }
    loads
}

fn login(d: &mut Driver, conn: u64, name: &str, key: u8) {
    let event = ServerEvent::Authenticate {
        name: Arc::from(name),
        key: [key; 32],
        mode: AuthMode::Login,
        max_frame: DEFAULT_MAX_FRAME,
    };
    d.handle_event(T, ConnId(conn), event);
}

fn close(d: &mut Driver, conn: u64) {
    let closed = ServerEvent::Closed {
        code: ErrorCode::ConnectionTerminated,
        by_peer: true,
    };
    d.handle_event(T, ConnId(conn), closed);
}

/// Sequence numbers of the room messages `out` carries to `conn`.
fn pushed(out: &[(ConnId, Reply)], conn: u64) -> Vec<u64> {
    out.iter()
        .filter_map(|(c, r)| match r {
            Reply::RoomMessage { seq, .. } if *c == ConnId(conn) => Some(*seq),
            _ => None,
        })
        .collect()
}

/// alice (1) and bob (2) share a room; bob is away while alice says `n` messages.
fn bob_away(d: &mut Driver, store: &mut MemoryStore, n: usize) -> RoomId {
    register(d, 1, "alice");
    register(d, 2, "bob");
    let create = Request::CreateRoom {
        req: 1,
        title: Arc::from("r"),
        private: false,
    };
    request(d, 1, create);
    store_all(d, store);
    let room = replies(d)
        .into_iter()
        .find_map(|(_, r)| match r {
            Reply::RoomJoined { room, .. } => Some(room),
            _ => None,
        })
        .expect("created");
    request(d, 2, Request::JoinRoom { req: 2, room });
    close(d, 2);
    for _ in 0..n {
        say_hello(d, 1, room);
    }
    assert_eq!(store_all(d, store), 0, "live traffic reads nothing");
    replies(d);
    room
}

#[test]
fn a_member_catching_up_gets_older_messages_once_the_store_answered() {
    let mut d = forgetful();
    let mut store = MemoryStore::new();
    let room = bob_away(&mut d, &mut store, 3);
    login(&mut d, 3, "bob", 2);
    assert!(
        d.has_unbatched(),
        "a step that only reads still needs the committer"
    );
    let batch = d.poll_batch().expect("a load");
    assert!(!d.has_unbatched());
    assert!(batch.ops.is_empty(), "{:?}", batch.ops);
    assert_eq!(batch.loads.len(), 1);
    let load = batch.loads[0];
    assert_eq!((load.room, load.from, load.to), (room, 1, 3));
    assert!(!d.is_drained(), "a load is unanswered");
    let before: Vec<u64> = pushed(&replies(&mut d), 3);
    assert!(
        before.is_empty(),
        "nothing before the older ones: {before:?}"
    );
    let loaded = batch.apply_to(&mut store).unwrap();
    d.handle_stored(T, batch.id, loaded).unwrap();
    assert_eq!(pushed(&replies(&mut d), 3), [1, 2, 3]);
    assert!(d.is_drained());
}

#[test]
fn what_a_load_releases_waits_behind_writes_not_yet_durable() {
    let mut d = forgetful();
    let mut store = MemoryStore::new();
    let room = bob_away(&mut d, &mut store, 3);
    login(&mut d, 3, "bob", 2);
    let batch = d.poll_batch().expect("a load");
    say_hello(&mut d, 1, room);
    let loaded = batch.apply_to(&mut store).unwrap();
    d.handle_stored(T, batch.id, loaded).unwrap();
    let out = replies(&mut d);
    assert!(
        pushed(&out, 3).is_empty(),
        "overtook message 4's write: {out:?}"
    );
    let next = d.poll_batch().expect("message 4");
    assert!(matches!(next.ops[..], [StoreOp::RoomMessageLogged(_)]));
    assert!(
        next.loads.is_empty(),
        "3 and 4 stay whole: bob, connected, needs them"
    );
    let loaded = next.apply_to(&mut store).unwrap();
    d.handle_stored(T, next.id, loaded).unwrap();
    assert_eq!(pushed(&replies(&mut d), 3), [1, 2, 3, 4]);
}
