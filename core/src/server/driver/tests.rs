use alloc::sync::Arc;
use alloc::vec::Vec;

use super::*;
use crate::hub::{HubConfig, Request};
use crate::wire::{AuthMode, DEFAULT_MAX_FRAME};

pub(super) const T: Instant = Instant(1_000);

pub(super) fn driver(config: DriverConfig) -> Driver {
    Driver::new(Hub::new(HubConfig::default(), 7), config)
}

pub(super) fn observed() -> DriverConfig {
    DriverConfig {
        observe_steps: true,
        ..DriverConfig::default()
    }
}

pub(super) fn register(d: &mut Driver, conn: u64, name: &str) {
    d.handle_event(
        T,
        ConnId(conn),
        ServerEvent::Authenticate {
            name: Arc::from(name),
            key: [conn as u8; 32],
            mode: AuthMode::Register,
            max_frame: DEFAULT_MAX_FRAME,
        },
    );
}

pub(super) fn request(d: &mut Driver, conn: u64, request: Request) {
    d.handle_event(T, ConnId(conn), ServerEvent::Request(request));
}

pub(super) fn replies(d: &mut Driver) -> Vec<(ConnId, Reply)> {
    core::iter::from_fn(|| d.poll_reply()).collect()
}

/// Commits every batch handed out, in order, until none is left.
pub(super) fn commit_all(d: &mut Driver) -> usize {
    let mut n = 0;
    while let Some(b) = d.poll_batch() {
        n += b.ops.len();
        d.handle_durable(b.id).unwrap();
    }
    n
}

#[test]
fn a_reply_waits_until_its_batch_is_durable() {
    let mut d = driver(DriverConfig::default());
    register(&mut d, 1, "alice");
    assert!(replies(&mut d).is_empty(), "released before durable");
    let batch = d.poll_batch().expect("the account needs a batch");
    assert!(matches!(batch.ops[..], [StoreOp::AccountCreated { .. }]));
    assert!(d.poll_reply().is_none());
    assert!(!d.is_drained());
    d.handle_durable(batch.id).unwrap();
    let out = replies(&mut d);
    assert_eq!(out.len(), 1);
    assert!(matches!(
        out[0],
        (ConnId(1), Reply::Auth { result: Ok(0), .. })
    ));
    assert!(d.is_drained());
}

#[test]
fn a_step_without_ops_never_overtakes_a_held_one() {
    let mut d = driver(DriverConfig::default());
    register(&mut d, 1, "alice");
    // Alice is logged in at the hub already; her ListRooms needs no store op.
    request(&mut d, 1, Request::ListRooms { req: 9 });
    assert!(d.poll_reply().is_none(), "the list overtook the login");
    commit_all(&mut d);
    let out = replies(&mut d);
    assert!(matches!(out[0].1, Reply::Auth { .. }));
    assert!(matches!(out[1].1, Reply::RoomList { req: 9, .. }));
    // With nothing waiting, a step without ops is released at once.
    request(&mut d, 1, Request::ListRooms { req: 10 });
    assert!(d.poll_batch().is_none());
    assert!(matches!(
        d.poll_reply(),
        Some((_, Reply::RoomList { req: 10, .. }))
    ));
}

#[test]
fn one_batch_in_flight_and_later_steps_group_into_the_next() {
    let mut d = driver(DriverConfig::default());
    register(&mut d, 1, "alice");
    let first = d.poll_batch().unwrap();
    register(&mut d, 2, "bob");
    register(&mut d, 3, "carol");
    assert!(
        d.poll_batch().is_none(),
        "a second batch while one is in flight"
    );
    assert_eq!(d.pending_ops(), 3);
    d.handle_durable(first.id).unwrap();
    // Only alice's reply: bob's and carol's wait for the next batch.
    let out = replies(&mut d);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, ConnId(1));
    let second = d.poll_batch().unwrap();
    assert_eq!(second.ops.len(), 2);
    assert!(second.id > first.id);
    d.handle_durable(second.id).unwrap();
    let conns: Vec<ConnId> = replies(&mut d).into_iter().map(|(c, _)| c).collect();
    assert_eq!(conns, [ConnId(2), ConnId(3)]);
}

