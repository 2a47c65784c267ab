//! Durable rooms: membership across disconnects and restarts, private rooms, the admin,
//! the log's retention, cursors, windowed catch-up, gaps and history.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::*;

use super::test_server::{Server, T, alice_and_bob, mine};
use crate::store::Store;

/// The bodies of the room messages in `replies`, as text, with their sequence numbers.
fn texts(replies: &[Reply]) -> Vec<(u64, String)> {
    replies
        .iter()
        .filter_map(|r| match r {
            Reply::RoomMessage { seq, body, .. } => {
                Some((*seq, String::from_utf8_lossy(body).into_owned()))
            }
            _ => None,
        })
        .collect()
}

fn codes(replies: &[Reply]) -> Vec<ErrorCode> {
    replies
        .iter()
        .filter_map(|r| match r {
            Reply::Error { code, .. } => Some(*code),
            _ => None,
        })
        .collect()
}

fn seqs(v: &[(u64, String)]) -> Vec<u64> {
    v.iter().map(|(s, _)| *s).collect()
}

/// alice's room with bob in it; bob then goes offline.
fn alice_and_absent_bob(config: HubConfig) -> (Server, ConnId, RoomId) {
    let (mut s, a, b, room) = alice_and_bob(config);
    s.hub.handle_disconnect(T, b);
    s.settle();
    (s, a, room)
}

#[test]
fn membership_and_missed_messages_survive_a_disconnect_and_a_restart() {
    let (mut s, a, room) = alice_and_absent_bob(HubConfig::default());
    for m in ["m1", "m2", "m3"] {
        s.say(a, room, m);
    }
    s.restart();
    let (b, seen) = s.connect("bob", AuthMode::Login);
    assert!(
        matches!(&seen[1], Reply::RoomJoined { req: 0, room: r, .. } if *r == room),
        "{seen:?}"
    );
    let got = texts(&seen);
    assert_eq!(got, [(1, "m1".into()), (2, "m2".into()), (3, "m3".into())]);
    s.request(b, Request::AckRoom { room, seq: 3 });
    s.hub.handle_disconnect(T, b);
    s.settle();
    s.restart();
    let (_, seen) = s.connect("bob", AuthMode::Login);
    assert!(texts(&seen).is_empty(), "shown again: {seen:?}");
    assert_eq!(s.hub.room_members(room).unwrap().count(), 2);
}

#[test]
fn an_unacknowledged_message_is_pushed_again_on_the_next_login() {
    let (mut s, a, room) = alice_and_absent_bob(HubConfig::default());
    s.say(a, room, "m1");
    s.say(a, room, "m2");
    let (b, seen) = s.connect("bob", AuthMode::Login);
    assert_eq!(seqs(&texts(&seen)), [1, 2]);
    s.request(b, Request::AckRoom { room, seq: 1 });
    s.hub.handle_disconnect(T, b);
    s.settle();
    let (_, seen) = s.connect("bob", AuthMode::Login);
    assert_eq!(seqs(&texts(&seen)), [2]);
}

#[test]
fn catch_up_flows_through_the_window() {
    let config = HubConfig {
        room_window: 4,
        ..HubConfig::default()
    };
    let (mut s, a, room) = alice_and_absent_bob(config);
    for i in 0..10 {
        s.say(a, room, &alloc::format!("m{i}"));
    }
    let (b, seen) = s.connect("bob", AuthMode::Login);
    assert_eq!(seqs(&texts(&seen)), [1, 2, 3, 4]);
    let out = s.request(b, Request::AckRoom { room, seq: 4 });
    assert_eq!(seqs(&texts(&mine(&out, b))), [5, 6, 7, 8]);
    // An ack cannot claim what was not pushed.
    let out = s.request(b, Request::AckRoom { room, seq: 100 });
    assert_eq!(seqs(&texts(&mine(&out, b))), [9, 10]);
    // Live messages use the same window.
    let out = s.say(a, room, "live");
    assert_eq!(seqs(&texts(&mine(&out, b))), [11]);
}

