//! End-to-end encrypted users: every `e2ee_every`-th user runs a
//! [`SecureSession`](cove_core::e2ee::session::SecureSession) beside its core client, as
//! `cove chat` does. Its rooms are MLS groups: it creates them (`InitGroup`), joins them
//! by external commit, adds and removes members as their admin, sends encrypted room
//! messages and direct messages (groups of two, opened from the peer's KeyPackage, also
//! while the peer is offline), and leaves — all through the simulated network and the real
//! server (the driver and the hub as Delivery Service).
//!
//! The application side follows the session's drain order: after every reply (turned
//! into a `Reply` with `reply_from`) and every command, each action is sent with
//! `Action::send` and its request ID reported with `sent`, then the events are taken. At
//! the end of each simulated event the state is persisted (`export_state`, when dirty)
//! before the room entries it handled are acknowledged, and the read marker of each is
//! saved with the acknowledgement (see [`Sim::secure_settle`](super::Sim) for when no
//! crash can happen). A session lives as long as its connection: a new
//! connection, or a restart after a client crash, restores it from the persisted state.
//! The sessions' clock is [`UNIX_BASE`] plus the simulated seconds.
//!
//! Encrypted users meet only each other: their rooms are not the plaintext model's, which
//! never sees their steps; their rooms get their own checkers ([`crate::check`]:
//! `e2ee_delivery`, `epochs`, `removed_reads`, `e2ee_canary`).

mod durable;
mod inbound;
mod pump;
mod rooms;
mod workload;

use std::collections::{BTreeMap, BTreeSet};

use cove_core::wire::RoomId;

pub(crate) use rooms::{EntryKind, SecureRooms};

use crate::check::e2ee_canary::SecretCanary;
use crate::check::e2ee_delivery::Decrypts;
use crate::check::epochs::Epochs;
use crate::check::removed_reads::RemovedReads;
use crate::rng::{Prng, split};

/// The sessions' Unix time when a run starts; they read it plus the simulated seconds.
pub(crate) const UNIX_BASE: u64 = 1_800_000_000;

/// Whether user `u` runs end-to-end encryption when every `every`-th user does.
pub(crate) fn is_secure(u: usize, every: usize) -> bool {
    every > 0 && u % every == every - 1
}

/// The users of one kind (encrypted or not) among `n`, numbered `0..count`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Population {
    pub(crate) n: usize,
    pub(crate) every: usize,
    pub(crate) secure: bool,
}

impl Population {
    /// How many users it has.
    pub(crate) fn count(self) -> usize {
        let secure = self.n.checked_div(self.every).unwrap_or(0);
        if self.secure { secure } else { self.n - secure }
    }

    /// Its `i`-th user.
    pub(crate) fn nth(self, i: usize) -> usize {
        match (self.secure, self.every) {
            (_, 0) => i,
            (true, k) => i * k + k - 1,
            (false, k) => i / (k - 1) * k + i % (k - 1),
        }
    }

    /// The position of its user `u`.
    pub(crate) fn index_of(self, u: usize) -> usize {
        match (self.secure, self.every) {
            (_, 0) => u,
            (true, k) => u / k,
            (false, k) => u / k * (k - 1) + u % k,
        }
    }
}

/// What an encrypted user's application knows of one room: its members as the server
/// announced them and told of changes.
#[derive(Clone, Debug, Default)]
pub(crate) struct View {
    pub(crate) members: BTreeSet<usize>,
    pub(crate) direct: bool,
}

