//! The client view: what each client's application is shown, after transport crypto and
//! the network, checked against the model — room messages only while a member, gapless and
//! in the room's one order, with the sender and body the hub stamped; membership within the
//! cap; each DM as sent, exactly once per local state and in order; acks that name the DM
//! sent; no request refused as malformed; accounts that stay registered.

use cove_core::hub::ConnId;
use cove_core::wire::{AckStatus, ErrorCode, ServerMsg};

use super::durability;
use crate::Summary;
use crate::model::{Checked, Model, Violation, user_of_name};
use crate::world::{PendingRequest, RoomView, User};

/// User `u`'s client, on connection `id`, received `msg`. Updates the client's view (and
/// its workload bookkeeping: pending requests, favourite rooms) and the counters.
pub(crate) fn on_message(
    model: &mut Model,
    user: &mut User,
    stats: &mut Summary,
    u: usize,
    id: u64,
    msg: ServerMsg<'_>,
) -> Checked {
    let cap = model.capacity();
    match msg {
        ServerMsg::RoomJoined {
            req, room, members, ..
        } => {
            let Some(note) = model.take_join_note(ConnId(id), room) else {
                return Err(Violation::new(
                    "rooms",
                    format!("u{u} saw a join of {room:?} the hub never sent"),
                ));
            };
            if members.len() > cap {
                return Err(Violation::new(
                    "room cap",
                    format!(
                        "u{u} joined {room:?} with {} members (cap {cap})",
                        members.len()
                    ),
                ));
            }
            if !user.favorites.contains(&room) {
                user.favorites.push(room);
            }
            if let Some(c) = user.conn.as_mut() {
                c.pending.remove(&req);
                c.rooms.insert(
                    room,
                    RoomView {
                        inc: note.inc,
                        next_seq: note.first_seq,
                        members: members.len(),
                    },
                );
            }
            stats.joins += 1;
        }
        ServerMsg::RoomLeft { req, room } => {
            if let Some(c) = user.conn.as_mut() {
                if let Some(PendingRequest::Leave(asked)) = c.pending.remove(&req)
                    && asked != room
                {
                    return Err(Violation::new(
                        "replies",
                        format!("u{u} asked to leave {asked:?}, was told it left {room:?}"),
                    ));
                }
                if c.rooms.remove(&room).is_none() {
                    return Err(Violation::new(
                        "rooms",
                        format!("u{u} left {room:?} it was not in"),
                    ));
                }
            }
        }
        ServerMsg::MemberJoined { room, name } | ServerMsg::MemberLeft { room, name } => {
            let joined = matches!(msg, ServerMsg::MemberJoined { .. });
            let Some(view) = user.conn.as_mut().and_then(|c| c.rooms.get_mut(&room)) else {
                return Err(Violation::new(
                    "delivery to non-member",
                    format!("u{u} told about {name} in {room:?}, a room it is not in"),
                ));
            };
            if joined {
                view.members += 1;
                if view.members > cap {
                    return Err(Violation::new(
                        "room cap",
                        format!("u{u} sees {} members in {room:?} (cap {cap})", view.members),
                    ));
                }
            } else {
                view.members = view.members.saturating_sub(1);
            }
        }
        ServerMsg::RoomMessage {
            room,
            seq,
            from,
            body,
            ..
        } => {
            let Some(view) = user.conn.as_mut().and_then(|c| c.rooms.get_mut(&room)) else {
                return Err(Violation::new(
                    "delivery to non-member",
                    format!("u{u} received {room:?}#{seq} while not a member"),
                ));
            };
            if seq != view.next_seq {
                return Err(Violation::new(
                    "room order",
                    format!(
                        "u{u} received {room:?}#{seq}, expected #{} (gap, repeat or reorder)",
                        view.next_seq
                    ),
                ));
            }
            view.next_seq += 1;
            let inc = view.inc;
            let agreed = model
                .room_message(inc, seq)
                .is_some_and(|(sender, b)| **model.name(*sender) == *from && **b == *body);
            if !agreed {
                return Err(Violation::new(
                    "room agreement",
                    format!("u{u}'s {room:?}#{seq} differs from what the hub stamped"),
                ));
            }
            stats.room_deliveries += 1;
        }
        ServerMsg::IncomingDm {
            msg_id, from, body, ..
        } => {
            durability::dm_shown(model, u, msg_id, user_of_name(from), body)?;
            let Some(dm) = model.dms.get_mut(&msg_id) else {
                return Err(Violation::new(
                    "dm integrity",
                    format!("u{u} shown DM {msg_id} the hub never accepted durably"),
                ));
            };
            let sender_ok = user_of_name(from) == Some(dm.from);
            if dm.to != u || !sender_ok || *dm.body != *body {
                return Err(Violation::new(
                    "dm integrity",
                    format!("u{u} shown a DM {msg_id} that is not the one sent"),
                ));
            }
            dm.shown = true;
            // A DM whose ack could not be sent comes again.
            let again = user.unacked.remove(&msg_id);
            if let Some(epoch) = user.shown.get(&msg_id) {
                if *epoch == user.amnesia && !again {
                    return Err(Violation::new(
                        "no duplicates",
                        format!("u{u} shown DM {msg_id} twice"),
                    ));
                }
                stats.dms_reshown_after_state_loss += 1;
            }
            if msg_id <= user.last_shown && !again {
                return Err(Violation::new(
                    "dm order",
                    format!("u{u} shown DM {msg_id} after DM {}", user.last_shown),
                ));
            }
            user.last_shown = msg_id;
            user.shown.insert(msg_id, user.amnesia);
            stats.dm_deliveries += 1;
        }
        ServerMsg::MessageAck {
            req,
            msg_id,
            status,
        } => {
            let pending = user.conn.as_mut().and_then(|c| c.pending.remove(&req));
            if let Some(PendingRequest::Dm(to)) = pending
                && status != AckStatus::Failed
            {
                durability::dm_acked(model, u, ConnId(id), msg_id, to)?;
                let Some(dm) = model.dms.get(&msg_id) else {
                    return Err(Violation::new(
                        "dm ack",
                        format!("u{u} acked DM {msg_id} the model lost"),
                    ));
                };
                if dm.from != u || dm.to != to {
                    return Err(Violation::new(
                        "dm ack",
                        format!("u{u}'s ack {msg_id} names another DM"),
                    ));
                }
                model.promise(msg_id);
                stats.dms_acked += 1;
            }
        }
        ServerMsg::Error { req, code, .. } => {
            if matches!(code, ErrorCode::InvalidFormat | ErrorCode::NotAuthenticated) {
                return Err(Violation::new(
                    "requests",
                    format!("u{u}'s request {req} refused with {code:?}"),
                ));
            }
            if code == ErrorCode::RoomFull {
                stats.joins_refused_full += 1;
            }
            let pending = user.conn.as_mut().and_then(|c| c.pending.remove(&req));
            if let Some(PendingRequest::Join(room)) = pending {
                user.favorites.retain(|r| *r != room);
            }
        }
        _ => {}
    }
    Ok(())
}

/// User `u`'s client closed with `code`; `registered`: it was told it has an account.
pub(crate) fn on_close(u: usize, code: ErrorCode, registered: bool) -> Checked {
    if code == ErrorCode::UserNotFound && registered {
        return Err(Violation::new(
            "accounts",
            format!("u{u} was told it registered, then its login was refused as unknown"),
        ));
    }
    Ok(())
}
