//! End-to-end encryption with MLS (RFC 9420): cove's own mls-rs crypto provider and the
//! client's groups. Needs the `e2ee` feature (and an allocator).
//!
//! [`E2ee`] is one account's MLS state, sans-IO: room log entries go in as bytes
//! ([`E2ee::handle_room_message`]), bytes to send come out ([`CommitOut`], [`DirectOpen`],
//! [`E2ee::encrypt`]), every random draw comes from the injected [`MlsCrypto`], and every
//! time is the caller's (`unix_secs`). A room (or a direct conversation) is one MLS group;
//! its Commits, Welcomes and application messages travel as ordinary room messages.
//!
//! # Persisting
//!
//! [`E2ee::export_state`] returns everything needed after a restart. Write it before
//! acknowledging the room messages that changed it: a group that misses a Commit can read
//! nothing after it. The state holds secret keys (the account's signature key among
//! them): keep it like the identity.
//!
//! # Own Commits
//!
//! A Commit is not applied when it is made: the server orders Commits, one per epoch. It is
//! applied when the server says `Ok` ([`E2ee::commit_accepted`]) or when its echo comes back
//! in the room's order, whichever comes first; on `StaleEpoch` ([`E2ee::commit_refused`])
//! it is dropped, the winner arrives in the room stream, and the app makes it again.

pub mod provider;
pub mod session;

mod config;
mod error;
mod groups;
mod identity;
mod inbound;
mod rules;
mod safety;
mod state;
mod storage;
mod types;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_flows;
#[cfg(test)]
mod tests_state;

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec::Vec;

use mls_rs::client_builder::{
    BaseConfig, WithCryptoProvider, WithGroupStateStorage, WithIdentityProvider,
    WithKeyPackageRepo, WithMlsRules,
};
use mls_rs::extension::recommended::LastResortKeyPackageExt;
use mls_rs::identity::SigningIdentity;
use mls_rs::identity::basic::BasicCredential;
use mls_rs::time::MlsTime;
use mls_rs::{Client, ExtensionList, Group};

use crate::crypto::Identity;
use crate::wire::{RoomId, valid_name};

pub use config::*;
pub use error::{E2eeError, MlsFailure, StateError};
pub use identity::{CoveIdentity, ED25519_KEY_LEN};
pub use provider::MlsCrypto;
pub use rules::{CoveRules, RuleError};
pub use safety::safety_number;
pub use storage::{GroupStore, KeyPackageStore};
pub use types::{CommitOut, DirectOpen, Inbound};

/// The mls-rs client configuration cove uses.
pub type CoveConfig = WithMlsRules<
    CoveRules,
    WithIdentityProvider<
        CoveIdentity,
        WithCryptoProvider<
            MlsCrypto,
            WithGroupStateStorage<GroupStore, WithKeyPackageRepo<KeyPackageStore, BaseConfig>>,
        >,
    >,
>;

type CoveGroup = Group<CoveConfig>;

/// A commit of ours waiting for the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PendingCommit {
    /// SHA-256 of the serialized Commit, to recognize its echo.
    hash: [u8; 32],
    /// When it was made.
    secs: u64,
}

/// One room's group, as this layer tracks it.
#[derive(Clone, Debug)]
pub(crate) struct Room {
    group_id: Vec<u8>,
    /// An external join that waits for the server's answer.
    joining: bool,
    /// The last room sequence number handled.
    last_seq: Option<u64>,
    /// Application messages sent since our last Commit.
    sent: u32,
    /// When we last committed (or joined).
    last_commit_secs: u64,
    /// Our Commit waiting for the server.
    pending: Option<PendingCommit>,
    /// Our Commit applied on the server's `Ok`, whose echo has not come back yet.
    applied: Option<[u8; 32]>,
    /// Cache: the group's epoch.
    epoch: u64,
    /// Cache: the roster's names and keys.
    roster: Vec<(String, [u8; 32])>,
}

impl Room {
    fn new(group_id: Vec<u8>, last_commit_secs: u64) -> Room {
        Room {
            group_id,
            joining: false,
            last_seq: None,
            sent: 0,
            last_commit_secs,
            pending: None,
            applied: None,
            epoch: 0,
            roster: Vec::new(),
        }
    }
}

/// A direct group waiting for the server to name its room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PendingDirect {
    group_id: Vec<u8>,
    secs: u64,
}

