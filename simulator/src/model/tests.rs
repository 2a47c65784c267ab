//! Unit tests of the reference model: each deliberate hub misbehaviour is caught, and
//! the durable-room rules (membership across disconnects, the window, gaps, cursors,
//! history) are what the model expects.

use std::sync::Arc;

use cove_core::hub::{ConnId, Reply, Request};
use cove_core::store::{LoggedMessage, StoreOp};
use cove_core::wire::{AckStatus, AuthMode, ErrorCode, MAX_BODY_LEN, RoomId};

use super::{DmLimits, Model, RoomLimits};

const ROOM: RoomId = RoomId(*b"ABCDEF");

fn limits(window: u64, max_messages: usize) -> RoomLimits {
    RoomLimits {
        max_messages,
        max_bytes: 1 << 20,
        memory_messages: usize::MAX,
        memory_bytes: usize::MAX,
        window,
        history_page: 100,
        max_rooms_per_user: 32,
        max_rooms: 10_000,
        max_invites: 64,
    }
}

fn dm_limits(max_queue: usize) -> DmLimits {
    DmLimits {
        max_queue,
        max_bytes: 1 << 20,
        max_bytes_total: 256 << 20,
    }
}

fn model(users: usize, cap: usize) -> Model {
    Model::new(users, cap, dm_limits(10), limits(64, 1000))
}

fn joined(conn: u64, req: u32, members: &[&str]) -> (ConnId, Reply) {
    (
        ConnId(conn),
        Reply::RoomJoined {
            req,
            room: ROOM,
            title: "t".into(),
            members: members.iter().map(|m| Arc::from(*m)).collect(),
            private: false,
            direct: false,
            admin: "u0".into(),
        },
    )
}

fn added(name: &str, since: u64) -> StoreOp {
    StoreOp::MemberAdded {
        room: ROOM,
        name: name.into(),
        since,
    }
}

fn connect(m: &mut Model, conn: u64, u: usize, mode: AuthMode, rest: &[(ConnId, Reply)]) {
    let mut d = vec![(
        ConnId(conn),
        Reply::Auth {
            mode,
            result: Ok(0),
        },
    )];
    d.extend_from_slice(rest);
    m.on_connect(ConnId(conn), u, mode, &d, &[], &[]).unwrap();
}

fn login(m: &mut Model, conn: u64, u: usize) {
    connect(m, conn, u, AuthMode::Register, &[]);
}

fn create(m: &mut Model) {
    let create = Request::CreateRoom {
        req: 1,
        title: "t".into(),
        private: false,
    };
    m.on_request(
        ConnId(1),
        &create,
        &[joined(1, 1, &["u0"])],
        &[added("u0", 0)],
        &[],
    )
    .unwrap();
}

fn join(m: &mut Model, conn: u64, name: &str, members: &[&str], since: u64) {
    let others: Vec<(ConnId, Reply)> = (1..conn)
        .map(|c| {
            let room = ROOM;
            (
                ConnId(c),
                Reply::MemberJoined {
                    room,
                    name: name.into(),
                },
            )
        })
        .collect();
    let mut d = vec![joined(conn, 2, members)];
    d.extend(others);
    let req = Request::JoinRoom { req: 2, room: ROOM };
    m.on_request(ConnId(conn), &req, &d, &[added(name, since)], &[])
        .unwrap();
}

fn body() -> Arc<[u8]> {
    Arc::from(&b"x"[..])
}

fn msg(conn: u64, seq: u64) -> (ConnId, Reply) {
    (
        ConnId(conn),
        Reply::RoomMessage {
            room: ROOM,
            seq,
            from: "u0".into(),
            timestamp: 0,
            body: body(),
        },
    )
}

fn post_request() -> Request {
    Request::RoomMessage {
        req: 3,
        room: ROOM,
        body: body(),
    }
}

fn logged(seq: u64) -> StoreOp {
    StoreOp::RoomMessageLogged(LoggedMessage {
        room: ROOM,
        seq,
        from: "u0".into(),
        timestamp: 0,
        body: body(),
    })
}

