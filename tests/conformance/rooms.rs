//! Conformance tests for durable rooms (protocol v2): membership and catch-up across
//! graceful and `kill -9` restarts, private rooms and invitations, removal by the admin,
//! catch-up through the room window, history paging and the retention gap.

use cove::config::Limits;
use cove_core::crypto::Identity;
use cove_core::hub::Reply;
use cove_core::wire::{AuthMode, ErrorCode};
use cove_std::client::Event;

use super::*;

/// A member offline during messages catches up after a graceful restart exactly once, in
/// order; membership and the sequence survive the restart; acknowledged messages are not
/// replayed after another restart.
pub fn room_membership_survives_a_graceful_restart<R: Runtime>() {
    let mut s = TestServer::start::<R>(Limits::default());
    let (mut alice, alice_id) = s.register("alice");
    let (mut bob, bob_id) = s.register("bob");
    let room = create_room(&mut alice, "durable");
    join(&mut bob, room);
    logout(bob);
    send_all(&mut alice, room, 1..=5);
    // Alice has shown her own messages: acknowledged, they are not hers to catch up.
    assert_eq!(
        room_msgs(room, &until_round_trip(&mut alice)),
        expected(1..=5)
    );
    alice.ack_room(room, 5).expect("ack");
    sync(&mut alice);
    drop(alice);
    s.restart();

    let mut bob = s.login("bob", &bob_id);
    let got = until_round_trip(&mut bob);
    assert_catch_up(room, &got, &expected(1..=5));
    let (members, admin) = announced(room, &got).expect("announced");
    assert_eq!(
        (members, &*admin),
        (vec!["alice".into(), "bob".into()], "alice")
    );
    bob.ack_room(room, 5).expect("ack");
    let mut alice = s.login("alice", &alice_id);
    let got = until_round_trip(&mut alice);
    assert_catch_up(room, &got, &[]);
    // Live traffic continues the sequence.
    send_all(&mut alice, room, [6]);
    let m = wait(&mut bob, "the live message", |e| match e {
        Event::Message(Reply::RoomMessage { seq, body, .. }) => {
            Some((*seq, String::from_utf8_lossy(body).into_owned()))
        }
        _ => None,
    });
    assert_eq!(m, (6, "m6".into()));
    bob.ack_room(room, 6).expect("ack");
    sync(&mut bob);
    drop(bob);
    drop(alice);
    s.restart();

    let mut bob = s.login("bob", &bob_id);
    let got = until_round_trip(&mut bob);
    assert_catch_up(room, &got, &[]);
}

/// `kill -9` of `cove serve` after messages were sent to an offline member: after a
/// restart they arrive exactly once, in order; once acknowledged, another `kill -9` does
/// not bring them back, and the sequence goes on where it was.
pub fn room_catch_up_survives_kill_9_exactly_once<R: Runtime>() {
    let dir = TempDir::new("rooms-kill9");
    let data = dir.path().join("server");
    let server = CliServer::start(&data, R::CLI_RUNTIME);
    let bob_id = Identity::generate(&mut cove_std::os_rng());
    let alice_id = Identity::generate(&mut cove_std::os_rng());
    let mut bob = cli_connect(server.addr, "bob", AuthMode::Register, &bob_id, None);
    let key = Some(bob.welcome().server_key);
    let mut alice = cli_connect(server.addr, "alice", AuthMode::Register, &alice_id, key);
    let room = create_room(&mut alice, "crash-proof");
    join(&mut bob, room);
    logout(bob);
    for i in 1..=5 {
        alice
            .send_room(room, format!("m{i}").as_bytes())
            .expect("send");
    }
    // A message is logged durably before anyone is told: her own copy of the last one
    // means all five are on disk.
    wait(&mut alice, "alice's last message", |e| match e {
        Event::Message(Reply::RoomMessage { seq: 5, .. }) => Some(()),
        _ => None,
    });
    server.kill_9();
    drop(alice);

    let server = CliServer::start(&data, R::CLI_RUNTIME);
    let mut bob = cli_connect(server.addr, "bob", AuthMode::Login, &bob_id, key);
    let got = until_round_trip(&mut bob);
    assert_catch_up(room, &got, &expected(1..=5));
    bob.ack_room(room, 5).expect("ack");
    // The round trip makes sure the server handled the ack (durably) before the kill.
    assert_eq!(room_msgs(room, &until_round_trip(&mut bob)), NONE);
    server.kill_9();
    drop(bob);

    let server = CliServer::start(&data, R::CLI_RUNTIME);
    let mut bob = cli_connect(server.addr, "bob", AuthMode::Login, &bob_id, key);
    let got = until_round_trip(&mut bob);
    assert_catch_up(room, &got, &[]);
    let mut alice = cli_connect(server.addr, "alice", AuthMode::Login, &alice_id, key);
    send_all(&mut alice, room, [6]);
    assert_eq!(room_msgs(room, &until_round_trip(&mut bob)), expected([6]));
}

