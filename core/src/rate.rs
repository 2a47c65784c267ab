//! A token bucket: `rate` tokens per second (or one token per period), at most `burst`
//! saved up.

use crate::time::{Duration, Instant};

/// A token-bucket rate limiter on the core's virtual clock.
///
/// The level is kept in exact integer units of `1 / per_us` token, so refills never lose
/// a remainder however often the bucket is asked.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    /// Tokens × `per_us`.
    level: u128,
    last: Instant,
    /// Refill: `tokens` tokens every `per_us` microseconds.
    tokens: u64,
    per_us: u64,
    burst: u64,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn new(now: Instant, rate_per_sec: u32, burst: u32) -> TokenBucket {
        TokenBucket::with(now, u64::from(rate_per_sec), 1_000_000, burst)
    }

    /// A full bucket at `now` that refills one token every `period` (for budgets slower
    /// than one a second, such as registrations).
    pub fn every(now: Instant, period: Duration, burst: u32) -> TokenBucket {
        TokenBucket::with(now, 1, period.micros().max(1), burst)
    }

    fn with(now: Instant, tokens: u64, per_us: u64, burst: u32) -> TokenBucket {
        let burst = u64::from(burst.max(1));
        TokenBucket {
            level: u128::from(burst) * u128::from(per_us),
            last: now,
            tokens,
            per_us,
            burst,
        }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_since(self.last).micros();
        self.last = self.last.max(now);
        let cap = u128::from(self.burst) * u128::from(self.per_us);
        let refill = u128::from(elapsed) * u128::from(self.tokens);
        self.level = (self.level + refill).min(cap);
        let cost = u128::from(self.per_us);
        if self.level >= cost {
            self.level -= cost;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_steady_rate() {
        let mut b = TokenBucket::new(Instant(0), 10, 3);
        assert!((0..3).all(|_| b.try_take(Instant(0))));
        assert!(!b.try_take(Instant(0)));
        // One token every 100 ms at 10/s.
        assert!(!b.try_take(Instant(99_999)));
        assert!(b.try_take(Instant(100_000)));
        assert!(!b.try_take(Instant(100_000)));
        // A long pause refills only up to the burst.
        assert!((0..3).all(|_| b.try_take(Instant(60_000_000))));
        assert!(!b.try_take(Instant(60_000_000)));
    }

    #[test]
    fn one_token_per_period() {
        let minute = Duration::from_secs(60);
        let mut b = TokenBucket::every(Instant(0), minute, 2);
        assert!(b.try_take(Instant(0)) && b.try_take(Instant(0)));
        assert!(!b.try_take(Instant(59_999_999)));
        assert!(b.try_take(Instant(60_000_000)));
        assert!(!b.try_take(Instant(60_000_000)));
        // Years of silence refill only the burst, without overflow.
        let later = Instant(u64::MAX / 2);
        assert!(b.try_take(later) && b.try_take(later) && !b.try_take(later));
    }
}
