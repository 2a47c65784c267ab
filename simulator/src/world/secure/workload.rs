//! What an encrypted user does when it acts: the plaintext users' actions and weights,
//! through its session. It creates rooms (public or private) and joins public ones by
//! external commit (popularity skewed, so joins contend for the same epochs), leaves,
//! posts encrypted messages to rooms whose group it holds, sends direct messages to other
//! encrypted users (mostly the same few, often offline), and as an admin adds members
//! (with a Welcome) and removes them. Status, lists, logouts, key updates, titles and
//! history pages go through the client as for anyone.

use cove_core::client::ClientError;
use cove_core::wire::RoomId;

use super::super::Sim;
use super::Population;
use crate::check::e2ee_delivery::Sent;
use crate::model::Checked;

impl Sim {
    /// A plaintext of user `u`: the end-to-end canary, the kind, the sender, a counter,
    /// padding. Returns it with its counter.
    fn secret_text(&mut self, u: usize, kind: u8) -> (Vec<u8>, u64) {
        self.users[u].counter += 1;
        let counter = self.users[u].counter;
        let pad = self.work.below(48) as usize;
        let mut text = Vec::with_capacity(32 + pad);
        text.extend_from_slice(self.secure.canary.bytes());
        text.push(kind);
        text.extend_from_slice(&(u as u32).to_le_bytes());
        text.extend_from_slice(&counter.to_le_bytes());
        text.resize(text.len() + pad, b'.');
        (text, counter)
    }

    /// Another encrypted user for `u` to write to or add: one of its four contacts, the
    /// users one and two places either side of it in its population (so conversations
    /// repeat, both ends of a pair write to each other, and both may open it at once).
    fn secure_peer(&mut self, u: usize) -> Option<usize> {
        let pop = Population {
            n: self.users.len(),
            every: self.secure.every,
            secure: true,
        };
        let n = pop.count();
        if n < 2 {
            return None;
        }
        let step = match self.work.below(4) {
            0 => 1,
            1 => 2,
            2 => n - 1,
            _ => n - 2,
        };
        let to = pop.nth((pop.index_of(u) + step.max(1)) % n);
        (to != u).then_some(to)
    }

    /// Encrypted user `u` acts (it is logged in).
    pub(crate) fn secure_act(&mut self, u: usize, kind: usize) -> Result<(), ClientError> {
        let now = self.client_now(u);
        let unix = self.unix_secs();
        let Some(s) = self.users[u].secure.as_ref() else {
            return Ok(());
        };
        let in_rooms: Vec<RoomId> = s.view.keys().copied().collect();
        let ready: Vec<RoomId> = s
            .session
            .as_ref()
            .map(|session| {
                in_rooms
                    .iter()
                    .copied()
                    .filter(|r| session.e2ee().has_group(*r))
                    .collect()
            })
            .unwrap_or_default();
        let groups = s.view.values().filter(|v| !v.direct).count();
        let admin_of: Vec<RoomId> = self
            .secure
            .rooms
            .admin_of(u)
            .into_iter()
            .filter(|r| ready.contains(r))
            .collect();
        match kind {
            0 if groups < self.knobs.rooms_per_client.max(1) => {
                let private = self.work.chance(self.knobs.private_prob);
                let title = format!("room of u{u}");
                self.with_session(u, |s| s.create_room(&title, private));
            }
            0 | 3 if !ready.is_empty() => {
                let room = ready[self.work.index(ready.len())];
                let (text, counter) = self.secret_text(u, b'R');
                self.secure.decrypts.sent(u, counter, Sent::Room(room));
                self.stats.e2ee.texts += 1;
                self.with_session(u, |s| s.send_text(room, &text, unix));
            }
            1 | 3 => {
                let directory = self.secure.rooms.directory();
                if directory.is_empty() {
                    return Ok(());
                }
                let rank = self.work.skewed(directory.len());
                let room = directory[rank];
                // A room the server lists as full is not tried (its seats are still
                // contested: the list is a step behind the joins in flight).
                let full = self
                    .secure
                    .rooms
                    .members(&room)
                    .is_some_and(|n| n >= self.knobs.room_capacity);
                let Some(s) = self.users[u].secure.as_mut() else {
                    return Ok(());
                };
                if !full && !s.view.contains_key(&room) && s.joining.insert(room) {
                    self.with_session(u, |s| s.join_room(room));
                }
            }
            2 if !in_rooms.is_empty() => {
                let room = in_rooms[self.work.index(in_rooms.len())];
                if self.users[u]
                    .secure
                    .as_mut()
                    .is_some_and(|s| s.leaving.insert(room))
                {
                    self.with_session(u, |s| s.leave_room(room));
                }
            }
            2 | 4 => {
                let Some(peer) = self.secure_peer(u) else {
                    return Ok(());
                };
                let (text, counter) = self.secret_text(u, b'D');
                self.secure.decrypts.sent(u, counter, Sent::Direct(peer));
                self.stats.e2ee.texts += 1;
                let name = self.users[peer].name.clone();
                self.with_session(u, |s| s.send_direct(&name, &text, unix));
            }
            5..=8 => self.session_action(u, kind)?,
            9..=11 if !admin_of.is_empty() => {
                let room = admin_of[self.work.index(admin_of.len())];
                self.secure_admin(u, kind, room)?;
            }
            12 if !in_rooms.is_empty() => {
                let room = in_rooms[self.work.index(in_rooms.len())];
                let before = if self.work.chance(0.5) {
                    u64::MAX
                } else {
                    self.work.range(1, 200)
                };
                let limit = self.work.range(0, 120) as u8;
                if let Some(c) = self.users[u].conn.as_mut() {
                    c.client.fetch_history(now, room, before, limit)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The admin `u` adds someone (9), removes a member (10) or retitles (11) `room`.
    fn secure_admin(&mut self, u: usize, kind: usize, room: RoomId) -> Result<(), ClientError> {
        let members: Vec<usize> = self.users[u]
            .secure
            .as_ref()
            .and_then(|s| s.view.get(&room))
            .map(|v| v.members.iter().copied().filter(|m| *m != u).collect())
            .unwrap_or_default();
        match kind {
            9 => {
                let Some(who) = self.secure_peer(u).filter(|w| !members.contains(w)) else {
                    return Ok(());
                };
                let name = self.users[who].name.clone();
                self.with_session(u, |s| s.invite(room, &name));
            }
            10 => {
                let Some(&who) = members.get(self.work.index(members.len().max(1))) else {
                    return Ok(());
                };
                let name = self.users[who].name.clone();
                self.with_session(u, |s| s.remove(room, &name));
            }
            _ => {
                self.users[u].counter += 1;
                let title = format!("room of u{u} v{}", self.users[u].counter);
                let now = self.client_now(u);
                if let Some(c) = self.users[u].conn.as_mut() {
                    c.client.set_room_title(now, room, &title)?;
                }
            }
        }
        Ok(())
    }

    /// Runs `f` on user `u`'s session, if it has one.
    fn with_session(
        &mut self,
        u: usize,
        f: impl FnOnce(&mut cove_core::e2ee::session::SecureSession),
    ) {
        if let Some(session) = self.users[u]
            .secure
            .as_mut()
            .and_then(|s| s.session.as_mut())
        {
            f(session);
        }
    }

    /// After an encrypted user acted: what its session asks goes out.
    pub(crate) fn secure_after_act(&mut self, u: usize) -> Checked {
        self.secure_pump(u)
    }
}
