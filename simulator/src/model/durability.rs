//! What the model knows about durability. The simulated server hands the disk one batch at
//! a time (the driver's `poll_batch`); a batch holds every step since the previous batch
//! was handed out, and becomes durable when the disk reports it (`handle_durable`). A
//! server crash loses the batch in flight and everything not yet batched: accounts, DMs
//! and acks, and every room change (creations, memberships, invitations, titles, logged
//! messages, trims and cursors) — the rooms in memory go back to the rooms on disk.
//!
//! Two invariants are checked here: the disk never has two batches in flight, and a crash
//! never loses a DM its sender was told was accepted, or its recipient was shown
//! ("nothing acked lost"). The clients check the rest of the write-ahead rule as the
//! replies reach them ([`crate::check::client_view`]).

use std::mem;
use std::sync::Arc;

use cove_core::wire::RoomId;

use super::{Checked, Model, ModelDm, ModelMember, ModelRoom, fail};

/// One room change a step made, to apply to the rooms on disk once durable.
#[derive(Debug)]
pub(super) enum RoomWrite {
    Created {
        room: RoomId,
        inc: u64,
        title: Arc<str>,
        private: bool,
        admin: usize,
    },
    Deleted(RoomId),
    MemberAdded {
        room: RoomId,
        u: usize,
        since: u64,
    },
    MemberRemoved {
        room: RoomId,
        u: usize,
    },
    Invited {
        room: RoomId,
        u: usize,
    },
    Admin {
        room: RoomId,
        admin: usize,
    },
    Title {
        room: RoomId,
        title: Arc<str>,
    },
    Logged {
        room: RoomId,
        inc: u64,
        seq: u64,
    },
    Trimmed {
        room: RoomId,
        inc: u64,
        first: u64,
    },
    Cursor {
        room: RoomId,
        u: usize,
        seq: u64,
    },
}

/// What the steps of one batch changed that must survive a crash once durable.
#[derive(Debug, Default)]
pub(super) struct Writes {
    /// Accounts created.
    pub(super) accounts: Vec<usize>,
    /// DMs accepted.
    pub(super) dms: Vec<u64>,
    /// DMs acknowledged by their recipient.
    pub(super) acks: Vec<u64>,
    /// Room changes, in order.
    pub(super) rooms: Vec<RoomWrite>,
}

impl Model {
    /// The server handed batch `id` to its disk: it holds every step since the last one.
    pub fn seal_batch(&mut self, id: u64) -> Checked {
        if let Some((current, _)) = &self.in_flight {
            return fail(
                "batches",
                format!("batch {id} handed to the disk while batch {current} is in flight"),
            );
        }
        self.in_flight = Some((id, mem::take(&mut self.unbatched)));
        Ok(())
    }

    /// The disk made batch `id` durable.
    pub fn commit_batch(&mut self, id: u64) -> Checked {
        let writes = match self.in_flight.take() {
            Some((current, writes)) if current == id => writes,
            other => {
                let current = other.as_ref().map(|(c, _)| *c);
                self.in_flight = other;
                return fail(
                    "batches",
                    format!("batch {id} reported durable; in flight: {current:?}"),
                );
            }
        };
        for u in writes.accounts {
            self.users[u].durable = true;
        }
        for id in writes.dms {
            if let Some(dm) = self.dms.get_mut(&id) {
                dm.durable = true;
                self.max_id_durable = self.max_id_durable.max(id);
            }
        }
        for id in writes.acks {
            if let Some(dm) = self.dms.get_mut(&id) {
                dm.ack_durable = true;
            }
        }
        for w in writes.rooms {
            self.apply_durable(w);
        }
        Ok(())
    }

    fn apply_durable(&mut self, w: RoomWrite) {
        let rooms = &mut self.durable_rooms;
        match w {
            RoomWrite::Created {
                room,
                inc,
                title,
                private,
                admin,
            } => {
                rooms.insert(
                    room,
                    ModelRoom {
                        inc,
                        title,
                        private,
                        admin,
                        members: Vec::new(),
                        invited: Default::default(),
                        next_seq: 1,
                        first: 1,
                        log_bytes: 0,
                    },
                );
            }
            RoomWrite::Deleted(room) => {
                rooms.remove(&room);
            }
            RoomWrite::MemberAdded { room, u, since } => {
                if let Some(r) = rooms.get_mut(&room) {
                    r.invited.remove(&u);
                    r.members.push(ModelMember {
                        u,
                        since,
                        cursor: since,
                        pushed: since,
                    });
                }
            }
            RoomWrite::MemberRemoved { room, u } => {
                if let Some(r) = rooms.get_mut(&room) {
                    r.members.retain(|m| m.u != u);
                }
            }
            RoomWrite::Invited { room, u } => {
                if let Some(r) = rooms.get_mut(&room) {
                    r.invited.insert(u);
                }
            }
            RoomWrite::Admin { room, admin } => {
                if let Some(r) = rooms.get_mut(&room) {
                    r.admin = admin;
                }
            }
            RoomWrite::Title { room, title } => {
                if let Some(r) = rooms.get_mut(&room) {
                    r.title = title;
                }
            }
            RoomWrite::Logged { room, inc, seq } => {
                if let Some(r) = rooms.get_mut(&room) {
                    r.next_seq = r.next_seq.max(seq + 1);
                }
                let entry = self
                    .log
                    .get_mut(&inc)
                    .and_then(|l| l.get_mut(seq as usize - 1));
                if let Some(e) = entry {
                    e.durable = true;
                }
            }
            RoomWrite::Trimmed { room, inc, first } => {
                if let Some(r) = rooms.get_mut(&room) {
                    r.first = r.first.max(first);
                }
                let f = self.durable_firsts.entry(inc).or_insert(1);
                *f = (*f).max(first);
            }
            RoomWrite::Cursor { room, u, seq } => {
                if let Some(m) = rooms.get_mut(&room).and_then(|r| r.member_mut(u)) {
                    m.cursor = m.cursor.max(seq);
                    m.pushed = m.cursor;
                }
            }
        }
    }

