//! One input line of `cove chat` at a time: parsed into a command, paced below the
//! server's rate limit, and sent, with what its answer will mean recorded as pending.

use std::thread;
use std::time::{Duration, Instant};

use cove_core::wire::RoomId;

use super::commands::{self, Command, HELP};
use super::render::say;
use super::{Pending, Shared, Ui};
use crate::link::Link;

/// Requests per second the client allows itself, and its burst: below the server's
/// default limit (50/s, burst 100), so a pasted block or a piped script is slowed down
/// instead of being refused.
const PACE_PER_SEC: f64 = 20.0;
const PACE_BURST: f64 = 40.0;

/// A token bucket the input loop waits on before each request.
pub(super) struct Pace {
    tokens: f64,
    last: Instant,
}

impl Pace {
    pub(super) fn new() -> Pace {
        Pace {
            tokens: PACE_BURST,
            last: Instant::now(),
        }
    }

    /// Waits until a request may go out.
    pub(super) fn wait(&mut self) {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * PACE_PER_SEC;
        self.tokens = (self.tokens + refill).min(PACE_BURST);
        self.last = now;
        if self.tokens < 1.0 {
            let short = (1.0 - self.tokens) / PACE_PER_SEC;
            thread::sleep(Duration::from_secs_f64(short));
            self.tokens = 1.0;
            self.last = Instant::now();
        }
        self.tokens -= 1.0;
    }
}

/// Handles one input line. Returns false to stop reading input.
pub(super) fn input_line(line: &str, handle: &Link, shared: &Shared, pace: &mut Pace) -> bool {
    // Pace before taking the lock, so a wait never stalls the event thread. Refused
    // lines are paced as well: a script of typos is slowed like one of requests.
    let command = match commands::parse(line) {
        Ok(None) => return true,
        Ok(Some(c)) => {
            if !c.is_local() {
                pace.wait();
            }
            c
        }
        Err(e) => {
            pace.wait();
            say(&format!("! {e}"));
            return true;
        }
    };
    // Held from sending a request until it is recorded as pending, so its answer (which
    // the event thread may already be handling) always finds it.
    let mut ui = shared.ui();
    let sent = match command {
        Command::Say(text) => match ui.current {
            Some(room) => handle
                .send_room(room, text.as_bytes())
                .map(|req| (req, Pending::RoomSend(room))),
            None => {
                say("! you are not in a room: /create or /join one first (or /msg NICK text)");
                return true;
            }
        },
        Command::Help => {
            // One line at a time: `say` would turn the newlines into U+FFFD.
            HELP.lines().for_each(say);
            return true;
        }
        Command::Quit => return false,
        Command::Create { title, private } => {
            let title = title.unwrap_or_else(|| format!("{}'s room", shared.me));
            let sent = if private {
                handle.create_private_room(&title)
            } else {
                handle.create_room(&title)
            };
            sent.map(|req| (req, Pending::Create))
        }
        Command::Join(room) => handle.join_room(room).map(|req| (req, Pending::Join(room))),
        Command::Leave(room) => match room.or(ui.current) {
            Some(room) => handle
                .leave_room(room)
                .map(|req| (req, Pending::Leave(room))),
            None => return not_in_a_room(),
        },
        Command::Switch(room) => {
            if handle.rooms().contains(&room) {
                ui.current = Some(room);
                say(&format!("* now talking in {room}"));
            } else {
                say(&format!("! you are not in {room}; /join {room} first"));
            }
            return true;
        }
        Command::Rooms => handle.list_rooms().map(|req| (req, Pending::Rooms)),
        Command::Users => handle.list_users().map(|req| (req, Pending::Users)),
        Command::Msg { to, text } => handle
            .send_dm(&to, text.as_bytes())
            .map(|req| (req, Pending::Dm(to))),
        Command::Status(status) => handle
            .set_status(status)
            .map(|req| (req, Pending::Status(status))),
        Command::Invite { nick, room } => {
            let Some(room) = room.or(ui.current) else {
                return not_in_a_room();
            };
            handle
                .invite(room, &nick)
                .map(|req| (req, Pending::Invite { room, nick }))
        }
        Command::Remove { nick, room } => {
            let Some(room) = room.or(ui.current) else {
                return not_in_a_room();
            };
            if nick == shared.me {
                // The server refuses it too, with a bare "invalid message format".
                say(
                    "! /remove: you cannot remove yourself; /leave hands the room to the longest-standing member",
                );
                return true;
            }
            if nick == shared.me {
                // The server refuses it too, with a bare "invalid message format".
                say(
                    "! /remove: you cannot remove yourself; /leave hands the room to the longest-standing member",
                );
                return true;
            }
            handle
                .remove_member(room, &nick)
                .map(|req| (req, Pending::Remove { room, nick }))
        }
        Command::Title(title) => {
            let Some(room) = ui.current else {
                return not_in_a_room();
            };
            handle
                .set_room_title(room, &title)
                .map(|req| (req, Pending::Title(room)))
        }
        Command::History(limit) => {
            let Some(room) = ui.current else {
                return not_in_a_room();
            };
            let before = history_before(&ui, handle, room);
            handle
                .fetch_history(room, before, limit)
                .map(|req| (req, Pending::History(room)))
        }
    };
    match sent {
        Ok((req, what)) => {
            ui.pending.insert(req, what);
        }
        Err(e) => say(&format!("! not sent: {e}")),
    }
    true
}

fn not_in_a_room() -> bool {
    say("! you are not in a room: /create or /join one first");
    true
}

/// Where `/history` continues in `room`: before the oldest message printed on this
/// connection (live, caught up or an earlier page). With none printed yet, everything the
/// server had for this user was shown in earlier runs (the login's catch-up is done), so
/// the first page ends at the read marker, or with no marker, at the newest message.
fn history_before(ui: &Ui, handle: &Link, room: RoomId) -> u64 {
    if let Some(oldest) = ui.oldest_shown.get(&room) {
        return *oldest;
    }
    match handle.room_cursor(room) {
        0 => u64::MAX,
        seen => seen.saturating_add(1),
    }
}

/// Waits until the server has sent everything it has for this user's rooms, and it is
/// printed (and acknowledged): the room catch-up at login, which the server sends one
/// window at a time, each after the acknowledgements of the one before. A round trip
/// sent after the last acknowledgement returns after any messages that acknowledgement
/// released, so the first round trip during which nothing was printed ends it.
/// Returns false when it gave up after `limit` (what is not printed yet is printed
/// later, or replayed at the next login) or the connection closed.
pub(super) fn settle(shared: &Shared, handle: &Link, pace: &mut Pace, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        pace.wait();
        let printed = {
            let mut ui = shared.ui();
            if ui.closed {
                return false;
            }
            match handle.get_public_key(&shared.me) {
                Ok(req) => {
                    ui.pending.insert(req, Pending::Sync);
                }
                Err(_) => return false,
            }
            ui.room_printed
        };
        let left = deadline.saturating_duration_since(Instant::now());
        // `wait_answered` also returns (having said so) when the time is up.
        if !super::wait_answered(shared, left) || Instant::now() >= deadline {
            return false;
        }
        if shared.ui().room_printed == printed {
            return true;
        }
    }
}
