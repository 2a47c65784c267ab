//! The exported state's format: versioned, length-prefixed, decoded with bounds.
//!
//! ```text
//! state   = magic "COVEMLS1" ‖ u8 version (2) ‖ str8 name ‖ key[32]
//!           ‖ u32 n ‖ n × pin          pin     = str8 name ‖ key[32] ‖ u8 confirmed
//!           ‖ u32 n ‖ n × keypkg       keypkg  = bytes ref ‖ bytes package ‖ bytes init
//!                                                ‖ bytes leaf ‖ u64 expires ‖ u64 order
//!                                                ‖ u8 last_resort
//!           ‖ u32 n ‖ n × group        group   = bytes id ‖ bytes state ‖ u8 n
//!                                                ‖ n × (u64 epoch ‖ bytes data)
//!           ‖ u32 n ‖ n × room         room    = id[6] ‖ bytes group ‖ u8 flags
//!                                                ‖ [u64 last_seq] ‖ u32 sent ‖ u64 last_commit
//!                                                ‖ [hash[32] ‖ u64 secs] ‖ [hash[32]]
//!           ‖ u32 n ‖ n × direct       direct  = str8 peer ‖ bytes group ‖ u64 secs
//! ```
//!
//! Version 1 had no `confirmed` byte (every pin reads as unconfirmed); it is still read.
//! `confirmed` is 1 when the server's key directory (or the user) confirmed the pin, else 0.
//!
//! Integers are big-endian; `bytes` is a `u32` length then the bytes; `str8` a `u8`
//! length then UTF-8. Room flags: bit 0 joining, bit 1 last_seq present, bit 2 pending
//! Commit present, bit 3 applied Commit present; other bits must be 0. Every count is
//! checked against the layer's limits and every stored group must belong to exactly one
//! room or pending direct group.

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;

use mls_rs_core::crypto::HpkeSecretKey;
use mls_rs_core::group::EpochRecord;
use mls_rs_core::key_package::KeyPackageData;
use zeroize::Zeroizing;

use super::storage::{StoredGroup, StoredKeyPackage};
use super::{
    E2ee, MAX_GROUPS, MAX_KEY_PACKAGE_SECRETS, MAX_PENDING_DIRECT, MAX_PINS, PRIOR_EPOCHS,
    PendingCommit, PendingDirect, Room, StateError,
};
use crate::wire::{RoomId, valid_name};

const MAGIC: &[u8; 8] = b"COVEMLS1";
const VERSION: u8 = 2;
/// The first version, without the pins' `confirmed` byte.
const VERSION_1: u8 = 1;

