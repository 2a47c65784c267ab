//! Tests of the hub target's harness: the input format, the pipeline, rooms, and that
//! the oracles catch the core's injected bugs.

use super::*;

#[test]
fn input_writer_round_trips() {
    let input = HubInput {
        limits: Limits {
            room_capacity: 1,
            max_rooms: 2,
            max_rooms_per_user: 3,
            max_queue_per_user: 4,
            dm_window: 5,
            max_online: 6,
            max_accounts: 7,
            max_list_entries: 8,
            room_window: 9,
        },
        commits: Commits {
            lazy: true,
            held_replies: 9,
            pending_ops: 10,
        },
        ops: vec![
            HubOp::Connect {
                slot: 1,
                user: 2,
                wrong_key: true,
                login: false,
            },
            HubOp::Request {
                slot: 1,
                req: HubReq::AckDm(MsgSel::Raw(5)),
            },
            HubOp::Request {
                slot: 1,
                req: HubReq::FetchPrekeys { name: 3 },
            },
            HubOp::Request {
                slot: 2,
                req: HubReq::AckRoom(RoomSel::Known(1), 255),
            },
            HubOp::Request {
                slot: 3,
                req: HubReq::History(RoomSel::Raw([1; 6]), 7),
            },
            HubOp::Disconnect { slot: 4 },
            HubOp::Advance(300),
            HubOp::Batch,
            HubOp::Restart { applied: true },
            HubOp::Durable,
            HubOp::Cut { slot: 2 },
            HubOp::StoreFails,
        ],
    };
    assert_eq!(decode::<HubInput>(&input.to_arb_bytes()), Some(input));
}

fn limits() -> Limits {
    Limits {
        room_capacity: 3,
        max_rooms: 3,
        max_rooms_per_user: 3,
        max_queue_per_user: 4,
        dm_window: 2,
        max_online: 5,
        max_accounts: 5,
        max_list_entries: 5,
        room_window: 0,
    }
}

fn lazy() -> Commits {
    Commits {
        lazy: true,
        held_replies: 15,
        pending_ops: 7,
    }
}

fn register(slot: u8, user: u8) -> HubOp {
    HubOp::Connect {
        slot,
        user,
        wrong_key: false,
        login: false,
    }
}

/// The harness really holds replies behind the store when the input commits lazily,
/// and steps accumulate behind a batch in flight.
#[test]
fn lazy_commits_hold_replies_until_durable() {
    let mut m = Model::new(&limits(), &lazy());
    m.apply(&register(0, 0));
    assert_eq!(m.unreleased.len(), 1, "the Auth waits for its account");
    m.apply(&HubOp::Batch);
    m.apply(&register(1, 1));
    assert!(m.in_flight.is_some());
    assert_eq!((m.unbatched.len(), m.unreleased.len()), (1, 2));
    m.apply(&HubOp::Durable);
    assert_eq!(m.unreleased.len(), 1, "only the first batch is durable");
    assert_eq!(m.promised_accounts.len(), 1);
    m.apply(&HubOp::Durable);
    assert!(m.unreleased.is_empty());
    assert_eq!(m.promised_accounts.len(), 2);
    m.finish();
}

/// A crash between a batch handed out and durable loses that batch (or keeps it, if
/// it reached the store) and everything held behind it, and nothing promised.
#[test]
fn a_crash_loses_only_what_was_not_durable() {
    for applied in [false, true] {
        let mut m = Model::new(&limits(), &lazy());
        m.apply(&register(0, 0));
        m.apply(&register(1, 1));
        m.apply(&HubOp::Durable);
        m.apply(&HubOp::Disconnect { slot: 1 });
        let dm = HubReq::SendDm { to: 1, body: 2 };
        m.apply(&HubOp::Request { slot: 0, req: dm });
        assert_eq!(m.unreleased.len(), 1, "the MessageAck waits for its DM");
        m.apply(&HubOp::Batch);
        m.apply(&HubOp::Restart { applied });
        assert!(
            m.promised_dms.is_empty(),
            "an unreleased ack promised nothing"
        );
        let queued = usize::from(applied);
        assert_eq!(m.driver.hub().queued_for(USERS[1]), queued);
        assert_eq!(m.store.records().accounts.len(), 2);
        m.finish();
    }
}

