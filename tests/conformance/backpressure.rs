//! Conformance tests for back-pressure: under a flat-out burst the server slows the
//! senders (it stops reading their input while the queues of the members their messages
//! go to are deep) instead of cutting off members that read; only a member that does not
//! read at all is cut off, and the others go on.

use std::collections::BTreeMap;
use std::time::Instant;

use cove::config::Limits;
use cove_core::crypto::Identity;
use cove_core::hub::Reply;
use cove_core::wire::{AuthMode, ErrorCode, RoomId, Status};
use cove_std::client::{ClientOptions, Event, Events};

use super::*;

/// Rooms in the burst.
const ROOMS: usize = 5;
/// Members per room; every member sends.
const MEMBERS: usize = 10;
/// Messages each member sends, as fast as it can.
const MSGS: usize = 200;

/// Limits for a burst from one address: admission's fair shares per address lifted (or
/// it would rightly refuse most of the clients), the request rate lifted (this is about
/// queues, not rate limits), and the send queue small enough that the burst fills it
/// many times over (64 replies; the room window is the default, 64).
fn burst_limits() -> Limits {
    Limits {
        max_per_address: Some(10_000),
        max_unauthenticated: Some(10_000),
        max_unauthenticated_per_address: Some(10_000),
        handshake_rate: Some(1_000_000),
        registration_burst: Some(1_000),
        rate: Some(1_000_000),
        rate_burst: Some(1_000_000),
        send_queue: Some(64),
        ..Limits::default()
    }
}

/// What one member saw of the burst.
#[derive(Default)]
struct Seen {
    /// `(seq, from, n)` of each room message, in arrival order.
    messages: Vec<(u64, Arc<str>, usize)>,
    /// Anything that should not have happened: a close, an error, a member going offline.
    trouble: Vec<String>,
}

/// Reads `events` until `want` room messages arrived (or the deadline passed).
fn read_burst(mut events: Events, want: usize, deadline: Instant) -> (Seen, Events) {
    let mut seen = Seen::default();
    while seen.messages.len() < want {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(ev) = events.recv_timeout(left) else {
            seen.trouble.push(format!(
                "timed out after {} of {want} messages",
                seen.messages.len()
            ));
            break;
        };
        match ev {
            Event::Message(Reply::RoomMessage {
                seq, from, body, ..
            }) => {
                let text = String::from_utf8_lossy(&body).into_owned();
                let n = text
                    .rsplit_once(':')
                    .and_then(|(_, n)| n.parse().ok())
                    .unwrap_or(usize::MAX);
                seen.messages.push((seq, from, n));
            }
            Event::Message(Reply::Error { code, .. }) => {
                seen.trouble.push(format!("error {code:?}"));
            }
            Event::Message(Reply::StatusUpdate {
                name,
                status: Status::Offline,
            }) => seen.trouble.push(format!("{name} went offline")),
            Event::Closed { code, by_peer } => {
                seen.trouble
                    .push(format!("closed: {code:?} (by peer: {by_peer})"));
                break;
            }
            _ => {}
        }
    }
    (seen, events)
}

