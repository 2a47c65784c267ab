//! A bounded single-consumer queue with async wake-ups, allocated lazily.
//!
//! Why not `async-channel`: its bounded queue allocates all `capacity` slots up front.
//! With the default send queue of 1024 replies that is tens of KiB per connection even
//! when the connection is idle, which breaks the budget of a few KiB per idle
//! connection. This queue holds a `VecDeque` that grows only while replies are
//! actually waiting and gives the memory back once a burst is drained; the bound is the
//! same hard bound, refused out loud with [`PushError::Full`].
//!
//! A queue may also be bounded in bytes ([`Mailbox::with_byte_cap`]): each item is pushed
//! with its weight, and the consumer reports what it took and still holds (a server
//! connection's sealed bytes not yet written), so one bound covers both.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

/// A queue that drained back to empty keeps at most this much capacity.
const KEEP_CAPACITY: usize = 16;

/// Why a push was refused; the item comes back.
#[derive(Debug)]
pub(crate) enum PushError<T> {
    /// The queue holds its capacity already.
    Full(T),
    /// The queue was closed.
    Closed(T),
}

struct Inner<T, R> {
    /// Items with their weights.
    queue: VecDeque<(T, usize)>,
    cap: usize,
    /// The weights of the items queued.
    bytes: usize,
    /// What the consumer took and still holds: the weights of what it took, until it
    /// reports the real figure with [`Mailbox::set_held`].
    held: usize,
    /// The most `bytes + held` may reach; `usize::MAX` when unbounded.
    byte_cap: usize,
    /// A high-water mark of `bytes + held` after each push, shared by several queues.
    peak: Option<Arc<AtomicUsize>>,
    consumer: Option<Waker>,
    producer: Option<Waker>,
    closed: Option<R>,
}

/// What [`Mailbox::poll_take`] found.
pub(crate) struct Taken<R> {
    /// Items moved out.
    pub(crate) n: usize,
    /// The close reason, once closed (items queued before the close are still taken
    /// first).
    pub(crate) closed: Option<R>,
}

pub(crate) struct Mailbox<T, R> {
    inner: Mutex<Inner<T, R>>,
    /// The consumer must not take more input of its own (back-pressure on a server
    /// connection whose replies go to deep queues); [`Mailbox::resume`] clears it.
    paused: AtomicBool,
    /// A producer waits for this queue to drain; the consumer looks after each write.
    awaited: AtomicBool,
}

impl<T, R: Copy> Mailbox<T, R> {
    /// An empty queue that holds at most `cap` items (at least 1).
    pub(crate) fn new(cap: usize) -> Mailbox<T, R> {
        Mailbox::with_byte_cap(cap, usize::MAX)
    }

    /// An empty queue that holds at most `cap` items (at least 1) and refuses an item
    /// whose weight would take the queued weights plus what the consumer holds past
    /// `byte_cap`. Into an empty queue whose consumer holds nothing, one item always goes.
    pub(crate) fn with_byte_cap(cap: usize, byte_cap: usize) -> Mailbox<T, R> {
        Mailbox {
            paused: AtomicBool::new(false),
            awaited: AtomicBool::new(false),
            inner: Mutex::new(Inner {
                queue: VecDeque::new(),
                cap: cap.max(1),
                bytes: 0,
                held: 0,
                byte_cap,
                peak: None,
                consumer: None,
                producer: None,
                closed: None,
            }),
        }
    }

    /// Also records in `peak` the most `bytes + held` this queue reaches (pushes are
    /// the only way up: what the consumer reports holding replaces larger weights).
    pub(crate) fn with_peak(self, peak: Arc<AtomicUsize>) -> Mailbox<T, R> {
        self.lock().peak = Some(peak);
        self
    }

    fn lock(&self) -> MutexGuard<'_, Inner<T, R>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `item` without waiting and wakes the consumer.
    pub(crate) fn push(&self, item: T) -> Result<(), PushError<T>> {
        self.push_weighted(item, 0)
    }

    /// Queues `item`, which counts `weight` against the byte cap, without waiting, and
    /// wakes the consumer.
    pub(crate) fn push_weighted(&self, item: T, weight: usize) -> Result<(), PushError<T>> {
        let mut g = self.lock();
        if g.closed.is_some() {
            return Err(PushError::Closed(item));
        }
        let used = g.bytes.saturating_add(g.held);
        if g.queue.len() >= g.cap || (used > 0 && used.saturating_add(weight) > g.byte_cap) {
            return Err(PushError::Full(item));
        }
        g.bytes += weight;
        if let Some(p) = &g.peak {
            p.fetch_max(used.saturating_add(weight), Ordering::SeqCst);
        }
        g.queue.push_back((item, weight));
        let w = g.consumer.take();
        drop(g);
        if let Some(w) = w {
            w.wake();
        }
        Ok(())
    }

