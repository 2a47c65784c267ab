//! The `Hub` fed structured sequences of requests from several connections.
//!
//! Six connection slots, six users, small limits (picked by the input) so every limit is
//! reached. The harness behaves as the adapter does: it drains store ops, then deliveries;
//! a `Close` delivery closes that connection and is followed by `handle_disconnect`.
//!
//! Checked after every step, against a model kept here:
//! - every reply encodes to the wire and fits a default frame;
//! - nothing is delivered to a connection after it closed (or after its `Close`);
//! - rooms hold at most `room_capacity` distinct, online members; no more rooms than
//!   `max_rooms`, nor per user than `max_rooms_per_user`;
//! - each room message goes to exactly the room's members, once each, with the room's
//!   next sequence number, and the sequence numbers each connection sees in a room
//!   strictly increase;
//! - offline queues stay within `max_queue_per_user`, unacknowledged pushed direct
//!   messages within `dm_window`, and direct-message IDs increase between re-fetches;
//! - `online()` counts exactly the logged-in connections;
//! - a restart (every connection drops, a new hub is restored from the store) loses no
//!   queued direct message, and no direct-message ID is ever given out twice;
//! - at the end, a hub restored from the store has the same queues.

use std::collections::{BTreeMap, BTreeSet};

use arbitrary::Arbitrary;
use cove_core::Instant;
use cove_core::hub::{ConnId, Hub, HubConfig, Reply, Request};
use cove_core::server::{ListScratch, encode_reply};
use cove_core::store::{MemoryStore, Store};
use cove_core::time::Duration;
use cove_core::wire::{AuthMode, RoomId};

use crate::arb::{ArbWriter, ToArb, decode};
use crate::connection::{MsgSel, RoomSel, status_of};
use crate::util::T0;

/// The users; a request may also name [`STRANGER`], who never registers.
pub const USERS: [&str; 6] = ["ann", "ben", "cat", "dan", "eve", "fay"];
/// A name that is never registered.
pub const STRANGER: &str = "zed";
/// Connection slots.
pub const SLOTS: usize = 6;
/// Largest record plaintext a default server frame carries (64 KiB less the tag).
const MAX_PLAINTEXT: usize = 64 * 1024 - 16;

/// The hub's limits, each mapped into a small range so that it is reached.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Limits {
    pub room_capacity: u8,
    pub max_rooms: u8,
    pub max_rooms_per_user: u8,
    pub max_queue_per_user: u8,
    pub dm_window: u8,
    pub max_online: u8,
    pub max_accounts: u8,
    pub max_list_entries: u8,
}

impl Limits {
    /// The configuration these limits stand for.
    // With the `inject-bugs` feature (which the simulator may unify in) the config has one
    // more field, so the update is needed in some builds and needless in others.
    #[allow(clippy::needless_update)]
    pub fn config(&self) -> HubConfig {
        HubConfig {
            room_capacity: 1 + usize::from(self.room_capacity % 4),
            max_rooms: 1 + usize::from(self.max_rooms % 6),
            max_rooms_per_user: 1 + usize::from(self.max_rooms_per_user % 3),
            max_queue_per_user: 1 + usize::from(self.max_queue_per_user % 5),
            dm_window: 1 + usize::from(self.dm_window % 3),
            max_online: 1 + usize::from(self.max_online % 6),
            max_accounts: 1 + usize::from(self.max_accounts % 6),
            max_list_entries: usize::from(self.max_list_entries % 6),
            ..HubConfig::default()
        }
    }
}

impl ToArb for Limits {
    fn write(&self, w: &mut ArbWriter) {
        w.u8(self.room_capacity)
            .u8(self.max_rooms)
            .u8(self.max_rooms_per_user)
            .u8(self.max_queue_per_user)
            .u8(self.dm_window)
            .u8(self.max_online)
            .u8(self.max_accounts)
            .u8(self.max_list_entries);
    }
}

