//! Seeds of the hub target: rooms, direct messages, logins, and the pipeline.

use super::Seed;
use crate::arb::ToArb;
use crate::connection::{MsgSel, RoomSel};
use crate::hub::{Commits, HubInput, HubOp, HubReq, Limits};

fn limits(cap: u8) -> Limits {
    Limits {
        room_capacity: cap,
        max_rooms: 3,
        max_rooms_per_user: 1,
        max_queue_per_user: 2,
        dm_window: 1,
        max_online: 5,
        max_accounts: 5,
        max_list_entries: 3,
        room_window: 1,
    }
}

fn connect(slot: u8, user: u8) -> HubOp {
    HubOp::Connect {
        slot,
        user,
        wrong_key: false,
        login: false,
    }
}

fn req(slot: u8, req: HubReq) -> HubOp {
    HubOp::Request { slot, req }
}

/// Every batch durable right after its step.
fn eager() -> Commits {
    Commits {
        lazy: false,
        held_replies: 15,
        pending_ops: 7,
    }
}

/// Batches durable only when an op says so, with the driver's bounds `1 + held % 16` and
/// `1 + ops % 8`.
fn lazy(held: u8, ops: u8) -> Commits {
    Commits {
        lazy: true,
        held_replies: held,
        pending_ops: ops,
    }
}

