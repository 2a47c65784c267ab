//! The model of a room's log and its delivery: each message stamped with the room's next
//! sequence number and logged; retention by count and bytes (the hub's `HubConfig`); per
//! member a cursor (the last acknowledged message) and a window of at most `room_window`
//! messages pushed and not acknowledged, through which live messages and catch-up flow
//! alike; a gap announced before the first message after messages retention dropped;
//! history pages.

use std::sync::Arc;

use cove_core::hub::ConnId;
use cove_core::wire::{ErrorCode, MAX_BODY_LEN, RoomId};

use super::durability::RoomWrite;
use super::expect::{Item, Streams, push};
use super::{HistoryNote, JoinNote, LogEntry, Model};

/// What one step must write besides its replies, checked against its store ops.
#[derive(Debug, Default)]
pub(super) struct StepOps {
    /// A room message logged: room, seq, sender, body.
    pub(super) logged: Option<(RoomId, u64, usize, Arc<[u8]>)>,
    /// Retention moved a room's first retained message.
    pub(super) trimmed: Option<(RoomId, u64)>,
    /// A member's cursor advanced: room, user, from, to.
    pub(super) cursor: Option<(RoomId, usize, u64, u64)>,
    /// Memberships begun (`Some(since)`) or ended (`None`), in order.
    pub(super) membership: Vec<(RoomId, usize, Option<u64>)>,
}

impl Model {
    /// Pushes `u` the room's messages after what it was pushed, while its window has room
    /// (nothing if `u` is offline): a gap first if retention dropped the next one.
    pub(super) fn pump(&mut self, room: RoomId, u: usize, out: &mut Streams) {
        let Some(conn) = self.users[u].conn else {
            return;
        };
        let window = self.limits.window;
        let tail_first = self.tail_first(room);
        let loaded = self.loaded_range(room);
        let at_hand =
            |seq: u64| seq >= tail_first || loaded.is_some_and(|(lo, hi)| (lo..hi).contains(&seq));
        let Some(r) = self.rooms.get_mut(&room) else {
            return;
        };
        let (first, last) = (r.first, r.last());
        let Some(m) = r.member_mut(u) else {
            return;
        };
        if m.pushed + 1 < first {
            push(out, conn, room, Item::Gap(first));
            m.pushed = first - 1;
        }
        // Messages retention dropped no longer hold the window.
        let floor = m.cursor.max(first - 1);
        let mut need = None;
        while m.pushed < last && m.pushed - floor < window {
            let seq = m.pushed + 1;
            if !at_hand(seq) {
                need = Some((seq, (seq + window).min(tail_first)));
                break;
            }
            m.pushed = seq;
            push(out, conn, room, Item::Msg(seq));
        }
        if let Some((from, to)) = need {
            self.request_load(room, from, to);
        }
    }

    /// Applies retention after a message was logged: the oldest messages go while the log
    /// holds more than `max_messages`, or more than `max_bytes` and more than one message.
    /// Returns the new first retained sequence number if it moved.
    fn trim(&mut self, room: RoomId) -> Option<u64> {
        let ret = self.limits;
        let r = self.rooms.get_mut(&room)?;
        let entries = self.log.get(&r.inc)?;
        let before = r.first;
        while r.first < r.next_seq {
            let len = (r.next_seq - r.first) as usize;
            let over = len > ret.max_messages || (len > 1 && r.log_bytes > ret.max_bytes);
            if !over {
                break;
            }
            let n = entries
                .get(r.first as usize - 1)
                .map_or(0, |e| e.body.len());
            r.log_bytes -= n;
            r.first += 1;
        }
        (r.first > before).then_some(r.first)
    }

