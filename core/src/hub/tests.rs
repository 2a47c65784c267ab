use alloc::sync::Arc;
use alloc::vec::Vec;

use super::*;
use crate::store::{MemoryStore, Store};
use crate::wire::AckStatus;

const T: Instant = Instant(1_000);

fn drain(hub: &mut Hub) -> Vec<(ConnId, Reply)> {
    core::iter::from_fn(|| hub.poll_delivery()).collect()
}

fn ops(hub: &mut Hub) -> Vec<StoreOp> {
    core::iter::from_fn(|| hub.poll_store_op()).collect()
}

fn key(n: u8) -> [u8; 32] {
    [n; 32]
}

/// Registers `name` on `ConnId(conn)` and drains the replies.
fn register(hub: &mut Hub, conn: u64, name: &str) -> ConnId {
    let c = ConnId(conn);
    hub.handle_connect(T, c, name, key(conn as u8), AuthMode::Register);
    let out = drain(hub);
    assert_eq!(
        out[0],
        (
            c,
            Reply::Auth {
                mode: AuthMode::Register,
                result: Ok(0)
            }
        )
    );
    c
}

fn create(hub: &mut Hub, conn: ConnId) -> RoomId {
    hub.handle_request(
        T,
        conn,
        Request::CreateRoom {
            req: 1,
            title: "t".into(),
            private: false,
        },
    );
    match drain(hub).pop() {
        Some((_, Reply::RoomJoined { room, .. })) => room,
        other => panic!("no room: {other:?}"),
    }
}

fn errors(out: &[(ConnId, Reply)]) -> Vec<ErrorCode> {
    out.iter()
        .filter_map(|(_, r)| match r {
            Reply::Error { code, .. } => Some(*code),
            _ => None,
        })
        .collect()
}

#[test]
fn a_name_registers_once_and_login_checks_the_key() {
    let mut hub = Hub::new(HubConfig::default(), 1);
    let a = register(&mut hub, 1, "alice");
    assert!(matches!(
        &ops(&mut hub)[..],
        [StoreOp::AccountCreated { .. }]
    ));
    hub.handle_connect(T, ConnId(2), "alice", key(2), AuthMode::Register);
    let out = drain(&mut hub);
    assert_eq!(
        out[0].1,
        Reply::Auth {
            mode: AuthMode::Register,
            result: Err(ErrorCode::UserExists)
        }
    );
    assert_eq!(
        out[1].1,
        Reply::Close {
            code: ErrorCode::UserExists
        }
    );

    hub.handle_disconnect(T, a);
    hub.handle_connect(T, ConnId(3), "alice", key(9), AuthMode::Login);
    assert_eq!(
        drain(&mut hub)[0].1,
        Reply::Auth {
            mode: AuthMode::Login,
            result: Err(ErrorCode::AuthFailed)
        }
    );
    hub.handle_connect(T, ConnId(4), "nobody", key(9), AuthMode::Login);
    assert_eq!(
        drain(&mut hub)[0].1,
        Reply::Auth {
            mode: AuthMode::Login,
            result: Err(ErrorCode::UserNotFound)
        }
    );
    hub.handle_connect(T, ConnId(5), "alice", key(1), AuthMode::Login);
    assert_eq!(
        drain(&mut hub)[0].1,
        Reply::Auth {
            mode: AuthMode::Login,
            result: Ok(0)
        }
    );
    hub.handle_connect(T, ConnId(6), "bad name", key(1), AuthMode::Register);
    assert_eq!(
        drain(&mut hub)[0].1,
        Reply::Auth {
            mode: AuthMode::Register,
            result: Err(ErrorCode::InvalidUsername)
        }
    );
}

#[test]
fn requests_before_login_are_refused() {
    let mut hub = Hub::new(HubConfig::default(), 1);
    hub.handle_request(T, ConnId(7), Request::ListRooms { req: 42 });
    let out = drain(&mut hub);
    assert_eq!(
        out,
        [(
            ConnId(7),
            Reply::Error {
                req: 42,
                code: ErrorCode::NotAuthenticated,
                text: "not logged in"
            }
        )]
    );
}

