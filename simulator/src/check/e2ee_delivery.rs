//! End-to-end invariant (a): each member of an encrypted room decrypts every application
//! message of its membership interval, in room order, exactly once — the message another
//! member sent, to that room (or, in a direct conversation, to this member).
//!
//! Fed with every room log entry an encrypted user's session handles (its cleartext MLS
//! header, and what the session made of it), the joins, leaves and retention gaps its
//! client sees, and the epoch its group starts at. An entry may stay unreadable only when
//! it cannot be read by design:
//!
//! - it was made in an epoch before the member's group began (sent, or committed, before
//!   the member joined, and logged after);
//! - retention dropped a Commit or Welcome of the room before the member handled it: its
//!   group can no longer follow the room, and the application leaves the room;
//! - the member's external join was accepted while its connection dropped, so the answer
//!   that would have activated its group never came (`JoinPending`): the application
//!   leaves the room.
//!
//! Anything else unreadable — a Commit missed, a key not held, a group lost — is a
//! violation, as is a plaintext that is not what was sent, one decrypted twice, and
//! entries handled out of order. In the liveness phase every member must have handled and
//! acknowledged its room up to the last entry (its cursor, see
//! [`crate::check::convergence`]).

use std::collections::{BTreeMap, BTreeSet};

use cove_core::e2ee::E2eeError;
use cove_core::wire::RoomId;

use crate::model::{Checked, Violation};
use crate::world::secure::{EntryKind, SecureRooms};

/// An entry of the interval not decrypted, or decrypted into something never sent.
pub(crate) const CHECK: &str = "e2ee decrypt";
/// A plaintext decrypted twice.
pub(crate) const ONCE: &str = "e2ee exactly once";
/// Entries handled out of the room's order.
pub(crate) const ORDER: &str = "e2ee room order";

/// Where a plaintext was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sent {
    /// To a room.
    Room(RoomId),
    /// To a user, in the pair's direct conversation.
    Direct(usize),
}

/// What the session made of an entry (the parts of `EntryKind` the check needs).
#[derive(Debug)]
pub(crate) enum Outcome<'a> {
    /// Decrypted.
    Text(&'a [u8]),
    /// One's own message.
    Own,
    /// Anything else readable (a change, a Welcome, nothing to show).
    Handled,
    /// Nothing to show although it is a message (no group for it).
    Nothing,
    /// Not readable.
    Unreadable(&'a E2eeError),
}

/// What the application should do after an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Carry on.
    Fine,
    /// The group can no longer follow the room: leave it.
    Leave,
}

/// One member's interval in one room.
#[derive(Debug, Default)]
struct Interval {
    /// The highest entry handled in the interval, across connections (0: none).
    max_seq: u64,
    /// The entry handled last on the current connection: the next one follows it.
    last: Option<u64>,
    /// The epoch the member's group began at.
    join_epoch: Option<u64>,
    /// Its group cannot follow the room any more (see the module docs).
    broken: bool,
    /// Plaintexts decrypted: (sender, counter).
    seen: BTreeSet<(u32, u64)>,
}

/// The state of invariant (a). See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Decrypts {
    intervals: BTreeMap<(usize, RoomId), Interval>,
    sent: BTreeMap<(u32, u64), Sent>,
    /// Application messages decrypted.
    pub(crate) decrypted: u64,
    /// Entries from before the member's group began (unreadable, allowed).
    pub(crate) before_join: u64,
    /// Entries unreadable after retention dropped a change the member needed.
    pub(crate) after_gap: u64,
    /// Joins whose answer was lost with the connection.
    pub(crate) lost_joins: u64,
    /// Groups left because they could no longer follow their room.
    pub(crate) broken: u64,
}

/// A plaintext's sender and counter, if it carries `canary`.
pub(crate) fn parse_plaintext(canary: &[u8; 16], p: &[u8]) -> Option<(u32, u64)> {
    let rest = p.strip_prefix(&canary[..])?;
    let sender = u32::from_le_bytes(rest.get(1..5)?.try_into().ok()?);
    let counter = u64::from_le_bytes(rest.get(5..13)?.try_into().ok()?);
    Some((sender, counter))
}

impl Decrypts {
    /// User `u` sent plaintext number `counter` to `to`.
    pub(crate) fn sent(&mut self, u: usize, counter: u64, to: Sent) {
        self.sent.insert((u as u32, counter), to);
    }

    /// User `u`'s client was told it is in `room` (a join, or an announcement at login).
    pub(crate) fn joined(&mut self, u: usize, room: RoomId) {
        self.intervals.entry((u, room)).or_default().last = None;
    }

    /// User `u` is no longer in `room`: its interval ends.
    pub(crate) fn left(&mut self, u: usize, room: RoomId) {
        self.intervals.remove(&(u, room));
    }

    /// User `u`'s session holds a group for `room`, in `epoch`.
    pub(crate) fn has_group(&mut self, u: usize, room: RoomId, epoch: u64) {
        if let Some(iv) = self.intervals.get_mut(&(u, room))
            && iv.join_epoch.is_none()
        {
            iv.join_epoch = Some(epoch);
        }
    }

    /// The rooms whose interval of user `u` waits for its group.
    pub(crate) fn waiting_rooms(&self, u: usize) -> Vec<RoomId> {
        self.intervals
            .range((u, RoomId([0; 6]))..)
            .take_while(|((v, _), _)| *v == u)
            .filter(|(_, iv)| iv.join_epoch.is_none())
            .map(|((_, r), _)| *r)
            .collect()
    }

