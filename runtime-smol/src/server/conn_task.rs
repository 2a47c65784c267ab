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

use cove_core::handshake::{ACK_MAX_LEN, SYN_LEN};
use cove_core::hub::ConnId;
use cove_core::server::{Outgoing, ServerConnection, ServerEvent, SourceAddr};
use cove_core::wire::{ErrorCode, HEADER_LEN, MAX_TEXT_LEN};
use event_listener::EventListener;
use futures_lite::{AsyncRead, AsyncWrite};
use smol::Timer;
use tracing::{debug, info, warn};

use super::direct::{Direct, Io, Slot};
use super::pipeline::{cut_overdue, feed, feed_all, flow_deadline, wrote};
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

/// The largest frame a client sends before the handshake is done: its SYN, its ACK (with
/// the longest name) or a cleartext alert (with the longest text), header included.
const MAX_HANDSHAKE_FRAME: usize = HEADER_LEN + max(SYN_LEN, max(ACK_MAX_LEN, 3 + MAX_TEXT_LEN));

const fn max(a: usize, b: usize) -> usize {
    if a > b { a } else { b }
}

/// The most input the task buffers for `conn`: before the handshake is done no more than
/// its largest frame, so a socket that never authenticates cannot make the server hold a
/// whole frame's worth; once it is done, a whole frame.
fn read_cap(conn: &ServerConnection) -> usize {
    if conn.is_established() {
        conn.min_read_buffer()
    } else {
        MAX_HANDSHAKE_FRAME.min(conn.min_read_buffer())
    }
}

/// A connection the driver admitted: its ID, queue, home, and first read bound.
struct Admitted<S> {
    id: ConnId,
    outbox: Arc<Outbox>,
    slot: Arc<Slot<S>>,
    cap: usize,
}

/// A connection the driver refused, with the alert to send it.
struct Refused<S> {
    conn: ServerConnection,
    stream: S,
}

/// Creates the connection's core state and asks the driver to admit it. Not async, so
/// the core state (a kilobyte) is never a local of the connection's task future: only the
/// boxed result is. `None` while the server shuts down.
fn admit<S>(
    shared: &Shared,
    stream: S,
    peer: Option<SocketAddr>,
) -> Option<Result<Admitted<S>, Box<Refused<S>>>>
where
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
    let outbox = Arc::new(
        Outbox::with_byte_cap(
            shared.options.send_queue,
            shared.options.connection.send_queue_bytes,
        )
        .with_peak(shared.outbound_peak.clone()),
    );
    let admitted = {
        let mut st = lock(&shared.state);
        if shared.shutting_down.load(Ordering::SeqCst) {
            return None;
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
        return Some(Err(Box::new(Refused { conn, stream })));
    }
    debug!(conn = id.0, peer = %PeerDisplay(peer), "connection accepted");
    let cap = read_cap(&conn);
    let slot = Arc::new(Slot::new(Io {
        conn,
        stream,
        held: 0,
        need_flush: false,
    }));
    lock(&shared.state)
        .direct
        .insert(id, slot.clone() as Arc<dyn Direct>);
    Some(Ok(Admitted {
        id,
        outbox,
        slot,
        cap,
    }))
}

pub(super) async fn serve_connection<S>(shared: Arc<Shared>, stream: S, peer: Option<SocketAddr>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Admitted {
        id,
        outbox,
        slot,
        cap,
    } = match admit(&shared, stream, peer) {
        None => return,
        Some(Ok(admitted)) => admitted,
        Some(Err(refused)) => {
            // Boxed, as is every path that is not the connection's life: a future is as
            // large as its largest state.
            Box::pin(refuse(refused)).await;
            return;
        }
    };
    let mut task = ConnTask {
        shared: &shared,
        id,
        peer,
        slot: &slot,
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
        flow_deadline: None,
        read_done: false,
        write_failed: false,
    };
    std::future::poll_fn(|cx| task.poll(cx)).await;
    // No router delivers from here on.
    let io = std::future::poll_fn(|cx| slot.poll_take(cx)).await;
    lock(&shared.state).direct.remove(&id);
    Box::pin(goodbye(&mut task, io)).await;
    drop(task);
    {
        let mut st = lock(&shared.state);
        st.open.remove(&id);
        st.routes.remove(&id);
    }
    shared.idle.notify(usize::MAX);
}

