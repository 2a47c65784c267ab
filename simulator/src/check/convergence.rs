//! Convergence, for the liveness phase: once everything has healed, every user is logged
//! in on the connection the hub knows, every queue has drained, every client agrees with
//! the model (and the hub) on its rooms and their members, every member has been shown and
//! has acknowledged every message of its membership interval (invariant (a), see
//! [`super::room_delivery::owed`]), no request is left unanswered, and every DM whose
//! sender was told "delivered" or "queued" has been shown.

use std::collections::BTreeSet;

use cove_core::hub::{ConnId, Hub};
use cove_core::wire::RoomId;

use crate::model::Model;
use crate::world::User;

/// The first reason the world has not converged yet, if any. `server_busy`: the server
/// is down or has a commit pending.
pub(crate) fn unconverged(
    server_busy: bool,
    hub: &Hub,
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