#[test]
fn a_report_for_another_batch_is_refused_and_releases_nothing() {
    let mut d = driver(DriverConfig::default());
    register(&mut d, 1, "alice");
    let b = d.poll_batch().unwrap();
    let wrong = BatchId(b.id.0 + 1);
    assert_eq!(
        d.handle_durable(wrong),
        Err(DriverError::UnknownBatch(wrong))
    );
    assert!(d.poll_reply().is_none());
    d.handle_durable(b.id).unwrap();
    assert_eq!(
        d.handle_durable(b.id),
        Err(DriverError::UnknownBatch(b.id)),
        "reported twice"
    );
    assert_eq!(replies(&mut d).len(), 1);
}

#[test]
fn a_failed_store_acknowledges_nothing_and_accepts_nothing() {
    let mut d = driver(DriverConfig::default());
    register(&mut d, 1, "alice");
    let b = d.poll_batch().unwrap();
    register(&mut d, 2, "bob");
    d.handle_store_failed(b.id);
    assert_eq!(d.state(), DriverState::Failed);
    assert!(d.poll_reply().is_none());
    assert!(d.poll_batch().is_none());
    assert!(d.is_drained());
    register(&mut d, 3, "carol");
    assert!(d.poll_batch().is_none() && d.poll_reply().is_none());
    assert_eq!(
        d.hub().online(),
        2,
        "carol reached the hub after the failure"
    );
}

#[test]
fn full_at_the_bound_and_free_again_once_durable() {
    let mut d = driver(DriverConfig {
        max_held_replies: 3,
        max_pending_ops: 100,
        ..DriverConfig::default()
    });
    register(&mut d, 1, "a");
    register(&mut d, 2, "b");
    assert!(!d.is_full());
    register(&mut d, 3, "c");
    assert!(d.is_full(), "3 held replies");
    assert_eq!(d.pending_replies(), 3);
    commit_all(&mut d);
    assert!(!d.is_full());
    assert_eq!(replies(&mut d).len(), 3);

    let mut d = driver(DriverConfig {
        max_held_replies: 100,
        max_pending_ops: 2,
        ..DriverConfig::default()
    });
    register(&mut d, 1, "a");
    let b = d.poll_batch().unwrap();
    assert!(!d.is_full());
    register(&mut d, 2, "b");
    assert!(d.is_full(), "one op in flight and one accumulating");
    d.handle_durable(b.id).unwrap();
    assert!(!d.is_full());
}

#[test]
fn shutdown_routes_only_closes() {
    let mut d = driver(DriverConfig::default());
    register(&mut d, 1, "alice");
    commit_all(&mut d);
    replies(&mut d);
    d.begin_shutdown();
    assert_eq!(d.state(), DriverState::ShuttingDown);
    register(&mut d, 2, "bob");
    request(&mut d, 1, Request::ListRooms { req: 1 });
    assert!(d.poll_batch().is_none() && d.poll_reply().is_none());
    assert_eq!(d.hub().online(), 1);
    d.handle_event(
        T,
        ConnId(1),
        ServerEvent::Closed {
            code: ErrorCode::ConnectionTerminated,
            by_peer: true,
        },
    );
    assert_eq!(d.hub().online(), 0, "the close did not reach the hub");
    assert!(d.is_drained());
}

#[test]
fn a_cut_takes_the_user_offline() {
    let mut d = driver(observed());
    register(&mut d, 1, "alice");
    register(&mut d, 2, "bob");
    commit_all(&mut d);
    replies(&mut d);
    assert_eq!(d.hub().online(), 2);
    d.handle_cut(T, ConnId(2));
    assert_eq!(d.hub().online(), 1);
    assert_eq!(d.hub().user_of(ConnId(2)), None);
    assert_eq!(d.stats().cuts, 1);
}

