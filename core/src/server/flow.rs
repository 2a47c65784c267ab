//! Back-pressure between connections: senders are slowed instead of readers cut off.
//!
//! Every connection's outbound queue has a hard bound (`send_queue` replies,
//! `send_queue_bytes` bytes); a reply that does not fit cuts the connection off. Under a
//! flat-out burst that bound would cut off members that do read, only more slowly than
//! the others send. So, below the bound, a **high-water mark**: when a step of connection
//! `S` queues a reply for `R` and what waits for `R` (replies held in the driver, queued
//! in the adapter, sealed and not written) is at or above it, `S` waits for `R`: the
//! adapter stops reading `S`'s input (its next request is not fed to the driver) until
//! `R` drained to the **low-water mark**, or went away.
//!
//! Why this cannot deadlock: pausing a connection stops only its *input*; its output is
//! written regardless, so a queue drains as fast as its client reads, whoever waits on
//! whom (two senders waiting for each other both drain). A client that does not read at
//! all stalls the senders waiting for it until the adapter's write-stall timeout
//! (`ServerOptions::write_timeout`) cuts it off, and its close releases them
//! ([`Flow::closed`]). Replies not caused by a paused sender still arrive, so the hard
//! bound still holds everything: the watermarks only decide who is slowed.
//!
//! The adapter calls, under the lock it holds the driver with:
//!
//! ```text
//! before feeding S's next request:   if flow.is_paused(S) { wait }
//! after driver.handle_event(S, ev):  flow.after_step(now, &driver, S, queue of R, wake R)
//!                                      (for R in driver.last_recipients(), still connected:
//!                                       flow.queued(now, S, R, depth of R))
//! after writing to R:                if flow.is_awaited(R): flow.drained(now, R, depth of R, &mut resumed)
//! R closed or cut off:               flow.closed(now, R, &mut resumed)
//! then:                              wake every connection in `resumed`
//! ```

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use super::{Driver, ServerOptions};
use crate::hub::ConnId;
use crate::time::{Duration, Instant};

/// What waits to be written to one connection: replies and their (estimated) bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Depth {
    /// Replies not yet sealed and written, wherever they wait.
    pub replies: usize,
    /// Their bytes ([`Reply::encoded_len_hint`](crate::hub::Reply::encoded_len_hint)),
    /// plus sealed bytes not yet written.
    pub bytes: usize,
}

impl Depth {
    /// Both together.
    pub fn plus(self, other: Depth) -> Depth {
        Depth {
            replies: self.replies.saturating_add(other.replies),
            bytes: self.bytes.saturating_add(other.bytes),
        }
    }
}

/// The watermarks of every connection's outbound queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowConfig {
    /// A queue this deep (in replies *or* bytes) makes the senders of new replies wait.
    pub high: Depth,
    /// A queue this shallow (in replies *and* bytes) lets them go on.
    pub low: Depth,
    /// A connection that senders wait for and that does not drain to the low-water mark
    /// within this long does not read (or reads too slowly to matter): cut it off
    /// ([`Flow::overdue`]). Needed besides the adapters' write-stall timeout, because the
    /// kernel's send buffer keeps growing for a while under a client that reads nothing,
    /// which looks like progress to a write.
    pub stall: Duration,
}

impl FlowConfig {
    /// Watermarks below the hard bounds of a queue: high at half of each bound, low at a
    /// quarter. The room between high and the bound absorbs what arrives before the
    /// senders stop (each sender's step in progress, replies nobody sent).
    /// `stall` is [`FlowConfig::stall`].
    pub fn for_queue(max_replies: usize, max_bytes: usize, stall: Duration) -> FlowConfig {
        FlowConfig {
            stall,
            high: Depth {
                replies: (max_replies / 2).max(1),
                bytes: (max_bytes / 2).max(1),
            },
            low: Depth {
                replies: max_replies / 4,
                bytes: max_bytes / 4,
            },
        }
    }

    /// Whether a queue holding `d` makes senders wait.
    pub fn is_deep(&self, d: Depth) -> bool {
        d.replies >= self.high.replies || d.bytes >= self.high.bytes
    }

    /// Whether a queue holding `d` lets its waiting senders go on.
    pub fn is_drained(&self, d: Depth) -> bool {
        d.replies <= self.low.replies && d.bytes <= self.low.bytes
    }
}

impl ServerOptions {
    /// The watermarks for these bounds ([`FlowConfig::for_queue`] of `send_queue` and
    /// `connection.send_queue_bytes`), and `write_timeout` as the time a connection that
    /// senders wait for has to drain.
    pub fn flow(&self) -> FlowConfig {
        FlowConfig::for_queue(
            self.send_queue,
            self.connection.send_queue_bytes,
            self.write_timeout,
        )
    }
}

/// Counters since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowStats {
    /// Times a sender started waiting.
    pub pauses: u64,
    /// Times a sender went on (its recipients drained or went away).
    pub resumes: u64,
    /// Time senders spent waiting, summed over the finished waits.
    pub paused_time: Duration,
}

/// Who waits for whom. See the module docs.
#[derive(Clone, Debug)]
pub struct Flow {
    config: FlowConfig,
    /// Sender → since when it waits, and the recipients it waits for.
    waits_for: BTreeMap<ConnId, (Instant, BTreeSet<ConnId>)>,
    /// Recipient → since when senders wait for it, and who.
    waited_by: BTreeMap<ConnId, (Instant, BTreeSet<ConnId>)>,
    stats: FlowStats,
}

impl Flow {
    /// Nobody waits yet.
    pub fn new(config: FlowConfig) -> Flow {
        Flow {
            config,
            waits_for: BTreeMap::new(),
            waited_by: BTreeMap::new(),
            stats: FlowStats::default(),
        }
    }