pub(super) fn hub_seeds() -> Vec<Seed> {
    use HubReq::*;
    let rooms = vec![
        connect(0, 0),
        connect(1, 1),
        connect(2, 2),
        req(0, CreateRoom { private: false }),
        req(1, JoinRoom(RoomSel::Known(0))),
        req(2, JoinRoom(RoomSel::Known(0))),
        req(0, RoomMessage(RoomSel::Known(0))),
        req(1, RoomMessage(RoomSel::Known(0))),
        req(2, LeaveRoom(RoomSel::Known(0))),
        req(2, JoinRoom(RoomSel::Known(0))),
        req(0, RoomMessage(RoomSel::Known(0))),
        req(1, ListRooms),
        req(1, SetStatus(2)),
        HubOp::Disconnect { slot: 0 },
        req(1, RoomMessage(RoomSel::Known(0))),
        req(1, LeaveRoom(RoomSel::Known(0))),
        req(2, LeaveRoom(RoomSel::Known(0))),
        req(2, CreateRoom { private: false }),
        req(2, CreateRoom { private: false }),
    ];
    let dms = vec![
        connect(0, 0),
        connect(1, 1),
        HubOp::Disconnect { slot: 1 },
        req(0, SendDm { to: 1, body: 1 }),
        req(0, SendDm { to: 1, body: 2 }),
        req(0, SendDm { to: 1, body: 3 }),
        req(0, SendDm { to: 6, body: 3 }),
        HubOp::Connect {
            slot: 1,
            user: 1,
            wrong_key: false,
            login: true,
        },
        req(1, AckDm(MsgSel::Known(0))),
        req(1, FetchPending),
        req(1, AckDm(MsgSel::Known(1))),
        req(0, SendDm { to: 1, body: 0 }),
        req(1, ListUsers),
        req(1, UploadPrekeys(5)),
        req(0, FetchPrekeys { name: 1 }),
        req(0, GetPublicKey { name: 1 }),
        req(0, GetPublicKey { name: 6 }),
        req(1, Logout),
        req(0, SendDm { to: 1, body: 2 }),
        HubOp::Restart { applied: false },
        req(2, SendDm { to: 1, body: 1 }),
        connect(2, 2),
        req(2, SendDm { to: 1, body: 1 }),
        HubOp::Connect {
            slot: 1,
            user: 1,
            wrong_key: false,
            login: true,
        },
        req(1, AckDm(MsgSel::Known(3))),
    ];
    let logins = vec![
        connect(0, 0),
        HubOp::Connect {
            slot: 1,
            user: 0,
            wrong_key: true,
            login: true,
        },
        HubOp::Connect {
            slot: 1,
            user: 0,
            wrong_key: false,
            login: true,
        },
        req(0, ListUsers),
        connect(1, 0),
        connect(2, 3),
        connect(3, 3),
        req(4, ListRooms),
        HubOp::Advance(60),
        connect(5, 5),
    ];
    // Batches handed out and made durable at chosen points, with steps accumulating behind
    // one in flight, and crashes before and after a batch reached the store.
    let pipeline = vec![
        connect(0, 0),
        HubOp::Batch,
        connect(1, 1),
        req(0, ListUsers),
        HubOp::Durable,
        HubOp::Durable,
        req(0, CreateRoom { private: false }),
        req(1, JoinRoom(RoomSel::Known(0))),
        req(0, RoomMessage(RoomSel::Known(0))),
        HubOp::Durable,
        HubOp::Disconnect { slot: 1 },
        req(0, SendDm { to: 1, body: 1 }),
        HubOp::Batch,
        req(0, SendDm { to: 1, body: 2 }),
        HubOp::Restart { applied: false },
        HubOp::Connect {
            slot: 0,
            user: 0,
            wrong_key: false,
            login: true,
        },
        req(0, SendDm { to: 1, body: 3 }),
        HubOp::Durable,
        req(0, SendDm { to: 1, body: 14 }),
        HubOp::Batch,
        HubOp::Restart { applied: true },
        HubOp::Connect {
            slot: 1,
            user: 1,
            wrong_key: false,
            login: true,
        },
        HubOp::Durable,
        req(1, AckDm(MsgSel::Known(0))),
        req(1, FetchPending),
        HubOp::Durable,
        req(1, Logout),
        connect(2, 2),
        req(2, CreateRoom { private: false }),
        HubOp::Cut { slot: 2 },
        req(0, SendDm { to: 2, body: 1 }),
        HubOp::Batch,
        req(0, ListRooms),
        HubOp::StoreFails,
        HubOp::Connect {
            slot: 0,
            user: 0,
            wrong_key: false,
            login: true,
        },
        HubOp::Durable,
    ];
    // Durable rooms: a private room with an invitation, a window of two that fills and
    // drains with acknowledgements, a catch-up at the next login and after a crash,
    // history, a new title and a removal.
    let rooms_v2 = vec![
        connect(0, 0),
        connect(1, 1),
        connect(2, 2),
        req(0, CreateRoom { private: true }),
        req(1, JoinRoom(RoomSel::Known(0))),
        req(0, Invite(RoomSel::Known(0), 1)),
        req(1, JoinRoom(RoomSel::Known(0))),
        req(0, Invite(RoomSel::Known(0), 2)),
        req(1, ListRooms),
        req(0, RoomMessage(RoomSel::Known(0))),
        req(0, RoomMessage(RoomSel::Known(0))),
        req(0, RoomMessage(RoomSel::Known(0))),
        req(1, AckRoom(RoomSel::Known(0), 0)),
        req(1, AckRoom(RoomSel::Known(0), 255)),
        req(1, History(RoomSel::Known(0), 10)),
        HubOp::Disconnect { slot: 1 },
        req(0, RoomMessage(RoomSel::Known(0))),
        HubOp::Connect {
            slot: 1,
            user: 1,
            wrong_key: false,
            login: true,
        },
        req(0, SetTitle(RoomSel::Known(0))),
        req(1, SetTitle(RoomSel::Known(0))),
        req(2, JoinRoom(RoomSel::Known(0))),
        HubOp::Restart { applied: false },
        HubOp::Connect {
            slot: 0,
            user: 0,
            wrong_key: false,
            login: true,
        },
        HubOp::Connect {
            slot: 1,
            user: 1,
            wrong_key: false,
            login: true,
        },
        req(1, AckRoom(RoomSel::Known(0), 0)),
        req(0, Remove(RoomSel::Known(0), 1)),
        req(0, History(RoomSel::Known(0), 1)),
        req(0, LeaveRoom(RoomSel::Known(0))),
    ];
    // The driver's smallest bounds: every step waits for the store.
    let backpressure = vec![
        connect(0, 0),
        connect(1, 1),
        connect(2, 2),
        req(0, CreateRoom { private: false }),
        req(1, JoinRoom(RoomSel::Known(0))),
        req(2, JoinRoom(RoomSel::Known(0))),
        req(0, RoomMessage(RoomSel::Known(0))),
        req(1, SendDm { to: 0, body: 2 }),
        req(2, SendDm { to: 0, body: 13 }),
        HubOp::Connect {
            slot: 3,
            user: 0,
            wrong_key: false,
            login: true,
        },
        HubOp::Durable,
    ];
    vec![
        (
            "rooms".into(),
            HubInput {
                limits: limits(1),
                commits: eager(),
                ops: rooms,
            }
            .to_arb_bytes(),
        ),
        (
            "rooms_capacity_one".into(),
            HubInput {
                limits: limits(0),
                commits: eager(),
                ops: vec![
                    connect(0, 0),
                    connect(1, 1),
                    req(0, CreateRoom { private: false }),
                    req(1, JoinRoom(RoomSel::Known(0))),
                    req(0, RoomMessage(RoomSel::Known(0))),
                    req(1, RoomMessage(RoomSel::Known(0))),
                ],
            }
            .to_arb_bytes(),
        ),
        (
            "direct_messages".into(),
            HubInput {
                limits: limits(3),
                commits: eager(),
                ops: dms,
            }
            .to_arb_bytes(),
        ),
        (
            "logins".into(),
            HubInput {
                limits: limits(3),
                commits: eager(),
                ops: logins,
            }
            .to_arb_bytes(),
        ),
        (
            "pipeline".into(),
            HubInput {
                limits: limits(3),
                commits: lazy(15, 7),
                ops: pipeline,
            }
            .to_arb_bytes(),
        ),
        (
            "durable_rooms".into(),
            HubInput {
                limits: Limits {
                    room_window: 1,
                    ..limits(3)
                },
                commits: eager(),
                ops: rooms_v2,
            }
            .to_arb_bytes(),
        ),
        (
            "backpressure".into(),
            HubInput {
                limits: limits(3),
                commits: lazy(1, 1),
                ops: backpressure,
            }
            .to_arb_bytes(),
        ),
    ]
}