/// A request, with small selectors instead of free values.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum HubReq {
    /// `name` picks from the users and the stranger.
    GetPublicKey {
        name: u8,
    },
    SendDm {
        to: u8,
        body: u8,
    },
    FetchPending,
    SetStatus(u8),
    ListUsers,
    Logout,
    AckDm(MsgSel),
    CreateRoom,
    JoinRoom(RoomSel),
    LeaveRoom(RoomSel),
    ListRooms,
    RoomMessage(RoomSel),
    UploadPrekeys(u8),
    FetchPrekeys {
        name: u8,
    },
}

impl ToArb for HubReq {
    fn write(&self, w: &mut ArbWriter) {
        const N: u32 = 14;
        match self {
            HubReq::GetPublicKey { name } => {
                w.variant(0, N).u8(*name);
            }
            HubReq::SendDm { to, body } => {
                w.variant(1, N).u8(*to).u8(*body);
            }
            HubReq::FetchPending => {
                w.variant(2, N);
            }
            HubReq::SetStatus(s) => {
                w.variant(3, N).u8(*s);
            }
            HubReq::ListUsers => {
                w.variant(4, N);
            }
            HubReq::Logout => {
                w.variant(5, N);
            }
            HubReq::AckDm(m) => {
                w.variant(6, N);
                m.write(w);
            }
            HubReq::CreateRoom => {
                w.variant(7, N);
            }
            HubReq::JoinRoom(r) => {
                w.variant(8, N);
                r.write(w);
            }
            HubReq::LeaveRoom(r) => {
                w.variant(9, N);
                r.write(w);
            }
            HubReq::ListRooms => {
                w.variant(10, N);
            }
            HubReq::RoomMessage(r) => {
                w.variant(11, N);
                r.write(w);
            }
            HubReq::UploadPrekeys(b) => {
                w.variant(12, N).u8(*b);
            }
            HubReq::FetchPrekeys { name } => {
                w.variant(13, N).u8(*name);
            }
        }
    }
}

/// One step.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum HubOp {
    /// Slot `slot % 6` finishes a handshake as user `user % 6` (opening a new connection
    /// if it has none): registers, or logs in; `wrong_key` presents another key.
    Connect {
        /// Which slot.
        slot: u8,
        /// Which user.
        user: u8,
        /// Present a key that is not the user's.
        wrong_key: bool,
        /// Log in rather than register.
        login: bool,
    },
    /// The slot's connection drops.
    Disconnect {
        /// Which slot.
        slot: u8,
    },
    /// The slot's connection (opened if it has none) sends a request.
    Request {
        /// Which slot.
        slot: u8,
        /// What.
        req: HubReq,
    },
    /// Time passes (`n` seconds).
    Advance(u16),
    /// The server restarts: every connection drops and a new hub is restored from the
    /// store.
    Restart,
}

impl ToArb for HubOp {
    fn write(&self, w: &mut ArbWriter) {
        match self {
            HubOp::Connect {
                slot,
                user,
                wrong_key,
                login,
            } => {
                w.variant(0, 5)
                    .u8(*slot)
                    .u8(*user)
                    .bool(*wrong_key)
                    .bool(*login);
            }
            HubOp::Disconnect { slot } => {
                w.variant(1, 5).u8(*slot);
            }
            HubOp::Request { slot, req } => {
                w.variant(2, 5).u8(*slot);
                req.write(w);
            }
            HubOp::Advance(n) => {
                w.variant(3, 5).u16(*n);
            }
            HubOp::Restart => {
                w.variant(4, 5);
            }
        }
    }
}

/// The whole input.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct HubInput {
    /// The hub's limits.
    pub limits: Limits,
    /// The steps.
    pub ops: Vec<HubOp>,
}

impl ToArb for HubInput {
    fn write(&self, w: &mut ArbWriter) {
        self.limits.write(w);
        self.ops.write(w);
    }
}

#[derive(Clone, Debug, Default)]
struct Slot {
    conn: Option<ConnId>,
    /// The user logged in on it.
    user: Option<usize>,
}

fn key_of(user: usize) -> [u8; 32] {
    [user as u8 + 1; 32]
}