#[test]
fn the_twenty_first_join_is_refused_and_unknown_rooms_are_errors() {
    let mut hub = Hub::new(HubConfig::default(), 1);
    let owner = register(&mut hub, 100, "owner");
    let room = create(&mut hub, owner);
    for i in 1..20u64 {
        let c = register(&mut hub, i, &alloc::format!("u{i}"));
        hub.handle_request(T, c, Request::JoinRoom { req: 2, room });
        assert!(errors(&drain(&mut hub)).is_empty());
    }
    assert_eq!(hub.room_members(room).unwrap().count(), 20);
    let late = register(&mut hub, 50, "late");
    hub.handle_request(T, late, Request::JoinRoom { req: 3, room });
    assert_eq!(errors(&drain(&mut hub)), [ErrorCode::RoomFull]);
    assert_eq!(hub.room_members(room).unwrap().count(), 20);

    let nowhere = RoomId(*b"ZZZZZZ");
    hub.handle_request(
        T,
        late,
        Request::JoinRoom {
            req: 4,
            room: nowhere,
        },
    );
    hub.handle_request(
        T,
        late,
        Request::RoomMessage {
            req: 5,
            room,
            body: Arc::from(&b"x"[..]),
        },
    );
    hub.handle_request(T, late, Request::LeaveRoom { req: 6, room });
    assert_eq!(
        errors(&drain(&mut hub)),
        [
            ErrorCode::RoomNotFound,
            ErrorCode::NotInRoom,
            ErrorCode::NotInRoom
        ]
    );
}

#[test]
fn room_messages_carry_one_increasing_sequence_seen_by_every_member() {
    let mut hub = Hub::new(HubConfig::default(), 1);
    let a = register(&mut hub, 1, "a");
    let b = register(&mut hub, 2, "b");
    let room = create(&mut hub, a);
    hub.handle_request(T, b, Request::JoinRoom { req: 1, room });
    let out = drain(&mut hub);
    assert!(out.contains(&(
        a,
        Reply::MemberJoined {
            room,
            name: "b".into()
        }
    )));
    for i in 0..10u8 {
        let from = if i % 2 == 0 { a } else { b };
        hub.handle_request(
            T,
            from,
            Request::RoomMessage {
                req: 9,
                room,
                body: Arc::from(&[i][..]),
            },
        );
    }
    let out = drain(&mut hub);
    for who in [a, b] {
        let seen: Vec<(u64, u8)> = out
            .iter()
            .filter(|(c, _)| *c == who)
            .filter_map(|(_, r)| match r {
                Reply::RoomMessage { seq, body, .. } => Some((*seq, body[0])),
                _ => None,
            })
            .collect();
        assert_eq!(
            seen,
            (0..10u8).map(|i| (u64::from(i) + 1, i)).collect::<Vec<_>>()
        );
    }
    hub.handle_request(T, b, Request::LeaveRoom { req: 7, room });
    let out = drain(&mut hub);
    assert!(out.contains(&(b, Reply::RoomLeft { req: 7, room })));
    assert!(out.contains(&(
        a,
        Reply::MemberLeft {
            room,
            name: "b".into()
        }
    )));
}

