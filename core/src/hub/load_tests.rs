//! Older room messages read back from the store: catch-up and history past the messages
//! kept whole, loads that are answered late, stale or short.

use alloc::vec::Vec;

use super::test_server::{Server, T, alice_and_bob, mine};
use super::*;
use crate::store::{LogLoad, Store};

/// Sequence numbers of the room messages among `replies`.
fn pushed(replies: &[Reply]) -> Vec<u64> {
    replies
        .iter()
        .filter_map(|r| match r {
            Reply::RoomMessage { seq, .. } => Some(*seq),
            _ => None,
        })
        .collect()
}

/// Sequence numbers of a history page's messages, and its `HistoryDone` count.
fn page(replies: &[Reply], req: u32) -> (Vec<u64>, Option<u16>) {
    let mut seqs = Vec::new();
    let mut done = None;
    for r in replies {
        match r {
            Reply::HistoryMessage { req: q, seq, .. } if *q == req => seqs.push(*seq),
            Reply::HistoryDone { req: q, count, .. } if *q == req => done = Some(*count),
            _ => {}
        }
    }
    (seqs, done)
}

/// alice says "m{i}" for each `i` of `range` (message `i + 1` of a new room) and reads
/// along, acknowledging each; returns what each message sent everyone.
fn alice_says(
    s: &mut Server,
    a: ConnId,
    room: RoomId,
    range: core::ops::Range<u64>,
) -> Vec<(ConnId, Reply)> {
    let mut out = Vec::new();
    for i in range {
        out.extend(s.say(a, room, &alloc::format!("m{i}")));
        // A connected member who has not read holds messages whole.
        s.request(a, Request::AckRoom { room, seq: i + 1 });
    }
    out
}

/// Limits with a room window of `n` (everything else the default).
fn window(n: usize) -> HubConfig {
    HubConfig {
        room_window: n,
        ..HubConfig::default()
    }
}

/// `c` acknowledges `room` up to `seq`: the sequence numbers that pushes to it.
fn ack(s: &mut Server, c: ConnId, room: RoomId, seq: u64) -> Vec<u64> {
    let out = s.request(c, Request::AckRoom { room, seq });
    pushed(&mine(&out, c))
}

/// alice's room with bob, who was away while alice said `n` messages.
fn bob_missed(config: HubConfig, n: u64) -> (Server, ConnId, RoomId) {
    let (mut s, a, b, room) = alice_and_bob(config);
    s.hub.handle_disconnect(T, b);
    s.settle();
    alice_says(&mut s, a, room, 0..n);
    (s, a, room)
}

#[test]
fn catch_up_past_the_messages_kept_whole_reads_them_from_the_store() {
    let config = window(4);
    let (mut s, _, room) = bob_missed(config, 11);
    assert_eq!(s.loads, 0, "live delivery never reads the store");
    let (b, seen) = s.connect("bob", AuthMode::Login);
    let mut got = pushed(&seen);
    assert_eq!(got, [1, 2, 3, 4], "one window, read back from the store");
    assert_eq!(s.loads, 1);
    while let Some(&last) = got.last().filter(|&&l| l < 11) {
        got.extend(ack(&mut s, b, room, last));
    }
    assert_eq!(
        got,
        (1..=11).collect::<Vec<_>>(),
        "each exactly once, in order"
    );
    assert_eq!(
        s.loads, 3,
        "windows 5-8 loaded; 9 loaded up to the two kept whole"
    );
}

#[test]
fn acks_one_at_a_time_take_the_loaded_window_without_a_load_each() {
    let config = window(4);
    let (mut s, _, room) = bob_missed(config, 11);
    let (b, seen) = s.connect("bob", AuthMode::Login);
    let mut got = pushed(&seen);
    for seq in 1..=11 {
        got.extend(ack(&mut s, b, room, seq));
    }
    assert_eq!(got, (1..=11).collect::<Vec<_>>());
    assert_eq!(s.loads, 3, "1-4, 5-8, 9: a load per window, not per ack");
}

#[test]
fn a_connected_member_who_has_not_read_keeps_messages_whole() {
    let config = window(4);
    let (mut s, a, b, room) = alice_and_bob(config);
    let mut got = pushed(&mine(&alice_says(&mut s, a, room, 0..9), b));
    assert_eq!(got, [1, 2, 3, 4], "bob's window is full");
    for seq in [4, 8] {
        got.extend(ack(&mut s, b, room, seq));
    }
    assert_eq!(got, (1..=9).collect::<Vec<_>>());
    assert_eq!(s.loads, 0, "bob, connected, never waited for the store");
}

