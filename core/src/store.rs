//! Durability, sans-IO: the hub emits [`StoreOp`]s and is rebuilt from [`Records`].
//!
//! # The write-ahead rule for adapters
//!
//! After every `Hub::handle_*` call, drain `Hub::poll_store_op` and make those operations
//! durable (one transaction is fine, and several steps may be batched into one) **before**
//! transmitting any reply that the same steps produced. A sender told "queued" can then
//! rely on the message surviving a crash of the server.
//!
//! On start, load the [`Records`] from the store and hand them to `Hub::restore`.
//! [`crate::server::Driver`] keeps this rule for every server.

use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::wire::RoomId;

/// One change the hub needs to survive a restart. New kinds of change are added as the
/// protocol grows, so a store matches with a fallback arm.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreOp {
    /// A nickname was registered to an Ed25519 identity key.
    AccountCreated {
        /// The nickname.
        name: Arc<str>,
        /// The account's Ed25519 public key.
        key: [u8; 32],
    },
    /// A direct message waits for its recipient's ack.
    DmQueued(QueuedDm),
    /// The recipient acknowledged a direct message: delete it.
    DmAcked {
        /// The recipient.
        to: Arc<str>,
        /// The message.
        msg_id: u64,
    },
    /// A user's prekey bundle, replacing any earlier one.
    PrekeysStored {
        /// The owner.
        name: Arc<str>,
        /// The opaque blob.
        bundle: Arc<[u8]>,
    },
    /// Message IDs below `upto` may have been handed out: after a restart, start at `upto`.
    IdsReserved {
        /// The first ID not yet reserved.
        upto: u64,
    },
    /// A room was created (its creator joins it with a [`StoreOp::MemberAdded`]).
    RoomCreated {
        /// The room.
        room: RoomId,
        /// Its title.
        title: Arc<str>,
        /// Joined by invitation only, and not listed.
        private: bool,
        /// Who may invite, remove and retitle.
        admin: Arc<str>,
    },
    /// The last member left: forget the room, its members, invitations and log.
    RoomDeleted {
        /// The room.
        room: RoomId,
    },
    /// A user became a member (and any invitation of theirs is used up).
    MemberAdded {
        /// The room.
        room: RoomId,
        /// The new member.
        name: Arc<str>,
        /// The room's last sequence number when they joined: their cursor starts here, and
        /// history before it is not theirs to read.
        since: u64,
    },
    /// A member left or was removed.
    MemberRemoved {
        /// The room.
        room: RoomId,
        /// The former member.
        name: Arc<str>,
    },
    /// A user was invited to a room.
    Invited {
        /// The room.
        room: RoomId,
        /// The invitee.
        name: Arc<str>,
    },
    /// The room's title changed.
    RoomTitleSet {
        /// The room.
        room: RoomId,
        /// The new title.
        title: Arc<str>,
    },
    /// The room has a new admin (the old one left).
    RoomAdminSet {
        /// The room.
        room: RoomId,
        /// The new admin.
        admin: Arc<str>,
    },
    /// A room message was accepted with its sequence number.
    RoomMessageLogged(LoggedMessage),
    /// Retention dropped the room's messages below `below`.
    LogTrimmed {
        /// The room.
        room: RoomId,
        /// The first sequence number still retained.
        below: u64,
    },
    /// The room's MLS group was published or moved to a new epoch: its latest GroupInfo.
    GroupSet {
        /// The room.
        room: RoomId,
        /// The epoch the GroupInfo describes.
        epoch: u64,
        /// `MLSMessage(GroupInfo)`.
        group_info: Arc<[u8]>,
    },
    /// The room is a direct conversation of its two members (made by `OpenDirect`).
    DirectCreated {
        /// The room.
        room: RoomId,
    },
    /// A user uploaded a KeyPackage; a last-resort one replaces the user's earlier one.
    KeyPackageAdded(KeyPackageRecord),
    /// A one-time KeyPackage was handed out: delete it.
    KeyPackageTaken {
        /// Its owner.
        name: Arc<str>,
        /// The package.
        package: Arc<[u8]>,
    },
    /// A member acknowledged the room's messages up to `seq`.
    CursorAdvanced {
        /// The room.
        room: RoomId,
        /// The member.
        name: Arc<str>,
        /// The highest sequence number acknowledged.
        seq: u64,
    },
}