#[test]
fn a_join_past_the_cap_and_a_false_full_are_both_caught() {
    let mut m = model(3, 1);
    login(&mut m, 1, 0);
    login(&mut m, 2, 1);
    create(&mut m);
    let join = Request::JoinRoom { req: 2, room: ROOM };
    let over = [
        joined(2, 2, &["u0", "u1"]),
        (
            ConnId(1),
            Reply::MemberJoined {
                room: ROOM,
                name: "u1".into(),
            },
        ),
    ];
    let v = m
        .on_request(ConnId(2), &join, &over, &[added("u1", 0)], &[])
        .unwrap_err();
    assert_eq!(v.check, "room cap");

    let mut m = model(3, 2);
    login(&mut m, 1, 0);
    login(&mut m, 2, 1);
    create(&mut m);
    let full = [(
        ConnId(2),
        Reply::Error {
            req: 2,
            code: ErrorCode::RoomFull,
            text: "",
        },
    )];
    let v = m.on_request(ConnId(2), &join, &full, &[], &[]).unwrap_err();
    assert_eq!(v.check, "room cap");
}

#[test]
fn a_skipped_sequence_number_and_an_unlogged_message_are_caught() {
    let mut m = model(1, 20);
    login(&mut m, 1, 0);
    create(&mut m);
    m.on_request(ConnId(1), &post_request(), &[msg(1, 1)], &[logged(1)], &[])
        .unwrap();
    let v = m
        .on_request(ConnId(1), &post_request(), &[msg(1, 3)], &[logged(3)], &[])
        .unwrap_err();
    assert_eq!(v.check, "room order");
    let mut m = model(1, 20);
    login(&mut m, 1, 0);
    create(&mut m);
    let v = m
        .on_request(ConnId(1), &post_request(), &[msg(1, 1)], &[], &[])
        .unwrap_err();
    assert_eq!(v.check, "room log");
}

/// u0 creates the room, u1 joins, u1 disconnects: it stays a member.
fn with_absent_u1(window: u64, max_messages: usize) -> Model {
    let mut m = Model::new(2, 20, dm_limits(10), limits(window, max_messages));
    login(&mut m, 1, 0);
    login(&mut m, 2, 1);
    create(&mut m);
    join(&mut m, 2, "u1", &["u0", "u1"], 0);
    m.on_disconnect(ConnId(2), &[], &[], &[]).unwrap();
    assert!(
        m.rooms_of(1).contains(&ROOM),
        "a disconnect ends no membership"
    );
    m
}

fn ack(m: &mut Model, conn: u64, seq: u64, to: Option<u64>, out: &[(ConnId, Reply)]) {
    let op = to.map(|seq| StoreOp::CursorAdvanced {
        room: ROOM,
        name: "u0".into(),
        seq,
    });
    let req = Request::AckRoom { room: ROOM, seq };
    m.on_request(ConnId(conn), &req, out, op.as_slice(), &[])
        .unwrap();
}

#[test]
fn catch_up_flows_through_the_window_from_the_cursor() {
    let mut m = with_absent_u1(2, 1000);
    // u0's own window: each post reaches it until 2 are unacknowledged.
    m.on_request(ConnId(1), &post_request(), &[msg(1, 1)], &[logged(1)], &[])
        .unwrap();
    m.on_request(ConnId(1), &post_request(), &[msg(1, 2)], &[logged(2)], &[])
        .unwrap();
    let v = m
        .on_request(ConnId(1), &post_request(), &[msg(1, 3)], &[logged(3)], &[])
        .unwrap_err();
    assert_eq!(v.check, "room window");

    let mut m = with_absent_u1(2, 1000);
    for seq in 1..=3 {
        let sent: &[(ConnId, Reply)] = if seq <= 2 { &[msg(1, seq)][..] } else { &[] };
        m.on_request(ConnId(1), &post_request(), sent, &[logged(seq)], &[])
            .unwrap();
    }
    ack(&mut m, 1, 2, Some(2), &[msg(1, 3)]);
    // u1 logs back in: announced, then caught up from its cursor through the window.
    let announce = joined(3, 0, &["u0", "u1"]);
    let skipping = [announce.clone(), msg(3, 2), msg(3, 3)];
    let d = [
        (
            ConnId(3),
            Reply::Auth {
                mode: AuthMode::Login,
                result: Ok(0),
            },
        ),
        skipping[0].clone(),
        skipping[1].clone(),
        skipping[2].clone(),
    ];
    let mut bad = model_clone_with_absent_u1_after_posts();
    let v = bad
        .on_connect(ConnId(3), 1, AuthMode::Login, &d, &[], &[])
        .unwrap_err();
    assert_eq!(v.check, "room exactly once", "{v}");
    connect(
        &mut m,
        3,
        1,
        AuthMode::Login,
        &[announce, msg(3, 1), msg(3, 2)],
    );
}

