//! An encrypted user's application drains its session, in the session's order: every
//! action is sent through the client and its request ID reported, then every event is
//! taken (each room entry checked by invariant (a) and queued for acknowledgement). At the
//! end of each simulated event the state is persisted, then the entries are acknowledged
//! and their read markers saved.

use cove_core::e2ee::session::{Action, EntryKind as Shown, Failure, SecureEvent};
use cove_core::wire::RoomId;

use super::super::Sim;
use crate::check::e2ee_delivery::{Outcome, Verdict};
use crate::model::{Checked, Violation, user_of_name};
use crate::trace::Kind;

/// A short name for why something failed, for the summary.
fn failure_name(reason: &Failure) -> String {
    let head = |s: String| s.split(['(', ' ', '{']).next().unwrap_or("").to_string();
    match reason {
        Failure::Server(code) => format!("server {code:?}"),
        Failure::Mls(e) => format!("mls {}", head(format!("{e:?}"))),
        other => head(format!("{other:?}")),
    }
}

impl Sim {
    /// Sends what user `u`'s session asks, then takes its events, until it is quiet.
    pub(crate) fn secure_pump(&mut self, u: usize) -> Checked {
        let Some(mut session) = self.users[u].secure.as_mut().and_then(|s| s.session.take()) else {
            return Ok(());
        };
        let result = self.drain(u, &mut session);
        if let Some(s) = self.users[u].secure.as_mut() {
            // Rooms whose group just began: note its first epoch.
            for room in self.secure.decrypts.waiting_rooms(u) {
                if let Some(epoch) = session.e2ee().epoch(room) {
                    self.secure.decrypts.has_group(u, room, epoch);
                }
            }
            s.session = Some(session);
        }
        result
    }

    fn drain(
        &mut self,
        u: usize,
        session: &mut cove_core::e2ee::session::SecureSession,
    ) -> Checked {
        let now = self.client_now(u);
        loop {
            let mut sent_any = false;
            while let Some(action) = session.poll_action() {
                sent_any = true;
                self.count_action(u, &action);
                let sent = match self.users[u].conn.as_mut() {
                    Some(c) => c.client.send_action(&action, now),
                    None => Err(cove_core::client::ClientError::Closed),
                };
                match sent {
                    Ok(req) => session.sent(req),
                    Err(_) => self.stats.e2ee.actions_unsent += 1,
                }
            }
            let mut leave = Vec::new();
            while let Some(ev) = session.poll_event() {
                if let Some(room) = self.secure_event(u, ev)? {
                    leave.push(room);
                }
            }
            for room in leave {
                if self.users[u]
                    .secure
                    .as_mut()
                    .is_some_and(|s| s.view.contains_key(&room) && s.leaving.insert(room))
                {
                    self.stats.e2ee.left_broken += 1;
                    session.leave_room(room);
                    sent_any = true;
                }
            }
            if !sent_any {
                return Ok(());
            }
        }
    }

    /// Bookkeeping for an action about to be sent: what a message's sender knew.
    fn count_action(&mut self, u: usize, action: &Action) {
        let e = &mut self.stats.e2ee;
        match action {
            Action::RoomMessage { room, body } => {
                e.messages_encrypted += 1;
                let view = self.users[u]
                    .secure
                    .as_ref()
                    .and_then(|s| s.view.get(room))
                    .map(|v| v.members.clone())
                    .unwrap_or_default();
                self.secure.removed.encrypted(body, view.into_iter());
            }
            Action::GroupCommit { add: Some(_), .. } => e.adds_sent += 1,
            Action::GroupCommit { .. } => e.commits_sent += 1,
            Action::InitGroup { .. } => e.groups_published += 1,
            Action::OpenDirect { peer, .. } => {
                e.directs_opened += 1;
                if let (Some(s), Some(p)) = (self.users[u].secure.as_mut(), user_of_name(peer)) {
                    s.opening.insert(p);
                }
            }
            Action::UploadKeyPackages { packages, .. } => e.key_packages += packages.len() as u64,
            _ => {}
        }
    }

