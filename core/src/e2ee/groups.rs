//! Making and changing groups: create, direct groups, external joins, Commits (add, remove,
//! update) and the server's answers to them, and encrypting.

use alloc::string::String;
use alloc::vec::Vec;

use mls_rs::error::MlsError;
use mls_rs::extension::built_in::RatchetTreeExt;
use mls_rs::group::CommitOutput;
use mls_rs::{CipherSuiteProvider, CryptoProvider, ExtensionList, MlsMessage};

use super::identity::name_and_key;
use super::{
    CommitOut, CoveGroup, DirectOpen, E2ee, E2eeError, GROUP_ID_LEN, MAX_GROUPS,
    MAX_PENDING_DIRECT, MAX_PLAINTEXT, PendingCommit, PendingDirect, Room, clamp_time,
};
use crate::crypto::sha256;
use crate::wire::{MAX_BODY_LEN, RoomId, valid_name};

/// A key package's message, name and key.
fn parse_key_package(bytes: &[u8]) -> Result<(MlsMessage, String, [u8; 32]), E2eeError> {
    let msg = MlsMessage::from_bytes(bytes).map_err(|_| E2eeError::Malformed)?;
    let kp = msg.as_key_package().ok_or(E2eeError::Malformed)?;
    let (name, key) = name_and_key(kp.signing_identity()).ok_or(E2eeError::Malformed)?;
    Ok((msg, name, key))
}

impl E2ee {
    /// Makes the room's group (epoch 0, this account its only member) and returns its
    /// GroupInfo, with the ratchet tree and the external public key, for `InitGroup`. The
    /// group is active at once; if the server refuses `InitGroup`, call [`E2ee::forget`].
    pub fn create_group(&mut self, room: RoomId, unix_secs: u64) -> Result<Vec<u8>, E2eeError> {
        self.check_new_room(room)?;
        let gid = self.random_group_id()?;
        let mut group = self.client.create_group_with_id(
            gid.clone(),
            ExtensionList::new(),
            ExtensionList::new(),
            Some(clamp_time(unix_secs)),
        )?;
        let info = group
            .group_info_message_allowing_ext_commit(true)?
            .to_bytes()?;
        self.insert_room(room, Room::new(gid, unix_secs), &mut group)?;
        Ok(info)
    }

    /// Makes a group of two with `peer`, from the key package the server handed out for
    /// them, for `OpenDirect`. The group waits under the peer's name until the server
    /// names its room ([`E2ee::bind_direct`]) or refuses it ([`E2ee::cancel_direct`]).
    pub fn open_direct(
        &mut self,
        peer: &str,
        peer_key_package: &[u8],
        unix_secs: u64,
    ) -> Result<DirectOpen, E2eeError> {
        if !valid_name(peer) {
            return Err(E2eeError::InvalidName);
        }
        if peer == self.name {
            return Err(E2eeError::AlreadyMember(String::from(peer)));
        }
        if self.direct.contains_key(peer) {
            return Err(E2eeError::DirectPending(String::from(peer)));
        }
        if self.group_count() >= MAX_GROUPS || self.direct.len() >= MAX_PENDING_DIRECT {
            return Err(E2eeError::TooManyGroups);
        }
        let (kp, name, key) = parse_key_package(peer_key_package)?;
        if name != peer {
            return Err(E2eeError::KeyPackageMismatch {
                expected: String::from(peer),
                found: name,
            });
        }
        if !self.observe_vouched(&name, key) {
            return Err(E2eeError::KeyChanged { name });
        }
        let gid = self.random_group_id()?;
        let time = clamp_time(unix_secs);
        let mut group = self.client.create_group_with_id(
            gid.clone(),
            ExtensionList::new(),
            ExtensionList::new(),
            Some(time),
        )?;
        let out = group
            .commit_builder()
            .add_member(kp)?
            .commit_time(time)
            .build()?;
        group.apply_pending_commit()?;
        let welcome = out
            .welcome_messages
            .first()
            .ok_or(MlsError::InvalidWelcomeMessage)?
            .to_bytes()?;
        let group_info = group
            .group_info_message_allowing_ext_commit(true)?
            .to_bytes()?;
        self.save(None, &mut group)?;
        self.direct.insert(
            String::from(peer),
            PendingDirect {
                group_id: gid,
                secs: unix_secs,
            },
        );
        Ok(DirectOpen {
            group_info,
            welcome,
        })
    }

    /// The server made the direct room for the group opened with `peer`: it becomes that
    /// room's group.
    pub fn bind_direct(&mut self, peer: &str, room: RoomId) -> Result<(), E2eeError> {
        if self.rooms.contains_key(&room) {
            return Err(E2eeError::GroupExists(room));
        }
        let d = self
            .direct
            .remove(peer)
            .ok_or_else(|| E2eeError::NoDirect(String::from(peer)))?;
        self.rooms
            .insert(room, Room::new(d.group_id.clone(), d.secs));
        if let Err(e) = self.refresh(room) {
            self.rooms.remove(&room);
            self.direct.insert(String::from(peer), d);
            return Err(e);
        }
        Ok(())
    }

