//! What the end-to-end layer tells `cove chat`, as lines: decrypted room and direct
//! messages, own messages echoed in the room's order, group changes, entries that could
//! not be decrypted, rooms whose group is ready, changed contact keys (loudly) and
//! failures.

use std::collections::VecDeque;

use cove_core::e2ee::session::{EntryKind, Failure, SecureEvent};
use cove_core::wire::{ErrorCode, RoomId};

use super::render::{age, say, text_of};
use super::rooms::{age_secs, utc};
use super::secure::Secure;
use super::{Pending, Shared, Target, Ui};
use crate::files::key_fingerprint;
use crate::link::Link;

/// What one drain of the session showed.
pub(super) struct Shown {
    /// The error reply just shown: the `Failed` event for it is not shown again.
    shown_error: Option<ErrorCode>,
    /// Room log entries handled, to acknowledge once the state is saved.
    pub(super) entries: Vec<(RoomId, u64)>,
    /// Rooms where an own message came back: the line that sent it is done once the
    /// entry is acknowledged.
    pub(super) echoes: Vec<RoomId>,
}

impl Shown {
    pub(super) fn new(shown_error: Option<ErrorCode>) -> Shown {
        Shown {
            shown_error,
            entries: Vec::new(),
            echoes: Vec::new(),
        }
    }
}

/// Shows one event of the session.
pub(super) fn show(
    event: SecureEvent,
    secure: &Secure,
    shared: &Shared,
    handle: &Link,
    shown: &mut Shown,
) {
    match event {
        SecureEvent::Entry {
            room,
            seq,
            from,
            timestamp,
            kind,
        } => {
            shown.entries.push((room, seq));
            if matches!(kind, EntryKind::Own) {
                shown.echoes.push(room);
            }
            let removed_me =
                matches!(&kind, EntryKind::Change { removed, .. } if removed.contains(&shared.me));
            entry(shared, room, seq, &from, timestamp, kind);
            if !removed_me && !secure.session.e2ee().has_group(room) {
                no_group(secure, shared, handle, room, false);
            }
        }
        SecureEvent::Ready { room, peer } => {
            let mut ui = shared.ui();
            match peer {
                Some(peer) => {
                    ui.directs.insert(room, peer.clone());
                    drop(ui);
                    say(&format!(
                        "* direct conversation with {peer}: end-to-end encrypted; /msg {peer} TEXT to write"
                    ));
                }
                None => {
                    drop(ui);
                    say(&format!(
                        "* {room}: end-to-end encryption is set up; only the room's members can read its messages"
                    ));
                }
            }
        }
        SecureEvent::KeyChanged { name } => key_changed(secure, shared, handle, &name),
        SecureEvent::KeyDisputed { name, directory } => key_disputed(shared, &name, directory),
        SecureEvent::Failed { room, peer, reason } => {
            if let Failure::Server(code) = reason
                && shown.shown_error == Some(code)
            {
                shown.shown_error = None; // the error reply said it already
                return;
            }
            let mut ui = shared.ui();
            forget_unsent(&mut ui, room, peer.as_deref(), &reason);
            let context = match (&peer, room) {
                (Some(p), _) => format!("/msg {p}: "),
                (None, Some(r)) => format!("{}: ", ui.label(r)),
                (None, None) => String::new(),
            };
            drop(ui);
            say(&format!("! {context}{reason}"));
        }
        _ => {}
    }
}

/// One room log entry, printed once. Nothing decrypted is written anywhere: MLS keys are
/// used once, so a message can be read when it arrives and never again.
fn entry(shared: &Shared, room: RoomId, seq: u64, from: &str, timestamp: u64, kind: EntryKind) {
    let mut ui = shared.ui();
    ui.room_printed += 1;
    let printed = ui.room_shown.get(&room).copied().unwrap_or(0);
    if seq <= printed {
        return; // a second copy of one shown already
    }
    ui.room_shown.insert(room, seq);
    let oldest = ui.oldest_shown.entry(room).or_insert(seq);
    *oldest = (*oldest).min(seq);
    // Missed messages carry their date; live ones are plainly "now". The date goes first
    // so that "[ROOM] nick: text" reads the same in both, for people and for scripts.
    let dated = ui.catching_up.contains(&room) || age_secs(timestamp) >= 60;
    let when = if dated {
        format!("{} ", utc(timestamp))
    } else {
        String::new()
    };
    let peer = ui.directs.get(&room).cloned();
    let label = ui.label(room);
    match kind {
        EntryKind::Text(bytes) => {
            let text = text_of(&bytes);
            drop(ui);
            match peer {
                Some(_) => {
                    let sent = age(timestamp)
                        .map(|a| format!(" (sent {a})"))
                        .unwrap_or_default();
                    say(&format!("[dm from {from}]{sent} {text}"));
                }
                None => say(&format!("{when}[{room}] {from}: {text}")),
            }
        }
        EntryKind::Own => {
            let target = ui.target(room);
            let text = ui.outbox.get_mut(&target).and_then(VecDeque::pop_front);
            drop(ui);
            // MLS cannot decrypt one's own messages: one sent by an earlier run has no
            // text here any more.
            let text =
                text.unwrap_or_else(|| "[your message, sent from an earlier session]".into());
            match peer {
                Some(p) => say(&format!("[dm to {p}] {text}")),
                None => say(&format!("{when}[{room}] {from}: {text}")),
            }
        }
        EntryKind::Change { added, removed } => {
            drop(ui);
            for name in added {
                if name == from {
                    say(&format!("* [{label}] {name} joined the encrypted group"));
                } else {
                    say(&format!(
                        "* [{label}] {from} added {name} to the encrypted group"
                    ));
                }
            }
            for name in removed {
                if name == shared.me {
                    say(&format!(
                        "* [{label}] {from} removed you from the encrypted group"
                    ));
                } else {
                    say(&format!(
                        "* [{label}] {from} removed {name} from the encrypted group: \
                         {name} cannot read what follows"
                    ));
                }
            }
        }
        EntryKind::Unreadable(e) => {
            drop(ui);
            say(&format!(
                "* [{label}] [message {seq} from {from} could not be decrypted: {e}]"
            ));
        }
        // Joined (the Ready event says it), a Welcome for someone else, a repeat.
        _ => {}
    }
}

