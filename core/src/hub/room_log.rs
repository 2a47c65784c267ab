//! The room log: every room message is stamped with the room's next sequence number and
//! logged durably before anyone is told; retention bounds the log by count, bytes and age;
//! each member's durable cursor says what they acknowledged, and a window of at most
//! `room_window` unacknowledged messages carries both live traffic and catch-up.

use alloc::sync::Arc;

use super::frame_limits::{fits, room_record_len};
use super::loads::{Loads, MAX_PENDING_HISTORIES, PendingHistory};
use super::rooms::message_at;
use super::{ConnId, Hub, Reply};
use crate::store::{LoggedMessage, StoreOp};
use crate::time::Instant;
use crate::wire::{ErrorCode, MAX_BODY_LEN, RoomId};

impl Hub {
    pub(super) fn room_message(
        &mut self,
        now: Instant,
        conn: ConnId,
        name: &Arc<str>,
        req: u32,
        room: RoomId,
        body: Arc<[u8]>,
    ) {
        if body.len() > MAX_BODY_LEN {
            return self.error(conn, req, ErrorCode::BodyTooLarge);
        }
        let Some(r) = self.rooms.get(&room) else {
            return self.error(conn, req, ErrorCode::RoomNotFound);
        };
        if r.member(name).is_none() {
            return self.error(conn, req, ErrorCode::NotInRoom);
        }
        if let Err(code) = self.check_application(room, &body) {
            return self.error(conn, req, code);
        }
        if let Err(code) = self.check_room_body(room, name, body.len()) {
            return self.error(conn, req, code);
        }
        self.log_entry(now, room, name, body);
    }

    /// Stamps `body` from `name` with the room's next sequence number, logs it durably,
    /// applies retention and pushes it to every member whose window has room. The caller
    /// has checked the request. Returns the sequence number (0 if the room is gone).
    pub(super) fn log_entry(
        &mut self,
        now: Instant,
        room: RoomId,
        name: &Arc<str>,
        body: Arc<[u8]>,
    ) -> u64 {
        let Some(r) = self.rooms.get_mut(&room) else {
            return 0;
        };
        let seq = r.next_seq;
        r.next_seq += 1;
        #[cfg(feature = "inject-bugs")]
        if self.config.bugs.skip_sequence && seq % 5 == 0 {
            r.next_seq += 1;
        }
        let msg = LoggedMessage {
            room,
            seq,
            from: name.clone(),
            timestamp: now.micros(),
            body,
        };
        self.stats.room_messages += 1;
        self.log_bytes_total += msg.body.len();
        r.log.push(msg.clone());
        self.store_ops.push_back(StoreOp::RoomMessageLogged(msg));
        self.trim_log(now, room);
        self.pump_all(room);
        self.evict_whole(room);
        #[cfg(feature = "inject-bugs")]
        self.deliver_to_departed(room, seq);
        seq
    }

    /// Keeps only the lengths of `room`'s oldest messages past the bound on what stays
    /// whole, except those a connected member has yet to be pushed.
    fn evict_whole(&mut self, room: RoomId) {
        let bound = self.config.log_memory();
        let Some(r) = self.rooms.get_mut(&room) else {
            return;
        };
        let pin = r
            .members
            .iter()
            .filter(|m| m.conn.is_some())
            .map(|m| m.pushed + 1)
            .min()
            .unwrap_or(u64::MAX);
        r.log.evict(bound, pin);
    }

    /// Applies retention to `room`'s log: age, count, the room's bytes, then the
    /// server-wide budget (the room that grows gives up its own oldest messages first).
    pub(super) fn trim_log(&mut self, now: Instant, room: RoomId) {
        let cfg = &self.config;
        let (max_n, max_bytes, max_age, total_cap) = (
            cfg.log_max_messages.max(1),
            cfg.log_max_bytes,
            cfg.log_max_age.micros(),
            cfg.log_max_bytes_total,
        );
        let Some(r) = self.rooms.get_mut(&room) else {
            return;
        };
        let before = r.first_retained();
        while let Some(timestamp) = r.log.front_timestamp() {
            let too_old = timestamp.saturating_add(max_age) < now.micros();
            let n = r.log.len();
            let over = n > max_n
                || (n > 1 && r.log.bytes() > max_bytes)
                || (n > 1 && self.log_bytes_total > total_cap);
            if !(too_old || over) {
                break;
            }
            if let Some(len) = r.log.pop_front() {
                self.log_bytes_total -= len;
            }
        }
        let after = r.first_retained();
        r.drop_loaded_below(after);
        if after > before {
            self.store_ops
                .push_back(StoreOp::LogTrimmed { room, below: after });
        }
    }