    /// The watermarks in force.
    pub fn config(&self) -> &FlowConfig {
        &self.config
    }

    /// A step of `sender` queued a reply for `recipient`, for whom `depth` now waits
    /// (that reply included). If that is deep, `sender` waits for `recipient`. Returns
    /// whether it does (a sender may also wait for its own queue: it is not reading its
    /// replies fast enough).
    pub fn queued(
        &mut self,
        now: Instant,
        sender: ConnId,
        recipient: ConnId,
        depth: Depth,
    ) -> bool {
        if !self.config.is_deep(depth) {
            return false;
        }
        let (_, set) = self.waits_for.entry(sender).or_insert_with(|| {
            self.stats.pauses += 1;
            (now, BTreeSet::new())
        });
        set.insert(recipient);
        let (_, senders) = self
            .waited_by
            .entry(recipient)
            .or_insert_with(|| (now, BTreeSet::new()));
        senders.insert(sender);
        true
    }

    /// After `driver` handled a step of `sender`: [`queued`](Flow::queued) for every
    /// connection the step's replies went to, with what waits for it in the driver plus
    /// `queue(r)`, what waits in the adapter's own queue for `r` (`None`: `r` is gone,
    /// nothing to wait for). `waited(r)` is called for each connection `sender` now waits
    /// for: its writer may sleep with nothing queued (what is deep may be held in the
    /// driver or being written), so the adapter has it look again.
    pub fn after_step(
        &mut self,
        now: Instant,
        driver: &Driver,
        sender: ConnId,
        mut queue: impl FnMut(ConnId) -> Option<Depth>,
        mut waited: impl FnMut(ConnId),
    ) {
        for &r in driver.last_recipients() {
            let Some(queued) = queue(r) else {
                continue;
            };
            if self.queued(now, sender, r, driver.outstanding(r).plus(queued)) {
                waited(r);
            }
        }
    }

    /// Whether `sender` must wait before its next request is fed to the driver.
    pub fn is_paused(&self, sender: ConnId) -> bool {
        self.waits_for.contains_key(&sender)
    }

    /// Whether a sender waits for `recipient` to drain.
    pub fn is_awaited(&self, recipient: ConnId) -> bool {
        self.waited_by.contains_key(&recipient)
    }

    /// `depth` now waits for `recipient`. If that is at or below the low-water mark, the
    /// senders waiting for it stop waiting for it; those left waiting for nobody are
    /// appended to `resumed` (wake them). Returns whether it drained.
    pub fn drained(
        &mut self,
        now: Instant,
        recipient: ConnId,
        depth: Depth,
        resumed: &mut Vec<ConnId>,
    ) -> bool {
        if !self.config.is_drained(depth) {
            return false;
        }
        self.release(now, recipient, resumed);
        true
    }

    /// `conn` closed or was cut off: it waits for nobody and nobody waits for it any
    /// more. Senders left waiting for nobody are appended to `resumed`.
    pub fn closed(&mut self, now: Instant, conn: ConnId, resumed: &mut Vec<ConnId>) {
        if let Some((_, recipients)) = self.waits_for.remove(&conn) {
            for r in recipients {
                self.forget_waiter(r, conn);
            }
        }
        self.release(now, conn, resumed);
    }

    /// When the connection waited for longest becomes overdue, if any is waited for: the
    /// adapter wakes up then (a paused sender's timer) and calls [`Flow::overdue`].
    pub fn deadline(&self) -> Option<Instant> {
        self.waited_by
            .values()
            .map(|(since, _)| *since)
            .min()
            .map(|since| since + self.config.stall)
    }

    /// A connection that senders have waited for since `stall` ago or longer without it
    /// draining: it does not read. The adapter cuts it off (`SendQueueExceeded`) and
    /// reports that with [`Flow::closed`], which lets its waiters go on.
    pub fn overdue(&self, now: Instant) -> Option<ConnId> {
        self.waited_by
            .iter()
            .find(|(_, (since, _))| *since + self.config.stall <= now)
            .map(|(r, _)| *r)
    }

    /// Senders waiting now.
    pub fn paused(&self) -> usize {
        self.waits_for.len()
    }

    /// How long the sender that has waited longest has waited, if any waits.
    pub fn longest_wait(&self, now: Instant) -> Option<Duration> {
        self.waits_for
            .values()
            .map(|(since, _)| *since)
            .min()
            .map(|since| now.saturating_since(since))
    }

    /// Counters since start.
    pub fn stats(&self) -> FlowStats {
        self.stats
    }

    fn forget_waiter(&mut self, recipient: ConnId, sender: ConnId) {
        if let Some((_, senders)) = self.waited_by.get_mut(&recipient) {
            senders.remove(&sender);
            if senders.is_empty() {
                self.waited_by.remove(&recipient);
            }
        }
    }

    fn release(&mut self, now: Instant, recipient: ConnId, resumed: &mut Vec<ConnId>) {
        let Some((_, senders)) = self.waited_by.remove(&recipient) else {
            return;
        };
        for s in senders {
            let Some((since, recipients)) = self.waits_for.get_mut(&s) else {
                continue;
            };
            recipients.remove(&recipient);
            if recipients.is_empty() {
                let waited = now.saturating_since(*since);
                self.waits_for.remove(&s);
                self.stats.resumes += 1;
                self.stats.paused_time = Duration::from_micros(
                    self.stats
                        .paused_time
                        .micros()
                        .saturating_add(waited.micros()),
                );
                resumed.push(s);
            }
        }
    }
}

#[cfg(test)]
mod tests;
