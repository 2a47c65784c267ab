//! What the generator threads share: the plan, the room IDs the creators learn, the
//! phase barrier and the progress counters the main thread watches.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cove_core::wire::RoomId;

use super::plan::Plan;

/// The setup phases, in order; the run follows the last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Connect and register.
    Connect = 0,
    /// First members create the rooms.
    Create = 1,
    /// The other members join.
    Join = 2,
    /// The measured run.
    Run = 3,
}

/// State shared by all threads.
pub struct Shared {
    /// The workload.
    pub plan: Plan,
    /// Generator threads.
    pub threads: usize,
    /// The common start every time is measured from.
    pub epoch: Instant,
    /// Cove room IDs by room index, as their creators learn them.
    pub room_ids: Mutex<Vec<Option<RoomId>>>,
    /// Threads that finished each phase, summed over phases.
    phases_done: AtomicUsize,
    /// Set when a thread failed: everyone stops.
    abort: AtomicBool,
    /// The first failure.
    error: Mutex<Option<String>>,
    /// Set by the main thread to end the run.
    pub stop: AtomicBool,
    /// When the run started (ns since `epoch`), 0 before.
    pub run_start_ns: AtomicU64,
    /// Messages queued, all threads (published now and then).
    pub sent: AtomicU64,
    /// New messages received, echoes included (published now and then).
    pub received: AtomicU64,
    /// Senders that have queued all their messages or were cut off.
    pub senders_done: AtomicU64,
    /// Connections logged in, rooms joined (setup progress).
    pub setup_progress: AtomicU64,
}

impl Shared {
    /// Shared state for `plan` on `threads` threads.
    pub fn new(plan: Plan, threads: usize) -> Shared {
        let rooms = plan.rooms as usize;
        Shared {
            plan,
            threads,
            epoch: Instant::now(),
            room_ids: Mutex::new(vec![None; rooms]),
            phases_done: AtomicUsize::new(0),
            abort: AtomicBool::new(false),
            error: Mutex::new(None),
            stop: AtomicBool::new(false),
            run_start_ns: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            senders_done: AtomicU64::new(0),
            setup_progress: AtomicU64::new(0),
        }
    }

    /// Nanoseconds since the common start.
    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Records a failure (the first one is kept) and makes every thread stop.
    pub fn fail(&self, why: String) {
        if let Ok(mut e) = self.error.lock() {
            e.get_or_insert(why);
        }
        self.abort.store(true, Ordering::SeqCst);
        self.stop.store(true, Ordering::SeqCst);
    }

    /// The first failure, if any.
    pub fn failure(&self) -> Option<String> {
        self.error.lock().ok().and_then(|e| e.clone())
    }

    /// Whether a thread failed.
    pub fn aborted(&self) -> bool {
        self.abort.load(Ordering::SeqCst)
    }

    /// How many threads have finished `phase`.
    pub fn finished(&self, phase: Phase) -> usize {
        let done = self.phases_done.load(Ordering::SeqCst);
        done.saturating_sub(phase as usize * self.threads)
            .min(self.threads)
    }

    /// This thread finished `phase`: waits for the others. False when one failed.
    #[must_use]
    pub fn barrier(&self, phase: Phase) -> bool {
        self.phases_done.fetch_add(1, Ordering::SeqCst);
        let target = (phase as usize + 1) * self.threads;
        while self.phases_done.load(Ordering::SeqCst) < target {
            if self.aborted() {
                return false;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        !self.aborted()
    }
}
