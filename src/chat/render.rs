//! Turning the server's replies into lines for people, and printing them so that text
//! from others cannot drive or disguise the terminal.

use std::io::{self, Write};

use cove_core::client::ClientError;
use cove_core::hub::Reply;
use cove_core::wire::{ErrorCode, Status};

use super::{Pending, Shared, Target, Ui};
use crate::files::key_fingerprint;
use crate::link::Link;

/// Prints a line for people. Every line goes through [`neutralise`]: most of what is
/// printed (names, titles, message bodies) comes from other people via the server.
pub(super) fn say(line: &str) {
    let clean = neutralise(line);
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{clean}");
    let _ = out.flush();
}

/// Makes a line safe to print: control characters become U+FFFD so a peer cannot drive
/// the terminal, and invisible formatting characters are shown escaped (`\u{202e}`) so
/// a peer cannot reorder or hide parts of the line (a right-to-left override can make
/// "alice: hi" appear to come from someone else, for example).
pub(super) fn neutralise(line: &str) -> String {
    let mut clean = String::with_capacity(line.len());
    for c in line.chars() {
        if c.is_control() {
            clean.push('\u{FFFD}');
        } else if is_invisible_format(c) {
            clean.extend(c.escape_unicode());
        } else {
            clean.push(c);
        }
    }
    clean
}

/// Characters that change how text around them is laid out or show nothing at all: the
/// protocol's own list, which the server also refuses in titles.
fn is_invisible_format(c: char) -> bool {
    cove_core::wire::is_invisible_format(c)
}