fn name_of(i: u8) -> &'static str {
    let i = usize::from(i) % (USERS.len() + 1);
    USERS.get(i).copied().unwrap_or(STRANGER)
}

struct Model {
    now: Instant,
    hub: Hub,
    config: HubConfig,
    store: MemoryStore,
    scratch: ListScratch,
    slots: [Slot; SLOTS],
    next_conn: u64,
    next_req: u32,
    /// Connections closed (told to the hub, or sent `Close`).
    closed: BTreeSet<ConnId>,
    /// Rooms ever heard of, in order.
    rooms: Vec<RoomId>,
    /// The last sequence number stamped in each room (this incarnation of it).
    room_seq: BTreeMap<RoomId, u64>,
    /// The last sequence number each connection saw in each room.
    seen_seq: BTreeMap<(ConnId, RoomId), u64>,
    /// Direct messages pushed to a connection and not acknowledged by it.
    outstanding: BTreeMap<ConnId, BTreeSet<u64>>,
    /// The last direct-message ID pushed to each connection since its last fetch.
    last_dm: BTreeMap<ConnId, u64>,
    /// Every direct-message ID heard of.
    dms: Vec<u64>,
    /// Every direct-message ID the hub gave out: a restart must never reuse one.
    issued: BTreeSet<u64>,
}

/// What a request is expected to do, checked against its deliveries.
enum Expect {
    Nothing,
    /// A room message: `Some((room, members' connections, next seq))` when the sender is
    /// a member of an existing room.
    RoomMessage(Option<(RoomId, BTreeSet<ConnId>, u64)>),
    /// A new room: its creator's connection.
    Create(ConnId),
    /// A re-fetch: pushes start again from the oldest.
    Fetch(ConnId),
}

impl Model {
    fn new(limits: &Limits) -> Model {
        let config = limits.config();
        Model {
            now: T0,
            hub: Hub::new(config.clone(), 9),
            config,
            store: MemoryStore::new(),
            scratch: ListScratch::default(),
            slots: Default::default(),
            next_conn: 1,
            next_req: 1,
            closed: BTreeSet::new(),
            rooms: Vec::new(),
            room_seq: BTreeMap::new(),
            seen_seq: BTreeMap::new(),
            outstanding: BTreeMap::new(),
            last_dm: BTreeMap::new(),
            dms: Vec::new(),
            issued: BTreeSet::new(),
        }
    }

    /// A crash and restart: the connections are gone, the hub comes back from the store.
    fn restart(&mut self) {
        for slot in &mut self.slots {
            if let Some(conn) = slot.conn.take() {
                self.closed.insert(conn);
            }
            slot.user = None;
        }
        self.outstanding.clear();
        self.last_dm.clear();
        self.seen_seq.clear();
        self.room_seq.clear();
        let records = self.store.load().expect("memory store");
        let before: Vec<usize> = USERS.iter().map(|u| self.hub.queued_for(u)).collect();
        self.hub = Hub::new(self.config.clone(), self.next_conn);
        self.hub.restore(records);
        let after: Vec<usize> = USERS.iter().map(|u| self.hub.queued_for(u)).collect();
        assert_eq!(before, after, "queued direct messages lost in a restart");
        assert_eq!(self.hub.online(), 0);
    }

    fn conn_of(&mut self, slot: usize) -> ConnId {
        if let Some(c) = self.slots[slot].conn {
            return c;
        }
        let c = ConnId(self.next_conn);
        self.next_conn += 1;
        self.slots[slot] = Slot {
            conn: Some(c),
            user: None,
        };
        c
    }

    fn slot_of(&self, conn: ConnId) -> Option<usize> {
        self.slots.iter().position(|s| s.conn == Some(conn))
    }

    /// The connection `name` is logged in on.
    fn conn_of_user(&self, name: &str) -> Option<ConnId> {
        self.slots
            .iter()
            .find(|s| s.user.is_some_and(|u| USERS[u] == name))
            .and_then(|s| s.conn)
    }