#[test]
fn an_offline_dm_is_queued_durably_delivered_on_login_and_deleted_on_ack() {
    let mut hub = Hub::new(HubConfig::default(), 1);
    let mut store = MemoryStore::new();
    let a = register(&mut hub, 1, "alice");
    let b = register(&mut hub, 2, "bob");
    hub.handle_disconnect(T, b);
    store.apply(&ops(&mut hub)).unwrap();

    hub.handle_request(
        T,
        a,
        Request::SendDm {
            req: 5,
            to: "bob".into(),
            body: Arc::from(&b"hi"[..]),
        },
    );
    let out = drain(&mut hub);
    let Reply::MessageAck {
        msg_id,
        status: AckStatus::Queued,
        req: 5,
    } = out[0].1
    else {
        panic!("{out:?}")
    };
    store.apply(&ops(&mut hub)).unwrap();

    // The server restarts from its store.
    let mut hub = Hub::new(HubConfig::default(), 2);
    hub.restore(store.load(hub.config().log_memory()).unwrap());
    hub.handle_connect(T, ConnId(9), "bob", key(2), AuthMode::Login);
    let out = drain(&mut hub);
    assert_eq!(
        out[0].1,
        Reply::Auth {
            mode: AuthMode::Login,
            result: Ok(1)
        }
    );
    assert!(
        matches!(&out[1].1, Reply::IncomingDm { msg_id: id, from, body, .. }
        if *id == msg_id && &**from == "alice" && &body[..] == b"hi")
    );
    assert_eq!(out.len(), 2);
    hub.handle_request(T, ConnId(9), Request::AckDm { msg_id });
    assert_eq!(
        ops(&mut hub),
        [StoreOp::DmAcked {
            to: "bob".into(),
            msg_id
        }]
    );
    assert_eq!(hub.queued_for("bob"), 0);
    // A second ack of the same message changes nothing.
    hub.handle_request(T, ConnId(9), Request::AckDm { msg_id });
    assert!(ops(&mut hub).is_empty());
}

#[test]
fn message_ids_are_not_reused_after_a_restart() {
    let mut hub = Hub::new(HubConfig::default(), 1);
    let mut store = MemoryStore::new();
    let a = register(&mut hub, 1, "alice");
    hub.handle_request(
        T,
        a,
        Request::SendDm {
            req: 1,
            to: "alice".into(),
            body: Arc::from(&b"x"[..]),
        },
    );
    let first = match drain(&mut hub)[0].1 {
        Reply::MessageAck { msg_id, .. } => msg_id,
        ref other => panic!("{other:?}"),
    };
    hub.handle_request(T, a, Request::AckDm { msg_id: first });
    store.apply(&ops(&mut hub)).unwrap();
    let mut hub = Hub::new(HubConfig::default(), 1);
    hub.restore(store.load(hub.config().log_memory()).unwrap());
    let a = ConnId(3);
    hub.handle_connect(T, a, "alice", key(1), AuthMode::Login);
    hub.handle_request(
        T,
        a,
        Request::SendDm {
            req: 1,
            to: "alice".into(),
            body: Arc::from(&b"x"[..]),
        },
    );
    let second = drain(&mut hub)
        .iter()
        .find_map(|(_, r)| match r {
            Reply::MessageAck { msg_id, .. } => Some(*msg_id),
            _ => None,
        })
        .unwrap();
    assert!(second > first, "{second} must be above {first}");
}

#[test]
fn dms_to_unknown_users_and_full_queues_fail_out_loud() {
    let config = HubConfig {
        max_queue_per_user: 2,
        ..HubConfig::default()
    };
    let mut hub = Hub::new(config, 1);
    let a = register(&mut hub, 1, "alice");
    let b = register(&mut hub, 2, "bob");
    hub.handle_disconnect(T, b);
    hub.handle_request(
        T,
        a,
        Request::SendDm {
            req: 1,
            to: "carol".into(),
            body: Arc::from(&b"x"[..]),
        },
    );
    let out = drain(&mut hub);
    assert_eq!(errors(&out), [ErrorCode::UserNotFound]);
    assert!(out.contains(&(
        a,
        Reply::MessageAck {
            req: 1,
            msg_id: 0,
            status: AckStatus::Failed
        }
    )));
    for _ in 0..2 {
        hub.handle_request(
            T,
            a,
            Request::SendDm {
                req: 2,
                to: "bob".into(),
                body: Arc::from(&b"x"[..]),
            },
        );
    }
    assert!(errors(&drain(&mut hub)).is_empty());
    hub.handle_request(
        T,
        a,
        Request::SendDm {
            req: 3,
            to: "bob".into(),
            body: Arc::from(&b"x"[..]),
        },
    );
    let out = drain(&mut hub);
    assert_eq!(errors(&out), [ErrorCode::QueueFull]);
    assert_eq!(hub.queued_for("bob"), 2);
}