#[test]
fn observed_steps_show_each_steps_output() {
    let mut d = driver(observed());
    register(&mut d, 1, "alice");
    assert_eq!(d.last_step().ops.len(), 1);
    assert_eq!(d.last_step().replies.len(), 1);
    request(&mut d, 1, Request::ListUsers { req: 4 });
    assert!(
        d.last_step().ops.is_empty(),
        "the previous step's ops stayed"
    );
    assert!(matches!(
        d.last_step().replies[..],
        [(ConnId(1), Reply::UserList { req: 4, .. })]
    ));
    let mut quiet = driver(DriverConfig::default());
    register(&mut quiet, 1, "alice");
    assert_eq!(quiet.last_step(), &Step::default());
}

#[test]
fn stats_count_batches_and_releases() {
    let mut d = driver(DriverConfig::default());
    register(&mut d, 1, "alice");
    register(&mut d, 2, "bob");
    assert_eq!(commit_all(&mut d), 2);
    assert_eq!(replies(&mut d).len(), 2);
    let s = d.stats();
    assert_eq!((s.steps, s.batches, s.ops, s.released), (2, 1, 2, 2));
}

#[test]
fn an_address_over_its_registration_budget_is_refused_before_the_hub() {
    use crate::server::{AdmissionConfig, SourceAddr};
    let mut d = driver(DriverConfig {
        admission: AdmissionConfig {
            registration_burst: 1,
            ..AdmissionConfig::default()
        },
        ..observed()
    });
    let addr = SourceAddr::ipv4([10, 1, 2, 3]);
    for conn in [1, 2] {
        d.handle_accept(T, ConnId(conn), addr).unwrap();
        register(&mut d, conn, if conn == 1 { "alice" } else { "bob" });
    }
    commit_all(&mut d);
    let out = replies(&mut d);
    assert!(matches!(
        out[0],
        (ConnId(1), Reply::Auth { result: Ok(_), .. })
    ));
    assert_eq!(
        out[1..],
        [
            (
                ConnId(2),
                Reply::Auth {
                    mode: AuthMode::Register,
                    result: Err(ErrorCode::RateLimited)
                }
            ),
            (
                ConnId(2),
                Reply::Close {
                    code: ErrorCode::RateLimited
                }
            )
        ]
    );
    assert_eq!(d.hub().online(), 1, "bob reached the hub");
    assert_eq!(d.open_connections(), 2);
    d.handle_event(
        T,
        ConnId(2),
        ServerEvent::Closed {
            code: ErrorCode::RateLimited,
            by_peer: false,
        },
    );
    assert_eq!(d.open_connections(), 1);
    d.begin_shutdown();
    assert_eq!(
        d.handle_accept(T, ConnId(3), SourceAddr::ipv4([10, 9, 9, 9])),
        Err(ErrorCode::ShuttingDown)
    );
}

#[test]
fn an_accounts_budget_survives_a_reconnect() {
    let mut d = driver(DriverConfig {
        account_rate_per_sec: 1,
        account_burst: 2,
        account_strikes: 1,
        ..DriverConfig::default()
    });
    register(&mut d, 1, "flood");
    commit_all(&mut d);
    replies(&mut d);
    let list = |d: &mut Driver, conn, req| request(d, conn, Request::ListRooms { req });
    list(&mut d, 1, 1);
    list(&mut d, 1, 2);
    assert!(
        replies(&mut d)
            .iter()
            .all(|(_, r)| matches!(r, Reply::RoomList { .. }))
    );
    // A new connection of the same account does not get a fresh bucket.
    d.handle_event(
        T,
        ConnId(1),
        ServerEvent::Closed {
            code: ErrorCode::ConnectionTerminated,
            by_peer: true,
        },
    );
    d.handle_event(
        T,
        ConnId(2),
        ServerEvent::Authenticate {
            name: Arc::from("flood"),
            key: [1; 32],
            mode: AuthMode::Login,
            max_frame: DEFAULT_MAX_FRAME,
        },
    );
    replies(&mut d);
    list(&mut d, 2, 3);
    let out = replies(&mut d);
    assert!(
        matches!(
            out[..],
            [(
                ConnId(2),
                Reply::Error {
                    req: 3,
                    code: ErrorCode::RateLimited,
                    ..
                }
            )]
        ),
        "{out:?}"
    );
    // Acknowledgements are not requests of this budget.
    request(&mut d, 2, Request::AckDm { msg_id: 1 });
    assert!(replies(&mut d).is_empty());
    // Out of refusals too: the connection is closed.
    list(&mut d, 2, 4);
    let out = replies(&mut d);
    assert_eq!(
        out.last(),
        Some(&(
            ConnId(2),
            Reply::Close {
                code: ErrorCode::RateLimited
            }
        ))
    );
    // A second later one request fits again.
    let later = Instant(T.micros() + 1_000_000);
    d.handle_event(
        later,
        ConnId(2),
        ServerEvent::Request(Request::ListRooms { req: 5 }),
    );
    assert!(matches!(
        replies(&mut d)[..],
        [(_, Reply::RoomList { req: 5, .. })]
    ));
}