/// A private room is not listed; joining needs an invitation (else `NotInvited`); the
/// invitee is told, now or at its next login, also after a restart; only the admin
/// invites or renames.
pub fn private_rooms_need_an_invitation<R: Runtime>() {
    let mut s = TestServer::start::<R>(Limits::default());
    let (mut alice, alice_id) = s.register("alice");
    let (mut bob, _) = s.register("bob");
    let (carol, carol_id) = s.register("carol");
    logout(carol);
    let (dave, dave_id) = s.register("dave");
    logout(dave);
    let req = alice.create_private_room("secret").expect("create");
    let room = match reply(&mut alice, req) {
        Reply::RoomJoined {
            room,
            private,
            admin,
            members,
            ..
        } => {
            assert!(private, "created private");
            assert_eq!((&*admin, members.len()), ("alice", 1));
            room
        }
        other => panic!("expected RoomJoined, got {other:?}"),
    };
    let req = bob.list_rooms().expect("list");
    match reply(&mut bob, req) {
        Reply::RoomList { rooms, .. } => assert!(rooms.iter().all(|r| r.room != room)),
        other => panic!("expected RoomList, got {other:?}"),
    }
    let req = bob.join_room(room).expect("join");
    assert_eq!(refused(&mut bob, req), ErrorCode::NotInvited);

    let req = alice.invite(room, "bob").expect("invite");
    ok(&mut alice, req);
    let (title, by) = wait(&mut bob, "the invitation", |e| match e {
        Event::Message(Reply::RoomInvited { room: r, title, by }) if *r == room => {
            Some((title.to_string(), by.to_string()))
        }
        _ => None,
    });
    assert_eq!((title.as_str(), by.as_str()), ("secret", "alice"));
    let req = bob.join_room(room).expect("join");
    match reply(&mut bob, req) {
        Reply::RoomJoined { private, .. } => assert!(private),
        other => panic!("expected RoomJoined, got {other:?}"),
    }
    wait(&mut alice, "bob joining", |e| match e {
        Event::Message(Reply::MemberJoined { name, .. }) if &**name == "bob" => Some(()),
        _ => None,
    });
    // Members who are not the admin may not invite or rename.
    let req = bob.invite(room, "dave").expect("invite");
    assert_eq!(refused(&mut bob, req), ErrorCode::NotRoomAdmin);
    let req = bob.set_room_title(room, "mine").expect("title");
    assert_eq!(refused(&mut bob, req), ErrorCode::NotRoomAdmin);
    // Carol is offline: the invitation waits for her, across a restart.
    let req = alice.invite(room, "carol").expect("invite");
    ok(&mut alice, req);
    let req = alice.set_room_title(room, "hush").expect("title");
    ok(&mut alice, req);
    let title = wait(&mut bob, "the new title", |e| match e {
        Event::Message(Reply::RoomTitle { room: r, title }) if *r == room => {
            Some(title.to_string())
        }
        _ => None,
    });
    assert_eq!(title, "hush");
    drop(alice);
    drop(bob);
    s.restart();

    let mut carol = s.login("carol", &carol_id);
    let got = until_round_trip(&mut carol);
    let invited = got.iter().any(|r| {
        matches!(r, Reply::RoomInvited { room: r, title, by }
            if *r == room && &**title == "hush" && &**by == "alice")
    });
    assert!(invited, "invitation announced at login: {got:?}");
    let mut dave = s.login("dave", &dave_id);
    let req = dave.join_room(room).expect("join");
    assert_eq!(refused(&mut dave, req), ErrorCode::NotInvited);
    let req = dave.list_rooms().expect("list");
    match reply(&mut dave, req) {
        Reply::RoomList { rooms, .. } => assert!(rooms.iter().all(|r| r.room != room)),
        other => panic!("expected RoomList, got {other:?}"),
    }
    let mut alice = s.login("alice", &alice_id);
    sync(&mut alice);
    let req = carol.join_room(room).expect("join");
    match reply(&mut carol, req) {
        Reply::RoomJoined {
            private,
            title,
            admin,
            members,
            ..
        } => {
            assert!(private);
            assert_eq!((&*title, &*admin, members.len()), ("hush", "alice", 3));
        }
        other => panic!("expected RoomJoined, got {other:?}"),
    }
    wait(&mut alice, "carol joining", |e| match e {
        Event::Message(Reply::MemberJoined { name, .. }) if &**name == "carol" => Some(()),
        _ => None,
    });
}