#[test]
fn whole_messages_start_at_the_first_a_connected_member_still_needs() {
    let config = window(2);
    let (mut s, a, _b, room) = alice_and_bob(config);
    alice_says(&mut s, a, room, 0..6);
    // bob was pushed 1 and 2 and acknowledged nothing: 3 is the first he needs.
    let tail_first = s.hub.rooms.get(&room).map(|r| r.log.tail_first());
    assert_eq!(tail_first, Some(3));
}

#[test]
fn loaded_messages_retention_drops_are_forgotten() {
    let config = HubConfig {
        log_max_messages: 6,
        ..HubConfig::default()
    };
    let (mut s, a, room) = bob_missed(config, 6);
    s.connect("bob", AuthMode::Login);
    alice_says(&mut s, a, room, 6..9);
    let r = s.hub.rooms.get(&room).expect("room");
    assert_eq!(r.first_retained(), 4);
    let loaded: Vec<u64> = r.loaded.iter().map(|m| m.seq).collect();
    assert_eq!(loaded, [4], "1-3 were loaded, then dropped by retention");
}

#[test]
fn catch_up_after_a_restart_reads_the_store_too() {
    let (mut s, _, _) = bob_missed(HubConfig::default(), 6);
    s.restart();
    let (_, seen) = s.connect("bob", AuthMode::Login);
    assert_eq!(pushed(&seen), [1, 2, 3, 4, 5, 6]);
    assert_eq!(s.loads, 1);
}

#[test]
fn a_restart_reads_only_the_newest_bodies_and_counts_every_byte() {
    let (mut s, _, room) = bob_missed(HubConfig::default(), 6);
    let bytes = |s: &Server| (s.hub.log_bytes_total, s.hub.rooms[&room].log.bytes());
    let before = bytes(&s);
    let records = s.store.load(s.config.log_memory()).expect("load");
    let r = &records.rooms[0];
    let older: Vec<u64> = r.older.iter().map(|m| m.seq).collect();
    let whole: Vec<u64> = r.log.iter().map(|m| m.seq).collect();
    assert_eq!((older, whole), (alloc::vec![1, 2, 3, 4], alloc::vec![5, 6]));
    s.restart();
    let log = &s.hub.rooms[&room].log;
    assert_eq!((log.len(), log.first(), log.tail_first()), (6, Some(1), 5));
    assert!(log.get(4).is_none() && log.get(5).is_some());
    assert_eq!(
        bytes(&s),
        before,
        "retention counts the bodies left in the store"
    );
}

#[test]
fn an_old_history_page_waits_for_the_store_then_comes_whole() {
    let (mut s, a, room) = bob_missed(HubConfig::default(), 9);
    let fetch = |req, before| Request::FetchHistory {
        req,
        room,
        before,
        limit: 3,
    };
    let out = s.request(a, fetch(5, 7));
    assert_eq!(page(&mine(&out, a), 5), (alloc::vec![4, 5, 6], Some(3)));
    assert_eq!(s.loads, 1);
    let out = s.request(a, fetch(6, u64::MAX));
    assert_eq!(page(&mine(&out, a), 6), (alloc::vec![7, 8, 9], Some(3)));
    assert_eq!(s.loads, 2, "8 and 9 are whole in memory, 7 is not");
}

/// A hub whose loads are left for the test to answer (ops are applied at once).
fn unanswered(s: &mut Server, c: ConnId, r: Request) -> (Vec<Reply>, Vec<LogLoad>) {
    s.hub.handle_request(T, c, r);
    let ops: Vec<StoreOp> = core::iter::from_fn(|| s.hub.poll_store_op()).collect();
    s.store.apply(&ops).unwrap();
    let out: Vec<_> = core::iter::from_fn(|| s.hub.poll_delivery()).collect();
    let loads = core::iter::from_fn(|| s.hub.poll_load()).collect();
    (mine(&out, c), loads)
}