#[test]
fn the_driver_error_says_which_batch() {
    let e = DriverError::UnknownBatch(BatchId(7));
    assert_eq!(alloc::format!("{e}"), "batch 7 is not in flight");
}

#[test]
fn drained_only_when_nothing_waits_anywhere() {
    let mut d = driver(DriverConfig::default());
    register(&mut d, 1, "alice");
    let b = d.poll_batch().unwrap();
    register(&mut d, 2, "bob");
    d.handle_durable(b.id).unwrap();
    // One reply released and unpolled, one held behind the next batch.
    assert_eq!(d.pending_replies(), 2);
    assert!(!d.is_drained());
    commit_all(&mut d);
    // Released but not polled yet: not drained.
    assert!(!d.is_drained());
    replies(&mut d);
    assert!(d.is_drained());
    // A step with an operation and no reply (alice sends bob a DM, bob acks it): the
    // ack's operation alone keeps the pipeline from being drained.
    let dm = Request::SendDm {
        req: 1,
        to: Arc::from("bob"),
        body: Arc::from(&b"hi"[..]),
    };
    request(&mut d, 1, dm);
    commit_all(&mut d);
    let msg_id = replies(&mut d)
        .into_iter()
        .find_map(|(_, r)| match r {
            Reply::IncomingDm { msg_id, .. } => Some(msg_id),
            _ => None,
        })
        .expect("pushed to bob");
    request(&mut d, 2, Request::AckDm { msg_id });
    assert_eq!(d.pending_replies(), 0);
    assert!(!d.is_drained(), "an unbatched op");
    let b = d.poll_batch().unwrap();
    assert!(!d.is_drained(), "a batch in flight");
    d.handle_durable(b.id).unwrap();
    assert!(d.is_drained());
}

/// A room created by `creator` and joined by each of `members` (all logged in), every
/// step committed and its replies polled.
pub(super) fn room_with(d: &mut Driver, creator: u64, members: &[u64]) -> crate::wire::RoomId {
    request(
        d,
        creator,
        Request::CreateRoom {
            req: 1,
            title: Arc::from("r"),
            private: false,
        },
    );
    commit_all(d);
    let room = match replies(d).pop() {
        Some((_, Reply::RoomJoined { room, .. })) => room,
        other => panic!("{other:?}"),
    };
    for &c in members {
        request(d, c, Request::JoinRoom { req: 2, room });
        commit_all(d);
        replies(d);
    }
    room
}

/// `conn` sends "hello" to `room`.
pub(super) fn say_hello(d: &mut Driver, conn: u64, room: crate::wire::RoomId) {
    request(
        d,
        conn,
        Request::RoomMessage {
            req: 3,
            room,
            body: Arc::from(&b"hello"[..]),
        },
    );
}

/// Sum of the replies and their estimates in `out` for `conn`.
fn depth_of(out: &[(ConnId, Reply)], conn: u64) -> crate::server::Depth {
    let mut d = crate::server::Depth::default();
    for (c, r) in out {
        if *c == ConnId(conn) {
            d.replies += 1;
            d.bytes += r.encoded_len_hint();
        }
    }
    d
}

