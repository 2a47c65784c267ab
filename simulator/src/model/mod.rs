//! The reference model: an independent, deliberately simple account of what the hub must
//! do, fed the same inputs, against which every hub output and every client observation is
//! checked.
//!
//! Two layers of checks meet here:
//!
//! - **At the hub boundary**, after each hub step (each event the driver routes to the
//!   hub, observed through `Driver::last_step`), the replies it emitted are compared with
//!   the model: who may join (the cap, and "full" only when full), the next
//!   sequence number of a room and exactly which connections receive it, message IDs that
//!   only grow, DM acks consistent with presence, queues that survive a restart exactly as
//!   far as they were durable.
//! - **At the clients**, after transport crypto and the network, each client's view is
//!   checked: room messages only while a member, gapless and in the room's one order, with
//!   the same sender and body every other member saw; direct messages exactly once and in
//!   order per local state; and, after the liveness phase, nothing promised is missing.
//!
//! The model learns about durability only from the simulated disk ([`Model::seal_batch`]):
//! a batch handed to the disk holds every step since the previous one, and becomes
//! durable when the disk says so — never from the content of the hub's `StoreOp`s.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use cove_core::hub::ConnId;

use cove_core::wire::RoomId;
use durability::Writes;

mod durability;
mod hub_step;
#[cfg(test)]
mod tests;

/// One stamped room message: its sender and body.
pub type Stamped = (usize, Arc<[u8]>);

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

/// A room as the model sees it.
#[derive(Debug)]
pub struct ModelRoom {
    /// Incarnation: a fresh number each time a room ID comes into existence.
    pub inc: u64,
    /// Members in join order, with the connection each is in the room through.
    pub members: Vec<(usize, ConnId)>,
    /// The sequence number the next message must carry.
    pub next_seq: u64,
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
    /// The first sequence number the joiner must see.
    pub first_seq: u64,
}

/// The reference model. See the module docs.
#[derive(Debug)]
pub struct Model {
    capacity: usize,
    max_queue: usize,
    names: Vec<Arc<str>>,
    users: Vec<ModelUser>,
    conns: BTreeMap<ConnId, usize>,
    /// Live rooms.
    pub rooms: BTreeMap<RoomId, ModelRoom>,
    next_inc: u64,
    /// Every room message ever stamped: incarnation → (seq-1) → (sender, body).
    log: BTreeMap<u64, Vec<Stamped>>,
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
    /// Rooms in creation order, with their incarnation: what the workload picks from.
    /// Dead entries are dropped lazily (see [`Model::directory_entry`]).
    directory: Vec<(RoomId, u64)>,
    directory_dead: usize,
    /// Rooms ever created.
    pub rooms_created: u64,
    /// Room messages ever stamped.
    pub room_messages: u64,
}

impl Model {
    /// A model of an empty server with `users` simulated users.
    pub fn new(users: usize, capacity: usize, max_queue: usize) -> Model {
        Model {
            capacity,
            max_queue,
            names: (0..users).map(|i| Arc::from(format!("u{i}"))).collect(),
            users: (0..users).map(|_| ModelUser::default()).collect(),
            conns: BTreeMap::new(),
            rooms: BTreeMap::new(),
            next_inc: 1,
            log: BTreeMap::new(),
            dms: BTreeMap::new(),
            max_id_life: 0,
            max_id_durable: 0,
            unbatched: Writes::default(),
            in_flight: None,
            lost_dms: BTreeMap::new(),
            join_notes: BTreeMap::new(),
            directory: Vec::new(),
            directory_dead: 0,
            rooms_created: 0,
            room_messages: 0,
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

    /// Forgets the join notes of a connection that is gone on the client side.
    pub fn forget_conn_notes(&mut self, conn: ConnId) {
        self.join_notes.remove(&conn);
    }

    /// The room message stamped `seq` in incarnation `inc`.
    pub fn room_message(&self, inc: u64, seq: u64) -> Option<&Stamped> {
        let i = usize::try_from(seq.checked_sub(1)?).ok()?;
        self.log.get(&inc)?.get(i)
    }

    fn note_join(&mut self, conn: ConnId, note: JoinNote) {
        self.join_notes.entry(conn).or_default().push_back(note);
    }

    fn remove_member(&mut self, room: RoomId, u: usize) -> Vec<ConnId> {
        self.users[u].rooms.remove(&room);
        let Some(r) = self.rooms.get_mut(&room) else {
            return Vec::new();
        };
        r.members.retain(|(m, _)| *m != u);
        let rest: Vec<ConnId> = r.members.iter().map(|(_, c)| *c).collect();
        if r.members.is_empty() {
            self.rooms.remove(&room);
            self.directory_dead += 1;
            if self.directory_dead * 2 > self.directory.len() {
                let rooms = &self.rooms;
                self.directory
                    .retain(|(d, inc)| rooms.get(d).is_some_and(|r| r.inc == *inc));
                self.directory_dead = 0;
            }
        }
        rest
    }

    /// The sender learned its DM was accepted: it must now arrive.
    pub fn promise(&mut self, msg_id: u64) {
        if let Some(dm) = self.dms.get_mut(&msg_id) {
            dm.promised = true;
        }
    }
}
