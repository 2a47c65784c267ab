//! The client view: what each client's application is shown, after transport crypto and
//! the network, checked against the model — rooms joined only as the hub said, within the
//! cap; room messages, gaps and history pages through their own invariants
//! ([`super::room_delivery`], [`super::retention`], [`super::history`]); each DM as sent,
//! exactly once per local state and in order; acks that name the DM sent; no request
//! refused as malformed; accounts that stay registered.

use cove_core::hub::ConnId;
use cove_core::wire::{AckStatus, ErrorCode, ServerMsg};

use super::{durability, history, retention, room_delivery};
use crate::Summary;
use crate::model::{Checked, Model, Violation, user_of_name};
use crate::world::{PendingRequest, RoomView, User};

fn fail(check: &'static str, detail: String) -> Checked {
    Err(Violation::new(check, detail))
}

/// User `u`'s client, on connection `id`, received `msg`. Updates the client's view (and
/// its workload bookkeeping: pending requests) and the counters.
pub(crate) fn on_message(
    model: &mut Model,
    user: &mut User,
    stats: &mut Summary,
    u: usize,
    id: u64,
    msg: ServerMsg<'_>,
) -> Checked {
    let history_page = model.history_page();
    let cap = model.capacity();
    let in_room = |user: &User, room| {
        user.conn
            .as_ref()
            .is_some_and(|c| c.rooms.contains_key(&room))
    };
    match msg {
        ServerMsg::RoomJoined {
            req, room, members, ..
        } => {
            let Some(note) = model.take_join_note(ConnId(id), room) else {
                return fail(
                    "rooms",
                    format!("u{u} saw a join of {room:?} the hub never sent"),
                );
            };
            if members.len() > cap {
                return fail(
                    "room cap",
                    format!(
                        "u{u} joined {room:?} with {} members (cap {cap})",
                        members.len()
                    ),
                );
            }
            if let Some(c) = user.conn.as_mut() {
                c.pending.remove(&req);
                let view = RoomView {
                    inc: note.inc,
                    members: members.len(),
                };
                if c.rooms.insert(room, view).is_some() {
                    return fail("rooms", format!("u{u} joined {room:?} twice"));
                }
            }
            room_delivery::on_joined(user, u, req, &note)?;
            if req != 0 {
                stats.joins += 1;
            }
        }
        ServerMsg::RoomLeft { req, room } => {
            if let Some(c) = user.conn.as_mut() {
                if let Some(PendingRequest::Leave(asked)) = c.pending.remove(&req)
                    && asked != room
                {
                    return fail(
                        "replies",
                        format!("u{u} asked to leave {asked:?}, was told it left {room:?}"),
                    );
                }
                if c.rooms.remove(&room).is_none() {
                    return fail("rooms", format!("u{u} left {room:?} it was not in"));
                }
            }
            user.marks.remove(&room);
        }
        ServerMsg::RoomRemoved { room, .. } => {
            if let Some(c) = user.conn.as_mut()
                && c.rooms.remove(&room).is_none()
            {
                return fail(
                    room_delivery::NON_MEMBER,
                    format!("u{u} removed from {room:?}, a room it is not in"),
                );
            }
            user.marks.remove(&room);
            stats.removals += 1;
        }
        ServerMsg::MemberJoined { room, name } | ServerMsg::MemberLeft { room, name } => {
            let joined = matches!(msg, ServerMsg::MemberJoined { .. });
            let Some(view) = user.conn.as_mut().and_then(|c| c.rooms.get_mut(&room)) else {
                return fail(
                    room_delivery::NON_MEMBER,
                    format!("u{u} told about {name} in {room:?}, a room it is not in"),
                );
            };
            if joined {
                view.members += 1;
                if view.members > cap {
                    return fail(
                        "room cap",
                        format!("u{u} sees {} members in {room:?} (cap {cap})", view.members),
                    );
                }
            } else {
                view.members = view.members.saturating_sub(1);
            }
        }
        ServerMsg::RoomTitle { room, .. } if !in_room(user, room) => {
            return fail(
                room_delivery::NON_MEMBER,
                format!("u{u} told {room:?}'s title, a room it is not in"),
            );
        }
        ServerMsg::RoomMessage {
            room,
            seq,
            from,
            body,
            ..
        } => {
            let member = in_room(user, room);
            room_delivery::on_message(model, user, stats, u, member, room, seq, from, body)?;
        }
        ServerMsg::RoomGap {
            room,
            first_available,
        } => {
            let member = in_room(user, room);
            retention::on_gap(model, user, stats, u, member, room, first_available)?;
        }
        ServerMsg::HistoryMessage {
            req,
            room,
            seq,
            from,
            body,
            ..
        } => {
            let inc = model.history_note(ConnId(id), req).map(|n| n.inc);
            history::on_message(model, u, inc, room, seq, from, body)?;
            if let Some(c) = user.conn.as_mut() {
                c.history.entry(req).or_default().push(seq);
            }
        }
        ServerMsg::HistoryDone {
            req,
            room,
            first_available,
            count,
        } => {
            let seqs = user
                .conn
                .as_mut()
                .and_then(|c| {
                    c.pending.remove(&req);
                    c.history.remove(&req)
                })
                .unwrap_or_default();
            history::on_done(
                model,
                u,
                ConnId(id),
                req,
                room,
                first_available,
                count,
                &seqs,
                history_page,
            )?;
            stats.history_pages += 1;
        }
        ServerMsg::IncomingDm {
            msg_id, from, body, ..
        } => on_dm(model, user, stats, u, msg_id, from, body)?,
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
                    return fail("dm ack", format!("u{u} acked DM {msg_id} the model lost"));
                };
                if dm.from != u || dm.to != to {
                    return fail("dm ack", format!("u{u}'s ack {msg_id} names another DM"));
                }
                model.promise(msg_id);
                stats.dms_acked += 1;
            }
        }
        ServerMsg::Ok { req } => {
            if let Some(c) = user.conn.as_mut() {
                c.pending.remove(&req);
            }
        }
        ServerMsg::Error { req, code, .. } => {
            if matches!(code, ErrorCode::InvalidFormat | ErrorCode::NotAuthenticated) {
                return fail(
                    "requests",
                    format!("u{u}'s request {req} refused with {code:?}"),
                );
            }
            match code {
                ErrorCode::RoomFull => stats.joins_refused_full += 1,
                ErrorCode::BodyTooLarge => stats.bodies_refused += 1,
                ErrorCode::QueueFull => stats.dms_refused_full += 1,
                _ => {}
            }
            if let Some(c) = user.conn.as_mut() {
                c.pending.remove(&req);
                c.history.remove(&req);
            }
        }
        _ => {}
    }
    Ok(())
}

