//! Invariant (d): history pages are in order, within retention and within the asker's
//! membership interval. A page answers `FetchHistory { before, limit }` with the newest
//! `min(limit, page size)` retained messages before `before` that the asker may read
//! (those after it joined), oldest first, consecutive, then `HistoryDone` with the first
//! message available to it and the count.
//!
//! Checked at the hub boundary (each page exactly as the model cuts it, see
//! [`crate::model::expect`]) and at each client, after the wire (below): the page's
//! messages are what the log holds, durable, strictly in order, consecutive, below
//! `before`, not before the first available one, which is itself within retention and the
//! interval; and the count is right.

use cove_core::hub::ConnId;
use cove_core::wire::RoomId;

use crate::model::{Checked, LogEntry, Model, Violation};

/// The invariant's name.
pub(crate) const CHECK: &str = "history";

fn fail(detail: String) -> Checked {
    Err(Violation::new(CHECK, detail))
}

/// One `HistoryMessage` of a page for `room` reached user `u` (incarnation `inc`, if the
/// client knows the room): it must be a message the log holds, durable.
pub(crate) fn on_message(
    model: &Model,
    u: usize,
    inc: Option<u64>,
    room: RoomId,
    seq: u64,
    from: &str,
    body: &[u8],
) -> Checked {
    let Some(inc) = inc else {
        return fail(format!("u{u} got history of {room:?}, a room it is not in"));
    };
    let agrees = |e: &LogEntry| **model.name(e.from) == *from && *e.body == *body;
    match model.room_message(inc, seq) {
        Some(e) if agrees(e) && e.durable => Ok(()),
        Some(e) if agrees(e) => Err(Violation::new(
            "write-ahead",
            format!("u{u} got {room:?}#{seq} in history before it was durable"),
        )),
        _ => fail(format!(
            "u{u}'s history {room:?}#{seq} differs from what the hub stamped"
        )),
    }
}

/// `HistoryDone { req, room, first_available, count }` reached user `u` on `conn`, after
/// the page's messages `seqs`. `page` is the most messages one page may hold.
#[allow(clippy::too_many_arguments)]
pub(crate) fn on_done(
    model: &mut Model,
    u: usize,
    conn: ConnId,
    req: u32,
    room: RoomId,
    first: u64,
    count: u16,
    seqs: &[u64],
    page: usize,
) -> Checked {
    let Some(note) = model.take_history_note(conn, req) else {
        return fail(format!("u{u} got a history page {req} the hub never cut"));
    };
    if note.room != room {
        return fail(format!(
            "u{u} asked for {:?}'s history, got {room:?}'s",
            note.room
        ));
    }
    if usize::from(count) != seqs.len() || seqs.len() > page {
        return fail(format!(
            "u{u}'s page of {room:?} says {count} messages, held {} (page size {page})",
            seqs.len()
        ));
    }
    if first <= note.since || first < note.first_retained {
        return fail(format!(
            "u{u}'s page of {room:?} starts availability at #{first}: it joined after #{} \
             and the log retained from #{}",
            note.since, note.first_retained
        ));
    }
    let consecutive = seqs.windows(2).all(|w| w[1] == w[0] + 1);
    let inside = seqs.iter().all(|s| *s >= first && *s < note.before);
    if !consecutive || !inside {
        return fail(format!(
            "u{u}'s page of {room:?} before #{} (available from #{first}) holds {seqs:?}",
            note.before
        ));
    }
    Ok(())
}
