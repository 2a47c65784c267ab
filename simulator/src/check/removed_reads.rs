//! End-to-end invariant (c): a member removed from a room (by its admin, or leaving)
//! that keeps its old state cannot decrypt what is sent after its removal.
//!
//! When a removal becomes durable, the removed user's persisted state of that moment is
//! restored into a separate session — a copy the user kept, as an attacker would — and fed
//! every entry the room logs from then on (and the recent entries before it, which it may
//! read: it was a member), exactly as a member's session would be. It follows the room's
//! Commits as far as its keys allow; once a Commit removes its leaf it can follow no more,
//! and is retired.
//!
//! "Sent after its removal" is what the sender encrypted once its application knew the
//! removed user was gone: the room's member list its client had then (from the hub's
//! joins, announcements and member notices) no longer named them. Such a sender's session
//! must first commit the Remove of every group member the server no longer counts, so
//! nothing it encrypts after may open under the old state. A message encrypted before the
//! sender heard of the removal may (the group still held the removed leaf).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use cove_core::e2ee::session::{EntryKind, SecureEvent, SecureSession};
use cove_core::hub::Reply;
use cove_core::wire::RoomId;

use crate::model::{Checked, Violation};
use crate::rng::mix64;

/// The invariant's name.
pub(crate) const CHECK: &str = "removed member reads";

/// Durable entries kept per room for a new watcher's backlog.
const RING: usize = 256;
/// Most old states watched at once (the oldest is dropped).
const MAX_WATCHED: usize = 128;

/// A digest of a ciphertext, to find what its sender knew.
pub(crate) fn digest(body: &[u8]) -> u64 {
    let mut h = 0x7265_6D6F_7665_6400u64 ^ body.len() as u64;
    let mut chunks = body.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = mix64(h ^ u64::from_le_bytes(w));
    }
    let mut w = [0u8; 8];
    w[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    mix64(h ^ u64::from_le_bytes(w))
}

/// One durable room log entry.
struct Logged {
    seq: u64,
    from: Arc<str>,
    timestamp: u64,
    body: Arc<[u8]>,
}

/// A removed member's old state, watched.
struct Watched {
    u: usize,
    room: RoomId,
    session: SecureSession,
}

/// The state of invariant (c). See the module docs.
#[derive(Default)]
pub(crate) struct RemovedReads {
    /// Per ciphertext digest: the room's members its sender's application knew of when it
    /// was encrypted.
    views: BTreeMap<u64, Box<[u32]>>,
    logs: BTreeMap<RoomId, VecDeque<Logged>>,
    watched: Vec<Watched>,
    /// Old states watched.
    pub(crate) states: u64,
    /// Entries fed to them.
    pub(crate) fed: u64,
    /// Messages they decrypted that were encrypted before their sender knew of the removal
    /// (allowed).
    pub(crate) read_before: u64,
    /// Old states retired once a Commit removed their leaf.
    pub(crate) retired: u64,
}

impl RemovedReads {
    /// A sender encrypted `body` for a room whose members its application knew as `view`.
    pub(crate) fn encrypted(&mut self, body: &[u8], view: impl Iterator<Item = usize>) {
        let view: Box<[u32]> = view.map(|u| u as u32).collect();
        self.views.insert(digest(body), view);
    }

    /// The room is gone: its entries and watchers too.
    pub(crate) fn room_gone(&mut self, room: RoomId) {
        self.logs.remove(&room);
        self.watched.retain(|w| w.room != room);
    }

    /// User `u`'s removal from `room` is durable: `session` is its state of that moment.
    /// It is fed the room's recent entries, then everything logged from now on.
    pub(crate) fn watch(
        &mut self,
        u: usize,
        room: RoomId,
        session: SecureSession,
        unix_secs: u64,
    ) -> Checked {
        if !session.e2ee().has_group(room) {
            return Ok(());
        }
        self.states += 1;
        let mut w = Watched { u, room, session };
        if let Some(log) = self.logs.get(&room) {
            for e in log {
                self.fed += 1;
                feed(&mut w, e, &self.views, &mut self.read_before, unix_secs)?;
            }
        }
        if !w.session.e2ee().has_group(room) {
            self.retired += 1;
            return Ok(());
        }
        if self.watched.len() >= MAX_WATCHED {
            self.watched.remove(0);
        }
        self.watched.push(w);
        Ok(())
    }

    /// `room`#`seq` is durable.
    pub(crate) fn logged(
        &mut self,
        room: RoomId,
        seq: u64,
        from: &Arc<str>,
        timestamp: u64,
        body: &Arc<[u8]>,
        unix_secs: u64,
    ) -> Checked {
        let e = Logged {
            seq,
            from: from.clone(),
            timestamp,
            body: body.clone(),
        };
        let mut i = 0;
        while i < self.watched.len() {
            if self.watched[i].room != room {
                i += 1;
                continue;
            }
            self.fed += 1;
            feed(
                &mut self.watched[i],
                &e,
                &self.views,
                &mut self.read_before,
                unix_secs,
            )?;
            if self.watched[i].session.e2ee().has_group(room) {
                i += 1;
            } else {
                self.watched.remove(i);
                self.retired += 1;
            }
        }
        let log = self.logs.entry(room).or_default();
        if log.len() >= RING {
            log.pop_front();
        }
        log.push_back(e);
        Ok(())
    }
}

/// Hands one entry to a watched old state; a message it decrypts must have been encrypted
/// by a sender who still counted its user in the room.
fn feed(
    w: &mut Watched,
    e: &Logged,
    views: &BTreeMap<u64, Box<[u32]>>,
    read_before: &mut u64,
    unix_secs: u64,
) -> Checked {
    let reply = Reply::RoomMessage {
        room: w.room,
        seq: e.seq,
        from: e.from.clone(),
        timestamp: e.timestamp,
        body: e.body.clone(),
    };
    w.session.handle_reply(&reply, unix_secs);
    // It never sends anything: it is a copy, not a client.
    while w.session.poll_action().is_some() {}
    while let Some(ev) = w.session.poll_event() {
        let SecureEvent::Entry {
            kind: EntryKind::Text(_),
            seq,
            ..
        } = ev
        else {
            continue;
        };
        let knew_gone = views
            .get(&digest(&e.body))
            .is_some_and(|v| !v.contains(&(w.u as u32)));
        if knew_gone {
            return Err(Violation::new(
                CHECK,
                format!(
                    "u{}'s state from before its removal from {:?} decrypted #{seq} from {}, \
                     who had already seen u{} leave",
                    w.u, w.room, e.from, w.u
                ),
            ));
        }
        *read_before += 1;
    }
    Ok(())
}