/// 50 clients in 5 rooms of 10 each send 200 room messages flat out while all of them
/// read: every member receives every message of its room exactly once, in the room's
/// order, and nobody is cut off. The send queue (64 replies) is far smaller than the
/// burst: the senders must be slowed, not the readers cut.
pub fn flat_out_burst_loses_nothing_and_cuts_no_reader<R: Runtime>() {
    let s = TestServer::start::<R>(burst_limits());
    let mut clients: Vec<(String, Connection)> = (0..ROOMS * MEMBERS)
        .map(|i| {
            let name = format!("b{i}");
            let id = Identity::generate(&mut cove_std::os_rng());
            let mut o = ClientOptions::new(&name, AuthMode::Register, id);
            // Members acknowledge what they read, as applications do, so the room window
            // keeps moving.
            o.config.auto_ack_rooms = true;
            let c = s
                .connect_with(o)
                .unwrap_or_else(|e| panic!("register {name}: {e}"));
            (name, c)
        })
        .collect();
    let mut rooms: Vec<RoomId> = Vec::new();
    for r in 0..ROOMS {
        let room = create_room(&mut clients[r * MEMBERS].1, &format!("burst{r}"));
        for m in 1..MEMBERS {
            join(&mut clients[r * MEMBERS + m].1, room);
        }
        rooms.push(room);
    }
    // Everyone is in; drop what the joins announced.
    for (_, c) in clients.iter_mut() {
        sync(c);
        c.events().drain();
    }

    let deadline = Instant::now() + T * 3;
    let want = MEMBERS * MSGS;
    let mut readers = Vec::new();
    let mut senders = Vec::new();
    for (i, (name, c)) in clients.into_iter().enumerate() {
        let room = rooms[i / MEMBERS];
        let (handle, events) = c.split();
        readers.push(std::thread::spawn(move || {
            read_burst(events, want, deadline)
        }));
        senders.push(std::thread::spawn(move || {
            for n in 0..MSGS {
                if let Err(e) = handle.send_room(room, format!("{name}:{n}").as_bytes()) {
                    return Err(format!("{name}: send {n}: {e}"));
                }
            }
            Ok(handle)
        }));
    }
    let handles: Vec<_> = senders
        .into_iter()
        .map(|t| t.join().expect("sender thread"))
        .collect();
    let seen: Vec<(Seen, Events)> = readers
        .into_iter()
        .map(|t| t.join().expect("reader thread"))
        .collect();
    for h in &handles {
        if let Err(e) = h {
            panic!("{e}");
        }
    }

    // Per room: every member saw the same sequence, without gap or repeat, holding each
    // sender's messages once and in the order sent.
    for (r, members) in seen.chunks(MEMBERS).enumerate() {
        let mut reference: Option<&[(u64, Arc<str>, usize)]> = None;
        for (m, (member, _)) in members.iter().enumerate() {
            let who = format!("b{} (room {r})", r * MEMBERS + m);
            assert!(member.trouble.is_empty(), "{who}: {:?}", member.trouble);
            let msgs = &member.messages;
            assert_eq!(msgs.len(), want, "{who}: every message once");
            assert!(
                msgs.windows(2).all(|w| w[1].0 == w[0].0 + 1),
                "{who}: in the room's order, without gap or repeat"
            );
            let mut next: BTreeMap<&str, usize> = BTreeMap::new();
            for (_, from, n) in msgs {
                let expected = next.entry(from).or_default();
                assert_eq!(*n, *expected, "{who}: {from}'s messages in the order sent");
                *expected += 1;
            }
            assert_eq!(next.len(), MEMBERS, "{who}: from every member");
            assert!(next.values().all(|n| *n == MSGS), "{who}: all of them");
            match reference {
                None => reference = Some(msgs),
                Some(first) => assert!(first == &msgs[..], "{who}: the same order as the others"),
            }
        }
    }
    // Nobody was cut off: each can still do a round trip.
    for (h, (_, mut events)) in handles.into_iter().zip(seen) {
        let h = h.expect("checked");
        let req = h.list_users().expect("list users");
        let answered = events.wait_for(T, |e| match e {
            Event::Message(Reply::UserList { req: r, .. }) => Some(*r == req),
            Event::Closed { code, .. } => panic!("cut off after the burst: {code:?}"),
            _ => None,
        });
        assert_eq!(answered, Some(true), "a round trip after the burst");
    }
}

/// A member who never reads stalls its room only until the write-stall timeout cuts it
/// off; the other members of its room, who read, receive everything in order, and the
/// sender, slowed meanwhile, is not cut off.
pub fn non_reader_is_cut_off_and_its_room_goes_on<R: Runtime>() {
    // 30 KB bodies, 18 MB in all: far more than the kernel's socket buffers absorb for
    // Bob, so his writes stall.
    const BODY: usize = 30_000;
    const TOTAL: usize = 600;
    let limits = Limits {
        // Long enough that Alice's and Carol's own readers, starved of CPU on a loaded
        // two-core machine, never look stalled (at 1 s Alice was once cut off in CI).
        write_timeout_ms: Some(3000),
        room_window: Some(1_000_000),
        ..burst_limits()
    };
    let s = TestServer::start::<R>(limits);
    let (mut alice, mut carol, mut bob, room) = room_with_stalled_bob(&s, "stalled");
    sync(&mut alice);

    // Alice sends flat out from another thread.
    let handle = alice.handle();
    let sender = std::thread::spawn(move || {
        let body = vec![b'x'; BODY];
        for _ in 0..TOTAL {
            handle.send_room(room, &body).map_err(|e| e.to_string())?;
        }
        Ok::<_, String>(())
    });
    let mut carol_seqs = Vec::new();
    while carol_seqs.len() < TOTAL {
        let seq = wait(&mut carol, "carol's messages", |e| match e {
            Event::Message(Reply::RoomMessage { seq, .. }) => Some(*seq),
            Event::Closed { code, .. } => panic!("carol was cut off: {code:?}"),
            _ => None,
        });
        carol_seqs.push(seq);
    }
    sender
        .join()
        .expect("sender")
        .expect("alice sent everything");
    assert!(carol_seqs.windows(2).all(|w| w[1] == w[0] + 1), "no gaps");
    // Bob went offline (cut off) while Alice went on.
    wait(&mut alice, "bob going offline", |e| match e {
        Event::Message(Reply::StatusUpdate {
            name,
            status: Status::Offline,
        }) if &**name == "bob" => Some(()),
        Event::Closed { code, .. } => panic!("alice was cut off: {code:?}"),
        _ => None,
    });
    sync(&mut alice);
    sync(&mut carol);
    let (code, _) = closed(&mut bob);
    assert!(
        matches!(
            code,
            ErrorCode::SendQueueExceeded | ErrorCode::ConnectionTerminated
        ),
        "{code:?}"
    );
}
