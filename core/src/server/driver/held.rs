//! Replies that may not leave yet, in the order they must leave: behind the store batch
//! that must be durable first (the write-ahead rule), or behind a connection's wait for
//! older room messages read back from the store.
//!
//! A connection that starts waiting for a load gets a marker at the end of the queue.
//! When the load is answered, what the answer produces for that connection goes just
//! before its marker, so it leaves before anything the connection was sent by later
//! steps: each connection receives its replies in the order of the steps that caused
//! them, a catch-up read from the store included. Nothing passes a marker; a marker lives
//! only while its load is outstanding, which is answered when the batch carrying it is
//! durable, so it holds nothing back for longer than one commit.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::hub::{ConnId, Reply};

/// One entry of the queue.
#[derive(Debug)]
enum Entry {
    /// A reply, free once batch `tag` is durable.
    Reply {
        tag: u64,
        conn: ConnId,
        reply: Reply,
    },
    /// `ConnId` waits for a load: nothing behind this leaves before it is gone.
    Waiting(ConnId),
}

/// The queue of held replies and wait markers.
#[derive(Debug, Default)]
pub(super) struct Held {
    queue: VecDeque<Entry>,
    /// The connections with a marker in `queue` (few: those catching up from the store).
    waiting: Vec<ConnId>,
    /// The newest batch known durable.
    durable: u64,
}

impl Held {
    /// Replies held (markers not counted).
    pub(super) fn len(&self) -> usize {
        self.queue.len() - self.waiting.len()
    }

    /// Whether nothing is held and nobody waits.
    pub(super) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Queues a reply that may leave once batch `tag` is durable (`None`: none it must
    /// wait for). Returns it when it is free at once: nothing is ahead of it.
    pub(super) fn push(
        &mut self,
        tag: Option<u64>,
        conn: ConnId,
        reply: Reply,
    ) -> Option<(ConnId, Reply)> {
        if tag.is_none() && self.queue.is_empty() {
            return Some((conn, reply));
        }
        let tag = tag.unwrap_or(self.durable);
        self.queue.push_back(Entry::Reply { tag, conn, reply });
        None
    }

    /// `conn` waits for a load from now on (a marker at the end, unless it has one).
    pub(super) fn wait(&mut self, conn: ConnId) {
        if !self.waiting.contains(&conn) {
            self.waiting.push(conn);
            self.queue.push_back(Entry::Waiting(conn));
        }
    }

    /// The connections that wait.
    pub(super) fn waiting(&self) -> &[ConnId] {
        &self.waiting
    }

    /// Puts `replies` (a load's answer, free once batch `tag` is durable) just before
    /// the marker of the connection each goes to, in order; those to connections without
    /// a marker are returned, to be queued as usual.
    pub(super) fn answer(
        &mut self,
        tag: Option<u64>,
        replies: Vec<(ConnId, Reply)>,
    ) -> Vec<(ConnId, Reply)> {
        if replies.is_empty() || self.waiting.is_empty() {
            return replies;
        }
        let tag = tag.unwrap_or(self.durable);
        let (mut mine, rest): (Vec<_>, Vec<_>) = replies
            .into_iter()
            .partition(|(c, _)| self.waiting.contains(c));
        for i in 0..self.waiting.len() {
            let conn = self.waiting[i];
            let (these, others): (Vec<_>, Vec<_>) = mine.into_iter().partition(|(c, _)| *c == conn);
            mine = others;
            let at = self
                .queue
                .iter()
                .position(|e| matches!(e, Entry::Waiting(c) if *c == conn));
            if let (Some(at), false) = (at, these.is_empty()) {
                let mut behind = self.queue.split_off(at);
                self.queue
                    .extend(these.into_iter().map(|(conn, reply)| Entry::Reply {
                        tag,
                        conn,
                        reply,
                    }));
                self.queue.append(&mut behind);
            }
        }
        rest
    }

    /// `conn` no longer waits: its marker goes.
    pub(super) fn end_wait(&mut self, conn: ConnId) {
        self.waiting.retain(|c| *c != conn);
        self.queue
            .retain(|e| !matches!(e, Entry::Waiting(c) if *c == conn));
    }

    /// Batch `durable` (if any) is durable: moves the replies now free at the front of
    /// the queue, up to the first marker or the first that waits for a later batch.
    pub(super) fn release(&mut self, durable: Option<u64>, ready: &mut VecDeque<(ConnId, Reply)>) {
        if let Some(id) = durable {
            self.durable = self.durable.max(id);
        }
        while let Some(Entry::Reply { tag, .. }) = self.queue.front() {
            if *tag > self.durable {
                break;
            }
            if let Some(Entry::Reply { conn, reply, .. }) = self.queue.pop_front() {
                ready.push_back((conn, reply));
            }
        }
    }

    /// Drops everything (the store failed).
    pub(super) fn clear(&mut self) {
        self.queue.clear();
        self.waiting.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ErrorCode;

    fn reply(req: u32) -> Reply {
        let code = ErrorCode::RateLimited;
        let text = code.description();
        Reply::Error { req, code, text }
    }

    #[test]
    fn markers_hold_back_what_follows_and_are_not_counted_as_replies() {
        let (a, b) = (ConnId(1), ConnId(2));
        let mut held = Held::default();
        let mut ready = VecDeque::new();
        assert!(held.is_empty());
        assert!(held.push(None, a, reply(1)).is_some(), "nothing ahead");
        held.wait(a);
        held.wait(a);
        assert_eq!((held.len(), held.waiting()), (0, &[a][..]));
        assert!(!held.is_empty());
        assert!(held.push(None, b, reply(2)).is_none(), "behind a's marker");
        assert!(held.push(Some(3), a, reply(3)).is_none());
        assert_eq!(held.len(), 2);
        held.release(Some(5), &mut ready);
        assert!(ready.is_empty(), "nothing passes a marker");
        let rest = held.answer(Some(4), alloc::vec![(b, reply(4)), (a, reply(5))]);
        assert_eq!(rest, [(b, reply(4))], "b waits for nothing");
        held.end_wait(a);
        held.release(None, &mut ready);
        let order: Vec<_> = ready.iter().map(|(c, r)| (c.0, r.clone())).collect();
        assert_eq!(order, [(1, reply(5)), (2, reply(2)), (1, reply(3))]);
        assert!(held.is_empty());
    }
}
