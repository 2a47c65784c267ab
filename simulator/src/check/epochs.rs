//! One Commit per epoch: the Delivery Service accepts exactly one Commit for each (room,
//! epoch), so every member sees the same chain of epochs and no group forks.
//!
//! Checked on every hub step's store ops, in order, for every room: each `GroupSet` after
//! the room's first names the epoch right after the previous one (a second Commit accepted
//! for an epoch already closed writes the same epoch again, or an older one), and each
//! Commit logged in the room (read from its cleartext MLS header) was made in the epoch
//! just closed by the step's `GroupSet`. A room's chain starts at its first `GroupSet`
//! (`InitGroup`, or `OpenDirect`); a server restart starts every chain again from the
//! epochs the disk holds.

use std::collections::BTreeMap;

use cove_core::store::{Records, StoreOp};
use cove_core::wire::RoomId;
use cove_core::wire::mls::{ContentType, message_header};

use crate::model::{Checked, Violation};

/// The invariant's name.
pub(crate) const CHECK: &str = "one commit per epoch";

/// The current epoch of every room with a group, as the hub holds it in memory.
#[derive(Debug, Default)]
pub(crate) struct Epochs {
    rooms: BTreeMap<RoomId, u64>,
    /// `GroupSet`s seen (each a group published or an epoch closed).
    pub(crate) group_sets: u64,
}

impl Epochs {
    /// One hub step's store ops, in order.
    pub(crate) fn step(&mut self, ops: &[StoreOp]) -> Checked {
        for op in ops {
            match op {
                StoreOp::RoomCreated { room, .. } | StoreOp::RoomDeleted { room } => {
                    self.rooms.remove(room);
                }
                StoreOp::GroupSet { room, epoch, .. } => {
                    self.group_sets += 1;
                    if let Some(prev) = self.rooms.insert(*room, *epoch)
                        && *epoch != prev + 1
                    {
                        return Err(Violation::new(
                            CHECK,
                            format!(
                                "{room:?} moved from epoch {prev} to epoch {epoch}: a second \
                                 Commit was accepted for an epoch already closed"
                            ),
                        ));
                    }
                }
                StoreOp::RoomMessageLogged(m) => {
                    let Ok(h) = message_header(&m.body) else {
                        continue;
                    };
                    if h.content_type != ContentType::Commit {
                        continue;
                    }
                    let current = self.rooms.get(&m.room).copied();
                    if current != Some(h.epoch + 1) {
                        return Err(Violation::new(
                            CHECK,
                            format!(
                                "{:?}#{} is a Commit made in epoch {} from {}, logged when the \
                                 room is in epoch {current:?}: two Commits for one epoch",
                                m.room, m.seq, h.epoch, m.from
                            ),
                        ));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// After a restart: every chain continues from the epoch on disk.
    pub(crate) fn restart(&mut self, records: &Records) {
        self.rooms = records
            .rooms
            .iter()
            .filter_map(|r| r.group.as_ref().map(|(epoch, _)| (r.room, *epoch)))
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(room: RoomId, epoch: u64) -> StoreOp {
        StoreOp::GroupSet {
            room,
            epoch,
            group_info: std::sync::Arc::from(&b"info"[..]),
        }
    }

    #[test]
    fn epochs_rise_by_one_and_a_second_commit_is_caught() {
        let (a, b) = (RoomId([1; 6]), RoomId([2; 6]));
        let mut e = Epochs::default();
        e.step(&[set(a, 0), set(b, 1)]).unwrap();
        e.step(&[set(a, 1)]).unwrap();
        e.step(&[set(a, 2), set(b, 2)]).unwrap();
        let err = e.step(&[set(a, 2)]).unwrap_err();
        assert_eq!(err.check, CHECK);
        assert!(e.step(&[set(b, 4)]).is_err(), "an epoch skipped");
        // A new room of the same ID starts a new chain.
        let created = StoreOp::RoomDeleted { room: b };
        e.step(&[created, set(b, 1)]).unwrap();
        // After a restart the chain continues from the disk.
        let mut records = Records::default();
        e.restart(&records);
        e.step(&[set(a, 7)]).unwrap();
        records.rooms.clear();
        e.restart(&records);
        e.step(&[set(a, 3)]).unwrap();
        assert_eq!(e.group_sets, 10);
    }
}
