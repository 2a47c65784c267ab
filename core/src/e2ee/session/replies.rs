//! How a [`SecureSession`] acts on what the server sends.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::{
    Action, EntryKind, Failure, KEY_PACKAGE_STOCK, Purpose, RETRIES, RoomView, SecureEvent,
    SecureSession,
};
use crate::e2ee::{E2eeError, Inbound};
use crate::hub::Reply;
use crate::wire::{ErrorCode, RoomId};

impl SecureSession {
    /// Acts on one message from the server (as [`Reply`], the owned form the adapters'
    /// clients hand out). Messages that are not about groups are ignored.
    pub fn handle_reply(&mut self, reply: &Reply, unix_secs: u64) {
        match reply {
            Reply::Ok { req } => self.on_ok(*req, unix_secs),
            Reply::Error { req, code, .. } => self.on_error(*req, *code, unix_secs),
            Reply::RoomJoined {
                req,
                room,
                members,
                direct,
                ..
            } => self.on_joined(*req, *room, members, *direct, unix_secs),
            Reply::MemberJoined { room, name } => {
                if let Some(v) = self.rooms.get_mut(room)
                    && !v.members.iter().any(|m| **m == **name)
                {
                    v.members.push(String::from(&**name));
                }
            }
            Reply::MemberLeft { room, name } => {
                if let Some(v) = self.rooms.get_mut(room) {
                    v.members.retain(|m| **m != **name);
                    if v.direct {
                        // The peer left the conversation: the next message opens a new one.
                        self.directs.retain(|_, r| r != room);
                    }
                }
                // The next message sent to the room first commits their removal.
                self.flush(*room, unix_secs);
            }
            Reply::RoomLeft { req, room } => {
                self.requests.remove(req);
                self.forget(*room);
            }
            Reply::RoomRemoved { room, .. } => self.forget(*room),
            Reply::RoomMessage {
                room,
                seq,
                from,
                timestamp,
                body,
            } => self.on_entry(*room, *seq, from, *timestamp, body, unix_secs),
            Reply::KeyPackage { req, name, package } => {
                self.on_key_package(*req, name, package, unix_secs)
            }
            Reply::GroupInfo {
                req,
                room,
                group_info,
                ..
            } if self.requests.get(req) == Some(&Purpose::GroupInfo(*room)) => {
                self.requests.remove(req);
                match self.e2ee.join_external(*room, group_info, unix_secs) {
                    Ok(out) => {
                        self.dirty = true;
                        self.act(
                            Action::GroupCommit {
                                room: *room,
                                commit: out.commit,
                                group_info: out.group_info,
                                add: None,
                            },
                            Some(Purpose::JoinCommit(*room)),
                        );
                    }
                    Err(e) => self.fail(Some(*room), None, Failure::Mls(e)),
                }
            }
            Reply::PublicKey { req, name, key }
                if self.requests.get(req)
                    == Some(&Purpose::DirectoryKey(String::from(&**name))) =>
            {
                self.requests.remove(req);
                self.on_directory_key(name, *key, unix_secs);
            }
            Reply::KeyPackagesLow { remaining } => {
                let want = KEY_PACKAGE_STOCK.saturating_sub(usize::from(*remaining));
                if want > 0 {
                    match self.e2ee.key_packages(want, unix_secs) {
                        Ok(packages) => {
                            self.dirty = true;
                            self.act(
                                Action::UploadKeyPackages {
                                    last_resort: false,
                                    packages,
                                },
                                Some(Purpose::Upload { last_resort: false }),
                            );
                        }
                        Err(e) => self.fail(None, None, Failure::Mls(e)),
                    }
                }
            }
            _ => {}
        }
    }

    /// The directory's answer for `name`: the same key as the pinned one confirms it and
    /// what waited is sent; another key, or none, stops sending to them.
    fn on_directory_key(&mut self, name: &str, key: Option<[u8; 32]>, unix_secs: u64) {
        self.asking.remove(name);
        if key.is_some_and(|k| self.e2ee.confirm_key(name, k)) {
            self.dirty = true;
            let rooms: Vec<RoomId> = self.waiting.keys().copied().collect();
            for room in rooms {
                self.flush(room, unix_secs);
            }
        } else {
            self.events.push_back(SecureEvent::KeyDisputed {
                name: String::from(name),
                directory: key,
            });
        }
    }