const FLAG_JOINING: u8 = 1;
const FLAG_LAST_SEQ: u8 = 2;
const FLAG_PENDING: u8 = 4;
const FLAG_APPLIED: u8 = 8;

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn raw(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
    fn count(&mut self, n: usize) {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }
    /// Every byte string here is far below 4 GiB (it is held in memory).
    fn bytes(&mut self, b: &[u8]) {
        let len = u32::try_from(b.len()).unwrap_or(u32::MAX);
        self.u32(len);
        self.raw(&b[..len as usize]);
    }
    fn str8(&mut self, s: &str) {
        let len = u8::try_from(s.len()).unwrap_or(u8::MAX);
        self.u8(len);
        self.raw(&s.as_bytes()[..usize::from(len)]);
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StateError> {
        if n > self.0.len() {
            return Err(StateError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], StateError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, StateError> {
        Ok(self.array::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32, StateError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, StateError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    fn count(&mut self, max: usize) -> Result<usize, StateError> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(StateError::TooMany);
        }
        Ok(n)
    }
    fn bytes(&mut self) -> Result<&'a [u8], StateError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn name(&mut self) -> Result<String, StateError> {
        let n = self.u8()?;
        let b = self.take(usize::from(n))?;
        let s = core::str::from_utf8(b).map_err(|_| StateError::Invalid)?;
        if !valid_name(s) {
            return Err(StateError::Invalid);
        }
        Ok(String::from(s))
    }
}

/// Exported state, decoded and checked.
pub(crate) struct Decoded {
    pub(crate) name: String,
    pub(crate) key: [u8; 32],
    pub(crate) pins: BTreeMap<String, [u8; 32]>,
    pub(crate) confirmed: BTreeSet<String>,
    pub(crate) key_packages: Vec<(Vec<u8>, StoredKeyPackage)>,
    pub(crate) groups: Vec<(Vec<u8>, StoredGroup)>,
    pub(crate) rooms: BTreeMap<RoomId, Room>,
    pub(crate) direct: BTreeMap<String, PendingDirect>,
}

pub(crate) fn encode(e: &E2ee) -> Vec<u8> {
    let mut w = Writer(Vec::new());
    w.raw(MAGIC);
    w.u8(VERSION);
    w.str8(&e.name);
    w.raw(&e.key);
    w.count(e.pins.len());
    for (name, key) in &e.pins {
        w.str8(name);
        w.raw(key);
        w.u8(u8::from(e.confirmed.contains(name)));
    }
    let kps = e.key_packages.snapshot();
    w.count(kps.len());
    for (id, kp) in &kps {
        w.bytes(id);
        w.bytes(&kp.data.key_package_bytes);
        w.bytes(&kp.data.init_key);
        w.bytes(&kp.data.leaf_node_key);
        w.u64(kp.data.expiration);
        w.u64(kp.order);
        w.u8(u8::from(kp.last_resort));
    }
    let groups = e.groups.snapshot();
    w.count(groups.len());
    for (id, g) in &groups {
        w.bytes(id);
        w.bytes(&g.state);
        w.u8(u8::try_from(g.epochs.len()).unwrap_or(u8::MAX));
        for ep in g.epochs.iter().take(usize::from(u8::MAX)) {
            w.u64(ep.id);
            w.bytes(&ep.data);
        }
    }
    w.count(e.rooms.len());
    for (room, r) in &e.rooms {
        w.raw(&room.0);
        w.bytes(&r.group_id);
        let mut flags = 0;
        if r.joining {
            flags |= FLAG_JOINING;
        }
        if r.last_seq.is_some() {
            flags |= FLAG_LAST_SEQ;
        }
        if r.pending.is_some() {
            flags |= FLAG_PENDING;
        }
        if r.applied.is_some() {
            flags |= FLAG_APPLIED;
        }
        w.u8(flags);
        if let Some(s) = r.last_seq {
            w.u64(s);
        }
        w.u32(r.sent);
        w.u64(r.last_commit_secs);
        if let Some(p) = r.pending {
            w.raw(&p.hash);
            w.u64(p.secs);
        }
        if let Some(h) = r.applied {
            w.raw(&h);
        }
    }
    w.count(e.direct.len());
    for (peer, d) in &e.direct {
        w.str8(peer);
        w.bytes(&d.group_id);
        w.u64(d.secs);
    }
    w.0
}

pub(crate) fn decode(bytes: &[u8]) -> Result<Decoded, StateError> {
    let mut r = Reader(bytes);
    if r.take(MAGIC.len()).map_err(|_| StateError::BadMagic)? != MAGIC {
        return Err(StateError::BadMagic);
    }
    let version = r.u8()?;
    if version != VERSION && version != VERSION_1 {
        return Err(StateError::UnsupportedVersion(version));
    }
    let name = r.name()?;
    let key = r.array::<32>()?;

    let mut pins = BTreeMap::new();
    let mut confirmed = BTreeSet::new();
    for _ in 0..r.count(MAX_PINS)? {
        let n = r.name()?;
        let k = r.array::<32>()?;
        let flag = if version == VERSION_1 { 0 } else { r.u8()? };
        match flag {
            0 => {}
            1 => {
                confirmed.insert(n.clone());
            }
            _ => return Err(StateError::Invalid),
        }
        if pins.insert(n, k).is_some() {
            return Err(StateError::Invalid);
        }
    }

    let mut key_packages: Vec<(Vec<u8>, StoredKeyPackage)> = Vec::new();
    for _ in 0..r.count(MAX_KEY_PACKAGE_SECRETS)? {
        let id = r.bytes()?.to_vec();
        let package = r.bytes()?.to_vec();
        let init = HpkeSecretKey::from(r.bytes()?.to_vec());
        let leaf = HpkeSecretKey::from(r.bytes()?.to_vec());
        let expiration = r.u64()?;
        let order = r.u64()?;
        let last_resort = match r.u8()? {
            0 => false,
            1 => true,
            _ => return Err(StateError::Invalid),
        };
        if key_packages.iter().any(|(k, _)| *k == id) {
            return Err(StateError::Invalid);
        }
        let data = KeyPackageData::new(package, init, leaf, expiration);
        key_packages.push((
            id,
            StoredKeyPackage {
                data,
                order,
                last_resort,
            },
        ));
    }

    let mut groups: Vec<(Vec<u8>, StoredGroup)> = Vec::new();
    for _ in 0..r.count(MAX_GROUPS)? {
        let id = r.bytes()?.to_vec();
        let state = Zeroizing::new(r.bytes()?.to_vec());
        let n = usize::from(r.u8()?);
        if n > PRIOR_EPOCHS {
            return Err(StateError::TooMany);
        }
        let mut epochs = VecDeque::with_capacity(n);
        for _ in 0..n {
            let epoch = r.u64()?;
            let data = Zeroizing::new(r.bytes()?.to_vec());
            epochs.push_back(EpochRecord::new(epoch, data));
        }
        if groups.iter().any(|(g, _)| *g == id) {
            return Err(StateError::Invalid);
        }
        groups.push((id, StoredGroup { state, epochs }));
    }

    let mut used: BTreeSet<Vec<u8>> = BTreeSet::new();
    let mut claim = |gid: &[u8]| -> Result<(), StateError> {
        if !groups.iter().any(|(g, _)| g == gid) || !used.insert(gid.to_vec()) {
            return Err(StateError::Invalid);
        }
        Ok(())
    };

    let mut rooms = BTreeMap::new();
    for _ in 0..r.count(MAX_GROUPS)? {
        let id = r.array::<6>()?;
        let room = RoomId::parse(&id)
            .filter(|p| p.0 == id)
            .ok_or(StateError::Invalid)?;
        let group_id = r.bytes()?.to_vec();
        claim(&group_id)?;
        let flags = r.u8()?;
        if flags & !(FLAG_JOINING | FLAG_LAST_SEQ | FLAG_PENDING | FLAG_APPLIED) != 0 {
            return Err(StateError::Invalid);
        }
        let last_seq = if flags & FLAG_LAST_SEQ != 0 {
            Some(r.u64()?)
        } else {
            None
        };
        let sent = r.u32()?;
        let last_commit_secs = r.u64()?;
        let pending = if flags & FLAG_PENDING != 0 {
            Some(PendingCommit {
                hash: r.array()?,
                secs: r.u64()?,
            })
        } else {
            None
        };
        let applied = if flags & FLAG_APPLIED != 0 {
            Some(r.array()?)
        } else {
            None
        };
        let joining = flags & FLAG_JOINING != 0;
        if joining && pending.is_none() {
            return Err(StateError::Invalid);
        }
        let mut room_state = Room::new(group_id, last_commit_secs);
        room_state.joining = joining;
        room_state.last_seq = last_seq;
        room_state.sent = sent;
        room_state.pending = pending;
        room_state.applied = applied;
        if rooms.insert(room, room_state).is_some() {
            return Err(StateError::Invalid);
        }
    }

    let mut direct = BTreeMap::new();
    for _ in 0..r.count(MAX_PENDING_DIRECT)? {
        let peer = r.name()?;
        let group_id = r.bytes()?.to_vec();
        claim(&group_id)?;
        let secs = r.u64()?;
        if direct
            .insert(peer, PendingDirect { group_id, secs })
            .is_some()
        {
            return Err(StateError::Invalid);
        }
    }
    if used.len() != groups.len() || rooms.len() + direct.len() > MAX_GROUPS {
        return Err(StateError::Invalid);
    }
    if !r.0.is_empty() {
        return Err(StateError::TrailingBytes);
    }
    Ok(Decoded {
        name,
        key,
        pins,
        confirmed,
        key_packages,
        groups,
        rooms,
        direct,
    })
}
