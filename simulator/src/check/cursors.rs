//! Invariant (b): a member's room cursor (the last message it acknowledged) never moves
//! backwards, and never past what was pushed to it.
//!
//! - **As seen by acks**: each `AckRoom` moves the cursor to `max(cursor, min(seq,
//!   pushed))`; the step must then write exactly that `CursorAdvanced` (strictly above the
//!   old cursor), and no step writes any other. A client never acknowledges less than it
//!   acknowledged before on the same connection.
//! - **In the store's records**: after each batch is durable, every cursor it advanced is
//!   on disk exactly as the model's durable cursor (which only grows), and after a restart
//!   every cursor on disk is the model's (see [`super::durability`]).

use cove_core::store::{Records, StoreOp};
use cove_core::wire::RoomId;

use crate::model::{Checked, Model, Violation, user_of_name};

/// The invariant's name.
pub(crate) const CHECK: &str = "room cursor";

/// A step's `CursorAdvanced` ops against the advance the model made (room, user, old
/// cursor, new cursor), if any.
pub(crate) fn advanced(
    ops: &[StoreOp],
    want: Option<(RoomId, usize, u64, u64)>,
    names: &[std::sync::Arc<str>],
) -> Checked {
    let got: Vec<(RoomId, &str, u64)> = ops
        .iter()
        .filter_map(|op| match op {
            StoreOp::CursorAdvanced { room, name, seq } => Some((*room, &**name, *seq)),
            _ => None,
        })
        .collect();
    let want_ops: Vec<(RoomId, &str, u64)> = want
        .iter()
        .map(|(room, u, _, to)| (*room, &*names[*u], *to))
        .collect();
    if got == want_ops {
        return Ok(());
    }
    let detail = match (want, got.first()) {
        (Some((room, u, from, _)), Some((_, _, seq))) if *seq <= from => {
            format!("u{u}'s cursor in {room:?} written back from #{from} to #{seq}")
        }
        _ => format!("the step wrote cursors {got:?}; the acks move them to {want_ops:?}"),
    };
    Err(Violation::new(CHECK, detail))
}

/// User `u` acknowledged `room` up to `seq` on a connection where it last acknowledged
/// `last` (if ever).
pub(crate) fn ack_order(u: usize, room: RoomId, last: Option<u64>, seq: u64) -> Checked {
    match last {
        Some(last) if seq < last => Err(Violation::new(
            CHECK,
            format!("u{u} acknowledged {room:?}#{seq} after #{last} on the same connection"),
        )),
        _ => Ok(()),
    }
}

/// After a batch with `ops` became durable: each cursor it advanced is on disk as the
/// model's durable cursor. Users `foreign(u)` says are not the model's (the end-to-end
/// encrypted ones) are skipped.
pub(crate) fn after_commit(
    records: &Records,
    ops: &[StoreOp],
    model: &Model,
    foreign: impl Fn(usize) -> bool,
) -> Checked {
    for op in ops {
        let StoreOp::CursorAdvanced { room, name, .. } = op else {
            continue;
        };
        let Some(u) = user_of_name(name).filter(|u| !foreign(*u)) else {
            continue;
        };
        let disk = records
            .rooms
            .iter()
            .find(|r| r.room == *room)
            .and_then(|r| r.members.iter().find(|m| m.name == *name))
            .map(|m| m.cursor);
        let want = model
            .durable_rooms()
            .get(room)
            .and_then(|r| r.member(u))
            .map(|m| m.cursor);
        match (disk, want) {
            (Some(d), Some(w)) if d < w => {
                return Err(Violation::new(
                    CHECK,
                    format!("u{u}'s cursor in {room:?} is #{d} on disk, behind its durable #{w}"),
                ));
            }
            (Some(d), Some(w)) if d > w => {
                return Err(Violation::new(
                    CHECK,
                    format!("u{u}'s cursor in {room:?} is #{d} on disk, past its acks (#{w})"),
                ));
            }
            (None, Some(_)) => {
                return Err(Violation::new(
                    super::durability::MEMBERSHIP,
                    format!("u{u}'s durable membership of {room:?} is not on disk"),
                ));
            }
            (Some(_), None) => {
                return Err(Violation::new(
                    super::durability::MEMBERSHIP,
                    format!("the disk keeps u{u} in {room:?}, which it left durably"),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}