    fn forget(&mut self, room: RoomId) {
        self.e2ee.forget(room);
        self.rooms.remove(&room);
        self.directs.retain(|_, r| *r != room);
        self.waiting.remove(&room);
        self.requeued.remove(&room);
        self.in_flight.remove(&room);
        self.dirty = true;
    }

    fn on_ok(&mut self, req: u32, unix_secs: u64) {
        match self.requests.remove(&req) {
            Some(Purpose::InitGroup(room)) => {
                self.events
                    .push_back(SecureEvent::Ready { room, peer: None });
                self.flush(room, unix_secs);
            }
            Some(Purpose::Commit(room) | Purpose::AddCommit(room, _)) => {
                self.commit_done(room, true, unix_secs);
            }
            // A member rejoining (its state lost) is answered `Ok`, not `RoomJoined`.
            Some(Purpose::JoinCommit(room)) => self.join_accepted(room, unix_secs),
            Some(Purpose::Upload { last_resort: true }) => {
                self.last_resort_uploaded = true;
                self.dirty = true;
            }
            Some(Purpose::Remove(room)) => {
                // The server removed them: commit the MLS Remove now, not at the next send.
                if let Some(v) = self.rooms.get(&room) {
                    let members: Vec<&str> = v.members.iter().map(|m| &m[..]).collect();
                    let stale = self.e2ee.stale_members(room, &members);
                    if !stale.is_empty() && !self.in_flight.contains(&room) {
                        let names: Vec<&str> = stale.iter().map(|m| &m[..]).collect();
                        match self.e2ee.remove_members(room, &names, unix_secs) {
                            Ok(out) => self.send_commit(room, out),
                            Err(e) => self.fail(Some(room), None, Failure::Mls(e)),
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Our external commit joining `room` was accepted: the group is ready.
    fn join_accepted(&mut self, room: RoomId, unix_secs: u64) {
        self.retries.remove(&room);
        match self.e2ee.commit_accepted(room) {
            Ok(()) => {
                self.dirty = true;
                let peer = self
                    .rooms
                    .get(&room)
                    .filter(|v| v.direct)
                    .and_then(|v| v.members.iter().find(|m| **m != self.me).cloned());
                self.events.push_back(SecureEvent::Ready { room, peer });
                self.flush(room, unix_secs);
            }
            Err(e) => self.fail(Some(room), None, Failure::Mls(e)),
        }
    }

    /// Our Commit for `room` was accepted (or refused): apply (or drop) it, then send
    /// what waits.
    fn commit_done(&mut self, room: RoomId, accepted: bool, unix_secs: u64) {
        self.in_flight.remove(&room);
        let r = if accepted {
            self.e2ee.commit_accepted(room)
        } else {
            self.e2ee.commit_refused(room)
        };
        self.dirty = true;
        if let Err(e) = r {
            self.fail(Some(room), None, Failure::Mls(e));
        }
        if accepted {
            self.retries.remove(&room);
        }
        self.flush(room, unix_secs);
    }

    fn retry(&mut self, room: RoomId) -> bool {
        let n = self.retries.entry(room).or_insert(0);
        *n += 1;
        if *n > RETRIES {
            self.retries.remove(&room);
            self.fail(Some(room), None, Failure::GaveUp);
            return false;
        }
        true
    }

    fn on_error(&mut self, req: u32, code: ErrorCode, unix_secs: u64) {
        let Some(purpose) = self.requests.remove(&req) else {
            return;
        };
        match purpose {
            Purpose::Commit(room) => {
                // StaleEpoch: another Commit won the epoch; it reaches us in the room's
                // order, and what waits is sent (after any Remove it still needs) then.
                self.commit_done(room, false, unix_secs);
                if code != ErrorCode::StaleEpoch || !self.retry(room) {
                    self.waiting.remove(&room);
                    self.fail(Some(room), None, Failure::Server(code));
                }
            }
            Purpose::AddCommit(room, name) => {
                // Lost its epoch to another Commit: add them again from a fresh package
                // once the winner is processed (it comes in the room's order).
                self.commit_done(room, false, unix_secs);
                if code == ErrorCode::StaleEpoch && self.retry(room) {
                    self.invite(room, &name);
                } else {
                    self.fail(Some(room), Some(name), Failure::Server(code));
                }
            }
            Purpose::JoinCommit(room) => {
                let _ = self.e2ee.commit_refused(room);
                self.dirty = true;
                if code == ErrorCode::StaleEpoch && self.retry(room) {
                    self.join_room(room);
                } else {
                    self.fail(Some(room), None, Failure::Server(code));
                }
            }
            Purpose::OpenDirect(peer) => {
                self.e2ee.cancel_direct(&peer);
                self.dirty = true;
                // DirectExists: we are in the pair's room already; its Welcome brings
                // the group, and what waits is sent then.
                if code != ErrorCode::DirectExists {
                    self.waiting_direct.remove(&peer);
                    self.fail(None, Some(peer), Failure::Server(code));
                }
            }
            Purpose::DirectKeyPackage(peer) => {
                self.waiting_direct.remove(&peer);
                self.fail(None, Some(peer), Failure::Server(code));
            }
            Purpose::DirectoryKey(name) => {
                // Asked again by the next message that waits for it.
                self.asking.remove(&name);
                self.fail(None, Some(name), Failure::Server(code));
            }
            Purpose::Message { room, epoch, text } if code == ErrorCode::StaleEpoch => {
                self.message_refused(room, epoch, text, unix_secs);
            }
            Purpose::InitGroup(room)
            | Purpose::GroupInfo(room)
            | Purpose::AddKeyPackage(room)
            | Purpose::Leave(room)
            | Purpose::Remove(room)
            | Purpose::Message { room, .. } => self.fail(Some(room), None, Failure::Server(code)),
            Purpose::Create | Purpose::Upload { .. } => {
                self.fail(None, None, Failure::Server(code))
            }
        }
    }

    /// The server refused a message for its epoch: the room's log holds a Commit this
    /// member had not processed when it encrypted (one that brought someone in, who could
    /// not read it). The text waits, in order, and is encrypted again once that Commit is
    /// processed: now if it already is, else when the next Commit arrives.
    fn message_refused(&mut self, room: RoomId, epoch: u64, text: Vec<u8>, unix_secs: u64) {
        if !self.e2ee.has_group(room) {
            let code = ErrorCode::StaleEpoch;
            return self.fail(Some(room), None, Failure::Server(code));
        }
        let at = self.requeued.entry(room).or_insert(0);
        let queue = self.waiting.entry(room).or_default();
        queue.insert((*at).min(queue.len()), text);
        *at += 1;
        if self.e2ee.epoch(room).is_some_and(|e| e > epoch) {
            self.flush(room, unix_secs);
        }
    }

    /// Our own message came back in the room's order: the server took it, and the oldest
    /// message request for the room is answered.
    fn message_delivered(&mut self, room: RoomId) {
        let req = self.requests.iter().find_map(|(req, p)| {
            matches!(p, Purpose::Message { room: r, .. } if *r == room).then_some(*req)
        });
        if let Some(req) = req {
            self.requests.remove(&req);
        }
    }

    fn on_joined(
        &mut self,
        req: u32,
        room: RoomId,
        members: &[Arc<str>],
        direct: bool,
        unix_secs: u64,
    ) {
        let members: Vec<String> = members.iter().map(|m| String::from(&**m)).collect();
        let peer = members.iter().find(|m| **m != self.me).cloned();
        if direct && let Some(p) = &peer {
            self.directs.insert(p.clone(), room);
        }
        self.rooms.insert(room, RoomView { members, direct });
        match self.requests.remove(&req) {
            Some(Purpose::Create) => match self.e2ee.create_group(room, unix_secs) {
                Ok(group_info) => {
                    self.dirty = true;
                    self.act(
                        Action::InitGroup { room, group_info },
                        Some(Purpose::InitGroup(room)),
                    );
                }
                Err(e) => self.fail(Some(room), None, Failure::Mls(e)),
            },
            Some(Purpose::JoinCommit(room)) => self.join_accepted(room, unix_secs),
            Some(Purpose::OpenDirect(p)) => match self.e2ee.bind_direct(&p, room) {
                Ok(()) => {
                    self.dirty = true;
                    self.directs.insert(p.clone(), room);
                    self.events.push_back(SecureEvent::Ready {
                        room,
                        peer: Some(p.clone()),
                    });
                    self.move_direct_waiting(&p, room, unix_secs);
                }
                Err(e) => self.fail(Some(room), Some(p), Failure::Mls(e)),
            },
            _ => {
                if direct
                    && self.e2ee.has_group(room)
                    && let Some(p) = peer
                {
                    self.move_direct_waiting(&p, room, unix_secs);
                }
            }
        }
    }

    fn move_direct_waiting(&mut self, peer: &str, room: RoomId, unix_secs: u64) {
        if let Some(texts) = self.waiting_direct.remove(peer) {
            self.waiting.entry(room).or_default().extend(texts);
        }
        self.flush(room, unix_secs);
    }

    fn on_key_package(&mut self, req: u32, name: &str, package: &[u8], unix_secs: u64) {
        match self.requests.remove(&req) {
            Some(Purpose::DirectKeyPackage(peer)) if peer == name => {
                match self.e2ee.open_direct(&peer, package, unix_secs) {
                    Ok(open) => {
                        self.dirty = true;
                        self.act(
                            Action::OpenDirect {
                                peer: peer.clone(),
                                group_info: open.group_info,
                                welcome: open.welcome,
                            },
                            Some(Purpose::OpenDirect(peer)),
                        );
                    }
                    Err(E2eeError::KeyChanged { name }) => {
                        self.events.push_back(SecureEvent::KeyChanged { name });
                    }
                    Err(e) => {
                        self.waiting_direct.remove(&peer);
                        self.fail(None, Some(peer), Failure::Mls(e));
                    }
                }
            }
            Some(Purpose::AddKeyPackage(room)) => {
                if self.in_flight.contains(&room) {
                    return self.fail(Some(room), None, Failure::Busy);
                }
                match self.e2ee.add_member(room, package, unix_secs) {
                    Ok(out) => {
                        self.dirty = true;
                        self.in_flight.insert(room);
                        let add = out.welcome.map(|w| (String::from(name), w));
                        self.act(
                            Action::GroupCommit {
                                room,
                                commit: out.commit,
                                group_info: out.group_info,
                                add,
                            },
                            Some(Purpose::AddCommit(room, String::from(name))),
                        );
                    }
                    Err(e) => self.fail(Some(room), None, Failure::Mls(e)),
                }
            }
            _ => {}
        }
    }

    fn on_entry(
        &mut self,
        room: RoomId,
        seq: u64,
        from: &str,
        timestamp: u64,
        body: &[u8],
        unix_secs: u64,
    ) {
        let result = self
            .e2ee
            .handle_room_message(room, seq, from, body, unix_secs);
        let kind = match result {
            Ok(Inbound::Message { plaintext, .. }) => EntryKind::Text(plaintext),
            Ok(Inbound::OwnMessage) => {
                self.message_delivered(room);
                EntryKind::Own
            }
            Ok(Inbound::Joined) => {
                let peer = self.peer_of(room).map(String::from);
                self.events.push_back(SecureEvent::Ready {
                    room,
                    peer: peer.clone(),
                });
                if let Some(p) = peer {
                    self.directs.insert(p.clone(), room);
                    self.move_direct_waiting(&p, room, unix_secs);
                }
                EntryKind::Joined
            }
            Ok(Inbound::Commit { added, removed, .. }) => {
                // Messages refused for their epoch wait for this.
                self.flush(room, unix_secs);
                EntryKind::Change { added, removed }
            }
            Ok(Inbound::OwnCommit) => {
                if self.in_flight.remove(&room) {
                    self.retries.remove(&room);
                }
                self.flush(room, unix_secs);
                EntryKind::Nothing
            }
            Ok(Inbound::Removed) => {
                self.forget(room);
                EntryKind::Change {
                    added: Vec::new(),
                    removed: alloc::vec![self.me.clone()],
                }
            }
            Ok(_) => EntryKind::Nothing,
            Err(e) => EntryKind::Unreadable(e),
        };
        self.dirty = true;
        self.events.push_back(SecureEvent::Entry {
            room,
            seq,
            from: String::from(from),
            timestamp,
            kind,
        });
        // A key change is news when the roster changed, not at every entry after it.
        let roster_changed = matches!(
            self.events.back(),
            Some(SecureEvent::Entry {
                kind: EntryKind::Change { .. } | EntryKind::Joined,
                ..
            })
        );
        if roster_changed
            && self.e2ee.has_group(room)
            && let Some((name, _)) = self.e2ee.key_changes(room).into_iter().next()
        {
            self.events.push_back(SecureEvent::KeyChanged { name });
        }
    }
}
