//! What receivers measure: a latency histogram and per-(sender, room) sequence tracking,
//! kept per thread without allocating and merged at the end.

/// Sub-buckets per power of two: values are kept to within 1/64 (1.6%).
const SUB: u32 = 64;
const SUB_BITS: u32 = 6;
/// Buckets: exact values below 64, then 64 per power of two up to 2^64.
const BUCKETS: usize = (SUB as usize) * (64 - SUB_BITS as usize + 1);

/// A log-linear histogram of nanosecond values (like HdrHistogram, 1.6% precision).
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

fn bucket(v: u64) -> usize {
    if v < u64::from(SUB) {
        return v as usize;
    }
    let k = 63 - v.leading_zeros(); // >= SUB_BITS
    let sub = (v >> (k - SUB_BITS)) & u64::from(SUB - 1);
    ((k - SUB_BITS + 1) * SUB) as usize + sub as usize
}

/// The largest value a bucket holds.
fn bucket_high(i: usize) -> u64 {
    let i = i as u64;
    if i < u64::from(SUB) {
        return i;
    }
    let k = i / u64::from(SUB) - 1 + u64::from(SUB_BITS);
    let sub = i % u64::from(SUB);
    let low = (1u64 << k) | (sub << (k - u64::from(SUB_BITS)));
    low.saturating_add((1u64 << (k - u64::from(SUB_BITS))) - 1)
}

impl Histogram {
    /// Counts one value.
    pub fn record(&mut self, v: u64) {
        self.counts[bucket(v)] += 1;
        self.total += 1;
        self.max = self.max.max(v);
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// Values counted.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The largest value.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0..=1): the top of the bucket holding it, never above
    /// the maximum. 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_high(i).min(self.max);
            }
        }
        self.max
    }
}

/// One (receiver, sender, room) stream: the next sequence number expected and which of
/// the 64 before it arrived, to tell a duplicate from a late (reordered) message.
#[derive(Clone, Copy, Default)]
pub struct Stream {
    next: u32,
    /// Bit i: sequence number `next - 1 - i` arrived.
    seen: u64,
}

/// How a message fitted its stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// New, in order (possibly after a gap).
    InOrder,
    /// New, but after a later one.
    Reordered,
    /// Seen before.
    Duplicate,
}

impl Stream {
    /// Records sequence number `seq`.
    pub fn arrive(&mut self, seq: u32) -> Arrival {
        if seq >= self.next {
            let shift = seq - self.next + 1;
            self.seen = if shift >= 64 { 0 } else { self.seen << shift };
            self.seen |= 1; // bit 0: `seq` itself
            self.next = seq.saturating_add(1);
            return Arrival::InOrder;
        }
        let back = self.next - 1 - seq;
        if back >= 64 {
            // Too old to tell: called late, as a duplicate is only counted when proven.
            return Arrival::Reordered;
        }
        let bit = 1u64 << back;
        if self.seen & bit != 0 {
            Arrival::Duplicate
        } else {
            self.seen |= bit;
            Arrival::Reordered
        }
    }
}

/// Counters one thread keeps.
#[derive(Clone, Default)]
pub struct Counters {
    /// Messages queued for sending.
    pub sent: u64,
    /// New messages received from other members.
    pub deliveries: u64,
    /// The senders' own copies (cove echoes a room message to its sender).
    pub echoes: u64,
    /// Messages seen twice.
    pub duplicated: u64,
    /// Messages that arrived after a later one of the same sender and room.
    pub reordered: u64,
    /// Bodies without a valid header, or from a sender or room outside the plan.
    pub malformed: u64,
    /// Requests the server refused during the run (for example rate limited).
    pub refused: u64,
    /// Connections the server closed during the run.
    pub cut_off: u64,
    /// Acknowledgements sent (cove).
    pub acks: u64,
}

impl Counters {
    /// Adds another thread's counters.
    pub fn merge(&mut self, o: &Counters) {
        self.sent += o.sent;
        self.deliveries += o.deliveries;
        self.echoes += o.echoes;
        self.duplicated += o.duplicated;
        self.reordered += o.reordered;
        self.malformed += o.malformed;
        self.refused += o.refused;
        self.cut_off += o.cut_off;
        self.acks += o.acks;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_the_precision() {
        let mut h = Histogram::default();
        for v in 1..=100_000u64 {
            h.record(v * 1000);
        }
        for (q, want) in [(0.5, 50_000_000u64), (0.99, 99_000_000), (1.0, 100_000_000)] {
            let got = h.quantile(q);
            let err = (got as f64 - want as f64).abs() / want as f64;
            assert!(err < 0.02, "q{q}: {got} vs {want}");
        }
        assert_eq!(h.max(), 100_000_000);
        for v in [0u64, 1, 63, 64, 65, 1000, u64::MAX / 3, u64::MAX] {
            assert!(bucket(v) < BUCKETS);
            assert!(bucket_high(bucket(v)) >= v, "{v}");
        }
    }

    #[test]
    fn streams_tell_gaps_late_and_repeated_messages_apart() {
        let mut s = Stream::default();
        assert_eq!(s.arrive(0), Arrival::InOrder);
        assert_eq!(s.arrive(1), Arrival::InOrder);
        assert_eq!(s.arrive(1), Arrival::Duplicate);
        assert_eq!(s.arrive(4), Arrival::InOrder);
        assert_eq!(s.arrive(3), Arrival::Reordered);
        assert_eq!(s.arrive(3), Arrival::Duplicate);
        assert_eq!(s.arrive(2), Arrival::Reordered);
        assert_eq!(s.arrive(0), Arrival::Duplicate);
        assert_eq!(s.arrive(200), Arrival::InOrder);
        assert_eq!(s.arrive(200), Arrival::Duplicate);
    }
}