/// Three posts u1 missed, u0 caught up and acknowledged them all.
fn model_clone_with_absent_u1_after_posts() -> Model {
    let mut m = with_absent_u1(2, 1000);
    for seq in 1..=3 {
        let sent: &[(ConnId, Reply)] = if seq <= 2 { &[msg(1, seq)][..] } else { &[] };
        m.on_request(ConnId(1), &post_request(), sent, &[logged(seq)], &[])
            .unwrap();
    }
    m
}

#[test]
fn a_replayed_acknowledged_message_and_a_backward_cursor_are_caught() {
    let mut m = model(1, 20);
    login(&mut m, 1, 0);
    create(&mut m);
    m.on_request(ConnId(1), &post_request(), &[msg(1, 1)], &[logged(1)], &[])
        .unwrap();
    ack(&mut m, 1, 1, Some(1), &[]);
    let v = m
        .on_request(
            ConnId(1),
            &post_request(),
            &[msg(1, 1), msg(1, 2)],
            &[logged(2)],
            &[],
        )
        .unwrap_err();
    assert_eq!(v.check, "room exactly once");
    // A cursor written without an ack, and an ack below an earlier one.
    let mut m = model(1, 20);
    login(&mut m, 1, 0);
    create(&mut m);
    m.on_request(ConnId(1), &post_request(), &[msg(1, 1)], &[logged(1)], &[])
        .unwrap();
    let req = Request::AckRoom { room: ROOM, seq: 0 };
    let op = StoreOp::CursorAdvanced {
        room: ROOM,
        name: "u0".into(),
        seq: 1,
    };
    let v = m.on_request(ConnId(1), &req, &[], &[op], &[]).unwrap_err();
    assert_eq!(v.check, "room cursor");
    let mut m = model(1, 20);
    login(&mut m, 1, 0);
    create(&mut m);
    m.on_request(ConnId(1), &post_request(), &[msg(1, 1)], &[logged(1)], &[])
        .unwrap();
    ack(&mut m, 1, 1, Some(1), &[]);
    let req = Request::AckRoom { room: ROOM, seq: 0 };
    let v = m.on_request(ConnId(1), &req, &[], &[], &[]).unwrap_err();
    assert_eq!(v.check, "room cursor");
}

#[test]
fn a_gap_must_come_before_the_messages_after_retention() {
    let posts = |m: &mut Model| {
        for seq in 1..=3 {
            let trim = (seq > 1).then_some(StoreOp::LogTrimmed {
                room: ROOM,
                below: seq,
            });
            let mut ops = vec![logged(seq)];
            ops.extend(trim);
            m.on_request(ConnId(1), &post_request(), &[msg(1, seq)], &ops, &[])
                .unwrap();
            ack(m, 1, seq, Some(seq), &[]);
        }
    };
    let auth = (
        ConnId(3),
        Reply::Auth {
            mode: AuthMode::Login,
            result: Ok(0),
        },
    );
    let gap = (
        ConnId(3),
        Reply::RoomGap {
            room: ROOM,
            first_available: 3,
        },
    );
    let mut m = with_absent_u1(64, 1);
    posts(&mut m);
    let d = [auth.clone(), joined(3, 0, &["u0", "u1"]), msg(3, 3)];
    let v = m
        .on_connect(ConnId(3), 1, AuthMode::Login, &d, &[], &[])
        .unwrap_err();
    assert_eq!(v.check, "retention gap");
    let mut m = with_absent_u1(64, 1);
    posts(&mut m);
    connect(
        &mut m,
        3,
        1,
        AuthMode::Login,
        &[joined(3, 0, &["u0", "u1"]), gap, msg(3, 3)],
    );
    // A trim the configured retention does not make is caught too.
    let mut m = with_absent_u1(64, 1000);
    let ops = [
        logged(1),
        StoreOp::LogTrimmed {
            room: ROOM,
            below: 1,
        },
    ];
    let v = m
        .on_request(ConnId(1), &post_request(), &[msg(1, 1)], &ops, &[])
        .unwrap_err();
    assert_eq!(v.check, "retention");
}