#[test]
fn outstanding_replies_are_counted_per_connection_until_polled() {
    let mut d = driver(DriverConfig::default());
    register(&mut d, 1, "alice");
    assert_eq!(d.last_recipients(), &[ConnId(1)][..]);
    register(&mut d, 2, "bob");
    assert_eq!(d.last_recipients(), &[ConnId(2)][..]);
    // Held behind the store: counted.
    let auth = Reply::Auth {
        mode: AuthMode::Register,
        result: Ok(0),
    }
    .encoded_len_hint();
    assert_eq!(d.outstanding(ConnId(1)).replies, 1);
    assert_eq!(d.outstanding(ConnId(1)).bytes, auth);
    assert_eq!(d.outstanding(ConnId(3)), crate::server::Depth::default());
    commit_all(&mut d);
    // Released and not polled yet: still counted; polled: gone.
    assert_eq!(d.outstanding(ConnId(2)).replies, 1);
    let first = d.poll_reply().expect("alice's");
    assert_eq!(first.0, ConnId(1));
    assert_eq!(d.outstanding(ConnId(1)), crate::server::Depth::default());
    assert_eq!(d.outstanding(ConnId(2)).replies, 1);
    replies(&mut d);
    assert_eq!(d.outstanding(ConnId(2)), crate::server::Depth::default());

    // A room message from alice goes to both members: the step's
    // recipients are both, and what is outstanding is exactly what is polled later.
    let room = room_with(&mut d, 1, &[2]);
    say_hello(&mut d, 1, room);
    let mut recipients = d.last_recipients().to_vec();
    recipients.sort();
    recipients.dedup();
    assert_eq!(recipients, [ConnId(1), ConnId(2)]);
    let (a, b) = (d.outstanding(ConnId(1)), d.outstanding(ConnId(2)));
    commit_all(&mut d);
    let out = replies(&mut d);
    assert_eq!(a, depth_of(&out, 1));
    assert_eq!(b, depth_of(&out, 2));
    assert!(a.replies >= 1 && b.replies >= 1, "{a:?} {b:?}");
    assert_eq!(d.outstanding(ConnId(1)), crate::server::Depth::default());
    // A cut starts a new step: its own recipients only.
    d.handle_cut(T, ConnId(2));
    assert!(!d.last_recipients().contains(&ConnId(2)));
}

#[test]
fn a_failed_store_counts_only_what_is_still_released() {
    let mut d = driver(DriverConfig::default());
    register(&mut d, 1, "alice");
    commit_all(&mut d);
    // Alice's auth is released, not polled; bob's is held behind a batch that fails.
    register(&mut d, 2, "bob");
    let batch = d.poll_batch().expect("bob's account");
    d.handle_store_failed(batch.id);
    assert_eq!(d.outstanding(ConnId(1)).replies, 1);
    assert_eq!(d.outstanding(ConnId(2)), crate::server::Depth::default());
    assert_eq!(replies(&mut d).len(), 1);
    assert_eq!(d.outstanding(ConnId(1)), crate::server::Depth::default());
}

#[test]
fn polling_one_of_two_outstanding_replies_leaves_the_other_counted() {
    let mut d = driver(DriverConfig::default());
    register(&mut d, 1, "alice");
    commit_all(&mut d);
    replies(&mut d);
    request(&mut d, 1, Request::ListUsers { req: 1 });
    request(&mut d, 1, Request::ListRooms { req: 2 });
    let both = d.outstanding(ConnId(1));
    assert_eq!(both.replies, 2);
    let (_, first) = d.poll_reply().expect("the user list");
    let left = d.outstanding(ConnId(1));
    assert_eq!(left.replies, 1);
    assert_eq!(left.bytes, both.bytes - first.encoded_len_hint());
    let (_, second) = d.poll_reply().expect("the room list");
    assert_eq!(left.bytes, second.encoded_len_hint());
    assert_eq!(d.outstanding(ConnId(1)), crate::server::Depth::default());
}