/// DM `msg_id` from `from` with `body` reached user `u`'s application.
fn on_dm(
    model: &mut Model,
    user: &mut User,
    stats: &mut Summary,
    u: usize,
    msg_id: u64,
    from: &str,
    body: &[u8],
) -> Checked {
    durability::dm_shown(model, u, msg_id, user_of_name(from), body)?;
    let Some(dm) = model.dms.get_mut(&msg_id) else {
        return fail(
            "dm integrity",
            format!("u{u} shown DM {msg_id} the hub never accepted durably"),
        );
    };
    let sender_ok = user_of_name(from) == Some(dm.from);
    if dm.to != u || !sender_ok || *dm.body != *body {
        return fail(
            "dm integrity",
            format!("u{u} shown a DM {msg_id} that is not the one sent"),
        );
    }
    dm.shown = true;
    // A DM whose ack could not be sent comes again.
    let again = user.unacked.remove(&msg_id);
    if let Some(epoch) = user.shown.get(&msg_id) {
        if *epoch == user.amnesia && !again {
            return fail("no duplicates", format!("u{u} shown DM {msg_id} twice"));
        }
        stats.dms_reshown_after_state_loss += 1;
    }
    if msg_id <= user.last_shown && !again {
        return fail(
            "dm order",
            format!("u{u} shown DM {msg_id} after DM {}", user.last_shown),
        );
    }
    user.last_shown = msg_id;
    user.shown.insert(msg_id, user.amnesia);
    stats.dm_deliveries += 1;
    Ok(())
}

/// User `u`'s client closed with `code`; `registered`: it was told it has an account.
pub(crate) fn on_close(u: usize, code: ErrorCode, registered: bool) -> Checked {
    if code == ErrorCode::UserNotFound && registered {
        return fail(
            "accounts",
            format!("u{u} was told it registered, then its login was refused as unknown"),
        );
    }
    Ok(())
}
