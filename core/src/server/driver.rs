//! The driver: the one place that routes connection events to the hub and enforces the
//! write-ahead rule. Every server — both runtime adapters, the simulator, the fuzzers and
//! the core's own test world — drives this type, so the pipeline that is tested is the
//! pipeline that ships.
//!
//! # The rules it keeps
//!
//! 1. **Write-ahead.** A step's [`StoreOp`]s are durable before any of that step's
//!    replies is released: a sender told "queued" can rely on the message surviving a
//!    crash.
//! 2. **Order.** No reply overtakes an earlier one. A step that needs no store operation
//!    is still held while anything earlier waits for the store. What a load's answer
//!    sends a connection that waited for it goes before what later steps sent that
//!    connection (`held`).
//! 3. **Bounded.** Held replies and waiting operations are bounded
//!    ([`DriverConfig`]); past the bound [`Driver::is_full`] says so and the adapter stops
//!    feeding events (back-pressure on readers) until a batch becomes durable.
//! 4. **A failed store acknowledges nothing.** After [`Driver::handle_store_failed`] every
//!    held reply is dropped and no event is accepted again.
//!
//! # Driving it
//!
//! ```text
//! connection events:   driver.handle_event(now, conn, ev)        (unless driver.is_full())
//! store:               while let Some(batch) = driver.poll_batch() {
//!                          store.apply(&batch.ops)  → driver.handle_durable(batch.id)
//!                                                   or driver.handle_store_failed(batch.id)
//!                          then for each load of batch.loads:
//!                          store.read_log(&load)    → driver.handle_loaded(now, load, msgs)
//!                      }
//! replies:             while let Some((conn, reply)) = driver.poll_reply() {
//!                          queue it on conn; if that queue is full: driver.handle_cut(now, conn)
//!                      }
//! shutdown:            driver.begin_shutdown(); wait until driver.is_drained(); say goodbye
//! ```
//!
//! After any `handle_*`, drain `poll_batch` and `poll_reply` (in either order). At most
//! one batch is in flight at a time; steps that arrive while it is being made durable
//! accumulate into the next batch (group commit).

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use self::held::Held;
use super::ServerEvent;
use super::accounts::{AccountBudgets, is_ack};
use super::admission::{Admission, AdmissionConfig, SourceAddr};
use super::flow::Depth;
use super::relay::{Outgoing, RelayEncoder};
use crate::hub::{ConnId, Hub, Reply};
use crate::store::{LogLoad, LoggedMessage, Store, StoreOp};
use crate::time::Instant;
use crate::wire::AuthMode;
use crate::wire::ErrorCode;

/// Bounds of a [`Driver`]'s pipeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriverConfig {
    /// Most replies held behind store batches that are not yet durable before
    /// [`Driver::is_full`] reports full. One step may overshoot it by its own replies
    /// (at most a room's fan-out or a DM window). Default 16,384.
    pub max_held_replies: usize,
    /// Most store operations waiting (accumulating or in flight) before
    /// [`Driver::is_full`] reports full. Default 4,096.
    pub max_pending_ops: usize,
    /// Record each step's output for [`Driver::last_step`] (for checkers: the simulator
    /// and the fuzzers). Costs a clone of every reply. Default off.
    pub observe_steps: bool,
    /// Fair shares per source address, and the connection cap.
    pub admission: AdmissionConfig,
    /// Requests per second per account, steady state, across all its connections and
    /// reconnects (acknowledgements excepted). Default 50.
    pub account_rate_per_sec: u32,
    /// Requests per account in a burst. Default 100.
    pub account_burst: u32,
    /// Refusals an account may collect in a burst (one forgiven every 10 s) before its
    /// connection is closed with `RateLimited`. Default 50.
    pub account_strikes: u32,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            max_held_replies: 16_384,
            max_pending_ops: 4_096,
            observe_steps: false,
            admission: AdmissionConfig::default(),
            account_rate_per_sec: 50,
            account_burst: 100,
            account_strikes: 50,
        }
    }
}

/// Identifies one batch of store operations handed out by [`Driver::poll_batch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BatchId(pub u64);

/// Store operations to make durable, atomically and in order, then report with
/// [`Driver::handle_durable`]; then the reads to answer, each with
/// [`Driver::handle_loaded`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// Which batch.
    pub id: BatchId,
    /// The operations, in the order the hub emitted them.
    pub ops: Vec<StoreOp>,
    /// Older room messages the hub needs back, read after `ops` are applied. Empty unless
    /// [`HubConfig::log_memory_messages`](crate::hub::HubConfig::log_memory_messages) or
    /// `log_memory_bytes` keeps fewer than all retained messages in memory.
    pub loads: Vec<LogLoad>,
}