#[test]
fn a_history_page_outside_the_interval_is_caught() {
    let mut m = model(2, 20);
    login(&mut m, 1, 0);
    login(&mut m, 2, 1);
    create(&mut m);
    m.on_request(ConnId(1), &post_request(), &[msg(1, 1)], &[logged(1)], &[])
        .unwrap();
    join(&mut m, 2, "u1", &["u0", "u1"], 1);
    let fetch = Request::FetchHistory {
        req: 4,
        room: ROOM,
        before: u64::MAX,
        limit: 10,
    };
    let leaked = [
        (
            ConnId(2),
            Reply::HistoryMessage {
                req: 4,
                room: ROOM,
                seq: 1,
                from: "u0".into(),
                timestamp: 0,
                body: body(),
            },
        ),
        (
            ConnId(2),
            Reply::HistoryDone {
                req: 4,
                room: ROOM,
                first_available: 1,
                count: 1,
            },
        ),
    ];
    let v = m
        .on_request(ConnId(2), &fetch, &leaked, &[], &[])
        .unwrap_err();
    assert_eq!(v.check, "history");
    let done = [(
        ConnId(2),
        Reply::HistoryDone {
            req: 4,
            room: ROOM,
            first_available: 2,
            count: 0,
        },
    )];
    m.on_request(ConnId(2), &fetch, &done, &[], &[]).unwrap();
}

#[test]
fn an_unwritten_membership_is_caught() {
    let mut m = model(2, 20);
    login(&mut m, 1, 0);
    login(&mut m, 2, 1);
    create(&mut m);
    let join = Request::JoinRoom { req: 2, room: ROOM };
    let d = [
        joined(2, 2, &["u0", "u1"]),
        (
            ConnId(1),
            Reply::MemberJoined {
                room: ROOM,
                name: "u1".into(),
            },
        ),
    ];
    let v = m.on_request(ConnId(2), &join, &d, &[], &[]).unwrap_err();
    assert_eq!(v.check, "durable membership");
}

/// The disk makes batch `id` (every step so far) durable.
fn durable(m: &mut Model, id: u64) {
    m.seal_batch(id).unwrap();
    m.commit_batch(id).unwrap();
}

#[test]
fn a_crash_keeps_durable_rooms_and_loses_the_rest() {
    let mut m = model(2, 20);
    login(&mut m, 1, 0);
    login(&mut m, 2, 1);
    create(&mut m);
    join(&mut m, 2, "u1", &["u0", "u1"], 0);
    m.on_request(
        ConnId(1),
        &post_request(),
        &[msg(1, 1), msg(2, 1)],
        &[logged(1)],
        &[],
    )
    .unwrap();
    durable(&mut m, 1);
    m.on_request(
        ConnId(1),
        &post_request(),
        &[msg(1, 2), msg(2, 2)],
        &[logged(2)],
        &[],
    )
    .unwrap();
    m.crash().unwrap();
    assert_eq!(m.rooms_of(1).len(), 1, "a durable membership survives");
    assert_eq!(
        m.rooms[&ROOM].next_seq, 2,
        "the lost message is stamped again"
    );
    let inc = m.rooms[&ROOM].inc;
    assert!(m.room_message(inc, 2).is_none());
    assert_eq!(m.lost_room_messages(inc, 2).len(), 1);
}

fn dm_to_u1() -> Request {
    Request::SendDm {
        req: 1,
        to: "u1".into(),
        body: Arc::from(&b"b"[..]),
    }
}

fn queued(id: u64) -> [(ConnId, Reply); 1] {
    [(
        ConnId(1),
        Reply::MessageAck {
            req: 1,
            msg_id: id,
            status: AckStatus::Queued,
        },
    )]
}

#[test]
fn crash_keeps_exactly_the_committed_queue() {
    let mut m = model(2, 20);
    login(&mut m, 1, 0);
    durable(&mut m, 1);
    let dm = dm_to_u1();
    // u1 does not exist yet: accepted DMs to it are a violation.
    assert!(m.on_request(ConnId(1), &dm, &queued(1), &[], &[]).is_err());
    login(&mut m, 2, 1);
    m.on_disconnect(ConnId(2), &[], &[], &[]).unwrap();
    m.on_request(ConnId(1), &dm, &queued(2), &[], &[]).unwrap();
    durable(&mut m, 2);
    m.on_request(ConnId(1), &dm, &queued(3), &[], &[]).unwrap();
    m.seal_batch(3).unwrap();
    m.on_request(ConnId(1), &dm, &queued(4), &[], &[]).unwrap();
    assert_eq!(m.queue_len(1), 3);
    // Batch 3 (DM 3) is in flight and DM 4 not batched yet: the crash loses both.
    m.crash().unwrap();
    assert_eq!(m.queue_len(1), 1);
    assert!(m.dms.contains_key(&2) && !m.dms.contains_key(&3) && !m.dms.contains_key(&4));
    assert_eq!(m.lost_dms(3).len(), 1);
}

