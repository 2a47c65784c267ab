//! The model's half of every hub step: after each event the driver routes to the hub
//! (login, request, close), the replies and store ops the hub emitted are compared with
//! what the model says it must do, and the model advances.

use cove_core::hub::{ConnId, Reply, Request};
use cove_core::store::{LogLoad, StoreOp};
use cove_core::wire::{AuthMode, ErrorCode, RoomId};

use super::expect::Streams;
use super::room_log::StepOps;
use super::rooms::room_list;
use super::{Checked, Model, fail, user_of_name};
use crate::check::{cursors, durability, retention, room_delivery};

/// The replies of one step to `conn`.
pub(super) fn find(deliveries: &[(ConnId, Reply)], conn: ConnId) -> impl Iterator<Item = &Reply> {
    deliveries
        .iter()
        .filter(move |(c, _)| *c == conn)
        .map(|(_, r)| r)
}

/// The error code of one step's error reply to `conn`, if any.
pub(super) fn error_code(deliveries: &[(ConnId, Reply)], conn: ConnId) -> Option<ErrorCode> {
    find(deliveries, conn).find_map(|r| match r {
        Reply::Error { code, .. } => Some(*code),
        _ => None,
    })
}

/// The room ID of a `RoomJoined` among one step's replies to `conn`.
fn joined_room(deliveries: &[(ConnId, Reply)], conn: ConnId) -> Option<RoomId> {
    find(deliveries, conn).find_map(|r| match r {
        Reply::RoomJoined { room, .. } => Some(*room),
        _ => None,
    })
}

/// One step's expectations: its room replies and its writes.
#[derive(Default)]
pub(super) struct StepExpect {
    pub(super) streams: Streams,
    pub(super) ops: StepOps,
}

impl Model {
    /// The connection closed or logged out: presence only — memberships stay.
    fn disconnect(&mut self, conn: ConnId) {
        if let Some(u) = self.conns.remove(&conn) {
            self.users[u].conn = None;
        }
        let keys: Vec<(ConnId, RoomId)> = self
            .last_acks
            .range((conn, RoomId([0; 6]))..)
            .map(|(k, _)| *k)
            .take_while(|(c, _)| *c == conn)
            .collect();
        for k in keys {
            self.last_acks.remove(&k);
        }
    }

    /// The checks every step ends with: its room replies, its writes, its reads, its DMs.
    pub(super) fn finish(
        &mut self,
        expect: &StepExpect,
        deliveries: &[(ConnId, Reply)],
        ops: &[StoreOp],
        loads: &[LogLoad],
    ) -> Checked {
        self.check_loads(loads)?;
        let names = &self.names;
        let logged = expect
            .ops
            .logged
            .as_ref()
            .map(|(room, seq, u, body)| (*room, *seq, &*names[*u], body));
        room_delivery::logged(ops, logged)?;
        durability::membership_written(ops, &expect.ops.membership, names)?;
        cursors::advanced(ops, expect.ops.cursor, names)?;
        retention::trims(ops, expect.ops.trimmed)?;
        self.compare_streams(&expect.streams, deliveries)?;
        self.check_dms(deliveries)
    }

    /// The hub handled a connection's authentication.
    pub fn on_connect(
        &mut self,
        conn: ConnId,
        u: usize,
        mode: AuthMode,
        deliveries: &[(ConnId, Reply)],
        ops: &[StoreOp],
        loads: &[LogLoad],
    ) -> Checked {
        let mut expect = StepExpect::default();
        let result = find(deliveries, conn).find_map(|r| match r {
            Reply::Auth { result, .. } => Some(*result),
            _ => None,
        });
        let Some(result) = result else {
            return fail("auth answered", format!("no Auth reply to {conn:?} (u{u})"));
        };
        match result {
            Ok(pending) => {
                match mode {
                    AuthMode::Register if self.users[u].exists => {
                        return fail("accounts", format!("u{u} registered twice"));
                    }
                    AuthMode::Login if !self.users[u].exists => {
                        return fail("accounts", format!("login of unknown u{u} accepted"));
                    }
                    AuthMode::Register => {
                        self.users[u].exists = true;
                        self.users[u].lost = false;
                        self.unbatched.accounts.push(u);
                    }
                    _ => {}
                }
                if let Some(old) = self.users[u].conn {
                    let closed = find(deliveries, old).any(|r| {
                        matches!(
                            r,
                            Reply::Close {
                                code: ErrorCode::AlreadyConnected
                            }
                        )
                    });
                    if !closed {
                        return fail(
                            "accounts",
                            format!("u{u} logged in twice; {old:?} not closed"),
                        );
                    }
                    self.disconnect(old);
                }
                self.users[u].conn = Some(conn);
                self.conns.insert(conn, u);
                let expected = self.users[u].queue.len();
                if pending as usize != expected {
                    return fail(
                        "offline queue",
                        format!("u{u} told {pending} pending DMs, model has {expected}"),
                    );
                }
                self.announce(conn, u, &mut expect.streams);
            }
            Err(ErrorCode::UserExists) if !self.users[u].exists => {
                return fail(
                    "accounts",
                    format!("u{u} refused as existing but has no account"),
                );
            }
            Err(ErrorCode::UserNotFound) if self.users[u].exists => {
                return fail(
                    "accounts",
                    format!("login of existing u{u} refused as unknown"),
                );
            }
            Err(ErrorCode::AuthFailed) => {
                return fail("accounts", format!("u{u} refused with its own key"));
            }
            Err(_) => {}
        }
        self.finish(&expect, deliveries, ops, loads)
    }

