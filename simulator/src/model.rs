//! The reference model: an independent, deliberately simple account of what the hub must
//! do, fed the same inputs, against which every hub output and every client observation is
//! checked.
//!
//! Two layers of checks meet here:
//!
//! - **At the hub boundary**, after each `Hub::handle_*` call, the replies it emitted are
//!   compared with the model: who may join (the cap, and "full" only when full), the next
//!   sequence number of a room and exactly which connections receive it, message IDs that
//!   only grow, DM acks consistent with presence, queues that survive a restart exactly as
//!   far as they were durable.
//! - **At the clients**, after transport crypto and the network, each client's view is
//!   checked: room messages only while a member, gapless and in the room's one order, with
//!   the same sender and body every other member saw; direct messages exactly once and in
//!   order per local state; and, after the liveness phase, nothing promised is missing.
//!
//! The model learns about durability only from the simulated disk's commits (the adapter's
//! write-ahead rule), never from the content of the hub's `StoreOp`s.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use cove_core::hub::{ConnId, Reply, Request};
use cove_core::wire::{AckStatus, AuthMode, ErrorCode, RoomId};

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
    uncommitted_dms: Vec<u64>,
    uncommitted_acks: Vec<u64>,
    uncommitted_accounts: Vec<usize>,
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

fn find(deliveries: &[(ConnId, Reply)], conn: ConnId) -> impl Iterator<Item = &Reply> {
    deliveries
        .iter()
        .filter(move |(c, _)| *c == conn)
        .map(|(_, r)| r)
}

