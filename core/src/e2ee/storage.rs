//! In-memory mls-rs storage (group states with a few prior epochs, key-package secrets),
//! shared by every clone so the layer can export it all, and bounded.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::convert::Infallible;
use core::fmt;

use mls_rs_core::error::IntoAnyError;
use mls_rs_core::group::{EpochRecord, GroupState, GroupStateStorage};
use mls_rs_core::key_package::{KeyPackageData, KeyPackageStorage};
use spin::Mutex;
use zeroize::Zeroizing;

use super::config::{MAX_GROUPS, MAX_KEY_PACKAGE_SECRETS, PRIOR_EPOCHS};

/// One group's stored state: the current snapshot and the last [`PRIOR_EPOCHS`] epochs.
#[derive(Clone, Default)]
pub(crate) struct StoredGroup {
    pub(crate) state: Zeroizing<Vec<u8>>,
    pub(crate) epochs: VecDeque<EpochRecord>,
}

/// The group store is full ([`MAX_GROUPS`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreFull;

impl fmt::Display for StoreFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("group store full")
    }
}

impl IntoAnyError for StoreFull {}

/// Group states by group ID. Clones share the same map.
#[derive(Clone, Default)]
pub struct GroupStore {
    inner: Arc<Mutex<BTreeMap<Vec<u8>, StoredGroup>>>,
}

impl fmt::Debug for GroupStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupStore")
            .field("groups", &self.inner.lock().len())
            .finish()
    }
}

impl GroupStore {
    pub(crate) fn delete(&self, group_id: &[u8]) {
        self.inner.lock().remove(group_id);
    }

    pub(crate) fn contains(&self, group_id: &[u8]) -> bool {
        self.inner.lock().contains_key(group_id)
    }

    /// Every stored group, for export.
    pub(crate) fn snapshot(&self) -> Vec<(Vec<u8>, StoredGroup)> {
        self.inner
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Puts a group back (on restore).
    pub(crate) fn put(&self, group_id: Vec<u8>, group: StoredGroup) {
        self.inner.lock().insert(group_id, group);
    }
}

impl GroupStateStorage for GroupStore {
    type Error = StoreFull;

    fn state(&self, group_id: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>, Self::Error> {
        Ok(self.inner.lock().get(group_id).map(|g| g.state.clone()))
    }

    fn epoch(
        &self,
        group_id: &[u8],
        epoch_id: u64,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, Self::Error> {
        Ok(self.inner.lock().get(group_id).and_then(|g| {
            g.epochs
                .iter()
                .find(|e| e.id == epoch_id)
                .map(|e| e.data.clone())
        }))
    }

    fn write(
        &mut self,
        state: GroupState,
        epoch_inserts: Vec<EpochRecord>,
        epoch_updates: Vec<EpochRecord>,
    ) -> Result<(), Self::Error> {
        let mut map = self.inner.lock();
        if !map.contains_key(&state.id) && map.len() >= MAX_GROUPS {
            return Err(StoreFull);
        }
        let group = map.entry(state.id).or_default();
        group.state = state.data;
        for update in epoch_updates {
            if let Some(e) = group.epochs.iter_mut().find(|e| e.id == update.id) {
                *e = update;
            }
        }
        group.epochs.extend(epoch_inserts);
        while group.epochs.len() > PRIOR_EPOCHS {
            group.epochs.pop_front();
        }
        Ok(())
    }

    fn max_epoch_id(&self, group_id: &[u8]) -> Result<Option<u64>, Self::Error> {
        Ok(self
            .inner
            .lock()
            .get(group_id)
            .and_then(|g| g.epochs.back().map(|e| e.id)))
    }
}

/// A key package's secrets and what the layer knows about it.
#[derive(Clone)]
pub(crate) struct StoredKeyPackage {
    pub(crate) data: KeyPackageData,
    /// Order of creation (older packages are dropped first when the store is full).
    pub(crate) order: u64,
    pub(crate) last_resort: bool,
}

#[derive(Default)]
struct KeyPackages {
    map: BTreeMap<Vec<u8>, StoredKeyPackage>,
    next_order: u64,
    last_inserted: Option<Vec<u8>>,
}

/// Key-package secrets by key-package reference. Clones share the same map; at most
/// [`MAX_KEY_PACKAGE_SECRETS`] are kept, the oldest ordinary ones dropped first.
#[derive(Clone, Default)]
pub struct KeyPackageStore {
    inner: Arc<Mutex<KeyPackages>>,
}

impl fmt::Debug for KeyPackageStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPackageStore")
            .field("secrets", &self.inner.lock().map.len())
            .finish()
    }
}

impl KeyPackageStore {
    pub(crate) fn contains(&self, id: &[u8]) -> bool {
        self.inner.lock().map.contains_key(id)
    }

