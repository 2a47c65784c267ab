//! The model the hub is checked against, and the per-step checks.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use cove_core::Instant;
use cove_core::hub::{ConnId, Hub, HubConfig, Reply, Request};
use cove_core::server::{Batch, Driver, DriverConfig, ListScratch, ServerEvent};
use cove_core::store::{MemoryStore, StoreOp};
use cove_core::time::Duration;
use cove_core::wire::{AuthMode, ErrorCode, MAX_BODY_LEN, RoomId};

use super::rooms::Rooms;
use super::{Commits, HubOp, HubReq, Limits, SLOTS, STRANGER, USERS};
use crate::connection::{MsgSel, status_of};
use crate::util::T0;

#[derive(Clone, Debug, Default)]
pub(super) struct Slot {
    pub(super) conn: Option<ConnId>,
    /// The user logged in on it.
    pub(super) user: Option<usize>,
}

fn key_of(user: usize) -> [u8; 32] {
    [user as u8 + 1; 32]
}

fn name_of(i: u8) -> &'static str {
    let i = usize::from(i) % (USERS.len() + 1);
    USERS.get(i).copied().unwrap_or(STRANGER)
}

/// A body length from a selector byte: mostly `b % small` bytes, and 3 in 16 at the
/// edges of [`MAX_BODY_LEN`], so the size limits are reached too.
fn sized(b: u8, small: u8) -> usize {
    match b % 16 {
        13 => MAX_BODY_LEN - 1,
        14 => MAX_BODY_LEN,
        15 => MAX_BODY_LEN + 1,
        n => usize::from(n % small),
    }
}

pub(super) struct Model {
    pub(super) now: Instant,
    pub(super) driver: Driver,
    pub(super) driver_config: DriverConfig,
    pub(super) config: HubConfig,
    /// Batches become durable only when an op says so (or the driver is full).
    pub(super) lazy: bool,
    pub(super) store: MemoryStore,
    pub(super) scratch: ListScratch,
    pub(super) slots: [Slot; SLOTS],
    pub(super) next_conn: u64,
    pub(super) next_req: u32,
    /// Connections closed (told to the driver, or sent `Close`): nothing may be
    /// addressed to them any more.
    pub(super) closed: BTreeSet<ConnId>,
    /// Connections sent `Close` that the hub still counts as logged in, by user, until
    /// their `Closed` event reaches it. Only a second `Authenticate` on a logged-in
    /// connection (which a real `ServerConnection` never emits) is refused that way; with
    /// the `Close` held behind the store, the hub keeps serving that user meanwhile.
    pub(super) lingering: BTreeMap<ConnId, usize>,
    /// Rooms ever heard of, in order.
    pub(super) rooms: Vec<RoomId>,
    /// The rooms that exist, their members, sequences and cursors.
    pub(super) room_state: Rooms,
    /// The last sequence number pushed to each connection in each room it is in.
    pub(super) seen_seq: BTreeMap<(ConnId, RoomId), u64>,
    /// Direct messages pushed to a connection and not acknowledged by it.
    pub(super) outstanding: BTreeMap<ConnId, BTreeSet<u64>>,
    /// The last direct-message ID pushed to each connection since its last fetch.
    pub(super) last_dm: BTreeMap<ConnId, u64>,
    /// Every direct-message ID heard of.
    pub(super) dms: Vec<u64>,
    /// Direct-message IDs the hub gave out since it started: never twice.
    pub(super) handed_out: BTreeSet<u64>,
    // The pipeline, as the adapter sees it (see `pipeline.rs`).
    /// The batch handed to the store and not yet durable.
    pub(super) in_flight: Option<Batch>,
    /// Operations the steps emitted that no batch has carried yet, in order.
    pub(super) unbatched: VecDeque<StoreOp>,
    /// Operations emitted since the driver started, and how many of them are durable
    /// (batches are prefixes of the emitted sequence).
    pub(super) emitted: u64,
    pub(super) durable: u64,
    /// Replies produced and not yet released, each with the count of operations that
    /// must be durable before it may be: all those emitted up to its step.
    pub(super) unreleased: VecDeque<(u64, ConnId, Reply)>,
    /// Connections whose released `Close` must now become a `Closed` event.
    pub(super) to_close: VecDeque<(ConnId, ErrorCode)>,
    /// Connections whose `Closed` event the driver has had.
    pub(super) gone: BTreeSet<ConnId>,
    /// Connections answered "registered", by user, until that answer is released.
    pub(super) registered: BTreeMap<ConnId, usize>,
    /// The recipient of each direct message queued, by ID.
    pub(super) queued_to: BTreeMap<u64, Arc<str>>,
    /// Promises made by released replies: accounts, and direct messages their senders
    /// were told about (until their acknowledgement is durable).
    pub(super) promised_accounts: BTreeSet<usize>,
    pub(super) promised_dms: BTreeSet<(Arc<str>, u64)>,
    /// Acknowledgements (`DmAcked`) that reached the store.
    pub(super) durably_acked: BTreeSet<(Arc<str>, u64)>,
    /// Direct-message IDs released to a sender: never given out again, even after a
    /// restart.
    pub(super) issued: BTreeSet<u64>,
    /// Room messages released to a member: in the store's log after a crash, unless the
    /// room's deletion reached the store.
    pub(super) promised_room_msgs: BTreeSet<(RoomId, u64)>,
    /// Rooms whose deletion reached the store (and no re-creation since).
    pub(super) durably_deleted: BTreeSet<RoomId>,
    /// Memberships the store was ever told of: a join may only be answered after its own.
    pub(super) durably_added: BTreeSet<(RoomId, Arc<str>)>,
    /// The user each connection logged in as (kept after it closes).
    pub(super) conn_users: BTreeMap<ConnId, usize>,
}