/// A room message kept in the room's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedMessage {
    /// The room.
    pub room: RoomId,
    /// Its per-room sequence number.
    pub seq: u64,
    /// The sender.
    pub from: Arc<str>,
    /// Server time when it was accepted, in microseconds.
    pub timestamp: u64,
    /// The opaque body.
    pub body: Arc<[u8]>,
}

/// A read the hub needs from the store: the retained messages of `room` with sequence
/// numbers in `from..to`, whose bodies the hub no longer keeps in memory. The driver
/// hands loads out in its batches, after the batch's operations: a store reads them
/// after writing those, and answers with `Driver::handle_loaded`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogLoad {
    /// Which load (the hub ignores an answer to a load it no longer waits for).
    pub id: u64,
    /// The room.
    pub room: RoomId,
    /// The first sequence number wanted.
    pub from: u64,
    /// One past the last sequence number wanted.
    pub to: u64,
}

impl LogLoad {
    /// Whether `msg` is one of the messages this load asks for.
    pub fn wants(&self, msg: &LoggedMessage) -> bool {
        msg.room == self.room && (self.from..self.to).contains(&msg.seq)
    }
}

/// How much of each room's log a hub keeps whole in memory (its newest messages), and so
/// how much of it a store need hand back whole from [`Store::load`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogMemory {
    /// Most messages kept whole (one always is).
    pub messages: usize,
    /// Most body bytes kept whole (exceeded only by a single message).
    pub bytes: usize,
}

impl LogMemory {
    /// Every retained message whole.
    pub const ALL: LogMemory = LogMemory {
        messages: usize::MAX,
        bytes: usize::MAX,
    };

    /// Whether a room's newest `count` messages, of `bytes` body bytes in all, may all be
    /// kept whole: the one definition of the bound.
    pub fn holds(&self, count: usize, bytes: usize) -> bool {
        count <= self.messages.max(1) && (count <= 1 || bytes <= self.bytes)
    }

    /// How many of the newest messages are kept whole, given every retained message's
    /// body length, oldest first.
    pub fn whole_suffix(&self, lens: impl DoubleEndedIterator<Item = usize>) -> usize {
        let (mut count, mut bytes) = (0usize, 0usize);
        for len in lens.rev() {
            let more = bytes.saturating_add(len);
            if !self.holds(count + 1, more) {
                break;
            }
            count += 1;
            bytes = more;
        }
        count
    }
}

/// A retained message a store handed back without its body: what a hub needs of a
/// message it does not keep whole (retention's age and byte counts). Its body is read
/// back with [`Store::read_log`] when someone needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OlderMessage {
    /// Its per-room sequence number.
    pub seq: u64,
    /// Server time when it was accepted, in microseconds.
    pub timestamp: u64,
    /// The length of its body.
    pub len: usize,
}

impl From<&LoggedMessage> for OlderMessage {
    fn from(m: &LoggedMessage) -> OlderMessage {
        OlderMessage {
            seq: m.seq,
            timestamp: m.timestamp,
            len: m.body.len(),
        }
    }
}

/// A member as a store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberRecord {
    /// The member.
    pub name: Arc<str>,
    /// The room's last sequence number when they joined.
    pub since: u64,
    /// The highest sequence number they acknowledged.
    pub cursor: u64,
}

/// A room as a store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomRecord {
    /// The room.
    pub room: RoomId,
    /// Its title.
    pub title: Arc<str>,
    /// Joined by invitation only.
    pub private: bool,
    /// Its admin.
    pub admin: Arc<str>,
    /// The next sequence number to stamp (one past the highest ever logged).
    pub next_seq: u64,
    /// Members in join order.
    pub members: Vec<MemberRecord>,
    /// Pending invitations.
    pub invited: Vec<Arc<str>>,
    /// Retained messages older than `log`'s, without their bodies, oldest first (see
    /// [`Store::load`]); empty when the store hands back every message whole.
    pub older: Vec<OlderMessage>,
    /// Retained messages, whole, oldest first.
    pub log: Vec<LoggedMessage>,
    /// A direct conversation of two.
    pub direct: bool,
    /// The MLS group's epoch and latest `MLSMessage(GroupInfo)`, once published.
    pub group: Option<(u64, Arc<[u8]>)>,
}

