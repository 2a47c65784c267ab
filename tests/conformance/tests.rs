//! The conformance tests, generic over the runtime.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cove::config::Limits;
use cove_core::client::ClientState;
use cove_core::crypto::Identity;
use cove_core::handshake::HandshakeError;
use cove_core::hub::Reply;
use cove_core::wire::{
    AckStatus, AuthMode, ErrorCode, FrameType, HEADER_LEN, RoomId, Status, encode_header,
};
use cove_std::client::{ClientOptions, ConnectError, Connection, Event};

use super::*;

fn dm_ack(c: &mut Connection, to: &str, body: &[u8]) -> AckStatus {
    let req = c.send_dm(to, body).expect("send dm");
    wait(c, "the DM's ack", |e| match e {
        Event::Message(Reply::MessageAck { req: r, status, .. }) if *r == req => Some(*status),
        _ => None,
    })
}

/// Waits for a direct message and acknowledges it, as a program does once it has shown it.
fn incoming_dm(c: &mut Connection) -> (Arc<str>, Vec<u8>) {
    let (msg_id, from, body) = wait(c, "a direct message", |e| match e {
        Event::Message(Reply::IncomingDm {
            msg_id, from, body, ..
        }) => Some((*msg_id, from.clone(), body.to_vec())),
        _ => None,
    });
    c.ack_dm(msg_id).expect("ack the DM");
    (from, body)
}

/// Register, log out, log in again: the server proves the key the client pinned.
pub fn handshake_register_and_login<R: Runtime>() {
    let s = TestServer::start::<R>(Limits::default());
    let (alice, id) = s.register("alice");
    let w = alice.welcome();
    assert_eq!(w.server_key, s.key());
    assert_eq!((w.mode, w.pending), (AuthMode::Register, 0));
    assert_eq!(alice.state(), ClientState::InLobby);
    logout(alice);
    let mut alice = s.login("alice", &id);
    assert_eq!(alice.welcome().mode, AuthMode::Login);
    sync(&mut alice);
}

/// A login with a key other than the account's is refused by the server.
pub fn wrong_key_is_refused<R: Runtime>() {
    let s = TestServer::start::<R>(Limits::default());
    let (alice, _) = s.register("alice");
    logout(alice);
    let other = Identity::generate(&mut cove_std::os_rng());
    match s.try_connect("alice", AuthMode::Login, &other) {
        Err(ConnectError::Closed {
            code: ErrorCode::AuthFailed,
            by_peer: true,
            ..
        }) => {}
        other => panic!("expected AuthFailed from the server, got {other:?}"),
    }
}

/// Registering a name that exists fails with UserExists, and leaves the owner alone.
pub fn name_already_taken<R: Runtime>() {
    let s = TestServer::start::<R>(Limits::default());
    let (mut alice, _) = s.register("alice");
    let other = Identity::generate(&mut cove_std::os_rng());
    match s.try_connect("alice", AuthMode::Register, &other) {
        Err(ConnectError::Closed {
            code: ErrorCode::UserExists,
            by_peer: true,
            ..
        }) => {}
        other => panic!("expected UserExists, got {other:?}"),
    }
    sync(&mut alice);
}

/// Logging in to an account that does not exist fails with UserNotFound.
pub fn unknown_user_cannot_log_in<R: Runtime>() {
    let s = TestServer::start::<R>(Limits::default());
    let id = Identity::generate(&mut cove_std::os_rng());
    match s.try_connect("nobody", AuthMode::Login, &id) {
        Err(ConnectError::Closed {
            code: ErrorCode::UserNotFound,
            ..
        }) => {}
        other => panic!("expected UserNotFound, got {other:?}"),
    }
}

/// A client that pinned another key refuses the server before revealing itself.
pub fn changed_server_key_is_refused<R: Runtime>() {
    let s = TestServer::start::<R>(Limits::default());
    let id = Identity::generate(&mut cove_std::os_rng());
    let options = ClientOptions::new("alice", AuthMode::Register, id).pin_server_key([7; 32]);
    match s.connect_with(options) {
        Err(ConnectError::Closed {
            code: ErrorCode::AuthFailed,
            by_peer: false,
            server_key: None,
        }) => {}
        other => panic!("expected a local AuthFailed, got {other:?}"),
    }
    // Nothing was registered: the ACK (with the name) was never sent.
    let (mut alice, _) = s.register("alice");
    sync(&mut alice);
}

