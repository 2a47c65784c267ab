//! `cove chat`: an interactive line-mode client that also works with stdin from a pipe.
//!
//! [`run`] reads input lines, `commands` turns each into a typed command, and a second
//! thread prints what the server sends through `render`, which also makes text from
//! others safe to print.

mod commands;
mod connect;
mod render;

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use clap::Args;
use cove_core::wire::{AuthMode, ErrorCode, MAX_NAME_LEN, RoomId, Status, valid_name};
use cove_std::client::Event;

use crate::files::DmCursors;
use crate::link::{EventIter, Link};
use crate::serve::{DEFAULT_LISTEN, RuntimeKind};
use commands::{Command, HELP};
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
    /// Directory of your identity keys, pinned server keys and read markers.
    /// Default: $COVE_HOME, else ~/.cove.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Trust the key the server presents now even if it differs from the one pinned
    /// earlier (only after checking its fingerprint with the operator).
    #[arg(long)]
    pub accept_new_server_key: bool,
    /// Wait at most this long for the server to answer one line before reading the next
    /// (and, at the end of piped input, before logging out).
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
    quitting: bool,
    closed: bool,
}

struct Shared {
    ui: Mutex<Ui>,
    changed: Condvar,
    me: String,
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
        cursors,
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
    });
    let printer = {
        let shared = shared.clone();
        let server = args.server.clone();
        let handle = handle.clone();
        thread::Builder::new()
            .name("cove-chat-events".into())
            .spawn(move || print_events(events, &shared, &handle, &cursors, &server))
            .map_err(|e| e.to_string())?
    };

    let stdin = io::stdin();
    let mut pace = Pace::new();
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
        if !wait_answered(&shared, Duration::from_secs(args.linger)) {
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
    wait_answered(&shared, Duration::from_secs(args.linger));
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
    let deadline = std::time::Instant::now() + limit;
    while !ui.pending.is_empty() && !ui.closed {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
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

/// Requests per second the client allows itself, and its burst: below the server's
/// default limit (50/s, burst 100), so a pasted block or a piped script is slowed down
/// instead of being refused.
const PACE_PER_SEC: f64 = 20.0;
const PACE_BURST: f64 = 40.0;

/// A token bucket the input loop waits on before each request.
struct Pace {
    tokens: f64,
    last: std::time::Instant,
}

impl Pace {
    fn new() -> Pace {
        Pace {
            tokens: PACE_BURST,
            last: std::time::Instant::now(),
        }
    }

    /// Waits until a request may go out.
    fn wait(&mut self) {
        let now = std::time::Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * PACE_PER_SEC;
        self.tokens = (self.tokens + refill).min(PACE_BURST);
        self.last = now;
        if self.tokens < 1.0 {
            let short = (1.0 - self.tokens) / PACE_PER_SEC;
            thread::sleep(Duration::from_secs_f64(short));
            self.tokens = 1.0;
            self.last = std::time::Instant::now();
        }
        self.tokens -= 1.0;
    }
}

/// Handles one input line. Returns false to stop reading input.
fn input_line(line: &str, handle: &Link, shared: &Shared, pace: &mut Pace) -> bool {
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
        Command::Create(title) => {
            let title = title.unwrap_or_else(|| format!("{}'s room", shared.me));
            handle.create_room(&title).map(|req| (req, Pending::Create))
        }
        Command::Join(room) => handle.join_room(room).map(|req| (req, Pending::Join(room))),
        Command::Leave(room) => match room.or(ui.current) {
            Some(room) => handle
                .leave_room(room)
                .map(|req| (req, Pending::Leave(room))),
            None => {
                say("! you are not in a room");
                return true;
            }
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
    };
    match sent {
        Ok((req, what)) => {
            ui.pending.insert(req, what);
        }
        Err(e) => say(&format!("! not sent: {e}")),
    }
    true
}

fn print_events(
    events: EventIter,
    shared: &Shared,
    handle: &Link,
    cursors: &DmCursors,
    server: &str,
) {
    for ev in events {
        match ev {
            Event::Message(reply) => {
                let req = render::answered(&reply);
                let what = req.and_then(|req| shared.ui().pending.get(&req).cloned());
                render::show(&reply, what, shared, handle, cursors, server);
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
