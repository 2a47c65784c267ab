//! The committer task: makes the driver's batches durable, one at a time, off the lock.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use cove_core::server::Batch;
use cove_core::store::Store;
use tracing::{debug, error};

use super::hub_lock::lock_hub;
use super::pipeline::{Deliveries, route_direct, sync_full};
use super::{Shared, lock};

/// Takes the driver's next batch, applies it on the blocking pool, reports the outcome,
/// and routes the replies it released. Ends when told to stop with nothing in flight.
pub(super) async fn committer<S: Store + Send + 'static>(shared: Arc<Shared>, mut store: S) {
    loop {
        let Some(Batch { id, ops }) = next_batch(&shared).await else {
            return;
        };
        let n = ops.len();
        let applied;
        (store, applied) = smol::unblock(move || {
            let r = store.apply(&ops).map_err(|e| e.to_string());
            (store, r)
        })
        .await;
        let mut st = lock_hub(&shared);
        let result = applied.and_then(|()| {
            debug!(ops = n, batch = id.0, "committed");
            // Only a broken adapter reports a batch that is not in flight.
            st.driver.handle_durable(id).map_err(|e| e.to_string())
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
        sync_full(&shared, &st);
        drop(st);
        direct.deliver();
        // Connections waiting out a full pipeline look again; so does the shutdown.
        shared.space.notify(usize::MAX);
        shared.idle.notify(usize::MAX);
    }
}

/// Waits for the driver's next batch; `None` once the committer is told to stop and
/// nothing is left to apply.
async fn next_batch(shared: &Shared) -> Option<Batch> {
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
        listener.await;
    }
}
