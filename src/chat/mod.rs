//! `cove chat`: an interactive line-mode client that also works with stdin from a pipe.
//!
//! [`run`] reads input lines, `commands` turns each into a typed command, and a second
//! thread prints what the server sends through `render`, which also makes text from
//! others safe to print.
//!
//! Rooms and direct messages are end-to-end encrypted (MLS): `secure` runs the account's
//! `SecureSession` (its state saved under the data directory before anything it changed
//! is acknowledged), and `entries` shows what it decrypted. The server only ever relays
//! and stores ciphertext.

mod commands;
mod connect;
mod cursors;
mod entries;
mod input;
mod mls_state;
mod render;
mod rooms;
mod secure;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::io::{self, BufRead};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use clap::Args;
use cove_core::wire::{AuthMode, ErrorCode, MAX_NAME_LEN, RoomId, Status, valid_name};
use cove_std::client::Event;

use crate::files::DmCursors;
use crate::link::{EventIter, Link};
use crate::serve::{DEFAULT_LISTEN, RuntimeKind};
use cursors::RoomCursors;
use input::{Pace, input_line, settle};
use render::say;
use secure::Secure;

/// Arguments of `cove chat`.
#[derive(Args, Clone, Debug)]
pub struct ChatArgs {
    /// The server's address.
    #[arg(long, default_value = DEFAULT_LISTEN, value_name = "ADDR")]
    pub server: String,
    /// Your nickname: 1-32 letters, digits, '_', '-' or '.'.
    #[arg(long, value_name = "NICK")]
    pub name: String,
    /// Create the account (the first time); without it, log in.
    #[arg(long)]
    pub register: bool,
    /// Directory of your identity keys, pinned server keys, read markers (of direct
    /// messages and of rooms) and end-to-end encryption state (the keys of your rooms and
    /// direct conversations, in mls/).
    /// Default: $COVE_HOME, else ~/.cove.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Trust the key the server presents now even if it differs from the one pinned
    /// earlier (only after checking its fingerprint with the operator).
    #[arg(long)]
    pub accept_new_server_key: bool,
    /// Wait at most this long for the server to answer one line before reading the next
    /// (and for the rooms' missed messages at login, and at the end of piped input
    /// before logging out).
    #[arg(long, default_value_t = 5, value_name = "SECS")]
    pub linger: u64,
    /// Which runtime adapter drives the connection.
    #[arg(long, value_enum, default_value_t = RuntimeKind::Std)]
    pub runtime: RuntimeKind,
}

/// The default client data directory: `$COVE_HOME`, else `~/.cove`, else `./.cove`.
pub fn default_data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("COVE_HOME") {
        return PathBuf::from(d);
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".cove"),
        None => PathBuf::from(".cove"),
    }
}

/// What an answer from the server is waited for.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Pending {
    /// `/create`: the room.
    Create,
    /// `/create`: publishing the new room's group.
    Setup(RoomId),
    /// `/join`: the room's GroupInfo, then the external commit.
    Join(RoomId),
    Leave(RoomId),
    Rooms,
    Users,
    /// `/msg`: the peer's KeyPackage, then opening the conversation.
    Dm(String),
    Status(Status),
    /// An encrypted message, answered by its echo in the room's order.
    RoomSend(RoomId),
    /// `/invite`: the invitee's KeyPackage, then the Commit that adds them.
    Invite {
        room: RoomId,
        nick: String,
    },
    Remove {
        room: RoomId,
        nick: String,
    },
    /// Another Commit of ours (a Remove, a key refresh).
    Commit(RoomId),
    /// KeyPackages for others to add us with.
    Upload,
    Title(RoomId),
    History(RoomId),
    /// A round trip whose answer only marks that earlier traffic has arrived.
    Sync,
}

/// Where an own message went: its echo comes back in that room.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Target {
    Room(RoomId),
    /// A direct conversation (its room may not exist yet when the text is typed).
    Peer(String),
}

/// The most own messages kept per target until their echo: MLS cannot decrypt one's own
/// messages, so an echo is shown with the text kept when it was typed.
const OUTBOX_MAX: usize = 256;

