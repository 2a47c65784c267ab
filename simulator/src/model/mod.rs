//! The reference model: an independent, deliberately simple account of what the hub must
//! do, fed the same inputs, against which every hub output and every client observation is
//! checked.
//!
//! Two layers of checks meet here:
//!
//! - **At the hub boundary**, after each hub step (each event the driver routes to the
//!   hub, observed through `Driver::last_step`), the replies it emitted are compared with
//!   the model: who may join (the cap, invitations, and "full" only when full), the next
//!   sequence number of a room, exactly which room messages, gaps and notices each
//!   connection receives (the window, the cursor, retention), history pages, message IDs
//!   that only grow, DM acks consistent with presence, queues and rooms that survive a
//!   restart exactly as far as they were durable.
//! - **At the clients**, after transport crypto and the network, each client's view is
//!   checked ([`crate::check`]): room messages exactly once per local state and in room
//!   order, gaps announced, history pages in order; direct messages exactly once and in
//!   order per local state; and, after the liveness phase, nothing owed is missing.
//!
//! Rooms are durable: membership lasts until a leave or a removal, every message is logged
//! with its sequence number, and each member has a cursor (the last message it
//! acknowledged). The model keeps the rooms twice: as the hub holds them in memory, and as
//! the disk holds them; a crash turns the first back into the second.
//!
//! The model learns about durability only from the simulated disk ([`Model::seal_batch`]):
//! a batch handed to the disk holds every step since the previous one, and becomes
//! durable when the disk says so — never from the content of the hub's `StoreOp`s (those
//! are only *checked*: each step must write what it changed).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use cove_core::hub::ConnId;

use cove_core::wire::RoomId;
use durability::Writes;

mod direct;
mod durability;
pub(crate) mod expect;
mod hub_step;
mod loads;
mod room_log;
mod rooms;
#[cfg(test)]
mod tests;

/// A broken invariant: which check, and what was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Short name of the invariant.
    pub check: &'static str,
    /// What happened, with the IDs involved.
    pub detail: String,
}

impl Violation {
    /// A violation of `check`.
    pub fn new(check: &'static str, detail: impl Into<String>) -> Violation {
        Violation {
            check,
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.check, self.detail)
    }
}

/// Result of a check.
pub type Checked = Result<(), Violation>;

fn fail(check: &'static str, detail: impl Into<String>) -> Checked {
    Err(Violation::new(check, detail))
}

/// The user index of a simulated user's name (`u<index>`).
pub fn user_of_name(name: &str) -> Option<usize> {
    name.strip_prefix('u')?.parse().ok()
}

/// A direct message the hub accepted.
#[derive(Debug)]
pub struct ModelDm {
    /// Sender.
    pub from: usize,
    /// Recipient.
    pub to: usize,
    /// The body as the hub received it.
    pub body: Arc<[u8]>,
    /// The sender's connection: its ack travels back on it.
    pub via: ConnId,
    /// The `DmQueued` step was committed to the simulated disk.
    pub durable: bool,
    /// The recipient's ack was processed by the hub (volatile until committed).
    pub acked: bool,
    /// The recipient's ack was committed.
    pub ack_durable: bool,
    /// The sender was told "delivered" or "queued": it must arrive.
    pub promised: bool,
    /// The recipient's application has shown it at least once.
    pub shown: bool,
}

/// A member of a room and how far the room's messages reached them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelMember {
    /// The user.
    pub u: usize,
    /// The room's last sequence number when they joined: their interval starts after it.
    pub since: u64,
    /// The highest sequence number they acknowledged.
    pub cursor: u64,
    /// The highest sequence number pushed on their current connection (`cursor` when
    /// offline: a login starts from the cursor).
    pub pushed: u64,
}

/// A room as the model sees it (in the hub's memory, or on the disk).
#[derive(Clone, Debug)]
pub struct ModelRoom {
    /// Incarnation: a fresh number each time a room ID comes into existence.
    pub inc: u64,
    /// The title.
    pub title: Arc<str>,
    /// Joined by invitation only, never listed.
    pub private: bool,
    /// The admin.
    pub admin: usize,
    /// Members in join order.
    pub members: Vec<ModelMember>,
    /// Users with a pending invitation.
    pub invited: BTreeSet<usize>,
    /// The sequence number the next message must carry.
    pub next_seq: u64,
    /// The first sequence number the log retains (`next_seq` while it is empty).
    pub first: u64,
    /// Body bytes the log retains.
    pub log_bytes: usize,
}

