//! An encrypted user's connection: its session restored at connect, logged in, and every
//! server message handed to it as a `Reply` — after the application has noted what it
//! learns (rooms and members, gaps, the entry's MLS header) for its workload and the
//! checks. The simulator-side injected bugs strike here.

use std::collections::BTreeSet;

use cove_core::e2ee::MlsCrypto;
use cove_core::e2ee::session::SecureSession;
use cove_core::hub::Reply;
use cove_core::server::reply_from;
use cove_core::wire::{ErrorCode, RoomId, ServerMsg};

use super::super::Sim;
use super::{EntryKind, UNIX_BASE, View};
use crate::check::e2ee_delivery::Outcome;
use crate::model::{Checked, Violation, user_of_name};

impl Sim {
    /// The sessions' clock: Unix seconds now.
    pub(crate) fn unix_secs(&self) -> u64 {
        UNIX_BASE + self.now / 1_000_000
    }

    /// User `u` connects: its session comes back from the persisted state (a new account
    /// starts a new one), and its client is handed its read markers.
    pub(crate) fn secure_connect(&mut self, u: usize) -> Checked {
        let Some(n) = self.users[u].secure.as_mut().map(|s| {
            s.restores += 1;
            s.restores
        }) else {
            return Ok(());
        };
        let crypto = MlsCrypto::from_seed(self.secure.session_seed(u, n));
        let user = &mut self.users[u];
        let Some(s) = user.secure.as_mut() else {
            return Ok(());
        };
        let session = if s.saved.is_empty() {
            SecureSession::new(&user.identity, &user.name, crypto)
        } else {
            SecureSession::restore(&user.identity, &user.name, crypto, &s.saved)
        }
        .map_err(|e| Violation::new("e2ee state", format!("u{u}'s session: {e}")))?;
        s.session = Some(session);
        s.announced = None;
        s.acks.clear();
        s.leaving.clear();
        if let Some(c) = user.conn.as_mut() {
            for (room, seq) in &s.marks {
                c.client.set_room_cursor(*room, *seq);
            }
        }
        Ok(())
    }

    /// User `u`'s connection is over: the session goes with it (its state is persisted).
    pub(crate) fn secure_teardown(&mut self, u: usize) {
        let Some(s) = self.users[u].secure.as_mut() else {
            return;
        };
        if s.session
            .as_mut()
            .is_some_and(|session| session.take_dirty())
        {
            s.unsaved = true;
        }
        if s.unsaved {
            // A crash comes between events, when the state is persisted (or, while no
            // crash can happen, now): nothing a crash would lose is kept here.
            s.persisted();
            self.stats.e2ee.persists += 1;
        }
        s.session = None;
        s.acks.clear();
        s.entry = None;
    }

    /// User `u` logged in: its session publishes its KeyPackages (the first time), and
    /// the rooms the server announces are noted.
    pub(crate) fn secure_logged_in(&mut self, u: usize) -> Checked {
        let unix = self.unix_secs();
        let Some(s) = self.users[u].secure.as_mut() else {
            return Ok(());
        };
        s.announced = Some(BTreeSet::new());
        if let Some(session) = s.session.as_mut() {
            session.login(unix);
        }
        self.secure_pump(u)
    }

    /// After the login's announcements: rooms the user was in and that were not announced
    /// are gone (it was removed while away): their groups are deleted, as `cove chat`
    /// does.
    pub(super) fn secure_finish_login(&mut self, u: usize) -> Checked {
        let unix = self.unix_secs();
        let Some(s) = self.users[u].secure.as_mut() else {
            return Ok(());
        };
        let Some(announced) = s.announced.take() else {
            return Ok(());
        };
        let gone: Vec<RoomId> = s
            .view
            .keys()
            .filter(|r| !announced.contains(r))
            .copied()
            .collect();
        for room in gone {
            s.view.remove(&room);
            s.marks.remove(&room);
            self.secure.decrypts.left(u, room);
            if let Some(session) = s.session.as_mut() {
                let by = "".into();
                session.handle_reply(&Reply::RoomRemoved { room, by }, unix);
            }
        }
        self.secure_pump(u)
    }

