//! What the simulator knows of the end-to-end encrypted rooms (those an encrypted user
//! created, direct conversations included), from the hub's store ops as each step emits
//! them: privacy, admin, members, whether the group is published, and where Commits and
//! Welcomes sit in each log. The encrypted users' workload picks rooms from it, the
//! plaintext model learns which listed rooms are not its own, and the decryption checker
//! asks it what a retention gap dropped. A server restart rebuilds it from the disk.

use std::collections::{BTreeMap, BTreeSet};

use cove_core::store::{Records, StoreOp};
use cove_core::wire::RoomId;
use cove_core::wire::mls::{ContentType, WireFormat, message_header, wire_format};

use crate::model::user_of_name;

/// What one room log entry is, read from its cleartext MLS header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EntryKind {
    /// An application message (a `PrivateMessage` of application data) of this epoch.
    Application { epoch: u64 },
    /// A Commit made in this epoch.
    Commit { epoch: u64 },
    /// A Welcome.
    Welcome,
    /// Anything else (not MLS: a body from before the group was published).
    Other,
}

impl EntryKind {
    /// Classifies a room log entry's body.
    pub(crate) fn of(body: &[u8]) -> EntryKind {
        if wire_format(body) == Ok(WireFormat::Welcome) {
            return EntryKind::Welcome;
        }
        match message_header(body) {
            Ok(h) if h.content_type == ContentType::Commit => EntryKind::Commit { epoch: h.epoch },
            Ok(h)
                if h.content_type == ContentType::Application
                    && h.wire_format == WireFormat::PrivateMessage =>
            {
                EntryKind::Application { epoch: h.epoch }
            }
            _ => EntryKind::Other,
        }
    }

    /// The epoch a Commit or an application message was made in.
    pub(crate) fn epoch(self) -> Option<u64> {
        match self {
            EntryKind::Application { epoch } | EntryKind::Commit { epoch } => Some(epoch),
            _ => None,
        }
    }
}

/// One encrypted room.
#[derive(Clone, Debug)]
pub(crate) struct SecureRoom {
    /// Joined by invitation only (direct conversations are private too).
    pub(crate) private: bool,
    /// A direct conversation of two.
    pub(crate) direct: bool,
    /// The admin (a user index).
    pub(crate) admin: usize,
    /// Its group is published (`InitGroup` or `OpenDirect` accepted).
    pub(crate) group: bool,
    /// Members, by user index.
    pub(crate) members: BTreeSet<usize>,
    /// Sequence numbers of its Commits and Welcomes (kept past retention: a gap asks
    /// which of them it dropped).
    pub(crate) changes: BTreeSet<u64>,
}

/// The encrypted rooms as the hub holds them in memory. See the module docs.
#[derive(Debug, Default)]
pub(crate) struct SecureRooms {
    rooms: BTreeMap<RoomId, SecureRoom>,
    /// Public rooms with a published group, oldest first: what encrypted users join.
    /// Rooms gone or private are dropped lazily.
    directory: Vec<RoomId>,
}

impl SecureRooms {
    /// Applies one store op of a hub step; `secure(u)`: user `u` runs end-to-end
    /// encryption (a room is encrypted when such a user created it).
    pub(crate) fn apply(&mut self, op: &StoreOp, secure: impl Fn(usize) -> bool) {
        match op {
            StoreOp::RoomCreated {
                room,
                private,
                admin,
                ..
            } => {
                self.rooms.remove(room);
                if let Some(a) = user_of_name(admin).filter(|a| secure(*a)) {
                    self.rooms.insert(
                        *room,
                        SecureRoom {
                            private: *private,
                            direct: false,
                            admin: a,
                            group: false,
                            members: BTreeSet::new(),
                            changes: BTreeSet::new(),
                        },
                    );
                }
            }
            StoreOp::RoomDeleted { room } => {
                self.rooms.remove(room);
            }
            StoreOp::DirectCreated { room } => {
                if let Some(r) = self.rooms.get_mut(room) {
                    r.direct = true;
                }
            }
            StoreOp::MemberAdded { room, name, .. } => {
                if let (Some(r), Some(u)) = (self.rooms.get_mut(room), user_of_name(name)) {
                    r.members.insert(u);
                }
            }
            StoreOp::MemberRemoved { room, name } => {
                if let (Some(r), Some(u)) = (self.rooms.get_mut(room), user_of_name(name)) {
                    r.members.remove(&u);
                }
            }
            StoreOp::RoomAdminSet { room, admin } => {
                if let (Some(r), Some(a)) = (self.rooms.get_mut(room), user_of_name(admin)) {
                    r.admin = a;
                }
            }
            StoreOp::GroupSet { room, .. } => {
                if let Some(r) = self.rooms.get_mut(room) {
                    if !r.group && !r.private {
                        self.directory.push(*room);
                    }
                    r.group = true;
                }
            }
            StoreOp::RoomMessageLogged(m) => {
                if let Some(r) = self.rooms.get_mut(&m.room)
                    && matches!(
                        EntryKind::of(&m.body),
                        EntryKind::Commit { .. } | EntryKind::Welcome
                    )
                {
                    r.changes.insert(m.seq);
                }
            }
            _ => {}
        }
    }

    /// After a restart: the rooms exactly as the disk holds them.
    pub(crate) fn rebuild(&mut self, records: &Records, secure: impl Fn(usize) -> bool) {
        let old = std::mem::take(&mut self.rooms);
        for rec in &records.rooms {
            let Some(admin) = user_of_name(&rec.admin) else {
                continue;
            };
            // The admin passes on, but only among the room's (encrypted) members.
            let known = old.contains_key(&rec.room);
            if !known && !secure(admin) {
                continue;
            }
            let changes = old
                .get(&rec.room)
                .map(|r| {
                    r.changes
                        .range(..rec.next_seq)
                        .copied()
                        .collect::<BTreeSet<u64>>()
                })
                .unwrap_or_default();
            self.rooms.insert(
                rec.room,
                SecureRoom {
                    private: rec.private,
                    direct: rec.direct,
                    admin,
                    group: rec.group.is_some(),
                    members: rec
                        .members
                        .iter()
                        .filter_map(|m| user_of_name(&m.name))
                        .collect(),
                    changes,
                },
            );
        }
    }

    /// How many members `room` has, if it is an encrypted room.
    pub(crate) fn members(&self, room: &RoomId) -> Option<usize> {
        self.rooms.get(room).map(|r| r.members.len())
    }

    /// The public encrypted rooms (which any room list shows beside the plaintext ones).
    pub(crate) fn public(&self) -> BTreeSet<RoomId> {
        self.rooms
            .iter()
            .filter(|(_, r)| !r.private)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Public rooms with a published group, oldest first (dead entries pruned now).
    pub(crate) fn directory(&mut self) -> &[RoomId] {
        let rooms = &self.rooms;
        self.directory
            .retain(|id| rooms.get(id).is_some_and(|r| !r.private && r.group));
        &self.directory
    }

    /// Rooms `u` administers.
    pub(crate) fn admin_of(&self, u: usize) -> Vec<RoomId> {
        self.rooms
            .iter()
            .filter(|(_, r)| r.admin == u && r.members.contains(&u) && !r.direct)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Whether a Commit or a Welcome of `room` lies strictly between `after` and `before`.
    pub(crate) fn change_between(&self, room: &RoomId, after: u64, before: u64) -> bool {
        if before <= after.saturating_add(1) {
            return false;
        }
        self.rooms
            .get(room)
            .is_some_and(|r| r.changes.range(after + 1..before).next().is_some())
    }
}