    /// The hub handled a closed connection.
    pub fn on_disconnect(
        &mut self,
        conn: ConnId,
        deliveries: &[(ConnId, Reply)],
        ops: &[StoreOp],
        loads: &[LogLoad],
    ) -> Checked {
        self.disconnect(conn);
        self.finish(&StepExpect::default(), deliveries, ops, loads)
    }

    /// The hub handled a request from `conn`.
    pub fn on_request(
        &mut self,
        conn: ConnId,
        request: &Request,
        deliveries: &[(ConnId, Reply)],
        ops: &[StoreOp],
        loads: &[LogLoad],
    ) -> Checked {
        let mut expect = StepExpect::default();
        let Some(&u) = self.conns.get(&conn) else {
            return self.finish(&expect, deliveries, ops, loads);
        };
        let (out, step) = (&mut expect.streams, &mut expect.ops);
        // The outcome the requester must be answered with, for requests that have one.
        let outcome = match request {
            Request::CreateRoom {
                req,
                title,
                private,
            } => {
                let room = joined_room(deliveries, conn);
                let want = self.create(conn, u, *req, room, title, *private, out, step);
                if want.is_ok() && step.membership.is_empty() {
                    return fail(
                        "rooms",
                        format!("u{u}'s new room: hub answered {room:?} (live, or none)"),
                    );
                }
                Some(want)
            }
            Request::JoinRoom { req, room } => {
                let want = self.join(u, *room);
                self.check_join_outcome(u, *room, want, error_code(deliveries, conn))?;
                if want.is_ok() {
                    self.add_member(conn, u, *req, *room, out, step);
                }
                None
            }
            Request::LeaveRoom { req, room } => Some(self.leave(conn, u, *req, *room, out, step)),
            Request::RemoveMember { room, name, .. } => {
                Some(self.remove(u, *room, user_of_name(name), out, step))
            }
            Request::InviteMember { room, name, .. } => {
                Some(self.invite(u, *room, user_of_name(name), out))
            }
            Request::SetRoomTitle { room, title, .. } => Some(self.retitle(u, *room, title, out)),
            Request::RoomMessage { room, body, .. } => Some(self.post(u, *room, body, out, step)),
            Request::AckRoom { room, seq } => {
                let last = self.last_acks.insert((conn, *room), *seq);
                cursors::ack_order(u, *room, last, *seq)?;
                self.ack(u, *room, *seq, out, step);
                None
            }
            Request::FetchHistory {
                req,
                room,
                before,
                limit,
            } => Some(self.history(conn, u, *req, *room, *before, *limit, out)),
            Request::ListRooms { .. } => {
                if let Some(rooms) = room_list(deliveries, conn) {
                    self.check_room_list(rooms)?;
                }
                None
            }
            Request::SendDm { to, body, .. } => {
                self.send_dm(conn, u, to, body, deliveries)?;
                None
            }
            Request::AckDm { msg_id } => {
                self.ack_dm(u, *msg_id);
                None
            }
            Request::Logout => {
                self.disconnect(conn);
                None
            }
            _ => None,
        };
        if let Some(want) = outcome {
            let got = error_code(deliveries, conn);
            if got != want.err() {
                return fail(
                    "rooms",
                    format!(
                        "u{u}'s {}: hub answered {got:?}, model {want:?}",
                        request.kind()
                    ),
                );
            }
        }
        self.finish(&expect, deliveries, ops, loads)
    }
}