/// Create, join, list, leave, with the notices members get.
pub fn rooms_create_join_leave_list<R: Runtime>() {
    let s = TestServer::start::<R>(Limits::default());
    let (mut alice, _) = s.register("alice");
    let (mut bob, _) = s.register("bob");
    let room = create_room(&mut alice, "lobby");
    assert_eq!(alice.state(), ClientState::InRoom);
    let members = join(&mut bob, room);
    let mut names: Vec<&str> = members.iter().map(|m| &**m).collect();
    names.sort_unstable();
    assert_eq!(names, ["alice", "bob"]);
    wait(&mut alice, "bob joining", |e| match e {
        Event::Message(Reply::MemberJoined { room: r, name }) if *r == room && &**name == "bob" => {
            Some(())
        }
        _ => None,
    });
    let req = alice.list_rooms().expect("list");
    match reply(&mut alice, req) {
        Reply::RoomList { rooms, .. } => {
            let r = rooms.iter().find(|r| r.room == room).expect("room listed");
            assert_eq!((&*r.title, r.members, r.capacity), ("lobby", 2, 20));
        }
        other => panic!("expected RoomList, got {other:?}"),
    }
    let req = bob.leave_room(room).expect("leave");
    assert!(matches!(reply(&mut bob, req), Reply::RoomLeft { room: r, .. } if r == room));
    assert_eq!(bob.state(), ClientState::InLobby);
    wait(&mut alice, "bob leaving", |e| match e {
        Event::Message(Reply::MemberLeft { room: r, name }) if *r == room && &**name == "bob" => {
            Some(())
        }
        _ => None,
    });
    let req = bob.send_room(room, b"let me back in").expect("send");
    assert_eq!(
        error_code(&reply(&mut bob, req)),
        Some(ErrorCode::NotInRoom)
    );
}

/// A room holds 20 members; the 21st join is refused with RoomFull.
pub fn twenty_first_join_is_refused<R: Runtime>() {
    // 21 accounts from one address: past the default registration budget per address,
    // and past the default burst of 20 handshakes when they all finish within 200 ms.
    let limits = Limits {
        registration_burst: Some(100),
        handshake_rate: Some(1_000),
        ..Limits::default()
    };
    let s = TestServer::start::<R>(limits);
    let (mut owner, _) = s.register("owner");
    let room = create_room(&mut owner, "full house");
    let mut members = Vec::new();
    for i in 1..20 {
        let (mut c, _) = s.register(&format!("member{i}"));
        join(&mut c, room);
        members.push(c);
    }
    let (mut late, _) = s.register("latecomer");
    let req = late.join_room(room).expect("join");
    assert_eq!(
        error_code(&reply(&mut late, req)),
        Some(ErrorCode::RoomFull)
    );
    // A seat frees up: now it works.
    let mut leaving = members.pop().expect("member");
    let req = leaving.leave_room(room).expect("leave");
    reply(&mut leaving, req);
    join(&mut late, room);
}