    /// The reference of the package inserted last, taken.
    pub(crate) fn take_last_inserted(&self) -> Option<Vec<u8>> {
        self.inner.lock().last_inserted.take()
    }

    /// Marks a package as last-resort and keeps only the newest [`MAX_LAST_RESORT`] such.
    ///
    /// [`MAX_LAST_RESORT`]: super::config::MAX_LAST_RESORT
    pub(crate) fn mark_last_resort(&self, id: &[u8], keep: usize) {
        let mut kp = self.inner.lock();
        if let Some(e) = kp.map.get_mut(id) {
            e.last_resort = true;
        }
        loop {
            let mut last: Vec<(u64, Vec<u8>)> = kp
                .map
                .iter()
                .filter(|(_, e)| e.last_resort)
                .map(|(k, e)| (e.order, k.clone()))
                .collect();
            if last.len() <= keep {
                break;
            }
            last.sort();
            if let Some((_, oldest)) = last.first() {
                kp.map.remove(oldest);
            }
        }
    }

    /// Drops packages expired before `now`, then the oldest ordinary ones until `room` more fit.
    pub(crate) fn prune(&self, now: u64, room: usize) {
        let mut kp = self.inner.lock();
        kp.map.retain(|_, e| e.data.expiration >= now);
        while kp.map.len() + room > MAX_KEY_PACKAGE_SECRETS {
            let oldest = kp
                .map
                .iter()
                .filter(|(_, e)| !e.last_resort)
                .min_by_key(|(_, e)| e.order)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    kp.map.remove(&k);
                }
                None => break,
            }
        }
    }

    /// Every package, for export.
    pub(crate) fn snapshot(&self) -> Vec<(Vec<u8>, StoredKeyPackage)> {
        let kp = self.inner.lock();
        kp.map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Puts a package back (on restore).
    pub(crate) fn put(&self, id: Vec<u8>, entry: StoredKeyPackage) {
        let mut kp = self.inner.lock();
        kp.next_order = kp.next_order.max(entry.order.saturating_add(1));
        kp.map.insert(id, entry);
    }
}

impl KeyPackageStorage for KeyPackageStore {
    type Error = Infallible;

    fn delete(&mut self, id: &[u8]) -> Result<(), Self::Error> {
        self.inner.lock().map.remove(id);
        Ok(())
    }

    fn insert(&mut self, id: Vec<u8>, pkg: KeyPackageData) -> Result<(), Self::Error> {
        let mut kp = self.inner.lock();
        // The layer prunes before making packages; this keeps the bound regardless.
        while kp.map.len() >= MAX_KEY_PACKAGE_SECRETS {
            let oldest = kp
                .map
                .iter()
                .min_by_key(|(_, e)| (e.last_resort, e.order))
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    kp.map.remove(&k);
                }
                None => break,
            }
        }
        let order = kp.next_order;
        kp.next_order = order.saturating_add(1);
        kp.last_inserted = Some(id.clone());
        kp.map.insert(
            id,
            StoredKeyPackage {
                data: pkg,
                order,
                last_resort: false,
            },
        );
        Ok(())
    }

    fn get(&self, id: &[u8]) -> Result<Option<KeyPackageData>, Self::Error> {
        Ok(self.inner.lock().map.get(id).map(|e| e.data.clone()))
    }
}
