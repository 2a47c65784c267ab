//! [`SecureSession`]: end-to-end encrypted chat over a [`Client`](crate::client::Client),
//! sans-IO. It owns the account's MLS state ([`E2ee`]) and runs the flows the server's
//! Delivery Service expects: a new room gets a group, joining is an external commit, an
//! invitation is an Add with a Welcome, a direct message opens a group of two from the
//! peer's KeyPackage, members the server says are gone are removed before the next
//! message, keys are refreshed by policy, a refused Commit is retried after the winner.
//!
//! Drain order, after every `handle_reply` or command: take each [`Action`] with
//! [`SecureSession::poll_action`], send it ([`Action::send`]) and report its request ID
//! with [`SecureSession::sent`]; then take the [`SecureEvent`]s. When
//! [`SecureSession::take_dirty`] says so, persist [`SecureSession::export_state`] before
//! acknowledging the room messages whose events you took.

mod action;
mod replies;

#[cfg(test)]
mod tests;

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

pub use action::Action;

use super::{E2ee, E2eeError, MlsCrypto, safety_number};
use crate::crypto::Identity;
use crate::wire::{ErrorCode, RoomId};

/// One-time KeyPackages the session keeps at the server.
pub const KEY_PACKAGE_STOCK: usize = 16;
/// Plaintexts that may wait for a room's group (a join, a Commit in flight), per room.
pub const MAX_WAITING: usize = 64;
/// Times a refused Commit or join is retried before giving up.
const RETRIES: u8 = 3;

/// What the session tells the application.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecureEvent {
    /// One entry of a room's log, in order: acknowledge `seq` once shown and once the
    /// state is persisted.
    Entry {
        /// The room.
        room: RoomId,
        /// Its sequence number.
        seq: u64,
        /// Who the server says sent it.
        from: String,
        /// When the server accepted it (its clock, microseconds).
        timestamp: u64,
        /// What it was.
        kind: EntryKind,
    },
    /// The room's group is ready: messages can be sent.
    Ready {
        /// The room.
        room: RoomId,
        /// The other member, for a direct conversation.
        peer: Option<String>,
    },
    /// A contact's identity key is not the one pinned: sending to rooms with them stops
    /// until [`SecureSession::accept_key`].
    KeyChanged {
        /// The contact.
        name: String,
    },
    /// The server's key directory gives a contact another key than the one their group
    /// credential carries and that is pinned (`directory`: the directory's key, `None`
    /// if it knows no such account): sending to rooms with them stops until
    /// [`SecureSession::accept_key`] with the pinned key ([`SecureSession::disputed_key`]).
    KeyDisputed {
        /// The contact.
        name: String,
        /// The key the directory gave.
        directory: Option<[u8; 32]>,
    },
    /// Something the user asked for failed.
    Failed {
        /// The room, if any.
        room: Option<RoomId>,
        /// The peer, if any.
        peer: Option<String>,
        /// Why.
        reason: Failure,
    },
}

/// What a room log entry was, for the application.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntryKind {
    /// A decrypted message.
    Text(Vec<u8>),
    /// One of our own messages (shown when sent).
    Own,
    /// A change of the group: members added or removed, keys refreshed.
    Change {
        /// Who joined.
        added: Vec<String>,
        /// Who left or was removed.
        removed: Vec<String>,
    },
    /// We joined the group (a Welcome for us).
    Joined,
    /// Nothing to show (a Welcome for someone else, a repeat).
    Nothing,
    /// It could not be decrypted (for example: sent before we joined, or state was lost).
    Unreadable(E2eeError),
}

/// Why something failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// The server refused it.
    Server(ErrorCode),
    /// The MLS layer refused it.
    Mls(E2eeError),
    /// Too many messages wait for this room already.
    Busy,
    /// A Commit was refused too many times in a row.
    GaveUp,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Server(code) => f.write_str(code.description()),
            Failure::Mls(e) => write!(f, "{e}"),
            Failure::Busy => f.write_str("too many messages waiting"),
            Failure::GaveUp => f.write_str("the group kept changing: try again"),
        }
    }
}

