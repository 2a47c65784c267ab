//! Durability: after a restart the hub holds exactly the DM queues the model says were
//! durable — everything committed and not acknowledged durably, nothing else — and exactly
//! the durable rooms, members, cursors and logs ("durable membership", "durable rooms");
//! every membership change is written in the step that makes it; and no client is told of
//! a change before it is durable ("write-ahead"), so none is lost in a crash ("nothing
//! acked lost", also checked by the model when the crash happens).

use std::sync::Arc;

use cove_core::hub::{ConnId, Hub};
use cove_core::store::{Records, StoreOp};
use cove_core::wire::RoomId;

use crate::model::{Checked, Model, ModelDm, Violation, user_of_name};

/// A membership that is not durable, or that outlives its end on disk.
pub(crate) const MEMBERSHIP: &str = "durable membership";
/// A room on disk that differs from the model's durable room in anything but membership.
pub(crate) const ROOMS: &str = "durable rooms";

/// A step's `MemberAdded` / `MemberRemoved` ops against the memberships the model says it
/// began (`Some(since)`) or ended (`None`), in order.
pub(crate) fn membership_written(
    ops: &[StoreOp],
    want: &[(RoomId, usize, Option<u64>)],
    names: &[Arc<str>],
) -> Checked {
    let got: Vec<(RoomId, &str, Option<u64>)> = ops
        .iter()
        .filter_map(|op| match op {
            StoreOp::MemberAdded { room, name, since } => Some((*room, &**name, Some(*since))),
            StoreOp::MemberRemoved { room, name } => Some((*room, &**name, None)),
            _ => None,
        })
        .collect();
    let want: Vec<(RoomId, &str, Option<u64>)> = want
        .iter()
        .map(|(room, u, since)| (*room, &*names[*u], *since))
        .collect();
    let same_changes = got.len() == want.len()
        && got
            .iter()
            .zip(&want)
            .all(|(g, w)| g.0 == w.0 && g.1 == w.1 && g.2.is_some() == w.2.is_some());
    if got != want && same_changes {
        // The right memberships, starting after another last message: the hub's
        // sequence numbers are not the room's.
        return Err(Violation::new(
            "room order",
            format!("joins written as {got:?}; the rooms' last messages make them {want:?}"),
        ));
    }
    if got != want {
        return Err(Violation::new(
            MEMBERSHIP,
            format!("the step wrote memberships {got:?}; it changed {want:?}"),
        ));
    }
    Ok(())
}

/// The restarted `hub` and the disk's `records` against the model's durable rooms: the
/// same rooms with the same members in the same order, cursors, next sequence numbers,
/// first retained messages, admins and invitations. Rooms `foreign(admin)` says are not
/// the model's (the end-to-end encrypted users') are skipped.
pub(crate) fn rooms_survive_restart(
    hub: &Hub,
    records: &Records,
    model: &Model,
    foreign: impl Fn(&str) -> bool,
) -> Checked {
    let durable = model.durable_rooms();
    for (room, r) in durable {
        let want: Vec<&str> = r.members.iter().map(|m| &**model.name(m.u)).collect();
        let held: Vec<&str> = hub
            .room_members(*room)
            .map_or_else(Vec::new, |m| m.collect());
        if held != want {
            return Err(Violation::new(
                MEMBERSHIP,
                format!("after restart {room:?} has members {held:?}; durable were {want:?}"),
            ));
        }
    }
    for rec in records.rooms.iter().filter(|r| !foreign(&r.admin)) {
        let Some(r) = durable.get(&rec.room) else {
            if hub.room_members(rec.room).is_some() {
                return Err(Violation::new(
                    MEMBERSHIP,
                    format!(
                        "after restart {:?} lives on, which was durably deleted",
                        rec.room
                    ),
                ));
            }
            continue;
        };
        for m in &rec.members {
            let want = user_of_name(&m.name)
                .and_then(|u| r.member(u))
                .map(|m| m.cursor);
            if let Some(w) = want.filter(|w| *w != m.cursor) {
                return Err(Violation::new(
                    super::cursors::CHECK,
                    format!(
                        "after restart {}'s cursor in {:?} is #{} on disk; durable was #{w}",
                        m.name, rec.room, m.cursor
                    ),
                ));
            }
        }
        let first = rec.log.iter().map(|m| m.seq).min().unwrap_or(rec.next_seq);
        let invited: Vec<usize> = rec.invited.iter().filter_map(|n| user_of_name(n)).collect();
        let same = rec.next_seq == r.next_seq
            && first == r.first
            && user_of_name(&rec.admin) == Some(r.admin)
            && rec.private == r.private
            && rec.title == r.title
            && invited
                .iter()
                .copied()
                .collect::<std::collections::BTreeSet<_>>()
                == r.invited;
        if !same {
            return Err(Violation::new(
                ROOMS,
                format!(
                    "after restart {:?} on disk: next #{}, first #{first}, admin {}, private {},                      invited {invited:?}; durable: next #{}, first #{}, admin u{}, private {},                      invited {:?}",
                    rec.room,
                    rec.next_seq,
                    rec.admin,
                    rec.private,
                    r.next_seq,
                    r.first,
                    r.admin,
                    r.private,
                    r.invited
                ),
            ));
        }
    }
    Ok(())
}

