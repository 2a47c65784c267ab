//! One connection's outbound queue: the replies the driver released for it, waiting for
//! its writer thread. Bounded in replies and in bytes, and allocated on demand.
//!
//! Why not `std::sync::mpsc::sync_channel`: it allocates every slot of its capacity up
//! front, so 1,024 slots per connection cost tens of KiB even on an idle connection. This
//! queue holds a `VecDeque` that grows only while replies actually wait, and gives the
//! memory back once a burst is written; the bounds are the same, refused out loud.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use cove_core::server::{Depth, Outgoing};

/// A queue drained back to empty keeps at most this much capacity.
const KEEP_CAPACITY: usize = 16;

/// Why a reply was not queued.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum PushError {
    /// The queue holds its bound of replies or bytes already: cut the connection off.
    Full,
    /// The writer is gone (or the connection finished).
    Closed,
}

#[derive(Default)]
struct Inner {
    replies: VecDeque<(Outgoing, usize)>,
    /// The estimates of the replies queued.
    bytes: usize,
    /// What the writer took and has not written yet: the estimates of what it took,
    /// until it reports its sealed bytes instead.
    held: usize,
    /// The writer should look at its connection (pending output, or it closed).
    wake: bool,
    /// The server is stopping: send what is queued, then say goodbye.
    shutdown: bool,
    /// No more replies will come, or the writer is gone.
    closed: bool,
}

/// What [`OutQueue::wait`] found besides the replies it moved.
pub(super) struct Taken {
    /// The server is stopping.
    pub(super) shutdown: bool,
    /// The queue was closed (nothing more will come).
    pub(super) closed: bool,
}

/// See the module docs.
pub(super) struct OutQueue {
    inner: Mutex<Inner>,
    ready: Condvar,
    max_replies: usize,
    max_bytes: usize,
    /// The server-wide high-water mark of any one queue's bytes.
    peak: Arc<AtomicUsize>,
    /// A sender waits for this queue to drain (the server's `Flow`): the writer checks
    /// after each write whether it has.
    awaited: AtomicBool,
}

