//! Lock statistics of the hub mutex: the figures behind the choice of a mutex over a
//! hub task (see the module docs of [`super`]).

use std::sync::MutexGuard;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{HubState, Shared, lock};

/// How the hub mutex is used, counted on every hub step.
#[derive(Default)]
pub(super) struct LockCounters {
    acquisitions: AtomicU64,
    contended: AtomicU64,
    held_ns: AtomicU64,
}

impl LockCounters {
    /// The figures so far.
    pub(super) fn stats(&self) -> HubLockStats {
        HubLockStats {
            acquisitions: self.acquisitions.load(Ordering::Relaxed),
            contended: self.contended.load(Ordering::Relaxed),
            held: Duration::from_nanos(self.held_ns.load(Ordering::Relaxed)),
        }
    }
}

/// How the hub mutex has been used since the server started: the figures behind the
/// choice of a mutex over a hub task (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HubLockStats {
    /// Hub steps (each takes the lock once).
    pub acquisitions: u64,
    /// Steps that found the lock taken and had to wait.
    pub contended: u64,
    /// Total time the lock was held by hub steps.
    pub held: Duration,
}

/// The hub state, locked for one hub step; counts the step on drop.
pub(super) struct HubGuard<'a> {
    guard: MutexGuard<'a, HubState>,
    since: std::time::Instant,
    counters: &'a LockCounters,
}

impl std::ops::Deref for HubGuard<'_> {
    type Target = HubState;
    fn deref(&self) -> &HubState {
        &self.guard
    }
}

impl std::ops::DerefMut for HubGuard<'_> {
    fn deref_mut(&mut self) -> &mut HubState {
        &mut self.guard
    }
}

impl Drop for HubGuard<'_> {
    fn drop(&mut self) {
        let ns = u64::try_from(self.since.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.counters.held_ns.fetch_add(ns, Ordering::Relaxed);
    }
}

/// Takes the hub lock for a hub step, counting contention and hold time.
pub(super) fn lock_hub(shared: &Shared) -> HubGuard<'_> {
    let counters = &shared.lock_stats;
    counters.acquisitions.fetch_add(1, Ordering::Relaxed);
    let guard = match shared.state.try_lock() {
        Ok(g) => g,
        Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => {
            counters.contended.fetch_add(1, Ordering::Relaxed);
            lock(&shared.state)
        }
    };
    HubGuard {
        guard,
        since: std::time::Instant::now(),
        counters,
    }
}
