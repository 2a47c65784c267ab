//! The adapter's side of the core's driver: feed it connection events (in short holds of
//! the lock, and not while it is full), route what it releases into the connections'
//! queues, and report a full queue back as a cut.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use cove_core::hub::ConnId;
use cove_core::server::{Driver, DriverState, DriverStats, ServerEvent};
use tracing::warn;

use super::hub_lock::lock_hub;
use super::{Cut, HubState, Shared};
use crate::mailbox::PushError;
use crate::now;

/// Most events handed to the driver under one hold of its lock: a burst of requests (a
/// client may pipeline a hundred room messages into one read) takes the lock a few
/// times, so no other executor thread waits long for it.
const EVENTS_PER_HOLD: usize = 16;

/// What the write-ahead pipeline holds now, and its counters since start: see
/// [`ServerHandle::pipeline`](super::ServerHandle::pipeline).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PipelineStats {
    /// Store operations not yet durable (waiting or being applied).
    pub pending_ops: usize,
    /// Replies held behind the store, plus those released and not yet routed.
    pub pending_replies: usize,
    /// Whether the pipeline is at its bound, so connections stop reading.
    pub full: bool,
    /// The driver's counters (steps, batches, operations, released replies, cuts).
    pub stats: DriverStats,
}

impl PipelineStats {
    pub(super) fn of(driver: &Driver) -> PipelineStats {
        PipelineStats {
            pending_ops: driver.pending_ops(),
            pending_replies: driver.pending_replies(),
            full: driver.is_full(),
            stats: driver.stats(),
        }
    }
}

/// Publishes whether connection tasks must wait: only while the driver accepts requests
/// (once it is stopping or failed it drops them, so holding them back gains nothing).
pub(super) fn sync_full(shared: &Shared, st: &HubState) {
    let full = st.driver.is_full() && st.driver.state() == DriverState::Running;
    shared.full.store(full, Ordering::Release);
}

/// Whether `ev` must wait for room in the pipeline. A close never waits: the hub must
/// learn of it, and there is one per connection.
fn must_wait(st: &HubState, ev: &ServerEvent) -> bool {
    !matches!(ev, ServerEvent::Closed { .. })
        && st.driver.state() == DriverState::Running
        && st.driver.is_full()
}

/// Hands one connection's events to the driver, in order, until the pipeline is full,
/// and routes what it released. Returns whether every event was taken; those not taken
/// stay queued, in order.
pub(super) fn feed(shared: &Shared, id: ConnId, events: &mut VecDeque<ServerEvent>) -> bool {
    let mut blocked = false;
    while !events.is_empty() && !blocked {
        let mut st = lock_hub(shared);
        for _ in 0..EVENTS_PER_HOLD {
            let Some(ev) = events.front() else { break };
            if must_wait(&st, ev) {
                blocked = true;
                break;
            }
            let Some(ev) = events.pop_front() else { break };
            if matches!(ev, ServerEvent::Closed { .. }) {
                st.routes.remove(&id);
            }
            st.driver.handle_event(now(), id, ev);
        }
        route(&mut st);
        sync_full(shared, &st);
        if st.driver.pending_ops() > 0 {
            shared.work.notify(1);
        }
    }
    events.is_empty()
}

/// Feeds the rest of a finished connection's events (its `Closed` last), waiting for room
/// in the pipeline as long as it takes.
pub(super) async fn feed_all(shared: &Shared, id: ConnId, events: &mut VecDeque<ServerEvent>) {
    loop {
        let room = shared.space.listen();
        if feed(shared, id, events) {
            return;
        }
        room.await;
    }
}

/// Queues the replies the driver released on their connections, never waiting: a full
/// queue cuts that connection off (the driver is told, and the replies that fallout
/// releases are routed in the same loop).
pub(super) fn route(st: &mut HubState) {
    while let Some((id, reply)) = st.driver.poll_reply() {
        let Some(outbox) = st.routes.get(&id) else {
            continue; // closed meanwhile; the driver knows or is about to
        };
        // Bounded in bytes (queued estimates plus what the task sealed and has not
        // written), and in replies.
        let weight = reply.encoded_len_hint();
        match outbox.push_weighted(reply, weight) {
            Ok(()) => {}
            Err(PushError::Full(_)) => {
                warn!(
                    conn = id.0,
                    "send queue exceeded; cutting the connection off"
                );
                if let Some(outbox) = st.routes.remove(&id) {
                    outbox.close(Cut::SendQueue);
                }
                st.driver.handle_cut(now(), id);
            }
            Err(PushError::Closed(_)) => {
                // Its task said goodbye (shutdown) and will report the close itself.
                st.routes.remove(&id);
            }
        }
    }
}