impl OutQueue {
    /// An empty queue of at most `max_replies` replies (at least 1) and `max_bytes`
    /// bytes (one reply always fits an empty queue), recording its high-water mark in
    /// `peak`.
    pub(super) fn new(max_replies: usize, max_bytes: usize, peak: Arc<AtomicUsize>) -> OutQueue {
        OutQueue {
            inner: Mutex::new(Inner::default()),
            ready: Condvar::new(),
            max_replies: max_replies.max(1),
            max_bytes,
            peak,
            awaited: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `reply` for the writer, never waiting.
    pub(super) fn push(&self, reply: Outgoing) -> Result<(), PushError> {
        let weight = reply.encoded_len_hint();
        let mut g = self.lock();
        if g.closed {
            return Err(PushError::Closed);
        }
        let used = g.bytes.saturating_add(g.held);
        if g.replies.len() >= self.max_replies
            || (used > 0 && used.saturating_add(weight) > self.max_bytes)
        {
            return Err(PushError::Full);
        }
        g.bytes += weight;
        g.replies.push_back((reply, weight));
        drop(g);
        self.peak
            .fetch_max(used.saturating_add(weight), Ordering::SeqCst);
        self.ready.notify_one();
        Ok(())
    }

    /// What waits here: replies queued, and their estimates plus what the writer sealed
    /// and has not written.
    pub(super) fn depth(&self) -> Depth {
        let g = self.lock();
        Depth {
            replies: g.replies.len(),
            bytes: g.bytes.saturating_add(g.held),
        }
    }

    /// Asks the writer to look at its connection.
    pub(super) fn wake(&self) {
        self.lock().wake = true;
        self.ready.notify_one();
    }

    /// Asks the writer to say goodbye after what is queued.
    pub(super) fn shutdown(&self) -> Result<(), PushError> {
        let mut g = self.lock();
        if g.closed {
            return Err(PushError::Closed);
        }
        g.shutdown = true;
        drop(g);
        self.ready.notify_one();
        Ok(())
    }

    /// Nothing more will be queued, or the writer is gone: pushes are refused and the
    /// writer, once it took what is queued, finishes.
    pub(super) fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
    }

    /// The writer waits until there is something to do, then moves every queued reply
    /// into `out`; their estimates count as held until [`set_held`](Self::set_held).
    pub(super) fn wait(&self, out: &mut Vec<Outgoing>) -> Taken {
        let mut g = self.lock();
        while g.replies.is_empty() && !g.wake && !g.shutdown && !g.closed {
            g = self.ready.wait(g).unwrap_or_else(PoisonError::into_inner);
        }
        let mut weight = 0usize;
        out.extend(g.replies.drain(..).map(|(r, w)| {
            weight += w;
            r
        }));
        g.bytes -= weight;
        g.held = g.held.saturating_add(weight);
        if g.replies.capacity() > KEEP_CAPACITY {
            g.replies = VecDeque::new();
        }
        g.wake = false;
        Taken {
            shutdown: g.shutdown,
            closed: g.closed,
        }
    }

    /// The writer reports the bytes it holds sealed and not written yet, replacing the
    /// estimates of what it took.
    pub(super) fn set_held(&self, held: usize) {
        self.lock().held = held;
    }

    /// Marks the queue awaited by a paused sender; returns whether it was not already
    /// (then wake the writer, so it looks whether the queue drained).
    pub(super) fn set_awaited(&self) -> bool {
        !self.awaited.swap(true, Ordering::SeqCst)
    }

    /// Whether a sender may wait for this queue.
    pub(super) fn is_awaited(&self) -> bool {
        self.awaited.load(Ordering::SeqCst)
    }

    /// No sender waits for this queue any more.
    pub(super) fn clear_awaited(&self) {
        self.awaited.store(false, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cove_core::hub::Reply;
    use cove_core::wire::ErrorCode;

    fn reply() -> Outgoing {
        Outgoing::single(Reply::Ok { req: 1 })
    }

    #[test]
    fn bounded_in_replies_and_bytes_and_allocated_on_demand() {
        let peak = Arc::new(AtomicUsize::new(0));
        let q = OutQueue::new(2, usize::MAX, peak.clone());
        assert_eq!(q.lock().replies.capacity(), 0, "nothing allocated up front");
        q.push(reply()).expect("room");
        q.push(reply()).expect("room");
        assert_eq!(q.push(reply()), Err(PushError::Full));
        let w = reply().encoded_len_hint();
        assert_eq!(
            q.depth(),
            Depth {
                replies: 2,
                bytes: 2 * w
            }
        );
        assert_eq!(peak.load(Ordering::SeqCst), 2 * w);
        let mut out = Vec::new();
        let t = q.wait(&mut out);
        assert_eq!((out.len(), t.shutdown, t.closed), (2, false, false));
        // Taken but not written: still counted, in bytes.
        assert_eq!(
            q.depth(),
            Depth {
                replies: 0,
                bytes: 2 * w
            }
        );
        q.set_held(0);
        assert_eq!(q.depth(), Depth::default());

        let q = OutQueue::new(100, 2 * w, peak);
        q.push(reply()).expect("room");
        q.push(reply()).expect("room");
        assert_eq!(q.push(reply()), Err(PushError::Full), "the byte bound");
        let big = Outgoing::single(Reply::Close {
            code: ErrorCode::ServerError,
        });
        let empty = OutQueue::new(1, 1, Arc::new(AtomicUsize::new(0)));
        empty
            .push(big)
            .expect("one reply always fits an empty queue");
    }

    #[test]
    fn a_burst_gives_its_memory_back_and_flags_wake_the_writer() {
        let q = OutQueue::new(1000, usize::MAX, Arc::new(AtomicUsize::new(0)));
        for _ in 0..500 {
            q.push(reply()).expect("room");
        }
        let mut out = Vec::new();
        q.wait(&mut out);
        assert_eq!(out.len(), 500);
        out.clear();
        assert!(q.lock().replies.capacity() <= KEEP_CAPACITY);
        q.wake();
        let t = q.wait(&mut out);
        assert_eq!((out.len(), t.shutdown, t.closed), (0, false, false));
        q.shutdown().expect("open");
        assert!(q.wait(&mut out).shutdown);
        q.close();
        assert!(q.wait(&mut out).closed);
        assert_eq!(q.push(reply()), Err(PushError::Closed));
        assert_eq!(q.shutdown(), Err(PushError::Closed));
        assert!(q.set_awaited());
        assert!(!q.set_awaited());
        assert!(q.is_awaited());
        q.clear_awaited();
        assert!(!q.is_awaited());
    }
}