    /// The server crashed: the batch in flight, everything not batched yet and every
    /// connection are gone; the rooms are what the disk holds. (Join notes stay: replies
    /// already on the wire still reach their clients.) A violation if a lost DM had been
    /// confirmed to anyone.
    pub fn crash(&mut self) -> Checked {
        let mut lost = mem::take(&mut self.unbatched);
        if let Some((_, mut batch)) = self.in_flight.take() {
            batch.accounts.append(&mut lost.accounts);
            batch.dms.append(&mut lost.dms);
            lost = batch;
        }
        let mut result = Ok(());
        for u in lost.accounts {
            self.users[u].lost = true;
        }
        for id in lost.dms {
            let Some(dm) = self.dms.remove(&id) else {
                continue;
            };
            if result.is_ok() && (dm.promised || dm.shown) {
                result = fail(
                    "nothing acked lost",
                    format!(
                        "DM {id} from u{} to u{} was {} before it was durable, then lost in a \
                         server crash",
                        dm.from,
                        dm.to,
                        if dm.promised {
                            "acked to its sender"
                        } else {
                            "shown to its recipient"
                        }
                    ),
                );
            }
            self.lost_dms.entry(id).or_default().push(dm);
        }
        self.conns.clear();
        self.last_acks.clear();
        self.max_id_life = 0;
        for user in &mut self.users {
            user.exists = user.durable;
            user.conn = None;
            user.rooms.clear();
            user.invites.clear();
            user.queue.clear();
        }
        for (id, dm) in &mut self.dms {
            if dm.durable && !dm.ack_durable {
                dm.acked = false;
                self.users[dm.to].queue.push_back(*id);
            }
        }
        self.restore_rooms();
        self.forget_loads();
        result
    }

    /// The rooms in memory become the rooms on disk; messages never made durable are
    /// lost (their sequence numbers will be stamped again).
    fn restore_rooms(&mut self) {
        for (inc, entries) in &mut self.log {
            let keep = entries.iter().take_while(|e| e.durable).count();
            for (i, e) in entries.drain(keep..).enumerate() {
                let seq = (keep + i + 1) as u64;
                self.lost_log.entry((*inc, seq)).or_default().push(e);
            }
        }
        self.rooms = self.durable_rooms.clone();
        let mut directory: Vec<(u64, RoomId)> = Vec::new();
        for (id, r) in &mut self.rooms {
            let entries = self.log.get(&r.inc).map_or(&[][..], |l| l.as_slice());
            r.log_bytes = (r.first..r.next_seq)
                .filter_map(|seq| entries.get(seq as usize - 1))
                .map(|e| e.body.len())
                .sum();
            for m in &mut r.members {
                m.pushed = m.cursor;
                self.users[m.u].rooms.insert(*id);
            }
            for u in &r.invited {
                self.users[*u].invites.insert(*id);
            }
            directory.push((r.inc, *id));
        }
        directory.sort();
        self.directory = directory.into_iter().map(|(inc, id)| (id, inc)).collect();
        self.directory_dead = 0;
    }

    /// Whether `u`'s account creation is durable.
    pub fn account_durable(&self, u: usize) -> bool {
        self.users[u].durable
    }

    /// Whether `u`'s account was created, then lost in a crash (and not created again).
    pub fn account_lost(&self, u: usize) -> bool {
        self.users[u].lost
    }

    /// The DMs with ID `msg_id` that crashes lost.
    pub fn lost_dms(&self, msg_id: u64) -> &[ModelDm] {
        self.lost_dms.get(&msg_id).map_or(&[], |v| v.as_slice())
    }

    /// The rooms on disk, per the model.
    pub fn durable_rooms(&self) -> &std::collections::BTreeMap<RoomId, ModelRoom> {
        &self.durable_rooms
    }
}
