//! One connection's task: its core state, its stream, its reply queue and its timer.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use cove_core::hub::{ConnId, Reply};
use cove_core::server::{ServerConnection, ServerEvent, SourceAddr};
use cove_core::wire::ErrorCode;
use event_listener::EventListener;
use futures_lite::{AsyncRead, AsyncWrite};
use smol::Timer;
use tracing::{debug, info, warn};

use super::pipeline::{feed, feed_all};
use super::{Cut, Outbox, Shared, lock};
use crate::scratch::{consume, poll_read_append};
use crate::{now, os_rng, to_std_instant};

fn log_event(id: ConnId, peer: Option<SocketAddr>, ev: &ServerEvent) {
    let peer = PeerDisplay(peer);
    match ev {
        ServerEvent::Authenticate { name, mode, .. } => {
            info!(conn = id.0, %peer, %name, ?mode, "handshake complete")
        }
        ServerEvent::Request(r) => debug!(conn = id.0, request = r.kind(), "request"),
        ServerEvent::Closed { code, by_peer } => {
            info!(conn = id.0, %peer, %code, by_peer, "connection closed")
        }
    }
}

struct PeerDisplay(Option<SocketAddr>);

impl fmt::Display for PeerDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(a) => write!(f, "{a}"),
            None => f.write_str("-"),
        }
    }
}

/// Most replies taken from the queue per step, so a busy connection still reads and
/// writes in between.
const TAKE_BATCH: usize = 256;
/// Steps per poll before a busy connection yields to other tasks.
const BUDGET: u32 = 32;

pub(super) async fn serve_connection<S>(
    shared: Arc<Shared>,
    mut stream: S,
    peer: Option<SocketAddr>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let now = now();
    let mut conn = ServerConnection::new(
        now,
        shared.config.clone(),
        shared.provider,
        &shared.identity,
        &mut os_rng(),
    );
    let id = ConnId(shared.next_conn.fetch_add(1, Ordering::Relaxed));
    // Bounded by count and by bytes: the estimates of the replies queued plus what the task
    // sealed and has not written (which it reports) stay within `send_queue_bytes`.
    let outbox = Arc::new(Outbox::with_byte_cap(
        shared.options.send_queue,
        shared.options.connection.send_queue_bytes,
    ));
    let admitted = {
        let mut st = lock(&shared.state);
        if shared.shutting_down.load(Ordering::SeqCst) {
            return;
        }
        // The connection cap and the fair shares per address are the driver's.
        let source = peer.map_or(SourceAddr::UNKNOWN, |p| p.ip().into());
        let admitted = st.driver.handle_accept(now, id, source);
        if admitted.is_ok() {
            st.routes.insert(id, outbox.clone());
            st.open.insert(id, outbox.clone());
        }
        admitted
    };
    if let Err(code) = admitted {
        warn!(peer = %PeerDisplay(peer), %code, "refusing a connection");
        conn.close(now, code);
        let goodbye = async {
            let _ =
                futures_lite::AsyncWriteExt::write_all(&mut stream, conn.pending_transmit()).await;
            let _ = futures_lite::AsyncWriteExt::close(&mut stream).await;
            linger(&mut stream).await;
        };
        futures_lite::future::or(goodbye, async {
            Timer::after(Duration::from_secs(1)).await;
        })
        .await;
        return;
    }
    debug!(conn = id.0, peer = %PeerDisplay(peer), "connection accepted");
    let cap = conn.min_read_buffer();
    let mut task = ConnTask {
        shared: &shared,
        id,
        peer,
        stream,
        conn,
        outbox: &outbox,
        input: Vec::new(),
        cap,
        events: VecDeque::new(),
        space: None,
        waiting: false,
        replies: Vec::new(),
        timer: Timer::never(),
        timer_at: None,
        stall_deadline: None,
        read_done: false,
        write_failed: false,
        need_flush: false,
        held: 0,
    };
    std::future::poll_fn(|cx| task.poll(cx)).await;
    // Closed: tell the driver (if the core has not yet), waiting for room if its pipeline
    // is full, then close the stream's write side (briefly: a peer that stopped reading
    // gets no more time).
    if !task.conn.is_closed() {
        task.conn.handle_eof(crate::now());
    }
    task.collect_events();
    task.space = None;
    feed_all(task.shared, task.id, &mut task.events).await;
    if !task.write_failed {
        let close = futures_lite::AsyncWriteExt::close(&mut task.stream);
        futures_lite::future::or(async { drop(close.await) }, async {
            Timer::after(Duration::from_millis(100)).await;
        })
        .await;
        linger(&mut task.stream).await;
    }
    drop(task);
    {
        let mut st = lock(&shared.state);
        st.open.remove(&id);
        st.routes.remove(&id);
    }
    shared.idle.notify(usize::MAX);
}