/// The admin removes a member: the removed member is told, the others see `MemberLeft`,
/// the removed member's sends are refused and it gets no more messages, also after a
/// restart; only the admin may remove.
pub fn admin_removes_a_member<R: Runtime>() {
    let mut s = TestServer::start::<R>(Limits::default());
    let (mut alice, _) = s.register("alice");
    let (mut bob, bob_id) = s.register("bob");
    let (mut carol, carol_id) = s.register("carol");
    let room = create_room(&mut alice, "club");
    join(&mut bob, room);
    join(&mut carol, room);
    let req = carol.remove_member(room, "bob").expect("remove");
    assert_eq!(refused(&mut carol, req), ErrorCode::NotRoomAdmin);
    let req = alice.remove_member(room, "alice").expect("remove");
    refused(&mut alice, req); // the admin leaves with LeaveRoom instead

    let req = alice.remove_member(room, "bob").expect("remove");
    ok(&mut alice, req);
    let by = wait(&mut bob, "the removal", |e| match e {
        Event::Message(Reply::RoomRemoved { room: r, by }) if *r == room => Some(by.to_string()),
        _ => None,
    });
    assert_eq!(by, "alice");
    for c in [&mut alice, &mut carol] {
        wait(c, "bob leaving", |e| match e {
            Event::Message(Reply::MemberLeft { room: r, name })
                if *r == room && &**name == "bob" =>
            {
                Some(())
            }
            _ => None,
        });
    }
    assert!(!bob.rooms().contains(&room));
    let req = bob.send_room(room, b"still here?").expect("send");
    assert_eq!(refused(&mut bob, req), ErrorCode::NotInRoom);
    let req = bob.fetch_history(room, u64::MAX, 10).expect("history");
    assert_eq!(refused(&mut bob, req), ErrorCode::NotInRoom);
    send_all(&mut alice, room, [1]);
    assert_eq!(
        room_msgs(room, &until_round_trip(&mut carol)),
        expected([1])
    );
    assert_eq!(room_msgs(room, &until_round_trip(&mut bob)), NONE);
    drop(bob);
    drop(carol);
    s.restart();

    // The removal is durable.
    let mut bob = s.login("bob", &bob_id);
    let got = until_round_trip(&mut bob);
    assert!(
        announced(room, &got).is_none(),
        "bob is not a member: {got:?}"
    );
    assert_eq!(room_msgs(room, &got), NONE);
    let mut carol = s.login("carol", &carol_id);
    let got = until_round_trip(&mut carol);
    let (members, admin) = announced(room, &got).expect("carol is a member");
    assert_eq!(
        (members, &*admin),
        (vec!["alice".into(), "carol".into()], "alice")
    );
}

