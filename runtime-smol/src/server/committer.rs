//! The committer: a thread of its own that makes the driver's batches durable, one at a
//! time, off the lock, and routes (and, to idle connections, writes) what each releases.
//!
//! Why a thread and not a task that hands each batch to the blocking pool: a batch then
//! costs one wake-up (this thread's) instead of three (the committer task's, a pool
//! thread's, and the task's again when the pool is done). At 10 messages per second from
//! each of 200 clients that was a third of the server's context switches.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use cove_core::server::Batch;
use cove_core::store::Store;
use event_listener::Listener;
use tracing::{debug, error};

use super::hub_lock::lock_hub;
use super::pipeline::{Deliveries, route_direct, sync_full};
use super::{Shared, lock};

/// How often an idle committer looks whether its server is gone (dropped without a
/// shutdown: nothing can hand it a batch any more).
const ORPHAN_CHECK: Duration = Duration::from_secs(1);

/// Starts the committer thread for `shared`, owning `store`.
pub(super) fn start<S: Store + Send + 'static>(shared: Arc<Shared>, store: S) -> io::Result<()> {
    std::thread::Builder::new()
        .name("cove-store".into())
        .spawn(move || committer(&shared, store))
        .map(drop)
}

/// Takes the driver's next batch, applies it, reports the outcome, and routes the
/// replies it released. Ends when told to stop with nothing in flight, or when the server
/// was dropped.
fn committer<S: Store>(shared: &Arc<Shared>, mut store: S) {
    while let Some(batch) = next_batch(shared) {
        let (id, n) = (batch.id, batch.ops.len());
        let applied = batch.apply_to(&mut store).map_err(|e| e.to_string());
        drop(batch);
        let mut st = lock_hub(shared);
        let result = applied.and_then(|loaded| {
            debug!(ops = n, loads = loaded.len(), batch = id.0, "committed");
            // Only a broken adapter reports a batch that is not in flight.
            let now = crate::now();
            st.driver
                .handle_stored(now, id, loaded)
                .map_err(|e| e.to_string())
        });
        if let Err(e) = result {
            // Nothing of this batch may be acknowledged: the driver drops its replies
            // and accepts nothing more; the server stops.
            error!(error = %e, "store failed; shutting down without acknowledging");
            st.driver.handle_store_failed(id);
            if st.store_failure.is_none() {
                st.store_failure = Some(e);
            }
            if !shared.shutting_down.swap(true, Ordering::SeqCst) {
                shared.stop.notify(usize::MAX);
            }
        }
        let mut direct = Deliveries::default();
        route_direct(&mut st, &mut direct);
        sync_full(shared, &st);
        drop(st);
        direct.deliver();
        // Connections waiting out a full pipeline look again; so does the shutdown.
        shared.space.notify(usize::MAX);
        shared.idle.notify(usize::MAX);
    }
}

/// Waits for the driver's next batch; `None` once the committer is told to stop and
/// nothing is left to apply, or once only this thread holds the server.
fn next_batch(shared: &Arc<Shared>) -> Option<Batch> {
    loop {
        let listener = shared.work.listen();
        {
            let mut st = lock(&shared.state);
            if let Some(batch) = st.driver.poll_batch() {
                return Some(batch);
            }
            if st.stop_committer {
                st.committer_done = true;
                drop(st);
                shared.idle.notify(usize::MAX);
                return None;
            }
        }
        if listener.wait_timeout(ORPHAN_CHECK).is_none() && Arc::strong_count(shared) == 1 {
            return None;
        }
    }
}