/// One stored KeyPackage.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyPackageRecord {
    /// Its owner.
    pub name: Arc<str>,
    /// `MLSMessage(KeyPackage)`.
    pub package: Arc<[u8]>,
    /// Handed out only when the owner has no other, and never used up.
    pub last_resort: bool,
}

/// A direct message stored for its recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuedDm {
    /// Server-assigned ID, increasing per server.
    pub msg_id: u64,
    /// The recipient.
    pub to: Arc<str>,
    /// The sender.
    pub from: Arc<str>,
    /// Server time when it was accepted, in microseconds.
    pub timestamp: u64,
    /// The opaque body.
    pub body: Arc<[u8]>,
}

/// Everything a store hands back on start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Records {
    /// Registered accounts: nickname and Ed25519 key.
    pub accounts: Vec<(Arc<str>, [u8; 32])>,
    /// Unacknowledged direct messages, in any order (the hub sorts them by ID).
    pub queued: Vec<QueuedDm>,
    /// Stored prekey bundles.
    pub prekeys: Vec<(Arc<str>, Arc<[u8]>)>,
    /// The highest `IdsReserved::upto` seen.
    pub ids_reserved_upto: u64,
    /// Rooms with their members, invitations and logs.
    pub rooms: Vec<RoomRecord>,
    /// KeyPackages not yet handed out, and last-resort ones.
    pub key_packages: Vec<KeyPackageRecord>,
}

/// A durable store of [`StoreOp`]s.
pub trait Store {
    /// The store's error.
    type Error: core::fmt::Debug + core::fmt::Display;

    /// Makes every op durable, atomically, in order.
    fn apply(&mut self, ops: &[StoreOp]) -> Result<(), Self::Error>;

    /// Loads what was durably applied. Of each room's retained messages, at least the
    /// newest that `whole` holds come back whole in `log`; older ones may come back in
    /// `older`, without their bodies ([`LogMemory::ALL`]: every one whole). A restart then
    /// never holds more history in memory than the hub will keep.
    fn load(&mut self, whole: LogMemory) -> Result<Records, Self::Error>;

    /// The retained messages `load` asks for that the store holds, in sequence order,
    /// as of every operation applied so far.
    fn read_log(&mut self, load: &LogLoad) -> Result<Vec<LoggedMessage>, Self::Error>;
}