    /// Drops the direct group opened with `peer` (the server answered `DirectExists`: the
    /// pair's room exists, and the Welcome of whoever opened it arrives in it).
    pub fn cancel_direct(&mut self, peer: &str) {
        if let Some(d) = self.direct.remove(peer) {
            self.groups.delete(&d.group_id);
        }
    }

    /// Joins the room's group with an external commit, from the GroupInfo the server gave
    /// (`GetGroupInfo`). If the group still has a member of our name (this account before
    /// it lost its state), the commit removes it. The join waits for the server: it is
    /// active after [`E2ee::commit_accepted`] (the server's `RoomJoined`), and dropped by
    /// [`E2ee::commit_refused`].
    pub fn join_external(
        &mut self,
        room: RoomId,
        group_info: &[u8],
        unix_secs: u64,
    ) -> Result<CommitOut, E2eeError> {
        self.check_new_room(room)?;
        let msg = MlsMessage::from_bytes(group_info).map_err(|_| E2eeError::Malformed)?;
        let info = msg.as_group_info().ok_or(E2eeError::Malformed)?;
        let old_leaf = info
            .extensions()
            .get_as::<RatchetTreeExt>()
            .map_err(MlsError::from)?
            .and_then(|ext| {
                ext.tree_data.roster().members_iter().find_map(|m| {
                    let (n, _) = name_and_key(&m.signing_identity)?;
                    (n == self.name).then_some(m.index)
                })
            });
        let mut builder = self.client.external_commit_builder()?;
        if let Some(index) = old_leaf {
            builder = builder.with_removal(index);
        }
        let (mut group, commit) = builder.build(msg)?;
        if self.groups.contains(group.group_id()) {
            return Err(E2eeError::GroupExists(room));
        }
        let commit = commit.to_bytes()?;
        let group_info = group
            .group_info_message_allowing_ext_commit(true)?
            .to_bytes()?;
        let mut r = Room::new(group.group_id().to_vec(), unix_secs);
        r.joining = true;
        r.pending = Some(PendingCommit {
            hash: sha256(&[&commit]),
            secs: unix_secs,
        });
        self.insert_room(room, r, &mut group)?;
        Ok(CommitOut {
            commit,
            group_info,
            welcome: None,
        })
    }

    /// A Commit adding the owner of `key_package` (fetched with `FetchKeyPackage`). Refused
    /// if their key differs from the one pinned for their name ([`E2eeError::KeyChanged`]).
    pub fn add_member(
        &mut self,
        room: RoomId,
        key_package: &[u8],
        unix_secs: u64,
    ) -> Result<CommitOut, E2eeError> {
        let mut group = self.commit_ready(room)?;
        let (kp, name, key) = parse_key_package(key_package)?;
        if self.room(room)?.roster.iter().any(|(n, _)| *n == name) {
            return Err(E2eeError::AlreadyMember(name));
        }
        if !self.observe_vouched(&name, key) {
            return Err(E2eeError::KeyChanged { name });
        }
        let out = group
            .commit_builder()
            .add_member(kp)?
            .commit_time(clamp_time(unix_secs))
            .build()?;
        self.finish_commit(room, &mut group, out, unix_secs)
    }

    /// A Commit removing the members named (the server says they left or were removed).
    pub fn remove_members(
        &mut self,
        room: RoomId,
        names: &[&str],
        unix_secs: u64,
    ) -> Result<CommitOut, E2eeError> {
        let mut group = self.commit_ready(room)?;
        let mut indices = Vec::with_capacity(names.len());
        for name in names {
            let index = group
                .roster()
                .members_iter()
                .find(|m| name_and_key(&m.signing_identity).is_some_and(|(n, _)| n == *name))
                .map(|m| m.index)
                .ok_or_else(|| E2eeError::NotMember(String::from(*name)))?;
            indices.push(index);
        }
        let mut builder = group.commit_builder().commit_time(clamp_time(unix_secs));
        for index in indices {
            builder = builder.remove_member(index)?;
        }
        let out = builder.build()?;
        self.finish_commit(room, &mut group, out, unix_secs)
    }

    /// An empty Commit with a fresh update path: new keys for this member, healing the
    /// group after a compromise ([`E2ee::needs_update`] says when).
    pub fn update(&mut self, room: RoomId, unix_secs: u64) -> Result<CommitOut, E2eeError> {
        let mut group = self.commit_ready(room)?;
        let out = group
            .commit_builder()
            .commit_time(clamp_time(unix_secs))
            .build()?;
        self.finish_commit(room, &mut group, out, unix_secs)
    }

    /// The server accepted our pending Commit (`Ok`), or our external join (`RoomJoined`):
    /// it is applied now, and its echo in the room stream is recognized later. Nothing
    /// happens if nothing is pending (the echo came first).
    pub fn commit_accepted(&mut self, room: RoomId) -> Result<(), E2eeError> {
        let Some(r) = self.rooms.get(&room) else {
            return Ok(());
        };
        let Some(p) = r.pending else {
            return Ok(());
        };
        if !r.joining {
            let mut group = self.load(&r.group_id)?;
            if group.has_pending_commit() {
                group.apply_pending_commit()?;
            }
            self.save(Some(room), &mut group)?;
        }
        if let Some(r) = self.rooms.get_mut(&room) {
            r.joining = false;
            r.pending = None;
            r.applied = Some(p.hash);
            r.last_commit_secs = p.secs;
            r.sent = 0;
        }
        Ok(())
    }