/// An encrypted user's application: its session, persisted state and what it knows.
#[derive(Default)]
pub(crate) struct SecureUser {
    /// The session of the current connection (restored from `saved` at each connect).
    pub(crate) session: Option<cove_core::e2ee::session::SecureSession>,
    /// The persisted state (`export_state`), written before every acknowledgement.
    pub(crate) saved: Vec<u8>,
    /// The session changed since `saved` was written (only while no client crash can
    /// happen, see [`crate::world::Sim::secure_settle`]).
    pub(crate) unsaved: bool,
    /// Sessions started so far (each draws from its own random stream).
    restores: u64,
    /// The rooms it is in.
    pub(crate) view: BTreeMap<RoomId, View>,
    /// Read markers: the last entry acknowledged per room (persisted).
    pub(crate) marks: BTreeMap<RoomId, u64>,
    /// External joins asked for and not answered yet.
    pub(crate) joining: BTreeSet<RoomId>,
    /// Peers of direct conversations it asked the server to open, not answered yet.
    pub(crate) opening: BTreeSet<usize>,
    /// Rooms it is leaving (asked once).
    pub(crate) leaving: BTreeSet<RoomId>,
    /// While logging in: the rooms announced so far.
    announced: Option<BTreeSet<RoomId>>,
    /// Entries handled and not yet acknowledged: the highest per room.
    acks: BTreeMap<RoomId, u64>,
    /// The entry being handed to the session: (room, seq, sender, kind).
    entry: Option<(RoomId, u64, Option<usize>, EntryKind)>,
}

/// Everything about end-to-end encryption the world keeps beside its users.
pub(crate) struct SecureWorld {
    /// Every how many users one is encrypted (0: none).
    pub(crate) every: usize,
    /// The encrypted rooms.
    pub(crate) rooms: SecureRooms,
    /// Invariant (a).
    pub(crate) decrypts: Decrypts,
    /// Invariant (b).
    pub(crate) epochs: Epochs,
    /// Invariant (c).
    pub(crate) removed: RemovedReads,
    /// The plaintext canary at the server.
    pub(crate) canary: SecretCanary,
    /// Seeds each session's random stream.
    mls_seed: u64,
    /// Draws of the simulator-side injected bugs (a stream of their own).
    bug_rng: Prng,
    /// Injected: a client skips some Commits (hands them to no session, acknowledges).
    pub(crate) skip_commit: bool,
    /// Injected: clients keep removed members' keys (their sessions never hear that a
    /// member left, so commit no Remove).
    pub(crate) keep_removed_keys: bool,
}

impl SecureUser {
    /// The state as persisted now (written first if the session changed since).
    pub(crate) fn persisted(&mut self) -> &[u8] {
        if self.unsaved
            && let Some(session) = self.session.as_ref()
        {
            self.saved = session.export_state();
            self.unsaved = false;
        }
        &self.saved
    }
}

impl SecureWorld {
    /// The encrypted side of a run of `seed`.
    pub(crate) fn new(seed: u64, every: usize) -> SecureWorld {
        SecureWorld {
            every,
            rooms: SecureRooms::default(),
            decrypts: Decrypts::default(),
            epochs: Epochs::default(),
            removed: RemovedReads::default(),
            canary: SecretCanary::new(split(seed, "e2ee canary")),
            mls_seed: split(seed, "mls"),
            bug_rng: Prng::new(split(seed, "injected client bugs")),
            skip_commit: false,
            keep_removed_keys: false,
        }
    }

    /// Whether user `u` is encrypted.
    pub(crate) fn is_secure(&self, u: usize) -> bool {
        is_secure(u, self.every)
    }

    /// The 32-byte seed of user `u`'s `n`-th session.
    fn session_seed(&self, u: usize, n: u64) -> [u8; 32] {
        let mut out = [0u8; 32];
        let base = split(self.mls_seed, &format!("u{u} session {n}"));
        for (i, c) in out.chunks_mut(8).enumerate() {
            c.copy_from_slice(&crate::rng::mix64(base ^ i as u64).to_le_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn populations_number_their_users() {
        for every in [0, 1, 2, 3, 4] {
            for n in [0, 1, 5, 12, 13] {
                for secure in [true, false] {
                    let p = Population { n, every, secure };
                    let users: Vec<usize> =
                        (0..n).filter(|u| is_secure(*u, every) == secure).collect();
                    assert_eq!(p.count(), users.len(), "{every} {n} {secure}");
                    for (i, u) in users.iter().enumerate() {
                        assert_eq!(p.nth(i), *u);
                        assert_eq!(p.index_of(*u), i);
                    }
                }
            }
        }
    }
}