    fn apply(&mut self, op: &HubOp) {
        match op {
            HubOp::Connect {
                slot,
                user,
                wrong_key,
                login,
            } => {
                let slot = usize::from(*slot) % SLOTS;
                let user = usize::from(*user) % USERS.len();
                let conn = self.conn_of(slot);
                let key = if *wrong_key { [0xEE; 32] } else { key_of(user) };
                let mode = if *login {
                    AuthMode::Login
                } else {
                    AuthMode::Register
                };
                self.hub
                    .handle_connect(self.now, conn, USERS[user], key, mode);
                self.settle(Expect::Nothing, Some((slot, user)));
            }
            HubOp::Disconnect { slot } => {
                let slot = usize::from(*slot) % SLOTS;
                if let Some(conn) = self.slots[slot].conn {
                    self.disconnect(conn);
                }
            }
            HubOp::Request { slot, req } => {
                let slot = usize::from(*slot) % SLOTS;
                let conn = self.conn_of(slot);
                let (request, expect) = self.request(conn, req);
                self.hub.handle_request(self.now, conn, request);
                self.settle(expect, None);
            }
            HubOp::Advance(n) => self.now = self.now + Duration::from_secs(u64::from(*n)),
            HubOp::Restart => self.restart(),
        }
        self.check();
    }

    /// The adapter saw the connection close: tell the hub.
    fn disconnect(&mut self, conn: ConnId) {
        if let Some(slot) = self.slot_of(conn) {
            self.slots[slot] = Slot::default();
        }
        self.closed.insert(conn);
        self.outstanding.remove(&conn);
        self.last_dm.remove(&conn);
        self.hub.handle_disconnect(self.now, conn);
        self.settle(Expect::Nothing, None);
    }

    fn request(&mut self, conn: ConnId, req: &HubReq) -> (Request, Expect) {
        let id = self.next_req;
        self.next_req = self.next_req.wrapping_add(1);
        let mut expect = Expect::Nothing;
        let request = match req {
            HubReq::GetPublicKey { name } => Request::GetPublicKey {
                req: id,
                name: name_of(*name).into(),
            },
            HubReq::SendDm { to, body } => Request::SendDm {
                req: id,
                to: name_of(*to).into(),
                body: vec![*body; usize::from(*body % 4)].into(),
            },
            HubReq::FetchPending => {
                expect = Expect::Fetch(conn);
                Request::FetchPending { req: id }
            }
            HubReq::SetStatus(s) => Request::SetStatus {
                req: id,
                status: status_of(*s),
            },
            HubReq::ListUsers => Request::ListUsers { req: id },
            HubReq::Logout => Request::Logout,
            HubReq::AckDm(m) => {
                let msg_id = match m {
                    MsgSel::Known(i) if !self.dms.is_empty() => {
                        self.dms[usize::from(*i) % self.dms.len()]
                    }
                    MsgSel::Known(i) => u64::from(*i),
                    MsgSel::Raw(id) => *id,
                };
                // The hub may drop it from the queue: no longer outstanding here.
                if self.hub.user_of(conn).is_some()
                    && let Some(set) = self.outstanding.get_mut(&conn)
                {
                    set.remove(&msg_id);
                }
                Request::AckDm { msg_id }
            }
            HubReq::CreateRoom => {
                expect = Expect::Create(conn);
                Request::CreateRoom {
                    req: id,
                    title: "room".into(),
                }
            }
            HubReq::JoinRoom(r) => Request::JoinRoom {
                req: id,
                room: r.resolve(&self.rooms),
            },
            HubReq::LeaveRoom(r) => Request::LeaveRoom {
                req: id,
                room: r.resolve(&self.rooms),
            },
            HubReq::ListRooms => Request::ListRooms { req: id },
            HubReq::RoomMessage(r) => {
                let room = r.resolve(&self.rooms);
                let sender = self.hub.user_of(conn).cloned();
                let members: Option<Vec<String>> = self
                    .hub
                    .room_members(room)
                    .map(|m| m.map(str::to_owned).collect());
                let target = match (sender, members) {
                    (Some(s), Some(m)) if m.iter().any(|n| **n == *s) => {
                        let conns = m
                            .iter()
                            .map(|n| {
                                self.conn_of_user(n)
                                    .unwrap_or_else(|| panic!("member {n} is not online"))
                            })
                            .collect();
                        let seq = self.room_seq.get(&room).map_or(1, |s| s + 1);
                        Some((room, conns, seq))
                    }
                    _ => None,
                };
                expect = Expect::RoomMessage(target);
                Request::RoomMessage {
                    req: id,
                    room,
                    body: vec![7u8; 3].into(),
                }
            }
            HubReq::UploadPrekeys(b) => Request::UploadPrekeys {
                req: id,
                bundle: vec![*b; usize::from(*b % 8)].into(),
            },
            HubReq::FetchPrekeys { name } => Request::FetchPrekeys {
                req: id,
                name: name_of(*name).into(),
            },
        };
        (request, expect)
    }