/// A store failure drops what waited for the failed batch; the restart loses it too.
#[test]
fn a_store_failure_releases_nothing_held() {
    let mut m = Model::new(&limits(), &lazy());
    m.apply(&register(0, 0));
    m.apply(&register(1, 1));
    m.apply(&HubOp::Durable);
    m.apply(&HubOp::Disconnect { slot: 1 });
    let dm = HubReq::SendDm { to: 1, body: 2 };
    m.apply(&HubOp::Request { slot: 0, req: dm });
    assert_eq!(m.unreleased.len(), 1);
    m.apply(&HubOp::StoreFails);
    assert!(m.promised_dms.is_empty() && m.unreleased.is_empty());
    assert_eq!(m.driver.hub().queued_for(USERS[1]), 0);
    assert_eq!(m.store.records().accounts.len(), 2);
    m.finish();
}

/// A cut connection's user goes offline, as if it had closed.
#[test]
fn a_cut_connection_goes_offline() {
    let mut m = Model::new(&limits(), &lazy());
    m.apply(&register(0, 0));
    m.apply(&register(1, 1));
    m.apply(&HubOp::Durable);
    assert_eq!(m.driver.hub().online(), 2);
    m.apply(&HubOp::Cut { slot: 1 });
    assert_eq!(m.driver.hub().online(), 1);
    assert_eq!(m.driver.stats().cuts, 1);
    m.finish();
}

/// Rooms (v2): an invitation opens a private room; a window of one holds messages
/// back until acknowledged; membership and cursors survive a logout and a crash, and
/// a login catches up from the cursor.
#[test]
fn rooms_keep_members_and_windows() {
    let mut m = Model::new(&limits(), &lazy());
    let room = RoomSel::Known(0);
    let req = |slot, req| HubOp::Request { slot, req };
    m.apply(&register(0, 0));
    m.apply(&register(1, 1));
    m.apply(&req(0, HubReq::CreateRoom { private: true }));
    m.apply(&req(1, HubReq::JoinRoom(room.clone())));
    assert!(
        !m.room_state.is_member(1, m.rooms[0]),
        "joined without an invitation"
    );
    m.apply(&req(0, HubReq::Invite(room.clone(), 1)));
    m.apply(&req(1, HubReq::JoinRoom(room.clone())));
    let id = m.rooms[0];
    assert!(m.room_state.is_member(1, id));
    let ben = m.slots[1].conn.expect("ben is connected");
    for _ in 0..3 {
        m.apply(&req(0, HubReq::RoomMessage(room.clone())));
    }
    assert_eq!(m.room_state.last(id), 3);
    assert_eq!(m.seen_seq[&(ben, id)], 1, "a window of one");
    m.apply(&req(1, HubReq::AckRoom(room.clone(), 0)));
    assert_eq!(m.seen_seq[&(ben, id)], 2);
    m.apply(&HubOp::Durable);
    m.apply(&req(1, HubReq::Logout));
    m.apply(&HubOp::Durable);
    assert!(m.room_state.is_member(1, id), "a logout is not a leave");
    m.apply(&HubOp::Restart { applied: false });
    assert_eq!(m.room_state.cursor(1, id), 1);
    m.apply(&HubOp::Connect {
        slot: 1,
        user: 1,
        wrong_key: false,
        login: true,
    });
    m.apply(&HubOp::Durable);
    let ben = m.slots[1].conn.expect("ben is back");
    assert_eq!(m.seen_seq[&(ben, id)], 2, "caught up one past the cursor");
    m.apply(&req(1, HubReq::History(room, 10)));
    m.finish();
}

