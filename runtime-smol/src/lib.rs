//! cove-smol: cove's async adapter, written against the `futures-io` traits
//! ([`AsyncRead`](futures_lite::AsyncRead) + [`AsyncWrite`](futures_lite::AsyncWrite)) so
//! any executor with compatible streams can run it; smol's `Async<TcpStream>` and
//! executor are the defaults.
//!
//! - [`server::Server`] drives one task per connection (its
//!   [`cove_core::server::ServerConnection`], so the crypto of many connections runs in
//!   parallel on a multi-threaded executor), shares the core's one
//!   [`cove_core::server::Driver`] (the hub and its write-ahead pipeline) behind a mutex
//!   held only for the driver's own (crypto-free) steps, and hands every connection's
//!   replies over through a **bounded** queue: a connection whose queue overflows is cut
//!   off with `SendQueueExceeded` and nobody else ever waits for it.
//! - A committer thread of the server's own makes the driver's batches of
//!   [`cove_core::store::StoreOp`]s durable, many steps per batch; the driver releases
//!   those steps' replies only then (the write-ahead rule of [`cove_core::store`]), and
//!   the committer writes them to idle connections itself. While the pipeline is full,
//!   connections stop reading.
//! - [`client::Connection`] is an async client for programs: commands on a cloneable
//!   handle, owned [`client::Event`]s from a bounded queue, and a driver future that runs
//!   on whatever executor the program uses.
//!
//! Executors are pluggable through [`Spawn`]: the server spawns its connection tasks and
//! its committer with it. Timers are async-io's [`smol::Timer`], which runs under any
//! executor (async-io drives its own reactor when nobody else does).
//!
//! The adapter holds no protocol logic: framing, handshake, crypto, timers and the chat
//! semantics all live in `cove-core`; this crate moves bytes, time and entropy.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
mod mailbox;
mod scratch;
pub mod server;

/// The smol this crate is built on, for programs that embed the server or the client
/// (`cove_smol::smol::block_on`, `cove_smol::smol::Executor`).
pub use smol;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use cove_core::time::Instant;
use rand_core::UnwrapErr;

/// A boxed task, as handed to a [`Spawn`].
pub type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Starts tasks on an executor. The server spawns one task per connection and one
/// committer; the client spawns its connection driver.
///
/// Implemented for smol's [`smol::Executor`] (behind an `Arc`), for [`SmolGlobal`], and
/// for any `Fn(Task)`, so another executor plugs in with a closure, for example
/// `|t| { async_std::task::spawn(t); }`.
pub trait Spawn: Send + Sync + 'static {
    /// Runs `task` to completion in the background.
    fn spawn(&self, task: Task);
}

impl<F> Spawn for F
where
    F: Fn(Task) + Send + Sync + 'static,
{
    fn spawn(&self, task: Task) {
        self(task)
    }
}

impl Spawn for Arc<smol::Executor<'static>> {
    fn spawn(&self, task: Task) {
        smol::Executor::spawn(self, task).detach();
    }
}

/// smol's global executor ([`smol::spawn`]); its thread count comes from the
/// `SMOL_THREADS` environment variable (default 1).
#[derive(Clone, Copy, Debug, Default)]
pub struct SmolGlobal;

impl Spawn for SmolGlobal {
    fn spawn(&self, task: Task) {
        smol::spawn(task).detach();
    }
}

/// Runs `f`'s future to completion on a fresh smol [`smol::Executor`] served by `threads`
/// threads (the calling thread included; at least 1), and returns its output. `f` gets
/// the executor, which is a [`Spawn`]: hand it to [`server::Server::bind`] so every
/// connection task runs on these threads, in parallel. The extra threads stop when the
/// future completes.
///
/// This is what `cove serve --runtime smol` does with one thread per core; a program
/// that already runs an executor passes its own [`Spawn`] instead.
pub fn block_on_threads<F, T>(
    threads: usize,
    f: impl FnOnce(Arc<smol::Executor<'static>>) -> F,
) -> T
where
    F: Future<Output = T>,
{
    let ex = Arc::new(smol::Executor::new());
    let (stop, stopped) = smol::channel::bounded::<()>(1);
    let workers: Vec<_> = (1..threads.max(1))
        .filter_map(|i| {
            let ex = ex.clone();
            let stopped = stopped.clone();
            std::thread::Builder::new()
                .name(format!("cove-smol-{i}"))
                .spawn(move || smol::block_on(ex.run(stopped.recv())))
                .ok()
        })
        .collect();
    let out = smol::block_on(ex.run(f(ex.clone())));
    drop(stop);
    for w in workers {
        let _ = w.join();
    }
    out
}

/// The cryptographically secure random generator of the operating system.
///
/// The core takes randomness as `&mut impl CryptoRng`; this is what the adapter passes.
/// If the OS generator ever fails, the call panics: no key may be made without entropy.
pub fn os_rng() -> UnwrapErr<getrandom::SysRng> {
    UnwrapErr(getrandom::SysRng)
}

/// A random `u64` from the OS.
pub fn random_u64() -> u64 {
    use rand_core::Rng;
    os_rng().next_u64()
}

pub use cove_core::crypto::preferred_suite;

struct Clock {
    unix_at_start_us: u64,
    start: std::time::Instant,
}

static CLOCK: OnceLock<Clock> = OnceLock::new();

fn clock() -> &'static Clock {
    CLOCK.get_or_init(|| Clock {
        unix_at_start_us: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
        start: std::time::Instant::now(),
    })
}

/// Now, as the core counts time: microseconds since the Unix epoch, read from a
/// monotonic clock anchored once to the wall clock (so it never goes backwards, and
/// server timestamps on messages are real dates).
pub fn now() -> Instant {
    let clock = clock();
    let elapsed = u64::try_from(clock.start.elapsed().as_micros()).unwrap_or(u64::MAX);
    Instant(clock.unix_at_start_us.saturating_add(elapsed))
}

/// The monotonic instant at which the core's clock reads `at` (for arming a
/// [`smol::Timer`]). Far-future deadlines saturate instead of overflowing.
pub fn to_std_instant(at: Instant) -> std::time::Instant {
    let clock = clock();
    let offset = std::time::Duration::from_micros(at.0.saturating_sub(clock.unix_at_start_us));
    clock
        .start
        .checked_add(offset)
        .unwrap_or_else(|| clock.start + std::time::Duration::from_secs(365 * 24 * 3600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_is_monotonic_and_near_the_wall_clock() {
        let a = now();
        let b = now();
        assert!(b >= a);
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        assert!(
            wall.abs_diff(b.0) < 5_000_000,
            "within 5 s of the wall clock"
        );
    }

    #[test]
    fn core_deadlines_map_to_std_instants() {
        let t = now();
        let later = Instant(t.0 + 2_000_000);
        let d = to_std_instant(later).saturating_duration_since(std::time::Instant::now());
        assert!(
            d > std::time::Duration::from_millis(1500) && d <= std::time::Duration::from_secs(2)
        );
        // Far future and far past do not panic.
        let _ = to_std_instant(Instant(u64::MAX));
        assert!(to_std_instant(Instant(0)) <= std::time::Instant::now());
    }

    #[test]
    fn os_entropy_differs_between_calls() {
        assert_ne!(random_u64(), random_u64());
    }
}
