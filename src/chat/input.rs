//! One input line of `cove chat` at a time: parsed into a command, paced below the
//! server's rate limit, and sent, with what its answer will mean recorded as pending.

use std::thread;
use std::time::{Duration, Instant};

use cove_core::e2ee::safety_number;
use cove_core::wire::RoomId;

use super::commands::{self, Command, HELP};
use super::entries::changed_key;
use super::render::say;
use super::secure::{self, unix_secs};
use super::{Pending, Shared, Target, Ui};
use crate::files::key_fingerprint;
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
    match command {
        Command::Help => {
            // One line at a time: `say` would turn the newlines into U+FFFD.
            HELP.lines().for_each(say);
            true
        }
        Command::Quit => false,
        Command::Switch(room) => {
            let mut ui = shared.ui();
            if let Some(peer) = ui.directs.get(&room) {
                say(&format!(
                    "! {room} is your direct conversation with {peer}: /msg {peer} TEXT writes there"
                ));
            } else if handle.rooms().contains(&room) {
                ui.current = Some(room);
                say(&format!("* now talking in {room}"));
            } else {
                say(&format!("! you are not in {room}; /join {room} first"));
            }
            true
        }
        Command::Verify(nick) => {
            verify(shared, handle, &nick);
            true
        }
        Command::Rooms
        | Command::Users
        | Command::Status(_)
        | Command::Title(_)
        | Command::History(_) => {
            server_command(command, handle, shared);
            true
        }
        Command::Say(_)
        | Command::Create { .. }
        | Command::Join(_)
        | Command::Leave(_)
        | Command::Msg { .. }
        | Command::Invite { .. }
        | Command::Remove { .. }
        | Command::AcceptKey(_) => {
            secure_command(command, handle, shared);
            true
        }
    }
}

/// A command the server answers by itself (no end-to-end state involved).
fn server_command(command: Command, handle: &Link, shared: &Shared) {
    // Held from sending a request until it is recorded as pending, so its answer (which
    // the event thread may already be handling) always finds it.
    let mut ui = shared.ui();
    let sent = match command {
        Command::Rooms => handle.list_rooms().map(|req| (req, Pending::Rooms)),
        Command::Users => handle.list_users().map(|req| (req, Pending::Users)),
        Command::Status(status) => handle
            .set_status(status)
            .map(|req| (req, Pending::Status(status))),
        Command::Title(title) => {
            let Some(room) = ui.current else {
                not_in_a_room();
                return;
            };
            handle
                .set_room_title(room, &title)
                .map(|req| (req, Pending::Title(room)))
        }
        Command::History(limit) => {
            let Some(room) = ui.current else {
                not_in_a_room();
                return;
            };
            let before = history_before(&ui, handle, room);
            handle
                .fetch_history(room, before, limit)
                .map(|req| (req, Pending::History(room)))
        }
        _ => return,
    };
    match sent {
        Ok((req, what)) => {
            ui.pending.insert(req, what);
        }
        Err(e) => say(&format!("! not sent: {e}")),
    }
}