#[test]
fn dms_flow_through_a_bounded_window_in_order() {
    let config = HubConfig {
        dm_window: 3,
        ..HubConfig::default()
    };
    let mut hub = Hub::new(config, 1);
    let a = register(&mut hub, 1, "alice");
    let b = register(&mut hub, 2, "bob");
    for i in 0..5u8 {
        hub.handle_request(
            T,
            a,
            Request::SendDm {
                req: 1,
                to: "bob".into(),
                body: Arc::from(&[i][..]),
            },
        );
    }
    let to_bob = |out: &[(ConnId, Reply)]| -> Vec<(u64, u8)> {
        out.iter()
            .filter(|(c, _)| *c == b)
            .filter_map(|(_, r)| match r {
                Reply::IncomingDm { msg_id, body, .. } => Some((*msg_id, body[0])),
                _ => None,
            })
            .collect()
    };
    let first = to_bob(&drain(&mut hub));
    assert_eq!(first.iter().map(|x| x.1).collect::<Vec<_>>(), [0, 1, 2]);
    hub.handle_request(T, b, Request::AckDm { msg_id: first[0].0 });
    let next = to_bob(&drain(&mut hub));
    assert_eq!(next.iter().map(|x| x.1).collect::<Vec<_>>(), [3]);
}

#[test]
fn status_changes_reach_roommates_once_and_offline_is_not_leaving() {
    let mut hub = Hub::new(HubConfig::default(), 1);
    let a = register(&mut hub, 1, "a");
    let b = register(&mut hub, 2, "b");
    let _c = register(&mut hub, 3, "c");
    let r1 = create(&mut hub, a);
    let r2 = create(&mut hub, a);
    hub.handle_request(T, b, Request::JoinRoom { req: 1, room: r1 });
    hub.handle_request(T, b, Request::JoinRoom { req: 1, room: r2 });
    drain(&mut hub);
    hub.handle_request(
        T,
        a,
        Request::SetStatus {
            req: 4,
            status: Status::Away,
        },
    );
    let out = drain(&mut hub);
    assert_eq!(
        out,
        [
            (a, Reply::Ok { req: 4 }),
            (
                b,
                Reply::StatusUpdate {
                    name: "a".into(),
                    status: Status::Away
                }
            )
        ]
    );
    hub.handle_disconnect(T, a);
    let out = drain(&mut hub);
    assert_eq!(
        out[0],
        (
            b,
            Reply::StatusUpdate {
                name: "a".into(),
                status: Status::Offline
            }
        )
    );
    // Going offline is presence, not leaving: b hears it once and a stays in both rooms.
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(hub.room_members(r1).unwrap().count(), 2);
}

#[test]
fn a_second_login_replaces_the_first_connection() {
    let mut hub = Hub::new(HubConfig::default(), 1);
    let a = register(&mut hub, 1, "a");
    hub.handle_connect(T, ConnId(2), "a", key(1), AuthMode::Login);
    let out = drain(&mut hub);
    assert_eq!(
        out[0],
        (
            a,
            Reply::Close {
                code: ErrorCode::AlreadyConnected
            }
        )
    );
    assert_eq!(hub.user_of(ConnId(2)).map(|n| &**n), Some("a"));
    assert_eq!(hub.user_of(a), None);
}

#[test]
fn lists_are_bounded() {
    let config = HubConfig {
        max_list_entries: 3,
        ..HubConfig::default()
    };
    let mut hub = Hub::new(config, 1);
    for i in 0..5 {
        let c = register(&mut hub, i, &alloc::format!("u{i}"));
        create(&mut hub, c);
    }
    hub.handle_request(T, ConnId(0), Request::ListUsers { req: 1 });
    hub.handle_request(T, ConnId(0), Request::ListRooms { req: 2 });
    let out = drain(&mut hub);
    assert!(matches!(&out[0].1, Reply::UserList { users, .. } if users.len() == 3));
    assert!(matches!(&out[1].1, Reply::RoomList { rooms, .. } if rooms.len() == 3));
}