/// Three members send concurrently; all see one total order, with strictly increasing
/// sequence numbers and each sender's messages in the order sent.
pub fn all_members_see_the_same_order<R: Runtime>() {
    const EACH: usize = 40;
    let s = TestServer::start::<R>(Limits::default());
    let mut conns: Vec<Connection> = ["ann", "ben", "cat"]
        .iter()
        .map(|n| s.register(n).0)
        .collect();
    let room = create_room(&mut conns[0], "order");
    for c in &mut conns[1..] {
        join(c, room);
    }
    for c in &mut conns {
        sync(c);
    }
    let senders: Vec<_> = conns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let h = c.handle();
            std::thread::spawn(move || {
                for k in 0..EACH {
                    h.send_room(room, format!("{i}:{k}").as_bytes())
                        .expect("send");
                }
            })
        })
        .collect();
    for t in senders {
        t.join().expect("sender");
    }
    let mut seen: Vec<Vec<(u64, String)>> = Vec::new();
    for c in &mut conns {
        let mut got = Vec::new();
        while got.len() < EACH * 3 {
            let m = wait(c, "room messages", |e| match e {
                Event::Message(Reply::RoomMessage { seq, body, .. }) => {
                    Some((*seq, String::from_utf8_lossy(body).into_owned()))
                }
                _ => None,
            });
            // Shown: acknowledge it, or the room window stops the flow at 64.
            c.ack_room(room, m.0).expect("ack");
            got.push(m);
        }
        assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "seq increases");
        for i in 0..3 {
            let mine: Vec<usize> = got
                .iter()
                .filter_map(|(_, b)| b.strip_prefix(&format!("{i}:")))
                .map(|k| k.parse().expect("k"))
                .collect();
            assert_eq!(mine, (0..EACH).collect::<Vec<_>>(), "sender {i} in order");
        }
        seen.push(got);
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[1], seen[2]);
}

/// A DM to an online user is delivered; to an offline one it is queued and delivered on
/// login; to nobody it fails with a reason.
pub fn direct_messages_live_and_offline<R: Runtime>() {
    let s = TestServer::start::<R>(Limits::default());
    let (mut alice, _) = s.register("alice");
    let (mut bob, bob_id) = s.register("bob");
    assert_eq!(dm_ack(&mut alice, "bob", b"hi bob"), AckStatus::Delivered);
    assert_eq!(incoming_dm(&mut bob), ("alice".into(), b"hi bob".to_vec()));
    logout(bob);
    assert_eq!(dm_ack(&mut alice, "bob", b"one"), AckStatus::Queued);
    assert_eq!(dm_ack(&mut alice, "bob", b"two"), AckStatus::Queued);
    let mut bob = s.login("bob", &bob_id);
    assert_eq!(bob.welcome().pending, 2);
    assert_eq!(incoming_dm(&mut bob).1, b"one");
    assert_eq!(incoming_dm(&mut bob).1, b"two");
    let req = alice.send_dm("nobody", b"?").expect("send");
    let mut got = Vec::new();
    while got.len() < 2 {
        got.push(reply(&mut alice, req));
    }
    assert!(
        got.iter()
            .any(|r| error_code(r) == Some(ErrorCode::UserNotFound))
    );
    assert!(got.iter().any(|r| matches!(
        r,
        Reply::MessageAck {
            status: AckStatus::Failed,
            ..
        }
    )));
}

/// Status changes reach the users who share a room, and so does going offline.
pub fn presence_updates_reach_room_peers<R: Runtime>() {
    let s = TestServer::start::<R>(Limits::default());
    let (mut alice, _) = s.register("alice");
    let (mut bob, _) = s.register("bob");
    let room = create_room(&mut alice, "presence");
    join(&mut bob, room);
    let req = bob.set_status(Status::Away).expect("status");
    assert!(matches!(reply(&mut bob, req), Reply::Ok { .. }));
    let status = wait(&mut alice, "bob away", |e| match e {
        Event::Message(Reply::StatusUpdate { name, status }) if &**name == "bob" => Some(*status),
        _ => None,
    });
    assert_eq!(status, Status::Away);
    let req = alice.list_users().expect("users");
    match reply(&mut alice, req) {
        Reply::UserList { users, .. } => {
            let bob = users
                .iter()
                .find(|(n, _)| &**n == "bob")
                .expect("bob listed");
            assert_eq!(bob.1, Status::Away);
        }
        other => panic!("expected UserList, got {other:?}"),
    }
    bob.close();
    wait(&mut alice, "bob offline", |e| match e {
        Event::Message(Reply::StatusUpdate {
            name,
            status: Status::Offline,
        }) if &**name == "bob" => Some(()),
        _ => None,
    });
}

