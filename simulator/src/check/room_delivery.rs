//! Invariant (a): each member is shown every message of its membership interval exactly
//! once, in room order — across disconnects, client crashes with and without local state,
//! and server crashes. A message retention dropped is instead covered by a gap announced
//! before any later message ([`super::retention`]).
//!
//! "Exactly once" per case:
//!
//! - **Local state kept** (the application's read marker per room, saved *before* it
//!   acknowledges): each message of the interval is shown once, in order, never twice —
//!   whatever the connection, the server or the network did. The server replays from its
//!   cursor, which is never past the marker; the client core drops what the marker covers.
//! - **Local state lost** (a client crash without it): the application knows nothing and
//!   shows what the server replays, from the server's cursor + 1. Messages it had shown but
//!   whose ack never became durable may be shown again (counted); a message the server
//!   durably recorded as acknowledged never is. From then on, exactly once again.
//! - **Removed or left**: the interval ends; nothing of the room is delivered afterwards.
//!   Messages of the interval not yet pushed by then are no longer owed.
//! - **Current members, after healing**: everything of the interval has been shown and
//!   acknowledged (the liveness phase, [`super::convergence`]).
//!
//! Checked at the hub boundary (every step's pushes, exactly, see
//! [`crate::model::expect`]; every message logged with its sequence number in the step that
//! stamps it) and at each client's application (below).

use std::sync::Arc;

use cove_core::store::StoreOp;
use cove_core::wire::RoomId;

use crate::Summary;
use crate::model::{Checked, JoinNote, Model, Violation};
use crate::world::{RoomMark, User};

/// A message shown twice, skipped, withheld, or shown after it was durably acknowledged.
pub(crate) const EXACTLY_ONCE: &str = "room exactly once";
/// More messages pushed and not acknowledged than the window allows.
pub(crate) const WINDOW: &str = "room window";
/// A room message to someone who is not a member.
pub(crate) const NON_MEMBER: &str = "delivery to non-member";

/// A step's store ops against the room message the model says it stamped (room, seq,
/// sender, body): logged exactly then, with that sequence number, and never otherwise.
pub(crate) fn logged(ops: &[StoreOp], want: Option<(RoomId, u64, &str, &Arc<[u8]>)>) -> Checked {
    let mut got = ops.iter().filter_map(|op| match op {
        StoreOp::RoomMessageLogged(m) => Some(m),
        _ => None,
    });
    match (want, got.next()) {
        (None, None) => Ok(()),
        (Some((room, seq, from, body)), Some(m)) => {
            if m.room != room || m.seq != seq {
                return Err(Violation::new(
                    "room order",
                    format!(
                        "{:?} message logged as #{}, expected {room:?}#{seq}",
                        m.room, m.seq
                    ),
                ));
            }
            if *m.from != *from || m.body != *body {
                return Err(Violation::new(
                    "room integrity",
                    format!("{room:?}#{seq} logged with another sender or body"),
                ));
            }
            match got.next() {
                Some(extra) => Err(Violation::new(
                    "room log",
                    format!("one post logged twice: also {:?}#{}", extra.room, extra.seq),
                )),
                None => Ok(()),
            }
        }
        (Some((room, seq, ..)), None) => Err(Violation::new(
            "room log",
            format!("{room:?}#{seq} accepted but not logged in the step that stamped it"),
        )),
        (None, Some(m)) => Err(Violation::new(
            "room log",
            format!(
                "{:?}#{} logged by a step that posted nothing",
                m.room, m.seq
            ),
        )),
    }
}

/// A `RoomJoined` (a join, or a login's announcement with `req` 0) reached user `u`'s
/// application: its read marker for the room starts, or resumes.
pub(crate) fn on_joined(user: &mut User, u: usize, req: u32, note: &JoinNote) -> Checked {
    let room = note.room;
    // A marker of this membership (not a stale one from an earlier membership that ended
    // while the client could not hear of it) resumes: the server's cursor can only be
    // behind it, since the application saves its marker before it acknowledges.
    if let Some(mark) = user.marks.get(&room)
        && req == 0
        && mark.inc == note.inc
        && mark.shown >= note.since
    {
        let cursor = note.first_seq - 1;
        if cursor > mark.shown {
            return Err(Violation::new(
                EXACTLY_ONCE,
                format!(
                    "u{u}'s cursor in {room:?} is #{cursor}, past the #{} it was shown",
                    mark.shown
                ),
            ));
        }
        return Ok(());
    }
    // A new membership, or an application without local state: the server's word.
    user.marks.insert(
        room,
        RoomMark {
            inc: note.inc,
            shown: note.first_seq - 1,
            next: note.first_seq,
        },
    );
    Ok(())
}