    /// Pushes `name` the room's messages after what it was last pushed, while its window
    /// has room: the one path for live delivery and catch-up. A member whose next message
    /// was dropped by retention is told so first.
    pub(super) fn pump_room(&mut self, now: Instant, room: RoomId, name: &Arc<str>) {
        if self.conn_of(name).is_none() {
            return; // offline: nothing to push, and retention waits for the next message
        }
        self.trim_log(now, room);
        let (mut pump, rooms) = Pump::of(self);
        let Some(r) = rooms.get_mut(&room) else {
            return;
        };
        if let Some(i) = r.members.iter().position(|m| m.name == *name) {
            pump.member(room, r, i);
        }
    }

    /// Pushes every member of `room` what it can take, in join order: one pass over the
    /// members, no lookups (this is every live delivery).
    pub(super) fn pump_all(&mut self, room: RoomId) {
        let (mut pump, rooms) = Pump::of(self);
        if let Some(r) = rooms.get_mut(&room) {
            for i in 0..r.members.len() {
                pump.member(room, r, i);
            }
        }
    }

    /// The member has shown or stored the room's messages up to `seq`.
    pub(super) fn ack_room(&mut self, now: Instant, name: &Arc<str>, room: RoomId, seq: u64) {
        let Some(m) = self.rooms.get_mut(&room).and_then(|r| r.member_mut(name)) else {
            return; // acks for rooms one left, or never joined, change nothing
        };
        // Never past what was pushed: an ack cannot claim messages it has not seen.
        let seq = seq.min(m.pushed);
        if seq <= m.cursor {
            return;
        }
        m.cursor = seq;
        self.store_ops.push_back(StoreOp::CursorAdvanced {
            room,
            name: name.clone(),
            seq,
        });
        self.pump_room(now, room, name);
    }

    /// A page of the retained log before `before`, oldest first, from the member's
    /// membership on.
    pub(super) fn history(
        &mut self,
        conn: ConnId,
        name: &Arc<str>,
        req: u32,
        room: RoomId,
        before: u64,
        limit: u8,
    ) {
        let page = (limit as usize).min(self.config.history_page);
        let frame_limit = self.frame_limit_of(name);
        let Some(r) = self.rooms.get_mut(&room) else {
            return self.error(conn, req, ErrorCode::RoomNotFound);
        };
        let Some(m) = r.member(name) else {
            return self.error(conn, req, ErrorCode::NotInRoom);
        };
        let first_available = r.first_retained().max(m.since + 1);
        let end = before.min(r.next_seq);
        let start = end.saturating_sub(page as u64).max(first_available);
        if !r.has_range(start, end) {
            // Older than the messages kept whole: wait for the store.
            if r.histories.len() >= MAX_PENDING_HISTORIES {
                return self.error(conn, req, ErrorCode::RateLimited);
            }
            let name = name.clone();
            r.histories.push(PendingHistory {
                conn,
                name,
                req,
                before,
                limit,
            });
            let to = end.min(r.log.tail_first());
            return self.loads.request(conn, room, &mut r.loading, start, to);
        }
        let mut count = 0u16;
        let mut out = alloc::vec::Vec::new();
        for seq in start..end {
            let msg = r.message(seq);
            // A message too large for this connection is left out of the page.
            let msg = msg.filter(|m| fits(room_record_len(&m.from, m.body.len()), frame_limit));
            if let Some(msg) = msg {
                out.push(Reply::HistoryMessage {
                    req,
                    room,
                    seq,
                    from: msg.from.clone(),
                    timestamp: msg.timestamp,
                    body: msg.body.clone(),
                });
                count += 1;
            }
        }
        for reply in out {
            self.send(conn, reply);
        }
        self.send(
            conn,
            Reply::HistoryDone {
                req,
                room,
                first_available,
                count,
            },
        );
    }

    #[cfg(feature = "inject-bugs")]
    fn deliver_to_departed(&mut self, room: RoomId, seq: u64) {
        let Some(r) = self.rooms.get(&room) else {
            return;
        };
        let Some(msg) = r.log.newest().filter(|m| m.seq == seq).cloned() else {
            return;
        };
        let departed = r.departed.clone();
        for name in departed {
            if let Some(conn) = self.conn_of(&name) {
                self.deliveries.push_back((
                    conn,
                    Reply::RoomMessage {
                        room,
                        seq,
                        from: msg.from.clone(),
                        timestamp: msg.timestamp,
                        body: msg.body.clone(),
                    },
                ));
            }
        }
    }
}