impl ModelRoom {
    /// The member record of `u`, if `u` is a member.
    pub fn member(&self, u: usize) -> Option<&ModelMember> {
        self.members.iter().find(|m| m.u == u)
    }

    fn member_mut(&mut self, u: usize) -> Option<&mut ModelMember> {
        self.members.iter_mut().find(|m| m.u == u)
    }

    /// The last sequence number stamped (0 if none).
    pub fn last(&self) -> u64 {
        self.next_seq - 1
    }
}

/// One stamped room message.
#[derive(Clone, Debug)]
pub struct LogEntry {
    /// The sender.
    pub from: usize,
    /// The body.
    pub body: Arc<[u8]>,
    /// Its step was committed.
    pub durable: bool,
}

#[derive(Debug, Default)]
struct ModelUser {
    /// The account exists in the hub's memory.
    exists: bool,
    /// Its creation was committed.
    durable: bool,
    /// Its creation was lost in a crash (until it is created again).
    lost: bool,
    conn: Option<ConnId>,
    rooms: BTreeSet<RoomId>,
    /// Rooms the user holds a pending invitation to.
    invites: BTreeSet<RoomId>,
    /// Unacknowledged DM IDs, oldest first.
    queue: VecDeque<u64>,
}

/// A join the hub sent to a connection, for the client to match when it sees it.
#[derive(Clone, Copy, Debug)]
pub struct JoinNote {
    /// The room.
    pub room: RoomId,
    /// Its incarnation.
    pub inc: u64,
    /// The first sequence number the hub pushes after it (the join's `since + 1`, or at
    /// a login the cursor + 1; a gap may follow).
    pub first_seq: u64,
    /// The member's interval starts after this.
    pub since: u64,
}

/// A history page the hub sent, for the client to check when it sees it.
#[derive(Clone, Debug)]
pub struct HistoryNote {
    /// The room.
    pub room: RoomId,
    /// Its incarnation.
    pub inc: u64,
    /// The `before` asked for.
    pub before: u64,
    /// The asker's interval starts after this.
    pub since: u64,
    /// The first sequence number the log retained when the page was cut.
    pub first_retained: u64,
}

/// The hub's room limits the model mirrors: retention by count and bytes (age and the
/// server-wide byte budget stay at defaults no simulated run reaches), the window, the
/// history page, rooms (per user and in all) and invitations per room.
#[derive(Clone, Copy, Debug)]
pub struct RoomLimits {
    /// Most messages a log retains (at least 1).
    pub max_messages: usize,
    /// Most body bytes a log retains (a lone message is always kept).
    pub max_bytes: usize,
    /// Most of a room's newest messages kept whole in memory (at least 1); older ones
    /// wait for a load from the disk.
    pub memory_messages: usize,
    /// Most body bytes of those (a lone newest message is always kept).
    pub memory_bytes: usize,
    /// Most unacknowledged messages pushed per member per room (at least 1).
    pub window: u64,
    /// Most messages in one history page.
    pub history_page: usize,
    /// Most rooms a user may be in.
    pub max_rooms_per_user: usize,
    /// Most rooms on the server.
    pub max_rooms: usize,
    /// Most pending invitations per room.
    pub max_invites: usize,
}

/// The hub's limits on queued DMs the model mirrors: per recipient in messages and in
/// body bytes, and in body bytes for all recipients together.
#[derive(Clone, Copy, Debug)]
pub struct DmLimits {
    /// Most DMs queued for one user (at least 1).
    pub max_queue: usize,
    /// Most body bytes queued for one user.
    pub max_bytes: usize,
    /// Most body bytes queued for all users together.
    pub max_bytes_total: usize,
}

