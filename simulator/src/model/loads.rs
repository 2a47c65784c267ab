//! The model of older room messages read back from the disk: the hub keeps a room's
//! newest messages whole (the longest run of newest messages within `memory_messages`
//! and `memory_bytes`, a lone newest one always); a member's catch-up or a history page
//! that needs an older one waits for a load (one per room at a time), and the step that
//! answers the load pushes every member of the room what it can now take and answers the
//! pages that waited, in order. The loaded range stays at hand until the next load.

use cove_core::hub::{ConnId, Reply};
use cove_core::store::{LogLoad, StoreOp};
use cove_core::wire::{ErrorCode, RoomId};

use super::expect::Streams;
use super::hub_step::StepExpect;
use super::{Checked, Model, fail};

/// Most history pages a room holds while they wait for a load (the hub's bound).
const MAX_WAITING_PAGES: usize = 8;

/// A room incarnation's reads from the disk.
#[derive(Debug, Default)]
pub(super) struct RoomLoads {
    /// The load it waits for: the hub's ID, or `None` until the step that asked ends.
    waiting: Option<Option<u64>>,
    /// History pages waiting for it, in the order asked.
    pages: Vec<WaitingPage>,
    /// The first sequence number the hub keeps whole, as of the room's last message
    /// (`None`: as restored or created, the longest run within the bound).
    tail: Option<u64>,
    /// The range the last load read, which the hub keeps at hand until the next load
    /// (what retention drops of it is never asked for again).
    loaded: Option<(u64, u64)>,
}

/// A history request waiting for a load.
#[derive(Debug)]
struct WaitingPage {
    conn: ConnId,
    u: usize,
    req: u32,
    before: u64,
    limit: u8,
}

impl Model {
    /// The first sequence number of `room` the hub keeps whole (one past the last if
    /// the log is empty).
    pub(super) fn tail_first(&self, room: RoomId) -> u64 {
        let Some(r) = self.rooms.get(&room) else {
            return 0;
        };
        match self.loads.get(&r.inc).and_then(|l| l.tail) {
            Some(t) => t.max(r.first),
            None => self.within_bound(room),
        }
    }

    /// After a message: the hub keeps only the lengths of the oldest whole messages past
    /// the bound, but none a connected member has yet to be pushed.
    pub(super) fn evict_whole(&mut self, room: RoomId) {
        let Some(r) = self.rooms.get(&room) else {
            return;
        };
        let pin = r
            .members
            .iter()
            .filter(|m| self.users[m.u].conn.is_some())
            .map(|m| m.pushed + 1)
            .min()
            .unwrap_or(u64::MAX);
        let inc = r.inc;
        let tail = self.tail_first(room).max(self.within_bound(room).min(pin));
        self.loads.entry(inc).or_default().tail = Some(tail);
    }

    /// Where the longest run of `room`'s newest messages within the bound starts.
    fn within_bound(&self, room: RoomId) -> u64 {
        let Some(r) = self.rooms.get(&room) else {
            return 0;
        };
        let entries = self.log.get(&r.inc).map_or(&[][..], |l| l.as_slice());
        let (mut first, mut kept, mut bytes) = (r.next_seq, 0usize, 0usize);
        while first > r.first {
            let len = entries.get(first as usize - 2).map_or(0, |e| e.body.len());
            if kept + 1 > self.limits.memory_messages.max(1)
                || (kept >= 1 && bytes + len > self.limits.memory_bytes)
            {
                break;
            }
            kept += 1;
            bytes += len;
            first -= 1;
        }
        first
    }

    /// Whether every message of `start..end` of `room` is at hand.
    pub(super) fn range_at_hand(&self, room: RoomId, start: u64, end: u64) -> bool {
        let end = end.min(self.tail_first(room));
        start >= end
            || self
                .loaded_range(room)
                .is_some_and(|(lo, hi)| lo <= start && end <= hi)
    }

    pub(super) fn loaded_range(&self, room: RoomId) -> Option<(u64, u64)> {
        let inc = self.rooms.get(&room)?.inc;
        self.loads.get(&inc)?.loaded
    }

    /// The hub asks the disk for `room`'s `from..to`, unless the room already waits.
    pub(super) fn request_load(&mut self, room: RoomId, from: u64, to: u64) {
        let Some(inc) = self.rooms.get(&room).map(|r| r.inc) else {
            return;
        };
        let l = self.loads.entry(inc).or_default();
        if l.waiting.is_some() || from >= to {
            return;
        }
        l.waiting = Some(None);
        self.requested.push((room, inc, from, to));
    }

