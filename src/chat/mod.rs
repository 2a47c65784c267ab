//! `cove chat`: an interactive line-mode client that also works with stdin from a pipe.
//!
//! [`run`] reads input lines, `commands` turns each into a typed command, and a second
//! thread prints what the server sends through `render`, which also makes text from
//! others safe to print.

mod commands;
mod connect;
mod cursors;
mod input;
mod render;
mod rooms;

use std::collections::{BTreeMap, BTreeSet, HashMap};
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
    /// Directory of your identity keys, pinned server keys and read markers (of direct
    /// messages and of rooms).
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
#[derive(Clone, Debug)]
enum Pending {
    Create,
    Join(RoomId),
    Leave(RoomId),
    Rooms,
    Users,
    Dm(String),
    Status(Status),
    RoomSend(RoomId),
    Invite {
        room: RoomId,
        nick: String,
    },
    Remove {
        room: RoomId,
        nick: String,
    },
    Title(RoomId),
    History(RoomId),
    /// A round trip whose answer only marks that earlier traffic has arrived.
    Sync,
}

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
    /// Room messages printed on this connection, so `settle` can tell when the server
    /// has no more.
    room_printed: u64,
    quitting: bool,
    closed: bool,
}

struct Shared {
    ui: Mutex<Ui>,
    changed: Condvar,
    me: String,
    /// The server's address as given: the read markers are saved per server.
    server: String,
    dm_cursors: DmCursors,
    room_cursors: RoomCursors,
}

impl Shared {
    fn ui(&self) -> MutexGuard<'_, Ui> {
        self.ui.lock().unwrap_or_else(PoisonError::into_inner)
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
    } = connect::open(&args)?;
    let verb = if welcome.mode == AuthMode::Register {
        "registered and logged in"
    } else {
        "logged in"
    };
    say(&format!(
        "* {verb} as {} on {}; {} direct message(s) waiting. /help lists commands.",
        args.name, args.server, welcome.pending
    ));

    let shared = Arc::new(Shared {
        ui: Mutex::new(Ui::default()),
        changed: Condvar::new(),
        me: args.name.clone(),
        server: args.server.clone(),
        dm_cursors,
        room_cursors,
    });
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
    caught_up(&shared, settled);

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
fn caught_up(shared: &Shared, complete: bool) {
    let mut ui = shared.ui();
    let announced = std::mem::take(&mut ui.catching_up);
    let current = ui
        .current
        .map(|r| (r, ui.titles.get(&r).cloned().unwrap_or_default()));
    drop(ui);
    if !complete {
        return;
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
                let what = req.and_then(|req| shared.ui().pending.get(&req).cloned());
                render::show(&reply, what, shared, handle);
                // Only now is the request done: the next input line sees its effect
                // (for example the current room after /create).
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