/// A member away for 200 messages gets them at login in bursts of the room window, the
/// next burst only as it acknowledges; a live message during the catch-up waits its turn;
/// none is lost or repeated.
pub fn catch_up_flows_in_window_sized_bursts<R: Runtime>() {
    const W: u64 = 8;
    const AWAY: u64 = 200;
    let limits = fast(Limits {
        room_window: Some(W as usize),
        // Most of the 200 are read back from the store (the server keeps 64 whole), and
        // each burst still comes before the reply to the round trip that follows it.
        ..Limits::default()
    });
    let s = TestServer::start::<R>(limits);
    let mut alice = register_auto_ack(&s, "alice");
    let (mut bob, bob_id) = s.register("bob");
    let room = create_room(&mut alice, "backlog");
    join(&mut bob, room);
    logout(bob);
    send_all(&mut alice, room, 1..=AWAY);

    let mut bob = s.login("bob", &bob_id);
    let got = until_round_trip(&mut bob);
    assert_catch_up(room, &got, &expected(1..=W));
    // A live message while the window is full: it comes after the backlog.
    send_all(&mut alice, room, [AWAY + 1]);
    let total = AWAY + 1;
    let (mut cursor, mut pushed) = (0, W);
    let mut seen = room_msgs(room, &got);
    for round in 0.. {
        assert!(round <= 2 * total, "the catch-up never finished");
        if pushed == total {
            break;
        }
        // Mostly the whole burst, sometimes only part of it: the window counts from the
        // acknowledged sequence number.
        cursor = if round % 3 == 1 {
            (cursor + 3).min(pushed)
        } else {
            pushed
        };
        bob.ack_room(room, cursor).expect("ack");
        let burst = room_msgs(room, &until_round_trip(&mut bob));
        let end = (cursor + W).min(total);
        assert_eq!(burst, expected(pushed + 1..=end), "round {round}");
        pushed = end;
        seen.extend(burst);
    }
    assert_eq!(seen, expected(1..=total));
    bob.ack_room(room, total).expect("ack");
    assert_eq!(room_msgs(room, &until_round_trip(&mut bob)), NONE);
}

/// A server that keeps only each room's newest two messages in memory: a member away
/// for 60 gets the older ones read back from the store, in window-sized bursts as it
/// acknowledges them, exactly once and in order; a history page of them comes from the
/// store too.
pub fn catch_up_and_history_read_older_messages_from_the_store<R: Runtime>() {
    const AWAY: u64 = 60;
    let limits = fast(Limits {
        room_window: Some(8),
        room_memory_messages: Some(2),
        ..Limits::default()
    });
    let s = TestServer::start::<R>(limits);
    let mut alice = register_auto_ack(&s, "alice");
    let (mut bob, bob_id) = s.register("bob");
    let room = create_room(&mut alice, "archive");
    join(&mut bob, room);
    logout(bob);
    send_all(&mut alice, room, 1..=AWAY);

    // Catch-up read from the store may come after the answers to later requests, so
    // wait for the messages themselves rather than for a round trip.
    let mut bob = connect_as(&s, "bob", AuthMode::Login, &bob_id, true);
    let mut seen = Vec::new();
    while seen.len() < AWAY as usize {
        seen.push(wait(&mut bob, "bob's catch-up", |e| match e {
            Event::Message(Reply::RoomMessage {
                room: r, seq, body, ..
            }) if *r == room => Some((*seq, String::from_utf8_lossy(body).into_owned())),
            _ => None,
        }));
    }
    assert_eq!(seen, expected(1..=AWAY));
    assert_eq!(history(&mut bob, room, 11, 5), (expected(6..=10), 1));
    send_all(&mut alice, room, [AWAY + 1]);
    let live = wait(&mut bob, "a live message after the catch-up", |e| match e {
        Event::Message(Reply::RoomMessage { room: r, seq, .. }) if *r == room => Some(*seq),
        _ => None,
    });
    assert_eq!(live, AWAY + 1, "nothing repeated");
}