pub(super) fn text_of(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

/// How long ago `timestamp_us` was, when it is a minute or more.
pub(super) fn age(timestamp_us: u64) -> Option<String> {
    let now = cove_std::now().0;
    let secs = now.saturating_sub(timestamp_us) / 1_000_000;
    match secs {
        0..=59 => None,
        60..=3599 => Some(format!("{} min ago", secs / 60)),
        3600..=86_399 => Some(format!("{} h ago", secs / 3600)),
        _ => Some(format!("{} days ago", secs / 86_400)),
    }
}

/// The request ID a reply answers, if any.
pub(super) fn answered(reply: &Reply) -> Option<u32> {
    match reply {
        Reply::PublicKey { req, .. }
        | Reply::MessageAck { req, .. }
        | Reply::UserList { req, .. }
        | Reply::Error { req, .. }
        | Reply::RoomJoined { req, .. }
        | Reply::RoomLeft { req, .. }
        | Reply::RoomList { req, .. }
        | Reply::PrekeyBundle { req, .. }
        | Reply::KeyPackage { req, .. }
        | Reply::GroupInfo { req, .. }
        | Reply::Ok { req }
        | Reply::HistoryDone { req, .. }
        | Reply::PendingDone { req, .. } => Some(*req).filter(|r| *r != 0),
        _ => None,
    }
}

/// The error a reply shows (see [`show`]), if it is one that is shown: an error the
/// end-to-end layer recovers from by itself (a Commit that lost the race for its epoch, a
/// message encrypted before a Commit logged ahead of it, made again after it; a direct
/// conversation the peer opened first) is not.
pub(super) fn error_shown(reply: &Reply, what: Option<&Pending>) -> Option<ErrorCode> {
    let Reply::Error { code, .. } = reply else {
        return None;
    };
    let quiet = matches!(
        (what, code),
        (Some(Pending::Dm(_)), ErrorCode::DirectExists)
            | (
                Some(Pending::Join(_) | Pending::Commit(_) | Pending::RoomSend(_)),
                ErrorCode::StaleEpoch
            )
    );
    (!quiet).then_some(*code)
}

/// Own messages that will not come back after the error shown for `what`: the message
/// refused, or (a refused direct conversation or Commit) every one that waited for it.
fn unsent(ui: &mut Ui, what: Option<&Pending>) {
    let (target, all) = match what {
        Some(Pending::RoomSend(r)) => (ui.target(*r), false),
        Some(Pending::Commit(r)) => (ui.target(*r), true),
        Some(Pending::Dm(peer)) => (Target::Peer(peer.clone()), true),
        _ => return,
    };
    if let Some(q) = ui.outbox.get_mut(&target) {
        if all {
            q.clear();
        } else {
            q.pop_front();
        }
    }
}

/// Shows one reply, `what` being the request it answers, and keeps the UI state (current
/// room, titles, pending requests, the read markers) in step with it. Room messages are
/// shown once decrypted (see `entries`), not here.
pub(super) fn show(reply: &Reply, what: Option<Pending>, shared: &Shared, handle: &Link) {
    match reply {
        // Direct messages of the old, unencrypted kind (from older clients): still shown,
        // marked as such.
        Reply::IncomingDm {
            msg_id,
            from,
            body,
            timestamp,
        } => {
            let mut ui = shared.ui();
            if *msg_id <= ui.dm_shown.max(handle.last_dm_id()) {
                return; // a second copy of one printed (and acknowledged) already
            }
            ui.dm_shown = *msg_id;
            drop(ui);
            let when = age(*timestamp)
                .map(|a| format!(" (sent {a})"))
                .unwrap_or_default();
            // `say` flushes: the line is out before anything below happens.
            say(&format!(
                "[dm from {from}]{when} (not end-to-end encrypted) {}",
                text_of(body)
            ));
            // Delivery rule: acknowledge only what has been shown. The read marker is
            // saved first, then the ack sent: a crash before the marker is saved shows
            // this DM once more on the next login; a crash after it never does (the
            // server may still hold it, but the client then re-acknowledges it unseen).
            if let Err(e) = shared.dm_cursors.set(&shared.server, &shared.me, *msg_id) {
                say(&format!("! cannot save the read marker: {e}"));
            }
            match handle.ack_dm(*msg_id) {
                // Closed: the server keeps the DM, and the saved marker has the next
                // login acknowledge it without showing it again.
                Ok(()) | Err(ClientError::Closed) => {}
                Err(e) => say(&format!("! cannot acknowledge the direct message: {e}")),
            }
        }
        // Only unencrypted direct messages are acknowledged so; this client sends none.
        Reply::MessageAck { .. } => {}
        // Presence only: a member who goes offline stays in its rooms (unlike "left").
        Reply::StatusUpdate {
            name,
            status: Status::Offline,
        } => say(&format!("* {name} went offline")),
        Reply::StatusUpdate { name, status } => {
            say(&format!("* {name} is now {}", status.as_str()))
        }
        Reply::UserList { users, .. } => {
            let list: Vec<String> = users
                .iter()
                .map(|(n, s)| format!("{n} ({})", s.as_str()))
                .collect();
            say(&format!("users: {}", list.join(", ")));
        }
        Reply::RoomList { rooms, .. } => {
            if rooms.is_empty() {
                say("no rooms yet; /create one");
            } else {
                let list: Vec<String> = rooms
                    .iter()
                    .map(|r| format!("{} \"{}\" {}/{}", r.room, r.title, r.members, r.capacity))
                    .collect();
                say(&format!("rooms: {}", list.join(", ")));
            }
        }
        Reply::Ok { .. } => match what {
            Some(Pending::Status(s)) => say(&format!("* your status is now {}", s.as_str())),
            Some(Pending::Invite { room, nick }) => say(&format!(
                "* added {nick} to {room} with their keys; they are told now or at their next login"
            )),
            Some(Pending::Remove { room, nick }) => say(&format!(
                "* removed {nick} from {room}; the group's keys change so {nick} cannot read what follows"
            )),
            // A /title is shown by the `RoomTitle` every member (this user too) gets.
            _ => {}
        },
        Reply::Error { code, .. } => {
            if error_shown(reply, what.as_ref()).is_none() {
                return;
            }
            let mut ui = shared.ui();
            unsent(&mut ui, what.as_ref());
            let context = match &what {
                Some(Pending::Join(r)) => format!("/join {r}: "),
                Some(Pending::Leave(r)) => format!("/leave {r}: "),
                Some(Pending::Dm(to)) => format!("/msg {to}: "),
                Some(Pending::RoomSend(r)) => format!("message to {}: ", ui.label(*r)),
                Some(Pending::Create) => "/create: ".into(),
                Some(Pending::Setup(r)) => format!("/create: setting up encryption in {r}: "),
                Some(Pending::Invite { room, nick }) => format!("/invite {nick} {room}: "),
                Some(Pending::Remove { room, nick }) => format!("/remove {nick} {room}: "),
                Some(Pending::Commit(r)) => {
                    format!("{}: changing the group's keys: ", ui.label(*r))
                }
                Some(Pending::Upload) => "publishing key packages: ".into(),
                Some(Pending::Title(r)) => format!("/title in {r}: "),
                Some(Pending::History(r)) => format!("/history of {r}: "),
                _ => String::new(),
            };
            drop(ui);
            say(&format!("! {context}{code}"));
        }
        // Only a round trip: its answer marks that earlier traffic has arrived.
        Reply::PublicKey { .. } if matches!(what, Some(Pending::Sync)) => {}
        Reply::PublicKey { name, key, .. } => match key {
            Some(k) => say(&format!("{name}: key fingerprint {}", key_fingerprint(k))),
            None => say(&format!("{name}: no such user")),
        },
        Reply::PendingDone { count, .. } => {
            if !matches!(what, Some(Pending::Sync)) {
                say(&format!("* {count} pending message(s) re-sent"));
            }
        }
        Reply::Auth { .. }
        | Reply::PrekeyBundle { .. }
        | Reply::KeyPackage { .. }
        | Reply::GroupInfo { .. }
        | Reply::KeyPackagesLow { .. }
        | Reply::Close { .. } => {}
        Reply::RoomMessage { .. }
        | Reply::RoomJoined { .. }
        | Reply::RoomLeft { .. }
        | Reply::RoomRemoved { .. }
        | Reply::RoomGap { .. }
        | Reply::RoomInvited { .. }
        | Reply::RoomTitle { .. }
        | Reply::MemberJoined { .. }
        | Reply::MemberLeft { .. }
        | Reply::HistoryMessage { .. }
        | Reply::HistoryDone { .. } => super::rooms::show(reply, what.as_ref(), shared, handle),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_unchanged() {
        for line in [
            "[K7QX2M] alice: hello",
            "grüße, 你好, مرحبا, שלום",
            "emoji ❤\u{FE0F} stay 👍",
            "",
        ] {
            assert_eq!(neutralise(line), line);
        }
    }

    #[test]
    fn control_characters_are_replaced() {
        assert_eq!(
            neutralise("a\x1b[2Jb\rc\nd\u{7f}e\u{9b}f"),
            "a\u{FFFD}[2Jb\u{FFFD}c\u{FFFD}d\u{FFFD}e\u{FFFD}f"
        );
    }

    #[test]
    fn bidi_and_invisible_characters_are_shown_escaped() {
        // A right-to-left override would make the rest of the line read backwards.
        assert_eq!(
            neutralise("[K7QX2M] mallory: \u{202E}ecila :\u{202C}hi"),
            "[K7QX2M] mallory: \\u{202e}ecila :\\u{202c}hi"
        );
        for (c, shown) in [
            ('\u{202A}', "\\u{202a}"),
            ('\u{202B}', "\\u{202b}"),
            ('\u{202D}', "\\u{202d}"),
            ('\u{2066}', "\\u{2066}"),
            ('\u{2067}', "\\u{2067}"),
            ('\u{2068}', "\\u{2068}"),
            ('\u{2069}', "\\u{2069}"),
            ('\u{200B}', "\\u{200b}"),
            ('\u{200C}', "\\u{200c}"),
            ('\u{200D}', "\\u{200d}"),
            ('\u{200E}', "\\u{200e}"),
            ('\u{200F}', "\\u{200f}"),
            ('\u{2028}', "\\u{2028}"),
            ('\u{2029}', "\\u{2029}"),
            ('\u{FEFF}', "\\u{feff}"),
            ('\u{061C}', "\\u{61c}"),
            ('\u{E0041}', "\\u{e0041}"),
        ] {
            assert_eq!(neutralise(&format!("a{c}b")), format!("a{shown}b"), "{c:?}");
        }
    }

    #[test]
    fn every_bidi_control_and_zero_width_character_is_escaped() {
        let named = ('\u{202A}'..='\u{202E}')
            .chain('\u{2066}'..='\u{2069}')
            .chain('\u{200B}'..='\u{200F}')
            .chain(['\u{2028}', '\u{2029}', '\u{FEFF}']);
        for c in named {
            let shown = neutralise(&c.to_string());
            assert!(
                shown.starts_with("\\u{") && !shown.contains(c),
                "{c:?} shown as {shown:?}"
            );
        }
    }

    #[test]
    fn errors_the_end_to_end_layer_recovers_from_are_not_shown() {
        let error = |code| Reply::Error {
            req: 3,
            code,
            text: "",
        };
        let room = cove_core::wire::RoomId::parse(b"K7QX2M").expect("room");
        let dm = Pending::Dm("bob".into());
        assert_eq!(
            error_shown(&error(ErrorCode::DirectExists), Some(&dm)),
            None
        );
        assert_eq!(
            error_shown(&error(ErrorCode::UserNotFound), Some(&dm)),
            Some(ErrorCode::UserNotFound)
        );
        // A Commit that lost its epoch, a join that raced one, and a message encrypted
        // before a Commit logged ahead of it are all made again by the session: quiet.
        for quiet in [
            Pending::Join(room),
            Pending::Commit(room),
            Pending::RoomSend(room),
        ] {
            assert_eq!(
                error_shown(&error(ErrorCode::StaleEpoch), Some(&quiet)),
                None
            );
        }
        // Any other refusal of a message is said.
        assert_eq!(
            error_shown(&error(ErrorCode::NotMls), Some(&Pending::RoomSend(room))),
            Some(ErrorCode::NotMls)
        );
        assert_eq!(error_shown(&Reply::Ok { req: 3 }, Some(&dm)), None);
        assert_eq!(
            error_shown(&error(ErrorCode::RoomNotFound), None),
            Some(ErrorCode::RoomNotFound)
        );
    }

    #[test]
    fn only_replies_to_a_request_are_answers() {
        assert_eq!(answered(&Reply::Ok { req: 7 }), Some(7));
        // Request ID 0 is never allocated by the client: it marks "no request".
        assert_eq!(answered(&Reply::Ok { req: 0 }), None);
    }
}