/// Past the token bucket a request gets `RateLimited`, and the connection stays up.
pub fn rate_limit_answers_with_an_error<R: Runtime>() {
    let limits = Limits {
        rate: Some(2),
        rate_burst: Some(3),
        rate_strikes: Some(1000),
        ..Limits::default()
    };
    let s = TestServer::start::<R>(limits);
    let (mut alice, _) = s.register("alice");
    let reqs: Vec<u32> = (0..12).map(|_| alice.list_users().expect("send")).collect();
    let replies: Vec<Reply> = reqs.iter().map(|r| reply(&mut alice, *r)).collect();
    let limited = replies
        .iter()
        .filter(|r| error_code(r) == Some(ErrorCode::RateLimited))
        .count();
    let served = replies
        .iter()
        .filter(|r| matches!(r, Reply::UserList { .. }))
        .count();
    assert!(limited >= 6, "{limited} refused of 12");
    assert!(served >= 3, "the burst is served");
    assert_ne!(alice.state(), ClientState::Closed);
}

/// A client that keeps pushing past the limit is closed with `RateLimited`.
pub fn rate_limit_closes_a_persistent_flooder<R: Runtime>() {
    let limits = Limits {
        rate: Some(1),
        rate_burst: Some(1),
        rate_strikes: Some(5),
        ..Limits::default()
    };
    let s = TestServer::start::<R>(limits);
    let (mut flooder, _) = s.register("flooder");
    let (mut other, _) = s.register("other");
    for _ in 0..50 {
        if flooder.list_users().is_err() {
            break;
        }
    }
    let (code, by_peer) = closed(&mut flooder);
    assert_eq!(
        (code, by_peer),
        (ErrorCode::RateLimited, true),
        "the server's goodbye was lost; if the code is ConnectionTerminated, the adapter \
         probably closed a socket that still held unread input, which sends a reset that \
         can destroy the goodbye in flight: close lingering (shut down the write side \
         after the last record, drain the peer's input until EOF or a short deadline, \
         then close), as cove-std does"
    );
    sync(&mut other);
}

/// A frame over the limit gets an alert and a close; others carry on.
pub fn oversize_frame_gets_an_error_and_a_close<R: Runtime>() {
    let limits = Limits {
        max_frame: Some(1024),
        ..Limits::default()
    };
    let s = TestServer::start::<R>(limits);
    let (mut alice, _) = s.register("alice");
    let (mut bob, _) = s.register("bob");
    let mut frame = encode_header(FrameType::Syn, 1025).to_vec();
    frame.extend_from_slice(&[0u8; 200]);
    let mut sock = raw(s.addr(), &frame);
    let close = read_until_closed(&mut sock);
    assert_eq!(close.alert, Some(ErrorCode::FrameTooLarge));
    assert_eq!(
        dm_ack(&mut alice, "bob", b"still here"),
        AckStatus::Delivered
    );
    assert_eq!(incoming_dm(&mut bob).1, b"still here");
}

/// A 4 GiB length prefix is refused from the header alone: nothing is buffered.
pub fn four_gib_length_prefix_is_refused_at_once<R: Runtime>() {
    let s = TestServer::start::<R>(Limits::default());
    let (mut alice, _) = s.register("alice");
    let mut header = [0xFFu8; HEADER_LEN];
    header[HEADER_LEN - 1] = FrameType::Syn.as_u8();
    let mut sock = raw(s.addr(), &header);
    let close = read_until_closed(&mut sock);
    assert_eq!(close.alert, Some(ErrorCode::FrameTooLarge));
    sync(&mut alice);
}

/// Bytes that are no protocol at all get a close, not a crash.
pub fn garbage_bytes_are_refused<R: Runtime>() {
    let s = TestServer::start::<R>(Limits::default());
    let (mut alice, _) = s.register("alice");
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for round in 0..20 {
        let junk: Vec<u8> = (0..64 + round * 50)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let mut sock = raw(s.addr(), &junk);
        let close = read_until_closed(&mut sock);
        assert!(close.alert.is_some(), "round {round}: closed with a reason");
    }
    // Valid-looking frame types in the wrong place, e.g. a record before any handshake.
    let mut frame = encode_header(FrameType::Record, 40).to_vec();
    frame.extend_from_slice(&[9u8; 40]);
    let close = read_until_closed(&mut raw(s.addr(), &frame));
    assert!(close.alert.is_some());
    sync(&mut alice);
}

