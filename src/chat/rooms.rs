//! Durable rooms as `cove chat` shows them: membership announced at login and its
//! catch-up, rooms joined or added to, history pages (encrypted: only what this run
//! decrypted can be shown again), gaps left by retention, removals and new titles. The
//! room messages themselves are shown once decrypted, by `entries`.

use cove_core::hub::Reply;
use cove_core::wire::RoomId;
use cove_core::wire::mls::{ContentType, WireFormat, message_header, wire_format};

use super::render::say;
use super::{Pending, Shared};
use crate::link::Link;

/// Shows one room reply, `what` being the request it answers, and
/// keeps the UI state (current room, titles, what was printed, the read markers) in step.
pub(super) fn show(reply: &Reply, what: Option<&Pending>, shared: &Shared, handle: &Link) {
    match reply {
        // Shown once the end-to-end layer has decrypted it (`entries`).
        Reply::RoomMessage { .. } => {}
        Reply::RoomJoined {
            req,
            room,
            title,
            members,
            private,
            direct,
            admin,
        } => joined(
            shared, what, *req, *room, title, members, *private, *direct, admin,
        ),
        Reply::RoomLeft { room, .. } => {
            let label = shared.ui().label(*room);
            let now_in = left(shared, handle, *room);
            match now_in {
                Some(r) => say(&format!("* you left {label}; now talking in {r}")),
                None => say(&format!("* you left {label}")),
            }
        }
        Reply::RoomRemoved { room, by } => {
            let title = shared.ui().titles.get(room).cloned().unwrap_or_default();
            let now_in = left(shared, handle, *room);
            let then = now_in
                .map(|r| format!("; now talking in {r}"))
                .unwrap_or_default();
            say(&format!(
                "* {by} removed you from room {room} \"{title}\"{then}"
            ));
        }
        Reply::RoomGap {
            room,
            first_available,
        } => {
            let label = shared.ui().label(*room);
            say(&format!(
                "* {label}: history before message {first_available} is no longer available"
            ))
        }
        // The old kind of invitation (an admin's hub-only invite): the room may then be
        // joined by its ID.
        Reply::RoomInvited { room, title, by } => say(&format!(
            "* {by} invited you to private room {room} \"{title}\"; /join {room}"
        )),
        Reply::RoomTitle { room, title } => {
            shared.ui().titles.insert(*room, title.to_string());
            say(&format!("* room {room} is now called \"{title}\""));
        }
        Reply::MemberJoined { room, name } => {
            let mut ui = shared.ui();
            if ui.opening.remove(room) {
                // The peer of a direct conversation they are opening.
                ui.directs.insert(*room, name.to_string());
                return;
            }
            drop(ui);
            say(&format!("* {name} joined {room}"))
        }
        Reply::MemberLeft { room, name } => {
            let label = shared.ui().label(*room);
            say(&format!("* {name} left {label}"))
        }
        Reply::HistoryMessage {
            room,
            seq,
            from,
            timestamp,
            body,
            ..
        } => history(shared, *room, *seq, from, *timestamp, body),
        Reply::HistoryDone {
            room,
            first_available,
            count,
            ..
        } => {
            let mut ui = shared.ui();
            let oldest = ui.oldest_shown.get(room).copied();
            let explain = ui.history_unreadable && !ui.history_explained;
            ui.history_explained |= explain;
            ui.history_unreadable = false;
            drop(ui);
            if explain {
                say(
                    "* earlier messages cannot be decrypted again: each is decrypted once, when it \
                     arrives, and its key deleted (so a stolen key cannot open old messages); \
                     history shows who wrote when",
                );
            }
            if *count == 0 || oldest.is_none_or(|o| o <= *first_available) {
                say(&format!(
                    "* no more history (messages before seq {first_available} are gone)"
                ));
            } else {
                say(&format!(
                    "* {count} earlier message(s) of {room} shown; /history for more"
                ));
            }
        }
        _ => {} // not about rooms: `render::show` has it
    }
}

/// The user is in a room: by their request (`req` != 0), announced at login, or added by
/// someone (live, or a direct conversation a peer opened).
#[allow(clippy::too_many_arguments)]
fn joined(
    shared: &Shared,
    what: Option<&Pending>,
    req: u32,
    room: RoomId,
    title: &str,
    members: &[std::sync::Arc<str>],
    private: bool,
    direct: bool,
    admin: &str,
) {
    let mut ui = shared.ui();
    ui.titles.insert(room, title.to_string());
    let names: Vec<&str> = members.iter().map(|m| &**m).collect();
    if direct {
        let peer = names.iter().find(|n| **n != shared.me).copied();
        let Some(peer) = peer else {
            // The peer is opening it right now (they join it next): the end-to-end
            // layer says when it is ready.
            ui.opening.insert(room);
            return;
        };
        ui.directs.insert(room, peer.to_string());
        if req == 0 && !ui.logged_in {
            ui.catching_up.insert(room);
            drop(ui);
            say(&format!("* direct conversation with {peer}: catching up"));
        }
        // Otherwise: opened now; the end-to-end layer says when it is ready.
        return;
    }
    if req == 0 {
        // At login: a room the user is still a member of (its missed messages follow);
        // later: someone added the user. The first such room becomes the current one.
        ui.current.get_or_insert(room);
        let at_login = !ui.logged_in;
        if at_login {
            ui.catching_up.insert(room);
        }
        drop(ui);
        let kind = if private { "private, " } else { "" };
        if at_login {
            say(&format!(
                "* room {room} \"{title}\": catching up ({kind}admin {admin}; members: {})",
                names.join(", ")
            ));
        } else {
            say(&format!(
                "* you were added to room {room} \"{title}\" ({kind}admin {admin}; members: {}); /switch {room} to talk there",
                names.join(", ")
            ));
        }
        return;
    }
    ui.current = Some(room);
    drop(ui);
    let verb = if matches!(what, Some(Pending::Create)) {
        "created"
    } else {
        "joined"
    };
    let kind = if private { "private room" } else { "room" };
    let hint = if private && matches!(what, Some(Pending::Create)) {
        "; /invite NICK to let someone in"
    } else {
        ""
    };
    say(&format!(
        "* you {verb} {kind} {room} \"{title}\" (members: {}){hint}; it is now your current room",
        names.join(", ")
    ));
}