    /// Closes the queue with `reason` (a later close replaces the reason) and wakes both
    /// sides. Items already queued can still be taken.
    pub(crate) fn close(&self, reason: R) {
        let mut g = self.lock();
        g.closed = Some(reason);
        let c = g.consumer.take();
        let p = g.producer.take();
        drop(g);
        if let Some(w) = c {
            w.wake();
        }
        if let Some(w) = p {
            w.wake();
        }
    }

    /// How many items wait, and their weights plus what the consumer holds.
    pub(crate) fn depth(&self) -> (usize, usize) {
        let g = self.lock();
        (g.queue.len(), g.bytes.saturating_add(g.held))
    }

    /// Wakes the consumer, if it waits, without queueing anything.
    pub(crate) fn wake(&self) {
        let w = self.lock().consumer.take();
        if let Some(w) = w {
            w.wake();
        }
    }

    /// Asks the consumer to take no more input of its own until [`Mailbox::resume`].
    pub(crate) fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
    }

    /// Whether the consumer is paused.
    pub(crate) fn is_paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }

    /// Lets a paused consumer go on, and wakes it.
    pub(crate) fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
        self.wake();
    }

    /// Marks the queue awaited by a paused producer; returns whether it was not already.
    pub(crate) fn set_awaited(&self) -> bool {
        !self.awaited.swap(true, Ordering::SeqCst)
    }

    /// Whether a producer may wait for this queue to drain.
    pub(crate) fn is_awaited(&self) -> bool {
        self.awaited.load(Ordering::SeqCst)
    }

    /// No producer waits for this queue any more.
    pub(crate) fn clear_awaited(&self) {
        self.awaited.store(false, Ordering::SeqCst);
    }

    /// The close reason, if closed.
    #[cfg(test)]
    pub(crate) fn closed(&self) -> Option<R> {
        self.lock().closed
    }

    /// The consumer reports what it holds now of what it took (its sealed bytes not yet
    /// written), replacing the weights it took.
    pub(crate) fn set_held(&self, held: usize) {
        self.lock().held = held;
    }

    /// Moves up to `max` items into `out`; their weights count as held by the consumer
    /// until it reports otherwise. When it moves none and the queue is open, the
    /// consumer's waker is registered for the next push or close.
    pub(crate) fn poll_take(&self, cx: &mut Context<'_>, out: &mut Vec<T>, max: usize) -> Taken<R> {
        let mut g = self.lock();
        let n = g.queue.len().min(max);
        let mut weight = 0;
        out.extend(g.queue.drain(..n).map(|(item, w)| {
            weight += w;
            item
        }));
        g.bytes -= weight;
        g.held = g.held.saturating_add(weight);
        if g.queue.is_empty() && g.queue.capacity() > KEEP_CAPACITY {
            g.queue = VecDeque::new();
        }
        if n == 0 && g.closed.is_none() {
            register(&mut g.consumer, cx);
        }
        let closed = g.closed;
        let p = if n > 0 { g.producer.take() } else { None };
        drop(g);
        if let Some(w) = p {
            w.wake();
        }
        Taken { n, closed }
    }

    /// Takes one item: `Ready(Some)`, or `Ready(None)` once closed and empty.
    pub(crate) fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut g = self.lock();
        if let Some((item, weight)) = g.queue.pop_front() {
            g.bytes -= weight;
            if g.queue.is_empty() && g.queue.capacity() > KEEP_CAPACITY {
                g.queue = VecDeque::new();
            }
            let p = g.producer.take();
            drop(g);
            if let Some(w) = p {
                w.wake();
            }
            return Poll::Ready(Some(item));
        }
        if g.closed.is_some() {
            return Poll::Ready(None);
        }
        register(&mut g.consumer, cx);
        Poll::Pending
    }

    /// Takes one item if one is waiting.
    pub(crate) fn try_recv(&self) -> Option<T> {
        let mut g = self.lock();
        let item = g.queue.pop_front().map(|(item, weight)| {
            g.bytes -= weight;
            item
        });
        let p = if item.is_some() {
            g.producer.take()
        } else {
            None
        };
        drop(g);
        if let Some(w) = p {
            w.wake();
        }
        item
    }

    /// `Ready(true)` when a push would find room, `Ready(false)` once closed; otherwise
    /// the producer's waker is registered for the next take or close.
    pub(crate) fn poll_space(&self, cx: &mut Context<'_>) -> Poll<bool> {
        let mut g = self.lock();
        if g.closed.is_some() {
            return Poll::Ready(false);
        }
        if g.queue.len() < g.cap {
            return Poll::Ready(true);
        }
        register(&mut g.producer, cx);
        Poll::Pending
    }
}