#[test]
fn a_member_away_longer_than_retention_is_told_of_the_gap() {
    let config = HubConfig {
        log_max_messages: 3,
        ..HubConfig::default()
    };
    let (mut s, a, room) = alice_and_absent_bob(config);
    for i in 1..=6 {
        s.say(a, room, &alloc::format!("m{i}"));
    }
    s.restart();
    let (b, seen) = s.connect("bob", AuthMode::Login);
    let gap = seen.iter().position(|r| matches!(r, Reply::RoomGap { .. }));
    let first = seen
        .iter()
        .position(|r| matches!(r, Reply::RoomMessage { .. }));
    assert!(
        gap.is_some() && gap < first,
        "no gap before the replay: {seen:?}"
    );
    assert!(seen.contains(&Reply::RoomGap {
        room,
        first_available: 4
    }));
    assert_eq!(seqs(&texts(&seen)), [4, 5, 6]);
    // The window counts from the gap, not from the old cursor.
    s.request(b, Request::AckRoom { room, seq: 6 });
    let (a, _) = s.connect("alice", AuthMode::Login);
    let out = s.say(a, room, "m7");
    assert_eq!(seqs(&texts(&mine(&out, b))), [7]);
}

#[test]
fn retention_by_bytes_and_by_age() {
    let config = HubConfig {
        log_max_bytes: 10,
        ..HubConfig::default()
    };
    let (mut s, a, room) = alice_and_absent_bob(config);
    for text in ["aaaa", "bbbb", "cccc"] {
        s.say(a, room, text);
    }
    let (_, seen) = s.connect("bob", AuthMode::Login);
    assert_eq!(
        seqs(&texts(&seen)),
        [2, 3],
        "12 bytes kept under a 10-byte budget"
    );

    let config = HubConfig {
        log_max_age: crate::time::Duration::from_secs(60),
        ..HubConfig::default()
    };
    let (mut s, a, room) = alice_and_absent_bob(config);
    s.say(a, room, "old");
    let later = Instant(T.micros() + 61_000_000);
    s.hub.handle_request(
        later,
        a,
        Request::RoomMessage {
            req: 1,
            room,
            body: Arc::from(&b"new"[..]),
        },
    );
    s.settle();
    let (_, seen) = s.connect("bob", AuthMode::Login);
    assert_eq!(seqs(&texts(&seen)), [2]);
    assert!(seen.contains(&Reply::RoomGap {
        room,
        first_available: 2
    }));
}

#[test]
fn private_rooms_need_an_invitation_from_the_admin() {
    let mut s = Server::new(HubConfig::default());
    let (a, _) = s.connect("alice", AuthMode::Register);
    let (b, _) = s.connect("bob", AuthMode::Register);
    let (c, _) = s.connect("carol", AuthMode::Register);
    let room = s.create(a, true);
    let out = s.request(b, Request::ListRooms { req: 3 });
    assert!(matches!(&mine(&out, b)[..], [Reply::RoomList { rooms, .. }] if rooms.is_empty()));
    let out = s.request(b, Request::JoinRoom { req: 4, room });
    assert_eq!(codes(&mine(&out, b)), [ErrorCode::NotInvited]);
    // carol is invited while offline; bob is invited live.
    s.hub.handle_disconnect(T, c);
    s.settle();
    for who in ["carol", "bob"] {
        let out = s.request(
            a,
            Request::InviteMember {
                req: 5,
                room,
                name: who.into(),
            },
        );
        assert_eq!(mine(&out, a), [Reply::Ok { req: 5 }]);
    }
    let invited = Reply::RoomInvited {
        room,
        title: "t".into(),
        by: "alice".into(),
    };
    assert!(s.settle().is_empty());
    s.restart();
    let (_, seen) = s.connect("carol", AuthMode::Login);
    assert!(seen.contains(&invited), "the invitation was lost: {seen:?}");
    let (b, _) = s.connect("bob", AuthMode::Login);
    let out = s.request(b, Request::JoinRoom { req: 6, room });
    assert!(matches!(
        &mine(&out, b)[..],
        [Reply::RoomJoined { private: true, .. }]
    ));
    // Only the admin invites.
    let out = s.request(
        b,
        Request::InviteMember {
            req: 7,
            room,
            name: "carol".into(),
        },
    );
    assert_eq!(codes(&mine(&out, b)), [ErrorCode::NotRoomAdmin]);
}