#[derive(Default)]
struct Ui {
    current: Option<RoomId>,
    titles: HashMap<RoomId, String>,
    pending: BTreeMap<u32, Pending>,
    /// The highest DM ID printed on this connection. A DM the server re-sends (it does
    /// for every unacknowledged one on `fetch_pending`) may already be queued here again
    /// before the ack of the first copy reached it; this keeps it from being printed twice.
    dm_shown: u64,
    /// Per room, the highest sequence number printed on this connection: a repeat the
    /// server sends before the ack of the first copy reached it is not printed again.
    room_shown: HashMap<RoomId, u64>,
    /// Per room, the lowest sequence number printed on this connection (live, caught up
    /// or by `/history`): where the next `/history` page ends.
    oldest_shown: HashMap<RoomId, u64>,
    /// Rooms announced at login whose missed messages are being printed (with dates).
    catching_up: BTreeSet<RoomId>,
    /// Room log entries handled on this connection, so `settle` can tell when the server
    /// has no more.
    room_printed: u64,
    /// Direct conversations: room and peer.
    directs: HashMap<RoomId, String>,
    /// Direct conversations a peer is opening with us, before the peer is in them.
    opening: HashSet<RoomId>,
    /// Own messages sent and not yet echoed, oldest first.
    outbox: HashMap<Target, VecDeque<String>>,
    /// Contacts whose changed key was announced with the full warning.
    key_warned: HashSet<String>,
    /// Rooms announced to have no group here (their messages cannot be read).
    lost_warned: HashSet<RoomId>,
    /// The `/history` page being shown has an encrypted message.
    history_unreadable: bool,
    /// That was explained (once a run).
    history_explained: bool,
    /// The login's catch-up is over: a room joined with no request is a live addition.
    logged_in: bool,
    quitting: bool,
    closed: bool,
}

impl Ui {
    /// How a room is called in lines: a direct conversation by its peer.
    fn label(&self, room: RoomId) -> String {
        match self.directs.get(&room) {
            Some(peer) => format!("dm with {peer}"),
            None => room.to_string(),
        }
    }

    /// Where own messages to `room` are kept until echoed.
    fn target(&self, room: RoomId) -> Target {
        match self.directs.get(&room) {
            Some(peer) => Target::Peer(peer.clone()),
            None => Target::Room(room),
        }
    }

    /// Keeps an own message until its echo.
    fn keep_sent(&mut self, target: Target, text: &str) {
        let q = self.outbox.entry(target).or_default();
        if q.len() >= OUTBOX_MAX {
            q.pop_front();
        }
        q.push_back(text.to_string());
    }
}

struct Shared {
    ui: Mutex<Ui>,
    changed: Condvar,
    /// The end-to-end layer. Lock order: `secure` before `ui`, never the other way.
    secure: Mutex<Secure>,
    me: String,
    /// This account's Ed25519 identity key, for safety numbers.
    my_key: [u8; 32],
    /// The server's address as given: the read markers are saved per server.
    server: String,
    dm_cursors: DmCursors,
    room_cursors: RoomCursors,
}

impl Shared {
    fn ui(&self) -> MutexGuard<'_, Ui> {
        self.ui.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn secure(&self) -> MutexGuard<'_, Secure> {
        self.secure.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Runs `cove chat`. Returns the process exit code.
pub fn run(args: ChatArgs) -> Result<i32, String> {
    if !valid_name(&args.name) {
        return Err(format!(
            "invalid nickname {:?}: use 1-{MAX_NAME_LEN} letters, digits, '_', '-' or '.'",
            args.name
        ));
    }
    let connect::Session {
        handle,
        events,
        welcome,
        dm_cursors,
        room_cursors,
        identity,
        data,
    } = connect::open(&args)?;
    let registered = welcome.mode == AuthMode::Register;
    let secure = match secure::open(&identity, &data, &args.server, &args.name, registered) {
        Ok(s) => s,
        Err(e) => {
            if handle.logout().is_err() {
                handle.close();
            }
            return Err(e);
        }
    };
    let verb = if registered {
        "registered and logged in"
    } else {
        "logged in"
    };
    let legacy = match welcome.pending {
        0 => String::new(),
        n => format!("; {n} unencrypted direct message(s) from older clients waiting"),
    };
    say(&format!(
        "* {verb} as {} on {}{legacy}. Messages are end-to-end encrypted. /help lists commands.",
        args.name, args.server
    ));

    let shared = Arc::new(Shared {
        ui: Mutex::new(Ui::default()),
        changed: Condvar::new(),
        secure: Mutex::new(secure),
        me: args.name.clone(),
        my_key: identity.public().ed25519,
        server: args.server.clone(),
        dm_cursors,
        room_cursors,
    });
    // Publish KeyPackages the first time (others add us from them), before any reply
    // is handled.
    secure::login(&shared, &handle);
    let printer = {
        let shared = shared.clone();
        let handle = handle.clone();
        thread::Builder::new()
            .name("cove-chat-events".into())
            .spawn(move || print_events(events, &shared, &handle))
            .map_err(|e| e.to_string())?
    };

    let linger = Duration::from_secs(args.linger);
    let mut pace = Pace::new();
    // The rooms' missed messages first, before any input is acted on.
    let settled = settle(&shared, &handle, &mut pace, linger);
    caught_up(&shared, &handle, settled);

    let stdin = io::stdin();
    for line in stdin.lock().lines() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                say(&format!("! cannot read input: {e}"));
                break;
            }
        };
        // One command at a time: wait for the answers to the previous line first, so a
        // script's "/create" has made a current room before its next line is sent.
        if !wait_answered(&shared, linger) {
            break;
        }
        if !input_line(&line, &handle, &shared, &mut pace) {
            break;
        }
    }

    // End of input or /quit: let in-flight requests be answered, then log out. If DMs
    // were waiting at login, ask for them once more: the answer comes after every one of
    // them, so they are all shown (and acknowledged) before the logout.
    if welcome.pending > 0 {
        let mut ui = shared.ui();
        if let Ok(req) = handle.fetch_pending() {
            ui.pending.insert(req, Pending::Sync);
        }
    }
    // And every room message the server still has for us is printed and acknowledged.
    if wait_answered(&shared, linger) {
        settle(&shared, &handle, &mut pace, linger);
    }
    shared.ui().quitting = true;
    if handle.logout().is_err() {
        handle.close();
    }
    let _ = printer.join();
    Ok(0)
}