/// The reference model. See the module docs.
#[derive(Debug)]
pub struct Model {
    capacity: usize,
    dm_limits: DmLimits,
    limits: RoomLimits,
    names: Vec<Arc<str>>,
    users: Vec<ModelUser>,
    conns: BTreeMap<ConnId, usize>,
    /// Live rooms, as the hub holds them in memory.
    pub rooms: BTreeMap<RoomId, ModelRoom>,
    /// Rooms as the disk holds them.
    durable_rooms: BTreeMap<RoomId, ModelRoom>,
    next_inc: u64,
    /// Every room message stamped and not lost: incarnation → (seq-1) → entry.
    log: BTreeMap<u64, Vec<LogEntry>>,
    /// The first message each room incarnation retains on disk (1 until a trim is
    /// durable); kept after the room is gone.
    durable_firsts: BTreeMap<u64, u64>,
    /// Room messages a crash lost (stamped, never durable), by (incarnation, seq).
    lost_log: BTreeMap<(u64, u64), Vec<LogEntry>>,
    /// Every accepted DM by ID.
    pub dms: BTreeMap<u64, ModelDm>,
    /// Highest message ID the hub handed out in its current life.
    max_id_life: u64,
    /// Highest message ID whose step was committed.
    max_id_durable: u64,
    /// What steps since the last batch was handed to the disk changed.
    unbatched: Writes,
    /// The batch the disk is making durable, and what its steps changed.
    in_flight: Option<(u64, Writes)>,
    /// DMs a crash lost (accepted, never durable), by ID; IDs are reused after a crash.
    lost_dms: BTreeMap<u64, Vec<ModelDm>>,
    /// Joins sent per connection, in order.
    join_notes: BTreeMap<ConnId, VecDeque<JoinNote>>,
    /// History pages sent, by connection and request.
    history_notes: BTreeMap<(ConnId, u32), HistoryNote>,
    /// The last `AckRoom` each connection sent per room.
    last_acks: BTreeMap<(ConnId, RoomId), u64>,
    /// Rooms in creation order, with their incarnation: what the workload picks from.
    /// Dead entries are dropped lazily (see [`Model::directory_entry`]).
    directory: Vec<(RoomId, u64)>,
    directory_dead: usize,
    /// Rooms ever created.
    pub rooms_created: u64,
    /// Room messages ever stamped.
    pub room_messages: u64,
    /// Public rooms that are not the model's (the end-to-end encrypted users'), which
    /// room lists show too; set by the simulator before each `ListRooms` step.
    pub foreign_public: BTreeSet<RoomId>,
    /// Reads from the disk per room incarnation.
    loads: BTreeMap<u64, loads::RoomLoads>,
    /// Loads the current step asked for: room, incarnation, from, to.
    requested: Vec<(RoomId, u64, u64, u64)>,
}

impl Model {
    /// A model of an empty server with `users` simulated users.
    pub fn new(users: usize, capacity: usize, dm_limits: DmLimits, limits: RoomLimits) -> Model {
        Model {
            capacity,
            dm_limits,
            limits,
            names: (0..users).map(|i| Arc::from(format!("u{i}"))).collect(),
            users: (0..users).map(|_| ModelUser::default()).collect(),
            conns: BTreeMap::new(),
            rooms: BTreeMap::new(),
            durable_rooms: BTreeMap::new(),
            next_inc: 1,
            log: BTreeMap::new(),
            durable_firsts: BTreeMap::new(),
            lost_log: BTreeMap::new(),
            dms: BTreeMap::new(),
            max_id_life: 0,
            max_id_durable: 0,
            unbatched: Writes::default(),
            in_flight: None,
            lost_dms: BTreeMap::new(),
            join_notes: BTreeMap::new(),
            history_notes: BTreeMap::new(),
            last_acks: BTreeMap::new(),
            directory: Vec::new(),
            directory_dead: 0,
            rooms_created: 0,
            room_messages: 0,
            foreign_public: BTreeSet::new(),
            loads: BTreeMap::new(),
            requested: Vec::new(),
        }
    }

    /// The name of user `u`.
    pub fn name(&self, u: usize) -> &Arc<str> {
        &self.names[u]
    }

    /// The room capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Most messages in one history page.
    pub fn history_page(&self) -> usize {
        self.limits.history_page
    }

    /// Whether `u`'s account exists in the hub's memory.
    pub fn exists(&self, u: usize) -> bool {
        self.users[u].exists
    }

    /// Unacknowledged DMs the model expects the hub to hold for `u`.
    pub fn queue_len(&self, u: usize) -> usize {
        self.users[u].queue.len()
    }

    /// Rooms `u` is in, per the model.
    pub fn rooms_of(&self, u: usize) -> &BTreeSet<RoomId> {
        &self.users[u].rooms
    }