/// A batch's loads with the store's answers, in order.
pub type Loaded = Vec<(LogLoad, Vec<LoggedMessage>)>;

impl Batch {
    /// What an adapter does with a batch, off any lock: makes its operations durable in
    /// `store` (one `apply`, skipped when there are none), then reads its loads. Report
    /// `Ok` with [`Driver::handle_durable`] and then each answer with
    /// [`Driver::handle_loaded`]; an error with [`Driver::handle_store_failed`].
    pub fn apply_to<S: Store>(&self, store: &mut S) -> Result<Loaded, S::Error> {
        if !self.ops.is_empty() {
            store.apply(&self.ops)?;
        }
        self.loads
            .iter()
            .map(|load| Ok((*load, store.read_log(load)?)))
            .collect()
    }
}

/// Where a driver is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriverState {
    /// Accepting events.
    Running,
    /// [`Driver::begin_shutdown`] was called: only `Closed` events are still routed.
    ShuttingDown,
    /// The store failed: nothing more is accepted or acknowledged.
    Failed,
}

/// What one step (one event or one cut) produced, recorded when
/// [`DriverConfig::observe_steps`] is on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// Store operations, in order.
    pub ops: Vec<StoreOp>,
    /// Replies, in order (released now or held behind the store).
    pub replies: Vec<(ConnId, Reply)>,
    /// Reads of older room messages asked of the store, in order.
    pub loads: Vec<LogLoad>,
}

/// Why the driver refused a report from the adapter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DriverError {
    /// That batch is not the one in flight.
    UnknownBatch(BatchId),
}

impl core::fmt::Display for DriverError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DriverError::UnknownBatch(id) => write!(f, "batch {} is not in flight", id.0),
        }
    }
}

impl core::error::Error for DriverError {}

/// Counters since start (for logs and benchmarks).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DriverStats {
    /// Events and cuts routed to the hub.
    pub steps: u64,
    /// Batches handed out.
    pub batches: u64,
    /// Store operations handed out.
    pub ops: u64,
    /// Replies released to the adapter.
    pub released: u64,
    /// Connections cut off because their queue was full.
    pub cuts: u64,
}

/// The server's one pipeline from connection events to durable state and replies. See the
/// module docs.
#[derive(Debug)]
pub struct Driver {
    hub: Hub,
    config: DriverConfig,
    state: DriverState,
    /// Operations of the batch being built (handed out by the next `poll_batch`).
    accumulating: Vec<StoreOp>,
    /// Reads the batch being built asks for (at most one per room).
    loads: Vec<LogLoad>,
    /// The ID the accumulating batch will get.
    next_batch: u64,
    /// The batch being made durable, and how many operations it holds.
    in_flight: Option<(BatchId, usize)>,
    /// Replies waiting for a batch to become durable or for a load's answer, in order.
    held: Held,
    /// Replies free to send, in order.
    ready: VecDeque<(ConnId, Reply)>,
    last_step: Step,
    stats: DriverStats,
    /// Encodes each room message once for all its recipients (`poll_outgoing`).
    relay: RelayEncoder,
    admission: Admission,
    accounts: AccountBudgets,
    /// Per connection, the replies held or ready and not yet polled, with their
    /// estimated bytes (no entry when none).
    outstanding: BTreeMap<ConnId, Depth>,
    /// The connections the last step's replies went to, in order (repeats possible).
    recipients: Vec<ConnId>,
    /// The step being absorbed is a load's answer.
    answering: bool,
}

impl Driver {
    /// A driver around `hub` (already restored from the store).
    pub fn new(hub: Hub, config: DriverConfig) -> Driver {
        let admission = Admission::new(config.admission.clone());
        Driver {
            hub,
            config,
            state: DriverState::Running,
            accumulating: Vec::new(),
            loads: Vec::new(),
            next_batch: 1,
            in_flight: None,
            held: Held::default(),
            ready: VecDeque::new(),
            last_step: Step::default(),
            stats: DriverStats::default(),
            relay: RelayEncoder::default(),
            admission,
            accounts: AccountBudgets::default(),
            outstanding: BTreeMap::new(),
            recipients: Vec::new(),
            answering: false,
        }
    }

    /// The hub, for queries (members, queues, statistics). It is changed only through
    /// the driver.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Where the driver is.
    pub fn state(&self) -> DriverState {
        self.state
    }

