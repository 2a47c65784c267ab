//! The workload: what users do while they are logged in. Each user acts after an
//! exponentially distributed think time, picking an action by the drawn weights; room
//! popularity is skewed so the last seats of popular rooms are contested, and DMs go to
//! anyone, often offline.

use cove_core::client::ClientError;
use cove_core::wire::{RoomId, Status};

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
    fn make_body(&mut self, u: usize, kind: u8) {
        self.users[u].counter += 1;
        let pad = self.work.below(48) as usize;
        self.body.clear();
        self.body.extend_from_slice(self.canary.bytes());
        self.body.push(kind);
        self.body.extend_from_slice(&(u as u32).to_le_bytes());
        self.body
            .extend_from_slice(&self.users[u].counter.to_le_bytes());
        self.body.extend(std::iter::repeat_n(b'.', pad));
    }

    /// User `u` acts, if it is logged in.
    fn act(&mut self, u: usize) -> Checked {
        let authed = self.users[u].conn.as_ref().is_some_and(|c| c.authed);
        if !authed {
            return Ok(());
        }
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
        let in_rooms: Vec<RoomId> = self.users[u]
            .conn
            .as_ref()
            .map(|c| c.rooms.keys().copied().collect())
            .unwrap_or_default();
        // Fall back to a room post, a join or a DM when the action does not apply.
        let kind = loop {
            kind = match kind {
                0 if in_rooms.len() >= self.knobs.rooms_per_client.max(1) => 3,
                1 if self.model.directory_len() == 0 => 0,
                2 if in_rooms.is_empty() => 4,
                3 if in_rooms.is_empty() => 1,
                other => break other,
            };
        };
        let result = self.do_action(u, kind, &in_rooms);
        match result {
            Ok(()) | Err(ClientError::SendQueueFull { .. }) => {}
            Err(ClientError::Closed) | Err(ClientError::NotReady) => {}
            Err(e) => return Err(Violation::new("client command", format!("u{u}: {e}"))),
        }
        self.schedule_act(u);
        self.after_client(u)
    }

    /// Action `kind` (an index into the weights) for user `u`.
    fn do_action(&mut self, u: usize, kind: usize, in_rooms: &[RoomId]) -> Result<(), ClientError> {
        let now = self.client_now(u);
        match kind {
            0 => {
                let title = format!("room of u{u}");
                if let Some(c) = self.users[u].conn.as_mut() {
                    let req = c.client.create_room(now, &title)?;
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
                self.users[u].favorites.retain(|r| *r != room);
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
                let mut to = self.work.index(self.users.len());
                if to == u && self.users.len() > 1 {
                    to = (to + 1) % self.users.len();
                }
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
            _ => {
                if let Some(c) = self.users[u].conn.as_mut() {
                    c.client.request_key_update();
                }
            }
        }
        Ok(())
    }
}
