//! The workload: what users do while they are logged in. Each user acts after an
//! exponentially distributed think time, picking an action by the drawn weights; room
//! popularity is skewed so the last seats of popular rooms are contested, and DMs go to
//! anyone, often offline. Admins invite, remove and retitle; members fetch history. The
//! application acknowledges each room message it has shown, at once or (lazily) at its
//! next action, and usually accepts the invitations it gets. Plaintext users write to and
//! invite plaintext users only; end-to-end encrypted users act through their sessions
//! (`secure::workload`).

use cove_core::client::ClientError;
use cove_core::wire::{MAX_BODY_LEN, RoomId, Status};

use super::secure::Population;
use super::sim_client::is_edge_user;
use super::{Event, PendingRequest, Phase, Sim, add};
use crate::model::{Checked, Violation};
use crate::trace::Kind;

impl Sim {
    /// A user's action event.
    pub(super) fn act_due(&mut self, user: u32, generation: u32) -> Checked {
        let u = user as usize;
        if generation != self.users[u].act_gen || self.phase != Phase::Safety {
            return Ok(());
        }
        self.trace.note(self.now, Kind::Act, u as u64, 0);
        self.act(u)
    }

    /// Plans user `u`'s next action (only in the safety phase).
    pub(super) fn schedule_act(&mut self, u: usize) {
        if self.phase != Phase::Safety {
            return;
        }
        let mean = self.knobs.think_ms as f64 * 1000.0;
        let at = add(self.now, self.work.exp(mean) as u64 + 1);
        self.users[u].act_gen += 1;
        let generation = self.users[u].act_gen;
        self.schedule(
            at,
            Event::Act {
                user: u as u32,
                generation,
            },
        );
    }

    /// A fresh body in `self.body`: the canary, the kind, the sender, a counter, padding.
    /// An edge user's body is sometimes padded to exactly the protocol's largest body,
    /// one byte less or one byte more (which the hub must refuse, and the model expects
    /// refused); those draws come from their own stream.
    fn make_body(&mut self, u: usize, kind: u8) {
        self.users[u].counter += 1;
        let pad = self.work.below(48) as usize;
        self.body.clear();
        self.body.extend_from_slice(self.canary.bytes());
        self.body.push(kind);
        self.body.extend_from_slice(&(u as u32).to_le_bytes());
        self.body
            .extend_from_slice(&self.users[u].counter.to_le_bytes());
        let edge = is_edge_user(u)
            && self.knobs.edge_body_prob > 0.0
            && self.edge.chance(self.knobs.edge_body_prob);
        let len = if edge {
            // MAX_BODY_LEN - 1, MAX_BODY_LEN or MAX_BODY_LEN + 1.
            let len = MAX_BODY_LEN - 1 + self.edge.index(3);
            if len > MAX_BODY_LEN {
                self.stats.edge_bodies_over += 1;
            } else {
                self.stats.edge_bodies += 1;
            }
            len
        } else {
            self.body.len() + pad
        };
        self.body.resize(len, b'.');
    }

    /// User `u` acts, if it is logged in.
    fn act(&mut self, u: usize) -> Checked {
        let authed = self.users[u].conn.as_ref().is_some_and(|c| c.authed);
        if !authed {
            return Ok(());
        }
        // Whatever it does next, it first acknowledges what it has read.
        self.flush_acks(u);
        let k = &self.knobs;
        let weights = [
            k.w_create,
            k.w_join,
            k.w_leave,
            k.w_room_msg,
            k.w_dm,
            k.w_status,
            k.w_list,
            k.w_logout,
            k.w_key_update,
            k.w_invite,
            k.w_remove,
            k.w_title,
            k.w_history,
        ];
        let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
        let mut pick = self.work.below(total.max(1));
        let mut kind = 3;
        for (i, w) in weights.iter().enumerate() {
            if pick < u64::from(*w) {
                kind = i;
                break;
            }
            pick -= u64::from(*w);
        }
        if self.users[u].secure.is_some() {
            let result = self.secure_act(u, kind);
            self.command_result(u, result)?;
            self.secure_after_act(u)?;
            self.schedule_act(u);
            return self.after_client(u);
        }
        let in_rooms: Vec<RoomId> = self.users[u]
            .conn
            .as_ref()
            .map(|c| c.rooms.keys().copied().collect())
            .unwrap_or_default();
        // The admin's actions go to rooms it administers (the model knows which; the
        // client only learns it from the room's announcement).
        let admin_of: Vec<RoomId> = self
            .model
            .admin_rooms(u)
            .into_iter()
            .filter(|r| in_rooms.contains(r))
            .collect();
        // Fall back to a room post, a join or a DM when the action does not apply.
        let kind = loop {
            kind = match kind {
                0 if in_rooms.len() >= self.knobs.rooms_per_client.max(1) => 3,
                1 if self.model.directory_len() == 0 => 0,
                2 if in_rooms.is_empty() => 4,
                3 if in_rooms.is_empty() => 1,
                9..=11 if admin_of.is_empty() => 3,
                12 if in_rooms.is_empty() => 1,
                other => break other,
            };
        };
        let result = self.do_action(u, kind, &in_rooms, &admin_of);
        self.command_result(u, result)?;
        self.schedule_act(u);
        self.after_client(u)
    }