#[test]
fn the_admin_removes_members_and_hands_over_on_leaving() {
    let mut s = Server::new(HubConfig::default());
    let (a, _) = s.connect("alice", AuthMode::Register);
    let (b, _) = s.connect("bob", AuthMode::Register);
    let (c, _) = s.connect("carol", AuthMode::Register);
    let room = s.create(a, false);
    s.request(b, Request::JoinRoom { req: 2, room });
    s.request(c, Request::JoinRoom { req: 2, room });
    let out = s.request(
        b,
        Request::RemoveMember {
            req: 3,
            room,
            name: "carol".into(),
        },
    );
    assert_eq!(codes(&mine(&out, b)), [ErrorCode::NotRoomAdmin]);
    let out = s.request(
        a,
        Request::RemoveMember {
            req: 4,
            room,
            name: "alice".into(),
        },
    );
    assert_eq!(codes(&mine(&out, a)), [ErrorCode::InvalidFormat]);
    let out = s.request(
        a,
        Request::RemoveMember {
            req: 5,
            room,
            name: "carol".into(),
        },
    );
    assert!(mine(&out, c).contains(&Reply::RoomRemoved {
        room,
        by: "alice".into()
    }));
    assert!(mine(&out, b).contains(&Reply::MemberLeft {
        room,
        name: "carol".into()
    }));
    let out = s.say(c, room, "still here?");
    assert_eq!(codes(&mine(&out, c)), [ErrorCode::NotInRoom]);
    // alice leaves: bob, the longest-standing member left, becomes admin, durably.
    s.request(a, Request::LeaveRoom { req: 6, room });
    s.restart();
    let (b, seen) = s.connect("bob", AuthMode::Login);
    assert!(seen.iter().any(|r| matches!(r,
        Reply::RoomJoined { admin, members, .. } if &**admin == "bob" && members.len() == 1)));
    let out = s.request(
        b,
        Request::SetRoomTitle {
            req: 7,
            room,
            title: "new".into(),
        },
    );
    assert!(mine(&out, b).contains(&Reply::RoomTitle {
        room,
        title: "new".into()
    }));
    // The last member leaves: the room is gone, also after a restart.
    s.request(b, Request::LeaveRoom { req: 8, room });
    assert!(s.hub.room_members(room).is_none());
    s.restart();
    assert!(s.hub.room_members(room).is_none());
    assert!(s.store.records().rooms.is_empty());
}

#[test]
fn history_pages_backwards_from_the_members_join() {
    let mut s = Server::new(HubConfig::default());
    let (a, _) = s.connect("alice", AuthMode::Register);
    let (b, _) = s.connect("bob", AuthMode::Register);
    let room = s.create(a, false);
    for i in 1..=10 {
        s.say(a, room, &alloc::format!("m{i}"));
    }
    let page = |s: &mut Server, c, before| {
        let out = s.request(
            c,
            Request::FetchHistory {
                req: 8,
                room,
                before,
                limit: 4,
            },
        );
        mine(&out, c)
    };
    let p1 = page(&mut s, a, 11);
    let got: Vec<u64> = p1
        .iter()
        .filter_map(|r| match r {
            Reply::HistoryMessage { seq, .. } => Some(*seq),
            _ => None,
        })
        .collect();
    assert_eq!(got, [7, 8, 9, 10]);
    assert_eq!(
        p1.last(),
        Some(&Reply::HistoryDone {
            req: 8,
            room,
            first_available: 1,
            count: 4
        })
    );
    let p2 = page(&mut s, a, 7);
    assert_eq!(p2.len(), 5);
    assert!(matches!(p2[0], Reply::HistoryMessage { seq: 3, .. }));
    // bob joins after message 10: nothing before his membership is his to read.
    let out = page(&mut s, b, 11);
    assert_eq!(codes(&out), [ErrorCode::NotInRoom]);
    s.request(b, Request::JoinRoom { req: 2, room });
    let out = page(&mut s, b, 11);
    assert_eq!(
        out,
        [Reply::HistoryDone {
            req: 8,
            room,
            first_available: 11,
            count: 0
        }]
    );
}