/// What a request was for, to act on its answer.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Purpose {
    Create,
    InitGroup(RoomId),
    GroupInfo(RoomId),
    JoinCommit(RoomId),
    Commit(RoomId),
    /// A Commit adding this user (redone from a fresh KeyPackage if it loses its epoch).
    AddCommit(RoomId, String),
    Upload {
        last_resort: bool,
    },
    DirectKeyPackage(String),
    AddKeyPackage(RoomId),
    OpenDirect(String),
    Leave(RoomId),
    Remove(RoomId),
    /// An application message, encrypted at `epoch`: made again from `text` if the server
    /// refuses that epoch (a Commit it logged first has not been processed yet).
    Message {
        room: RoomId,
        epoch: u64,
        text: Vec<u8>,
    },
    /// The server's directory key of a member, to confirm their pinned key.
    DirectoryKey(String),
}

/// The server's view of a room: its members, and the peer of a direct conversation.
#[derive(Clone, Debug, Default)]
struct RoomView {
    members: Vec<String>,
    direct: bool,
}

/// End-to-end encrypted chat for one account. See the module docs.
pub struct SecureSession {
    e2ee: E2ee,
    me: String,
    my_key: [u8; 32],
    requests: BTreeMap<u32, Purpose>,
    actions: VecDeque<(Action, Option<Purpose>)>,
    awaiting: Option<Purpose>,
    events: VecDeque<SecureEvent>,
    rooms: BTreeMap<RoomId, RoomView>,
    directs: BTreeMap<String, RoomId>,
    waiting: BTreeMap<RoomId, VecDeque<Vec<u8>>>,
    /// How many of a room's waiting texts, at the front, were refused for their epoch:
    /// the next refused one goes after them, keeping the order they were written in.
    requeued: BTreeMap<RoomId, usize>,
    waiting_direct: BTreeMap<String, VecDeque<Vec<u8>>>,
    in_flight: BTreeSet<RoomId>,
    retries: BTreeMap<RoomId, u8>,
    /// Names whose directory key was asked for and not answered yet.
    asking: BTreeSet<String>,
    last_resort_uploaded: bool,
    dirty: bool,
}

impl fmt::Debug for SecureSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecureSession")
            .field("me", &self.me)
            .field("rooms", &self.rooms.len())
            .finish_non_exhaustive()
    }
}

/// Marks the start of an exported session state.
const STATE_MAGIC: &[u8; 4] = b"CVS1";

impl SecureSession {
    /// A new account's session.
    pub fn new(identity: &Identity, name: &str, crypto: MlsCrypto) -> Result<Self, E2eeError> {
        let e2ee = E2ee::new(identity, name, crypto)?;
        Ok(Self::with(e2ee, identity, false))
    }

    /// A session from [`SecureSession::export_state`]'s bytes.
    pub fn restore(
        identity: &Identity,
        name: &str,
        crypto: MlsCrypto,
        state: &[u8],
    ) -> Result<Self, E2eeError> {
        let rest = state
            .strip_prefix(&STATE_MAGIC[..])
            .ok_or(E2eeError::Malformed)?;
        let (&flag, inner) = rest.split_first().ok_or(E2eeError::Malformed)?;
        let e2ee = E2ee::restore(identity, name, crypto, inner)?;
        Ok(Self::with(e2ee, identity, flag == 1))
    }

    fn with(e2ee: E2ee, identity: &Identity, last_resort_uploaded: bool) -> Self {
        SecureSession {
            me: String::from(e2ee.name()),
            e2ee,
            my_key: identity.public().ed25519,
            requests: BTreeMap::new(),
            actions: VecDeque::new(),
            awaiting: None,
            events: VecDeque::new(),
            rooms: BTreeMap::new(),
            directs: BTreeMap::new(),
            waiting: BTreeMap::new(),
            requeued: BTreeMap::new(),
            waiting_direct: BTreeMap::new(),
            in_flight: BTreeSet::new(),
            retries: BTreeMap::new(),
            asking: BTreeSet::new(),
            last_resort_uploaded,
            dirty: false,
        }
    }

    /// Everything to persist (the MLS state and the session's own flag).
    pub fn export_state(&self) -> Vec<u8> {
        let mut out = Vec::from(&STATE_MAGIC[..]);
        out.push(u8::from(self.last_resort_uploaded));
        out.extend_from_slice(&self.e2ee.export_state());
        out
    }

    /// Whether the state changed since the last call: persist it before acknowledging.
    pub fn take_dirty(&mut self) -> bool {
        core::mem::take(&mut self.dirty)
    }

    /// The MLS layer, for inspection.
    pub fn e2ee(&self) -> &E2ee {
        &self.e2ee
    }