    /// Drains the hub like an adapter and checks every delivery.
    fn settle(&mut self, expect: Expect, connecting: Option<(usize, usize)>) {
        let ops: Vec<_> = std::iter::from_fn(|| self.hub.poll_store_op()).collect();
        self.store.apply(&ops).expect("memory store");
        let deliveries: Vec<(ConnId, Reply)> =
            std::iter::from_fn(|| self.hub.poll_delivery()).collect();
        if let Expect::Fetch(conn) = expect {
            self.last_dm.remove(&conn);
        }
        let mut closing = Vec::new();
        let mut room_msgs = BTreeMap::new();
        for (conn, reply) in deliveries {
            assert!(
                !self.closed.contains(&conn),
                "{reply:?} delivered to closed connection {conn:?}"
            );
            assert!(
                !closing.contains(&conn),
                "{reply:?} delivered after Close to {conn:?}"
            );
            assert!(
                self.slot_of(conn).is_some(),
                "delivery to unknown connection {conn:?}"
            );
            let mut plain = Vec::new();
            encode_reply(&reply, &mut self.scratch, &mut plain)
                .unwrap_or_else(|e| panic!("{reply:?} does not encode: {e:?}"));
            assert!(plain.len() <= MAX_PLAINTEXT, "{reply:?} exceeds a frame");
            match reply {
                Reply::Auth { result, .. } => {
                    let (slot, user) = connecting.expect("Auth outside a connect");
                    assert_eq!(self.slots[slot].conn, Some(conn));
                    if result.is_ok() {
                        self.slots[slot].user = Some(user);
                        self.last_dm.remove(&conn);
                        self.outstanding.remove(&conn);
                    }
                }
                Reply::Close { .. } => closing.push(conn),
                Reply::RoomJoined { room, members, .. } => {
                    assert!(members.len() <= self.config.room_capacity);
                    if matches!(expect, Expect::Create(creator) if creator == conn) {
                        self.room_seq.insert(room, 0);
                        // A new room: nobody has seen its (restarted) numbers.
                        self.seen_seq.retain(|(_, r), _| *r != room);
                    }
                    self.seen_seq.remove(&(conn, room));
                    if !self.rooms.contains(&room) {
                        self.rooms.push(room);
                    }
                }
                Reply::RoomList { rooms, .. } => {
                    assert!(rooms.len() <= self.config.max_list_entries);
                    for r in rooms {
                        assert!(usize::from(r.members) <= self.config.room_capacity);
                    }
                }
                Reply::UserList { users, .. } => {
                    assert!(users.len() <= self.config.max_list_entries);
                }
                Reply::RoomMessage { room, seq, .. } => {
                    let last = self.seen_seq.entry((conn, room)).or_insert(0);
                    assert!(seq > *last, "{conn:?} saw seq {seq} after {last} in {room}");
                    *last = seq;
                    assert!(
                        room_msgs.insert(conn, (room, seq)).is_none(),
                        "one room message delivered twice to {conn:?}"
                    );
                }
                Reply::IncomingDm { msg_id, .. } => {
                    let set = self.outstanding.entry(conn).or_default();
                    set.insert(msg_id);
                    assert!(
                        set.len() <= self.config.dm_window,
                        "{} direct messages pushed past a window of {}",
                        set.len(),
                        self.config.dm_window
                    );
                    let last = self.last_dm.entry(conn).or_insert(0);
                    assert!(msg_id > *last, "direct message {msg_id} after {last}");
                    *last = msg_id;
                    if !self.dms.contains(&msg_id) {
                        self.dms.push(msg_id);
                    }
                }
                Reply::MessageAck { msg_id, .. } if msg_id != 0 => {
                    assert!(
                        self.issued.insert(msg_id),
                        "direct-message ID {msg_id} reused"
                    );
                    self.dms.push(msg_id);
                }
                _ => {}
            }
        }
        if let Expect::RoomMessage(target) = expect {
            match target {
                Some((room, conns, seq)) => {
                    let got: BTreeSet<ConnId> = room_msgs.keys().copied().collect();
                    assert_eq!(got, conns, "room message recipients are not the members");
                    for (r, s) in room_msgs.values() {
                        assert_eq!((*r, *s), (room, seq), "wrong room or sequence number");
                    }
                    self.room_seq.insert(room, seq);
                }
                None => assert!(room_msgs.is_empty(), "a refused room message was delivered"),
            }
        }
        for conn in closing {
            self.disconnect(conn);
        }
    }