/// The room has no group here although the user is in it: its messages cannot be read.
/// Said once per room and run, with the way back (`rejoining`: it is being taken now).
pub(super) fn no_group(
    secure: &Secure,
    shared: &Shared,
    handle: &Link,
    room: RoomId,
    rejoining: bool,
) {
    if !handle.rooms().contains(&room) {
        return; // left or removed meanwhile
    }
    let mut ui = shared.ui();
    let first = ui.lost_warned.insert(room);
    let label = ui.label(room);
    let direct = ui.directs.contains_key(&room);
    drop(ui);
    if first {
        say(&format!(
            "! [{label}] this device holds no keys for the encrypted group, so its messages cannot be \
             read (the state in {} was lost, or is older than the room's)",
            secure.path().display()
        ));
    }
    let how = if rejoining {
        "rejoining it with new keys now: what is sent from now on is readable".to_string()
    } else if !first {
        return;
    } else if direct {
        "it is rejoined with new keys at your next login".to_string()
    } else {
        format!("/join {room} rejoins it with new keys")
    };
    say(&format!("* [{label}] {how}"));
}

/// A contact's key is not the one pinned: the full warning once per run, a reminder
/// after.
fn key_changed(secure: &Secure, shared: &Shared, handle: &Link, name: &str) {
    let first = shared.ui().key_warned.insert(name.to_string());
    if !first {
        say(&format!(
            "! messages to rooms with {name} are held: {name}'s key changed (/verify {name}, then /accept-key {name})"
        ));
        return;
    }
    let new_key = changed_key(secure, handle, name)
        .map(|k| format!(" (new key fingerprint {})", key_fingerprint(&k)))
        .unwrap_or_default();
    say(&format!(
        "!!! WARNING: the identity key of {name} has CHANGED{new_key}."
    ));
    say(&format!(
        "!!! Someone may be impersonating {name}, or {name} replaced their key. Messages to rooms with {name} are held."
    ));
    say(&format!(
        "!!! Compare safety numbers with {name} in person or by phone (/verify {name}); only if they match, /accept-key {name}."
    ));
}

/// The server's key directory and a group disagree on `name`'s key: said loudly, once.
fn key_disputed(shared: &Shared, name: &str, directory: Option<[u8; 32]>) {
    if !shared.ui().key_warned.insert(name.to_string()) {
        say(&format!(
            "! messages to rooms with {name} are held: the server's key for {name} is not the one in the room (/verify {name}, then /accept-key {name})"
        ));
        return;
    }
    let server = directory.map_or_else(
        || "the server knows no such account".to_string(),
        |k| format!("the server's key has fingerprint {}", key_fingerprint(&k)),
    );
    say(&format!(
        "!!! WARNING: the key {name} uses in your room is NOT the one the server lists for {name} ({server})."
    ));
    say(&format!(
        "!!! Someone may be impersonating {name}. Messages to rooms with {name} are held."
    ));
    say(&format!(
        "!!! Compare safety numbers with {name} in person or by phone (/verify {name}); only if they match, /accept-key {name}."
    ));
}

/// The new key of `name` in one of the user's rooms, if it changed there.
pub(super) fn changed_key(secure: &Secure, handle: &Link, name: &str) -> Option<[u8; 32]> {
    handle.rooms().into_iter().find_map(|room| {
        secure
            .session
            .e2ee()
            .key_changes(room)
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, key)| key)
    })
}

/// Own messages the session dropped with a failure are not waited for any more.
fn forget_unsent(ui: &mut Ui, room: Option<RoomId>, peer: Option<&str>, reason: &Failure) {
    let target = match (peer, room) {
        (Some(p), _) => Target::Peer(p.to_string()),
        (None, Some(r)) => ui.target(r),
        (None, None) => return,
    };
    let Some(queue) = ui.outbox.get_mut(&target) else {
        return;
    };
    match reason {
        // The newest message was refused before it was queued.
        Failure::Busy => {
            queue.pop_back();
        }
        // The oldest waiting one could not be encrypted.
        Failure::Mls(_) if peer.is_none() => {
            queue.pop_front();
        }
        // Everything that waited is dropped.
        _ => queue.clear(),
    }
}

/// Done with `shown`: the lines that sent the echoed messages are answered.
pub(super) fn echoes_done(shared: &Shared, echoes: &[RoomId]) {
    if echoes.is_empty() {
        return;
    }
    let mut ui = shared.ui();
    for room in echoes {
        let mine = ui
            .pending
            .iter()
            .find(|(_, p)| matches!(p, Pending::RoomSend(r) if r == room))
            .map(|(req, _)| *req);
        if let Some(req) = mine {
            ui.pending.remove(&req);
        }
    }
    shared.changed.notify_all();
}