/// What the adapter hands the driver in one step.
pub(super) enum Input {
    /// A connection's event.
    Event(ConnId, ServerEvent),
    /// A connection whose outbound queue is full.
    Cut(ConnId),
}

/// What a request is expected to do, checked against its replies.
pub(super) enum Expect {
    Nothing,
    /// A room message: `Some((room, members' connections, next seq))` when the sender is
    /// a member of an existing room.
    RoomMessage(Option<(RoomId, BTreeSet<ConnId>, u64)>),
    /// A new room: its creator's connection.
    Create(ConnId),
    /// A re-fetch: pushes start again from the oldest.
    Fetch(ConnId),
    /// A room acknowledgement: how many messages it lets through to the connection.
    AckRoom(ConnId, RoomId, u64),
    /// A removal by the admin: the target leaves when the request gets its `Ok`.
    Remove {
        req: u32,
        room: RoomId,
        target: Option<usize>,
    },
    /// A history page: `Some(messages)` when the requester is a member, of seqs before
    /// `before`.
    History {
        req: u32,
        before: u64,
        count: Option<u64>,
    },
}

impl Model {
    pub(super) fn new(limits: &Limits, commits: &Commits) -> Model {
        let config = limits.config();
        let driver_config = commits.config();
        Model {
            now: T0,
            driver: Driver::new(Hub::new(config.clone(), 9), driver_config.clone()),
            driver_config,
            config,
            lazy: commits.lazy,
            store: MemoryStore::new(),
            scratch: ListScratch::default(),
            slots: Default::default(),
            next_conn: 1,
            next_req: 1,
            closed: BTreeSet::new(),
            lingering: BTreeMap::new(),
            rooms: Vec::new(),
            room_state: Rooms::default(),
            seen_seq: BTreeMap::new(),
            outstanding: BTreeMap::new(),
            last_dm: BTreeMap::new(),
            dms: Vec::new(),
            handed_out: BTreeSet::new(),
            in_flight: None,
            unbatched: VecDeque::new(),
            emitted: 0,
            durable: 0,
            unreleased: VecDeque::new(),
            to_close: VecDeque::new(),
            gone: BTreeSet::new(),
            registered: BTreeMap::new(),
            queued_to: BTreeMap::new(),
            promised_accounts: BTreeSet::new(),
            promised_dms: BTreeSet::new(),
            durably_acked: BTreeSet::new(),
            issued: BTreeSet::new(),
            promised_room_msgs: BTreeSet::new(),
            durably_deleted: BTreeSet::new(),
            durably_added: BTreeSet::new(),
            conn_users: BTreeMap::new(),
        }
    }

