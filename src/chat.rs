//! `cove chat`: an interactive line-mode client that also works with stdin from a pipe.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead, Write};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use clap::Args;
use cove_core::hub::Reply;
use cove_core::wire::{
    AckStatus, AuthMode, ErrorCode, MAX_NAME_LEN, ROOM_ALPHABET, RoomId, Status, valid_name,
};
use cove_std::client::{ClientOptions, ConnectError, Event};

use crate::files::{self, DmCursors, KnownServers, identity_path, key_fingerprint};
use crate::link::{EventIter, Link};
use crate::serve::{DEFAULT_LISTEN, RuntimeKind};

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

const HELP: &str = "\
commands:
  /create [title]     create a room and enter it
  /join ID            join a room by its 6-character ID
  /leave [ID]         leave a room (default: the current one)
  /switch ID          make a room you are in the current one
  /rooms              list rooms
  /users              list users and their status
  /msg NICK text      send a direct message (queued if NICK is offline)
  /status online|away set your presence
  /help               this list
  /quit               log out and exit
anything else is sent to the current room.";

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

/// Prints a line for people; control characters from the network are neutralized so a
/// peer cannot drive the terminal.
fn say(line: &str) {
    let clean: String = line
        .chars()
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect();
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{clean}");
    let _ = out.flush();
}

