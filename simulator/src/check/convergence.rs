//! Convergence, for the liveness phase: once everything has healed, every user is logged
//! in on the connection the hub knows, every queue has drained, every client agrees with
//! the model (and the hub) on its rooms and their members, every member has been shown and
//! has acknowledged every message of its membership interval (invariant (a), see
//! [`super::room_delivery::owed`]), no request is left unanswered, and every DM whose
//! sender was told "delivered" or "queued" has been shown.
//!
//! An end-to-end encrypted user (whom the plaintext model does not follow) has converged
//! when it is logged in on the connection the hub knows, its application knows exactly the
//! rooms the disk (then equal to the hub's memory) makes it a member of, and it has
//! handled and acknowledged every entry of each (invariant (a) checked each entry as its
//! session handled it, [`super::e2ee_delivery`]).

use std::collections::BTreeSet;

use cove_core::hub::{ConnId, Hub};
use cove_core::store::Records;
use cove_core::wire::RoomId;

use crate::model::Model;
use crate::world::User;

/// The first reason the world has not converged yet, if any. `server_busy`: the server
/// is down or has a commit pending; `records`: what its disk holds.
pub(crate) fn unconverged(
    server_busy: bool,
    hub: &Hub,
    records: &Records,
    users: &[User],
    model: &Model,
) -> Option<String> {
    if server_busy {
        return Some("the server has uncommitted or unsent work".into());
    }
    for (u, user) in users.iter().enumerate() {
        let Some(c) = user.conn.as_ref().filter(|c| c.authed) else {
            return Some(format!("u{u} is not logged in"));
        };
        if user.secure.is_some() {
            if let Some(why) = secure_unconverged(hub, records, user, u, ConnId(c.pipe)) {
                return Some(why);
            }
            continue;
        }
        if model.conn_of(u) != Some(ConnId(c.pipe)) {
            return Some(format!("u{u}'s connection {} is not the hub's", c.pipe));
        }
        if model.queue_len(u) != 0 || hub.queued_for(&user.name) != 0 {
            return Some(format!(
                "u{u} still has {} queued DMs (model {})",
                hub.queued_for(&user.name),
                model.queue_len(u)
            ));
        }
        let mine: BTreeSet<RoomId> = c.rooms.keys().copied().collect();
        if mine != *model.rooms_of(u) {
            return Some(format!(
                "u{u} thinks it is in {mine:?}, the hub says {:?}",
                model.rooms_of(u)
            ));
        }
        for (room, view) in &c.rooms {
            if let Some(r) = model.rooms.get(room)
                && (view.inc != r.inc || view.members != r.members.len())
            {
                return Some(format!(
                    "u{u} sees {} members in {room:?}; the room has {}",
                    view.members,
                    r.members.len()
                ));
            }
        }
        if let Some(why) = super::room_delivery::owed(model, user, u) {
            return Some(why);
        }
        if !c.pending.is_empty() {
            return Some(format!("u{u} awaits {} replies", c.pending.len()));
        }
    }
    for (room, r) in &model.rooms {
        let want: Vec<&str> = r.members.iter().map(|m| &**model.name(m.u)).collect();
        let held: Vec<&str> = hub
            .room_members(*room)
            .map_or_else(Vec::new, |m| m.collect());
        if held != want {
            return Some(format!(
                "the hub has {room:?} with {held:?}; the model {want:?}"
            ));
        }
    }
    for (id, dm) in &model.dms {
        if dm.promised && !dm.shown {
            return Some(format!(
                "DM {id} from u{} to u{} was acked but never shown",
                dm.from, dm.to
            ));
        }
    }
    None
}

/// Why encrypted user `u` (logged in on `conn`) has not converged, if it has not.
fn secure_unconverged(
    hub: &Hub,
    records: &Records,
    user: &User,
    u: usize,
    conn: ConnId,
) -> Option<String> {
    if hub.user_of(conn).is_none_or(|n| **n != *user.name) {
        return Some(format!("u{u}'s connection {} is not the hub's", conn.0));
    }
    let known: BTreeSet<RoomId> = user
        .secure
        .as_ref()
        .map(|s| s.view.keys().copied().collect())
        .unwrap_or_default();
    let mut member = BTreeSet::new();
    for rec in &records.rooms {
        let Some(m) = rec.members.iter().find(|m| *m.name == *user.name) else {
            continue;
        };
        member.insert(rec.room);
        let last = rec.next_seq.saturating_sub(1);
        if m.cursor < last {
            return Some(format!(
                "u{u} has acknowledged {:?} up to #{} of #{last}",
                rec.room, m.cursor
            ));
        }
    }
    if known != member {
        return Some(format!(
            "u{u} thinks it is in {known:?}, the disk says {member:?}"
        ));
    }
    None
}