    /// Starts the hub afresh with some of the core's deliberate bugs.
    #[cfg(all(test, feature = "inject-bugs"))]
    pub(super) fn inject(&mut self, bugs: impl FnOnce(&mut cove_core::hub::InjectedBugs)) {
        bugs(&mut self.config.bugs);
        let hub = Hub::new(self.config.clone(), 9);
        self.driver = Driver::new(hub, self.driver_config.clone());
    }

    pub(super) fn conn_of(&mut self, slot: usize) -> ConnId {
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

    pub(super) fn slot_of(&self, conn: ConnId) -> Option<usize> {
        self.slots.iter().position(|s| s.conn == Some(conn))
    }

    /// The connection `name` is logged in on.
    pub(super) fn conn_of_user(&self, name: &str) -> Option<ConnId> {
        self.slots
            .iter()
            .find(|s| s.user.is_some_and(|u| USERS[u] == name))
            .and_then(|s| s.conn)
            .or_else(|| {
                let mut lingering = self.lingering.iter();
                lingering.find(|(_, u)| USERS[**u] == name).map(|(c, _)| *c)
            })
    }

    pub(super) fn apply(&mut self, op: &HubOp) {
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
                let event = ServerEvent::Authenticate {
                    name: USERS[user].into(),
                    key,
                    mode,
                    max_frame: cove_core::wire::DEFAULT_MAX_FRAME,
                };
                self.feed(conn, event, Expect::Nothing, Some((slot, user)));
            }
            HubOp::Disconnect { slot } => {
                let slot = usize::from(*slot) % SLOTS;
                if let Some(conn) = self.slots[slot].conn {
                    self.drop_conn(conn);
                }
            }
            HubOp::Request { slot, req } => {
                let slot = usize::from(*slot) % SLOTS;
                let conn = self.conn_of(slot);
                let (request, expect) = self.request(conn, req);
                self.feed(conn, ServerEvent::Request(request), expect, None);
            }
            HubOp::Advance(n) => self.now = self.now + Duration::from_secs(u64::from(*n)),
            HubOp::Restart { applied } => self.restart(*applied),
            HubOp::Batch => self.take_batch(),
            HubOp::Durable => {
                self.make_durable();
                self.settle();
            }
            HubOp::Cut { slot } => {
                let slot = usize::from(*slot) % SLOTS;
                if let Some(conn) = self.slots[slot].conn {
                    self.cut(conn);
                }
            }
            HubOp::StoreFails => self.store_fails(),
        }
        self.check();
    }

    /// The slot's connection drops: the model forgets it at once, and the driver hears
    /// of it as the adapter would tell it.
    pub(super) fn drop_conn(&mut self, conn: ConnId) {
        self.forget_conn(conn);
        self.gone.insert(conn);
        let closed = ServerEvent::Closed {
            code: ErrorCode::ConnectionTerminated,
            by_peer: true,
        };
        self.feed(conn, closed, Expect::Nothing, None);
    }

    /// The adapter could not queue a reply for the connection: the driver cuts it off,
    /// and the adapter closes it and drops what else is addressed to it.
    pub(super) fn cut(&mut self, conn: ConnId) {
        self.forget_conn(conn);
        self.gone.insert(conn);
        self.step(Input::Cut(conn), Expect::Nothing, None);
        self.settle();
    }

    /// The connection is closed or closing: its slot is free and nothing may be
    /// addressed to it any more.
    pub(super) fn forget_conn(&mut self, conn: ConnId) {
        if let Some(slot) = self.slot_of(conn) {
            self.slots[slot] = Slot::default();
        }
        self.closed.insert(conn);
        self.outstanding.remove(&conn);
        self.last_dm.remove(&conn);
    }

    pub(super) fn request(&mut self, conn: ConnId, req: &HubReq) -> (Request, Expect) {
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
                body: vec![*body; sized(*body, 4)].into(),
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
                if self.driver.hub().user_of(conn).is_some()
                    && let Some(set) = self.outstanding.get_mut(&conn)
                {
                    set.remove(&msg_id);
                }
                Request::AckDm { msg_id }
            }
            HubReq::CreateRoom { private } => {
                expect = Expect::Create(conn);
                Request::CreateRoom {
                    req: id,
                    title: "room".into(),
                    private: *private,
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
                expect = Expect::RoomMessage(self.room_message_targets(conn, room));
                Request::RoomMessage {
                    req: id,
                    room,
                    body: vec![7u8; 3].into(),
                }
            }
            HubReq::AckRoom(r, back) => {
                let room = r.resolve(&self.rooms);
                let seen = self.seen_seq.get(&(conn, room)).copied();
                let seq = match back {
                    255 => u64::MAX,
                    b => seen.unwrap_or(0).saturating_sub(u64::from(b % 4)),
                };
                expect = Expect::AckRoom(conn, room, self.ack_room(conn, room, seq));
                Request::AckRoom { room, seq }
            }
            HubReq::Invite(r, name) => Request::InviteMember {
                req: id,
                room: r.resolve(&self.rooms),
                name: name_of(*name).into(),
            },
            HubReq::Remove(r, name) => {
                let room = r.resolve(&self.rooms);
                let target = USERS.iter().position(|u| *u == name_of(*name));
                expect = Expect::Remove {
                    req: id,
                    room,
                    target,
                };
                Request::RemoveMember {
                    req: id,
                    room,
                    name: name_of(*name).into(),
                }
            }
            HubReq::SetTitle(r) => Request::SetRoomTitle {
                req: id,
                room: r.resolve(&self.rooms),
                title: "renamed".into(),
            },
            HubReq::History(r, limit) => {
                let room = r.resolve(&self.rooms);
                let before = (self.room_state.last(room) + 1).saturating_sub(u64::from(limit % 3));
                let count = self
                    .user_on(conn)
                    .filter(|u| self.room_state.is_member(*u, room))
                    .map(|u| {
                        // Without retention a member's history starts after it joined.
                        let first = self.room_state.since(u, room) + 1;
                        let page = u64::from(*limit).min(self.config.history_page as u64);
                        let end = before.min(self.room_state.last(room) + 1);
                        end.saturating_sub(end.saturating_sub(page).max(first))
                    });
                expect = Expect::History {
                    req: id,
                    before,
                    count,
                };
                Request::FetchHistory {
                    req: id,
                    room,
                    before,
                    limit: *limit,
                }
            }
            HubReq::UploadPrekeys(b) => Request::UploadPrekeys {
                req: id,
                bundle: vec![*b; sized(*b, 8)].into(),
            },
            HubReq::FetchPrekeys { name } => Request::FetchPrekeys {
                req: id,
                name: name_of(*name).into(),
            },
        };
        (request, expect)
    }

    pub(super) fn check(&self) {
        let online = self.slots.iter().filter(|s| s.user.is_some()).count() + self.lingering.len();
        let hub = self.driver.hub();
        assert_eq!(hub.online(), online, "online() disagrees with the logins");
        assert!(online <= self.config.max_online);
        self.check_rooms();
        for user in USERS {
            assert!(hub.queued_for(user) <= self.config.max_queue_per_user);
        }
        self.check_pipeline();
    }

    /// Everything durable, a hub restored from the store has the same queues and rooms.
    pub(super) fn check_restore(&mut self) {
        let mut restored = Hub::new(self.config.clone(), 9);
        restored.restore(self.store.records().clone());
        for user in USERS {
            assert_eq!(
                restored.queued_for(user),
                self.driver.hub().queued_for(user),
                "{user}'s queue is not durable"
            );
        }
        for room in &self.rooms {
            let restored: Option<Vec<&str>> = restored.room_members(*room).map(Iterator::collect);
            let live: Option<Vec<&str>> =
                self.driver.hub().room_members(*room).map(Iterator::collect);
            assert_eq!(restored, live, "{room}'s membership is not durable");
        }
    }

    /// The end of the input: everything becomes durable, the store is checked, and
    /// everyone leaves.
    pub(super) fn finish(&mut self) {
        self.flush();
        self.check_restore();
        for slot in 0..SLOTS {
            if let Some(conn) = self.slots[slot].conn {
                self.drop_conn(conn);
            }
        }
        self.flush();
        self.check();
        assert!(
            self.driver.is_drained(),
            "replies or operations left behind"
        );
        // Rooms keep their members: leaving the server is not leaving a room.
        assert_eq!(self.driver.hub().online(), 0);
    }
}