/// A connection that opens and says nothing is closed at the handshake deadline.
pub fn silent_connection_hits_the_handshake_deadline<R: Runtime>() {
    let limits = Limits {
        handshake_timeout_ms: Some(2000),
        ..Limits::default()
    };
    let s = TestServer::start::<R>(limits);
    let (mut alice, _) = s.register("alice");
    let mut sock = raw(s.addr(), &[]);
    let close = read_until_closed(&mut sock);
    assert_eq!(close.alert, Some(ErrorCode::HandshakeTimeout));
    assert!(
        close.after >= Duration::from_millis(1900),
        "{:?}",
        close.after
    );
    // Half a header is no better.
    let mut sock = raw(s.addr(), &[0, 0]);
    assert_eq!(
        read_until_closed(&mut sock).alert,
        Some(ErrorCode::HandshakeTimeout)
    );
    sync(&mut alice);
}

/// A member who stops reading is cut off once its queue overflows; the others go on
/// receiving every message in order.
pub fn reader_that_never_reads_is_cut_off<R: Runtime>() {
    const BATCH: usize = 16;
    let limits = Limits {
        send_queue: Some(64),
        // A room window larger than the send queue: the window alone would otherwise
        // stop Bob's backlog before the queue overflows, and this test is about the queue.
        room_window: Some(1_000_000),
        write_timeout_ms: Some(1000),
        rate: Some(1_000_000),
        rate_burst: Some(1_000_000),
        ..Limits::default()
    };
    let s = TestServer::start::<R>(limits);
    let (mut alice, mut carol, mut bob, room) = room_with_stalled_bob(&s, "firehose");

    // Alice sends in batches and waits for her own last message to come back, so she and
    // Carol keep up with the traffic while Bob's backlog grows until the server cuts him.
    let body = vec![b'x'; 4000];
    let started = Instant::now();
    let mut sent = 0usize;
    let mut carol_seqs = Vec::new();
    let mut cut = false;
    while !cut {
        assert!(started.elapsed() < T * 3, "bob was never cut off");
        for _ in 0..BATCH {
            alice.send_room(room, &body).expect("send");
        }
        sent += BATCH;
        let mut echoes = 0;
        while echoes < BATCH {
            // A cut member stays a member (membership is durable): he goes offline.
            match wait(
                &mut alice,
                "alice's echo or bob going offline",
                |e| match e {
                    Event::Message(Reply::RoomMessage { from, .. }) if &**from == "alice" => {
                        Some(false)
                    }
                    Event::Message(Reply::StatusUpdate {
                        name,
                        status: Status::Offline,
                    }) if &**name == "bob" => Some(true),
                    _ => None,
                },
            ) {
                true => cut = true,
                false => echoes += 1,
            }
        }
        while let Some(e) = carol.events().try_recv() {
            if let Event::Message(Reply::RoomMessage { seq, .. }) = e {
                carol_seqs.push(seq);
            }
        }
    }
    // Carol got every message, in order, without gaps.
    while carol_seqs.len() < sent {
        let seq = wait(&mut carol, "carol's messages", |e| match e {
            Event::Message(Reply::RoomMessage { seq, .. }) => Some(*seq),
            _ => None,
        });
        carol_seqs.push(seq);
    }
    assert!(carol_seqs.windows(2).all(|w| w[1] == w[0] + 1), "no gaps");
    sync(&mut carol);
    // Bob, once he reads again, finds his connection closed.
    let (code, _) = closed(&mut bob);
    assert!(
        matches!(
            code,
            ErrorCode::SendQueueExceeded | ErrorCode::ConnectionTerminated
        ),
        "{code:?}"
    );
}