fn register(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(w) if w.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn bounded_refuses_out_loud_and_wakes_both_sides() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let m: Mailbox<u32, u8> = Mailbox::new(2);
        let mut out = Vec::new();
        let t = m.poll_take(&mut cx, &mut out, 10);
        assert_eq!((t.n, t.closed), (0, None));
        m.push(1).expect("room");
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "consumer woken");
        m.push(2).expect("room");
        assert!(matches!(m.push(3), Err(PushError::Full(3))));
        assert_eq!(m.poll_space(&mut cx), Poll::Pending);
        let t = m.poll_take(&mut cx, &mut out, 1);
        assert_eq!((t.n, &out[..]), (1, &[1][..]));
        assert_eq!(count.0.load(Ordering::SeqCst), 2, "producer woken");
        m.close(7);
        assert!(matches!(m.push(4), Err(PushError::Closed(4))));
        assert_eq!(
            m.poll_recv(&mut cx),
            Poll::Ready(Some(2)),
            "queued items survive a close"
        );
        assert_eq!(m.poll_recv(&mut cx), Poll::Ready(None));
        assert_eq!(m.closed(), Some(7));
        assert_eq!(m.poll_space(&mut cx), Poll::Ready(false));
    }

    #[test]
    fn the_byte_cap_counts_queued_and_held_weights() {
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let m: Mailbox<u32, ()> = Mailbox::with_byte_cap(100, 1000);
        m.push_weighted(1, 5000)
            .expect("one item always fits an empty queue");
        assert!(matches!(m.push_weighted(2, 1), Err(PushError::Full(2))));
        let mut out = Vec::new();
        assert_eq!(m.poll_take(&mut cx, &mut out, 10).n, 1);
        assert!(
            matches!(m.push_weighted(3, 1), Err(PushError::Full(3))),
            "what the consumer took still counts"
        );
        m.set_held(600);
        m.push_weighted(4, 400).expect("600 held + 400 queued fit");
        assert!(matches!(m.push_weighted(5, 1), Err(PushError::Full(5))));
        m.set_held(0);
        m.push_weighted(6, 600).expect("400 + 600 fit");
        assert_eq!(m.try_recv(), Some(4));
        m.push_weighted(7, 400).expect("600 + 400 fit");
    }

    #[test]
    fn a_drained_burst_gives_its_memory_back() {
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let m: Mailbox<u64, ()> = Mailbox::new(1000);
        for i in 0..1000 {
            m.push(i).expect("room");
        }
        let mut out = Vec::new();
        assert_eq!(m.poll_take(&mut cx, &mut out, usize::MAX).n, 1000);
        assert!(m.lock().queue.capacity() <= KEEP_CAPACITY);
    }

    #[test]
    fn pause_resume_and_awaited_flags_wake_the_consumer() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let m: Mailbox<u32, u8> = Mailbox::with_byte_cap(10, 100);
        m.push_weighted(1, 7).expect("room");
        assert_eq!(m.depth(), (1, 7));
        let mut out = Vec::new();
        assert_eq!(m.poll_take(&mut cx, &mut out, 10).n, 1);
        assert_eq!(m.depth(), (0, 7), "taken and held");
        m.set_held(0);
        assert_eq!(m.depth(), (0, 0));
        // Nothing to take: the consumer's waker is registered; a pause does not wake it,
        // a resume does.
        assert_eq!(m.poll_take(&mut cx, &mut out, 10).n, 0);
        let before = count.0.load(Ordering::SeqCst);
        m.pause();
        assert!(m.is_paused());
        assert_eq!(count.0.load(Ordering::SeqCst), before);
        m.resume();
        assert!(!m.is_paused());
        assert_eq!(count.0.load(Ordering::SeqCst), before + 1);
        assert_eq!(m.poll_take(&mut cx, &mut out, 10).n, 0);
        m.wake();
        assert_eq!(count.0.load(Ordering::SeqCst), before + 2);
        assert!(m.set_awaited());
        assert!(!m.set_awaited());
        assert!(m.is_awaited());
        m.clear_awaited();
        assert!(!m.is_awaited());
    }
}
