//! The code a port runs, end to end against real servers: the core's blocking driver
//! (`cove_core::blocking`) over loopback TCP through embedded-io's std adapter, as a
//! board with 4 KiB frames would run it, and the bare-socket example against `cove serve`.

mod common;

use std::io::Read as _;
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Instant as StdInstant;

use common::{CliServer, T, TempDir};
use cove::store::SqliteStore;
use cove_core::Instant;
use cove_core::blocking::{BlockingClient, Clock, Login, ReadTimeout};
use cove_core::client::{ClientConfig, ClientEvent};
use cove_core::crypto::{Identity, RUST_CRYPTO, Suite};
use cove_core::hub::Reply;
use cove_core::time::Duration;
use cove_core::wire::{AuthMode, ErrorCode, HEADER_LEN, RoomId, ServerMsg};
use cove_std::client::{ClientOptions, Connection, Event, connect};
use cove_std::server::{Server, ServerOptions};
use embedded_io::{ErrorType, Read, Write};
use embedded_io_adapters::std::FromStd;

/// A loopback socket as a board's TCP stack presents it: embedded-io's `Read` and `Write`
/// (through the std adapter), and a read timeout.
struct Loopback(FromStd<TcpStream>);

impl ErrorType for Loopback {
    type Error = std::io::Error;
}

impl Read for Loopback {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        self.0.read(buf)
    }
}

impl Write for Loopback {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        self.0.flush()
    }
}

impl ReadTimeout for Loopback {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> Result<(), Self::Error> {
        let t = timeout.map(|d| std::time::Duration::from_micros(d.micros().max(1_000)));
        self.0.inner().set_read_timeout(t)
    }
    fn is_timeout(e: &Self::Error) -> bool {
        use std::io::ErrorKind::{Interrupted, TimedOut, WouldBlock};
        matches!(e.kind(), WouldBlock | TimedOut | Interrupted)
    }
}

/// The board's clock: microseconds since the test started.
struct HostClock(StdInstant);

impl Clock for HostClock {
    fn now(&mut self) -> Instant {
        Instant(self.0.elapsed().as_micros() as u64)
    }
}

const FRAME: u32 = 4096;
type Board<'b> = BlockingClient<'b, Loopback, HostClock, 2560, 2048>;