type Rooms = alloc::collections::BTreeMap<RoomId, super::rooms::Room>;

/// The parts of the hub that pushing a room's log to its members touches, borrowed apart
/// so a fan-out walks the room's members once.
struct Pump<'a> {
    /// Only to check each member's copy of its user's connection (debug builds).
    #[cfg(debug_assertions)]
    users: &'a alloc::collections::BTreeMap<Arc<str>, super::User>,
    deliveries: &'a mut alloc::collections::VecDeque<(ConnId, Reply)>,
    loads: &'a mut Loads,
    stats: &'a mut super::HubStats,
    window: u64,
    #[cfg(feature = "inject-bugs")]
    bugs: &'a super::InjectedBugs,
}

impl<'a> Pump<'a> {
    /// The pump, and apart from it the rooms whose members it pushes to.
    fn of(hub: &'a mut Hub) -> (Pump<'a>, &'a mut Rooms) {
        let pump = Pump {
            #[cfg(debug_assertions)]
            users: &hub.users,
            deliveries: &mut hub.deliveries,
            loads: &mut hub.loads,
            stats: &mut hub.stats,
            window: hub.config.room_window.max(1) as u64,
            #[cfg(feature = "inject-bugs")]
            bugs: &hub.config.bugs,
        };
        (pump, &mut hub.rooms)
    }

    /// Pushes member `i` of `r` the room's messages after what it was last pushed, while
    /// its window has room: the one path for live delivery and catch-up. A member whose
    /// next message was dropped by retention is told so first. Offline members get nothing.
    fn member(&mut self, room: RoomId, r: &mut super::rooms::Room, i: usize) {
        let first = r.first_retained();
        let last = r.next_seq - 1;
        let Some(m) = r.members.get_mut(i) else {
            return;
        };
        #[cfg(debug_assertions)]
        {
            let user = self.users.get(&m.name).map(|u| (u.conn, u.max_frame));
            debug_assert_eq!(user, Some((m.conn, m.max_frame)), "{}'s links", m.name);
        }
        let (Some(conn), limit) = (m.conn, m.max_frame) else {
            return;
        };
        let window = self.window;
        #[cfg(feature = "inject-bugs")]
        let replay = self.bugs.catchup_replays_acked && m.pushed == m.cursor && m.cursor > m.since;
        #[cfg(feature = "inject-bugs")]
        if replay {
            m.pushed -= 1;
        }
        if m.pushed + 1 < first {
            self.deliveries.push_back((
                conn,
                Reply::RoomGap {
                    room,
                    first_available: first,
                },
            ));
            m.pushed = first - 1;
        }
        // Messages before the gap are gone: they no longer hold the window.
        let floor = m.cursor.max(first.saturating_sub(1));
        // The replayed message must not count against the window (nor underflow it).
        #[cfg(feature = "inject-bugs")]
        let floor = if replay { floor.min(m.pushed) } else { floor };
        while m.pushed < last && m.pushed - floor < window {
            let seq = m.pushed + 1;
            let Some(msg) = message_at(&r.log, &r.loaded, seq) else {
                // Older than what is kept whole: ask the store for a window's worth,
                // which the room keeps at hand for the acks that follow.
                let to = (seq + window).min(r.log.tail_first());
                self.loads.request(conn, room, &mut r.loading, seq, to);
                break;
            };
            m.pushed = seq;
            #[cfg(feature = "inject-bugs")]
            if self.bugs.catchup_skips_one && seq == m.cursor + 2 {
                continue;
            }
            self.stats.deliveries += 1;
            if !fits(room_record_len(&msg.from, msg.body.len()), limit) {
                // Logged before this member announced a smaller limit: it skips the
                // message, as it skips what retention dropped.
                let first_available = seq + 1;
                self.deliveries.push_back((
                    conn,
                    Reply::RoomGap {
                        room,
                        first_available,
                    },
                ));
                continue;
            }
            self.deliveries.push_back((
                conn,
                Reply::RoomMessage {
                    room,
                    seq,
                    from: msg.from.clone(),
                    timestamp: msg.timestamp,
                    body: msg.body.clone(),
                },
            ));
        }
    }
}