/// Says goodbye to a refused connection: its alert, then the close (a second at most).
async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(refused: Box<Refused<S>>) {
    let Refused { conn, mut stream } = *refused;
    let goodbye = async {
        let _ = futures_lite::AsyncWriteExt::write_all(&mut stream, conn.pending_transmit()).await;
        let _ = futures_lite::AsyncWriteExt::close(&mut stream).await;
        linger(&mut stream).await;
    };
    futures_lite::future::or(goodbye, async {
        Timer::after(Duration::from_secs(1)).await;
    })
    .await;
}

/// The end of a connection that was served: the driver learns of the close, then the
/// stream is closed.
async fn goodbye<S: AsyncRead + AsyncWrite + Unpin>(task: &mut ConnTask<'_, S>, io: Option<Io<S>>) {
    // Closed: tell the driver (if the core has not yet), waiting for room if its pipeline
    // is full, then close the stream's write side (briefly: a peer that stopped reading
    // gets no more time).
    if let Some(mut io) = io {
        if !io.conn.is_closed() {
            io.conn.handle_eof(crate::now());
        }
        task.collect_events(&mut io.conn);
        task.space = None;
        feed_all(task.shared, task.id, &mut task.events).await;
        if !task.write_failed {
            let close = futures_lite::AsyncWriteExt::close(&mut io.stream);
            futures_lite::future::or(async { drop(close.await) }, async {
                Timer::after(Duration::from_millis(100)).await;
            })
            .await;
            linger(&mut io.stream).await;
        }
    }
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
    /// The connection's core state and stream, shared with routers ([`super::direct`]).
    slot: &'a Slot<S>,
    outbox: &'a Outbox,
    /// Bytes read and not yet consumed by the core (empty between frames).
    input: Vec<u8>,
    /// The most `input` may hold: the largest handshake frame until the handshake is
    /// done, then one whole frame ([`read_cap`]).
    cap: usize,
    /// Events taken from the core and not yet fed to the driver (it was full). While any
    /// wait, nothing more is read.
    events: VecDeque<ServerEvent>,
    /// Armed while this task waits for room in the driver's pipeline.
    space: Option<EventListener>,
    /// The last feed stopped at a full pipeline; try again once `space` fires.
    waiting: bool,
    replies: Vec<Outgoing>,
    timer: Timer,
    timer_at: Option<std::time::Instant>,
    /// When a write that is stuck cuts the client off.
    stall_deadline: Option<cove_core::Instant>,
    /// While this connection is paused (back-pressure): when a connection it waits for
    /// has not drained for the write timeout, and is cut off.
    flow_deadline: Option<cove_core::Instant>,
    read_done: bool,
    write_failed: bool,
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
        self.flow_deadline = if self.flow_paused() {
            flow_deadline(self.shared)
        } else {
            None
        };
        self.events.len() < before
    }

    /// Whether the last feed stopped because this connection waits for deep connections
    /// to drain: [`Outbox::resume`] wakes the task then, not the pipeline's signal.
    fn flow_paused(&self) -> bool {
        self.waiting && self.outbox.is_paused()
    }

    fn collect_events(&mut self, conn: &mut ServerConnection) {
        while let Some(ev) = conn.poll_event() {
            log_event(self.id, self.peer, &ev);
            self.events.push_back(ev);
        }
    }

    /// One wake-up: do everything that is ready, in the core's drain order.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let slot = self.slot;
        slot.with_io(cx, |io, cx| self.poll_io(io, cx))
    }

    /// One wake-up with the connection's state in hand.
    fn poll_io(&mut self, io: &mut Io<S>, cx: &mut Context<'_>) -> Poll<()> {
        let mut budget = BUDGET;
        loop {
            let now = now();
            let mut progress = false;

            // 0. Back-pressure: while the driver's pipeline is full, or this task's last
            //    events did not fit, read nothing and wait for a batch to become durable.
            //    The listener is armed before the condition is looked at again, so no
            //    wake-up is lost. While this connection is paused instead (a connection
            //    its replies go to is deep), the resume wakes it; its timer cuts off a
            //    connection that does not drain in time.
            if self.flow_deadline.is_some_and(|d| now >= d) {
                cut_overdue(self.shared);
                self.flow_deadline = None;
                progress |= self.feed_events() || !self.flow_paused();
            }
            if self.flow_paused() {
                // Woken by the resume; then the pipeline's signal is waited for afresh.
                self.space = None;
            } else if self.space.is_none() && (self.waiting || self.pipeline_full()) {
                self.space = Some(self.shared.space.listen());
                if self.waiting {
                    progress |= self.feed_events();
                }
            }
            // The flag is read once: another thread may set it at any moment, and this
            // round's decisions to wait and to read must agree with each other.
            let full = self.pipeline_full();
            let paused = self.flow_paused();
            let blocked = (self.waiting && !paused) || full;
            if let Some(space) = self.space.as_mut() {
                if !blocked {
                    self.space = None; // nothing to wait for after all
                } else if Pin::new(space).poll(cx).is_ready() {
                    self.space = None;
                    self.waiting = false;
                    progress = true;
                }
            } else if blocked && !paused {
                // The pipeline filled after the look above that would have armed the
                // listener: nothing would wake this task (it does not read either), so go
                // round and arm it.
                progress = true;
            }
            let may_read = !full && self.events.is_empty();

            // 1. Replies from the driver. No high-water mark of its own: the outbox counts
            //    what is sealed and not written with what is queued, under the one byte
            //    bound, so a client that does not read is cut off when their sum would
            //    pass it, and taking a reply never seals past it.
            let max = TAKE_BATCH;
            let taken = self.outbox.poll_take(cx, &mut self.replies, max);
            if taken.n > 0 {
                // The outbox now counts their estimates as held: report the real figure.
                io.held = usize::MAX;
            }
            match taken.closed {
                Some(Cut::Force) => return Poll::Ready(()),
                Some(Cut::SendQueue) => {
                    self.replies.clear();
                    if !io.conn.is_closed() {
                        io.conn.close(now, ErrorCode::SendQueueExceeded);
                        progress = true;
                    }
                }
                Some(Cut::Shutdown) | None => {
                    for r in self.replies.drain(..) {
                        io.conn.handle_outgoing(now, &r);
                    }
                    progress |= taken.n > 0;
                    if taken.closed.is_some() && taken.n < max && !io.conn.is_closed() {
                        io.conn.close(now, ErrorCode::ShuttingDown);
                        progress = true;
                    }
                }
            }

            // 2. Input.
            if may_read && !self.read_done && !io.conn.is_closed() {
                match poll_read_append(&mut io.stream, cx, &mut self.input, self.cap) {
                    Poll::Ready(Ok(0)) => {
                        self.read_done = true;
                        if self.input.len() >= self.cap {
                            // A frame larger than the buffer: before the handshake is
                            // done, one larger than any handshake frame (a conforming core
                            // refuses every larger frame itself once the buffer is
                            // frame-sized).
                            io.conn.close(now, ErrorCode::FrameTooLarge);
                        } else {
                            io.conn.handle_eof(now);
                        }
                        progress = true;
                    }
                    Poll::Ready(Ok(_)) => {
                        loop {
                            let used = io.conn.handle_input(now, &mut self.input);
                            self.collect_events(&mut io.conn);
                            consume(&mut self.input, used);
                            if used == 0 {
                                break;
                            }
                        }
                        self.cap = read_cap(&io.conn);
                        progress = true;
                    }
                    Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {
                        progress = true;
                    }
                    Poll::Ready(Err(e)) => {
                        debug!(conn = self.id.0, error = %e, "read failed");
                        self.read_done = true;
                        io.conn.handle_eof(now);
                        progress = true;
                    }
                    Poll::Pending => {}
                }
            }

            // 3. Timers: the core's, and the write-stall deadline.
            if self.stall_deadline.is_some_and(|stall| now >= stall)
                && !io.conn.pending_transmit().is_empty()
            {
                warn!(conn = self.id.0, "write stalled; cutting the client off");
                self.write_failed = true;
                io.conn.handle_eof(now);
            }
            if io.conn.poll_timeout().is_some_and(|t| now >= t) {
                io.conn.handle_timeout(now);
                progress = true;
            }

            // 4. Events to the driver (which may queue replies for us: step 1 again).
            self.collect_events(&mut io.conn);
            if !self.events.is_empty() && !self.waiting {
                // A feed that stops at a full pipeline counts as progress too: the next
                // round arms the listener (step 0).
                progress |= self.feed_events() || self.waiting;
            }

            // 5. Output: everything pending, in as few writes as the socket allows.
            while !self.write_failed && !io.conn.pending_transmit().is_empty() {
                match Pin::new(&mut io.stream).poll_write(cx, io.conn.pending_transmit()) {
                    Poll::Ready(Ok(0)) => {
                        self.write_failed = true;
                    }
                    Poll::Ready(Ok(n)) => {
                        io.conn.advance_transmit(n);
                        self.stall_deadline = None;
                        io.need_flush = true;
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
            report_held(io, self.outbox);
            wrote(self.shared, self.id, self.outbox);
            if self.write_failed {
                if !io.conn.is_closed() {
                    io.conn.handle_eof(now);
                }
                return Poll::Ready(());
            }
            if io.conn.pending_transmit().is_empty() {
                self.stall_deadline = None;
                if io.need_flush {
                    match Pin::new(&mut io.stream).poll_flush(cx) {
                        Poll::Ready(Ok(())) => io.need_flush = false,
                        Poll::Ready(Err(_)) => {
                            self.write_failed = true;
                            progress = true;
                        }
                        Poll::Pending => {}
                    }
                }
                if io.conn.is_closed() && !io.need_flush {
                    return Poll::Ready(());
                }
            }

            // 6. Arm the one timer for the earliest deadline.
            let deadline = [
                io.conn.poll_timeout(),
                self.stall_deadline,
                self.flow_deadline,
            ]
            .into_iter()
            .flatten()
            .min();
            match deadline {
                Some(d) => {
                    let at = to_std_instant(d);
                    // Moved only when it must fire earlier. Every input pushes the
                    // keepalive back, and moving an async-io timer wakes the reactor's
                    // thread; a timer left earlier than needed fires once, and the round
                    // after arms it for the deadline then due.
                    if self.timer_at.is_none_or(|t| at < t) {
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
        // Nothing is kept: at 10,000 connections a few hundred bytes each is megabytes,
        // and the next burst's allocation costs far less than its reads and writes.
        if self.replies.is_empty() && self.replies.capacity() > 0 {
            self.replies = Vec::new();
        }
        if self.events.is_empty() && self.events.capacity() > 0 {
            self.events = VecDeque::new();
        }
    }

    fn write_timeout(&self) -> cove_core::Duration {
        self.shared.options.write_timeout
    }
}

/// Tells the outbox how many sealed bytes wait to be written, when that changed.
fn report_held<S>(io: &mut Io<S>, outbox: &Outbox) {
    let held = io.conn.pending_transmit().len();
    if held != io.held {
        io.held = held;
        outbox.set_held(held);
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::time::Duration;

    use cove_core::crypto::Identity;
    use cove_core::store::MemoryStore;
    use cove_core::wire::{Alert, ErrorCode, FrameType, HEADER_LEN, decode_frame, encode_header};

    use super::MAX_HANDSHAKE_FRAME;
    use crate::server::{Server, ServerOptions};

    /// Sends a SYN header announcing `len` payload bytes, then `sent` bytes of it, and
    /// returns the code of the alert the server closes with.
    fn alert_for_syn(addr: SocketAddr, len: usize, sent: usize) -> Option<ErrorCode> {
        let mut s = TcpStream::connect(addr).unwrap();
        let mut frame = encode_header(FrameType::Syn, u32::try_from(len).unwrap()).to_vec();
        frame.resize(HEADER_LEN + sent, 0);
        s.write_all(&frame).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut got = Vec::new();
        // The server closes (an error such as a reset ends the read too).
        let _ = s.read_to_end(&mut got);
        let (frame, _) = decode_frame(&got, u32::MAX).ok()??;
        assert_eq!(frame.typ, FrameType::Alert);
        Alert::decode(frame.payload).ok().map(|a| a.code)
    }

    #[test]
    fn before_the_handshake_only_a_handshake_frame_is_buffered() {
        let id = Identity::generate(&mut crate::os_rng());
        let mut options = ServerOptions::default();
        // A slow frame must be refused for its size, not by the handshake deadline.
        options.connection.handshake_timeout = cove_core::Duration::from_secs(120);
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            crate::block_on_threads(2, |ex| async move {
                let server = Server::bind("127.0.0.1:0", id, MemoryStore::new(), options, ex)
                    .await
                    .unwrap();
                let _ = tx.send((server.handle(), server.local_addr().unwrap()));
                server.run().await
            })
        });
        let (handle, addr) = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        let max = MAX_HANDSHAKE_FRAME - HEADER_LEN;
        // As large as a handshake frame gets: read whole, and refused for its content
        // (version 0).
        let code = alert_for_syn(addr, max, max);
        assert_eq!(code, Some(ErrorCode::UnsupportedVersion));
        // One byte larger (and a frame under the frame limit but far over any handshake
        // frame): refused once the handshake's worth of it has arrived.
        let code = alert_for_syn(addr, max + 1, max + 1);
        assert_eq!(code, Some(ErrorCode::FrameTooLarge));
        let code = alert_for_syn(addr, 60_000, max + 1);
        assert_eq!(code, Some(ErrorCode::FrameTooLarge));
        handle.shutdown();
        thread.join().unwrap().unwrap();
    }
}