/// Polls the board until `f` picks an event, at most `T`.
fn poll_until<X>(
    bc: &mut Board<'_>,
    what: &str,
    mut f: impl FnMut(&ClientEvent<'_>) -> Option<X>,
) -> X {
    let deadline = StdInstant::now() + T;
    let mut found = None;
    while found.is_none() {
        assert!(StdInstant::now() < deadline, "timed out waiting for {what}");
        let open = bc.poll(|_, _, ev| found = found.take().or_else(|| f(&ev)));
        let open = open.unwrap_or_else(|e| panic!("waiting for {what}: {e}"));
        assert!(open || found.is_some(), "closed while waiting for {what}");
    }
    found.unwrap_or_else(|| unreachable!())
}

/// Waits on a cove-std connection for the room message `body` from `from`.
fn wait_room_message(c: &mut Connection, from: &str, body: &[u8]) {
    let got = c.events().wait_for(T, |e| match e {
        Event::Message(Reply::RoomMessage {
            from: f, body: b, ..
        }) if &**f == from && &b[..] == body => Some(()),
        _ => None,
    });
    assert!(got.is_some(), "no {body:?} from {from}");
}

/// Registers `name` on `addr` with cove-std's client and creates a room.
fn peer_with_room(addr: SocketAddr, name: &str) -> (Connection, RoomId) {
    let id = Identity::generate(&mut cove_std::os_rng());
    let mut otto = connect(addr, ClientOptions::new(name, AuthMode::Register, id)).expect("otto");
    let req = otto.create_room("port").expect("create");
    let room = otto.events().wait_for(T, |e| match e {
        Event::Message(Reply::RoomJoined { req: r, room, .. }) if *r == req => Some(*room),
        _ => None,
    });
    (otto, room.expect("the room"))
}

#[test]
fn the_board_driver_runs_a_whole_session_over_loopback() {
    let dir = TempDir::new("port-driver");
    let store = SqliteStore::open(dir.path().join("cove.db")).expect("store");
    let identity = Identity::generate(&mut cove_std::os_rng());
    let server =
        Server::bind("127.0.0.1:0", identity, store, ServerOptions::default()).expect("bind");
    let handle = server.handle();
    let thread = server.spawn().expect("spawn");
    let addr = handle.local_addr();
    let (mut otto, room) = peer_with_room(addr, "otto");

    let sock = TcpStream::connect(addr).expect("connect");
    sock.set_nodelay(true).expect("nodelay");
    let mut config = ClientConfig::new(Suite::ChaChaPoly, AuthMode::Register);
    config.max_frame = FRAME;
    // Keepalive every second bounds each read, so a wait that fails ends in time.
    config.ping_interval = Duration::from_secs(1);
    let board_id = Identity::generate(&mut cove_std::os_rng());
    let mut rng = cove_std::os_rng();
    let login = Login {
        config,
        provider: &RUST_CRYPTO,
        identity: &board_id,
        name: "board",
        rng: &mut rng,
    };
    let mut rx = [0u8; FRAME as usize + HEADER_LEN];
    let socket = Loopback(FromStd::new(sock));
    let clock = HostClock(StdInstant::now());
    let (mut bc, welcome) =
        Board::connect(socket, clock, &mut rx, login, |_, _, _| {}).expect("the board logs in");
    assert_eq!(welcome.mode, AuthMode::Register);

    let req = bc.command(|c, now| c.join_room(now, room)).expect("join");
    poll_until(&mut bc, "the join", |ev| match ev {
        ClientEvent::Message(ServerMsg::RoomJoined { req: r, .. }) if *r == req => Some(()),
        _ => None,
    });
    bc.command(|c, now| c.send_room(now, room, b"hello from the driver"))
        .expect("send");
    bc.flush().expect("flush");
    wait_room_message(&mut otto, "board", b"hello from the driver");

    // A body the board cannot take is refused to otto; a small one reaches the board.
    let req = otto.handle().send_room(room, &[7; 8_000]).expect("send");
    let refused = otto.events().wait_for(T, |e| match e {
        Event::Message(Reply::Error { req: r, code, .. }) if *r == req => Some(*code),
        _ => None,
    });
    assert_eq!(refused, Some(ErrorCode::TooLargeForRecipient));
    otto.handle().send_room(room, b"small").expect("send");
    let seq = poll_until(&mut bc, "otto's small message", |ev| match ev {
        ClientEvent::Message(ServerMsg::RoomMessage { seq, body, .. }) if *body == b"small" => {
            Some(*seq)
        }
        _ => None,
    });
    bc.command(|c, now| c.ack_room(now, room, seq))
        .expect("ack");

    // A key update, then more traffic under the new key.
    bc.client().request_key_update();
    bc.command(|c, now| c.send_room(now, room, b"after a key update"))
        .expect("send");
    bc.flush().expect("flush");
    wait_room_message(&mut otto, "board", b"after a key update");
    let stats = bc.client().session().map(|s| s.stats()).unwrap_or_default();
    assert_eq!(stats.key_updates_sent, 1);

    bc.command(|c, now| c.logout(now)).expect("logout");
    let code = poll_until(&mut bc, "the close", |ev| match ev {
        ClientEvent::Closed { code, .. } => Some(*code),
        _ => None,
    });
    assert_eq!(code, ErrorCode::ConnectionTerminated);
    assert!(bc.is_closed());
    handle.shutdown();
    thread
        .join()
        .expect("server thread")
        .expect("server stopped");
}

/// The bare-socket example, built by cargo beside this test's binary.
fn bare_socket_example() -> std::path::PathBuf {
    let status = Command::new(env!("CARGO"))
        .args(["build", "-q", "-p", "cove-core", "--example", "bare_socket"])
        .status()
        .expect("run cargo");
    assert!(status.success(), "cargo build --example bare_socket failed");
    let exe = std::env::current_exe().expect("this test's path");
    let debug = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    debug.join("examples").join("bare_socket")
}

#[test]
fn the_bare_socket_example_chats_with_cove_serve() {
    let example = bare_socket_example();
    let dir = TempDir::new("port-example");
    let server = CliServer::start(dir.path(), "std");
    let (mut otto, room) = peer_with_room(server.addr, "otto");
    let key: String = otto
        .welcome()
        .server_key
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let room_arg = room.to_string();
    let mut child = Command::new(&example)
        .args(["--addr", &server.addr.to_string(), "--name", "ada"])
        .args(["--room", &room_arg, "--message", "hi from ada"])
        .args(["--server-key", &key])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the example");
    wait_room_message(&mut otto, "ada", b"hi from ada");
    wait_room_message(&mut otto, "ada", b"hi from ada (after a key update)");
    let deadline = StdInstant::now() + T;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(StdInstant::now() < deadline, "the example did not finish");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read");
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("read");
    assert!(status.success(), "{out}\n{err}");
    for line in [
        format!("in room {room}"),
        format!("{room} #1 ada: hi from ada"),
        format!("{room} #2 ada: hi from ada (after a key update)"),
        "key updates sent: 1".to_string(),
        "logged out".to_string(),
    ] {
        assert!(
            out.lines().any(|l| l == line),
            "no line {line:?} in:\n{out}"
        );
    }
    // --help works without a server.
    let help = Command::new(&example).arg("--help").output().expect("help");
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--frame-limit"));
}
