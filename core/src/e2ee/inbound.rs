//! Room log entries in: Welcomes, Commits and application messages.

use alloc::string::String;
use alloc::vec::Vec;

use mls_rs::group::{CommitEffect, ContentType, ReceivedMessage};
use mls_rs::{MlsMessage, MlsMessageDescription, WireFormat};

use super::identity::name_and_key;
use super::{E2ee, E2eeError, Inbound, MAX_GROUPS, Room};
use crate::crypto::sha256;
use crate::wire::RoomId;

impl E2ee {
    /// Handles one entry of a room's log (a `RoomMessage`: sequence number, the sender the
    /// server names, the body), in the room's order. The body is one MLSMessage: a Welcome
    /// (for us: we join; for someone else: ignored), a Commit (applied; ours is recognized),
    /// or an application message (decrypted). Entries at or below the last sequence number
    /// handled are ignored, so entries delivered again after a restart are harmless.
    ///
    /// The server's `from` must be the MLS sender of an application message or the
    /// committer of a Welcome ([`E2eeError::SenderMismatch`] otherwise). Commits are
    /// applied whoever the server names: refusing a valid Commit would only cut this
    /// member off from the group.
    ///
    /// An error leaves the group as it was and the entry counts as handled, except
    /// [`E2eeError::JoinPending`] (call [`E2ee::commit_accepted`] on `RoomJoined` before
    /// handling the room's entries). [`E2eeError::FutureEpoch`] means a Commit was missed
    /// and the group can no longer be followed: [`E2ee::forget`] it and rejoin.
    pub fn handle_room_message(
        &mut self,
        room: RoomId,
        seq: u64,
        from: &str,
        body: &[u8],
        unix_secs: u64,
    ) -> Result<Inbound, E2eeError> {
        if let Some(r) = self.rooms.get(&room)
            && r.last_seq.is_some_and(|last| seq <= last)
        {
            return Ok(Inbound::Ignored);
        }
        let result = match MlsMessage::from_bytes(body) {
            Err(_) => Err(E2eeError::Malformed),
            Ok(msg) => match msg.wire_format() {
                WireFormat::Welcome => self.handle_welcome(room, from, &msg, unix_secs),
                WireFormat::PublicMessage | WireFormat::PrivateMessage => {
                    self.handle_group_message(room, from, body, msg)
                }
                _ => Err(E2eeError::Malformed),
            },
        };
        if !matches!(result, Err(E2eeError::JoinPending(_)))
            && let Some(r) = self.rooms.get_mut(&room)
        {
            r.last_seq = Some(seq);
        }
        result
    }

    fn handle_welcome(
        &mut self,
        room: RoomId,
        from: &str,
        msg: &MlsMessage,
        unix_secs: u64,
    ) -> Result<Inbound, E2eeError> {
        if self.rooms.contains_key(&room) {
            return Ok(Inbound::Ignored);
        }
        let for_us = msg
            .welcome_key_package_references()
            .iter()
            .any(|r| self.key_packages.contains(r));
        if !for_us {
            return Ok(Inbound::Ignored);
        }
        if self.group_count() >= MAX_GROUPS {
            return Err(E2eeError::TooManyGroups);
        }
        let (mut group, info) = self.client.join_group(None, msg, None)?;
        if self.groups.contains(group.group_id()) {
            return Err(E2eeError::GroupExists(room));
        }
        let sender = group
            .roster()
            .member_with_index(info.sender)
            .ok()
            .and_then(|m| name_and_key(&m.signing_identity))
            .map(|(n, _)| n)
            .unwrap_or_default();
        if sender != from {
            return Err(E2eeError::SenderMismatch {
                claimed: String::from(from),
                actual: sender,
            });
        }
        let r = Room::new(group.group_id().to_vec(), unix_secs);
        self.insert_room(room, r, &mut group)?;
        Ok(Inbound::Joined)
    }

    fn handle_group_message(
        &mut self,
        room: RoomId,
        from: &str,
        body: &[u8],
        msg: MlsMessage,
    ) -> Result<Inbound, E2eeError> {
        let Some(r) = self.rooms.get(&room) else {
            return Ok(Inbound::Ignored);
        };
        if msg.group_id() != Some(r.group_id.as_slice()) {
            return Ok(Inbound::Ignored);
        }
        let hash = sha256(&[body]);
        if r.joining {
            // Before the server's answer, only the echo of our own external commit (when
            // we rejoin a group we were in) concerns us.
            if r.pending.is_some_and(|p| p.hash == hash) {
                self.commit_accepted(room)?;
                self.mark_own_commit_seen(room);
                return Ok(Inbound::OwnCommit);
            }
            // Older epochs are from before the join: nothing we could read.
            if msg.epoch().is_some_and(|e| e < r.epoch) {
                return Ok(Inbound::Ignored);
            }
            return Err(E2eeError::JoinPending(room));
        }
        if from == self.name {
            if r.applied == Some(hash) {
                self.mark_own_commit_seen(room);
                return Ok(Inbound::OwnCommit);
            }
            let application = matches!(
                msg.description(),
                MlsMessageDescription::PrivateProtocolMessage {
                    content_type: ContentType::Application,
                    ..
                }
            );
            if application {
                return Ok(Inbound::OwnMessage);
            }
        }
        let epoch = msg.epoch().unwrap_or(0);
        if epoch > r.epoch {
            return Err(E2eeError::FutureEpoch {
                epoch,
                current: r.epoch,
            });
        }
        let own = r.pending.filter(|p| p.hash == hash);
        let before: Vec<String> = r.roster.iter().map(|(n, _)| n.clone()).collect();
        let gid = r.group_id.clone();
        let mut group = self.load(&gid)?;
        match group.process_incoming_message(msg)? {
            ReceivedMessage::ApplicationMessage(app) => {
                let sender = group
                    .roster()
                    .member_with_index(app.sender_index)
                    .ok()
                    .and_then(|m| name_and_key(&m.signing_identity))
                    .map(|(n, _)| n)
                    .unwrap_or_default();
                if sender != from {
                    return Err(E2eeError::SenderMismatch {
                        claimed: String::from(from),
                        actual: sender,
                    });
                }
                self.save(Some(room), &mut group)?;
                Ok(Inbound::Message {
                    from: sender,
                    plaintext: app.data().to_vec(),
                })
            }
            ReceivedMessage::Commit(desc) => {
                if let CommitEffect::Removed { .. } = desc.effect {
                    self.forget(room);
                    return Ok(Inbound::Removed);
                }
                self.save(Some(room), &mut group)?;
                let Some(r) = self.rooms.get_mut(&room) else {
                    return Err(E2eeError::NoGroup(room));
                };
                // Any Commit processed ends our pending one: applied if it was ours,
                // superseded otherwise.
                r.pending = None;
                if let Some(p) = own {
                    r.last_commit_secs = p.secs;
                    r.sent = 0;
                    return Ok(Inbound::OwnCommit);
                }
                let after: Vec<String> = r.roster.iter().map(|(n, _)| n.clone()).collect();
                let added = after.iter().filter(|n| !before.contains(n)).cloned();
                let removed = before.iter().filter(|n| !after.contains(n)).cloned();
                Ok(Inbound::Commit {
                    epoch: r.epoch,
                    added: added.collect(),
                    removed: removed.collect(),
                })
            }
            _ => Err(E2eeError::Malformed),
        }
    }

    fn mark_own_commit_seen(&mut self, room: RoomId) {
        if let Some(r) = self.rooms.get_mut(&room) {
            r.applied = None;
        }
    }
}
