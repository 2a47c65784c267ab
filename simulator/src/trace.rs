//! The trace: a rolling hash of everything that happened (the determinism fingerprint) and,
//! when asked for, a ring of the last events for the failure trace file.

use std::collections::VecDeque;
use std::fmt::Write as _;

use crate::rng::mix64;

/// What kind of step a trace entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Kind {
    Arrive,
    ClientTimer,
    ServerTimer,
    Commit,
    /// The disk answered a read of older room messages (from, to).
    Load,
    Act,
    Connect,
    Fault,
    ServerUp,
    Phase,
    Check,
    Wire,
    Hub,
    Client,
    /// An encrypted user's session handled a room entry.
    Secure,
}

/// One remembered event.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Simulated time, µs.
    pub at: u64,
    /// What happened.
    pub kind: Kind,
    /// First detail (a user, connection or code, depending on the kind).
    pub a: u64,
    /// Second detail.
    pub b: u64,
    /// Free text for rare, interesting entries (faults, phase changes).
    pub text: Option<String>,
}

/// The rolling trace hash and the optional ring of recent entries.
#[derive(Debug)]
pub struct Trace {
    hash: u64,
    ring: VecDeque<Entry>,
    keep: usize,
}

impl Trace {
    /// A trace remembering the last `keep` entries (0: hash only).
    pub fn new(keep: usize) -> Trace {
        Trace {
            hash: 0x636F_7665_2D73_696D,
            ring: VecDeque::new(),
            keep,
        }
    }

    /// Folds an event into the hash (and the ring).
    pub fn note(&mut self, at: u64, kind: Kind, a: u64, b: u64) {
        self.hash = mix64(self.hash ^ at);
        self.hash = mix64(self.hash ^ ((kind as u64) << 56) ^ a);
        self.hash = mix64(self.hash ^ b);
        if self.keep > 0 {
            self.push(Entry {
                at,
                kind,
                a,
                b,
                text: None,
            });
        }
    }

    /// Like [`Trace::note`], with a description kept in the ring.
    pub fn note_text(&mut self, at: u64, kind: Kind, a: u64, text: impl FnOnce() -> String) {
        self.note(at, kind, a, 0);
        if self.keep > 0
            && let Some(last) = self.ring.back_mut()
        {
            last.text = Some(text());
        }
    }

    /// Folds bytes into the hash, eight at a time.
    pub fn bytes(&mut self, data: &[u8]) {
        let mut h = self.hash;
        let mut chunks = data.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            h = (h ^ u64::from_le_bytes(w))
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .rotate_left(29);
        }
        for &b in chunks.remainder() {
            h = (h ^ u64::from(b))
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .rotate_left(29);
        }
        self.hash = mix64(h ^ data.len() as u64);
    }

    fn push(&mut self, e: Entry) {
        if self.ring.len() == self.keep {
            self.ring.pop_front();
        }
        self.ring.push_back(e);
    }

    /// The hash so far.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// The remembered entries as text lines, oldest first.
    pub fn lines(&self) -> Vec<String> {
        self.ring
            .iter()
            .map(|e| {
                let mut s = format!(
                    "{:>10}.{:06}s {:<11} a={} b={}",
                    e.at / 1_000_000,
                    e.at % 1_000_000,
                    format!("{:?}", e.kind),
                    e.a,
                    e.b
                );
                if let Some(t) = &e.text {
                    let _ = write!(s, "  {t}");
                }
                s
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_depends_on_every_input_and_ring_is_bounded() {
        let mut a = Trace::new(2);
        let mut b = Trace::new(0);
        for t in [&mut a, &mut b] {
            t.note(1, Kind::Act, 2, 3);
            t.bytes(b"hello world");
        }
        assert_eq!(a.hash(), b.hash());
        b.bytes(b"!");
        assert_ne!(a.hash(), b.hash());
        a.note_text(5, Kind::Fault, 1, || "partition".into());
        a.note(6, Kind::Check, 0, 0);
        let lines = a.lines();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].contains("partition"));
    }
}