/// The restarted `hub` against the model, user by user (`names` in user order). Adds
/// the DMs restored to `restored`.
pub(crate) fn queues_survive_restart<'a>(
    hub: &Hub,
    names: impl Iterator<Item = &'a str>,
    model: &Model,
    restored: &mut u64,
) -> Checked {
    for (u, name) in names.enumerate() {
        let held = hub.queued_for(name);
        let expected = model.queue_len(u);
        *restored += expected as u64;
        if held != expected {
            return Err(Violation::new(
                "durable queue",
                format!("after restart the hub holds {held} DMs for u{u}, {expected} were durable"),
            ));
        }
    }
    Ok(())
}

/// The write-ahead rule, seen from the clients: a reply that confirms a change (an account
/// created, a DM accepted or pushed) reaches a client only once the change is durable, so
/// no crash can take back what a client was told.
///
/// `is_it` picks the DM meant among those with its ID (IDs are reused after a crash).
fn confirmed_dm(
    model: &Model,
    msg_id: u64,
    is_it: impl Fn(&ModelDm) -> bool,
    what: impl Fn() -> String,
) -> Checked {
    match model.dms.get(&msg_id).filter(|dm| is_it(dm)) {
        Some(dm) if !dm.durable => Err(Violation::new(
            "write-ahead",
            format!("{} before it was durable", what()),
        )),
        None if model.lost_dms(msg_id).iter().any(is_it) => Err(Violation::new(
            "nothing acked lost",
            format!(
                "{}, and a server crash lost it (it was never durable)",
                what()
            ),
        )),
        // Unknown DMs are the integrity checks' business.
        _ => Ok(()),
    }
}

/// User `u` (on connection `conn`) was told its DM `msg_id` to user `to` was accepted.
pub(crate) fn dm_acked(model: &Model, u: usize, conn: ConnId, msg_id: u64, to: usize) -> Checked {
    confirmed_dm(
        model,
        msg_id,
        |dm| dm.from == u && dm.to == to && dm.via == conn,
        || format!("u{u} was told its DM {msg_id} to u{to} was accepted"),
    )
}

/// User `u` was shown DM `msg_id` from user `from` with `body`.
pub(crate) fn dm_shown(
    model: &Model,
    u: usize,
    msg_id: u64,
    from: Option<usize>,
    body: &[u8],
) -> Checked {
    confirmed_dm(
        model,
        msg_id,
        |dm| dm.to == u && Some(dm.from) == from && *dm.body == *body,
        || format!("u{u} was shown DM {msg_id}"),
    )
}

/// End-to-end encrypted user `u` (`name`), whom the plaintext model does not follow,
/// logged in (or registered): its account must be on the disk.
pub(crate) fn account_on_disk(records: &Records, u: usize, name: &str) -> Checked {
    if records.accounts.iter().any(|(n, _)| **n == *name) {
        return Ok(());
    }
    Err(Violation::new(
        "write-ahead",
        format!("u{u} logged in before its account was durable"),
    ))
}

/// User `u`'s client logged in (or registered).
pub(crate) fn logged_in(model: &Model, u: usize) -> Checked {
    if model.account_durable(u) {
        return Ok(());
    }
    if model.account_lost(u) {
        return Err(Violation::new(
            "nothing acked lost",
            format!("u{u} was told its account was created, and a server crash lost it"),
        ));
    }
    Err(Violation::new(
        "write-ahead",
        format!("u{u} logged in before its account was durable"),
    ))
}
