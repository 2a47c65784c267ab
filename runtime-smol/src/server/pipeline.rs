//! The adapter's side of the core's driver: feed it connection events (in short holds of
//! the lock, and not while it is full), route what it releases into the connections'
//! queues, and report a full queue back as a cut.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use cove_core::hub::ConnId;
use cove_core::server::{
    Depth, Driver, DriverState, DriverStats, FlowStats, Outgoing, ServerEvent,
};
use tracing::warn;

use super::direct::Direct;
use super::hub_lock::lock_hub;
use super::{Cut, HubState, Outbox, Shared};
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
    /// Connections not read right now because a connection their replies go to is deep.
    pub paused_senders: usize,
    /// Back-pressure counters since start.
    pub flow: FlowStats,
}

impl PipelineStats {
    pub(super) fn of(st: &HubState) -> PipelineStats {
        let driver: &Driver = &st.driver;
        PipelineStats {
            pending_ops: driver.pending_ops(),
            pending_replies: driver.pending_replies(),
            full: driver.is_full(),
            stats: driver.stats(),
            paused_senders: st.flow.paused(),
            flow: st.flow.stats(),
        }
    }
}

/// What waits for `outbox`'s connection: queued replies and their estimates plus the
/// sealed bytes its task has not written.
fn depth(outbox: &Outbox) -> Depth {
    let (replies, bytes) = outbox.depth();
    Depth { replies, bytes }
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

/// Hands one connection's events to the driver, in order, until the pipeline is full or
/// this connection is paused (a connection its replies go to is deep: its outbox is
/// marked paused until [`Outbox::resume`]), and routes what it released. Returns whether
/// every event was taken; those not taken stay queued, in order.
pub(super) fn feed(shared: &Shared, id: ConnId, events: &mut VecDeque<ServerEvent>) -> bool {
    let mut blocked = false;
    let mut direct = Deliveries::default();
    while !events.is_empty() && !blocked {
        let mut st = lock_hub(shared);
        for _ in 0..EVENTS_PER_HOLD {
            let Some(ev) = events.front() else { break };
            if must_wait(&st, ev) {
                blocked = true;
                break;
            }
            let close = matches!(ev, ServerEvent::Closed { .. });
            if !close && st.flow.is_paused(id) && st.driver.state() == DriverState::Running {
                if let Some(me) = st.open.get(&id) {
                    me.pause();
                }
                blocked = true;
                break;
            }
            let Some(ev) = events.pop_front() else { break };
            if close {
                st.routes.remove(&id);
            }
            st.driver.handle_event(now(), id, ev);
            if close {
                gone(&mut st, id);
            } else {
                hold(&mut st, id);
            }
        }
        route_direct(&mut st, &mut direct);
        sync_full(shared, &st);
        if st.driver.has_unbatched() {
            shared.work.notify(1);
        }
        drop(st);
        direct.deliver();
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

/// After a step of `sender`: it waits for every connection the step's replies went to
/// that is now deep (what the driver holds for it plus what its outbox holds).
fn hold(st: &mut HubState, sender: ConnId) {
    let HubState {
        driver,
        routes,
        flow,
        ..
    } = st;
    flow.after_step(
        now(),
        driver,
        sender,
        |r| routes.get(&r).map(|o| depth(o)),
        |r| {
            if let Some(outbox) = routes.get(&r)
                && outbox.set_awaited()
            {
                outbox.wake();
            }
        },
    );
}

/// `id` is gone (closed or cut off): the senders waiting for it go on, and it waits for
/// nobody.
fn gone(st: &mut HubState, id: ConnId) {
    let mut resumed = Vec::new();
    st.flow.closed(now(), id, &mut resumed);
    resume(st, &resumed);
}

fn resume(st: &HubState, resumed: &[ConnId]) {
    for s in resumed {
        if let Some(outbox) = st.open.get(s) {
            outbox.resume();
        }
    }
}

/// The task of `id` wrote: if a sender waits for `id` and what waits for it (in the
/// driver and in `outbox`) drained to the low-water mark, the senders go on.
pub(super) fn wrote(shared: &Shared, id: ConnId, outbox: &Outbox) {
    if !outbox.is_awaited() {
        return;
    }
    let mut st = lock_hub(shared);
    if !st.flow.config().is_drained(depth(outbox)) {
        return;
    }
    let d = st.driver.outstanding(id).plus(depth(outbox));
    let mut resumed = Vec::new();
    if st.flow.drained(now(), id, d, &mut resumed) {
        outbox.clear_awaited();
    }
    resume(&st, &resumed);
}

/// When a paused sender should look for a connection that does not drain (see
/// [`cut_overdue`]).
pub(super) fn flow_deadline(shared: &Shared) -> Option<cove_core::Instant> {
    lock_hub(shared).flow.deadline()
}

/// Cuts off every connection senders have waited for longer than the write timeout
/// without it draining: it does not read.
pub(super) fn cut_overdue(shared: &Shared) {
    let mut st = lock_hub(shared);
    while let Some(r) = st.flow.overdue(now()) {
        warn!(
            conn = r.0,
            "not reading while others wait; cutting the connection off"
        );
        cut(&mut st, r);
        route(&mut st);
    }
    sync_full(shared, &st);
}

/// Cuts `id` off: its task closes with `SendQueueExceeded`, the hub drops the user, the
/// senders waiting for it go on.
fn cut(st: &mut HubState, id: ConnId) {
    if let Some(outbox) = st.routes.remove(&id) {
        outbox.close(Cut::SendQueue);
    }
    st.driver.handle_cut(now(), id);
    gone(st, id);
}

/// Queues the replies the driver released on their connections, never waiting: a full
/// queue (past the hard bound, which back-pressure keeps senders from reaching) cuts that
/// connection off (the driver is told, and the replies that fallout releases are routed
/// in the same loop).
pub(super) fn route(st: &mut HubState) {
    route_to(st, None);
}

/// Replies claimed for idle connections under the hub lock, which the router seals and
/// writes itself once the lock is released ([`super::direct`]). Dropping it delivers.
#[derive(Default)]
pub(super) struct Deliveries {
    list: Vec<Delivery>,
}

type Delivery = (ConnId, Arc<dyn Direct>, Arc<Outbox>, Vec<Outgoing>);

impl Deliveries {
    /// Seals and writes every claimed connection's replies; call it off the hub lock.
    pub(super) fn deliver(&mut self) {
        for (_, slot, outbox, mut replies) in self.list.drain(..) {
            slot.deliver(&mut replies, &outbox);
        }
    }
}

impl Drop for Deliveries {
    fn drop(&mut self) {
        // A claim is always given back, or its connection's task would never run again.
        self.deliver();
    }
}

/// Like [`route`], but a reply for a connection whose task is idle is claimed into
/// `out` rather than queued (and so is every later reply for it in this pass, in
/// order): the caller delivers them once it has released the hub lock.
pub(super) fn route_direct(st: &mut HubState, out: &mut Deliveries) {
    route_to(st, Some(out));
}

fn route_to(st: &mut HubState, mut direct: Option<&mut Deliveries>) {
    while let Some((id, reply)) = st.driver.poll_outgoing() {
        let Some(outbox) = st.routes.get(&id) else {
            continue; // closed meanwhile; the driver knows or is about to
        };
        if let Some(d) = direct.as_deref_mut() {
            if let Some(e) = d.list.iter_mut().find(|e| e.0 == id) {
                e.3.push(reply);
                continue;
            }
            if let Some(slot) = st.direct.get(&id)
                && slot.try_claim(outbox)
            {
                d.list.push((id, slot.clone(), outbox.clone(), vec![reply]));
                continue;
            }
        }
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
                cut(st, id);
            }
            Err(PushError::Closed(_)) => {
                // Its task said goodbye (shutdown) and will report the close itself.
                st.routes.remove(&id);
            }
        }
    }
}