/// The sequence numbers a member can still read in `room`'s history.
fn retained(s: &mut Server, c: ConnId, room: RoomId) -> Vec<u64> {
    let fetch = Request::FetchHistory {
        req: 77,
        room,
        before: u64::MAX,
        limit: 100,
    };
    s.request(c, fetch)
        .into_iter()
        .filter_map(|(_, r)| match r {
            Reply::HistoryMessage { seq, .. } => Some(seq),
            _ => None,
        })
        .collect()
}

#[test]
fn retention_boundaries_are_exact() {
    // Exactly at the count and byte budgets, nothing is dropped.
    let config = HubConfig {
        log_max_messages: 2,
        log_max_bytes: 8,
        ..HubConfig::default()
    };
    let mut s = Server::new(config);
    let (a, _) = s.connect("alice", AuthMode::Register);
    let room = s.create(a, false);
    s.say(a, room, "aaaa");
    s.say(a, room, "bbbb");
    assert_eq!(retained(&mut s, a, room), [1, 2]);
    s.say(a, room, "cc");
    assert_eq!(
        retained(&mut s, a, room),
        [2, 3],
        "three messages under a count of 2"
    );
    // A single message over the byte budget is still kept: the log never empties itself.
    let config = HubConfig {
        log_max_bytes: 2,
        ..HubConfig::default()
    };
    let mut s = Server::new(config);
    let (a, _) = s.connect("alice", AuthMode::Register);
    let room = s.create(a, false);
    s.say(a, room, "long");
    assert_eq!(retained(&mut s, a, room), [1]);
    s.say(a, room, "more");
    assert_eq!(retained(&mut s, a, room), [2]);
}

#[test]
fn a_message_exactly_as_old_as_the_age_limit_is_kept() {
    let config = HubConfig {
        log_max_age: crate::time::Duration::from_secs(60),
        ..HubConfig::default()
    };
    let mut s = Server::new(config);
    let (a, _) = s.connect("alice", AuthMode::Register);
    let room = s.create(a, false);
    s.say(a, room, "old");
    let at = |us: u64| Instant(T.micros() + us);
    let msg = |text: &'static [u8]| Request::RoomMessage {
        req: 1,
        room,
        body: Arc::from(text),
    };
    s.hub.handle_request(at(60_000_000), a, msg(b"edge"));
    s.settle();
    assert_eq!(
        retained(&mut s, a, room),
        [1, 2],
        "dropped at exactly the limit"
    );
    s.hub.handle_request(at(60_000_001), a, msg(b"late"));
    s.settle();
    assert_eq!(retained(&mut s, a, room), [2, 3]);
}

#[test]
fn the_server_wide_budget_is_paid_by_the_room_that_grows() {
    let config = HubConfig {
        log_max_bytes_total: 10,
        ..HubConfig::default()
    };
    let mut s = Server::new(config);
    let (a, _) = s.connect("alice", AuthMode::Register);
    let (b, _) = s.connect("bob", AuthMode::Register);
    let quiet = s.create(a, false);
    s.say(a, quiet, "aaaa");
    s.say(a, quiet, "bbbb");
    let busy = s.create(b, false);
    // 12 bytes now: over the budget, but the growing room has only this one message.
    s.say(b, busy, "cccc");
    assert_eq!(retained(&mut s, b, busy), [1]);
    s.say(b, busy, "dddd");
    assert_eq!(
        retained(&mut s, b, busy),
        [2],
        "the growing room gave up its oldest"
    );
    assert_eq!(
        retained(&mut s, a, quiet),
        [1, 2],
        "the quiet room paid for another"
    );
}

