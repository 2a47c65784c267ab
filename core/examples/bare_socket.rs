//! A complete cove client on a plain `std::net::TcpStream`, using nothing but cove-core:
//! the code of the porting guide (docs/PORTING.md). It registers a fresh account, joins
//! a room (or creates one), sends a message and receives it back, rotates its keys,
//! sends again and logs out, announcing a 4 KiB frame limit as a small board would.
//!
//! ```text
//! cargo run -p cove-core --example bare_socket -- --addr 127.0.0.1:7667 --name ada
//! ```
//!
//! The drain order, after every input to the core (bytes, a timer, a command):
//!
//! 1. `handle_input` once per frame until it consumes nothing, acting on the event each
//!    call returns before the next call (the event borrows the receive buffer);
//! 2. `poll_event` until it is empty (closes that come from timers or commands);
//! 3. write `pending_transmit` and `advance_transmit` by what the socket took;
//! 4. block until input or `poll_timeout`, and call `handle_timeout` once it is due.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use cove_core::Instant;
use cove_core::client::{Client, ClientConfig, ClientEvent};
use cove_core::crypto::{Identity, RUST_CRYPTO, Suite};
use cove_core::wire::{AuthMode, HEADER_LEN, RoomId, ServerMsg};

const HELP: &str = "bare_socket: a cove client on a bare TCP socket, using only cove-core

usage: bare_socket --addr HOST:PORT --name NAME [--room ID] [--message TEXT]
                   [--frame-limit BYTES] [--server-key HEX]

  --addr         the server (cove serve)
  --name         the nickname to register (a fresh identity is made each run)
  --room         join this room; without it a new room is created
  --message      what to send (default: hello from a bare socket)
  --frame-limit  the largest frame to accept, announced to the server (default 4096)
  --server-key   the server's Ed25519 key in hex: refuse any other server
  --help         this text";

/// A client sized for a 4 KiB frame limit: 8 KiB of transmit queue, 4 KiB messages.
type Board = Client<8192, 4096>;

struct Conn {
    sock: TcpStream,
    client: Box<Board>,
    buf: Vec<u8>,
    filled: usize,
    start: std::time::Instant,
}

impl Conn {
    /// The core's clock is the caller's: microseconds since this connection started.
    fn now(&self) -> Instant {
        Instant(self.start.elapsed().as_micros() as u64)
    }

    /// Step 3: write everything the core queued.
    fn flush(&mut self) -> std::io::Result<()> {
        let out = self.client.pending_transmit();
        let n = out.len();
        self.sock.write_all(out)?;
        self.client.advance_transmit(n);
        Ok(())
    }

    /// Runs the drain order until `done` accepts an event, printing every event.
    fn run_until(
        &mut self,
        what: &str,
        mut done: impl FnMut(&mut Board, Instant, &ClientEvent<'_>) -> bool,
    ) -> Result<(), String> {
        loop {
            self.flush().map_err(|e| format!("write: {e}"))?;
            // Step 4: block until input arrives or the next timer is due.
            let now = self.now();
            let wait = (self.client.poll_timeout())
                .map(|t| Duration::from_micros((t - now).micros()).max(Duration::from_millis(1)));
            self.sock
                .set_read_timeout(wait)
                .map_err(|e| e.to_string())?;
            match self.sock.read(&mut self.buf[self.filled..]) {
                Ok(0) => self.client.handle_eof(self.now()),
                Ok(n) => self.filled += n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("read: {e}")),
            }
            let now = self.now();
            let mut found = false;
            // Step 1: one whole frame per call; keep a partial frame for the next read.
            loop {
                let input = self.client.handle_input(now, &mut self.buf[..self.filled]);
                let used = input.consumed;
                if let Some(ev) = input.event {
                    show(&ev);
                    found |= done(&mut self.client, now, &ev);
                }
                if used == 0 {
                    break;
                }
                self.buf.copy_within(used..self.filled, 0);
                self.filled -= used;
            }
            if self.client.poll_timeout().is_some_and(|t| t <= now) {
                self.client.handle_timeout(now); // keepalive pings, deadlines
            }
            // Step 2: events that no frame carried.
            while let Some(ev) = self.client.poll_event() {
                show(&ev);
                found |= done(&mut self.client, now, &ev);
            }
            if found {
                return self.flush().map_err(|e| format!("write: {e}"));
            }
            if self.client.close_code().is_some() {
                return Err(format!("the connection closed before {what}"));
            }
        }
    }
}