/// Waits at most `limit` until every request sent has its answer. Returns false once
/// the connection is closed.
fn wait_answered(shared: &Shared, limit: Duration) -> bool {
    let mut ui = shared.ui();
    let deadline = Instant::now() + limit;
    while !ui.pending.is_empty() && !ui.closed {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            say(&format!(
                "! {} request(s) still unanswered after {} s",
                ui.pending.len(),
                limit.as_secs()
            ));
            ui.pending.clear();
            break;
        }
        ui = shared
            .changed
            .wait_timeout(ui, left)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
    !ui.closed
}

/// The login's catch-up is printed (`complete`) or the wait for it is over: later room
/// messages are live (printed undated unless old). Once every room was announced for
/// sure (`complete`), read markers of rooms the server no longer counts this user in are
/// dropped.
fn caught_up(shared: &Shared, handle: &Link, complete: bool) {
    let mut ui = shared.ui();
    ui.logged_in = true;
    let announced = std::mem::take(&mut ui.catching_up);
    let current = ui
        .current
        .map(|r| (r, ui.titles.get(&r).cloned().unwrap_or_default()));
    drop(ui);
    if !complete {
        return;
    }
    // Rooms read here before but not announced now: the user was removed (or the room
    // deleted) while offline. Their keys go first, then their markers (a crash in
    // between repeats this at the next login).
    match shared.room_cursors.all(&shared.server, &shared.me) {
        Ok(marked) => {
            let gone: Vec<RoomId> = marked
                .into_iter()
                .map(|(r, _)| r)
                .filter(|r| !announced.contains(r))
                .collect();
            secure::forget_rooms(shared, handle, &gone);
            secure::check_groups(shared, handle, &announced);
        }
        Err(e) => say(&format!("! cannot read the room read markers: {e}")),
    }
    if let Err(e) = shared
        .room_cursors
        .forget(&shared.server, &shared.me, |r| !announced.contains(&r))
    {
        say(&format!("! cannot update the room read markers: {e}"));
    }
    if let (false, Some((room, title))) = (announced.is_empty(), current) {
        say(&format!("* caught up; now talking in {room} \"{title}\""));
    }
}

fn print_events(events: EventIter, shared: &Shared, handle: &Link) {
    for ev in events {
        match ev {
            Event::Message(reply) => {
                let req = render::answered(&reply);
                // The session first: it acts on the reply (and its events and requests
                // follow) with the lock held, so its requests' IDs are recorded before
                // any answer to them is handled.
                let mut secure = shared.secure();
                let what = req.and_then(|req| shared.ui().pending.get(&req).cloned());
                secure.handle_reply(&reply);
                render::show(&reply, what.clone(), shared, handle);
                let shown_error = render::error_shown(&reply, what.as_ref());
                secure::pump(&mut secure, shared, handle, what.as_ref(), shown_error);
                drop(secure);
                // Only now is the request done: the next input line sees its effect
                // (for example the current room after /create, and the requests it led
                // to are pending already).
                if let Some(req) = req {
                    let mut ui = shared.ui();
                    ui.pending.remove(&req);
                    shared.changed.notify_all();
                }
            }
            Event::Closed { code, by_peer } => {
                let mut ui = shared.ui();
                ui.closed = true;
                shared.changed.notify_all();
                if ui.quitting && matches!(code, ErrorCode::ConnectionTerminated) {
                    say("* logged out");
                } else {
                    let who = if by_peer { "server" } else { "client" };
                    say(&format!("* disconnected by the {who}: {code}"));
                    if !ui.quitting {
                        // The input loop may be blocked on the terminal; nothing more can
                        // be sent, so end the program here (read markers are already saved).
                        std::process::exit(1);
                    }
                }
                return;
            }
            Event::LoggedIn(_) => {} // `connect` already consumed it as the Welcome
            _ => {}
        }
    }
    let mut ui = shared.ui();
    ui.closed = true;
    shared.changed.notify_all();
}
