//! Invariant (c): a retention gap is always announced. Retention (count and bytes, as the
//! hub is configured) may drop a room's oldest messages; a member whose next message was
//! dropped must be told `RoomGap { first_available }` before any later message, and a gap
//! may only be announced over messages that really are gone.
//!
//! Checked at the hub boundary (each step's pushes carry the gap exactly where the model's
//! retention puts it, see [`crate::model::expect`]; each step's `LogTrimmed` ops match the
//! model's retention) and at each client's application (below; a message after an
//! unannounced drop is reported by [`super::room_delivery::on_message`] as this check).

use cove_core::store::StoreOp;
use cove_core::wire::RoomId;

use crate::Summary;
use crate::model::{Checked, Model, Violation};
use crate::world::User;

/// A message dropped by retention without a gap announced, or a gap over retained ones.
pub(crate) const GAP: &str = "retention gap";
/// The hub's retention disagrees with its configuration.
pub(crate) const RETENTION: &str = "retention";

/// A step's `LogTrimmed` ops against the trim the model's retention made (room, new first
/// retained sequence number): exactly that one, or none.
pub(crate) fn trims(ops: &[StoreOp], want: Option<(RoomId, u64)>) -> Checked {
    let got: Vec<(RoomId, u64)> = ops
        .iter()
        .filter_map(|op| match op {
            StoreOp::LogTrimmed { room, below } => Some((*room, *below)),
            _ => None,
        })
        .collect();
    if got.as_slice() != want.as_slice() {
        return Err(Violation::new(
            RETENTION,
            format!("the step trimmed {got:?}; retention as configured trims {want:?}"),
        ));
    }
    Ok(())
}

/// `RoomGap { room, first_available }` reached user `u`'s application (`in_room`: its
/// connection is in the room): every message it skips must be gone, durably.
pub(crate) fn on_gap(
    model: &Model,
    user: &mut User,
    stats: &mut Summary,
    u: usize,
    in_room: bool,
    room: RoomId,
    first: u64,
) -> Checked {
    let Some(mark) = user.marks.get_mut(&room).filter(|_| in_room) else {
        return Err(Violation::new(
            super::room_delivery::NON_MEMBER,
            format!("u{u} told of a gap in {room:?}, a room it is not in"),
        ));
    };
    stats.room_gaps += 1;
    if first <= mark.next {
        // Nothing the application has not shown is skipped.
        return Ok(());
    }
    let durable = model.durable_first(mark.inc);
    if durable < first {
        let live = model.live_first(room, mark.inc).unwrap_or(0);
        let (check, why) = if live >= first {
            ("write-ahead", "before the trim was durable")
        } else {
            (GAP, "while the log retains them")
        };
        return Err(Violation::new(
            check,
            format!(
                "u{u} told {room:?}#{}..#{} are gone {why} (first retained on disk #{durable})",
                mark.next,
                first - 1
            ),
        ));
    }
    mark.next = first;
    Ok(())
}
