//! What the event loop asks of a protocol (cove or IRC), and the receiver-side
//! bookkeeping both share.

use super::plan::{Header, Plan};
use super::shared::Shared;
use super::stats::{Arrival, Counters, Histogram, Stream};

/// One simulated client's place in the workload.
pub struct Member {
    /// Its index (0..N).
    pub client: u32,
    /// The rooms it is in.
    pub rooms: Vec<u32>,
    /// One stream per (room, sender position): `streams[j * M + pos]`.
    pub streams: Vec<Stream>,
    /// Messages queued so far.
    pub sent: u32,
}

impl Member {
    /// Client `client`'s place in `plan`.
    pub fn new(plan: &Plan, client: u32) -> Member {
        let rooms = plan.rooms_of(client);
        let streams = vec![Stream::default(); rooms.len() * plan.members as usize];
        Member {
            client,
            rooms,
            streams,
            sent: 0,
        }
    }
}

/// Rare things worth reporting, with the first example of each.
#[derive(Default)]
pub struct Notes {
    /// The first refusal seen during the run.
    pub refusal: Option<String>,
    /// The first cut-off seen during the run.
    pub cut_off: Option<String>,
}

/// The per-thread context a protocol reports into while handling input.
pub struct Cx<'a> {
    /// The workload.
    pub shared: &'a Shared,
    /// Now, in ns since the common start.
    pub now_ns: u64,
    /// Now, as the cove core counts time.
    pub core_now: cove_core::Instant,
    /// Counters.
    pub counters: &'a mut Counters,
    /// End-to-end latency of deliveries to other members.
    pub latency: &'a mut Histogram,
    /// First refusal and cut-off.
    pub notes: &'a mut Notes,
    /// Whether the measured run has started (before it, refusals are fatal).
    pub running: bool,
    /// When the last delivery arrived (ns since the common start).
    pub last_delivery_ns: &'a mut u64,
}

impl Cx<'_> {
    /// A room message with `body` reached `me`: checks and counts it.
    pub fn deliver(&mut self, me: &mut Member, body: &[u8]) {
        let plan = &self.shared.plan;
        let Some(h) = Header::read(body) else {
            self.counters.malformed += 1;
            return;
        };
        let (Some(j), Some(pos)) = (
            me.rooms.iter().position(|&r| r == h.room),
            plan.position(h.sender, h.room),
        ) else {
            self.counters.malformed += 1;
            return;
        };
        let Some(stream) = me.streams.get_mut(j * plan.members as usize + pos as usize) else {
            self.counters.malformed += 1;
            return;
        };
        match stream.arrive(h.seq) {
            Arrival::Duplicate => {
                self.counters.duplicated += 1;
                return;
            }
            Arrival::Reordered => self.counters.reordered += 1,
            Arrival::InOrder => {}
        }
        if h.sender == me.client {
            self.counters.echoes += 1;
        } else {
            self.counters.deliveries += 1;
            self.latency.record(self.now_ns.saturating_sub(h.sent_ns));
        }
        *self.last_delivery_ns = self.now_ns;
    }

    /// The server refused a request during the run.
    pub fn refused(&mut self, what: impl FnOnce() -> String) {
        self.counters.refused += 1;
        if self.notes.refusal.is_none() {
            self.notes.refusal = Some(what());
        }
    }
}

/// Where a connection is in the setup.
#[derive(Clone, Debug, Default)]
pub struct Status {
    /// Logged in (registered).
    pub ready: bool,
    /// Room creations and joins sent and not answered yet.
    pub pending: usize,
    /// Why it cannot go on, if it cannot.
    pub failure: Option<String>,
}

/// A protocol's client connection, driven by the event loop.
pub trait Endpoint {
    /// Bytes waiting to be written.
    fn output(&self) -> &[u8];
    /// `n` bytes of [`Endpoint::output`] were written.
    fn advance(&mut self, n: usize);
    /// Handles the first whole frame or line of `buf`; returns the bytes used, 0 when
    /// `buf` holds no whole one.
    fn input(&mut self, buf: &mut [u8], cx: &mut Cx<'_>, me: &mut Member) -> usize;
    /// After a batch of input (cove acknowledges room messages here).
    fn after_input(&mut self, _cx: &mut Cx<'_>) {}
    /// Queues a message with `body` to `me.rooms[j]`; false when the output has no room.
    fn queue(&mut self, cx: &mut Cx<'_>, j: usize, body: &[u8]) -> bool;
    /// Creates `me.rooms[j]` (cove) or joins it first (IRC).
    fn create(&mut self, cx: &mut Cx<'_>, me: &Member, j: usize);
    /// Joins `me.rooms[j]`, created by another client.
    fn join(&mut self, cx: &mut Cx<'_>, me: &Member, j: usize);
    /// Timers (keepalive), about once a second.
    fn tick(&mut self, _cx: &mut Cx<'_>) {}
    /// The connection ended (EOF or error) with `why`.
    fn ended(&mut self, why: &str);
    /// Where it is.
    fn status(&self) -> Status;
    /// Whether it is closed.
    fn closed(&self) -> bool;
}