    fn check(&self) {
        let online = self.slots.iter().filter(|s| s.user.is_some()).count();
        assert_eq!(
            self.hub.online(),
            online,
            "online() disagrees with the logins"
        );
        assert!(online <= self.config.max_online);
        let mut existing = 0;
        let mut per_user: BTreeMap<&str, usize> = BTreeMap::new();
        for room in &self.rooms {
            let Some(members) = self.hub.room_members(*room) else {
                continue;
            };
            existing += 1;
            let members: Vec<&str> = members.collect();
            assert!(
                members.len() <= self.config.room_capacity,
                "room {room} has {} members, capacity {}",
                members.len(),
                self.config.room_capacity
            );
            assert!(!members.is_empty(), "an empty room lives on");
            let unique: BTreeSet<&str> = members.iter().copied().collect();
            assert_eq!(unique.len(), members.len(), "a member twice in {room}");
            for m in members {
                assert!(self.conn_of_user(m).is_some(), "offline {m} is in {room}");
                *per_user.entry(m).or_default() += 1;
            }
        }
        assert!(existing <= self.config.max_rooms, "more rooms than allowed");
        for (user, n) in per_user {
            assert!(
                n <= self.config.max_rooms_per_user,
                "{user} is in {n} rooms"
            );
        }
        for user in USERS {
            assert!(self.hub.queued_for(user) <= self.config.max_queue_per_user);
        }
    }

    /// A hub restored from the store has the same queues.
    fn check_restore(&mut self) {
        let records = self.store.load().expect("memory store");
        let mut restored = Hub::new(self.config.clone(), 9);
        restored.restore(records);
        for user in USERS {
            assert_eq!(
                restored.queued_for(user),
                self.hub.queued_for(user),
                "{user}'s queue is not durable"
            );
        }
    }
}

/// A hub driven by a structured sequence of connects, requests and disconnects.
pub fn hub_sequence(data: &[u8]) {
    let Some(input) = decode::<HubInput>(data) else {
        return;
    };
    let mut model = Model::new(&input.limits);
    for op in &input.ops {
        model.apply(op);
    }
    model.check_restore();
    // Everyone leaves: nothing may be left behind.
    for slot in 0..SLOTS {
        if let Some(conn) = model.slots[slot].conn {
            model.disconnect(conn);
        }
    }
    assert_eq!(model.hub.online(), 0);
    for room in &model.rooms {
        assert!(
            model.hub.room_members(*room).is_none(),
            "room {room} outlived its members"
        );
    }
}

#[cfg(test)]
mod tests {
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
                HubOp::Disconnect { slot: 4 },
                HubOp::Advance(300),
                HubOp::Restart,
            ],
        };
        assert_eq!(decode::<HubInput>(&input.to_arb_bytes()), Some(input));
    }
}