    /// Counters since start.
    pub fn stats(&self) -> DriverStats {
        self.stats
    }

    /// The bounds in force.
    pub fn config(&self) -> &DriverConfig {
        &self.config
    }

    /// A new TCP connection from `addr`: admitted (count it, then create its
    /// `ServerConnection`), or the code to refuse it with (send that code in an alert and
    /// close). Every admitted connection must end with a `Closed` event.
    pub fn handle_accept(
        &mut self,
        now: Instant,
        conn: ConnId,
        addr: SourceAddr,
    ) -> Result<(), ErrorCode> {
        if self.state != DriverState::Running {
            return Err(ErrorCode::ShuttingDown);
        }
        self.admission.accept(now, conn, addr)
    }

    /// Connections admitted and not yet closed.
    pub fn open_connections(&self) -> usize {
        self.admission.open()
    }

    /// A connection's event: routed to the hub, its output queued behind the store.
    /// While shutting down only `Closed` is routed; after a store failure nothing is.
    pub fn handle_event(&mut self, now: Instant, conn: ConnId, event: ServerEvent) {
        let route = matches!(
            (self.state, &event),
            (DriverState::Running, _) | (DriverState::ShuttingDown, ServerEvent::Closed { .. })
        );
        self.begin_step();
        match &event {
            ServerEvent::Closed { .. } => self.admission.closed(now, conn),
            ServerEvent::Request(request) if route && !is_ack(request) => {
                if let Err(close) = self.account_budget(now, conn) {
                    self.stats.steps += 1;
                    let req = crate::hub::request_id(request);
                    let code = ErrorCode::RateLimited;
                    let text = code.description();
                    self.emit(conn, Reply::Error { req, code, text });
                    if close {
                        self.emit(conn, Reply::Close { code });
                    }
                    return;
                }
            }
            ServerEvent::Authenticate { mode, .. } if route => {
                let register = *mode == AuthMode::Register;
                if let Err(code) = self.admission.authenticated(now, conn, register) {
                    // The address is over its registration budget: refused before the
                    // hub ever sees the name.
                    self.stats.steps += 1;
                    let mode = *mode;
                    let result = Err(code);
                    self.emit(conn, Reply::Auth { mode, result });
                    self.emit(conn, Reply::Close { code });
                    return;
                }
            }
            _ => {}
        }
        if route {
            self.stats.steps += 1;
            self.hub.handle_event(now, conn, event);
            self.absorb();
        }
    }

    /// The adapter could not queue a reply for `conn` (its outbound queue is full): the
    /// hub treats it as gone ("SendQ exceeded"). The adapter closes that connection with
    /// `SendQueueExceeded` and drops any further reply addressed to it.
    pub fn handle_cut(&mut self, now: Instant, conn: ConnId) {
        self.begin_step();
        if self.state == DriverState::Failed {
            return;
        }
        self.stats.steps += 1;
        self.stats.cuts += 1;
        let closed = ServerEvent::Closed {
            code: ErrorCode::SendQueueExceeded,
            by_peer: false,
        };
        self.hub.handle_event(now, conn, closed);
        self.absorb();
    }

    /// The next batch to make durable, if one is ready and none is in flight.
    pub fn poll_batch(&mut self) -> Option<Batch> {
        if self.in_flight.is_some()
            || (self.accumulating.is_empty() && self.loads.is_empty())
            || self.state == DriverState::Failed
        {
            return None;
        }
        let id = BatchId(self.next_batch);
        self.next_batch += 1;
        let ops = core::mem::take(&mut self.accumulating);
        let loads = core::mem::take(&mut self.loads);
        self.in_flight = Some((id, ops.len()));
        self.stats.batches += 1;
        self.stats.ops += ops.len() as u64;
        Some(Batch { id, ops, loads })
    }

    /// The batch `id` is durable: release the replies that waited for it.
    pub fn handle_durable(&mut self, id: BatchId) -> Result<(), DriverError> {
        match self.in_flight {
            Some((current, _)) if current == id => {}
            _ => return Err(DriverError::UnknownBatch(id)),
        }
        self.in_flight = None;
        self.held.release(Some(id.0), &mut self.ready);
        Ok(())
    }

    /// The store's answer to `load` (handed out in a batch): the messages it holds of
    /// those asked for, in any order. Call it after that batch's
    /// [`handle_durable`](Driver::handle_durable). The messages go to the members that
    /// waited for them and to the history pages that did, queued like any step's replies.
    pub fn handle_loaded(&mut self, now: Instant, load: LogLoad, msgs: Vec<LoggedMessage>) {
        self.begin_step();
        if self.state == DriverState::Failed {
            return;
        }
        self.stats.steps += 1;
        self.hub.handle_loaded(now, load, msgs);
        self.answering = true;
        self.absorb();
        self.answering = false;
    }