fn show(ev: &ClientEvent<'_>) {
    match ev {
        ClientEvent::LoggedIn { server_key, .. } => {
            let key: String = server_key.iter().map(|b| format!("{b:02x}")).collect();
            println!("logged in; server key {key}");
        }
        ClientEvent::Message(ServerMsg::RoomJoined { room, .. }) => println!("in room {room}"),
        ClientEvent::Message(ServerMsg::RoomMessage {
            room,
            seq,
            from,
            body,
            ..
        }) => println!("{room} #{seq} {from}: {}", String::from_utf8_lossy(body)),
        ClientEvent::Message(ServerMsg::Error { code, .. }) => println!("error: {code}"),
        ClientEvent::Message(_) => {}
        ClientEvent::Closed { code, by_peer } => println!("closed: {code} (by server: {by_peer})"),
    }
}

/// Sends `text` to `room` and waits for the server to relay it back, then acknowledges
/// it (after it was shown: that is when the application has it).
fn say(c: &mut Conn, room: RoomId, name: &str, text: &str) -> Result<(), String> {
    let now = c.now();
    c.client
        .send_room(now, room, text.as_bytes())
        .map_err(|e| e.to_string())?;
    c.run_until("our message came back", |client, now, ev| match ev {
        ClientEvent::Message(ServerMsg::RoomMessage {
            seq, from, body, ..
        }) if *from == name && *body == text.as_bytes() => client.ack_room(now, room, *seq).is_ok(),
        _ => false,
    })
}

fn run(args: &[String]) -> Result<(), String> {
    let arg = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
    };
    let (Some(addr), Some(name)) = (arg("--addr"), arg("--name")) else {
        return Err(format!("--addr and --name are required\n\n{HELP}"));
    };
    let text = arg("--message").map_or("hello from a bare socket", |s| s);
    let mut config = ClientConfig::new(Suite::ChaChaPoly, AuthMode::Register);
    config.max_frame = arg("--frame-limit")
        .map_or(Ok(4096), |s| s.parse())
        .map_err(|_| "bad --frame-limit")?;
    if let Some(hex_key) = arg("--server-key") {
        let key = hex::decode(hex_key)
            .ok()
            .and_then(|k| <[u8; 32]>::try_from(k).ok());
        config.server_key = Some(key.ok_or("--server-key takes 64 hex digits")?);
    }
    // The board would use its hardware RNG here; a host uses the operating system's.
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let identity = Identity::generate(&mut rng);
    let sock = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    sock.set_nodelay(true).map_err(|e| e.to_string())?;
    let buf = vec![0; config.max_frame as usize + HEADER_LEN]; // one whole frame
    let client = Board::new(Instant(0), config, &RUST_CRYPTO, &identity, name, &mut rng)
        .map_err(|e| format!("cannot start: {e}"))?;
    let (client, start) = (Box::new(client), std::time::Instant::now());
    let mut c = Conn {
        sock,
        client,
        buf,
        filled: 0,
        start,
    };
    // Client::new queued the SYN: the drain order writes it and runs the handshake.
    c.run_until("the login", |_, _, ev| {
        matches!(ev, ClientEvent::LoggedIn { .. })
    })?;

    let now = c.now();
    let wanted = arg("--room").map(|r| RoomId::parse(r.as_bytes()).ok_or("bad --room"));
    let req = match wanted.transpose()? {
        Some(room) => c.client.join_room(now, room),
        None => c.client.create_room(now, "bare socket"),
    };
    let req = req.map_err(|e| e.to_string())?;
    let mut room = None;
    c.run_until("the room was joined", |_, _, ev| match ev {
        ClientEvent::Message(ServerMsg::RoomJoined {
            req: r, room: id, ..
        }) if *r == req => {
            room = Some(*id);
            true
        }
        _ => false,
    })?;
    let room = room.ok_or("no room")?;

    say(&mut c, room, name, text)?;
    // Rotate the sending keys: the next record carries a KeyUpdate first.
    c.client.request_key_update();
    say(&mut c, room, name, &format!("{text} (after a key update)"))?;
    let stats = c.client.session().map(|s| s.stats()).unwrap_or_default();
    println!("key updates sent: {}", stats.key_updates_sent);

    let now = c.now();
    c.client.logout(now).map_err(|e| e.to_string())?;
    c.run_until("the logout", |_, _, ev| {
        matches!(ev, ClientEvent::Closed { .. })
    })?;
    println!("logged out");
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        let _ = writeln!(std::io::stdout(), "{HELP}"); // a closed pipe is not an error
        return;
    }
    if let Err(e) = run(&args) {
        eprintln!("bare_socket: {e}");
        std::process::exit(1);
    }
}