#[test]
fn one_load_per_room_at_a_time_and_a_bounded_number_of_pages_wait() {
    let (mut s, a, room) = bob_missed(HubConfig::default(), 9);
    let fetch = |req| Request::FetchHistory {
        req,
        room,
        before: 3,
        limit: 2,
    };
    let (out, loads) = unanswered(&mut s, a, fetch(1));
    assert!(out.is_empty(), "nothing until the store answers: {out:?}");
    assert_eq!(loads.len(), 1);
    assert_eq!((loads[0].from, loads[0].to), (1, 3));
    for req in 2..=loads::MAX_PENDING_HISTORIES as u32 {
        let (out, more) = unanswered(&mut s, a, fetch(req));
        assert!(out.is_empty() && more.is_empty(), "{out:?} {more:?}");
    }
    let (out, _) = unanswered(&mut s, a, fetch(99));
    assert!(
        matches!(
            out[..],
            [Reply::Error {
                req: 99,
                code: ErrorCode::RateLimited,
                ..
            }]
        ),
        "{out:?}"
    );
    let msgs = s.store.read_log(&loads[0]).unwrap();
    s.hub.handle_loaded(T, loads[0], msgs);
    let out = s.settle();
    for req in 1..=loads::MAX_PENDING_HISTORIES as u32 {
        assert_eq!(
            page(&mine(&out, a), req),
            (alloc::vec![1, 2], Some(2)),
            "page {req}"
        );
    }
    assert_eq!(s.loads, 0, "one load answered them all");
}

#[test]
fn an_earlier_loads_answer_coming_again_is_not_taken_for_the_next() {
    let (mut s, a, room) = bob_missed(HubConfig::default(), 9);
    let fetch = |req, before| Request::FetchHistory {
        req,
        room,
        before,
        limit: 3,
    };
    let (_, first) = unanswered(&mut s, a, fetch(1, 4));
    let answer = s.store.read_log(&first[0]).unwrap();
    s.hub.handle_loaded(T, first[0], answer.clone());
    assert_eq!(
        page(&mine(&s.settle(), a), 1),
        (alloc::vec![1, 2, 3], Some(3))
    );
    let (_, second) = unanswered(&mut s, a, fetch(2, 7));
    assert_ne!(second[0].id, first[0].id, "each load its own ID");
    s.hub.handle_loaded(T, first[0], answer);
    assert!(
        s.hub.poll_load().is_none(),
        "the old answer changed nothing"
    );
    assert!(s.settle().is_empty());
    let msgs = s.store.read_log(&second[0]).unwrap();
    s.hub.handle_loaded(T, second[0], msgs);
    assert_eq!(
        page(&mine(&s.settle(), a), 2),
        (alloc::vec![4, 5, 6], Some(3))
    );
}

#[test]
fn an_answer_the_hub_no_longer_waits_for_changes_nothing() {
    let (mut s, a, room) = bob_missed(HubConfig::default(), 9);
    let fetch = Request::FetchHistory {
        req: 1,
        room,
        before: 4,
        limit: 3,
    };
    let (_, loads) = unanswered(&mut s, a, fetch);
    let msgs = s.store.read_log(&loads[0]).unwrap();
    let stale = LogLoad {
        id: loads[0].id + 1,
        ..loads[0]
    };
    s.hub.handle_loaded(T, stale, msgs.clone());
    assert!(s.settle().is_empty(), "an ID it never gave out");
    // alice leaves: the room (its only member left, bob never joined) is deleted.
    let (b, _) = s.connect("bob", AuthMode::Login);
    s.request(b, Request::LeaveRoom { req: 3, room });
    s.request(a, Request::LeaveRoom { req: 4, room });
    s.hub.handle_loaded(T, loads[0], msgs);
    assert!(s.settle().is_empty(), "the room is gone");
}

