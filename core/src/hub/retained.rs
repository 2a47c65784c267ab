//! A room's retained messages. The newest (the *tail*, bounded by
//! [`HubConfig::log_memory_messages`](super::HubConfig::log_memory_messages) and
//! [`log_memory_bytes`](super::HubConfig::log_memory_bytes)) are kept whole, so live
//! delivery never waits; of the older ones only what retention needs is kept (timestamp
//! and length): their bodies are in the store and read back when a member catches up or
//! pages through history (see `loads`). Memory then grows with the number of rooms, not
//! with how much history each keeps.

use alloc::collections::VecDeque;

use crate::store::{LogMemory, LoggedMessage, OlderMessage};

/// What retention needs of a message whose body is only in the store.
#[derive(Clone, Copy, Debug)]
struct Meta {
    timestamp: u64,
    len: usize,
}

/// Retained messages with consecutive sequence numbers: `older` then `tail`.
#[derive(Debug, Default)]
pub(super) struct Retained {
    /// Sequence number of the first retained message (meaningless when empty).
    first: u64,
    older: VecDeque<Meta>,
    tail: VecDeque<LoggedMessage>,
    /// Body bytes of every retained message.
    bytes: usize,
    /// Body bytes of the tail.
    tail_bytes: usize,
}

impl Retained {
    /// Number of messages retained.
    pub(super) fn len(&self) -> usize {
        self.older.len() + self.tail.len()
    }

    /// Body bytes of every retained message.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The first retained sequence number, if any is retained.
    pub(super) fn first(&self) -> Option<u64> {
        (self.len() > 0).then_some(self.first)
    }

    /// The first sequence number kept whole (one past the last if none is).
    pub(super) fn tail_first(&self) -> u64 {
        self.first + self.older.len() as u64
    }

    /// Timestamp of the oldest retained message.
    pub(super) fn front_timestamp(&self) -> Option<u64> {
        match self.older.front() {
            Some(m) => Some(m.timestamp),
            None => self.tail.front().map(|m| m.timestamp),
        }
    }

    /// Appends the room's next message (`msg.seq` follows the last one), whole.
    pub(super) fn push(&mut self, msg: LoggedMessage) {
        if self.len() == 0 {
            self.first = msg.seq;
        }
        // Positions stand for sequence numbers: the hub stamps them consecutively (the
        // simulator's `skip_sequence` bug breaks that on purpose, and is caught by the
        // order its members see, not here).
        self.bytes += msg.body.len();
        self.tail_bytes += msg.body.len();
        self.tail.push_back(msg);
    }

    /// Appends the room's next message (`msg.seq` follows the last one) as a store
    /// handed it back without its body. Only before any whole message: the tail is the
    /// newest.
    pub(super) fn push_older(&mut self, msg: OlderMessage) {
        debug_assert!(
            self.tail.is_empty(),
            "older messages precede the whole ones"
        );
        if self.len() == 0 {
            self.first = msg.seq;
        }
        self.bytes += msg.len;
        self.older.push_back(Meta {
            timestamp: msg.timestamp,
            len: msg.len,
        });
    }

    /// Keeps only the lengths of the oldest whole messages while the tail is over
    /// `bound`, but never of one below `pin` (a message a connected member has not been
    /// pushed yet stays whole, so that live delivery never waits for the store).
    pub(super) fn evict(&mut self, bound: LogMemory, pin: u64) {
        while self.tail_first() < pin && !bound.holds(self.tail.len(), self.tail_bytes) {
            let Some(m) = self.tail.pop_front() else {
                break;
            };
            self.tail_bytes -= m.body.len();
            self.older.push_back(Meta {
                timestamp: m.timestamp,
                len: m.body.len(),
            });
        }
    }

    /// Drops the oldest retained message; returns its body length.
    pub(super) fn pop_front(&mut self) -> Option<usize> {
        let len = match self.older.pop_front() {
            Some(m) => m.len,
            None => {
                let m = self.tail.pop_front()?;
                self.tail_bytes -= m.body.len();
                m.body.len()
            }
        };
        self.first += 1;
        self.bytes -= len;
        Some(len)
    }

    /// Message `seq`, if it is kept whole.
    pub(super) fn get(&self, seq: u64) -> Option<&LoggedMessage> {
        let i = seq.checked_sub(self.tail_first())?;
        self.tail.get(usize::try_from(i).ok()?)
    }

