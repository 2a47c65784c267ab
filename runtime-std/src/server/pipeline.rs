//! The adapter's side of the core's [`Driver`](cove_core::server::Driver): feeding it
//! connection events (waiting while it is full), queueing the replies it releases on the
//! writers, and the committer thread that makes its batches durable. The rules (order,
//! write-ahead, bounds) are the driver's; this file only moves things and waits.

use std::net::Shutdown;
use std::sync::atomic::Ordering;
use std::sync::mpsc::TrySendError;
use std::sync::{Arc, MutexGuard, PoisonError};

use cove_core::hub::ConnId;
use cove_core::server::{DriverState, ServerEvent};
use cove_core::store::Store;
use tracing::{debug, error, warn};

use super::{Out, ServerHandle, Shared, State, lock};
use crate::now;

/// Hands one connection's events to the driver and routes what it released. Before each
/// request it waits while the driver is full, so this reader stops reading its socket
/// until a batch is durable: back-pressure instead of an unbounded queue.
pub(super) fn feed(shared: &Shared, id: ConnId, events: Vec<ServerEvent>) {
    let mut st = lock(&shared.state);
    for ev in events {
        if matches!(ev, ServerEvent::Closed { .. }) {
            // A close only frees resources, and its reader is ending: never hold it up.
            st.routes.remove(&id);
        } else {
            st = wait_for_room(shared, st);
        }
        st.driver.handle_event(now(), id, ev);
        route(&mut st);
    }
    // The events may have started a batch.
    shared.work.notify_one();
}

/// Waits while the driver is full and still accepting requests.
fn wait_for_room<'a>(shared: &'a Shared, mut st: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
    if !st.driver.is_full() {
        return st;
    }
    // Whatever made it full is a batch the committer can take.
    shared.work.notify_one();
    st.paused += 1;
    while st.driver.is_full() && st.driver.state() == DriverState::Running {
        st = shared.room.wait(st).unwrap_or_else(PoisonError::into_inner);
    }
    st.paused -= 1;
    st
}

/// Queues every reply the driver released on its connection's writer, never blocking: a
/// full queue cuts that connection off and tells the driver, whose fallout (presence
/// notices to others) the same loop routes.
pub(super) fn route(st: &mut State) {
    while let Some((id, reply)) = st.driver.poll_reply() {
        let Some(route) = st.routes.get(&id) else {
            continue; // closed meanwhile; the driver knows or is about to
        };
        // The byte bound, inside the count bound of the channel: counted before the send
        // so the writer, which may take the reply at once, never subtracts it first. One
        // reply always fits an empty queue (the core refuses one too large to seal).
        let hint = reply.encoded_len_hint();
        let used = route.bytes.fetch_add(hint, Ordering::SeqCst);
        let sent = if used > 0 && used + hint > route.max_bytes {
            Err(TrySendError::Full(Out::Reply(reply)))
        } else {
            route.tx.try_send(Out::Reply(reply))
        };
        if sent.is_err() {
            route.bytes.fetch_sub(hint, Ordering::SeqCst);
        } else {
            // Only a push raises the count: the writer swaps a reply's estimate for its
            // sealed bytes, which are never more.
            route.peak.fetch_max(used + hint, Ordering::SeqCst);
        }
        match sent {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                warn!(
                    conn = id.0,
                    "send queue exceeded; cutting the connection off"
                );
                if let Some(route) = st.routes.remove(&id) {
                    route.cut.store(true, Ordering::SeqCst);
                    // Wakes the reader, which closes with SendQueueExceeded.
                    let _ = route.stream.shutdown(Shutdown::Read);
                }
                st.driver.handle_cut(now(), id);
            }
            Err(TrySendError::Disconnected(_)) => {
                // The writer is gone (its socket failed): so is the user, at once, so
                // nothing more is counted as delivered to it.
                st.routes.remove(&id);
                st.driver.handle_cut(now(), id);
            }
        }
    }
}

/// Makes the driver's batches durable, one at a time, and routes the replies each
/// releases. The store is called without the lock, so readers go on meanwhile and their
/// operations gather into the next batch (group commit).
pub(super) fn committer<S: Store>(shared: Arc<Shared>, mut store: S) {
    let mut st = lock(&shared.state);
    loop {
        let Some(batch) = st.driver.poll_batch() else {
            shared.idle.notify_all();
            if st.stop_committer {
                return;
            }
            st = shared.work.wait(st).unwrap_or_else(PoisonError::into_inner);
            continue;
        };
        drop(st);
        let result = store.apply(&batch.ops);
        st = lock(&shared.state);
        match result {
            Ok(()) => {
                debug!(ops = batch.ops.len(), "committed");
                if let Err(e) = st.driver.handle_durable(batch.id) {
                    // Cannot happen: this is the one batch in flight.
                    error!(error = %e, "the driver refused a durable batch");
                }
                route(&mut st);
            }
            Err(e) => {
                // Nothing of this batch may be acknowledged: the driver drops what waited
                // for it and accepts nothing more; the server stops.
                error!(error = %e, "store failed; shutting down without acknowledging");
                st.driver.handle_store_failed(batch.id);
                route(&mut st);
                if st.store_failure.is_none() {
                    st.store_failure = Some(e.to_string());
                }
                if !shared.shutting_down.load(Ordering::SeqCst) {
                    drop(st);
                    ServerHandle {
                        shared: shared.clone(),
                    }
                    .shutdown();
                    st = lock(&shared.state);
                }
            }
        }
        shared.room.notify_all();
    }
}