/// A room message fanned out to three members is released once per member, all sharing
/// one encoding; the replies around it carry none.
#[test]
fn a_fan_out_is_released_with_one_shared_encoding() {
    let mut d = driver(DriverConfig::default());
    for (conn, name) in [(1, "alice"), (2, "bob"), (3, "carol")] {
        register(&mut d, conn, name);
    }
    let title = Arc::from("t");
    let private = false;
    request(
        &mut d,
        1,
        Request::CreateRoom {
            req: 1,
            title,
            private,
        },
    );
    commit_all(&mut d);
    let room = core::iter::from_fn(|| d.poll_reply())
        .find_map(|(_, r)| match r {
            Reply::RoomJoined { room, .. } => Some(room),
            _ => None,
        })
        .expect("created");
    for conn in [2, 3] {
        request(&mut d, conn, Request::JoinRoom { req: 2, room });
    }
    let body = Arc::from(&b"hello"[..]);
    request(&mut d, 1, Request::RoomMessage { req: 3, room, body });
    commit_all(&mut d);
    let out: Vec<(ConnId, Outgoing)> = core::iter::from_fn(|| d.poll_outgoing()).collect();
    let relayed: Vec<&Outgoing> = out
        .iter()
        .filter(|(_, o)| matches!(o.reply, Reply::RoomMessage { seq: 1, .. }))
        .map(|(_, o)| o)
        .collect();
    assert_eq!(relayed.len(), 3, "{out:?}");
    let shared = relayed[0].encoded.clone().expect("encoded once");
    for o in &relayed {
        assert!(Arc::ptr_eq(o.encoded.as_ref().expect("shared"), &shared));
    }
    assert!(
        out.iter()
            .filter(|(_, o)| !matches!(o.reply, Reply::RoomMessage { .. }))
            .all(|(_, o)| o.encoded.is_none())
    );
    assert!(out.iter().any(|(_, o)| o.encoded.is_none()), "{out:?}");
}

/// `Flow::after_step` after a room message: the sender waits for each recipient whose
/// backlog (held in the driver plus `queue(r)`) reached the high-water mark, a gone
/// recipient is skipped, and `waited` names exactly those waited for.
#[test]
fn after_a_step_the_sender_waits_for_the_recipients_that_are_deep() {
    use crate::server::{Depth, Flow, FlowConfig};
    let mut d = driver(DriverConfig::default());
    register(&mut d, 1, "alice");
    register(&mut d, 2, "bob");
    register(&mut d, 3, "carol");
    commit_all(&mut d);
    replies(&mut d);
    let room = room_with(&mut d, 1, &[2, 3]);
    say_hello(&mut d, 1, room);
    // Each member has one reply held in the driver: deep at 3 only with 2 more queued.
    assert_eq!(d.outstanding(ConnId(2)).replies, 1);
    let config = FlowConfig {
        high: Depth {
            replies: 3,
            bytes: usize::MAX,
        },
        low: Depth::default(),
        stall: crate::time::Duration::from_secs(1),
    };
    let mut flow = Flow::new(config);
    let mut waited = Vec::new();
    flow.after_step(
        T,
        &d,
        ConnId(1),
        |r| match r.0 {
            1 => Some(Depth::default()),
            2 => Some(Depth {
                replies: 2,
                bytes: 0,
            }),
            _ => None, // carol is gone
        },
        |r| waited.push(r),
    );
    assert_eq!(waited, [ConnId(2)]);
    assert!(flow.is_paused(ConnId(1)));
    assert!(flow.is_awaited(ConnId(2)));
    assert!(!flow.is_awaited(ConnId(3)) && !flow.is_awaited(ConnId(1)));

    // One reply short of the mark: nobody waits.
    let mut flow = Flow::new(config);
    flow.after_step(
        T,
        &d,
        ConnId(1),
        |_| {
            Some(Depth {
                replies: 1,
                bytes: 0,
            })
        },
        |r| panic!("waits for {r:?}"),
    );
    assert!(!flow.is_paused(ConnId(1)));
}