/// A command of the end-to-end layer: the session makes the requests, `secure::pump`
/// sends them (recorded as pending) with the session locked, so no answer is handled
/// before its request is recorded.
fn secure_command(command: Command, handle: &Link, shared: &Shared) {
    let mut secure = shared.secure();
    let now = unix_secs();
    let current = shared.ui().current;
    let cause = match command {
        Command::Say(text) => {
            let Some(room) = current else {
                say("! you are not in a room: /create or /join one first (or /msg NICK text)");
                return;
            };
            let mut ui = shared.ui();
            let setting_up = ui
                .pending
                .values()
                .any(|p| matches!(p, Pending::Join(r) | Pending::Setup(r) if *r == room));
            if !setting_up && !secure.session.e2ee().has_group(room) {
                drop(ui);
                say(&format!(
                    "! {room}: this device holds no keys for the room's encrypted group, so nothing \
                     can be sent there; /join {room} rejoins it with new keys"
                ));
                return;
            }
            let target = ui.target(room);
            ui.keep_sent(target, &text);
            drop(ui);
            secure.session.send_text(room, text.as_bytes(), now);
            Pending::RoomSend(room)
        }
        Command::Create { title, private } => {
            let title = title.unwrap_or_else(|| format!("{}'s room", shared.me));
            secure.session.create_room(&title, private);
            Pending::Create
        }
        Command::Join(room) => {
            if handle.rooms().contains(&room) && secure.session.e2ee().has_group(room) {
                say(&format!(
                    "! you are in {room} already; /switch {room} to talk there"
                ));
                return;
            }
            secure.session.join_room(room);
            Pending::Join(room)
        }
        Command::Leave(room) => {
            let Some(room) = room.or(current) else {
                not_in_a_room();
                return;
            };
            secure.session.leave_room(room);
            Pending::Leave(room)
        }
        Command::Msg { to, text } => {
            if to == shared.me {
                say("! /msg: that is you");
                return;
            }
            let mut ui = shared.ui();
            let lost = secure
                .session
                .direct_room(&to)
                .filter(|r| !secure.session.e2ee().has_group(*r) && ui.lost_warned.contains(r));
            if lost.is_some() {
                drop(ui);
                say(&format!(
                    "! /msg {to}: this device holds no keys for your direct conversation with {to}, \
                     so nothing can be sent there"
                ));
                return;
            }
            ui.keep_sent(Target::Peer(to.clone()), &text);
            drop(ui);
            secure.session.send_direct(&to, text.as_bytes(), now);
            Pending::Dm(to)
        }
        Command::Invite { nick, room } => {
            let Some(room) = room.or(current) else {
                not_in_a_room();
                return;
            };
            secure.session.invite(room, &nick);
            Pending::Invite { room, nick }
        }
        Command::Remove { nick, room } => {
            let Some(room) = room.or(current) else {
                not_in_a_room();
                return;
            };
            if nick == shared.me {
                // The server refuses it too, with a bare "invalid message format".
                say(
                    "! /remove: you cannot remove yourself; /leave hands the room to the longest-standing member",
                );
                return;
            }
            secure.session.remove(room, &nick);
            Pending::Remove { room, nick }
        }
        Command::AcceptKey(nick) => {
            let key =
                changed_key(&secure, handle, &nick).or_else(|| secure.session.disputed_key(&nick));
            let Some(key) = key else {
                say(&format!(
                    "! the key of {nick} has not changed in any of your rooms: nothing to accept"
                ));
                return;
            };
            secure.session.accept_key(&nick, key, now);
            shared.ui().key_warned.remove(&nick);
            say(&format!(
                "* accepted the new key of {nick} (fingerprint {}); held messages are sent now",
                key_fingerprint(&key)
            ));
            Pending::Sync
        }
        _ => return,
    };
    secure::pump(&mut secure, shared, handle, Some(&cause), None);
}

/// `/verify NICK`: the safety number of this account and NICK, to compare out of band.
fn verify(shared: &Shared, handle: &Link, nick: &str) {
    if nick == shared.me {
        say("! /verify: that is you; verify someone else's key");
        return;
    }
    let secure = shared.secure();
    let Some(number) = secure.session.safety_number(nick) else {
        say(&format!(
            "! no key of {nick} known yet: share a room or a direct conversation (/msg {nick} ...) first"
        ));
        return;
    };
    say(&format!(
        "* safety number of you ({}) and {nick}:",
        shared.me
    ));
    show_number(&number);
    say(&format!(
        "* compare it with {nick} in person or by phone, not through this server: if it is the \
         same on both sides, no one is in between; if not, stop writing to {nick}"
    ));
    if let Some(new_key) = changed_key(&secure, handle, nick) {
        let new = safety_number((shared.me.as_str(), &shared.my_key), (nick, &new_key));
        say(&format!(
            "!!! the key of {nick} CHANGED: the number above is for the old key. With the new one it is:"
        ));
        show_number(&new);
        say(&format!(
            "!!! only if {nick} confirms this one: /accept-key {nick}"
        ));
    }
}

/// A safety number (12 groups of five digits) as two lines of six groups.
fn show_number(number: &str) {
    let groups: Vec<&str> = number.split(' ').collect();
    for line in groups.chunks(6) {
        say(&format!("    {}", line.join(" ")));
    }
}

fn not_in_a_room() {
    say("! you are not in a room: /create or /join one first");
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