    /// Batch `id` is durable and its loads answered (what [`Batch::apply_to`] returned):
    /// [`handle_durable`](Driver::handle_durable), then
    /// [`handle_loaded`](Driver::handle_loaded) for each answer.
    pub fn handle_stored(
        &mut self,
        now: Instant,
        id: BatchId,
        loaded: Loaded,
    ) -> Result<(), DriverError> {
        self.handle_durable(id)?;
        for (load, msgs) in loaded {
            self.handle_loaded(now, load, msgs);
        }
        Ok(())
    }

    /// The store failed to make batch `id` (or anything) durable: drop every held reply
    /// and operation and accept nothing more. The adapter stops the server.
    pub fn handle_store_failed(&mut self, id: BatchId) {
        let _ = id;
        self.state = DriverState::Failed;
        self.in_flight = None;
        self.accumulating.clear();
        self.loads.clear();
        self.held.clear();
        self.outstanding.clear();
        for (conn, reply) in &self.ready {
            add(&mut self.outstanding, *conn, reply);
        }
    }

    /// The next reply free to send, and to which connection, in order.
    pub fn poll_reply(&mut self) -> Option<(ConnId, Reply)> {
        let next = self.ready.pop_front();
        if let Some((conn, reply)) = &next {
            self.stats.released += 1;
            if let Some(d) = self.outstanding.get_mut(conn) {
                d.replies -= 1;
                d.bytes -= reply.encoded_len_hint();
                if d.replies == 0 {
                    self.outstanding.remove(conn);
                }
            }
        }
        next
    }

    /// [`poll_reply`](Self::poll_reply) with the reply's plaintext encoding when it is a
    /// room message, made once for all its recipients: hand it to
    /// [`ServerConnection::handle_outgoing`](super::ServerConnection::handle_outgoing).
    pub fn poll_outgoing(&mut self) -> Option<(ConnId, Outgoing)> {
        let (conn, reply) = self.poll_reply()?;
        Some((conn, self.relay.outgoing(reply)))
    }

    /// Whether the pipeline is at its bound: stop feeding events until a batch is durable.
    pub fn is_full(&self) -> bool {
        let pending_ops = self.accumulating.len() + self.in_flight.map_or(0, |(_, n)| n);
        self.held.len() >= self.config.max_held_replies
            || pending_ops >= self.config.max_pending_ops
    }

    /// Whether nothing waits: no operation unbatched or in flight, no reply held or
    /// unpolled, no read unanswered. After a store failure, whether every releasable reply was polled.
    pub fn is_drained(&self) -> bool {
        self.accumulating.is_empty()
            && self.loads.is_empty()
            && self.in_flight.is_none()
            && self.held.is_empty()
            && self.ready.is_empty()
    }

    /// Replies held behind the store plus those released and not yet polled.
    pub fn pending_replies(&self) -> usize {
        self.held.len() + self.ready.len()
    }

    /// What waits in the pipeline for `conn`: replies held behind the store or released
    /// and not yet polled, and their estimated bytes. An adapter adds what waits in its
    /// own queue for `conn` to judge how deep that connection's backlog is (see
    /// [`Flow`](super::Flow)).
    pub fn outstanding(&self, conn: ConnId) -> Depth {
        self.outstanding.get(&conn).copied().unwrap_or_default()
    }

    /// The connections the replies of the last [`handle_event`](Driver::handle_event) or
    /// [`handle_cut`](Driver::handle_cut) went to, in order; a connection may appear more
    /// than once. Back-pressure asks whether any of them is deep (see
    /// [`Flow`](super::Flow)).
    pub fn last_recipients(&self) -> &[ConnId] {
        &self.recipients
    }

    /// Whether operations or loads wait to be handed out in a batch: an adapter wakes
    /// its committer when a step leaves some (a step may ask only for a load).
    pub fn has_unbatched(&self) -> bool {
        !self.accumulating.is_empty() || !self.loads.is_empty()
    }

    /// Store operations not yet durable (accumulating and in flight).
    pub fn pending_ops(&self) -> usize {
        self.accumulating.len() + self.in_flight.map_or(0, |(_, n)| n)
    }

    /// Stops routing new logins and requests; `Closed` events still reach the hub. Wait
    /// for [`Driver::is_drained`], then say goodbye to every connection.
    pub fn begin_shutdown(&mut self) {
        if self.state == DriverState::Running {
            self.state = DriverState::ShuttingDown;
        }
    }