    /// The next request to send.
    pub fn poll_action(&mut self) -> Option<Action> {
        let (action, purpose) = self.actions.pop_front()?;
        self.awaiting = purpose;
        Some(action)
    }

    /// The request ID the last polled action was sent with.
    pub fn sent(&mut self, req: u32) {
        if let Some(p) = self.awaiting.take() {
            self.requests.insert(req, p);
        }
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<SecureEvent> {
        self.events.pop_front()
    }

    fn act(&mut self, action: Action, purpose: Option<Purpose>) {
        self.actions.push_back((action, purpose));
    }

    fn fail(&mut self, room: Option<RoomId>, peer: Option<String>, reason: Failure) {
        self.events
            .push_back(SecureEvent::Failed { room, peer, reason });
    }

    /// Call once logged in: the first time, publish a last-resort KeyPackage (the server
    /// then asks for one-time ones).
    pub fn login(&mut self, unix_secs: u64) {
        if self.last_resort_uploaded {
            return;
        }
        match self.e2ee.last_resort_key_package(unix_secs) {
            Ok(kp) => {
                self.dirty = true;
                self.act(
                    Action::UploadKeyPackages {
                        last_resort: true,
                        packages: alloc::vec![kp],
                    },
                    Some(Purpose::Upload { last_resort: true }),
                );
            }
            Err(e) => self.fail(None, None, Failure::Mls(e)),
        }
    }

    /// Creates a room with its group.
    pub fn create_room(&mut self, title: &str, private: bool) {
        let title = String::from(title);
        self.act(Action::CreateRoom { title, private }, Some(Purpose::Create));
    }

    /// Joins a public room (or a private one we are invited to) by external commit.
    pub fn join_room(&mut self, room: RoomId) {
        self.act(
            Action::GetGroupInfo { room },
            Some(Purpose::GroupInfo(room)),
        );
    }

    /// Leaves a room.
    pub fn leave_room(&mut self, room: RoomId) {
        self.act(Action::LeaveRoom { room }, Some(Purpose::Leave(room)));
    }

    /// Adds `name` to `room` (from one of their KeyPackages, with a Welcome).
    pub fn invite(&mut self, room: RoomId, name: &str) {
        let name = String::from(name);
        self.act(
            Action::FetchKeyPackage { name },
            Some(Purpose::AddKeyPackage(room)),
        );
    }

    /// Removes `name` from `room` (its admin): the server first, then the MLS Remove.
    pub fn remove(&mut self, room: RoomId, name: &str) {
        let name = String::from(name);
        self.act(
            Action::RemoveMember { room, name },
            Some(Purpose::Remove(room)),
        );
    }

    /// Sends `text` to `room`, encrypted; it waits while the group is being changed.
    pub fn send_text(&mut self, room: RoomId, text: &[u8], unix_secs: u64) {
        let queue = self.waiting.entry(room).or_default();
        if queue.len() >= MAX_WAITING {
            return self.fail(Some(room), None, Failure::Busy);
        }
        queue.push_back(Vec::from(text));
        self.flush(room, unix_secs);
    }

    /// Sends `text` to `peer` in the pair's direct conversation, opening it (from one of
    /// the peer's KeyPackages) if there is none: this works while the peer is offline.
    pub fn send_direct(&mut self, peer: &str, text: &[u8], unix_secs: u64) {
        if let Some(room) = self.directs.get(peer).copied() {
            return self.send_text(room, text, unix_secs);
        }
        let queue = self.waiting_direct.entry(String::from(peer)).or_default();
        if queue.len() >= MAX_WAITING {
            return self.fail(None, Some(String::from(peer)), Failure::Busy);
        }
        queue.push_back(Vec::from(text));
        if queue.len() == 1 {
            let name = String::from(peer);
            let purpose = Purpose::DirectKeyPackage(name.clone());
            self.act(Action::FetchKeyPackage { name }, Some(purpose));
        }
    }

    /// The direct conversation with `peer`, if any.
    pub fn direct_room(&self, peer: &str) -> Option<RoomId> {
        self.directs.get(peer).copied()
    }

    /// The peer of a direct conversation.
    pub fn peer_of(&self, room: RoomId) -> Option<&str> {
        let view = self.rooms.get(&room).filter(|v| v.direct)?;
        view.members.iter().map(|m| &m[..]).find(|m| *m != self.me)
    }

    /// The safety number of this account and `name` (their pinned key), to compare out
    /// of band: the same on both sides.
    pub fn safety_number(&self, name: &str) -> Option<String> {
        let theirs = self.e2ee.pinned_key(name)?;
        Some(safety_number((&self.me, &self.my_key), (name, &theirs)))
    }

    /// The key pinned for `name` while the server's directory has not confirmed it (after
    /// [`SecureEvent::KeyDisputed`]): the key `/accept-key` would accept.
    pub fn disputed_key(&self, name: &str) -> Option<[u8; 32]> {
        self.e2ee
            .pinned_key(name)
            .filter(|_| !self.e2ee.is_confirmed(name))
    }

    /// The user accepted `name`'s new key: sending to rooms with them resumes.
    pub fn accept_key(&mut self, name: &str, key: [u8; 32], unix_secs: u64) {
        self.e2ee.accept_key(name, key);
        self.dirty = true;
        if self.waiting_direct.contains_key(name) && !self.directs.contains_key(name) {
            // Their KeyPackage was refused for the changed key: fetch one again.
            let name = String::from(name);
            let purpose = Purpose::DirectKeyPackage(name.clone());
            self.act(Action::FetchKeyPackage { name }, Some(purpose));
        }
        let rooms: Vec<RoomId> = self.waiting.keys().copied().collect();
        for room in rooms {
            self.flush(room, unix_secs);
        }
    }

    /// Sends what waits for `room` once its group is ready and settled: first a Remove
    /// of members the server says are gone, or a key refresh the policy asks for.
    fn flush(&mut self, room: RoomId, unix_secs: u64) {
        if self.in_flight.contains(&room) || !self.e2ee.has_group(room) {
            return;
        }
        if self.waiting.get(&room).is_none_or(|q| q.is_empty()) {
            return;
        }
        let members: Vec<String> = self
            .rooms
            .get(&room)
            .map(|v| v.members.clone())
            .unwrap_or_default();
        let refs: Vec<&str> = members.iter().map(|m| &m[..]).collect();
        let stale = self.e2ee.stale_members(room, &refs);
        let commit = if !stale.is_empty() && !members.is_empty() {
            let names: Vec<&str> = stale.iter().map(|m| &m[..]).collect();
            Some(self.e2ee.remove_members(room, &names, unix_secs))
        } else if self.e2ee.needs_update(room, unix_secs) {
            Some(self.e2ee.update(room, unix_secs))
        } else {
            None
        };
        match commit {
            Some(Ok(out)) => return self.send_commit(room, out),
            Some(Err(e)) => return self.fail(Some(room), None, Failure::Mls(e)),
            None => {}
        }
        while let Some(text) = self.waiting.get_mut(&room).and_then(|q| q.pop_front()) {
            let epoch = self.e2ee.epoch(room).unwrap_or(0);
            match self.e2ee.encrypt(room, &text) {
                Ok(body) => {
                    self.dirty = true;
                    if let Some(n) = self.requeued.get_mut(&room) {
                        *n = n.saturating_sub(1);
                    }
                    self.act(
                        Action::RoomMessage { room, body },
                        Some(Purpose::Message { room, epoch, text }),
                    );
                }
                Err(E2eeError::KeyChanged { name }) => {
                    if let Some(q) = self.waiting.get_mut(&room) {
                        q.push_front(text);
                    }
                    self.events.push_back(SecureEvent::KeyChanged { name });
                    return;
                }
                Err(E2eeError::Unconfirmed { name }) => {
                    // A member seen first in the group: the server's directory must give
                    // the same key before anything is encrypted to them.
                    if let Some(q) = self.waiting.get_mut(&room) {
                        q.push_front(text);
                    }
                    if self.asking.insert(name.clone()) {
                        let purpose = Purpose::DirectoryKey(name.clone());
                        self.act(Action::GetPublicKey { name }, Some(purpose));
                    }
                    return;
                }
                Err(e) => self.fail(Some(room), None, Failure::Mls(e)),
            }
        }
    }

    fn send_commit(&mut self, room: RoomId, out: super::CommitOut) {
        self.dirty = true;
        self.in_flight.insert(room);
        self.act(
            Action::GroupCommit {
                room,
                commit: out.commit,
                group_info: out.group_info,
                add: None,
            },
            Some(Purpose::Commit(room)),
        );
    }
}