/// Sends a DM of `len` bytes from `from` to `to` and returns its ack's status and the
/// error codes it drew.
fn dm_of(hub: &mut Hub, from: ConnId, to: &str, len: usize) -> (AckStatus, Vec<ErrorCode>) {
    let body: Arc<[u8]> = alloc::vec![b'x'; len].into();
    let to = to.into();
    hub.handle_request(T, from, Request::SendDm { req: 7, to, body });
    let out = drain(hub);
    let status = out
        .iter()
        .find_map(|(c, r)| match r {
            Reply::MessageAck { req: 7, status, .. } if *c == from => Some(*status),
            _ => None,
        })
        .unwrap();
    (status, errors(&out))
}

#[test]
fn a_users_queue_takes_bodies_up_to_its_byte_budget_and_refuses_one_byte_more() {
    const MAX: usize = 1_000;
    for (last, accepted) in [(MAX - 1, true), (MAX, true), (MAX + 1, false)] {
        let config = HubConfig {
            max_queue_bytes_per_user: MAX,
            ..HubConfig::default()
        };
        let mut hub = Hub::new(config, 1);
        let a = register(&mut hub, 1, "alice");
        let b = register(&mut hub, 2, "bob");
        hub.handle_disconnect(T, b);
        assert_eq!(
            dm_of(&mut hub, a, "bob", 600),
            (AckStatus::Queued, Vec::new())
        );
        ops(&mut hub);
        let got = dm_of(&mut hub, a, "bob", last - 600);
        if accepted {
            assert_eq!(got, (AckStatus::Queued, Vec::new()), "{last} bytes");
            assert_eq!(hub.queued_bytes_for("bob"), last);
            assert!(matches!(&ops(&mut hub)[..], [StoreOp::DmQueued(_)]));
        } else {
            // Refused out loud, as a full queue is: nothing queued, nothing dropped.
            assert_eq!(got, (AckStatus::Failed, alloc::vec![ErrorCode::QueueFull]));
            assert_eq!(hub.queued_bytes_for("bob"), 600);
            assert_eq!(hub.queued_for("bob"), 1);
            assert!(ops(&mut hub).is_empty());
        }
        // Other recipients keep their own budget.
        register(&mut hub, 3, "carol");
        let got = dm_of(&mut hub, a, "carol", MAX);
        assert_eq!(got, (AckStatus::Delivered, Vec::new()));
    }
}

#[test]
fn all_queues_together_take_bodies_up_to_the_total_byte_budget() {
    const MAX: usize = 1_000;
    for (last, accepted) in [(MAX - 1, true), (MAX, true), (MAX + 1, false)] {
        let config = HubConfig {
            max_queue_bytes_total: MAX,
            ..HubConfig::default()
        };
        let mut hub = Hub::new(config, 1);
        let a = register(&mut hub, 1, "alice");
        let b = register(&mut hub, 2, "bob");
        let c = register(&mut hub, 3, "carol");
        hub.handle_disconnect(T, b);
        hub.handle_disconnect(T, c);
        assert_eq!(dm_of(&mut hub, a, "bob", 400).0, AckStatus::Queued);
        let got = dm_of(&mut hub, a, "carol", last - 400);
        assert_eq!(hub.queued_bytes_total(), if accepted { last } else { 400 });
        if accepted {
            assert_eq!(got, (AckStatus::Queued, Vec::new()), "{last} bytes");
        } else {
            assert_eq!(got, (AckStatus::Failed, alloc::vec![ErrorCode::QueueFull]));
            assert_eq!(hub.queued_for("carol"), 0);
        }
    }
}

