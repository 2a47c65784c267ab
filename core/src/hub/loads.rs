//! Reading older messages back from the store. A room keeps only its newest messages whole
//! (see `retained`); when a member's catch-up or a history page needs an older one, the
//! hub asks the store for a range ([`LogLoad`]), at most one per room at a time, and goes
//! on with other work. The driver hands the load out after every operation emitted before
//! it, so the store's answer reflects them; [`Hub::handle_loaded`] then pushes what the
//! room's members were waiting for and answers the history pages that waited.
//!
//! What the store does not return, though the hub thought it retained, is treated as
//! dropped by retention: the room's log is trimmed past it (and members told of the gap),
//! so a store that lost a message cannot stall a member forever.

use alloc::collections::{BTreeSet, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::{ConnId, Hub};
use crate::store::{LogLoad, LoggedMessage, StoreOp};
use crate::time::Instant;
use crate::wire::RoomId;

/// Most history pages one room holds while they wait for a load; one more is refused
/// with `RateLimited`.
pub(super) const MAX_PENDING_HISTORIES: usize = 8;

/// A history request waiting for older messages from the store.
#[derive(Clone, Debug)]
pub(super) struct PendingHistory {
    pub(super) conn: ConnId,
    pub(super) name: Arc<str>,
    pub(super) req: u32,
    pub(super) before: u64,
    pub(super) limit: u8,
}

/// The loads the hub has asked for and not yet handed to the driver, and the
/// connections that started waiting for one.
#[derive(Debug, Default)]
pub(super) struct Loads {
    queue: VecDeque<LogLoad>,
    next_id: u64,
    /// Connections that started waiting for a load since the driver last looked
    /// (bounded by the connections open: each is removed when it closes).
    waits: BTreeSet<ConnId>,
}

impl Loads {
    /// `conn` needs `room`'s messages `from..to` from the store: asks for them, unless
    /// the room already waits for a load (whatever waits is looked at again when that one
    /// is answered).
    pub(super) fn request(
        &mut self,
        conn: ConnId,
        room: RoomId,
        loading: &mut Option<u64>,
        from: u64,
        to: u64,
    ) {
        self.waits.insert(conn);
        if loading.is_some() || from >= to {
            return;
        }
        self.next_id += 1;
        *loading = Some(self.next_id);
        self.queue.push_back(LogLoad {
            id: self.next_id,
            room,
            from,
            to,
        });
    }
}

impl Hub {
    /// The next read the store must answer (after the operations polled before it).
    pub(crate) fn poll_load(&mut self) -> Option<LogLoad> {
        self.loads.queue.pop_front()
    }

    /// A connection that started waiting for a load (a catch-up or a history page past
    /// the messages kept whole) since the last call: what it is sent by the answer must
    /// leave before what later steps send it.
    pub(crate) fn poll_waiting(&mut self) -> Option<ConnId> {
        self.loads.waits.pop_first()
    }

    /// Whether `conn` may still wait for a load: one of its rooms waits for one, and its
    /// next message there is not at hand or a history page of it waits. Never true
    /// without a load outstanding for it, so a wait always ends with an answer.
    pub(crate) fn waits_for_store(&self, conn: ConnId) -> bool {
        let Some(name) = self.conns.get(&conn) else {
            return false;
        };
        let Some(user) = self.users.get(name) else {
            return false;
        };
        user.rooms.iter().any(|room| {
            self.rooms.get(room).is_some_and(|r| {
                r.loading.is_some()
                    && (r.histories.iter().any(|h| h.conn == conn)
                        || r.member(name).is_some_and(|m| {
                            m.pushed + 1 < r.next_seq && r.message(m.pushed + 1).is_none()
                        }))
            })
        })
    }

    /// `conn` is gone: it waits for nothing.
    pub(super) fn forget_waits(&mut self, conn: ConnId) {
        self.loads.waits.remove(&conn);
    }

    /// The store's answer to `load`: the messages it holds of those asked for. Pushes
    /// them to the members waiting and answers the history pages waiting; an answer to a
    /// load the hub no longer waits for (its room deleted meanwhile) changes nothing.
    pub(crate) fn handle_loaded(&mut self, now: Instant, load: LogLoad, msgs: Vec<LoggedMessage>) {
        let Some(r) = self.rooms.get_mut(&load.room) else {
            return;
        };
        if r.loading != Some(load.id) {
            return;
        }
        r.loading = None;
        self.trim_log(now, load.room);
        let Some(r) = self.rooms.get_mut(&load.room) else {
            return;
        };
        let (lo, hi) = (
            load.from.max(r.first_retained()),
            load.to.min(r.log.tail_first()),
        );
        let (run, lost_below) = consecutive_run(msgs, &load, lo, hi);
        r.loaded = run;
        if let Some(below) = lost_below {
            self.drop_below(load.room, below);
        }
        self.pump_all(load.room);
        self.answer_histories(load.room);
    }

    /// Retention's view catches up with a store that no longer has messages below `below`.
    fn drop_below(&mut self, room: RoomId, below: u64) {
        let Some(r) = self.rooms.get_mut(&room) else {
            return;
        };
        let before = r.first_retained();
        while r.log.first().is_some_and(|f| f < below) {
            if let Some(len) = r.log.pop_front() {
                self.log_bytes_total -= len;
            }
        }
        if r.first_retained() > before {
            let below = r.first_retained();
            r.drop_loaded_below(below);
            self.store_ops
                .push_back(StoreOp::LogTrimmed { room, below });
        }
    }

    /// Answers, in order, the history pages of `room` that waited for a load; those the
    /// messages at hand still do not cover wait for the next load.
    fn answer_histories(&mut self, room: RoomId) {
        let Some(r) = self.rooms.get_mut(&room) else {
            return;
        };
        for h in core::mem::take(&mut r.histories) {
            if self.conns.get(&h.conn) != Some(&h.name) {
                continue; // that connection is gone: nobody to answer
            }
            self.history(h.conn, &h.name, h.req, room, h.before, h.limit);
        }
    }
}

/// The messages of `msgs` in `lo..hi`, in order, as one consecutive run ending at `hi`,
/// and the sequence number below which the store lost something (if it did).
fn consecutive_run(
    mut msgs: Vec<LoggedMessage>,
    load: &LogLoad,
    lo: u64,
    hi: u64,
) -> (Vec<LoggedMessage>, Option<u64>) {
    if lo >= hi {
        return (Vec::new(), None);
    }
    msgs.retain(|m| load.wants(m) && (lo..hi).contains(&m.seq));
    msgs.sort_by_key(|m| m.seq);
    msgs.dedup_by_key(|m| m.seq);
    let mut lost_below = None;
    let mut expect = lo;
    let mut start = 0;
    for (i, m) in msgs.iter().enumerate() {
        if m.seq != expect {
            lost_below = Some(m.seq);
            start = i;
        }
        expect = m.seq + 1;
    }
    if expect != hi {
        return (Vec::new(), Some(hi));
    }
    msgs.drain(..start);
    (msgs, lost_below)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn msg(seq: u64) -> LoggedMessage {
        LoggedMessage {
            room: RoomId(*b"ABCDEF"),
            seq,
            from: "a".into(),
            timestamp: 0,
            body: Arc::from(&b"x"[..]),
        }
    }

    fn seqs(run: &[LoggedMessage]) -> Vec<u64> {
        run.iter().map(|m| m.seq).collect()
    }

    const LOAD: LogLoad = LogLoad {
        id: 1,
        room: RoomId(*b"ABCDEF"),
        from: 3,
        to: 9,
    };

    #[test]
    fn a_whole_answer_is_kept_in_order_without_what_was_not_asked() {
        let got: Vec<_> = [8, 4, 5, 6, 7, 2, 9, 5].into_iter().map(msg).collect();
        let (run, lost) = consecutive_run(got, &LOAD, 4, 9);
        assert_eq!((seqs(&run), lost), (vec![4, 5, 6, 7, 8], None));
    }

    #[test]
    fn what_the_store_lost_is_dropped_with_everything_before_it() {
        let got: Vec<_> = [4, 6, 7, 8].into_iter().map(msg).collect();
        let (run, lost) = consecutive_run(got, &LOAD, 4, 9);
        assert_eq!((seqs(&run), lost), (vec![6, 7, 8], Some(6)));
        let got: Vec<_> = [5, 6, 7].into_iter().map(msg).collect();
        let (run, lost) = consecutive_run(got, &LOAD, 4, 9);
        assert_eq!(
            (seqs(&run), lost),
            (vec![], Some(9)),
            "the newest asked is missing"
        );
        let (run, lost) = consecutive_run(Vec::new(), &LOAD, 4, 4);
        assert_eq!(
            (seqs(&run), lost),
            (vec![], None),
            "nothing was needed any more"
        );
    }

    #[test]
    fn another_rooms_messages_are_not_taken() {
        let mut other = msg(4);
        other.room = RoomId(*b"GHJKLM");
        let got = vec![other, msg(5), msg(6), msg(7), msg(8)];
        let (run, lost) = consecutive_run(got, &LOAD, 4, 9);
        assert_eq!((seqs(&run), lost), (vec![5, 6, 7, 8], Some(5)));
    }
}
