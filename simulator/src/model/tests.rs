//! Unit tests of the reference model: each deliberate hub misbehaviour is caught.

use std::sync::Arc;

use cove_core::hub::{ConnId, Reply, Request};
use cove_core::wire::{AckStatus, AuthMode, ErrorCode, RoomId};

use super::Model;

fn joined(conn: u64, room: RoomId, members: &[&str]) -> (ConnId, Reply) {
    (
        ConnId(conn),
        Reply::RoomJoined {
            req: 1,
            room,
            title: "t".into(),
            members: members.iter().map(|m| Arc::from(*m)).collect(),
        },
    )
}

fn login(m: &mut Model, conn: u64, u: usize) {
    let d = [(
        ConnId(conn),
        Reply::Auth {
            mode: AuthMode::Register,
            result: Ok(0),
        },
    )];
    m.on_connect(ConnId(conn), u, AuthMode::Register, &d)
        .unwrap();
}

#[test]
fn a_join_past_the_cap_and_a_false_full_are_both_caught() {
    let mut m = Model::new(3, 1, 10);
    login(&mut m, 1, 0);
    login(&mut m, 2, 1);
    let room = RoomId(*b"ABCDEF");
    let create = Request::CreateRoom {
        req: 1,
        title: "t".into(),
    };
    m.on_request(ConnId(1), &create, &[joined(1, room, &["u0"])])
        .unwrap();
    let join = Request::JoinRoom { req: 2, room };
    let over = [
        joined(2, room, &["u0", "u1"]),
        (
            ConnId(1),
            Reply::MemberJoined {
                room,
                name: "u1".into(),
            },
        ),
    ];
    let v = m.on_request(ConnId(2), &join, &over).unwrap_err();
    assert_eq!(v.check, "room cap");

    let mut m = Model::new(3, 2, 10);
    login(&mut m, 1, 0);
    login(&mut m, 2, 1);
    m.on_request(ConnId(1), &create, &[joined(1, room, &["u0"])])
        .unwrap();
    let full = [(
        ConnId(2),
        Reply::Error {
            req: 2,
            code: ErrorCode::RoomFull,
            text: "",
        },
    )];
    let v = m.on_request(ConnId(2), &join, &full).unwrap_err();
    assert_eq!(v.check, "room cap");
}

#[test]
fn a_skipped_sequence_number_is_caught() {
    let mut m = Model::new(1, 20, 10);
    login(&mut m, 1, 0);
    let room = RoomId(*b"ABCDEF");
    let create = Request::CreateRoom {
        req: 1,
        title: "t".into(),
    };
    m.on_request(ConnId(1), &create, &[joined(1, room, &["u0"])])
        .unwrap();
    let body: Arc<[u8]> = Arc::from(&b"x"[..]);
    let post = Request::RoomMessage {
        req: 2,
        room,
        body: body.clone(),
    };
    let msg = |seq| {
        [(
            ConnId(1),
            Reply::RoomMessage {
                room,
                seq,
                from: "u0".into(),
                timestamp: 0,
                body: body.clone(),
            },
        )]
    };
    m.on_request(ConnId(1), &post, &msg(1)).unwrap();
    assert_eq!(
        m.on_request(ConnId(1), &post, &msg(3)).unwrap_err().check,
        "room order"
    );
}

/// The disk makes batch `id` (every step so far) durable.
fn durable(m: &mut Model, id: u64) {
    m.seal_batch(id).unwrap();
    m.commit_batch(id).unwrap();
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
    let mut m = Model::new(2, 20, 10);
    login(&mut m, 1, 0);
    durable(&mut m, 1);
    let send = queued;
    let dm = dm_to_u1();
    // u1 does not exist yet: accepted DMs to it are a violation.
    assert!(m.on_request(ConnId(1), &dm, &send(1)).is_err());
    login(&mut m, 2, 1);
    m.on_disconnect(ConnId(2), &[]).unwrap();
    m.on_request(ConnId(1), &dm, &send(2)).unwrap();
    durable(&mut m, 2);
    m.on_request(ConnId(1), &dm, &send(3)).unwrap();
    m.seal_batch(3).unwrap();
    m.on_request(ConnId(1), &dm, &send(4)).unwrap();
    assert_eq!(m.queue_len(1), 3);
    // Batch 3 (DM 3) is in flight and DM 4 not batched yet: the crash loses both.
    m.crash().unwrap();
    assert_eq!(m.queue_len(1), 1);
    assert!(m.dms.contains_key(&2) && !m.dms.contains_key(&3) && !m.dms.contains_key(&4));
    assert_eq!(m.lost_dms(3).len(), 1);
}

#[test]
fn batches_go_one_at_a_time_and_a_lost_ack_is_caught() {
    let mut m = Model::new(2, 20, 10);
    login(&mut m, 1, 0);
    login(&mut m, 2, 1);
    durable(&mut m, 1);
    m.seal_batch(2).unwrap();
    assert_eq!(m.seal_batch(3).unwrap_err().check, "batches");
    assert_eq!(m.commit_batch(7).unwrap_err().check, "batches");
    m.commit_batch(2).unwrap();
    m.on_disconnect(ConnId(2), &[]).unwrap();
    m.on_request(ConnId(1), &dm_to_u1(), &queued(5)).unwrap();
    m.seal_batch(3).unwrap();
    // The sender is told before the batch is durable (a driver that released early).
    m.promise(5);
    assert_eq!(m.crash().unwrap_err().check, "nothing acked lost");
}