    /// The connection `u` is logged in on, per the model.
    pub fn conn_of(&self, u: usize) -> Option<ConnId> {
        self.users[u].conn
    }

    /// Length of the room directory (live and not yet dropped dead rooms, oldest first).
    pub fn directory_len(&self) -> usize {
        self.directory.len()
    }

    /// The room at `rank` in the directory, if it is still live.
    pub fn directory_entry(&self, rank: usize) -> Option<RoomId> {
        let (room, inc) = *self.directory.get(rank)?;
        self.rooms.get(&room).filter(|r| r.inc == inc).map(|_| room)
    }

    /// The next join the hub sent to `conn` for `room`, consumed by the client seeing it.
    pub fn take_join_note(&mut self, conn: ConnId, room: RoomId) -> Option<JoinNote> {
        let notes = self.join_notes.get_mut(&conn)?;
        let pos = notes.iter().position(|n| n.room == room)?;
        notes.remove(pos)
    }

    /// The history page the hub sent `conn` for request `req`, consumed by the client.
    pub fn take_history_note(&mut self, conn: ConnId, req: u32) -> Option<HistoryNote> {
        self.history_notes.remove(&(conn, req))
    }

    /// The history page the hub sent `conn` for request `req`, if it is still expected.
    pub fn history_note(&self, conn: ConnId, req: u32) -> Option<&HistoryNote> {
        self.history_notes.get(&(conn, req))
    }

    /// Forgets the notes of a connection that is gone on the client side.
    pub fn forget_conn_notes(&mut self, conn: ConnId) {
        self.join_notes.remove(&conn);
        let reqs: Vec<u32> = self
            .history_notes
            .range((conn, 0)..=(conn, u32::MAX))
            .map(|((_, req), _)| *req)
            .collect();
        for req in reqs {
            self.history_notes.remove(&(conn, req));
        }
    }

    /// The room message stamped `seq` in incarnation `inc`, unless a crash lost it.
    pub fn room_message(&self, inc: u64, seq: u64) -> Option<&LogEntry> {
        let i = usize::try_from(seq.checked_sub(1)?).ok()?;
        self.log.get(&inc)?.get(i)
    }

    /// The room messages stamped `seq` in incarnation `inc` that crashes lost.
    pub fn lost_room_messages(&self, inc: u64, seq: u64) -> &[LogEntry] {
        self.lost_log.get(&(inc, seq)).map_or(&[], |v| v.as_slice())
    }

    /// The durable room `room` if it is incarnation `inc`.
    fn durable_room(&self, room: RoomId, inc: u64) -> Option<&ModelRoom> {
        self.durable_rooms.get(&room).filter(|r| r.inc == inc)
    }

    /// The durable cursor of `u` in `room` (incarnation `inc`), 0 if not a durable member.
    pub fn durable_cursor(&self, room: RoomId, inc: u64, u: usize) -> u64 {
        self.durable_room(room, inc)
            .and_then(|r| r.member(u))
            .map_or(0, |m| m.cursor)
    }

    /// The first message of room incarnation `inc` the disk retains: messages before it
    /// are gone for good.
    pub fn durable_first(&self, inc: u64) -> u64 {
        self.durable_firsts.get(&inc).copied().unwrap_or(1)
    }

    /// The first message of live `room` (incarnation `inc`) the hub's memory retains.
    pub fn live_first(&self, room: RoomId, inc: u64) -> Option<u64> {
        self.rooms
            .get(&room)
            .filter(|r| r.inc == inc)
            .map(|r| r.first)
    }

    /// Rooms administered by `u` in which it is a member, oldest first.
    pub fn admin_rooms(&self, u: usize) -> Vec<RoomId> {
        self.users[u]
            .rooms
            .iter()
            .copied()
            .filter(|r| self.rooms.get(r).is_some_and(|r| r.admin == u))
            .collect()
    }

    fn note_join(&mut self, conn: ConnId, note: JoinNote) {
        self.join_notes.entry(conn).or_default().push_back(note);
    }

    /// The sender learned its DM was accepted: it must now arrive.
    pub fn promise(&mut self, msg_id: u64) {
        if let Some(dm) = self.dms.get_mut(&msg_id) {
            dm.promised = true;
        }
    }
}
