//! cove-std: cove's blocking adapter over `std::net`, seed 000's thread-per-connection
//! model done right.
//!
//! - [`server::Server`] accepts TCP connections and gives each a reader thread, which
//!   drives that connection's [`cove_core::server::ServerConnection`] (so the crypto of
//!   many connections runs in parallel), and a writer thread, which drains the
//!   connection's **bounded** queue of replies and writes everything pending in one
//!   `write`. The core's [`cove_core::server::Driver`] (the hub and the write-ahead
//!   pipeline) is shared behind a mutex. A connection whose queue overflows is cut off
//!   with `SendQueueExceeded`; nobody else ever waits for it.
//! - A committer thread makes the driver's batches of [`cove_core::store::StoreOp`]s
//!   durable (many steps per transaction under load); the driver releases a step's
//!   replies only then: the write-ahead rule of [`cove_core::store`]. While the driver
//!   is full, readers stop feeding it until a batch is durable (back-pressure).
//! - [`client::Connection`] is a blocking client for programs: commands on a handle, and
//!   owned [`client::Event`]s from a bounded channel.
//!
//! The adapter holds no protocol logic: framing, handshake, crypto, timers and the chat
//! semantics all live in `cove-core`; this crate moves bytes, time and entropy.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod server;

use std::sync::OnceLock;

use cove_core::time::Instant;
use rand_core::UnwrapErr;

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

/// The suite a client on this machine should propose: AES-256-GCM when the CPU has AES
/// instructions, ChaCha20-Poly1305 otherwise (the core's one definition).
pub use cove_core::crypto::preferred_suite;

struct Clock {
    unix_at_start_us: u64,
    start: std::time::Instant,
}

static CLOCK: OnceLock<Clock> = OnceLock::new();

/// Now, as the core counts time: microseconds since the Unix epoch, read from a
/// monotonic clock anchored once to the wall clock (so it never goes backwards, and
/// server timestamps on messages are real dates).
pub fn now() -> Instant {
    let clock = CLOCK.get_or_init(|| Clock {
        unix_at_start_us: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
        start: std::time::Instant::now(),
    });
    let elapsed = u64::try_from(clock.start.elapsed().as_micros()).unwrap_or(u64::MAX);
    Instant(clock.unix_at_start_us.saturating_add(elapsed))
}

/// How long from now until `deadline` (zero if it has passed).
pub fn until(deadline: Instant) -> std::time::Duration {
    std::time::Duration::from_micros(deadline.0.saturating_sub(now().0))
}

/// Converts a core duration into a std one.
pub fn to_std(d: cove_core::time::Duration) -> std::time::Duration {
    std::time::Duration::from_micros(d.micros())
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
        assert_eq!(until(Instant(0)), std::time::Duration::ZERO);
    }

    #[test]
    fn os_entropy_differs_between_calls() {
        assert_ne!(random_u64(), random_u64());
    }
}