/// How long a closed connection keeps reading (and discarding) what the peer still sends.
const LINGER: Duration = Duration::from_secs(2);

/// Reads and discards the peer's remaining input until it closes or [`LINGER`] passes.
/// Closing a socket that still holds unread input sends a reset, and the reset can destroy
/// the goodbye (`RateLimited`, `FrameTooLarge`, ...) before the peer has read it.
async fn linger<S: AsyncRead + Unpin>(stream: &mut S) {
    let drain = async {
        let mut sink = [0u8; 1024];
        while let Ok(n) = futures_lite::AsyncReadExt::read(stream, &mut sink).await {
            if n == 0 {
                break;
            }
        }
    };
    futures_lite::future::or(drain, async {
        Timer::after(LINGER).await;
    })
    .await;
}

/// The state of one connection's task.
struct ConnTask<'a, S> {
    shared: &'a Shared,
    id: ConnId,
    peer: Option<SocketAddr>,
    stream: S,
    conn: ServerConnection,
    outbox: &'a Outbox,
    /// Bytes read and not yet consumed by the core (empty between frames).
    input: Vec<u8>,
    /// The most `input` may hold: one whole frame.
    cap: usize,
    /// Events taken from the core and not yet fed to the driver (it was full). While any
    /// wait, nothing more is read.
    events: VecDeque<ServerEvent>,
    /// Armed while this task waits for room in the driver's pipeline.
    space: Option<EventListener>,
    /// The last feed stopped at a full pipeline; try again once `space` fires.
    waiting: bool,
    replies: Vec<Reply>,
    timer: Timer,
    timer_at: Option<std::time::Instant>,
    /// When a write that is stuck cuts the client off.
    stall_deadline: Option<cove_core::Instant>,
    read_done: bool,
    write_failed: bool,
    need_flush: bool,
    /// The sealed bytes not yet written, as last reported to the outbox.
    held: usize,
}