    /// The server refused our pending Commit (`StaleEpoch`) or external join: it is
    /// dropped. Process the winner from the room stream, then make the change again.
    pub fn commit_refused(&mut self, room: RoomId) -> Result<(), E2eeError> {
        let Some(r) = self.rooms.get(&room) else {
            return Ok(());
        };
        if r.joining {
            self.forget(room);
            return Ok(());
        }
        if r.pending.is_none() {
            return Ok(());
        }
        let mut group = self.load(&r.group_id)?;
        group.clear_pending_commit();
        self.save(Some(room), &mut group)?;
        if let Some(r) = self.rooms.get_mut(&room) {
            r.pending = None;
        }
        Ok(())
    }

    /// Encrypts an application message for the room (the body of a `RoomMessage`). Refused
    /// while a member's key is not the one pinned for their name ([`E2eeError::KeyChanged`]:
    /// compare safety numbers, then [`E2ee::accept_key`]), or the server's key directory
    /// has not confirmed it yet ([`E2eeError::Unconfirmed`]: ask with `GetPublicKey`, then
    /// [`E2ee::confirm_key`]).
    pub fn encrypt(&mut self, room: RoomId, plaintext: &[u8]) -> Result<Vec<u8>, E2eeError> {
        let r = self.room(room)?;
        if plaintext.len() > MAX_PLAINTEXT {
            return Err(E2eeError::TooLarge);
        }
        if let Some((name, _)) = r
            .roster
            .iter()
            .find(|(n, k)| self.pins.get(n).is_some_and(|p| p != k))
        {
            return Err(E2eeError::KeyChanged { name: name.clone() });
        }
        if let Some((name, _)) = r.roster.iter().find(|(n, _)| !self.confirmed.contains(n)) {
            return Err(E2eeError::Unconfirmed { name: name.clone() });
        }
        let mut group = self.load(&r.group_id)?;
        let msg = group
            .encrypt_application_message(plaintext, Vec::new())?
            .to_bytes()?;
        if msg.len() > MAX_BODY_LEN {
            return Err(E2eeError::TooLarge);
        }
        self.save(Some(room), &mut group)?;
        if let Some(r) = self.rooms.get_mut(&room) {
            r.sent = r.sent.saturating_add(1);
        }
        Ok(msg)
    }

    fn check_new_room(&self, room: RoomId) -> Result<(), E2eeError> {
        if self.rooms.contains_key(&room) {
            return Err(E2eeError::GroupExists(room));
        }
        if self.group_count() >= MAX_GROUPS {
            return Err(E2eeError::TooManyGroups);
        }
        Ok(())
    }

    pub(super) fn insert_room(
        &mut self,
        room: RoomId,
        r: Room,
        group: &mut CoveGroup,
    ) -> Result<(), E2eeError> {
        self.rooms.insert(room, r);
        if let Err(e) = self.save(Some(room), group) {
            self.rooms.remove(&room);
            return Err(e);
        }
        Ok(())
    }

    /// The room's group, if it may commit now.
    fn commit_ready(&self, room: RoomId) -> Result<CoveGroup, E2eeError> {
        let r = self.room(room)?;
        if r.pending.is_some() {
            return Err(E2eeError::CommitPending(room));
        }
        self.load(&r.group_id)
    }

    fn finish_commit(
        &mut self,
        room: RoomId,
        group: &mut CoveGroup,
        out: CommitOutput,
        unix_secs: u64,
    ) -> Result<CommitOut, E2eeError> {
        let commit = out.commit_message.to_bytes()?;
        let group_info = out
            .external_commit_group_info
            .as_ref()
            .ok_or(MlsError::InvalidGroupInfo)?
            .to_bytes()?;
        let welcome = out
            .welcome_messages
            .first()
            .map(MlsMessage::to_bytes)
            .transpose()?;
        self.save(Some(room), group)?;
        if let Some(r) = self.rooms.get_mut(&room) {
            r.pending = Some(PendingCommit {
                hash: sha256(&[&commit]),
                secs: unix_secs,
            });
        }
        Ok(CommitOut {
            commit,
            group_info,
            welcome,
        })
    }

    /// A fresh group ID from the injected crypto provider (redrawn if it names a group
    /// already held, which only a broken generator does).
    fn random_group_id(&self) -> Result<Vec<u8>, E2eeError> {
        let cs = self
            .crypto
            .cipher_suite_provider(self.config.cipher_suite)
            .ok_or(E2eeError::Crypto)?;
        for _ in 0..4 {
            let gid = cs
                .random_bytes_vec(GROUP_ID_LEN)
                .map_err(|_| E2eeError::Crypto)?;
            if !self.groups.contains(&gid) {
                return Ok(gid);
            }
        }
        Err(E2eeError::Crypto)
    }
}