    /// User `u`'s external join of `room` was accepted but its answer lost: its group
    /// never became active. The application leaves.
    pub(crate) fn lost_join(&mut self, u: usize, room: RoomId) {
        if let Some(iv) = self.intervals.get_mut(&(u, room)) {
            iv.broken = true;
        }
        self.lost_joins += 1;
    }

    /// User `u`'s client was told retention dropped `room`'s entries before
    /// `first_available`.
    pub(crate) fn gap(
        &mut self,
        u: usize,
        room: RoomId,
        first_available: u64,
        rooms: &SecureRooms,
    ) {
        let Some(iv) = self.intervals.get_mut(&(u, room)) else {
            return;
        };
        if rooms.change_between(&room, iv.max_seq, first_available) {
            iv.broken = true;
        }
        // The next entry is the first available one, or, when the client's read marker
        // is past it, the one after the marker (the client drops what it covers).
        iv.last = None;
    }

    /// User `u`'s session handled `room`#`seq` (an entry of `kind`, from user `from`)
    /// with `outcome`. `canary`: what starts every plaintext.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn entry(
        &mut self,
        u: usize,
        room: RoomId,
        seq: u64,
        from: Option<usize>,
        kind: EntryKind,
        outcome: Outcome<'_>,
        canary: &[u8; 16],
    ) -> Result<Verdict, Violation> {
        let Some(iv) = self.intervals.get_mut(&(u, room)) else {
            return Err(Violation::new(
                "delivery to non-member",
                format!("u{u} handled {room:?}#{seq}, a room it is not in"),
            ));
        };
        if let Some(last) = iv.last
            && seq != last + 1
        {
            return Err(Violation::new(
                ORDER,
                format!("u{u} handled {room:?}#{seq} right after #{last}"),
            ));
        }
        iv.last = Some(seq);
        if seq <= iv.max_seq {
            // Handled before (its acknowledgement was lost): the session ignores it.
            if let Outcome::Text(_) = outcome {
                return Err(Violation::new(
                    ONCE,
                    format!(
                        "u{u} decrypted {room:?}#{seq} again (handled up to #{})",
                        iv.max_seq
                    ),
                ));
            }
            return Ok(Verdict::Fine);
        }
        iv.max_seq = seq;
        let Some(epoch) = kind.epoch() else {
            return Ok(Verdict::Fine);
        };
        let application = matches!(kind, EntryKind::Application { .. });
        let why = match outcome {
            Outcome::Text(p) => {
                return Self::decrypted(
                    iv,
                    &self.sent,
                    &mut self.decrypted,
                    u,
                    room,
                    seq,
                    from,
                    p,
                    canary,
                )
                .map(|()| Verdict::Fine);
            }
            Outcome::Own if from == Some(u) => return Ok(Verdict::Fine),
            Outcome::Own => format!("taken for its own though sent by {from:?}"),
            Outcome::Handled => return Ok(Verdict::Fine),
            Outcome::Nothing if !application || from == Some(u) => return Ok(Verdict::Fine),
            Outcome::Nothing => "nothing to show: no group for it".to_string(),
            Outcome::Unreadable(E2eeError::JoinPending(_)) => {
                // The join's answer never came (see the module docs).
                iv.broken = true;
                self.lost_joins += 1;
                return Ok(Verdict::Leave);
            }
            Outcome::Unreadable(e) => format!("unreadable: {e}"),
        };
        if iv.join_epoch.is_some_and(|j| epoch < j) {
            self.before_join += 1;
            return Ok(Verdict::Fine);
        }
        if iv.broken {
            self.after_gap += 1;
            self.broken += 1;
            return Ok(Verdict::Leave);
        }
        let what = if application { "message" } else { "Commit" };
        Err(Violation::new(
            CHECK,
            format!(
                "u{u} could not read {room:?}#{seq}, a {what} of epoch {epoch} from {from:?} \
                 (its group began at epoch {:?}): {why}",
                iv.join_epoch
            ),
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn decrypted(
        iv: &mut Interval,
        sent: &BTreeMap<(u32, u64), Sent>,
        count: &mut u64,
        u: usize,
        room: RoomId,
        seq: u64,
        from: Option<usize>,
        p: &[u8],
        canary: &[u8; 16],
    ) -> Checked {
        let Some((sender, counter)) = parse_plaintext(canary, p) else {
            return Err(Violation::new(
                CHECK,
                format!("u{u} decrypted {room:?}#{seq} into something no one sent"),
            ));
        };
        let meant = match sent.get(&(sender, counter)) {
            Some(Sent::Room(r)) => *r == room,
            Some(Sent::Direct(to)) => *to == u,
            None => false,
        };
        if from != Some(sender as usize) || !meant {
            return Err(Violation::new(
                CHECK,
                format!(
                    "u{u} decrypted {room:?}#{seq} (from {from:?}) into u{sender}'s plaintext \
                     #{counter}, sent {:?}",
                    sent.get(&(sender, counter))
                ),
            ));
        }
        if !iv.seen.insert((sender, counter)) {
            return Err(Violation::new(
                ONCE,
                format!("u{u} decrypted u{sender}'s plaintext #{counter} twice in {room:?}"),
            ));
        }
        *count += 1;
        Ok(())
    }
}