fn text_of(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

fn age(timestamp_us: u64) -> Option<String> {
    let now = cove_std::now().0;
    let secs = now.saturating_sub(timestamp_us) / 1_000_000;
    match secs {
        0..=59 => None,
        60..=3599 => Some(format!("{} min ago", secs / 60)),
        3600..=86_399 => Some(format!("{} h ago", secs / 3600)),
        _ => Some(format!("{} days ago", secs / 86_400)),
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
    let data = args.data.clone().unwrap_or_else(default_data_dir);
    let key_path = identity_path(&data, &args.name);
    let identity = if args.register {
        let (id, created) = files::load_or_create_identity(&key_path).map_err(|e| e.to_string())?;
        if created {
            say(&format!(
                "* created an identity key for {} in {} (fingerprint {})",
                args.name,
                key_path.display(),
                files::format_fingerprint(&id.fingerprint())
            ));
        }
        id
    } else if key_path.exists() {
        files::load_identity(&key_path).map_err(|e| e.to_string())?
    } else {
        return Err(format!(
            "no identity key for {} in {}. To create the account run:\n  cove chat --server {} --name {} --register",
            args.name,
            key_path.display(),
            args.server,
            args.name
        ));
    };

    let known_path = data.join("known_servers");
    let mut known = KnownServers::load(&known_path).map_err(|e| e.to_string())?;
    let pinned = known.get(&args.server);
    let cursors = DmCursors::new(&data.join("last_dm"));
    let last_dm = cursors
        .get(&args.server, &args.name)
        .map_err(|e| e.to_string())?;

    let mode = if args.register {
        AuthMode::Register
    } else {
        AuthMode::Login
    };
    let mut options = ClientOptions::new(&args.name, mode, identity);
    options.last_dm_id = last_dm;
    if let (Some(key), false) = (pinned, args.accept_new_server_key) {
        options = options.pin_server_key(key);
    }
    let (handle, events, welcome) =
        match crate::link::connect(args.runtime, args.server.as_str(), options) {
            Ok(c) => c,
            Err(e) => return Err(explain_connect_error(&e, &args, pinned, &known_path)),
        };
    if pinned != Some(welcome.server_key) {
        known
            .pin(&args.server, welcome.server_key)
            .map_err(|e| e.to_string())?;
        let what = if pinned.is_some() {
            "replaced the pinned key"
        } else {
            "first connection: pinned the server's key"
        };
        say(&format!(
            "* {what} for {} (fingerprint {}); compare it with the one `cove serve` printed",
            args.server,
            key_fingerprint(&welcome.server_key)
        ));
    }
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
        if !command(&line, &handle, &shared, &mut pace) {
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

fn explain_connect_error(
    e: &ConnectError,
    args: &ChatArgs,
    pinned: Option<[u8; 32]>,
    known_path: &std::path::Path,
) -> String {
    let nick = &args.name;
    match e {
        ConnectError::Closed {
            code: ErrorCode::AuthFailed,
            by_peer: false,
            server_key: None,
        } if pinned.is_some() => format!(
            "REFUSED: the server at {} did not prove the key pinned for it in {} \
             (fingerprint {}).\n\
             Someone may be intercepting the connection, or the operator replaced the server's key.\n\
             Ask the operator for the server's fingerprint (`cove serve` prints it). If the key was \
             changed on purpose, connect once with --accept-new-server-key to pin the new one.",
            args.server,
            known_path.display(),
            pinned.map(|k| key_fingerprint(&k)).unwrap_or_default()
        ),
        ConnectError::Closed {
            code: ErrorCode::UserExists,
            ..
        } => format!("the name {nick} is already registered on this server; pick another one"),
        ConnectError::Closed {
            code: ErrorCode::UserNotFound,
            ..
        } => format!(
            "there is no account {nick} on {}; create it with --register",
            args.server
        ),
        ConnectError::Closed {
            code: ErrorCode::AuthFailed,
            by_peer: true,
            ..
        } => format!(
            "the server refused the login: the account {nick} belongs to a different key than {}",
            identity_path(&args.data.clone().unwrap_or_else(default_data_dir), nick).display()
        ),
        ConnectError::Closed {
            code: ErrorCode::AlreadyConnected,
            ..
        } => format!("{nick} is already connected elsewhere"),
        other => format!("cannot connect to {}: {other}", args.server),
    }
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
fn command(line: &str, handle: &Link, shared: &Shared, pace: &mut Pace) -> bool {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() {
        return true;
    }
    if !matches!(line.trim(), "/help" | "/quit" | "/exit") && !line.starts_with("/switch") {
        pace.wait();
    }
    // Held from sending a request until it is recorded as pending, so its answer (which
    // the event thread may already be handling) always finds it.
    let mut ui = shared.ui();
    let (cmd, rest) = match line.strip_prefix('/') {
        Some(c) => {
            let c = c.trim_start();
            let (a, b) = c.split_once(char::is_whitespace).unwrap_or((c, ""));
            (Some(a), b.trim())
        }
        None => (None, line),
    };
    let sent = match cmd {
        None => match ui.current {
            Some(room) => handle
                .send_room(room, rest.as_bytes())
                .map(|req| Some((req, Pending::RoomSend(room)))),
            None => {
                say("! you are not in a room: /create or /join one first (or /msg NICK text)");
                return true;
            }
        },
        Some("help") => {
            say(HELP);
            return true;
        }
        Some("quit" | "exit") => return false,
        Some("create") => {
            let title = if rest.is_empty() {
                format!("{}'s room", shared.me)
            } else {
                rest.to_string()
            };
            handle
                .create_room(&title)
                .map(|req| Some((req, Pending::Create)))
        }
        Some("join") => match parse_room(rest) {
            Some(room) => handle
                .join_room(room)
                .map(|req| Some((req, Pending::Join(room)))),
            None => return true,
        },
        Some("leave") => {
            let room = if rest.is_empty() {
                ui.current
            } else {
                parse_room(rest)
            };
            match room {
                Some(room) => handle
                    .leave_room(room)
                    .map(|req| Some((req, Pending::Leave(room)))),
                None => {
                    if rest.is_empty() {
                        say("! you are not in a room");
                    }
                    return true;
                }
            }
        }
        Some("switch") => {
            if let Some(room) = parse_room(rest) {
                if handle.rooms().contains(&room) {
                    ui.current = Some(room);
                    say(&format!("* now talking in {room}"));
                } else {
                    say(&format!("! you are not in {room}; /join {room} first"));
                }
            }
            return true;
        }
        Some("rooms") => handle.list_rooms().map(|req| Some((req, Pending::Rooms))),
        Some("users") => handle.list_users().map(|req| Some((req, Pending::Users))),
        Some("msg") => {
            let (to, text) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            if to.is_empty() || text.trim().is_empty() {
                say("! usage: /msg NICK text");
                return true;
            }
            handle
                .send_dm(to, text.trim().as_bytes())
                .map(|req| Some((req, Pending::Dm(to.to_string()))))
        }
        Some("status") => {
            let status = match rest {
                "online" => Status::Online,
                "away" => Status::Away,
                _ => {
                    say("! usage: /status online|away");
                    return true;
                }
            };
            handle
                .set_status(status)
                .map(|req| Some((req, Pending::Status(status))))
        }
        Some(other) => {
            say(&format!("! unknown command /{other}; /help lists them"));
            return true;
        }
    };
    match sent {
        Ok(Some((req, what))) => {
            ui.pending.insert(req, what);
        }
        Ok(None) => {}
        Err(e) => say(&format!("! not sent: {e}")),
    }
    true
}

fn parse_room(s: &str) -> Option<RoomId> {
    let room = RoomId::parse(s.trim().as_bytes());
    if room.is_none() {
        say(&format!(
            "! {s:?} is not a room ID: 6 characters from {}",
            String::from_utf8_lossy(ROOM_ALPHABET)
        ));
    }
    room
}

/// The request ID a reply answers, if any.
fn answered(reply: &Reply) -> Option<u32> {
    match reply {
        Reply::PublicKey { req, .. }
        | Reply::MessageAck { req, .. }
        | Reply::UserList { req, .. }
        | Reply::Error { req, .. }
        | Reply::RoomJoined { req, .. }
        | Reply::RoomLeft { req, .. }
        | Reply::RoomList { req, .. }
        | Reply::PrekeyBundle { req, .. }
        | Reply::Ok { req }
        | Reply::PendingDone { req, .. } => Some(*req).filter(|r| *r != 0),
        _ => None,
    }
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
                let req = answered(&reply);
                let what = req.and_then(|req| shared.ui().pending.get(&req).cloned());
                show(&reply, what, shared, handle, cursors, server);
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
            Event::ServerIdentity { .. } | Event::Authenticated { .. } => {}
            _ => {}
        }
    }
    let mut ui = shared.ui();
    ui.closed = true;
    shared.changed.notify_all();
}

fn show(
    reply: &Reply,
    what: Option<Pending>,
    shared: &Shared,
    handle: &Link,
    cursors: &DmCursors,
    server: &str,
) {
    match reply {
        Reply::RoomMessage {
            room, from, body, ..
        } => {
            say(&format!("[{room}] {from}: {}", text_of(body)));
            if **from == *shared.me {
                // Our own message came back in the room's order: it was delivered.
                let mut ui = shared.ui();
                let mine = ui
                    .pending
                    .iter()
                    .find(|(_, p)| matches!(p, Pending::RoomSend(r) if r == room))
                    .map(|(req, _)| *req);
                if let Some(req) = mine {
                    ui.pending.remove(&req);
                    shared.changed.notify_all();
                }
            }
        }
        Reply::IncomingDm {
            from,
            body,
            timestamp,
            ..
        } => {
            let when = age(*timestamp)
                .map(|a| format!(" (sent {a})"))
                .unwrap_or_default();
            say(&format!("[dm from {from}]{when} {}", text_of(body)));
            if let Err(e) = cursors.set(server, &shared.me, handle.last_dm_id()) {
                say(&format!("! cannot save the read marker: {e}"));
            }
        }
        Reply::MessageAck { status, .. } => {
            let to = match &what {
                Some(Pending::Dm(to)) => to.as_str(),
                _ => "?",
            };
            match status {
                AckStatus::Delivered => say(&format!("[dm to {to}] delivered")),
                AckStatus::Queued => say(&format!(
                    "[dm to {to}] queued: {to} is offline and gets it on next login"
                )),
                AckStatus::Failed => {} // the Error that accompanies it says why
            }
        }
        Reply::RoomJoined {
            room,
            title,
            members,
            ..
        } => {
            let mut ui = shared.ui();
            ui.current = Some(*room);
            ui.titles.insert(*room, title.to_string());
            drop(ui);
            let names: Vec<&str> = members.iter().map(|m| &**m).collect();
            let verb = if matches!(what, Some(Pending::Create)) {
                "created"
            } else {
                "joined"
            };
            say(&format!(
                "* you {verb} room {room} \"{title}\" (members: {}); it is now your current room",
                names.join(", ")
            ));
        }
        Reply::RoomLeft { room, .. } => {
            let mut ui = shared.ui();
            if ui.current == Some(*room) {
                ui.current = handle.rooms().into_iter().find(|r| r != room);
            }
            let now_in = ui.current;
            drop(ui);
            match now_in {
                Some(r) => say(&format!("* you left {room}; now talking in {r}")),
                None => say(&format!("* you left {room}")),
            }
        }
        Reply::MemberJoined { room, name } => say(&format!("* {name} joined {room}")),
        Reply::MemberLeft { room, name } => say(&format!("* {name} left {room}")),
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
        Reply::Ok { .. } => {
            if let Some(Pending::Status(s)) = what {
                say(&format!("* your status is now {}", s.as_str()));
            }
        }
        Reply::Error { code, .. } => {
            let context = match &what {
                Some(Pending::Join(r)) => format!("/join {r}: "),
                Some(Pending::Leave(r)) => format!("/leave {r}: "),
                Some(Pending::Dm(to)) => format!("/msg {to}: "),
                Some(Pending::RoomSend(r)) => format!("message to {r}: "),
                Some(Pending::Create) => "/create: ".into(),
                _ => String::new(),
            };
            say(&format!("! {context}{code}"));
        }
        Reply::PublicKey { name, key, .. } => match key {
            Some(k) => say(&format!("{name}: key fingerprint {}", key_fingerprint(k))),
            None => say(&format!("{name}: no such user")),
        },
        Reply::PendingDone { count, .. } => {
            if !matches!(what, Some(Pending::Sync)) {
                say(&format!("* {count} pending message(s) re-sent"));
            }
        }
        Reply::Auth { .. } | Reply::PrekeyBundle { .. } | Reply::Close { .. } => {}
    }
}
