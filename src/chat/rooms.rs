//! Durable rooms as `cove chat` shows them: membership announced at login and its
//! catch-up, live messages (acknowledged only once printed), history pages, gaps left by
//! retention, invitations, removals and new titles.

use cove_core::client::ClientError;
use cove_core::hub::Reply;
use cove_core::wire::RoomId;

use super::render::{say, text_of};
use super::{Pending, Shared};
use crate::link::Link;

/// Shows one room reply, `what` being the request it answers, and
/// keeps the UI state (current room, titles, what was printed, the read markers) in step.
pub(super) fn show(reply: &Reply, what: Option<&Pending>, shared: &Shared, handle: &Link) {
    match reply {
        Reply::RoomMessage {
            room,
            seq,
            from,
            timestamp,
            body,
        } => message(shared, handle, *room, *seq, from, *timestamp, body),
        Reply::RoomJoined {
            req,
            room,
            title,
            members,
            private,
            direct: _,
            admin,
        } => {
            let mut ui = shared.ui();
            ui.titles.insert(*room, title.to_string());
            let names: Vec<&str> = members.iter().map(|m| &**m).collect();
            let kind = if *private { "private, " } else { "" };
            if *req == 0 {
                // At login: a room the user is still a member of. Its missed messages
                // follow; the first such room becomes the current one.
                ui.catching_up.insert(*room);
                ui.current.get_or_insert(*room);
                drop(ui);
                say(&format!(
                    "* room {room} \"{title}\": catching up ({kind}admin {admin}; members: {})",
                    names.join(", ")
                ));
                return;
            }
            ui.current = Some(*room);
            drop(ui);
            let verb = if matches!(what, Some(Pending::Create)) {
                "created"
            } else {
                "joined"
            };
            let kind = if *private { "private room" } else { "room" };
            let hint = if *private && matches!(what, Some(Pending::Create)) {
                "; /invite NICK to let someone in"
            } else {
                ""
            };
            say(&format!(
                "* you {verb} {kind} {room} \"{title}\" (members: {}){hint}; it is now your current room",
                names.join(", ")
            ));
        }
        Reply::RoomLeft { room, .. } => {
            let now_in = left(shared, handle, *room);
            match now_in {
                Some(r) => say(&format!("* you left {room}; now talking in {r}")),
                None => say(&format!("* you left {room}")),
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
        } => say(&format!(
            "* {room}: history before message {first_available} is no longer available"
        )),
        Reply::RoomInvited { room, title, by } => say(&format!(
            "* {by} invited you to private room {room} \"{title}\"; /join {room}"
        )),
        Reply::RoomTitle { room, title } => {
            shared.ui().titles.insert(*room, title.to_string());
            say(&format!("* room {room} is now called \"{title}\""));
        }
        Reply::MemberJoined { room, name } => say(&format!("* {name} joined {room}")),
        Reply::MemberLeft { room, name } => say(&format!("* {name} left {room}")),
        Reply::HistoryMessage {
            room,
            seq,
            from,
            timestamp,
            body,
            ..
        } => {
            let mut ui = shared.ui();
            let oldest = ui.oldest_shown.entry(*room).or_insert(*seq);
            *oldest = (*oldest).min(*seq);
            drop(ui);
            say(&format!(
                "(history) {} [{room}] {from}: {}",
                utc(*timestamp),
                text_of(body)
            ));
        }
        Reply::HistoryDone {
            room,
            first_available,
            count,
            ..
        } => {
            let oldest = shared.ui().oldest_shown.get(room).copied();
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

/// One room message: printed once, then its read marker saved, then acknowledged.
fn message(
    shared: &Shared,
    handle: &Link,
    room: RoomId,
    seq: u64,
    from: &str,
    timestamp: u64,
    body: &[u8],
) {
    let mut ui = shared.ui();
    let printed = ui.room_shown.get(&room).copied().unwrap_or(0);
    if seq <= printed.max(handle.room_cursor(room)) {
        return; // a second copy of one printed (and acknowledged) already
    }
    ui.room_shown.insert(room, seq);
    let oldest = ui.oldest_shown.entry(room).or_insert(seq);
    *oldest = (*oldest).min(seq);
    ui.room_printed += 1;
    let dated = ui.catching_up.contains(&room) || age_secs(timestamp) >= 60;
    drop(ui);
    // Missed messages carry their date; live ones are plainly "now". The date goes first
    // so that "[ROOM] nick: text" reads the same in both, for people and for scripts.
    let when = if dated {
        format!("{} ", utc(timestamp))
    } else {
        String::new()
    };
    // `say` flushes: the line is out before the marker is saved.
    say(&format!("{when}[{room}] {from}: {}", text_of(body)));
    // Delivery rule, as for DMs: the read marker is saved first, then the ack sent. A
    // crash before the marker is saved shows this message once more on the next login;
    // after it, never (the restored cursor has the client skip and re-acknowledge it).
    if let Err(e) = shared
        .room_cursors
        .set(&shared.server, &shared.me, room, seq)
    {
        say(&format!("! cannot save the room read marker: {e}"));
    }
    match handle.ack_room(room, seq) {
        // Closed: the server replays it, and the saved marker has the next login skip it.
        Ok(()) | Err(ClientError::Closed) => {}
        Err(e) => say(&format!("! cannot acknowledge the room message: {e}")),
    }
    if from == shared.me {
        // Our own message came back in the room's order: it was delivered. Only now
        // (printed and acknowledged) is the line that sent it done.
        let mut ui = shared.ui();
        let mine = ui
            .pending
            .iter()
            .find(|(_, p)| matches!(p, Pending::RoomSend(r) if *r == room))
            .map(|(req, _)| *req);
        if let Some(req) = mine {
            ui.pending.remove(&req);
            shared.changed.notify_all();
        }
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
        ui.current = handle.rooms().into_iter().find(|r| *r != room);
    }
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
fn age_secs(timestamp_us: u64) -> u64 {
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