    /// One event of user `u`'s session; `Some(room)`: the application leaves the room.
    fn secure_event(&mut self, u: usize, ev: SecureEvent) -> Result<Option<RoomId>, Violation> {
        match ev {
            SecureEvent::Entry {
                room,
                seq,
                from,
                kind,
                ..
            } => {
                let noted = self.users[u].secure.as_mut().and_then(|s| s.entry.take());
                let header = match noted {
                    Some((r, s, _, k)) if r == room && s == seq => k,
                    _ => {
                        return Err(Violation::new(
                            "e2ee entries",
                            format!("u{u}'s session reported {room:?}#{seq}, not handed to it"),
                        ));
                    }
                };
                let outcome = match &kind {
                    Shown::Text(p) => Outcome::Text(p),
                    Shown::Own => Outcome::Own,
                    Shown::Nothing => Outcome::Nothing,
                    Shown::Unreadable(e) => Outcome::Unreadable(e),
                    _ => Outcome::Handled,
                };
                self.trace.note(
                    self.now,
                    Kind::Secure,
                    u as u64,
                    seq ^ (u64::from(room.0[0]) << 56),
                );
                let canary = *self.secure.canary.bytes();
                let verdict = self.secure.decrypts.entry(
                    u,
                    room,
                    seq,
                    user_of_name(&from),
                    header,
                    outcome,
                    &canary,
                )?;
                if let Some(s) = self.users[u].secure.as_mut() {
                    let ack = s.acks.entry(room).or_insert(0);
                    *ack = (*ack).max(seq);
                }
                Ok((verdict == Verdict::Leave).then_some(room))
            }
            SecureEvent::Ready { room, .. } => {
                self.stats.e2ee.ready += 1;
                if let Some(s) = self.users[u].secure.as_mut() {
                    s.joining.remove(&room);
                }
                Ok(None)
            }
            SecureEvent::KeyChanged { name } => Err(Violation::new(
                "e2ee key change",
                format!("u{u} was told {name}'s identity key changed; no key ever changes"),
            )),
            SecureEvent::KeyDisputed { name, .. } => Err(Violation::new(
                "e2ee key change",
                format!(
                    "u{u} was told the server's directory disagrees with {name}'s group credential; every credential is the account's key"
                ),
            )),
            SecureEvent::Failed { room, peer, reason } => {
                if let Some(s) = self.users[u].secure.as_mut() {
                    if let Some(room) = room {
                        s.joining.remove(&room);
                    }
                    if let Some(p) = peer.as_deref().and_then(user_of_name) {
                        s.opening.remove(&p);
                    }
                }
                *self
                    .stats
                    .e2ee
                    .failures
                    .entry(failure_name(&reason))
                    .or_insert(0) += 1;
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    /// The application leaves `room` (its group can no longer follow it).
    pub(super) fn secure_leave(&mut self, u: usize, room: RoomId) {
        let Some(s) = self.users[u].secure.as_mut() else {
            return;
        };
        if !s.view.contains_key(&room) || !s.leaving.insert(room) {
            return;
        }
        self.stats.e2ee.left_broken += 1;
        if let Some(session) = s.session.as_mut() {
            session.leave_room(room);
        }
    }

    /// The end of a simulated event for user `u`: the state is persisted, then the
    /// entries handled are acknowledged and their read markers saved.
    ///
    /// The persisted copy is read only by a restart after a client crash (a reconnect and
    /// a removed member's kept state take it from the session that ends). So while no
    /// client crash can happen (the seed draws none, or the liveness phase), writing it is
    /// put off until one of those reads it: no run can tell the two apart, and exporting
    /// every group after every event is a tenth of an encrypted run's time.
    pub(crate) fn secure_settle(&mut self, u: usize) -> Checked {
        if self.users[u]
            .secure
            .as_ref()
            .is_some_and(|s| s.announced.is_some())
            && self.users[u].conn.as_ref().is_some_and(|c| c.authed)
        {
            self.secure_finish_login(u)?;
        }
        let now = self.client_now(u);
        let crashes = self.knobs.client_crash_rate > 0.0;
        let user = &mut self.users[u];
        let Some(s) = user.secure.as_mut() else {
            return Ok(());
        };
        if let Some(session) = s.session.as_mut()
            && session.take_dirty()
        {
            s.unsaved = true;
        }
        if s.unsaved && crashes {
            s.persisted();
            self.stats.e2ee.persists += 1;
        }
        for (room, seq) in std::mem::take(&mut s.acks) {
            if !s.view.contains_key(&room) {
                continue;
            }
            s.marks.insert(room, seq);
            if let Some(c) = user.conn.as_mut() {
                let _ = c.client.ack_room(now, room, seq);
            }
        }
        Ok(())
    }
}