    /// A server message reached encrypted user `u`'s application.
    pub(crate) fn secure_message(&mut self, u: usize, msg: ServerMsg<'_>) -> Checked {
        let Some(reply) = reply_from(&msg) else {
            return Ok(());
        };
        if !self.note_reply(u, &reply)? {
            return Ok(());
        }
        let unix = self.unix_secs();
        let lost_join = self.answer_lost(u, &reply);
        if let Some(session) = self.users[u]
            .secure
            .as_mut()
            .and_then(|s| s.session.as_mut())
        {
            session.handle_reply(&reply, unix);
        }
        self.secure_pump(u)?;
        if let Some(room) = lost_join {
            // Joined (or opened) while the connection dropped: the answer that activates
            // the group was lost with it, and the session never activates it. Leave.
            let active = self.users[u]
                .secure
                .as_ref()
                .and_then(|s| s.session.as_ref())
                .is_some_and(|s| s.e2ee().has_group(room));
            if !active {
                self.secure.decrypts.lost_join(u, room);
                self.secure_leave(u, room);
                self.secure_pump(u)?;
            }
        }
        Ok(())
    }

    /// If `reply` announces at login a room whose group this user asked for on an earlier
    /// connection (an external join, or a direct conversation it opened) and whose answer
    /// never came: that room.
    fn answer_lost(&mut self, u: usize, reply: &Reply) -> Option<RoomId> {
        let Reply::RoomJoined {
            req: 0,
            room,
            members,
            direct,
            admin,
            ..
        } = reply
        else {
            return None;
        };
        let me = &self.users[u].name;
        let opener = *direct && **admin == **me;
        let s = self.users[u].secure.as_mut()?;
        if opener {
            let peer = members
                .iter()
                .filter_map(|m| user_of_name(m))
                .find(|p| *p != u)?;
            return s.opening.remove(&peer).then_some(*room);
        }
        s.joining.remove(room).then_some(*room)
    }

    /// The application notes what `reply` tells it. False: it is not handed to the
    /// session (an injected bug).
    fn note_reply(&mut self, u: usize, reply: &Reply) -> Result<bool, Violation> {
        let me = self.users[u].name.clone();
        let Some(s) = self.users[u].secure.as_mut() else {
            return Ok(false);
        };
        match reply {
            Reply::RoomJoined {
                req,
                room,
                members,
                direct,
                ..
            } => {
                let members: BTreeSet<usize> =
                    members.iter().filter_map(|m| user_of_name(m)).collect();
                s.view.insert(
                    *room,
                    View {
                        members,
                        direct: *direct,
                    },
                );
                if let Some(a) = s.announced.as_mut() {
                    a.insert(*room);
                }
                if *req != 0 {
                    s.joining.remove(room);
                    if *direct {
                        s.opening.retain(|p| !s.view[room].members.contains(p));
                    }
                    self.stats.e2ee.joins += 1;
                }
                self.secure.decrypts.joined(u, *room);
            }
            Reply::MemberJoined { room, name } => {
                if let (Some(v), Some(who)) = (s.view.get_mut(room), user_of_name(name)) {
                    v.members.insert(who);
                }
            }
            Reply::MemberLeft { room, name } => {
                if let (Some(v), Some(who)) = (s.view.get_mut(room), user_of_name(name)) {
                    v.members.remove(&who);
                }
                if self.secure.keep_removed_keys {
                    return Ok(false);
                }
            }
            Reply::RoomLeft { room, .. } | Reply::RoomRemoved { room, .. } => {
                s.view.remove(room);
                s.marks.remove(room);
                s.joining.remove(room);
                s.leaving.remove(room);
                self.secure.decrypts.left(u, *room);
                if matches!(reply, Reply::RoomRemoved { .. }) {
                    self.stats.e2ee.removed += 1;
                }
            }
            Reply::RoomGap {
                room,
                first_available,
            } => {
                self.stats.e2ee.gaps += 1;
                let rooms = &self.secure.rooms;
                self.secure.decrypts.gap(u, *room, *first_available, rooms);
            }
            Reply::RoomMessage {
                room,
                seq,
                from,
                body,
                ..
            } => {
                let kind = EntryKind::of(body);
                let sender = user_of_name(from);
                let skip = self.secure.skip_commit
                    && matches!(kind, EntryKind::Commit { .. })
                    && **from != *me
                    && self.secure.bug_rng.chance(0.25);
                if skip {
                    // The injected bug: the Commit is taken as handled, never applied.
                    let canary = *self.secure.canary.bytes();
                    self.secure.decrypts.entry(
                        u,
                        *room,
                        *seq,
                        sender,
                        kind,
                        Outcome::Handled,
                        &canary,
                    )?;
                    let ack = s.acks.entry(*room).or_insert(0);
                    *ack = (*ack).max(*seq);
                    return Ok(false);
                }
                s.entry = Some((*room, *seq, sender, kind));
            }
            Reply::Error { code, .. } => match code {
                ErrorCode::StaleEpoch => self.stats.e2ee.stale_epochs += 1,
                ErrorCode::DirectExists => self.stats.e2ee.direct_exists += 1,
                _ => {}
            },
            _ => {}
        }
        Ok(true)
    }
}
