//! Seeded pseudo-randomness for the simulation's own decisions (workload, network, faults).
//!
//! Everything derives from one `u64`: [`split`] turns it into independent sub-seeds, and
//! each subsystem owns a [`Prng`] seeded from one of them, so adding draws to one subsystem
//! does not shift the others. Key material uses a ChaCha20 stream seeded the same way.

/// SplitMix64: the finaliser used to derive sub-seeds and as a cheap hash.
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The sub-seed of `seed` for the subsystem called `label`.
pub fn split(seed: u64, label: &str) -> u64 {
    let mut h = seed;
    for b in label.bytes() {
        h = mix64(h ^ u64::from(b));
    }
    mix64(h)
}

/// xoshiro256** — fast, small, and good enough for simulation decisions (not for keys).
#[derive(Clone, Debug)]
pub struct Prng {
    s: [u64; 4],
}

impl Prng {
    /// A generator seeded from `seed` (any value, zero included).
    pub fn new(seed: u64) -> Prng {
        let mut x = seed;
        let mut s = [0u64; 4];
        for w in &mut s {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            *w = mix64(x);
        }
        Prng { s }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform index into a collection of `len` items (`len` > 0).
    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below(hi - lo + 1)
    }

    /// A uniform float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }

    /// An exponentially distributed value with the given mean (for think times, gaps).
    pub fn exp(&mut self, mean: f64) -> f64 {
        let u = 1.0 - self.unit();
        -u.ln() * mean
    }

    /// A rank in `0..n` with probability roughly proportional to `1/(rank+1)`
    /// (log-uniform): the first few of `n` items are drawn far more often.
    pub fn skewed(&mut self, n: usize) -> usize {
        if n <= 1 {
            return 0;
        }
        let x = ((n as f64 + 1.0).powf(self.unit())).floor() as usize;
        x.saturating_sub(1).min(n - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_seeds_differ_and_are_stable() {
        assert_ne!(split(1, "net"), split(1, "workload"));
        assert_ne!(split(1, "net"), split(2, "net"));
        assert_eq!(split(7, "faults"), split(7, "faults"));
    }

    #[test]
    fn draws_stay_in_range_and_skew_favours_low_ranks() {
        let mut r = Prng::new(3);
        let mut low = 0;
        for _ in 0..10_000 {
            assert!(r.below(10) < 10);
            let v = r.range(5, 7);
            assert!((5..=7).contains(&v));
            let s = r.skewed(100);
            assert!(s < 100);
            if s < 10 {
                low += 1;
            }
        }
        // Log-uniform: about half the mass on the first 10 of 100 ranks.
        assert!(low > 4_000, "{low}");
    }
}
