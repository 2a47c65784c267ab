//! What the model knows about durability. The simulated server hands the disk one batch at
//! a time (the driver's `poll_batch`); a batch holds every step since the previous batch
//! was handed out, and becomes durable when the disk reports it (`handle_durable`). A
//! server crash loses the batch in flight and everything not yet batched.
//!
//! Two invariants are checked here: the disk never has two batches in flight, and a crash
//! never loses a DM its sender was told was accepted, or its recipient was shown
//! ("nothing acked lost"). The clients check the rest of the write-ahead rule as the
//! replies reach them ([`crate::check::client_view`]).

use std::mem;

use super::{Checked, Model, ModelDm, fail};

/// What the steps of one batch changed that must survive a crash once durable.
#[derive(Debug, Default)]
pub(super) struct Writes {
    /// Accounts created.
    pub(super) accounts: Vec<usize>,
    /// DMs accepted.
    pub(super) dms: Vec<u64>,
    /// DMs acknowledged by their recipient.
    pub(super) acks: Vec<u64>,
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
        Ok(())
    }

    /// The server crashed: the batch in flight, everything not batched yet and every
    /// connection are gone. (Join notes stay: replies already on the wire still reach
    /// their clients.) A violation if a lost DM had been confirmed to anyone.
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
        result
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
}