/// Retention dropping a message a live member was already pushed is no gap for it: with
/// a log of one message, bob gets both of alice's messages and no `RoomGap`.
#[test]
fn retention_of_what_a_member_already_has_is_no_gap() {
    let mut s = Server::new(HubConfig {
        log_max_messages: 1,
        ..HubConfig::default()
    });
    let (a, _) = s.connect("alice", AuthMode::Register);
    let (b, _) = s.connect("bob", AuthMode::Register);
    let room = s.create(a, false);
    s.request(b, Request::JoinRoom { req: 2, room });
    let mut got = mine(&s.say(a, room, "one"), b);
    got.extend(mine(&s.say(a, room, "two"), b));
    assert_eq!(
        texts(&got),
        [(1, String::from("one")), (2, String::from("two"))]
    );
    assert!(
        !got.iter().any(|r| matches!(r, Reply::RoomGap { .. })),
        "{got:?}"
    );
}

/// alice's message `body` to `room`, and the `below` of each `LogTrimmed` its step wrote.
fn trimmed_by(s: &mut Server, a: ConnId, room: RoomId, body: &[u8]) -> Vec<u64> {
    let body = Arc::from(body);
    s.hub
        .handle_request(T, a, Request::RoomMessage { req: 9, room, body });
    let ops: Vec<StoreOp> = core::iter::from_fn(|| s.hub.poll_store_op()).collect();
    s.store.apply(&ops).unwrap();
    core::iter::from_fn(|| s.hub.poll_delivery()).for_each(drop);
    ops.iter()
        .filter_map(|op| match op {
            StoreOp::LogTrimmed { below, .. } => Some(*below),
            _ => None,
        })
        .collect()
}

/// Retention by a room's bytes and by the server-wide budget counts exactly the bytes it
/// keeps: a `LogTrimmed` is written only when a message goes, and names the first one
/// kept; the newest message stays even when it alone is over the limit.
#[test]
fn retention_by_bytes_trims_exactly_what_is_over_and_says_so_once() {
    for (room_bytes, total_bytes) in [(10, usize::MAX), (usize::MAX, 10)] {
        let mut s = Server::new(HubConfig {
            log_max_bytes: room_bytes,
            log_max_bytes_total: total_bytes,
            ..HubConfig::default()
        });
        let (a, _) = s.connect("alice", AuthMode::Register);
        let room = s.create(a, false);
        // 4 + 4 bytes fit; a third makes 12: the first goes (8 left), and so on.
        assert_eq!(trimmed_by(&mut s, a, room, b"aaaa"), [0u64; 0]);
        assert_eq!(trimmed_by(&mut s, a, room, b"bbbb"), [0u64; 0]);
        assert_eq!(trimmed_by(&mut s, a, room, b"cccc"), [2]);
        assert_eq!(trimmed_by(&mut s, a, room, b"dddd"), [3]);
        // One message over the limit by itself: everything before it goes, it stays.
        assert_eq!(trimmed_by(&mut s, a, room, &[b'e'; 20]), [5]);
        assert_eq!(trimmed_by(&mut s, a, room, b"ffff"), [6]);
        // Exactly at the limit is within it: 4 + 6 = 10 bytes, nothing goes.
        let mut s = Server::new(HubConfig {
            log_max_bytes: room_bytes,
            log_max_bytes_total: total_bytes,
            ..HubConfig::default()
        });
        let (a, _) = s.connect("alice", AuthMode::Register);
        let room = s.create(a, false);
        assert_eq!(trimmed_by(&mut s, a, room, b"gggg"), [0u64; 0]);
        assert_eq!(trimmed_by(&mut s, a, room, b"hhhhhh"), [0u64; 0]);
        assert_eq!(trimmed_by(&mut s, a, room, b"i"), [2]);
    }
}