#[test]
fn batches_go_one_at_a_time_and_a_lost_ack_is_caught() {
    let mut m = model(2, 20);
    login(&mut m, 1, 0);
    login(&mut m, 2, 1);
    durable(&mut m, 1);
    m.seal_batch(2).unwrap();
    assert_eq!(m.seal_batch(3).unwrap_err().check, "batches");
    assert_eq!(m.commit_batch(7).unwrap_err().check, "batches");
    m.commit_batch(2).unwrap();
    m.on_disconnect(ConnId(2), &[], &[], &[]).unwrap();
    m.on_request(ConnId(1), &dm_to_u1(), &queued(5), &[], &[])
        .unwrap();
    m.seal_batch(3).unwrap();
    // The sender is told before the batch is durable (a driver that released early).
    m.promise(5);
    assert_eq!(m.crash().unwrap_err().check, "nothing acked lost");
}

fn post_of(len: usize) -> Request {
    Request::RoomMessage {
        req: 3,
        room: ROOM,
        body: vec![b'x'; len].into(),
    }
}

fn refused(conn: u64, req: u32, code: ErrorCode) -> (ConnId, Reply) {
    let text = "";
    (ConnId(conn), Reply::Error { req, code, text })
}

#[test]
fn a_body_one_byte_over_the_limit_must_be_refused_and_one_at_it_must_not() {
    let mut m = model(1, 20);
    login(&mut m, 1, 0);
    create(&mut m);
    let too_large = [refused(1, 3, ErrorCode::BodyTooLarge)];
    m.on_request(ConnId(1), &post_of(MAX_BODY_LEN + 1), &too_large, &[], &[])
        .unwrap();
    // Accepting one byte more, or refusing the largest body, are both caught.
    let v = m
        .on_request(
            ConnId(1),
            &post_of(MAX_BODY_LEN + 1),
            &[msg(1, 1)],
            &[logged(1)],
            &[],
        )
        .unwrap_err();
    assert_eq!(v.check, "rooms");
    let mut m = model(1, 20);
    login(&mut m, 1, 0);
    create(&mut m);
    let v = m
        .on_request(ConnId(1), &post_of(MAX_BODY_LEN), &too_large, &[], &[])
        .unwrap_err();
    assert_eq!(v.check, "rooms");
}

fn dm_of(len: usize) -> Request {
    Request::SendDm {
        req: 1,
        to: "u1".into(),
        body: vec![b'x'; len].into(),
    }
}

fn dm_failed(code: ErrorCode) -> [(ConnId, Reply); 2] {
    let ack = Reply::MessageAck {
        req: 1,
        msg_id: 0,
        status: AckStatus::Failed,
    };
    [refused(1, 1, code), (ConnId(1), ack)]
}

/// u0 online, u1 registered and offline, queues bounded at `max_bytes` body bytes.
fn dm_model(max_bytes: usize) -> Model {
    let dm = DmLimits {
        max_bytes,
        ..dm_limits(10)
    };
    let mut m = Model::new(2, 20, dm, limits(64, 1000));
    login(&mut m, 1, 0);
    login(&mut m, 2, 1);
    m.on_disconnect(ConnId(2), &[], &[], &[]).unwrap();
    m
}

#[test]
fn dm_sizes_and_queue_bytes_are_checked_both_ways() {
    let mut m = dm_model(100);
    let too_large = dm_failed(ErrorCode::BodyTooLarge);
    m.on_request(ConnId(1), &dm_of(MAX_BODY_LEN + 1), &too_large, &[], &[])
        .unwrap();
    let v = m
        .on_request(ConnId(1), &dm_of(MAX_BODY_LEN), &too_large, &[], &[])
        .unwrap_err();
    assert_eq!(v.check, "body size");
    let v = m
        .on_request(ConnId(1), &dm_of(MAX_BODY_LEN + 1), &queued(1), &[], &[])
        .unwrap_err();
    assert_eq!(v.check, "body size");

    // 60 bytes queued for u1: 40 more fit its 100, 41 do not.
    let mut m = dm_model(100);
    m.on_request(ConnId(1), &dm_of(60), &queued(1), &[], &[])
        .unwrap();
    let full = dm_failed(ErrorCode::QueueFull);
    let v = m
        .on_request(ConnId(1), &dm_of(40), &full, &[], &[])
        .unwrap_err();
    assert_eq!(v.check, "dm ack");
    m.on_request(ConnId(1), &dm_of(41), &full, &[], &[])
        .unwrap();
    let v = m
        .on_request(ConnId(1), &dm_of(41), &queued(2), &[], &[])
        .unwrap_err();
    assert_eq!(v.check, "dm queue bytes");
    m.on_request(ConnId(1), &dm_of(40), &queued(3), &[], &[])
        .unwrap();
}