    /// A client command's result: refused only for a full queue or a closing connection.
    fn command_result(&self, u: usize, result: Result<(), ClientError>) -> Checked {
        match result {
            Ok(()) | Err(ClientError::SendQueueFull { .. }) => Ok(()),
            Err(ClientError::Closed) | Err(ClientError::NotReady) => Ok(()),
            Err(e) => Err(Violation::new("client command", format!("u{u}: {e}"))),
        }
    }

    /// Another user of `u`'s kind (plaintext users write to and invite plaintext users
    /// only), drawn uniformly; `u` itself only if it is alone.
    fn plain_peer(&mut self, u: usize) -> Option<usize> {
        let pop = Population {
            n: self.users.len(),
            every: self.secure.every,
            secure: false,
        };
        let n = pop.count();
        if n == 0 {
            return None;
        }
        let i = self.work.index(n);
        let mut to = pop.nth(i);
        if to == u && n > 1 {
            to = pop.nth((i + 1) % n);
        }
        Some(to)
    }

    /// The actions of a connection that plaintext and encrypted users share alike: `5` a
    /// status, `6` a room or user list, `7` a logout (and time away), `8` a transport key
    /// update. Any other `kind` does nothing.
    pub(super) fn session_action(&mut self, u: usize, kind: usize) -> Result<(), ClientError> {
        let now = self.client_now(u);
        match kind {
            5 => {
                let status = if self.work.chance(0.5) {
                    Status::Away
                } else {
                    Status::Online
                };
                if let Some(c) = self.users[u].conn.as_mut() {
                    c.client.set_status(now, status)?;
                }
            }
            6 => {
                let rooms = self.work.chance(0.5);
                if let Some(c) = self.users[u].conn.as_mut() {
                    if rooms {
                        c.client.list_rooms(now)?;
                    } else {
                        c.client.list_users(now)?;
                    }
                }
            }
            7 => {
                let away = self.work.exp(self.knobs.offline_ms as f64 * 1000.0) as u64;
                self.users[u].away_until = add(self.now, away);
                self.stats.logouts += 1;
                if let Some(c) = self.users[u].conn.as_mut() {
                    c.client.logout(now)?;
                }
            }
            8 => {
                if let Some(c) = self.users[u].conn.as_mut() {
                    c.client.request_key_update();
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Action `kind` (an index into the weights) for user `u`, in `in_rooms`, the admin of
    /// `admin_of`.
    fn do_action(
        &mut self,
        u: usize,
        kind: usize,
        in_rooms: &[RoomId],
        admin_of: &[RoomId],
    ) -> Result<(), ClientError> {
        let now = self.client_now(u);
        match kind {
            0 => {
                let title = format!("room of u{u}");
                let private = self.work.chance(self.knobs.private_prob);
                if let Some(c) = self.users[u].conn.as_mut() {
                    let req = if private {
                        c.client.create_private_room(now, &title)?
                    } else {
                        c.client.create_room(now, &title)?
                    };
                    c.pending.insert(req, PendingRequest::Create);
                }
            }
            1 => {
                let rank = self.work.skewed(self.model.directory_len());
                let Some(room) = self.model.directory_entry(rank) else {
                    return Ok(());
                };
                if let Some(c) = self.users[u].conn.as_mut() {
                    let asked = c
                        .pending
                        .values()
                        .any(|p| matches!(p, PendingRequest::Join(r) if *r == room));
                    if !c.rooms.contains_key(&room) && !asked {
                        let req = c.client.join_room(now, room)?;
                        c.pending.insert(req, PendingRequest::Join(room));
                    }
                }
            }
            2 => {
                let room = in_rooms[self.work.index(in_rooms.len())];
                if let Some(c) = self.users[u].conn.as_mut() {
                    let req = c.client.leave_room(now, room)?;
                    c.pending.insert(req, PendingRequest::Leave(room));
                }
            }
            3 => {
                let room = in_rooms[self.work.index(in_rooms.len())];
                self.make_body(u, b'R');
                let body = std::mem::take(&mut self.body);
                let r = match self.users[u].conn.as_mut() {
                    Some(c) => c.client.send_room(now, room, &body).map(|_| ()),
                    None => Ok(()),
                };
                self.body = body;
                r?;
                self.stats.room_posts += 1;
            }
            4 => {
                let Some(to) = self.plain_peer(u) else {
                    return Ok(());
                };
                self.make_body(u, b'D');
                let body = std::mem::take(&mut self.body);
                let name = self.users[to].name.clone();
                let r = match self.users[u].conn.as_mut() {
                    Some(c) => c.client.send_dm(now, &name, &body).map(|req| {
                        c.pending.insert(req, PendingRequest::Dm(to));
                    }),
                    None => Ok(()),
                };
                self.body = body;
                r?;
                self.stats.dms_sent += 1;
            }
            5..=8 => self.session_action(u, kind)?,
            9..=11 => self.admin_action(u, kind, admin_of)?,
            _ => {
                let room = in_rooms[self.work.index(in_rooms.len())];
                let next = self.model.rooms.get(&room).map_or(1, |r| r.next_seq);
                // Before the end, before a random point (often before the interval or
                // the retention), or before everything.
                let before = match self.work.below(3) {
                    0 => u64::MAX,
                    1 => next,
                    _ => self.work.range(1, next + 2),
                };
                let limit = self.work.range(0, 120) as u8;
                if let Some(c) = self.users[u].conn.as_mut() {
                    let req = c.client.fetch_history(now, room, before, limit)?;
                    c.pending.insert(req, PendingRequest::History);
                }
            }
        }
        Ok(())
    }

    /// The admin `u` invites someone (9), removes a member (10) or retitles (11) one of
    /// the rooms it administers.
    fn admin_action(
        &mut self,
        u: usize,
        kind: usize,
        admin_of: &[RoomId],
    ) -> Result<(), ClientError> {
        let now = self.client_now(u);
        let room = admin_of[self.work.index(admin_of.len())];
        let others: Vec<usize> = self.model.rooms.get(&room).map_or_else(Vec::new, |r| {
            r.members.iter().map(|m| m.u).filter(|m| *m != u).collect()
        });
        let req = match kind {
            9 => {
                let Some(who) = self.plain_peer(u) else {
                    return Ok(());
                };
                let name = self.users[who].name.clone();
                let Some(c) = self.users[u].conn.as_mut() else {
                    return Ok(());
                };
                c.client.invite(now, room, &name)?
            }
            10 => {
                // The admin never removes itself: that is a malformed request.
                let Some(&who) = others.get(self.work.index(others.len().max(1))) else {
                    return Ok(());
                };
                let name = self.users[who].name.clone();
                let Some(c) = self.users[u].conn.as_mut() else {
                    return Ok(());
                };
                c.client.remove_member(now, room, &name)?
            }
            _ => {
                self.users[u].counter += 1;
                let title = format!("room of u{u} v{}", self.users[u].counter);
                let Some(c) = self.users[u].conn.as_mut() else {
                    return Ok(());
                };
                c.client.set_room_title(now, room, &title)?
            }
        };
        if let Some(c) = self.users[u].conn.as_mut() {
            c.pending.insert(req, PendingRequest::Admin);
        }
        Ok(())
    }

    /// The application has shown room message `room`#`seq`; its read marker is saved
    /// (it was, by the check that saw it). It acknowledges it now, or (lazily) at its next
    /// action. If the ack is lost with the connection, the server replays the message on
    /// the next one; the client drops it there, unless it lost its local state.
    pub(super) fn ack_shown_room(&mut self, u: usize, room: RoomId, seq: u64) {
        let lazy = self.phase == Phase::Safety && self.work.chance(self.knobs.lazy_ack_prob);
        let now = self.client_now(u);
        if let Some(c) = self.users[u].conn.as_mut() {
            if lazy {
                c.owed_acks.insert(room, seq);
            } else {
                c.owed_acks.remove(&room);
                let _ = c.client.ack_room(now, room, seq);
            }
        }
    }

    /// Sends the acks the application put off.
    pub(super) fn flush_acks(&mut self, u: usize) {
        let now = self.client_now(u);
        if let Some(c) = self.users[u].conn.as_mut() {
            for (room, seq) in std::mem::take(&mut c.owed_acks) {
                let _ = c.client.ack_room(now, room, seq);
            }
        }
    }

    /// The application was invited to `room`: it usually accepts at once, if it has
    /// room for one more.
    pub(super) fn accept_invitation(&mut self, u: usize, room: RoomId) {
        let now = self.client_now(u);
        let most = self.knobs.rooms_per_client + 1;
        let accept = self.work.chance(0.8);
        let Some(c) = self.users[u].conn.as_mut() else {
            return;
        };
        let asked = c
            .pending
            .values()
            .any(|p| matches!(p, PendingRequest::Join(r) if *r == room));
        if accept
            && !asked
            && !c.rooms.contains_key(&room)
            && c.rooms.len() < most
            && let Ok(req) = c.client.join_room(now, room)
        {
            c.pending.insert(req, PendingRequest::Join(room));
        }
    }
}
