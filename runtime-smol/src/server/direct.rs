//! Delivery by the routing thread: a reply for a connection whose task is idle (nothing
//! queued, nothing sealed and unwritten) is sealed and written by the thread that routes
//! it, once its hold of the hub lock is over, instead of waking the connection's task
//! (often on another executor thread) to do the same. At paced load that saves a
//! cross-thread wake-up and a context switch per delivery, and the replies one routing
//! pass releases for a connection go out in one write.
//!
//! Ownership: a connection's [`Io`] (its core state and its stream) lives in its [`Slot`].
//! The task holds the slot's mutex for the whole of each poll; a router only ever
//! *tries* that lock under the hub lock, so a running task is never waited for. A router
//! that finds the task idle marks the slot claimed; until it has delivered and cleared
//! the mark, the task does not run (it leaves its waker, which the router wakes) and
//! every later reply for the connection goes to its outbox. So a record the router seals
//! never overtakes one the task sealed, nor the reverse: sealing (and the nonces) stay
//! in the driver's order.

use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};
use std::task::{Context, Poll, Waker};

use cove_core::server::{Outgoing, ServerConnection};
use futures_lite::AsyncWrite;

use super::Outbox;
use crate::now;

/// What a connection's task and a router share: its core state and its stream.
pub(super) struct Io<S> {
    pub(super) conn: ServerConnection,
    pub(super) stream: S,
    /// The sealed bytes not yet written, as last reported to the outbox.
    pub(super) held: usize,
    /// Something was written and the stream has not been flushed since.
    pub(super) need_flush: bool,
}

struct SlotInner<S> {
    /// `None` once the task has finished with it.
    io: Option<Io<S>>,
    /// A router took the right to seal and write the next replies.
    claimed: bool,
    /// The task, which found the slot claimed.
    waiter: Option<Waker>,
}

/// The home of one connection's [`Io`].
pub(super) struct Slot<S> {
    inner: Mutex<SlotInner<S>>,
}

impl<S> Slot<S> {
    pub(super) fn new(io: Io<S>) -> Slot<S> {
        Slot {
            inner: Mutex::new(SlotInner {
                io: Some(io),
                claimed: false,
                waiter: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SlotInner<S>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the connection's state unless a router holds a claim: then the task's
    /// waker is left for the router, and `Pending` returned.
    pub(super) fn with_io<T>(
        &self,
        cx: &mut Context<'_>,
        f: impl FnOnce(&mut Io<S>, &mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        let mut g = self.lock();
        if g.claimed {
            g.waiter = Some(cx.waker().clone());
            return Poll::Pending;
        }
        match g.io.as_mut() {
            Some(io) => f(io, cx),
            None => Poll::Pending,
        }
    }

    /// Takes the state out for the task's goodbye, once no router holds a claim; no
    /// router delivers afterwards.
    pub(super) fn poll_take(&self, cx: &Context<'_>) -> Poll<Option<Io<S>>> {
        let mut g = self.lock();
        if g.claimed {
            g.waiter = Some(cx.waker().clone());
            return Poll::Pending;
        }
        Poll::Ready(g.io.take())
    }
}

/// A slot, whatever its stream's type.
pub(super) trait Direct: Send + Sync {
    /// Under the hub lock: whether the connection is idle (its task is not running and
    /// holds nothing unwritten, `outbox` is empty) and now claimed by the caller, who
    /// must then call [`Direct::deliver`].
    fn try_claim(&self, outbox: &Outbox) -> bool;

    /// Off the hub lock: seals `replies` in order, writes what it can without waiting,
    /// and gives the claim back; the task is woken when something is left for it.
    fn deliver(&self, replies: &mut Vec<Outgoing>, outbox: &Outbox);
}

impl<S: AsyncWrite + Unpin + Send> Direct for Slot<S> {
    fn try_claim(&self, outbox: &Outbox) -> bool {
        let mut g = match self.inner.try_lock() {
            Ok(g) => g,
            Err(TryLockError::WouldBlock) => return false,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
        };
        if g.claimed {
            return false;
        }
        let Some(io) = g.io.as_ref() else {
            return false;
        };
        let idle = io.conn.is_established()
            && !io.conn.is_closed()
            && io.conn.pending_transmit().is_empty()
            && !io.need_flush
            && io.held == 0
            && outbox.depth() == (0, 0)
            && !outbox.is_paused();
        if idle {
            g.claimed = true;
        }
        idle
    }

    fn deliver(&self, replies: &mut Vec<Outgoing>, outbox: &Outbox) {
        let mut g = self.lock();
        let mut wake_task = false;
        if let Some(io) = g.io.as_mut() {
            let now = now();
            let timeout = io.conn.poll_timeout();
            for r in replies.drain(..) {
                io.conn.handle_outgoing(now, &r);
            }
            let mut cx = Context::from_waker(Waker::noop());
            while !io.conn.pending_transmit().is_empty() {
                match Pin::new(&mut io.stream).poll_write(&mut cx, io.conn.pending_transmit()) {
                    Poll::Ready(Ok(n)) if n > 0 => {
                        io.conn.advance_transmit(n);
                        io.need_flush = true;
                    }
                    Poll::Ready(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    // Would block, or failed: the task writes (or learns why not).
                    _ => break,
                }
            }
            if io.need_flush
                && let Poll::Ready(Ok(())) = Pin::new(&mut io.stream).poll_flush(&mut cx)
            {
                io.need_flush = false;
            }
            let held = io.conn.pending_transmit().len();
            if held != io.held {
                io.held = held;
                outbox.set_held(held);
            }
            // The task looks again if anything is left for it: bytes to write or flush,
            // a close (and its event), a deadline earlier than the one it
            // armed, or a sender that waits for this connection to drain.
            let earlier = match (io.conn.poll_timeout(), timeout) {
                (Some(t), Some(before)) => t < before,
                (Some(_), None) => true,
                _ => false,
            };
            wake_task =
                held > 0 || io.need_flush || io.conn.is_closed() || earlier || outbox.is_awaited();
        }
        replies.clear();
        g.claimed = false;
        let waiter = g.waiter.take();
        drop(g);
        if let Some(w) = waiter {
            w.wake();
        }
        if wake_task {
            outbox.wake();
        }
    }
}