#[test]
fn what_the_store_lost_becomes_a_gap_instead_of_a_stall() {
    let (mut s, _, room) = bob_missed(HubConfig::default(), 6);
    let (b, out) = s.connect("bob", AuthMode::Login);
    assert_eq!(pushed(&out), [1, 2, 3, 4, 5, 6]);
    // The store loses messages 1-2 while bob is away again (and the server restarts,
    // so nothing loaded is at hand).
    s.hub.handle_disconnect(T, b);
    s.settle();
    s.restart();
    s.hub
        .handle_connect(T, ConnId(50), "bob", [b'b'; 32], AuthMode::Login);
    let loads: Vec<LogLoad> = core::iter::from_fn(|| s.hub.poll_load()).collect();
    let _: Vec<_> = core::iter::from_fn(|| s.hub.poll_delivery()).collect();
    assert_eq!((loads[0].from, loads[0].to), (1, 5));
    let msgs: Vec<_> = s
        .store
        .read_log(&loads[0])
        .unwrap()
        .into_iter()
        .filter(|m| m.seq > 2)
        .collect();
    let total = s.hub.log_bytes_total;
    s.hub.handle_loaded(T, loads[0], msgs);
    let ops: Vec<StoreOp> = core::iter::from_fn(|| s.hub.poll_store_op()).collect();
    assert!(
        ops.contains(&StoreOp::LogTrimmed { room, below: 3 }),
        "retention catches up with the store: {ops:?}"
    );
    assert_eq!(
        s.hub.log_bytes_total,
        total - 4,
        "m0 and m1 no longer count"
    );
    let out: Vec<_> = core::iter::from_fn(|| s.hub.poll_delivery()).collect();
    let out = mine(&out, ConnId(50));
    assert!(
        matches!(
            out[0],
            Reply::RoomGap {
                first_available: 3,
                ..
            }
        ),
        "{out:?}"
    );
    assert_eq!(pushed(&out), [3, 4, 5, 6]);
}

/// A hub restored from one room whose log a store handed back as `older` (without
/// bodies) and `whole` sequence numbers, each body `seq` bytes long.
fn restored(older: &[u64], whole: &[u64]) -> (Hub, RoomId) {
    use crate::store::{MemberRecord, OlderMessage, Records, RoomRecord};
    let room = RoomId(*b"ABCDEF");
    let msg = |seq: u64| crate::store::LoggedMessage {
        room,
        seq,
        from: "alice".into(),
        timestamp: seq,
        body: alloc::vec![0u8; seq as usize].into(),
    };
    let records = Records {
        accounts: alloc::vec![("alice".into(), [1; 32])],
        rooms: alloc::vec![RoomRecord {
            room,
            title: "t".into(),
            private: false,
            admin: "alice".into(),
            next_seq: 0,
            members: alloc::vec![MemberRecord {
                name: "alice".into(),
                since: 0,
                cursor: 0,
            }],
            invited: Vec::new(),
            older: older.iter().map(|&s| OlderMessage::from(&msg(s))).collect(),
            log: whole.iter().map(|&s| msg(s)).collect(),
            direct: false,
            group: None,
        }],
        ..Records::default()
    };
    let mut hub = Hub::new(HubConfig::default(), 1);
    hub.restore(records);
    (hub, room)
}

#[test]
fn a_restored_log_is_its_newest_consecutive_run_whole_after_the_last_without_body() {
    // 2 both ways (kept whole, then made a length: 4 comes without its body after it).
    let (hub, room) = restored(&[1, 2, 4], &[2, 3, 5, 6]);
    let r = &hub.rooms[&room];
    assert_eq!(
        (r.log.first(), r.log.len(), r.log.tail_first()),
        (Some(1), 6, 5)
    );
    assert_eq!((r.log.bytes(), r.next_seq), (21, 7));
    assert!(r.log.get(3).is_none() && r.log.get(5).is_some());
    // A gap: only what follows it is retained.
    let (hub, room) = restored(&[1, 2, 4], &[6, 7]);
    let r = &hub.rooms[&room];
    assert_eq!(
        (r.log.first(), r.log.len(), r.log.tail_first()),
        (Some(6), 2, 6)
    );
    assert_eq!((hub.log_bytes_total, r.next_seq), (13, 8));
}

#[test]
fn a_connection_that_waited_is_reported_once_and_forgotten_when_it_goes() {
    let (mut s, a, room) = bob_missed(HubConfig::default(), 6);
    let fetch = Request::FetchHistory {
        req: 5,
        room,
        before: 3,
        limit: 2,
    };
    s.request(a, fetch.clone());
    assert_eq!(
        (s.hub.poll_waiting(), s.hub.poll_waiting()),
        (Some(a), None)
    );
    s.request(a, fetch);
    s.hub.handle_disconnect(T, a);
    assert_eq!(
        s.hub.poll_waiting(),
        None,
        "a closed connection waits for nothing"
    );
}