/// Room message `room`#`seq` from `from` with `body` reached user `u`'s application
/// (`in_room`: its connection is in the room). Advances the read marker.
#[allow(clippy::too_many_arguments)]
pub(crate) fn on_message(
    model: &Model,
    user: &mut User,
    stats: &mut Summary,
    u: usize,
    in_room: bool,
    room: RoomId,
    seq: u64,
    from: &str,
    body: &[u8],
) -> Checked {
    let fail = |check, detail: String| Err(Violation::new(check, detail));
    let Some(mark) = user.marks.get_mut(&room).filter(|_| in_room) else {
        return fail(
            NON_MEMBER,
            format!("u{u} received {room:?}#{seq} while not a member"),
        );
    };
    let inc = mark.inc;
    if seq < mark.next {
        return fail(
            EXACTLY_ONCE,
            format!(
                "u{u} shown {room:?}#{seq}, at or below its read marker #{} (a repeat)",
                mark.next - 1
            ),
        );
    }
    if seq > mark.next {
        let dropped = model.durable_first(inc) > mark.next;
        let (check, why) = if dropped {
            (
                super::retention::GAP,
                "dropped by retention, no gap announced",
            )
        } else {
            (EXACTLY_ONCE, "skipped")
        };
        return fail(
            check,
            format!(
                "u{u} shown {room:?}#{seq}, expected #{}: #{}..#{} {why}",
                mark.next,
                mark.next,
                seq - 1
            ),
        );
    }
    let acked = model.durable_cursor(room, inc, u);
    if seq <= acked {
        return fail(
            EXACTLY_ONCE,
            format!("u{u} shown {room:?}#{seq}, which it had durably acknowledged (#{acked})"),
        );
    }
    let agrees = |e: &crate::model::LogEntry| **model.name(e.from) == *from && *e.body == *body;
    match model.room_message(inc, seq) {
        Some(e) if agrees(e) && !e.durable => {
            return fail(
                "write-ahead",
                format!("u{u} shown {room:?}#{seq} before it was durable"),
            );
        }
        Some(e) if agrees(e) => {}
        _ if model.lost_room_messages(inc, seq).iter().any(agrees) => {
            return fail(
                "nothing acked lost",
                format!("u{u} shown {room:?}#{seq}, and a server crash lost it"),
            );
        }
        _ => {
            return fail(
                "room agreement",
                format!("u{u}'s {room:?}#{seq} differs from what the hub stamped"),
            );
        }
    }
    mark.shown = seq;
    mark.next = seq + 1;
    let high = user.room_high.entry(inc).or_default();
    if seq <= *high {
        stats.room_reshown_after_state_loss += 1;
    }
    *high = (*high).max(seq);
    stats.room_deliveries += 1;
    Ok(())
}

/// What user `u` is still owed in the rooms it is a member of, if anything: every
/// message of its interval shown, and acknowledged to the hub.
pub(crate) fn owed(model: &Model, user: &User, u: usize) -> Option<String> {
    for room in model.rooms_of(u) {
        let Some(r) = model.rooms.get(room) else {
            continue;
        };
        let shown = user
            .marks
            .get(room)
            .filter(|m| m.inc == r.inc)
            .map_or(0, |m| m.next - 1);
        let cursor = r.member(u).map_or(0, |m| m.cursor);
        if shown != r.last() || cursor != r.last() {
            return Some(format!(
                "u{u} was shown {room:?} up to #{shown} and acknowledged #{cursor}; the room is \
                 at #{}",
                r.last()
            ));
        }
    }
    None
}
