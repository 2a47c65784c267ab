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
    forgetful_with_window(HubConfig::default().room_window)
}

/// [`forgetful`], pushing at most `window` unacknowledged messages per member and room.
fn forgetful_with_window(window: usize) -> Driver {
    let hub = HubConfig {
        log_memory_messages: 1,
        room_window: window,
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

/// Where in `out` the replies to `conn` that `is` picks are.
fn positions(out: &[(ConnId, Reply)], conn: u64, is: impl Fn(&Reply) -> bool) -> Vec<usize> {
    (out.iter().enumerate())
        .filter(|(_, (c, r))| *c == ConnId(conn) && is(r))
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn a_catch_up_read_from_the_store_comes_before_the_replies_to_later_requests() {
    let mut d = forgetful();
    let mut store = MemoryStore::new();
    bob_away(&mut d, &mut store, 3);
    login(&mut d, 3, "bob", 2);
    let batch = d.poll_batch().expect("a load");
    // bob asks for something that needs no store while his catch-up is being read.
    request(&mut d, 3, Request::ListRooms { req: 9 });
    let early = replies(&mut d);
    let listed = |r: &Reply| matches!(r, Reply::RoomList { req: 9, .. });
    assert!(
        positions(&early, 3, listed).is_empty(),
        "overtook: {early:?}"
    );
    let loaded = batch.apply_to(&mut store).unwrap();
    d.handle_stored(T, batch.id, loaded).unwrap();
    let out = replies(&mut d);
    assert_eq!(pushed(&out, 3), [1, 2, 3]);
    let caught_up = positions(&out, 3, |r| matches!(r, Reply::RoomMessage { .. }));
    let list = positions(&out, 3, listed);
    assert!(
        list.len() == 1 && caught_up.iter().all(|&i| i < list[0]),
        "{out:?}"
    );
    assert!(d.is_drained(), "the wait ended with the answer");
}

#[test]
fn a_history_page_read_from_the_store_comes_before_later_replies_and_others_go_on() {
    let mut d = forgetful();
    let mut store = MemoryStore::new();
    let room = bob_away(&mut d, &mut store, 4);
    let fetch = Request::FetchHistory {
        req: 7,
        room,
        before: 3,
        limit: 2,
    };
    request(&mut d, 1, fetch);
    request(&mut d, 1, Request::ListRooms { req: 8 });
    say_hello(&mut d, 1, room);
    let early = replies(&mut d);
    assert!(positions(&early, 1, |_| true).is_empty(), "{early:?}");
    assert_eq!(store_all(&mut d, &mut store), 1);
    let out = replies(&mut d);
    let page = positions(&out, 1, |r| matches!(r, Reply::HistoryDone { req: 7, .. }));
    let list = positions(&out, 1, |r| matches!(r, Reply::RoomList { req: 8, .. }));
    assert!(page.len() == 1 && list.len() == 1 && page < list, "{out:?}");
    assert!(d.is_drained());
}

#[test]
fn a_full_window_waits_for_nothing_and_the_next_window_keeps_its_place() {
    let mut d = forgetful_with_window(2);
    let mut store = MemoryStore::new();
    let room = bob_away(&mut d, &mut store, 0);
    for seq in 1..=5 {
        say_hello(&mut d, 1, room);
        // alice reads along: her window pins nothing.
        request(&mut d, 1, Request::AckRoom { room, seq });
    }
    store_all(&mut d, &mut store);
    replies(&mut d);
    login(&mut d, 3, "bob", 2);
    assert_eq!(store_all(&mut d, &mut store), 1);
    assert_eq!(pushed(&replies(&mut d), 3), [1, 2]);
    assert!(
        d.is_drained(),
        "bob waits for his acknowledgement, not the store"
    );
    request(&mut d, 3, Request::AckRoom { room, seq: 2 });
    let batch = d.poll_batch().expect("the ack and a load");
    assert_eq!(batch.loads.len(), 1, "{batch:?}");
    request(&mut d, 3, Request::ListRooms { req: 9 });
    let loaded = batch.apply_to(&mut store).unwrap();
    d.handle_stored(T, batch.id, loaded).unwrap();
    store_all(&mut d, &mut store);
    let out = replies(&mut d);
    assert_eq!(pushed(&out, 3), [3, 4]);
    let list = positions(&out, 3, |r| matches!(r, Reply::RoomList { req: 9, .. }));
    let last = positions(&out, 3, |r| matches!(r, Reply::RoomMessage { .. }));
    assert!(
        list.len() == 1 && last.iter().all(|&i| i < list[0]),
        "{out:?}"
    );
}
