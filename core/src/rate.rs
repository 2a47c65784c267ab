//! A token bucket: `rate` tokens per second, at most `burst` saved up.

use crate::time::Instant;

/// Micro-tokens per token: keeps refill exact in integer arithmetic.
const SCALE: u64 = 1_000_000;

/// A token-bucket rate limiter on the core's virtual clock.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    /// Tokens × [`SCALE`].
    level: u64,
    last: Instant,
    rate_per_sec: u64,
    burst: u64,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn new(now: Instant, rate_per_sec: u32, burst: u32) -> TokenBucket {
        let burst = u64::from(burst.max(1));
        TokenBucket {
            level: burst * SCALE,
            last: now,
            rate_per_sec: u64::from(rate_per_sec),
            burst,
        }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_since(self.last).micros();
        self.last = self.last.max(now);
        // rate tokens/s = rate × SCALE micro-tokens per 1e6 µs = rate micro-tokens per µs.
        let refill = elapsed.saturating_mul(self.rate_per_sec);
        self.level = self.level.saturating_add(refill).min(self.burst * SCALE);
        if self.level >= SCALE {
            self.level -= SCALE;
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
}