/// With rotation every few records on both sides, heavy traffic arrives complete.
pub fn key_rotation_under_traffic_loses_nothing<R: Runtime>() {
    const N: usize = 150;
    let limits = Limits {
        rotate_after_records: Some(7),
        rate: Some(1_000_000),
        rate_burst: Some(1_000_000),
        ..Limits::default()
    };
    let s = TestServer::start::<R>(limits);
    let connect = |name: &str| {
        let id = Identity::generate(&mut cove_std::os_rng());
        let mut opts = ClientOptions::new(name, AuthMode::Register, id);
        opts.config.session.rotate_after_records = 5;
        s.connect_with(opts).expect("connect")
    };
    let mut alice = connect("alice");
    let mut bob = connect("bob");
    let room = create_room(&mut alice, "rotating");
    join(&mut bob, room);
    sync(&mut alice);
    let a = alice.handle();
    let b = bob.handle();
    let ta = std::thread::spawn(move || {
        for i in 0..N {
            a.send_room(room, format!("a{i}").as_bytes()).expect("room");
            a.send_dm("bob", format!("dm{i}").as_bytes()).expect("dm");
        }
    });
    let tb = std::thread::spawn(move || {
        for i in 0..N {
            b.send_room(room, format!("b{i}").as_bytes()).expect("room");
        }
    });
    ta.join().expect("alice");
    tb.join().expect("bob");
    let room_msgs = |c: &mut Connection| {
        let mut got = Vec::new();
        while got.len() < 2 * N {
            let m = wait(c, "room messages", |e| match e {
                Event::Message(Reply::RoomMessage { seq, body, .. }) => {
                    Some((*seq, String::from_utf8_lossy(body).into_owned()))
                }
                _ => None,
            });
            // Acknowledged in batches, well within the room window of 64.
            if got.len() % 32 == 31 {
                c.ack_room(room, m.0).expect("ack");
            }
            got.push(m);
        }
        got
    };
    let at_alice = room_msgs(&mut alice);
    let at_bob = room_msgs(&mut bob);
    assert_eq!(at_alice, at_bob);
    let dms: Vec<Vec<u8>> = (0..N).map(|_| incoming_dm(&mut bob).1).collect();
    let expected: Vec<Vec<u8>> = (0..N).map(|i| format!("dm{i}").into_bytes()).collect();
    assert_eq!(dms, expected);
    sync(&mut alice);
    sync(&mut bob);
    for c in [&alice, &bob] {
        let st = c.session_stats().expect("stats");
        assert!(st.key_updates_sent >= 20, "client rotated: {st:?}");
        assert!(st.key_updates_received >= 20, "server rotated: {st:?}");
    }
}

/// A graceful restart keeps accounts and queued DMs.
pub fn restart_keeps_accounts_and_queued_dms<R: Runtime>() {
    let mut s = TestServer::start::<R>(Limits::default());
    let (alice, alice_id) = s.register("alice");
    let (bob, bob_id) = s.register("bob");
    logout(bob);
    let mut alice = alice;
    assert_eq!(
        dm_ack(&mut alice, "bob", b"while you were out"),
        AckStatus::Queued
    );
    drop(alice);
    s.restart();
    let mut bob = s.login("bob", &bob_id);
    assert_eq!(bob.welcome().pending, 1);
    assert_eq!(
        incoming_dm(&mut bob),
        ("alice".into(), b"while you were out".to_vec())
    );
    let mut alice = s.login("alice", &alice_id);
    sync(&mut alice);
    let again = Identity::generate(&mut cove_std::os_rng());
    assert!(matches!(
        s.try_connect("alice", AuthMode::Register, &again),
        Err(ConnectError::Closed {
            code: ErrorCode::UserExists,
            ..
        })
    ));
}