/// One entry of a `/history` page: who wrote when, and what kind of encrypted entry it
/// is. The text cannot be shown: the keys of a message are deleted once it is decrypted
/// (forward secrecy), and the history pages go back before anything this run received.
fn history(shared: &Shared, room: RoomId, seq: u64, from: &str, timestamp: u64, body: &[u8]) {
    let mut ui = shared.ui();
    let oldest = ui.oldest_shown.entry(room).or_insert(seq);
    *oldest = (*oldest).min(seq);
    let what = encrypted_kind(body);
    if what == ENCRYPTED_MESSAGE {
        ui.history_unreadable = true;
    }
    drop(ui);
    say(&format!(
        "(history) {} [{room}] {from}: {what}",
        utc(timestamp)
    ));
}

const ENCRYPTED_MESSAGE: &str = "[encrypted message]";

/// What a room log entry is, from its cleartext MLS header only.
fn encrypted_kind(body: &[u8]) -> &'static str {
    if let Ok(h) = message_header(body) {
        return match h.content_type {
            ContentType::Application => ENCRYPTED_MESSAGE,
            ContentType::Commit => "[encrypted change of the group]",
            _ => "[encrypted group proposal]",
        };
    }
    match wire_format(body) {
        Ok(WireFormat::Welcome) => "[encrypted invitation]",
        _ => "[not an end-to-end encrypted message]",
    }
}

/// The user is no longer in `room` (left or removed): forget what was printed of it and
/// its read marker (a deleted room's ID can be reused, and an old marker would hide the
/// new room's messages), and pick another current room. Returns the current room.
fn left(shared: &Shared, handle: &Link, room: RoomId) -> Option<RoomId> {
    let mut ui = shared.ui();
    ui.room_shown.remove(&room);
    ui.oldest_shown.remove(&room);
    ui.catching_up.remove(&room);
    if ui.current == Some(room) {
        let directs = &ui.directs;
        let next = handle
            .rooms()
            .into_iter()
            .find(|r| *r != room && !directs.contains_key(r));
        ui.current = next;
    }
    ui.directs.remove(&room);
    ui.opening.remove(&room);
    let now_in = ui.current;
    drop(ui);
    if let Err(e) = shared
        .room_cursors
        .forget(&shared.server, &shared.me, |r| r == room)
    {
        say(&format!("! cannot update the room read markers: {e}"));
    }
    now_in
}

/// Seconds since `timestamp_us` (microseconds since the Unix epoch).
pub(super) fn age_secs(timestamp_us: u64) -> u64 {
    cove_std::now().0.saturating_sub(timestamp_us) / 1_000_000
}

/// A server timestamp (microseconds since the Unix epoch) as `YYYY-MM-DD HH:MM:SS UTC`.
pub(super) fn utc(timestamp_us: u64) -> String {
    let secs = timestamp_us / 1_000_000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for non-negative day counts).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `MLSMessage` headers: version 1, then the wire format, then (for a private
    /// message) the group ID, epoch and content type in the clear.
    fn private(content_type: u8) -> Vec<u8> {
        let mut b = vec![0, 1, 0, 2, 2, 0xAB, 0xCD];
        b.extend_from_slice(&7u64.to_be_bytes());
        b.push(content_type);
        b.extend_from_slice(&[0x55; 40]); // the rest is ciphertext
        b
    }

    #[test]
    fn history_names_what_each_encrypted_entry_is() {
        assert_eq!(encrypted_kind(&private(1)), ENCRYPTED_MESSAGE);
        assert_eq!(
            encrypted_kind(&private(3)),
            "[encrypted change of the group]"
        );
        assert_eq!(encrypted_kind(&private(2)), "[encrypted group proposal]");
        assert_eq!(
            encrypted_kind(&[0, 1, 0, 3, 9, 9]),
            "[encrypted invitation]"
        );
        for other in [
            &b"hello, plaintext"[..],
            &[],
            &[0, 1, 0, 9],
            &private(1)[..6],
        ] {
            assert_eq!(
                encrypted_kind(other),
                "[not an end-to-end encrypted message]",
                "{other:?}"
            );
        }
    }

    #[test]
    fn timestamps_are_utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        // 2000-02-29 (a leap day of a century leap year) 12:34:56.789
        assert_eq!(utc(951_827_696_789_000), "2000-02-29 12:34:56 UTC");
        assert_eq!(utc(1_700_000_000_000_000), "2023-11-14 22:13:20 UTC");
        // The last second of 2024 and the first of 2025.
        assert_eq!(utc(1_735_689_599_000_000), "2024-12-31 23:59:59 UTC");
        assert_eq!(utc(1_735_689_600_000_000), "2025-01-01 00:00:00 UTC");
        // Far future timestamps from a peer do not overflow.
        assert!(utc(u64::MAX).ends_with(" UTC"));
    }
}