/// A store in memory: for tests, and the simulator's model of a disk.
///
/// `apply` is durable at once; [`MemoryStore::records`] is what a restart sees.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    records: Records,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// What a restart would load.
    pub fn records(&self) -> &Records {
        &self.records
    }

    /// `records` as [`Store::load`] hands them back: of each room's log only the newest
    /// messages that `whole` holds whole, the rest in `older` (the one definition of
    /// that split).
    pub fn load_from(records: &Records, whole: LogMemory) -> Records {
        let mut out = records.clone();
        for r in &mut out.rooms {
            r.log.sort_by_key(|m| m.seq);
            let keep = whole.whole_suffix(r.log.iter().map(|m| m.body.len()));
            let split = r.log.len() - keep;
            r.older
                .extend(r.log.drain(..split).map(|m| OlderMessage::from(&m)));
        }
        out
    }

    /// The messages of `records` that `load` asks for, in sequence order: the one
    /// definition of a load's answer.
    pub fn read_from(records: &Records, load: &LogLoad) -> Vec<LoggedMessage> {
        let Some(r) = records.rooms.iter().find(|r| r.room == load.room) else {
            return Vec::new();
        };
        let mut out: Vec<LoggedMessage> = r.log.iter().filter(|m| load.wants(m)).cloned().collect();
        out.sort_by_key(|m| m.seq);
        out
    }

    /// Applies one op to a set of records: the one definition of what each op means.
    pub fn apply_to(records: &mut Records, op: &StoreOp) {
        match op {
            StoreOp::AccountCreated { name, key } => {
                if !records.accounts.iter().any(|(n, _)| n == name) {
                    records.accounts.push((name.clone(), *key));
                }
            }
            StoreOp::DmQueued(dm) => records.queued.push(dm.clone()),
            StoreOp::DmAcked { to, msg_id } => {
                records
                    .queued
                    .retain(|q| !(q.msg_id == *msg_id && q.to == *to));
            }
            StoreOp::PrekeysStored { name, bundle } => {
                records.prekeys.retain(|(n, _)| n != name);
                records.prekeys.push((name.clone(), bundle.clone()));
            }
            StoreOp::IdsReserved { upto } => {
                records.ids_reserved_upto = records.ids_reserved_upto.max(*upto);
            }
            StoreOp::RoomCreated {
                room,
                title,
                private,
                admin,
            } => {
                if !records.rooms.iter().any(|r| r.room == *room) {
                    records.rooms.push(RoomRecord {
                        room: *room,
                        title: title.clone(),
                        private: *private,
                        admin: admin.clone(),
                        next_seq: 1,
                        members: Vec::new(),
                        invited: Vec::new(),
                        older: Vec::new(),
                        log: Vec::new(),
                        direct: false,
                        group: None,
                    });
                }
            }
            StoreOp::RoomDeleted { room } => records.rooms.retain(|r| r.room != *room),
            StoreOp::KeyPackageAdded(kp) => {
                if kp.last_resort {
                    records
                        .key_packages
                        .retain(|k| !(k.last_resort && k.name == kp.name));
                }
                records.key_packages.push(kp.clone());
            }
            StoreOp::KeyPackageTaken { name, package } => {
                if let Some(i) = records
                    .key_packages
                    .iter()
                    .position(|k| !k.last_resort && k.name == *name && k.package == *package)
                {
                    records.key_packages.remove(i);
                }
            }
            other => {
                if let Some(r) = room_of(other).and_then(|id| room_record(records, id)) {
                    apply_room_op(r, other);
                }
            }
        }
    }
}

/// The room an op changes, for the ops applied to one room's record.
fn room_of(op: &StoreOp) -> Option<RoomId> {
    match op {
        StoreOp::MemberAdded { room, .. }
        | StoreOp::MemberRemoved { room, .. }
        | StoreOp::Invited { room, .. }
        | StoreOp::RoomTitleSet { room, .. }
        | StoreOp::RoomAdminSet { room, .. }
        | StoreOp::LogTrimmed { room, .. }
        | StoreOp::GroupSet { room, .. }
        | StoreOp::DirectCreated { room }
        | StoreOp::CursorAdvanced { room, .. } => Some(*room),
        StoreOp::RoomMessageLogged(m) => Some(m.room),
        _ => None,
    }
}

fn room_record(records: &mut Records, room: RoomId) -> Option<&mut RoomRecord> {
    records.rooms.iter_mut().find(|r| r.room == room)
}

fn apply_room_op(r: &mut RoomRecord, op: &StoreOp) {
    match op {
        StoreOp::MemberAdded { name, since, .. } => {
            r.invited.retain(|n| n != name);
            if !r.members.iter().any(|m| m.name == *name) {
                r.members.push(MemberRecord {
                    name: name.clone(),
                    since: *since,
                    cursor: *since,
                });
            }
        }
        StoreOp::MemberRemoved { name, .. } => r.members.retain(|m| m.name != *name),
        StoreOp::Invited { name, .. } if !r.invited.contains(name) => {
            r.invited.push(name.clone());
        }
        StoreOp::RoomTitleSet { title, .. } => r.title = title.clone(),
        StoreOp::RoomAdminSet { admin, .. } => r.admin = admin.clone(),
        StoreOp::RoomMessageLogged(m) => {
            r.next_seq = r.next_seq.max(m.seq + 1);
            r.log.push(m.clone());
        }
        StoreOp::LogTrimmed { below, .. } => r.log.retain(|m| m.seq >= *below),
        StoreOp::GroupSet {
            epoch, group_info, ..
        } => r.group = Some((*epoch, group_info.clone())),
        StoreOp::DirectCreated { .. } => r.direct = true,
        StoreOp::CursorAdvanced { name, seq, .. } => {
            if let Some(m) = r.members.iter_mut().find(|m| m.name == *name) {
                m.cursor = m.cursor.max(*seq);
            }
        }
        _ => {}
    }
}