/// `kill -9` of `cove serve` after a DM was acknowledged as queued; after a restart the
/// DM is delivered, and exactly once (again after a second kill).
pub fn kill_9_after_queued_ack_then_restart_delivers_once<R: Runtime>() {
    let dir = TempDir::new("kill9");
    let data = dir.path().join("server");
    let connect = |addr, name: &str, mode, id: &Identity, key: Option<[u8; 32]>| {
        let mut o = ClientOptions::new(name, mode, id.clone());
        o.config.server_key = key;
        o.connect_timeout = T;
        cove_std::client::connect(addr, o).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let server = CliServer::start(&data, R::CLI_RUNTIME);
    let bob_id = Identity::generate(&mut cove_std::os_rng());
    let alice_id = Identity::generate(&mut cove_std::os_rng());
    let bob = connect(server.addr, "bob", AuthMode::Register, &bob_id, None);
    let key = bob.welcome().server_key;
    logout(bob);
    let mut alice = connect(
        server.addr,
        "alice",
        AuthMode::Register,
        &alice_id,
        Some(key),
    );
    assert_eq!(
        dm_ack(&mut alice, "bob", b"survive this"),
        AckStatus::Queued
    );
    server.kill_9();
    drop(alice);

    let server = CliServer::start(&data, R::CLI_RUNTIME);
    let mut bob = connect(server.addr, "bob", AuthMode::Login, &bob_id, Some(key));
    assert_eq!(bob.welcome().pending, 1);
    // Everything before the user list's answer: exactly one copy of the DM.
    let req = bob.list_users().expect("users");
    let mut dms = Vec::new();
    loop {
        match wait(&mut bob, "the DM and the user list", |e| match e {
            Event::Message(r @ (Reply::IncomingDm { .. } | Reply::UserList { .. })) => {
                Some(r.clone())
            }
            _ => None,
        }) {
            Reply::IncomingDm {
                msg_id, body, from, ..
            } => {
                // Shown: acknowledge it.
                bob.ack_dm(msg_id).expect("ack");
                dms.push((from, body));
            }
            Reply::UserList { req: r, .. } if r == req => break,
            _ => {}
        }
    }
    assert_eq!(dms.len(), 1, "{dms:?}");
    assert_eq!((&*dms[0].0, &*dms[0].1), ("alice", &b"survive this"[..]));
    // One more round trip makes sure the server handled that ack (and, write-ahead, made
    // it durable) before we kill it.
    sync(&mut bob);
    assert!(
        !bob.events()
            .drain()
            .iter()
            .any(|e| matches!(e, Event::Message(Reply::IncomingDm { .. }))),
        "no second copy"
    );
    server.kill_9();
    drop(bob);

    let server = CliServer::start(&data, R::CLI_RUNTIME);
    let mut bob = connect(server.addr, "bob", AuthMode::Login, &bob_id, Some(key));
    assert_eq!(bob.welcome().pending, 0, "the acknowledged DM is gone");
    let req = bob.fetch_pending().expect("fetch");
    match reply(&mut bob, req) {
        Reply::PendingDone { count, .. } => assert_eq!(count, 0),
        other => panic!("expected PendingDone, got {other:?}"),
    }
    drop(server);
}

/// 500 connections at once from one process: the server keeps serving.
pub fn many_connections_at_once<R: Runtime>() {
    // Every connection comes from this one address: lift the fair shares per address and
    // for handshakes, or admission (rightly) refuses most of them.
    let limits = Limits {
        max_per_address: Some(10_000),
        max_unauthenticated: Some(10_000),
        max_unauthenticated_per_address: Some(10_000),
        handshake_rate: Some(1_000_000),
        registration_burst: Some(100),
        ..Limits::default()
    };
    let s = TestServer::start::<R>(limits);
    let (mut alice, _) = s.register("alice");
    let (mut bob, _) = s.register("bob");
    let addr = s.addr();
    let openers: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                (0..125)
                    .map(|_| std::net::TcpStream::connect(addr).expect("connect"))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let idle: Vec<_> = openers
        .into_iter()
        .flat_map(|t| t.join().expect("opener"))
        .collect();
    assert_eq!(idle.len(), 500);
    // Some of them log in for real, in parallel, while the rest sit there.
    let loggers: Vec<_> = (0..20)
        .map(|i| {
            let id = Identity::generate(&mut cove_std::os_rng());
            let mut o = ClientOptions::new(&format!("crowd{i}"), AuthMode::Register, id);
            o.config.server_key = Some(s.key());
            o.connect_timeout = T;
            std::thread::spawn(move || {
                let mut c = cove_std::client::connect(addr, o).expect("crowd login");
                sync(&mut c);
                c
            })
        })
        .collect();
    let crowd: Vec<Connection> = loggers
        .into_iter()
        .map(|t| t.join().expect("login"))
        .collect();
    assert_eq!(dm_ack(&mut alice, "bob", b"busy"), AckStatus::Delivered);
    assert_eq!(incoming_dm(&mut bob).1, b"busy");
    drop(idle);
    drop(crowd);
    sync(&mut alice);
}

/// Past `max-connections` a new connection gets `LimitReached`; a freed slot is reused.
pub fn connection_cap_refuses_with_a_reason<R: Runtime>() {
    let limits = Limits {
        max_connections: Some(3),
        ..Limits::default()
    };
    let s = TestServer::start::<R>(limits);
    let mut conns: Vec<Connection> = (0..3).map(|i| s.register(&format!("u{i}")).0).collect();
    let close = read_until_closed(&mut raw(s.addr(), &[]));
    assert_eq!(close.alert, Some(ErrorCode::LimitReached));
    logout(conns.pop().expect("conn"));
    let id = Identity::generate(&mut cove_std::os_rng());
    let mut late = None;
    eventually("a slot is free again", || {
        match s.try_connect("late", AuthMode::Register, &id) {
            Ok(c) => {
                late = Some(c);
                true
            }
            Err(_) => false,
        }
    });
    sync(late.as_mut().expect("late"));
    sync(&mut conns[0]);
}

/// A 10 KB nickname, or one with control characters, is refused with a clear error.
pub fn bad_nicknames_get_a_clear_error<R: Runtime>() {
    let s = TestServer::start::<R>(Limits::default());
    let (mut alice, _) = s.register("alice");
    for name in [
        "a".repeat(10_000),
        "bad\u{7}name".into(),
        "".into(),
        "tab\tname".into(),
    ] {
        let id = Identity::generate(&mut cove_std::os_rng());
        match s.try_connect(&name, AuthMode::Register, &id) {
            Err(ConnectError::Handshake(HandshakeError::InvalidName))
            | Err(ConnectError::Closed {
                code: ErrorCode::InvalidUsername,
                ..
            }) => {}
            other => panic!(
                "{:?}: expected an invalid-name error, got {other:?}",
                &name[..name.len().min(20)]
            ),
        }
    }
    sync(&mut alice);
}

/// Joining, leaving or talking to a room that does not exist: RoomNotFound.
pub fn unknown_room_gets_a_clear_error<R: Runtime>() {
    let s = TestServer::start::<R>(Limits::default());
    let (mut alice, _) = s.register("alice");
    let nowhere = RoomId::parse(b"ZZZZZZ").expect("id");
    let req = alice.join_room(nowhere).expect("join");
    assert_eq!(
        error_code(&reply(&mut alice, req)),
        Some(ErrorCode::RoomNotFound)
    );
    let req = alice.send_room(nowhere, b"hello?").expect("send");
    assert_eq!(
        error_code(&reply(&mut alice, req)),
        Some(ErrorCode::RoomNotFound)
    );
    let req = alice.leave_room(nowhere).expect("leave");
    let code = error_code(&reply(&mut alice, req));
    assert!(
        matches!(code, Some(ErrorCode::RoomNotFound | ErrorCode::NotInRoom)),
        "{code:?}"
    );
    assert_ne!(alice.state(), ClientState::Closed);
}

/// Stopping the server closes every connection with `ShuttingDown`.
pub fn graceful_shutdown_tells_every_client<R: Runtime>() {
    let mut s = TestServer::start::<R>(Limits::default());
    let mut conns: Vec<Connection> = (0..5).map(|i| s.register(&format!("u{i}")).0).collect();
    let room = create_room(&mut conns[0], "bye");
    for c in &mut conns[1..] {
        join(c, room);
    }
    s.stop();
    for c in &mut conns {
        assert_eq!(closed(c), (ErrorCode::ShuttingDown, true));
    }
    let refused = std::net::TcpStream::connect(s.addr());
    assert!(refused.is_err(), "no longer accepting");
}