    /// A history page of `room` that must wait for the disk; `Err` when too many wait.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn wait_for_page(
        &mut self,
        conn: ConnId,
        u: usize,
        req: u32,
        room: RoomId,
        before: u64,
        limit: u8,
        range: (u64, u64),
    ) -> Result<(), ErrorCode> {
        let Some(inc) = self.rooms.get(&room).map(|r| r.inc) else {
            return Err(ErrorCode::RoomNotFound);
        };
        let l = self.loads.entry(inc).or_default();
        if l.pages.len() >= MAX_WAITING_PAGES {
            return Err(ErrorCode::RateLimited);
        }
        l.pages.push(WaitingPage {
            conn,
            u,
            req,
            before,
            limit,
        });
        let to = range.1.min(self.tail_first(room));
        self.request_load(room, range.0, to);
        Ok(())
    }

    /// The loads a step asked for must be the ones the model expects, in order; each
    /// room then waits for its load's ID.
    pub(super) fn check_loads(&mut self, loads: &[LogLoad]) -> Checked {
        let want: Vec<(RoomId, u64, u64)> = self
            .requested
            .iter()
            .map(|(r, _, f, t)| (*r, *f, *t))
            .collect();
        let got: Vec<(RoomId, u64, u64)> = loads.iter().map(|l| (l.room, l.from, l.to)).collect();
        if want != got {
            return fail(
                "loads",
                format!("the hub asked the disk for {got:?}, the model expects {want:?}"),
            );
        }
        for ((_, inc, _, _), load) in self.requested.drain(..).zip(loads) {
            if let Some(l) = self.loads.get_mut(&inc) {
                l.waiting = Some(Some(load.id));
            }
        }
        Ok(())
    }

    /// A crash: no load is waited for any more, nothing loaded is at hand, and the
    /// restarted hub keeps whole only what the bound allows.
    pub(super) fn forget_loads(&mut self) {
        self.loads.clear();
        self.requested.clear();
        let rooms: Vec<RoomId> = self.rooms.keys().copied().collect();
        for room in rooms {
            let tail = self.within_bound(room);
            if let Some(inc) = self.rooms.get(&room).map(|r| r.inc) {
                self.loads.entry(inc).or_default().tail = Some(tail);
            }
        }
    }

    /// The disk answered `load` (with everything asked for that it holds): the members
    /// of its room take what they can, then the waiting pages are answered.
    pub fn on_loaded(
        &mut self,
        load: &LogLoad,
        deliveries: &[(ConnId, Reply)],
        ops: &[StoreOp],
        loads: &[LogLoad],
    ) -> Checked {
        let mut expect = StepExpect::default();
        let mut errors = Vec::new();
        if let Some(r) = self.rooms.get(&load.room) {
            let (inc, first) = (r.inc, r.first);
            let waited = self.loads.get(&inc).and_then(|l| l.waiting) == Some(Some(load.id));
            if waited {
                let hi = load.to.min(self.tail_first(load.room));
                let lo = load.from.max(first);
                let members: Vec<usize> = r.members.iter().map(|m| m.u).collect();
                let pages = self.loads.get_mut(&inc).map_or(Vec::new(), |l| {
                    l.waiting = None;
                    l.loaded = (lo < hi).then_some((lo, hi));
                    std::mem::take(&mut l.pages)
                });
                for u in members {
                    self.pump(load.room, u, &mut expect.streams);
                }
                errors = self.answer_pages(load.room, pages, &mut expect.streams);
            }
        }
        let got: Vec<(ConnId, u32, ErrorCode)> = deliveries
            .iter()
            .filter_map(|(c, r)| match r {
                Reply::Error { req, code, .. } => Some((*c, *req, *code)),
                _ => None,
            })
            .collect();
        if got != errors {
            return fail(
                "history",
                format!(
                    "pages answered after a load: errors {got:?}, the model expects {errors:?}"
                ),
            );
        }
        self.finish(&expect, deliveries, ops, loads)
    }

    /// Answers the pages that waited, in order, on connections still their user's; the
    /// errors they get.
    fn answer_pages(
        &mut self,
        room: RoomId,
        pages: Vec<WaitingPage>,
        out: &mut Streams,
    ) -> Vec<(ConnId, u32, ErrorCode)> {
        let mut errors = Vec::new();
        for p in pages {
            if self.conns.get(&p.conn) != Some(&p.u) {
                continue;
            }
            if let Err(code) = self.history(p.conn, p.u, p.req, room, p.before, p.limit, out) {
                errors.push((p.conn, p.req, code));
            }
        }
        errors
    }
}
