//! The client connection's driver: reads, feeds the core, writes, fires timers.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use cove_core::client::ClientState;
use cove_core::connect::owned;
use cove_core::wire::ErrorCode;
use futures_lite::{AsyncRead, AsyncWrite};
use smol::Timer;
use tracing::debug;

use super::{Event, Inner, lock};
use crate::mailbox::PushError;
use crate::scratch::{consume, poll_read_append};
use crate::{now, to_std_instant};

/// Runs one client connection: reads, feeds the core, writes, fires timers. Resolves
/// once the connection is closed and its last event is queued. Run it on any executor.
#[must_use = "the connection makes no progress unless its driver runs"]
pub struct Driver<S> {
    inner: Arc<Inner>,
    stream: S,
    input: Vec<u8>,
    cap: usize,
    /// Events that did not fit in the queue yet (at most one frame's worth).
    stash: VecDeque<Event>,
    timer: Timer,
    timer_at: Option<std::time::Instant>,
    read_done: bool,
    io_failed: bool,
    need_flush: bool,
}

impl<S> fmt::Debug for Driver<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Driver")
            .field("peer", &self.inner.peer)
            .finish_non_exhaustive()
    }
}

impl<S> Driver<S> {
    /// A driver for `inner`'s client over `stream`; `cap` is the most input it buffers
    /// (one whole frame).
    pub(super) fn new(inner: Arc<Inner>, stream: S, cap: usize) -> Self {
        Driver {
            inner,
            stream,
            input: Vec::new(),
            cap,
            stash: VecDeque::new(),
            timer: Timer::never(),
            timer_at: None,
            read_done: false,
            io_failed: false,
            need_flush: false,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Driver<S> {
    /// Moves stashed events into the queue. Returns false while some still wait (the
    /// driver is then registered to be woken when the program reads).
    fn deliver(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            let Some(ev) = self.stash.pop_front() else {
                return true;
            };
            match self.inner.events.push(ev) {
                Ok(()) => {}
                Err(PushError::Closed(_)) => {
                    // Nobody reads the events any more.
                    self.stash.clear();
                    return true;
                }
                Err(PushError::Full(ev)) => {
                    self.stash.push_front(ev);
                    match self.inner.events.poll_space(cx) {
                        Poll::Ready(true) => {}
                        Poll::Ready(false) => {
                            self.stash.clear();
                            return true;
                        }
                        Poll::Pending => return false,
                    }
                }
            }
        }
    }

    /// Feeds whole frames from the input buffer to the core while events have room.
    fn process(&mut self, now: cove_core::Instant) -> bool {
        let mut any = false;
        while self.stash.is_empty() {
            let (used, ev) = {
                let mut c = lock(&self.inner.client);
                let input = c.handle_input(now, &mut self.input);
                let ev = input.event.and_then(owned);
                let more = c.poll_event().and_then(owned);
                (input.consumed, ev.into_iter().chain(more))
            };
            self.stash.extend(ev);
            consume(&mut self.input, used);
            if used == 0 {
                break;
            }
            any = true;
            let mut pushed = true;
            while pushed {
                pushed = false;
                if let Some(ev) = self.stash.pop_front() {
                    match self.inner.events.push(ev) {
                        Ok(()) => pushed = true,
                        Err(PushError::Closed(_)) => self.stash.clear(),
                        Err(PushError::Full(ev)) => self.stash.push_front(ev),
                    }
                }
            }
        }
        any
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Future for Driver<S> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        // Register first: a command issued while this poll runs wakes it again.
        {
            let mut w = lock(&this.inner.driver);
            match &*w {
                Some(old) if old.will_wake(cx.waker()) => {}
                _ => *w = Some(cx.waker().clone()),
            }
        }
        let mut budget = 32u32;
        loop {
            let now = now();
            let mut progress = false;

            // 1. Events that waited for room in the queue.
            if !this.stash.is_empty() && this.deliver(cx) {
                progress = true;
            }

            // 2. Input, while the program keeps up with the events.
            let closed = lock(&this.inner.client).state() == ClientState::Closed;
            if this.stash.is_empty() && !closed {
                if this.process(now) {
                    progress = true;
                }
                if this.stash.is_empty() && !this.read_done {
                    match poll_read_append(&mut this.stream, cx, &mut this.input, this.cap) {
                        Poll::Ready(Ok(0)) => {
                            this.read_done = true;
                            let mut c = lock(&this.inner.client);
                            if this.input.len() >= this.cap {
                                c.close(now, ErrorCode::FrameTooLarge);
                            } else {
                                c.handle_eof(now);
                            }
                            progress = true;
                        }
                        Poll::Ready(Ok(_)) => {
                            this.process(now);
                            progress = true;
                        }
                        Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {
                            progress = true;
                        }
                        Poll::Ready(Err(e)) => {
                            debug!(error = %e, "read failed");
                            this.read_done = true;
                            lock(&this.inner.client).handle_eof(now);
                            progress = true;
                        }
                        Poll::Pending => {}
                    }
                }
            }

            // 3. Timers, then the closes and other events they (or commands) caused.
            {
                let mut c = lock(&this.inner.client);
                if c.poll_timeout().is_some_and(|t| now >= t) {
                    c.handle_timeout(now);
                    progress = true;
                }
                if let Some(ev) = c.poll_event().and_then(owned) {
                    this.stash.push_back(ev);
                    progress = true;
                }
            }
            if !this.stash.is_empty() {
                this.deliver(cx);
            }

            // 4. Output: everything pending in one write when the socket takes it.
            let mut wrote = false;
            while !this.io_failed {
                let mut c = lock(&this.inner.client);
                if c.pending_transmit().is_empty() {
                    break;
                }
                match Pin::new(&mut this.stream).poll_write(cx, c.pending_transmit()) {
                    Poll::Ready(Ok(0)) => this.io_failed = true,
                    Poll::Ready(Ok(n)) => {
                        c.advance_transmit(n);
                        wrote = true;
                        this.need_flush = true;
                    }
                    Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                    Poll::Ready(Err(e)) => {
                        debug!(error = %e, "write failed; closing");
                        this.io_failed = true;
                    }
                    Poll::Pending => break,
                }
            }
            if wrote {
                this.inner.drained.notify(usize::MAX);
                progress = true;
            }
            if this.io_failed {
                let mut c = lock(&this.inner.client);
                c.handle_eof(now);
                if let Some(ev) = c.poll_event().and_then(owned) {
                    this.stash.push_back(ev);
                }
            }
            if this.need_flush && !this.io_failed {
                match Pin::new(&mut this.stream).poll_flush(cx) {
                    Poll::Ready(Ok(())) => this.need_flush = false,
                    Poll::Ready(Err(_)) => this.io_failed = true,
                    Poll::Pending => {}
                }
            }

            // 5. Done once closed, flushed, and the last event is queued.
            let (closed, flushed, deadline) = {
                let c = lock(&this.inner.client);
                (
                    c.state() == ClientState::Closed,
                    c.pending_transmit().is_empty() || this.io_failed,
                    c.poll_timeout(),
                )
            };
            if closed && flushed && !this.need_flush {
                if !this.stash.is_empty() && !this.deliver(cx) {
                    return Poll::Pending; // woken when the program reads
                }
                if !this.io_failed {
                    // Best effort: tell the peer we are done writing.
                    let _ = Pin::new(&mut this.stream).poll_close(cx);
                }
                this.inner.events.close(());
                this.inner.drained.notify(usize::MAX);
                lock(&this.inner.driver).take();
                return Poll::Ready(());
            }

            // 6. The core's next timer.
            match deadline {
                Some(d) => {
                    let at = to_std_instant(d);
                    if this.timer_at != Some(at) {
                        this.timer.set_at(at);
                        this.timer_at = Some(at);
                    }
                    if Pin::new(&mut this.timer).poll(cx).is_ready() {
                        this.timer_at = None;
                        progress = true;
                    }
                }
                None => {
                    if this.timer_at.take().is_some() {
                        this.timer = Timer::never();
                    }
                }
            }

            if !progress {
                return Poll::Pending;
            }
            budget -= 1;
            if budget == 0 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
    }
}
