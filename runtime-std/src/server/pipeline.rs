//! The adapter's side of the core's [`Driver`](cove_core::server::Driver): feeding it
//! connection events (waiting while it is full), queueing the replies it releases on the
//! writers, and the committer thread that makes its batches durable. The rules (order,
//! write-ahead, bounds) are the driver's; this file only moves things and waits.

use std::net::Shutdown;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard, PoisonError};

use cove_core::hub::ConnId;
use cove_core::server::{DriverState, ServerEvent};
use cove_core::store::Store;
use tracing::{debug, error, warn};

use super::outq::PushError;
use super::{ServerHandle, Shared, State, lock};
use crate::now;

/// Hands one connection's events to the driver and routes what it released. Before each
/// request it waits while the driver is full or this connection is paused (a connection
/// its replies go to is deep), so this reader stops reading its socket meanwhile:
/// back-pressure instead of an unbounded queue or a cut-off reader.
pub(super) fn feed(shared: &Shared, id: ConnId, events: Vec<ServerEvent>) {
    let mut st = lock(&shared.state);
    for ev in events {
        let close = matches!(ev, ServerEvent::Closed { .. });
        if close {
            // A close only frees resources, and its reader is ending: never hold it up.
            st.routes.remove(&id);
        } else {
            st = wait_for_room(shared, st, id);
        }
        st.driver.handle_event(now(), id, ev);
        if close {
            gone(&mut st, id);
        } else {
            hold(&mut st, id);
        }
        route(&mut st);
    }
    // The events may have started a batch.
    shared.work.notify_one();
}

/// Waits while the driver is full, or `id` waits for deep connections to drain, and the
/// driver still accepts requests.
fn wait_for_room<'a>(
    shared: &'a Shared,
    mut st: MutexGuard<'a, State>,
    id: ConnId,
) -> MutexGuard<'a, State> {
    while (st.driver.is_full() || st.flow.is_paused(id))
        && st.driver.state() == DriverState::Running
    {
        // Whatever made it full, or the events fed before this pause, are a batch the
        // committer can take: their replies must not wait for this reader.
        shared.work.notify_one();
        st.paused += 1;
        // Paused by back-pressure, it waits on its own condition variable (woken when the
        // connections it waits for drain); for a full driver, on the shared one.
        let own = st
            .routes
            .get(&id)
            .filter(|_| st.flow.is_paused(id))
            .map(|r| r.resume.clone());
        let cv = own.as_deref().unwrap_or(&shared.room);
        // A connection waited for too long without draining does not read: whichever
        // paused reader wakes first cuts it off.
        st = match st.flow.deadline() {
            None => cv.wait(st).unwrap_or_else(PoisonError::into_inner),
            Some(at) => {
                let left = crate::until(at).max(std::time::Duration::from_millis(1));
                let (st, _) = cv
                    .wait_timeout(st, left)
                    .unwrap_or_else(PoisonError::into_inner);
                st
            }
        };
        st.paused -= 1;
        while let Some(r) = st.flow.overdue(now()) {
            warn!(
                conn = r.0,
                "not reading while others wait; cutting the connection off"
            );
            cut(&mut st, r);
            route(&mut st);
        }
    }
    st
}

/// Cuts `id` off: its reader closes with `SendQueueExceeded`, the hub drops the user,
/// the senders waiting for it go on.
fn cut(st: &mut State, id: ConnId) {
    if let Some(route) = st.routes.remove(&id) {
        route.cut.store(true, Ordering::SeqCst);
        // Its reader may be paused rather than reading.
        route.resume.notify_one();
        // Wakes the reader, which closes with SendQueueExceeded.
        let _ = route.stream.shutdown(Shutdown::Read);
    }
    st.driver.handle_cut(now(), id);
    gone(st, id);
}

/// After a step of `sender`: it waits for every connection the step's replies went to
/// that is now deep (what the driver holds for it plus what its queue holds).
fn hold(st: &mut State, sender: ConnId) {
    let State {
        driver,
        routes,
        flow,
        ..
    } = st;
    flow.after_step(
        now(),
        driver,
        sender,
        |r| routes.get(&r).map(|route| route.queue.depth()),
        |r| {
            if let Some(route) = routes.get(&r)
                && route.queue.set_awaited()
            {
                route.queue.wake();
            }
        },
    );
}

/// `id` is gone (closed, cut off, or its writer failed): the senders waiting for it go
/// on, and it waits for nobody.
pub(super) fn gone(st: &mut State, id: ConnId) {
    let mut resumed = Vec::new();
    st.flow.closed(now(), id, &mut resumed);
    wake(st, &resumed);
}

/// Wakes the readers of the `resumed` senders (each waits on its own condition variable).
fn wake(st: &State, resumed: &[ConnId]) {
    for id in resumed {
        if let Some(route) = st.routes.get(id) {
            route.resume.notify_one();
        }
    }
}

/// The writer of `id` wrote: if a sender waits for `id` and what waits for it (in the
/// driver and in `queue`) drained to the low-water mark, the senders go on.
pub(super) fn wrote(shared: &Shared, id: ConnId, queue: &super::outq::OutQueue) {
    if !queue.is_awaited() {
        return;
    }
    let mut st = lock(&shared.state);
    // Only a paused sender's hold sets the mark, under this lock, so no hold is missed.
    if !st.flow.config().is_drained(queue.depth()) {
        return;
    }
    let depth = st.driver.outstanding(id).plus(queue.depth());
    let mut resumed = Vec::new();
    if st.flow.drained(now(), id, depth, &mut resumed) {
        queue.clear_awaited();
    }
    wake(&st, &resumed);
}

/// Queues every reply the driver released on its connection's writer, never blocking: a
/// full queue (past the hard bound, which back-pressure keeps readers from reaching)
/// cuts that connection off and tells the driver, whose fallout (presence notices to
/// others) the same loop routes.
pub(super) fn route(st: &mut State) {
    while let Some((id, reply)) = st.driver.poll_outgoing() {
        let Some(route) = st.routes.get(&id) else {
            continue; // closed meanwhile; the driver knows or is about to
        };
        match route.queue.push(reply) {
            Ok(()) => {}
            Err(PushError::Full) => {
                warn!(
                    conn = id.0,
                    "send queue exceeded; cutting the connection off"
                );
                cut(st, id);
            }
            Err(PushError::Closed) => {
                // The writer is gone (its socket failed): so is the user, at once, so
                // nothing more is counted as delivered to it.
                st.routes.remove(&id);
                st.driver.handle_cut(now(), id);
                gone(st, id);
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
        let result = batch.apply_to(&mut store);
        st = lock(&shared.state);
        match result {
            Ok(loaded) => {
                debug!(ops = batch.ops.len(), loads = loaded.len(), "committed");
                if let Err(e) = st.driver.handle_stored(now(), batch.id, loaded) {
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
