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

use alloc::sync::Arc;
use alloc::vec::Vec;

/// One change the hub needs to survive a restart.
#[derive(Clone, Debug, PartialEq, Eq)]
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
        /// The opaque signed bundle.
        bundle: Arc<[u8]>,
    },
    /// Message IDs below `upto` may have been handed out: after a restart, start at `upto`.
    IdsReserved {
        /// The first ID not yet reserved.
        upto: u64,
    },
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
    /// The opaque (end-to-end encrypted) body.
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
}

/// A durable store of [`StoreOp`]s.
pub trait Store {
    /// The store's error.
    type Error: core::fmt::Debug + core::fmt::Display;

    /// Makes every op durable, atomically, in order.
    fn apply(&mut self, ops: &[StoreOp]) -> Result<(), Self::Error>;

    /// Loads what was durably applied.
    fn load(&mut self) -> Result<Records, Self::Error>;
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
        }
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

    fn load(&mut self) -> Result<Records, Self::Error> {
        Ok(self.records.clone())
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
        let r = s.load().unwrap();
        assert_eq!(r.accounts, [("bob".into(), [1; 32])]);
        assert_eq!(r.queued, [dm(2, "bob")]);
        assert_eq!(r.ids_reserved_upto, 10);
    }
}