fn error_code(deliveries: &[(ConnId, Reply)], conn: ConnId) -> Option<ErrorCode> {
    find(deliveries, conn).find_map(|r| match r {
        Reply::Error { code, .. } => Some(*code),
        _ => None,
    })
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
            uncommitted_dms: Vec::new(),
            uncommitted_acks: Vec::new(),
            uncommitted_accounts: Vec::new(),
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

    /// Checks that `deliveries` hold exactly one `MemberLeft{room, name}` per expected
    /// remaining member connection.
    fn check_member_notices(
        &self,
        deliveries: &[(ConnId, Reply)],
        expected: &mut Vec<(RoomId, ConnId)>,
        joined: bool,
        name: &str,
    ) -> Checked {
        let mut got: Vec<(RoomId, ConnId)> = deliveries
            .iter()
            .filter_map(|(c, r)| match r {
                Reply::MemberLeft { room, name: n } if !joined && &**n == name => Some((*room, *c)),
                Reply::MemberJoined { room, name: n } if joined && &**n == name => {
                    Some((*room, *c))
                }
                _ => None,
            })
            .collect();
        got.sort();
        expected.sort();
        if got != *expected {
            return fail(
                "membership notices",
                format!(
                    "{} of {name}: hub told {got:?}, members to tell were {expected:?}",
                    if joined { "join" } else { "departure" }
                ),
            );
        }
        Ok(())
    }

    fn disconnect(&mut self, conn: ConnId, deliveries: &[(ConnId, Reply)]) -> Checked {
        let Some(u) = self.conns.remove(&conn) else {
            return Ok(());
        };
        self.users[u].conn = None;
        let rooms: Vec<RoomId> = self.users[u].rooms.iter().copied().collect();
        let mut expected = Vec::new();
        for room in rooms {
            for c in self.remove_member(room, u) {
                expected.push((room, c));
            }
        }
        let name = self.names[u].clone();
        self.check_member_notices(deliveries, &mut expected, false, &name)
    }

    /// Checks every `IncomingDm` and stray `RoomMessage` among one step's deliveries.
    fn check_generic(&self, deliveries: &[(ConnId, Reply)], room_step: bool) -> Checked {
        for (conn, reply) in deliveries {
            match reply {
                Reply::IncomingDm {
                    msg_id, from, body, ..
                } => {
                    let Some(dm) = self.dms.get(msg_id) else {
                        return fail("dm integrity", format!("hub pushed unknown DM {msg_id}"));
                    };
                    let to = self.conns.get(conn).copied();
                    if to != Some(dm.to) {
                        return fail(
                            "dm to wrong user",
                            format!(
                                "DM {msg_id} for u{} pushed to {conn:?} (user {to:?})",
                                dm.to
                            ),
                        );
                    }
                    if dm.acked {
                        return fail("dm after ack", format!("DM {msg_id} pushed after its ack"));
                    }
                    if **from != *self.names[dm.from] || *body != dm.body {
                        return fail("dm integrity", format!("DM {msg_id} altered by the hub"));
                    }
                }
                Reply::RoomMessage { room, seq, .. } if !room_step => {
                    return fail(
                        "delivery to non-member",
                        format!(
                            "room message {room:?}#{seq} delivered to {conn:?} outside a room post"
                        ),
                    );
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The hub handled a connection's authentication.
    pub fn on_connect(
        &mut self,
        conn: ConnId,
        u: usize,
        mode: AuthMode,
        deliveries: &[(ConnId, Reply)],
    ) -> Checked {
        let result = find(deliveries, conn).find_map(|r| match r {
            Reply::Auth { result, .. } => Some(*result),
            _ => None,
        });
        let Some(result) = result else {
            return fail("auth answered", format!("no Auth reply to {conn:?} (u{u})"));
        };
        match result {
            Ok(pending) => {
                match mode {
                    AuthMode::Register if self.users[u].exists => {
                        return fail("accounts", format!("u{u} registered twice"));
                    }
                    AuthMode::Login if !self.users[u].exists => {
                        return fail("accounts", format!("login of unknown u{u} accepted"));
                    }
                    AuthMode::Register => {
                        self.users[u].exists = true;
                        self.uncommitted_accounts.push(u);
                    }
                    _ => {}
                }
                if let Some(old) = self.users[u].conn {
                    let closed = find(deliveries, old).any(|r| {
                        matches!(
                            r,
                            Reply::Close {
                                code: ErrorCode::AlreadyConnected
                            }
                        )
                    });
                    if !closed {
                        return fail(
                            "accounts",
                            format!("u{u} logged in twice; {old:?} not closed"),
                        );
                    }
                    self.disconnect(old, deliveries)?;
                }
                self.users[u].conn = Some(conn);
                self.conns.insert(conn, u);
                let expected = self.users[u].queue.len();
                if pending as usize != expected {
                    return fail(
                        "offline queue",
                        format!("u{u} told {pending} pending DMs, model has {expected}"),
                    );
                }
            }
            Err(ErrorCode::UserExists) if !self.users[u].exists => {
                return fail(
                    "accounts",
                    format!("u{u} refused as existing but has no account"),
                );
            }
            Err(ErrorCode::UserNotFound) if self.users[u].exists => {
                return fail(
                    "accounts",
                    format!("login of existing u{u} refused as unknown"),
                );
            }
            Err(ErrorCode::AuthFailed) => {
                return fail("accounts", format!("u{u} refused with its own key"));
            }
            Err(_) => {}
        }
        self.check_generic(deliveries, false)
    }

    /// The hub handled a closed connection.
    pub fn on_disconnect(&mut self, conn: ConnId, deliveries: &[(ConnId, Reply)]) -> Checked {
        self.disconnect(conn, deliveries)?;
        self.check_generic(deliveries, false)
    }

    /// The hub handled a request from `conn`.
    pub fn on_request(
        &mut self,
        conn: ConnId,
        request: &Request,
        deliveries: &[(ConnId, Reply)],
    ) -> Checked {
        let Some(&u) = self.conns.get(&conn) else {
            return self.check_generic(deliveries, false);
        };
        let mut room_step = false;
        match request {
            Request::CreateRoom { .. } => {
                let joined = find(deliveries, conn).find_map(|r| match r {
                    Reply::RoomJoined { room, members, .. } => Some((*room, members.clone())),
                    _ => None,
                });
                if let Some((room, members)) = joined {
                    if self.rooms.contains_key(&room) {
                        return fail("rooms", format!("created {room:?}, which is live"));
                    }
                    if members.len() != 1 || *members[0] != *self.names[u] {
                        return fail(
                            "rooms",
                            format!("new room {room:?} has members {members:?}"),
                        );
                    }
                    let inc = self.next_inc;
                    self.next_inc += 1;
                    self.rooms_created += 1;
                    self.rooms.insert(
                        room,
                        ModelRoom {
                            inc,
                            members: vec![(u, conn)],
                            next_seq: 1,
                        },
                    );
                    self.log.insert(inc, Vec::new());
                    self.users[u].rooms.insert(room);
                    self.directory.push((room, inc));
                    self.note_join(
                        conn,
                        JoinNote {
                            room,
                            inc,
                            first_seq: 1,
                        },
                    );
                }
            }
            Request::JoinRoom { room, .. } => {
                let room = *room;
                let joined = find(deliveries, conn).find_map(|r| match r {
                    Reply::RoomJoined { members, .. } => Some(members.clone()),
                    _ => None,
                });
                let live = self.rooms.get(&room);
                let count = live.map_or(0, |r| r.members.len());
                let member = live.is_some_and(|r| r.members.iter().any(|(m, _)| *m == u));
                if let Some(members) = joined {
                    let Some(r) = live else {
                        return fail(
                            "rooms",
                            format!("u{u} joined {room:?}, which does not exist"),
                        );
                    };
                    if member {
                        return fail("rooms", format!("u{u} joined {room:?} twice"));
                    }
                    if count >= self.capacity {
                        return fail(
                            "room cap",
                            format!(
                                "u{u} admitted to {room:?} with {count} members already (cap {})",
                                self.capacity
                            ),
                        );
                    }
                    let mut expected: Vec<(RoomId, ConnId)> =
                        r.members.iter().map(|(_, c)| (room, *c)).collect();
                    let inc = r.inc;
                    let first_seq = r.next_seq;
                    let name = self.names[u].clone();
                    self.check_member_notices(deliveries, &mut expected, true, &name)?;
                    if let Some(r) = self.rooms.get_mut(&room) {
                        r.members.push((u, conn));
                        let want: Vec<&str> =
                            r.members.iter().map(|(m, _)| &*self.names[*m]).collect();
                        let got: Vec<&str> = members.iter().map(|m| &**m).collect();
                        if want != got {
                            return fail(
                                "rooms",
                                format!("{room:?} joined with members {got:?}, model {want:?}"),
                            );
                        }
                    }
                    self.users[u].rooms.insert(room);
                    self.note_join(
                        conn,
                        JoinNote {
                            room,
                            inc,
                            first_seq,
                        },
                    );
                } else {
                    match error_code(deliveries, conn) {
                        Some(ErrorCode::RoomFull) if count < self.capacity => {
                            return fail(
                                "room cap",
                                format!(
                                    "u{u} refused {room:?} as full with {count} of {} members",
                                    self.capacity
                                ),
                            );
                        }
                        Some(ErrorCode::RoomNotFound) if live.is_some() => {
                            return fail("rooms", format!("live room {room:?} reported not found"));
                        }
                        Some(ErrorCode::AlreadyInRoom) if !member => {
                            return fail("rooms", format!("u{u} told already in {room:?}"));
                        }
                        Some(_) => {}
                        None => {
                            return fail("rooms", format!("join of {room:?} by u{u} unanswered"));
                        }
                    }
                }
            }
            Request::LeaveRoom { room, .. } => {
                let room = *room;
                let left = find(deliveries, conn).any(|r| matches!(r, Reply::RoomLeft { .. }));
                let member = self.users[u].rooms.contains(&room);
                if left {
                    if !member {
                        return fail("rooms", format!("u{u} left {room:?} without being in it"));
                    }
                    let mut expected: Vec<(RoomId, ConnId)> = self
                        .remove_member(room, u)
                        .into_iter()
                        .map(|c| (room, c))
                        .collect();
                    let name = self.names[u].clone();
                    self.check_member_notices(deliveries, &mut expected, false, &name)?;
                } else if member {
                    return fail("rooms", format!("member u{u} could not leave {room:?}"));
                }
            }
            Request::RoomMessage { room, body, .. } => {
                room_step = true;
                let room = *room;
                type Stamp<'d> = (ConnId, u64, &'d Arc<str>, &'d Arc<[u8]>);
                let stamped: Vec<Stamp<'_>> = deliveries
                    .iter()
                    .filter_map(|(c, r)| match r {
                        Reply::RoomMessage {
                            room: rr,
                            seq,
                            from,
                            body,
                            ..
                        } if *rr == room => Some((*c, *seq, from, body)),
                        _ => None,
                    })
                    .collect();
                let member = self.users[u].rooms.contains(&room);
                if stamped.is_empty() {
                    if member {
                        return fail("rooms", format!("post by member u{u} to {room:?} refused"));
                    }
                } else {
                    let Some(r) = self.rooms.get_mut(&room) else {
                        return fail(
                            "delivery to non-member",
                            format!("post to dead room {room:?} delivered"),
                        );
                    };
                    if !member {
                        return fail(
                            "rooms",
                            format!("post by non-member u{u} to {room:?} accepted"),
                        );
                    }
                    let seq = r.next_seq;
                    let mut want: Vec<ConnId> = r.members.iter().map(|(_, c)| *c).collect();
                    let mut got: Vec<ConnId> = Vec::with_capacity(stamped.len());
                    for (c, s, from, b) in &stamped {
                        if *s != seq {
                            return fail(
                                "room order",
                                format!("{room:?} message stamped #{s}, expected #{seq}"),
                            );
                        }
                        if ***from != *self.names[u] || **b != *body {
                            return fail(
                                "room integrity",
                                format!("{room:?}#{seq} altered by the hub"),
                            );
                        }
                        got.push(*c);
                    }
                    want.sort();
                    got.sort();
                    if want != got {
                        let extra: Vec<_> = got.iter().filter(|c| !want.contains(c)).collect();
                        let missing: Vec<_> = want.iter().filter(|c| !got.contains(c)).collect();
                        let check = if extra.is_empty() {
                            "room delivery"
                        } else {
                            "delivery to non-member"
                        };
                        return fail(
                            check,
                            format!(
                                "{room:?}#{seq} from u{u}: sent to non-members {extra:?}, \
                                 not sent to members {missing:?} ({} copies, {} members)",
                                got.len(),
                                want.len()
                            ),
                        );
                    }
                    r.next_seq += 1;
                    self.room_messages += 1;
                    let inc = r.inc;
                    self.log.entry(inc).or_default().push((u, body.clone()));
                }
            }
            Request::SendDm { to, body, .. } => {
                let ack = find(deliveries, conn).find_map(|r| match r {
                    Reply::MessageAck { msg_id, status, .. } => Some((*msg_id, *status)),
                    _ => None,
                });
                let Some((msg_id, status)) = ack else {
                    return fail("dm ack", format!("DM from u{u} unanswered"));
                };
                let target = user_of_name(to).filter(|t| *t < self.users.len());
                let exists = target.is_some_and(|t| self.users[t].exists);
                if status == AckStatus::Failed {
                    match error_code(deliveries, conn) {
                        Some(ErrorCode::UserNotFound) if exists => {
                            return fail(
                                "dm ack",
                                format!("DM to existing {to} refused as unknown"),
                            );
                        }
                        Some(ErrorCode::QueueFull)
                            if target
                                .is_some_and(|t| self.users[t].queue.len() < self.max_queue) =>
                        {
                            return fail("dm ack", format!("DM to {to} refused as queue full"));
                        }
                        _ => {}
                    }
                } else {
                    let Some(t) = target.filter(|_| exists) else {
                        return fail("dm ack", format!("DM to unknown {to} accepted"));
                    };
                    if msg_id <= self.max_id_life || msg_id <= self.max_id_durable {
                        return fail(
                            "message ids",
                            format!(
                                "DM id {msg_id} not above {} (this life) / {} (durable)",
                                self.max_id_life, self.max_id_durable
                            ),
                        );
                    }
                    let online = self.users[t].conn.is_some();
                    if (status == AckStatus::Delivered) != online {
                        return fail(
                            "dm ack",
                            format!("DM {msg_id} to {to} acked {status:?} while online={online}"),
                        );
                    }
                    self.max_id_life = msg_id;
                    self.users[t].queue.push_back(msg_id);
                    self.uncommitted_dms.push(msg_id);
                    self.dms.insert(
                        msg_id,
                        ModelDm {
                            from: u,
                            to: t,
                            body: body.clone(),
                            durable: false,
                            acked: false,
                            ack_durable: false,
                            promised: false,
                            shown: false,
                        },
                    );
                }
            }
            Request::AckDm { msg_id } => {
                let q = &mut self.users[u].queue;
                if let Some(pos) = q.iter().position(|id| id == msg_id) {
                    q.remove(pos);
                    if let Some(dm) = self.dms.get_mut(msg_id) {
                        dm.acked = true;
                    }
                    self.uncommitted_acks.push(*msg_id);
                }
            }
            Request::Logout => self.disconnect(conn, deliveries)?,
            _ => {}
        }
        self.check_generic(deliveries, room_step)
    }

    /// The simulated disk committed every step so far.
    pub fn commit(&mut self) {
        for u in self.uncommitted_accounts.drain(..) {
            self.users[u].durable = true;
        }
        for id in self.uncommitted_dms.drain(..) {
            if let Some(dm) = self.dms.get_mut(&id) {
                dm.durable = true;
                self.max_id_durable = self.max_id_durable.max(id);
            }
        }
        for id in self.uncommitted_acks.drain(..) {
            if let Some(dm) = self.dms.get_mut(&id) {
                dm.ack_durable = true;
            }
        }
    }

    /// The server crashed: everything not committed is gone, and every connection.
    /// (Join notes stay: replies already on the wire still reach their clients.)
    pub fn crash(&mut self) {
        for u in self.uncommitted_accounts.drain(..) {
            self.users[u].exists = false;
        }
        for id in self.uncommitted_dms.drain(..) {
            self.dms.remove(&id);
        }
        self.uncommitted_acks.clear();
        self.conns.clear();
        self.rooms.clear();
        self.directory.clear();
        self.directory_dead = 0;
        self.max_id_life = 0;
        for user in &mut self.users {
            user.exists = user.durable;
            user.conn = None;
            user.rooms.clear();
            user.queue.clear();
        }
        for (id, dm) in &mut self.dms {
            if dm.durable && !dm.ack_durable {
                dm.acked = false;
                self.users[dm.to].queue.push_back(*id);
            }
        }
    }

    /// The sender learned its DM was accepted: it must now arrive.
    pub fn promise(&mut self, msg_id: u64) {
        if let Some(dm) = self.dms.get_mut(&msg_id) {
            dm.promised = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn crash_keeps_exactly_the_committed_queue() {
        let mut m = Model::new(2, 20, 10);
        login(&mut m, 1, 0);
        m.commit();
        let send = |id| {
            [(
                ConnId(1),
                Reply::MessageAck {
                    req: 1,
                    msg_id: id,
                    status: AckStatus::Queued,
                },
            )]
        };
        let dm = Request::SendDm {
            req: 1,
            to: "u1".into(),
            body: Arc::from(&b"b"[..]),
        };
        // u1 does not exist yet: accepted DMs to it are a violation.
        assert!(m.on_request(ConnId(1), &dm, &send(1)).is_err());
        login(&mut m, 2, 1);
        m.on_disconnect(ConnId(2), &[]).unwrap();
        m.on_request(ConnId(1), &dm, &send(2)).unwrap();
        m.commit();
        m.on_request(ConnId(1), &dm, &send(3)).unwrap();
        assert_eq!(m.queue_len(1), 2);
        m.crash();
        assert_eq!(m.queue_len(1), 1);
        assert!(m.dms.contains_key(&2) && !m.dms.contains_key(&3));
    }
}
