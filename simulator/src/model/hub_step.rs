//! The model's half of every hub step: after each event the driver routes to the hub
//! (login, request, close), the replies the hub emitted are compared with what the model
//! says it must do, and the model advances.

use std::sync::Arc;

use cove_core::hub::{ConnId, Reply, Request};
use cove_core::wire::{AckStatus, AuthMode, ErrorCode, RoomId};

use super::{Checked, JoinNote, Model, ModelDm, ModelRoom, fail, user_of_name};

fn find(deliveries: &[(ConnId, Reply)], conn: ConnId) -> impl Iterator<Item = &Reply> {
    deliveries
        .iter()
        .filter(move |(c, _)| *c == conn)
        .map(|(_, r)| r)
}

fn error_code(deliveries: &[(ConnId, Reply)], conn: ConnId) -> Option<ErrorCode> {
    find(deliveries, conn).find_map(|r| match r {
        Reply::Error { code, .. } => Some(*code),
        _ => None,
    })
}

impl Model {
    /// Checks that `deliveries` hold exactly one `MemberLeft{room, name}` per expected
    /// remaining member connection.
    fn check_member_notices(
        &self,
        deliveries: &[(ConnId, Reply)],
        expected: &mut Vec<(RoomId, ConnId)>,
        joined: bool,
        name: &str,
    ) -> Checked {
        let mut got: Vec<(RoomId, ConnId)> = deliveries
            .iter()
            .filter_map(|(c, r)| match r {
                Reply::MemberLeft { room, name: n } if !joined && &**n == name => Some((*room, *c)),
                Reply::MemberJoined { room, name: n } if joined && &**n == name => {
                    Some((*room, *c))
                }
                _ => None,
            })
            .collect();
        got.sort();
        expected.sort();
        if got != *expected {
            return fail(
                "membership notices",
                format!(
                    "{} of {name}: hub told {got:?}, members to tell were {expected:?}",
                    if joined { "join" } else { "departure" }
                ),
            );
        }
        Ok(())
    }

    fn disconnect(&mut self, conn: ConnId, deliveries: &[(ConnId, Reply)]) -> Checked {
        let Some(u) = self.conns.remove(&conn) else {
            return Ok(());
        };
        self.users[u].conn = None;
        let rooms: Vec<RoomId> = self.users[u].rooms.iter().copied().collect();
        let mut expected = Vec::new();
        for room in rooms {
            for c in self.remove_member(room, u) {
                expected.push((room, c));
            }
        }
        let name = self.names[u].clone();
        self.check_member_notices(deliveries, &mut expected, false, &name)
    }