    /// `u` posts `body` to `room`: the expected outcome, the writes, and the pushes.
    pub(super) fn post(
        &mut self,
        u: usize,
        room: RoomId,
        body: &Arc<[u8]>,
        out: &mut Streams,
        ops: &mut StepOps,
    ) -> Result<(), ErrorCode> {
        // A body past the protocol's largest is refused before anything else is looked at.
        if body.len() > MAX_BODY_LEN {
            return Err(ErrorCode::BodyTooLarge);
        }
        let Some(r) = self.rooms.get_mut(&room) else {
            return Err(ErrorCode::RoomNotFound);
        };
        if r.member(u).is_none() {
            return Err(ErrorCode::NotInRoom);
        }
        let seq = r.next_seq;
        let inc = r.inc;
        r.next_seq += 1;
        r.log_bytes += body.len();
        let members: Vec<usize> = r.members.iter().map(|m| m.u).collect();
        self.log.entry(inc).or_default().push(LogEntry {
            from: u,
            body: body.clone(),
            durable: false,
        });
        self.room_messages += 1;
        self.unbatched
            .rooms
            .push(RoomWrite::Logged { room, inc, seq });
        ops.logged = Some((room, seq, u, body.clone()));
        if let Some(first) = self.trim(room) {
            self.unbatched
                .rooms
                .push(RoomWrite::Trimmed { room, inc, first });
            ops.trimmed = Some((room, first));
        }
        for m in members {
            self.pump(room, m, out);
        }
        self.evict_whole(room);
        Ok(())
    }

    /// `u` acknowledged `room` up to `seq`: the cursor becomes the larger of itself and
    /// `min(seq, pushed)`; if it moved, more messages may flow.
    pub(super) fn ack(
        &mut self,
        u: usize,
        room: RoomId,
        seq: u64,
        out: &mut Streams,
        ops: &mut StepOps,
    ) {
        let Some(m) = self.rooms.get_mut(&room).and_then(|r| r.member_mut(u)) else {
            return;
        };
        let to = seq.min(m.pushed);
        if to <= m.cursor {
            return;
        }
        ops.cursor = Some((room, u, m.cursor, to));
        m.cursor = to;
        self.unbatched
            .rooms
            .push(RoomWrite::Cursor { room, u, seq: to });
        self.pump(room, u, out);
    }

    /// `u` (on `conn`) asks for a history page of `room`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn history(
        &mut self,
        conn: ConnId,
        u: usize,
        req: u32,
        room: RoomId,
        before: u64,
        limit: u8,
        out: &mut Streams,
    ) -> Result<(), ErrorCode> {
        let page = (limit as usize).min(self.limits.history_page) as u64;
        let r = self.rooms.get(&room).ok_or(ErrorCode::RoomNotFound)?;
        let m = r.member(u).ok_or(ErrorCode::NotInRoom)?;
        let first = r.first.max(m.since + 1);
        let end = before.min(r.next_seq);
        let start = end.saturating_sub(page).max(first);
        if !self.range_at_hand(room, start, end) {
            return self.wait_for_page(conn, u, req, room, before, limit, (start, end));
        }
        let r = self.rooms.get(&room).ok_or(ErrorCode::RoomNotFound)?;
        let m = r.member(u).ok_or(ErrorCode::NotInRoom)?;
        let mut count = 0u16;
        for seq in start..end {
            push(out, conn, room, Item::History { req, seq });
            count += 1;
        }
        push(out, conn, room, Item::HistoryDone { req, first, count });
        let note = HistoryNote {
            room,
            inc: r.inc,
            before,
            since: m.since,
            first_retained: r.first,
        };
        self.history_notes.insert((conn, req), note);
        Ok(())
    }

    /// `u` logged in on `conn`: each of its rooms is announced, then caught up from the
    /// cursor through the window; then its pending invitations.
    pub(super) fn announce(&mut self, conn: ConnId, u: usize, out: &mut Streams) {
        let rooms: Vec<RoomId> = self.users[u].rooms.iter().copied().collect();
        for room in rooms {
            let Some(r) = self.rooms.get_mut(&room) else {
                continue;
            };
            let Some(m) = r.member_mut(u) else {
                continue;
            };
            m.pushed = m.cursor;
            let (cursor, since) = (m.cursor, m.since);
            let item = Item::Joined {
                req: 0,
                members: r.members.iter().map(|m| m.u).collect(),
                private: r.private,
                admin: r.admin,
                title: r.title.clone(),
            };
            let inc = r.inc;
            push(out, conn, room, item);
            self.note_join(
                conn,
                JoinNote {
                    room,
                    inc,
                    first_seq: cursor + 1,
                    since,
                },
            );
            self.pump(room, u, out);
        }
        let invites: Vec<RoomId> = self.users[u].invites.iter().copied().collect();
        for room in invites {
            if let Some(r) = self.rooms.get(&room) {
                let item = Item::Invited {
                    by: r.admin,
                    title: r.title.clone(),
                };
                push(out, conn, room, item);
            }
        }
    }
}