    /// The newest message.
    #[cfg(feature = "inject-bugs")]
    pub(super) fn newest(&self) -> Option<&LoggedMessage> {
        self.tail.back()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::sync::Arc;
    use alloc::vec;

    fn msg(seq: u64, len: usize) -> LoggedMessage {
        LoggedMessage {
            room: crate::wire::RoomId(*b"ABCDEF"),
            seq,
            from: "a".into(),
            timestamp: seq * 10,
            body: Arc::from(vec![0u8; len]),
        }
    }

    const TWO: LogMemory = LogMemory {
        messages: 2,
        bytes: 100,
    };

    #[test]
    fn the_tail_keeps_the_newest_whole_and_the_rest_as_lengths() {
        let mut r = Retained::default();
        assert_eq!(r.first(), None);
        for seq in 5..10 {
            r.push(msg(seq, 3));
            r.evict(TWO, u64::MAX);
        }
        assert_eq!((r.first(), r.len(), r.bytes()), (Some(5), 5, 15));
        assert_eq!(r.tail_first(), 8);
        assert!(r.get(7).is_none());
        assert_eq!(r.get(8).map(|m| m.seq), Some(8));
        assert_eq!(r.get(9).map(|m| m.seq), Some(9));
        assert!(r.get(10).is_none());
        assert_eq!(r.front_timestamp(), Some(50));
        assert_eq!(r.pop_front(), Some(3));
        assert_eq!((r.first(), r.len(), r.bytes()), (Some(6), 4, 12));
        assert_eq!(r.front_timestamp(), Some(60));
    }

    #[test]
    fn the_tail_is_bounded_by_bytes_but_keeps_one_message() {
        let mut r = Retained::default();
        r.push(msg(1, 60));
        r.push(msg(2, 60));
        r.evict(TWO, u64::MAX);
        assert_eq!(r.tail_first(), 2, "120 bytes are over 100: the older goes");
        r.push(msg(3, 500));
        r.evict(TWO, u64::MAX);
        assert_eq!(r.tail_first(), 3, "one message over the bound stays whole");
        assert_eq!(r.get(3).map(|m| m.body.len()), Some(500));
    }

    #[test]
    fn popping_into_the_tail_keeps_the_counts() {
        let mut r = Retained::default();
        for seq in 1..=3 {
            r.push(msg(seq, 10));
        }
        r.evict(TWO, u64::MAX);
        for want in [Some(10), Some(10), Some(10), None] {
            assert_eq!(r.pop_front(), want);
        }
        assert_eq!((r.len(), r.bytes(), r.first()), (0, 0, None));
        r.push(msg(4, 7));
        assert_eq!((r.first(), r.tail_first(), r.bytes()), (Some(4), 4, 7));
    }

    #[test]
    fn the_byte_bound_counts_only_what_stays_whole() {
        let mut r = Retained::default();
        r.push(msg(1, 50));
        r.push(msg(2, 50));
        r.evict(TWO, u64::MAX);
        assert_eq!(r.tail_first(), 1, "exactly at the bound is not over it");
        r.push(msg(3, 60));
        r.evict(TWO, u64::MAX);
        assert_eq!(r.tail_first(), 3, "110 and 160 bytes are over: 1 and 2 go");
        r.push(msg(4, 30));
        r.evict(TWO, u64::MAX);
        assert_eq!(r.tail_first(), 3, "60 + 30 bytes fit");
        // Retention takes 1 and 2 (lengths), then 3 out of the tail itself.
        for _ in 0..3 {
            r.pop_front();
        }
        r.push(msg(5, 60));
        r.evict(TWO, u64::MAX);
        assert_eq!(r.tail_first(), 4, "30 + 60 bytes fit");
        r.push(msg(6, 50));
        r.evict(TWO, u64::MAX);
        assert_eq!(
            r.tail_first(),
            6,
            "140, then 110 bytes are over: 4 and 5 go"
        );
    }

    #[test]
    fn what_a_connected_member_still_needs_stays_whole() {
        let mut r = Retained::default();
        for seq in 1..=6 {
            r.push(msg(seq, 3));
        }
        r.evict(TWO, 3);
        assert_eq!(r.tail_first(), 3, "3 is pinned");
        r.evict(TWO, 5);
        assert_eq!(r.tail_first(), 5, "the pin moved on");
        r.evict(TWO, u64::MAX);
        assert_eq!(r.tail_first(), 5, "the bound holds two");
    }

    #[test]
    fn messages_handed_back_without_bodies_precede_the_whole_ones() {
        let mut r = Retained::default();
        for seq in 5..8 {
            r.push_older(OlderMessage::from(&msg(seq, 10)));
        }
        r.push(msg(8, 4));
        assert_eq!(
            (r.first(), r.len(), r.bytes(), r.tail_first()),
            (Some(5), 4, 34, 8)
        );
        assert_eq!(r.front_timestamp(), Some(50));
        assert!(r.get(7).is_none());
        assert_eq!(r.get(8).map(|m| m.seq), Some(8));
        assert_eq!(r.pop_front(), Some(10));
        assert_eq!((r.first(), r.bytes()), (Some(6), 24));
    }
}