/// One account's MLS state: its groups (by room), its key-package secrets, and the contact
/// keys it has pinned. See the [module documentation](self).
pub struct E2ee {
    identity: Identity,
    name: String,
    key: [u8; 32],
    client: Client<CoveConfig>,
    crypto: MlsCrypto,
    groups: GroupStore,
    key_packages: KeyPackageStore,
    config: E2eeConfig,
    rooms: BTreeMap<RoomId, Room>,
    direct: BTreeMap<String, PendingDirect>,
    pins: BTreeMap<String, [u8; 32]>,
    /// Names whose pinned key the server's directory gave too (or the user accepted, or
    /// the server vouched for by handing out their KeyPackage).
    confirmed: BTreeSet<String>,
}

impl core::fmt::Debug for E2ee {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("E2ee")
            .field("name", &self.name)
            .field("rooms", &self.rooms.keys().collect::<Vec<_>>())
            .field("direct", &self.direct.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

pub(crate) fn clamp_time(unix_secs: u64) -> MlsTime {
    MlsTime::from(unix_secs.min(MAX_UNIX_SECS))
}

fn build_client(
    identity: &Identity,
    name: &str,
    crypto: &MlsCrypto,
    groups: &GroupStore,
    key_packages: &KeyPackageStore,
    config: &E2eeConfig,
) -> Client<CoveConfig> {
    let (secret, public) = provider::signature_key_from_identity(identity);
    let credential = BasicCredential::new(name.as_bytes().to_vec()).into_credential();
    let signing_identity = SigningIdentity::new(credential, public);
    let lifetime = config
        .key_package_lifetime_secs
        .min(MAX_UNIX_SECS)
        .saturating_add(KEY_PACKAGE_SKEW_SECS);
    Client::builder()
        .key_package_repo(key_packages.clone())
        .group_state_storage(groups.clone())
        .crypto_provider(crypto.clone())
        .identity_provider(CoveIdentity)
        .mls_rules(CoveRules)
        .key_package_lifetime(core::time::Duration::from_secs(lifetime))
        .signing_identity(signing_identity, secret, config.cipher_suite)
        .build()
}

impl E2ee {
    /// A fresh state for the account `name` whose identity is `identity`, drawing every
    /// random value from `crypto`. Uses [`E2eeConfig::default`] (see [`E2ee::configure`]).
    pub fn new(identity: &Identity, name: &str, crypto: MlsCrypto) -> Result<E2ee, E2eeError> {
        if !valid_name(name) {
            return Err(E2eeError::InvalidName);
        }
        let groups = GroupStore::default();
        let key_packages = KeyPackageStore::default();
        let config = E2eeConfig::default();
        let client = build_client(identity, name, &crypto, &groups, &key_packages, &config);
        // The MLS signature key (the real Ed25519 key of the identity's secret).
        let (_, public) = provider::signature_key_from_identity(identity);
        let key: [u8; 32] = public
            .as_bytes()
            .try_into()
            .map_err(|_| E2eeError::Crypto)?;
        let mut pins = BTreeMap::new();
        pins.insert(String::from(name), key);
        let mut confirmed = BTreeSet::new();
        confirmed.insert(String::from(name));
        Ok(E2ee {
            identity: identity.clone(),
            name: String::from(name),
            key,
            client,
            crypto,
            groups,
            key_packages,
            config,
            rooms: BTreeMap::new(),
            direct: BTreeMap::new(),
            pins,
            confirmed,
        })
    }

    /// The state [`E2ee::export_state`] wrote, for the same account. Corrupt or foreign
    /// state is an error ([`E2eeError::State`]).
    pub fn restore(
        identity: &Identity,
        name: &str,
        crypto: MlsCrypto,
        state: &[u8],
    ) -> Result<E2ee, E2eeError> {
        let mut e = E2ee::new(identity, name, crypto)?;
        let decoded = state::decode(state)?;
        if decoded.name != e.name || decoded.key != e.key {
            return Err(StateError::WrongAccount.into());
        }
        for (id, kp) in decoded.key_packages {
            e.key_packages.put(id, kp);
        }
        for (id, g) in decoded.groups {
            e.groups.put(id, g);
        }
        e.pins = decoded.pins;
        e.confirmed.extend(decoded.confirmed);
        e.direct = decoded.direct;
        e.rooms = decoded.rooms;
        let rooms: Vec<RoomId> = e.rooms.keys().copied().collect();
        for room in rooms {
            e.refresh(room).map_err(|_| StateError::Group)?;
        }
        for d in e.direct.values() {
            e.load(&d.group_id).map_err(|_| StateError::Group)?;
        }
        Ok(e)
    }

    /// Replaces the settings (the cipher suite and key-package lifetime apply to what is
    /// made from now on).
    pub fn configure(&mut self, config: E2eeConfig) {
        self.config = config;
        self.client = build_client(
            &self.identity,
            &self.name,
            &self.crypto,
            &self.groups,
            &self.key_packages,
            &self.config,
        );
    }

    /// The current settings.
    pub fn config(&self) -> E2eeConfig {
        self.config
    }

    /// The account's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Everything needed after a restart: groups (with their pending Commits and a few prior
    /// epochs), key-package secrets, pinned keys, the room map and pending direct groups, in
    /// a versioned format ([`E2ee::restore`] reads it). It holds secret keys.
    pub fn export_state(&self) -> Vec<u8> {
        state::encode(self)
    }

    /// `n` fresh key packages (serialized MLSMessage(KeyPackage)) for `UploadKeyPackages`:
    /// credential Basic(name), signature key the account's Ed25519 key, valid from an hour
    /// before `unix_secs` for the configured lifetime. Their secrets are kept (at most
    /// [`MAX_KEY_PACKAGE_SECRETS`]: expired ones, then the oldest, make room).
    pub fn key_packages(&mut self, n: usize, unix_secs: u64) -> Result<Vec<Vec<u8>>, E2eeError> {
        if n > MAX_KEY_PACKAGE_SECRETS - MAX_LAST_RESORT {
            return Err(E2eeError::TooManyKeyPackages);
        }
        self.key_packages.prune(unix_secs, n);
        let not_before = clamp_time(unix_secs.saturating_sub(KEY_PACKAGE_SKEW_SECS));
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let msg = self.client.generate_key_package_message(
                ExtensionList::new(),
                ExtensionList::new(),
                Some(not_before),
            )?;
            out.push(msg.to_bytes()?);
        }
        Ok(out)
    }

    /// A last-resort key package (reused by the server when the others are gone, and
    /// usable for several Welcomes). The previous one's secret is kept too
    /// ([`MAX_LAST_RESORT`]), for Welcomes made from it that are still on their way.
    pub fn last_resort_key_package(&mut self, unix_secs: u64) -> Result<Vec<u8>, E2eeError> {
        self.key_packages.prune(unix_secs, 1);
        let not_before = clamp_time(unix_secs.saturating_sub(KEY_PACKAGE_SKEW_SECS));
        let mut ext = ExtensionList::new();
        ext.set_from(LastResortKeyPackageExt)
            .map_err(mls_rs::error::MlsError::from)?;
        let _ = self.key_packages.take_last_inserted();
        let msg = self.client.generate_key_package_message(
            ext,
            ExtensionList::new(),
            Some(not_before),
        )?;
        if let Some(id) = self.key_packages.take_last_inserted() {
            self.key_packages.mark_last_resort(&id, MAX_LAST_RESORT);
        }
        Ok(msg.to_bytes()?)
    }

    /// The roster of the room's group: each member's name and Ed25519 key (empty if there
    /// is no group).
    pub fn members(&self, room: RoomId) -> Vec<(String, [u8; 32])> {
        self.rooms
            .get(&room)
            .map(|r| r.roster.clone())
            .unwrap_or_default()
    }

    /// Roster members the server no longer counts as members of the room (`hub_members`):
    /// the next sender commits their removal ([`E2ee::remove_members`]).
    pub fn stale_members(&self, room: RoomId, hub_members: &[&str]) -> Vec<String> {
        let Some(r) = self.rooms.get(&room) else {
            return Vec::new();
        };
        r.roster
            .iter()
            .filter(|(n, _)| *n != self.name && !hub_members.contains(&n.as_str()))
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Whether it is time for an [`E2ee::update`] in this room, by the [`UpdatePolicy`]:
    /// enough messages sent, or enough time passed, since our last Commit (or joining).
    /// False while a Commit of ours waits for the server.
    pub fn needs_update(&self, room: RoomId, now_unix_secs: u64) -> bool {
        let Some(r) = self.rooms.get(&room) else {
            return false;
        };
        if r.joining || r.pending.is_some() {
            return false;
        }
        let p = self.config.update;
        r.sent >= p.max_messages || now_unix_secs.saturating_sub(r.last_commit_secs) >= p.max_secs
    }

    /// Whether the room has an active group here (an external join waiting for the server
    /// does not count).
    pub fn has_group(&self, room: RoomId) -> bool {
        self.rooms.get(&room).is_some_and(|r| !r.joining)
    }

    /// The epoch of the room's active group.
    pub fn epoch(&self, room: RoomId) -> Option<u64> {
        self.rooms
            .get(&room)
            .filter(|r| !r.joining)
            .map(|r| r.epoch)
    }

    /// The user accepted `key` as `name`'s key (after comparing safety numbers): it is
    /// pinned, and groups with `name` in them may be sent to again.
    pub fn accept_key(&mut self, name: &str, key: [u8; 32]) {
        if self.pins.contains_key(name) || self.pins.len() < MAX_PINS {
            self.pins.insert(String::from(name), key);
            self.confirmed.insert(String::from(name));
        }
    }

    /// The server's key directory gave `key` for `name` (`PublicKey`). True if it is the
    /// key pinned for them: the pin is confirmed and sending to groups with them may go
    /// on. False if it is not (the group's credential and the directory disagree: treat
    /// it as a changed key, [`E2eeError::KeyChanged`]) or nothing is pinned.
    pub fn confirm_key(&mut self, name: &str, key: [u8; 32]) -> bool {
        let agrees = self.pins.get(name) == Some(&key);
        if agrees {
            self.confirmed.insert(String::from(name));
        }
        agrees
    }

    /// Whether the key pinned for `name` is confirmed by the server's directory or the user.
    pub fn is_confirmed(&self, name: &str) -> bool {
        self.confirmed.contains(name)
    }

    /// The key pinned for `name`.
    pub fn pinned_key(&self, name: &str) -> Option<[u8; 32]> {
        self.pins.get(name).copied()
    }

    /// Members of the room whose key is not the one pinned for their name, with the new key.
    pub fn key_changes(&self, room: RoomId) -> Vec<(String, [u8; 32])> {
        let Some(r) = self.rooms.get(&room) else {
            return Vec::new();
        };
        r.roster
            .iter()
            .filter(|(n, k)| self.pins.get(n).is_some_and(|p| p != k))
            .cloned()
            .collect()
    }

    /// Drops the room's group from this account (after leaving the room, after the server
    /// refused `InitGroup`, or before rejoining a group this member can no longer follow).
    pub fn forget(&mut self, room: RoomId) {
        if let Some(r) = self.rooms.remove(&room) {
            self.groups.delete(&r.group_id);
        }
    }

    fn group_count(&self) -> usize {
        self.rooms.len() + self.direct.len()
    }

    fn load(&self, group_id: &[u8]) -> Result<CoveGroup, E2eeError> {
        Ok(self.client.load_group(group_id)?)
    }

    fn room(&self, room: RoomId) -> Result<&Room, E2eeError> {
        self.rooms
            .get(&room)
            .filter(|r| !r.joining)
            .ok_or(E2eeError::NoGroup(room))
    }

    /// Reloads the cached epoch and roster of a room from its stored group.
    fn refresh(&mut self, room: RoomId) -> Result<(), E2eeError> {
        let gid = match self.rooms.get(&room) {
            Some(r) => r.group_id.clone(),
            None => return Err(E2eeError::NoGroup(room)),
        };
        let group = self.load(&gid)?;
        let roster = roster_of(&group);
        if let Some(r) = self.rooms.get_mut(&room) {
            r.epoch = group.current_epoch();
            r.roster = roster;
        }
        Ok(())
    }

    /// Writes a group to the store and refreshes the room's cache and the pins.
    fn save(&mut self, room: Option<RoomId>, group: &mut CoveGroup) -> Result<(), E2eeError> {
        group.write_to_storage()?;
        let roster = roster_of(group);
        for (n, k) in &roster {
            self.observe(n, *k);
        }
        if let Some(r) = room.and_then(|room| self.rooms.get_mut(&room)) {
            r.epoch = group.current_epoch();
            r.roster = roster;
        }
        Ok(())
    }

    /// Pins `name`'s key on first sight, as the server's directory gives it (the server
    /// handed out their KeyPackage, checked against their account key); false if a
    /// different key is pinned.
    fn observe_vouched(&mut self, name: &str, key: [u8; 32]) -> bool {
        let ok = self.observe(name, key);
        if ok && self.pins.contains_key(name) {
            self.confirmed.insert(String::from(name));
        }
        ok
    }

    /// Pins `name`'s key on first sight; false if a different key is pinned.
    fn observe(&mut self, name: &str, key: [u8; 32]) -> bool {
        match self.pins.get(name) {
            Some(k) => *k == key,
            None => {
                if self.pins.len() < MAX_PINS {
                    self.pins.insert(String::from(name), key);
                }
                true
            }
        }
    }
}

/// The names and keys of a group's members, in leaf order.
fn roster_of(group: &CoveGroup) -> Vec<(String, [u8; 32])> {
    group
        .roster()
        .members_iter()
        .filter_map(|m| identity::name_and_key(&m.signing_identity))
        .collect()
}