    /// Checks every `IncomingDm` and stray `RoomMessage` among one step's deliveries.
    fn check_generic(&self, deliveries: &[(ConnId, Reply)], room_step: bool) -> Checked {
        for (conn, reply) in deliveries {
            match reply {
                Reply::IncomingDm {
                    msg_id, from, body, ..
                } => {
                    let Some(dm) = self.dms.get(msg_id) else {
                        return fail("dm integrity", format!("hub pushed unknown DM {msg_id}"));
                    };
                    let to = self.conns.get(conn).copied();
                    if to != Some(dm.to) {
                        return fail(
                            "dm to wrong user",
                            format!(
                                "DM {msg_id} for u{} pushed to {conn:?} (user {to:?})",
                                dm.to
                            ),
                        );
                    }
                    if dm.acked {
                        return fail("dm after ack", format!("DM {msg_id} pushed after its ack"));
                    }
                    if **from != *self.names[dm.from] || *body != dm.body {
                        return fail("dm integrity", format!("DM {msg_id} altered by the hub"));
                    }
                }
                Reply::RoomMessage { room, seq, .. } if !room_step => {
                    return fail(
                        "delivery to non-member",
                        format!(
                            "room message {room:?}#{seq} delivered to {conn:?} outside a room post"
                        ),
                    );
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The hub handled a connection's authentication.
    pub fn on_connect(
        &mut self,
        conn: ConnId,
        u: usize,
        mode: AuthMode,
        deliveries: &[(ConnId, Reply)],
    ) -> Checked {
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
                    self.disconnect(old, deliveries)?;
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
        self.check_generic(deliveries, false)
    }

    /// The hub handled a closed connection.
    pub fn on_disconnect(&mut self, conn: ConnId, deliveries: &[(ConnId, Reply)]) -> Checked {
        self.disconnect(conn, deliveries)?;
        self.check_generic(deliveries, false)
    }

    /// The hub handled a request from `conn`.
    pub fn on_request(
        &mut self,
        conn: ConnId,
        request: &Request,
        deliveries: &[(ConnId, Reply)],
    ) -> Checked {
        let Some(&u) = self.conns.get(&conn) else {
            return self.check_generic(deliveries, false);
        };
        let mut room_step = false;
        match request {
            Request::CreateRoom { .. } => {
                let joined = find(deliveries, conn).find_map(|r| match r {
                    Reply::RoomJoined { room, members, .. } => Some((*room, members.clone())),
                    _ => None,
                });
                if let Some((room, members)) = joined {
                    if self.rooms.contains_key(&room) {
                        return fail("rooms", format!("created {room:?}, which is live"));
                    }
                    if members.len() != 1 || *members[0] != *self.names[u] {
                        return fail(
                            "rooms",
                            format!("new room {room:?} has members {members:?}"),
                        );
                    }
                    let inc = self.next_inc;
                    self.next_inc += 1;
                    self.rooms_created += 1;
                    self.rooms.insert(
                        room,
                        ModelRoom {
                            inc,
                            members: vec![(u, conn)],
                            next_seq: 1,
                        },
                    );
                    self.log.insert(inc, Vec::new());
                    self.users[u].rooms.insert(room);
                    self.directory.push((room, inc));
                    self.note_join(
                        conn,
                        JoinNote {
                            room,
                            inc,
                            first_seq: 1,
                        },
                    );
                }
            }
            Request::JoinRoom { room, .. } => {
                let room = *room;
                let joined = find(deliveries, conn).find_map(|r| match r {
                    Reply::RoomJoined { members, .. } => Some(members.clone()),
                    _ => None,
                });
                let live = self.rooms.get(&room);
                let count = live.map_or(0, |r| r.members.len());
                let member = live.is_some_and(|r| r.members.iter().any(|(m, _)| *m == u));
                if let Some(members) = joined {
                    let Some(r) = live else {
                        return fail(
                            "rooms",
                            format!("u{u} joined {room:?}, which does not exist"),
                        );
                    };
                    if member {
                        return fail("rooms", format!("u{u} joined {room:?} twice"));
                    }
                    if count >= self.capacity {
                        return fail(
                            "room cap",
                            format!(
                                "u{u} admitted to {room:?} with {count} members already (cap {})",
                                self.capacity
                            ),
                        );
                    }
                    let mut expected: Vec<(RoomId, ConnId)> =
                        r.members.iter().map(|(_, c)| (room, *c)).collect();
                    let inc = r.inc;
                    let first_seq = r.next_seq;
                    let name = self.names[u].clone();
                    self.check_member_notices(deliveries, &mut expected, true, &name)?;
                    if let Some(r) = self.rooms.get_mut(&room) {
                        r.members.push((u, conn));
                        let want: Vec<&str> =
                            r.members.iter().map(|(m, _)| &*self.names[*m]).collect();
                        let got: Vec<&str> = members.iter().map(|m| &**m).collect();
                        if want != got {
                            return fail(
                                "rooms",
                                format!("{room:?} joined with members {got:?}, model {want:?}"),
                            );
                        }
                    }
                    self.users[u].rooms.insert(room);
                    self.note_join(
                        conn,
                        JoinNote {
                            room,
                            inc,
                            first_seq,
                        },
                    );
                } else {
                    match error_code(deliveries, conn) {
                        Some(ErrorCode::RoomFull) if count < self.capacity => {
                            return fail(
                                "room cap",
                                format!(
                                    "u{u} refused {room:?} as full with {count} of {} members",
                                    self.capacity
                                ),
                            );
                        }
                        Some(ErrorCode::RoomNotFound) if live.is_some() => {
                            return fail("rooms", format!("live room {room:?} reported not found"));
                        }
                        Some(ErrorCode::AlreadyInRoom) if !member => {
                            return fail("rooms", format!("u{u} told already in {room:?}"));
                        }
                        Some(_) => {}
                        None => {
                            return fail("rooms", format!("join of {room:?} by u{u} unanswered"));
                        }
                    }
                }
            }
            Request::LeaveRoom { room, .. } => {
                let room = *room;
                let left = find(deliveries, conn).any(|r| matches!(r, Reply::RoomLeft { .. }));
                let member = self.users[u].rooms.contains(&room);
                if left {
                    if !member {
                        return fail("rooms", format!("u{u} left {room:?} without being in it"));
                    }
                    let mut expected: Vec<(RoomId, ConnId)> = self
                        .remove_member(room, u)
                        .into_iter()
                        .map(|c| (room, c))
                        .collect();
                    let name = self.names[u].clone();
                    self.check_member_notices(deliveries, &mut expected, false, &name)?;
                } else if member {
                    return fail("rooms", format!("member u{u} could not leave {room:?}"));
                }
            }
            Request::RoomMessage { room, body, .. } => {
                room_step = true;
                let room = *room;
                type Stamp<'d> = (ConnId, u64, &'d Arc<str>, &'d Arc<[u8]>);
                let stamped: Vec<Stamp<'_>> = deliveries
                    .iter()
                    .filter_map(|(c, r)| match r {
                        Reply::RoomMessage {
                            room: rr,
                            seq,
                            from,
                            body,
                            ..
                        } if *rr == room => Some((*c, *seq, from, body)),
                        _ => None,
                    })
                    .collect();
                let member = self.users[u].rooms.contains(&room);
                if stamped.is_empty() {
                    if member {
                        return fail("rooms", format!("post by member u{u} to {room:?} refused"));
                    }
                } else {
                    let Some(r) = self.rooms.get_mut(&room) else {
                        return fail(
                            "delivery to non-member",
                            format!("post to dead room {room:?} delivered"),
                        );
                    };
                    if !member {
                        return fail(
                            "rooms",
                            format!("post by non-member u{u} to {room:?} accepted"),
                        );
                    }
                    let seq = r.next_seq;
                    let mut want: Vec<ConnId> = r.members.iter().map(|(_, c)| *c).collect();
                    let mut got: Vec<ConnId> = Vec::with_capacity(stamped.len());
                    for (c, s, from, b) in &stamped {
                        if *s != seq {
                            return fail(
                                "room order",
                                format!("{room:?} message stamped #{s}, expected #{seq}"),
                            );
                        }
                        if ***from != *self.names[u] || **b != *body {
                            return fail(
                                "room integrity",
                                format!("{room:?}#{seq} altered by the hub"),
                            );
                        }
                        got.push(*c);
                    }
                    want.sort();
                    got.sort();
                    if want != got {
                        let extra: Vec<_> = got.iter().filter(|c| !want.contains(c)).collect();
                        let missing: Vec<_> = want.iter().filter(|c| !got.contains(c)).collect();
                        let check = if extra.is_empty() {
                            "room delivery"
                        } else {
                            "delivery to non-member"
                        };
                        return fail(
                            check,
                            format!(
                                "{room:?}#{seq} from u{u}: sent to non-members {extra:?}, \
                                 not sent to members {missing:?} ({} copies, {} members)",
                                got.len(),
                                want.len()
                            ),
                        );
                    }
                    r.next_seq += 1;
                    self.room_messages += 1;
                    let inc = r.inc;
                    self.log.entry(inc).or_default().push((u, body.clone()));
                }
            }
            Request::SendDm { to, body, .. } => {
                let ack = find(deliveries, conn).find_map(|r| match r {
                    Reply::MessageAck { msg_id, status, .. } => Some((*msg_id, *status)),
                    _ => None,
                });
                let Some((msg_id, status)) = ack else {
                    return fail("dm ack", format!("DM from u{u} unanswered"));
                };
                let target = user_of_name(to).filter(|t| *t < self.users.len());
                let exists = target.is_some_and(|t| self.users[t].exists);
                if status == AckStatus::Failed {
                    match error_code(deliveries, conn) {
                        Some(ErrorCode::UserNotFound) if exists => {
                            return fail(
                                "dm ack",
                                format!("DM to existing {to} refused as unknown"),
                            );
                        }
                        Some(ErrorCode::QueueFull)
                            if target
                                .is_some_and(|t| self.users[t].queue.len() < self.max_queue) =>
                        {
                            return fail("dm ack", format!("DM to {to} refused as queue full"));
                        }
                        _ => {}
                    }
                } else {
                    let Some(t) = target.filter(|_| exists) else {
                        return fail("dm ack", format!("DM to unknown {to} accepted"));
                    };
                    if msg_id <= self.max_id_life || msg_id <= self.max_id_durable {
                        return fail(
                            "message ids",
                            format!(
                                "DM id {msg_id} not above {} (this life) / {} (durable)",
                                self.max_id_life, self.max_id_durable
                            ),
                        );
                    }
                    let online = self.users[t].conn.is_some();
                    if (status == AckStatus::Delivered) != online {
                        return fail(
                            "dm ack",
                            format!("DM {msg_id} to {to} acked {status:?} while online={online}"),
                        );
                    }
                    self.max_id_life = msg_id;
                    self.users[t].queue.push_back(msg_id);
                    self.unbatched.dms.push(msg_id);
                    self.dms.insert(
                        msg_id,
                        ModelDm {
                            from: u,
                            to: t,
                            body: body.clone(),
                            via: conn,
                            durable: false,
                            acked: false,
                            ack_durable: false,
                            promised: false,
                            shown: false,
                        },
                    );
                }
            }
            Request::AckDm { msg_id } => {
                let q = &mut self.users[u].queue;
                if let Some(pos) = q.iter().position(|id| id == msg_id) {
                    q.remove(pos);
                    if let Some(dm) = self.dms.get_mut(msg_id) {
                        dm.acked = true;
                    }
                    self.unbatched.acks.push(*msg_id);
                }
            }
            Request::Logout => self.disconnect(conn, deliveries)?,
            _ => {}
        }
        self.check_generic(deliveries, room_step)
    }
}