/// With the core's injected bug that releases replies before their batch is durable,
/// the pipeline check fails. Run with `--features inject-bugs`.
#[cfg(feature = "inject-bugs")]
#[test]
#[should_panic(expected = "operations before it durable")]
fn releasing_before_durable_is_caught() {
    let mut m = Model::new(&limits(), &lazy());
    m.inject(|b| b.release_before_durable = true);
    m.apply(&register(0, 0));
}

/// Rooms with a window of four, filled and drained, an absence with catch-up, a full
/// room, a departure, and enough messages to pass seq 5.
#[cfg(feature = "inject-bugs")]
fn room_scenario(m: &mut Model) {
    let room = || RoomSel::Known(0);
    let req = |slot, req| HubOp::Request { slot, req };
    for u in 0..5 {
        m.apply(&register(u, u));
    }
    m.apply(&req(0, HubReq::CreateRoom { private: false }));
    for u in 1..5 {
        m.apply(&req(u, HubReq::JoinRoom(room())));
    }
    for _ in 0..3 {
        m.apply(&req(0, HubReq::RoomMessage(room())));
    }
    for u in 0..4 {
        m.apply(&req(u, HubReq::AckRoom(room(), 0)));
    }
    m.apply(&HubOp::Disconnect { slot: 1 });
    for _ in 0..3 {
        m.apply(&req(0, HubReq::RoomMessage(room())));
        m.apply(&req(0, HubReq::AckRoom(room(), 0)));
    }
    m.apply(&HubOp::Connect {
        slot: 1,
        user: 1,
        wrong_key: false,
        login: true,
    });
    m.apply(&req(2, HubReq::LeaveRoom(room())));
    m.apply(&req(0, HubReq::RoomMessage(room())));
    m.finish();
}

/// Every injected room bug trips one of the oracles, and the scenario is clean
/// without them.
#[cfg(feature = "inject-bugs")]
#[test]
fn every_injected_room_bug_is_caught() {
    use cove_core::hub::InjectedBugs;
    type Switch = fn(&mut InjectedBugs);
    let scenario_limits = Limits {
        room_window: 3,
        ..limits()
    };
    let eager = Commits {
        lazy: false,
        held_replies: 15,
        pending_ops: 7,
    };
    let run = |bug: Switch| {
        let (l, c) = (scenario_limits.clone(), eager.clone());
        std::panic::catch_unwind(move || {
            let mut m = Model::new(&l, &c);
            m.inject(bug);
            room_scenario(&mut m);
        })
        .is_err()
    };
    assert!(!run(|_| {}), "the scenario fails without a bug");
    let bugs: [(&str, Switch); 6] = [
        ("skip_sequence", |b| b.skip_sequence = true),
        ("admit_over_capacity", |b| b.admit_over_capacity = true),
        ("deliver_to_departed", |b| b.deliver_to_departed = true),
        ("catchup_skips_one", |b| b.catchup_skips_one = true),
        ("catchup_replays_acked", |b| b.catchup_replays_acked = true),
        ("membership_not_durable", |b| {
            b.membership_not_durable = true
        }),
    ];
    for (name, bug) in bugs {
        assert!(run(bug), "{name} went unnoticed");
    }
}

/// With the injected bug that forgets a queued message on restore, the restart check
/// fails.
#[cfg(feature = "inject-bugs")]
#[test]
#[should_panic(expected = "restored queues are not the stored ones")]
fn a_restore_that_drops_a_message_is_caught() {
    let mut m = Model::new(&limits(), &lazy());
    m.inject(|b| b.drop_queued_on_restore = true);
    m.apply(&register(0, 0));
    m.apply(&register(1, 1));
    m.apply(&HubOp::Disconnect { slot: 1 });
    let dm = HubReq::SendDm { to: 1, body: 2 };
    m.apply(&HubOp::Request { slot: 0, req: dm });
    m.apply(&HubOp::Durable);
    m.apply(&HubOp::Restart { applied: false });
}