    /// What the last `handle_event` or `handle_cut` produced (empty unless
    /// [`DriverConfig::observe_steps`] is on).
    pub fn last_step(&self) -> &Step {
        &self.last_step
    }

    /// Gives the hub back (for example to inspect it after a simulated crash).
    pub fn into_hub(self) -> Hub {
        self.hub
    }

    fn begin_step(&mut self) {
        self.recipients.clear();
        if self.config.observe_steps {
            self.last_step.ops.clear();
            self.last_step.replies.clear();
            self.last_step.loads.clear();
        }
    }

    /// The batch a reply produced now must wait for: the newest one not yet durable.
    fn barrier(&self) -> Option<u64> {
        if !self.accumulating.is_empty() {
            Some(self.next_batch)
        } else {
            self.in_flight.map(|(id, _)| id.0)
        }
    }

    /// Takes one request from the budget of the account logged in on `conn`. `Err(close)`
    /// when over budget; `close` once the account has used up its refusals too.
    fn account_budget(&mut self, now: Instant, conn: ConnId) -> Result<(), bool> {
        let Some(name) = self.hub.user_of(conn) else {
            return Ok(()); // the hub answers NotAuthenticated
        };
        let c = &self.config;
        let budget = self.accounts.get(now, name, c);
        if budget.requests.try_take(now) {
            return Ok(());
        }
        Err(!budget.strikes.try_take(now))
    }

    /// A reply of the driver's own, queued in order like the hub's.
    fn emit(&mut self, conn: ConnId, reply: Reply) {
        if self.config.observe_steps {
            self.last_step.replies.push((conn, reply.clone()));
        }
        self.count(conn, &reply);
        if let Some(free) = self.held.push(self.barrier(), conn, reply) {
            self.ready.push_back(free);
        }
    }

    /// Counts a reply of this step for `conn` as outstanding.
    fn count(&mut self, conn: ConnId, reply: &Reply) {
        add(&mut self.outstanding, conn, reply);
        if self.recipients.last() != Some(&conn) {
            self.recipients.push(conn);
        }
    }

    /// Moves the hub's output of one step into the pipeline.
    fn absorb(&mut self) {
        while let Some(op) = self.hub.poll_store_op() {
            if self.config.observe_steps {
                self.last_step.ops.push(op.clone());
            }
            self.accumulating.push(op);
        }
        while let Some(load) = self.hub.poll_load() {
            if self.config.observe_steps {
                self.last_step.loads.push(load);
            }
            self.loads.push(load);
        }
        let barrier = self.barrier();
        #[cfg(feature = "inject-bugs")]
        let barrier = if self.hub.config().bugs.release_before_durable {
            None
        } else {
            barrier
        };
        // A load's answer: what it sends a waiting connection goes before what later
        // steps sent it.
        let answer = self.answering && !self.held.waiting().is_empty();
        let mut answered = Vec::new();
        while let Some((conn, reply)) = self.hub.poll_delivery() {
            if self.config.observe_steps {
                self.last_step.replies.push((conn, reply.clone()));
            }
            self.count(conn, &reply);
            if answer {
                answered.push((conn, reply));
            } else if let Some(free) = self.held.push(barrier, conn, reply) {
                self.ready.push_back(free);
            }
        }
        for (conn, reply) in self.held.answer(barrier, answered) {
            if let Some(free) = self.held.push(barrier, conn, reply) {
                self.ready.push_back(free);
            }
        }
        self.update_waits();
    }

    /// Marks the connections that started waiting for a load in this step, unmarks those
    /// that no longer wait, and releases what that frees.
    fn update_waits(&mut self) {
        while let Some(conn) = self.hub.poll_waiting() {
            self.held.wait(conn);
        }
        if self.held.waiting().is_empty() {
            return;
        }
        let done: Vec<ConnId> = (self.held.waiting().iter().copied())
            .filter(|c| !self.hub.waits_for_store(*c))
            .collect();
        for conn in done {
            self.held.end_wait(conn);
        }
        self.held.release(None, &mut self.ready);
    }
}

fn add(outstanding: &mut BTreeMap<ConnId, Depth>, conn: ConnId, reply: &Reply) {
    let d = outstanding.entry(conn).or_default();
    d.replies += 1;
    d.bytes += reply.encoded_len_hint();
}

mod held;
#[cfg(test)]
mod load_tests;
#[cfg(test)]
mod tests;