impl Store for MemoryStore {
    type Error = core::convert::Infallible;

    fn apply(&mut self, ops: &[StoreOp]) -> Result<(), Self::Error> {
        for op in ops {
            MemoryStore::apply_to(&mut self.records, op);
        }
        Ok(())
    }

    fn load(&mut self, whole: LogMemory) -> Result<Records, Self::Error> {
        Ok(MemoryStore::load_from(&self.records, whole))
    }

    fn read_log(&mut self, load: &LogLoad) -> Result<Vec<LoggedMessage>, Self::Error> {
        Ok(MemoryStore::read_from(&self.records, load))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dm(id: u64, to: &str) -> QueuedDm {
        QueuedDm {
            msg_id: id,
            to: to.into(),
            from: "a".into(),
            timestamp: 0,
            body: Arc::from(&b"x"[..]),
        }
    }

    #[test]
    fn acked_messages_are_deleted_and_accounts_are_unique() {
        let mut s = MemoryStore::new();
        let ops = [
            StoreOp::AccountCreated {
                name: "bob".into(),
                key: [1; 32],
            },
            StoreOp::AccountCreated {
                name: "bob".into(),
                key: [2; 32],
            },
            StoreOp::DmQueued(dm(1, "bob")),
            StoreOp::DmQueued(dm(2, "bob")),
            StoreOp::DmAcked {
                to: "bob".into(),
                msg_id: 1,
            },
            StoreOp::IdsReserved { upto: 10 },
            StoreOp::IdsReserved { upto: 5 },
        ];
        s.apply(&ops).unwrap();
        let r = s.load(LogMemory::ALL).unwrap();
        assert_eq!(r.accounts, [("bob".into(), [1; 32])]);
        assert_eq!(r.queued, [dm(2, "bob")]);
        assert_eq!(r.ids_reserved_upto, 10);
    }

    #[test]
    fn the_bound_holds_the_newest_messages_and_always_one() {
        let b = LogMemory {
            messages: 3,
            bytes: 10,
        };
        assert!(b.holds(0, 0) && b.holds(3, 10) && b.holds(1, 1000));
        assert!(!b.holds(4, 0) && !b.holds(2, 11));
        let none = LogMemory {
            messages: 0,
            bytes: 0,
        };
        assert!(none.holds(1, 5) && !none.holds(2, 0));
        assert_eq!(b.whole_suffix([9, 1, 4, 5].into_iter()), 3);
        assert_eq!(b.whole_suffix([1, 9, 4, 5].into_iter()), 2);
        assert_eq!(b.whole_suffix([1, 1, 1, 1].into_iter()), 3);
        assert_eq!(b.whole_suffix([50].into_iter()), 1);
        assert_eq!(b.whole_suffix(core::iter::empty()), 0);
        assert_eq!(LogMemory::ALL.whole_suffix([usize::MAX, 1].into_iter()), 2);
    }

    #[test]
    fn a_load_hands_back_older_messages_without_bodies() {
        let room = RoomId(*b"ABCDEF");
        let logged = |seq: u64, len: usize| {
            StoreOp::RoomMessageLogged(LoggedMessage {
                room,
                seq,
                from: "a".into(),
                timestamp: seq * 10,
                body: Arc::from(alloc::vec![7u8; len]),
            })
        };
        let mut s = MemoryStore::new();
        let created = StoreOp::RoomCreated {
            room,
            title: "t".into(),
            private: false,
            admin: "a".into(),
        };
        s.apply(&[created, logged(3, 1), logged(1, 2), logged(2, 3)])
            .unwrap();
        let two = LogMemory {
            messages: 2,
            bytes: 100,
        };
        let r = &s.load(two).unwrap().rooms[0];
        let older = OlderMessage {
            seq: 1,
            timestamp: 10,
            len: 2,
        };
        assert_eq!(r.older, [older]);
        assert_eq!(r.log.iter().map(|m| m.seq).collect::<Vec<_>>(), [2, 3]);
        let all = &s.load(LogMemory::ALL).unwrap().rooms[0];
        assert!(all.older.is_empty() && all.log.len() == 3);
    }
}