impl<S: AsyncRead + AsyncWrite + Unpin> ConnTask<'_, S> {
    /// Whether the driver's pipeline is full (published by whoever changed it last).
    fn pipeline_full(&self) -> bool {
        self.shared.full.load(Ordering::Acquire)
    }

    /// Feeds the waiting events to the driver as far as it takes them; returns whether it
    /// took any. Sets `waiting` if some are left.
    fn feed_events(&mut self) -> bool {
        let before = self.events.len();
        self.waiting = !feed(self.shared, self.id, &mut self.events);
        self.events.len() < before
    }

    fn collect_events(&mut self) {
        while let Some(ev) = self.conn.poll_event() {
            log_event(self.id, self.peer, &ev);
            self.events.push_back(ev);
        }
    }

    /// One wake-up: do everything that is ready, in the core's drain order.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut budget = BUDGET;
        loop {
            let now = now();
            let mut progress = false;

            // 0. Back-pressure: while the driver's pipeline is full, or this task's last
            //    events did not fit, read nothing and wait for a batch to become durable.
            //    The listener is armed before the condition is looked at again, so no
            //    wake-up is lost.
            if self.space.is_none() && (self.waiting || self.pipeline_full()) {
                self.space = Some(self.shared.space.listen());
                if self.waiting {
                    progress |= self.feed_events();
                }
            }
            let blocked = self.waiting || self.pipeline_full();
            if let Some(space) = self.space.as_mut() {
                if !blocked {
                    self.space = None; // nothing to wait for after all
                } else if Pin::new(space).poll(cx).is_ready() {
                    self.space = None;
                    self.waiting = false;
                    progress = true;
                }
            }
            let may_read = !self.pipeline_full() && self.events.is_empty();

            // 1. Replies from the driver. No high-water mark of its own: the outbox counts
            //    what is sealed and not written with what is queued, under the one byte
            //    bound, so a client that does not read is cut off when their sum would
            //    pass it, and taking a reply never seals past it.
            let max = TAKE_BATCH;
            let taken = self.outbox.poll_take(cx, &mut self.replies, max);
            if taken.n > 0 {
                // The outbox now counts their estimates as held: report the real figure.
                self.held = usize::MAX;
            }
            match taken.closed {
                Some(Cut::Force) => return Poll::Ready(()),
                Some(Cut::SendQueue) => {
                    self.replies.clear();
                    if !self.conn.is_closed() {
                        self.conn.close(now, ErrorCode::SendQueueExceeded);
                        progress = true;
                    }
                }
                Some(Cut::Shutdown) | None => {
                    for r in self.replies.drain(..) {
                        self.conn.handle_reply(now, &r);
                    }
                    progress |= taken.n > 0;
                    if taken.closed.is_some() && taken.n < max && !self.conn.is_closed() {
                        self.conn.close(now, ErrorCode::ShuttingDown);
                        progress = true;
                    }
                }
            }

            // 2. Input.
            if may_read && !self.read_done && !self.conn.is_closed() {
                match poll_read_append(&mut self.stream, cx, &mut self.input, self.cap) {
                    Poll::Ready(Ok(0)) => {
                        self.read_done = true;
                        if self.input.len() >= self.cap {
                            // Cannot happen with a conforming core (a frame always fits).
                            self.conn.close(now, ErrorCode::FrameTooLarge);
                        } else {
                            self.conn.handle_eof(now);
                        }
                        progress = true;
                    }
                    Poll::Ready(Ok(_)) => {
                        loop {
                            let used = self.conn.handle_input(now, &mut self.input);
                            self.collect_events();
                            consume(&mut self.input, used);
                            if used == 0 {
                                break;
                            }
                        }
                        progress = true;
                    }
                    Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {
                        progress = true;
                    }
                    Poll::Ready(Err(e)) => {
                        debug!(conn = self.id.0, error = %e, "read failed");
                        self.read_done = true;
                        self.conn.handle_eof(now);
                        progress = true;
                    }
                    Poll::Pending => {}
                }
            }

            // 3. Timers: the core's, and the write-stall deadline.
            if self.stall_deadline.is_some_and(|stall| now >= stall)
                && !self.conn.pending_transmit().is_empty()
            {
                warn!(conn = self.id.0, "write stalled; cutting the client off");
                self.write_failed = true;
                self.conn.handle_eof(now);
            }
            if self.conn.poll_timeout().is_some_and(|t| now >= t) {
                self.conn.handle_timeout(now);
                progress = true;
            }

            // 4. Events to the driver (which may queue replies for us: step 1 again).
            self.collect_events();
            if !self.events.is_empty() && !self.waiting {
                // A feed that stops at a full pipeline counts as progress too: the next
                // round arms the listener (step 0).
                progress |= self.feed_events() || self.waiting;
            }

            // 5. Output: everything pending, in as few writes as the socket allows.
            while !self.write_failed && !self.conn.pending_transmit().is_empty() {
                match Pin::new(&mut self.stream).poll_write(cx, self.conn.pending_transmit()) {
                    Poll::Ready(Ok(0)) => {
                        self.write_failed = true;
                    }
                    Poll::Ready(Ok(n)) => {
                        self.conn.advance_transmit(n);
                        self.stall_deadline = None;
                        self.need_flush = true;
                        progress = true;
                    }
                    Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                    Poll::Ready(Err(e)) => {
                        debug!(conn = self.id.0, error = %e, "write failed; closing");
                        self.write_failed = true;
                    }
                    Poll::Pending => {
                        if self.stall_deadline.is_none() {
                            self.stall_deadline = Some(now + self.write_timeout());
                        }
                        break;
                    }
                }
            }
            self.report_held();
            if self.write_failed {
                if !self.conn.is_closed() {
                    self.conn.handle_eof(now);
                }
                return Poll::Ready(());
            }
            if self.conn.pending_transmit().is_empty() {
                self.stall_deadline = None;
                if self.need_flush {
                    match Pin::new(&mut self.stream).poll_flush(cx) {
                        Poll::Ready(Ok(())) => self.need_flush = false,
                        Poll::Ready(Err(_)) => {
                            self.write_failed = true;
                            progress = true;
                        }
                        Poll::Pending => {}
                    }
                }
                if self.conn.is_closed() && !self.need_flush {
                    return Poll::Ready(());
                }
            }

            // 6. Arm the one timer for the earliest deadline.
            let deadline = match (self.conn.poll_timeout(), self.stall_deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            match deadline {
                Some(d) => {
                    let at = to_std_instant(d);
                    if self.timer_at != Some(at) {
                        self.timer.set_at(at);
                        self.timer_at = Some(at);
                    }
                    if Pin::new(&mut self.timer).poll(cx).is_ready() {
                        self.timer_at = None;
                        progress = true;
                    }
                }
                None => {
                    if self.timer_at.take().is_some() {
                        self.timer = Timer::never();
                    }
                }
            }

            if !progress {
                self.trim();
                return Poll::Pending;
            }
            budget -= 1;
            if budget == 0 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
    }

    /// Gives back the scratch vectors' memory after a burst, so an idle connection stays
    /// small.
    fn trim(&mut self) {
        const KEEP: usize = 16;
        if self.replies.is_empty() && self.replies.capacity() > KEEP {
            self.replies = Vec::new();
        }
        if self.events.is_empty() && self.events.capacity() > KEEP {
            self.events = VecDeque::new();
        }
    }

    /// Tells the outbox how many sealed bytes wait to be written, when that changed.
    fn report_held(&mut self) {
        let held = self.conn.pending_transmit().len();
        if held != self.held {
            self.held = held;
            self.outbox.set_held(held);
        }
    }

    fn write_timeout(&self) -> cove_core::Duration {
        self.shared.options.write_timeout
    }
}