/// History pages backwards, each page in order, down to `HistoryDone`'s
/// `first_available` (retention, or where the member joined); non-members are refused.
pub fn history_pages_backwards_in_order<R: Runtime>() {
    let limits = fast(Limits {
        room_log_messages: Some(20),
        ..Limits::default()
    });
    let s = TestServer::start::<R>(limits);
    let mut alice = register_auto_ack(&s, "alice");
    let mut bob = register_auto_ack(&s, "bob");
    let (mut dave, _) = s.register("dave");
    let room = create_room(&mut alice, "archive");
    join(&mut bob, room);
    send_all(&mut alice, room, 1..=25);
    sync(&mut bob);

    // 25 sent, 20 retained: 6..=25, in pages of 8 from the newest.
    let mut pages = Vec::new();
    let mut before = u64::MAX;
    loop {
        let (page, first_available) = history(&mut bob, room, before, 8);
        assert_eq!(first_available, 6, "retention kept 6..=25");
        let Some(&(oldest, _)) = page.first() else {
            break;
        };
        assert!(page.len() <= 8);
        assert!(page.windows(2).all(|w| w[1].0 == w[0].0 + 1), "{page:?}");
        assert_eq!(
            page.last().map(|m| m.0),
            Some(before.min(26) - 1),
            "ends below before"
        );
        before = oldest;
        pages.push(page);
        assert!(pages.len() <= 4, "too many pages");
    }
    let lens: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(lens, [8, 8, 4]);
    let all: Vec<(u64, String)> = pages.into_iter().rev().flatten().collect();
    assert_eq!(all, expected(6..=25));
    // A page in the middle.
    assert_eq!(history(&mut bob, room, 13, 3), (expected(10..=12), 6));

    // A member who joins later sees nothing from before.
    let mut carol = register_auto_ack(&s, "carol");
    join(&mut carol, room);
    assert_eq!(history(&mut carol, room, u64::MAX, 50), (vec![], 26));
    send_all(&mut alice, room, [26]);
    sync(&mut carol);
    assert_eq!(
        history(&mut carol, room, u64::MAX, 50),
        (expected([26]), 26)
    );
    let req = dave.fetch_history(room, u64::MAX, 10).expect("history");
    assert_eq!(refused(&mut dave, req), ErrorCode::NotInRoom);
}

/// A member away longer than retention: at login `RoomGap` names the first retained
/// message before the replay, which starts there.
pub fn retention_gap_is_announced_before_the_replay<R: Runtime>() {
    let limits = fast(Limits {
        room_log_messages: Some(10),
        ..Limits::default()
    });
    let s = TestServer::start::<R>(limits);
    let mut alice = register_auto_ack(&s, "alice");
    let (mut bob, bob_id) = s.register("bob");
    let room = create_room(&mut alice, "forgetful");
    join(&mut bob, room);
    send_all(&mut alice, room, 1..=3);
    assert_eq!(
        room_msgs(room, &until_round_trip(&mut bob)),
        expected(1..=3)
    );
    bob.ack_room(room, 3).expect("ack");
    sync(&mut bob);
    logout(bob);
    send_all(&mut alice, room, 4..=30);

    let mut bob = s.login("bob", &bob_id);
    let got = until_round_trip(&mut bob);
    assert_catch_up(room, &got, &expected(21..=30));
    let gaps: Vec<(usize, u64)> = got
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match r {
            Reply::RoomGap {
                room: r,
                first_available,
            } if *r == room => Some((i, *first_available)),
            _ => None,
        })
        .collect();
    let first_msg = got
        .iter()
        .position(|r| matches!(r, Reply::RoomMessage { .. }))
        .expect("a replay");
    assert_eq!(gaps.len(), 1, "one gap: {got:?}");
    assert_eq!(gaps[0].1, 21, "first_available");
    assert!(
        gaps[0].0 < first_msg,
        "the gap comes before the replay: {got:?}"
    );
    bob.ack_room(room, 30).expect("ack");
    assert_eq!(room_msgs(room, &until_round_trip(&mut bob)), NONE);
    assert_eq!(
        history(&mut bob, room, u64::MAX, 100),
        (expected(21..=30), 21)
    );
}