#[test]
fn an_ack_gives_the_bytes_back() {
    let config = HubConfig {
        max_queue_bytes_per_user: 100,
        max_queue_bytes_total: 150,
        ..HubConfig::default()
    };
    let mut hub = Hub::new(config, 1);
    let a = register(&mut hub, 1, "alice");
    let b = register(&mut hub, 2, "bob");
    assert_eq!(dm_of(&mut hub, a, "bob", 100).0, AckStatus::Delivered);
    assert_eq!(dm_of(&mut hub, a, "bob", 1).1, [ErrorCode::QueueFull]);
    assert_eq!(dm_of(&mut hub, a, "alice", 51).1, [ErrorCode::QueueFull]);
    let msg_id = hub.users["bob"].queue[0].msg_id;
    hub.handle_request(T, b, Request::AckDm { msg_id });
    assert_eq!(
        (hub.queued_bytes_for("bob"), hub.queued_bytes_total()),
        (0, 0)
    );
    assert_eq!(dm_of(&mut hub, a, "alice", 50).0, AckStatus::Delivered);
    assert_eq!(dm_of(&mut hub, a, "bob", 100).0, AckStatus::Delivered);
    assert_eq!(hub.queued_bytes_total(), 150);
}

#[test]
fn queued_bytes_are_counted_again_after_a_restart() {
    const MAX: usize = 1_000;
    let config = HubConfig {
        max_queue_bytes_per_user: MAX,
        max_queue_bytes_total: MAX + 10,
        ..HubConfig::default()
    };
    let mut hub = Hub::new(config.clone(), 1);
    let mut store = MemoryStore::new();
    let a = register(&mut hub, 1, "alice");
    let b = register(&mut hub, 2, "bob");
    hub.handle_disconnect(T, b);
    assert_eq!(dm_of(&mut hub, a, "bob", 700).0, AckStatus::Queued);
    assert_eq!(dm_of(&mut hub, a, "bob", 300).0, AckStatus::Queued);
    store.apply(&ops(&mut hub)).unwrap();

    for (len, to, accepted) in [(1, "bob", false), (11, "alice", false), (10, "alice", true)] {
        let mut hub = Hub::new(config.clone(), 2);
        hub.restore(store.load(hub.config().log_memory()).unwrap());
        assert_eq!(hub.queued_bytes_for("bob"), MAX);
        hub.handle_connect(T, ConnId(5), "alice", key(1), AuthMode::Login);
        drain(&mut hub);
        let got = dm_of(&mut hub, ConnId(5), to, len);
        assert_eq!(got.0 != AckStatus::Failed, accepted, "{len} bytes to {to}");
        assert_eq!(hub.queued_for("bob"), 2);
    }

    // With a budget lowered across the restart nothing queued is dropped; bob's queue
    // takes nothing new until his acks bring it under the budget.
    let lower = HubConfig {
        max_queue_bytes_per_user: 500,
        ..config
    };
    let mut hub = Hub::new(lower, 3);
    hub.restore(store.load(hub.config().log_memory()).unwrap());
    hub.handle_connect(T, ConnId(5), "alice", key(1), AuthMode::Login);
    hub.handle_connect(T, ConnId(6), "bob", key(2), AuthMode::Login);
    let ids: Vec<u64> = drain(&mut hub)
        .iter()
        .filter_map(|(_, r)| match r {
            Reply::IncomingDm { msg_id, .. } => Some(*msg_id),
            _ => None,
        })
        .collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(
        dm_of(&mut hub, ConnId(5), "bob", 1).1,
        [ErrorCode::QueueFull]
    );
    hub.handle_request(T, ConnId(6), Request::AckDm { msg_id: ids[0] });
    assert_eq!(hub.queued_bytes_for("bob"), 300);
    assert_eq!(
        dm_of(&mut hub, ConnId(5), "bob", 200).0,
        AckStatus::Delivered
    );
    assert_eq!(
        dm_of(&mut hub, ConnId(5), "bob", 1).1,
        [ErrorCode::QueueFull]
    );
}
