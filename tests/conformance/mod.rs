//! The conformance suite: end-to-end tests over real loopback TCP that every runtime
//! adapter must pass. It is written once, against the [`Runtime`] trait; each adapter has
//! a small file in `tests/` that implements the trait and expands [`suite!`]:
//!
//! ```ignore
//! mod conformance;
//! struct Std;
//! impl conformance::Runtime for Std { /* start an in-process server */ }
//! conformance::suite!(Std);
//! ```
//!
//! The clients are cove-std's blocking client for every adapter: the suite checks the
//! server side. Servers are configured with the `cove` CLI's [`Limits`], so a test sets
//! limits the same way an operator does. Every wait has a deadline; nothing sleeps and
//! hopes.
#![allow(dead_code)] // each test binary uses the part of the harness its runtime needs

mod abuse;
mod backpressure;
mod frame_limits;
mod queues;
mod room_support;
mod rooms;
mod tests;

pub use abuse::*;
pub use backpressure::*;
pub use frame_limits::*;
pub use queues::*;
pub use room_support::*;
pub use rooms::*;
pub use tests::*;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::common::{CliServer, T, TempDir};

use cove::config::Limits;
use cove_core::crypto::Identity;
use cove_core::hub::Reply;
use cove_core::wire::{Alert, AuthMode, ErrorCode, FrameType, RoomId, decode_frame};
use cove_std::client::{ClientOptions, ConnectError, Connection, Event, connect};

/// What the suite needs from a runtime adapter.
pub trait Runtime {
    /// For messages.
    const NAME: &'static str;
    /// The value of `cove serve --runtime` that selects this adapter.
    const CLI_RUNTIME: &'static str;
    /// Starts an in-process server on `127.0.0.1:0` with a SQLite store at `setup.db`.
    fn start(setup: Setup) -> Box<dyn RunningServer>;
}

/// How to start a server.
pub struct Setup {
    /// Limits, as `cove serve` flags would set them.
    pub limits: Limits,
    /// The server's identity key.
    pub identity: Identity,
    /// The SQLite database file.
    pub db: PathBuf,
}

/// A server started by [`Runtime::start`].
pub trait RunningServer: Send {
    /// Where it listens.
    fn addr(&self) -> SocketAddr;
    /// The most bytes one connection's outbound queue has held since start.
    fn peak_outbound_bytes(&self) -> usize;
    /// Stops it gracefully; returns once it has stopped.
    fn stop(self: Box<Self>);
}

/// An in-process server with its data, restartable.
pub struct TestServer {
    running: Option<Box<dyn RunningServer>>,
    addr: SocketAddr,
    identity: Identity,
    limits: Limits,
    dir: TempDir,
    start: fn(Setup) -> Box<dyn RunningServer>,
}

impl TestServer {
    /// Starts a server of runtime `R` with `limits`.
    pub fn start<R: Runtime>(limits: Limits) -> TestServer {
        let dir = TempDir::new(R::NAME);
        let identity = Identity::generate(&mut cove_std::os_rng());
        let running = R::start(Setup {
            limits: limits.clone(),
            identity: identity.clone(),
            db: dir.path().join("cove.db"),
        });
        TestServer {
            addr: running.addr(),
            running: Some(running),
            identity,
            limits,
            dir,
            start: R::start,
        }
    }

    /// The most bytes one connection's outbound queue held, as the server counts them.
    pub fn peak_outbound_bytes(&self) -> usize {
        self.running.as_ref().map_or(0, |r| r.peak_outbound_bytes())
    }

    /// Where it listens now.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its Ed25519 identity key.
    pub fn key(&self) -> [u8; 32] {
        self.identity.public().ed25519
    }

    /// Stops gracefully.
    pub fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop();
        }
    }

    /// Stops and starts again on the same database and identity (on a new port).
    pub fn restart(&mut self) {
        self.stop();
        let running = (self.start)(Setup {
            limits: self.limits.clone(),
            identity: self.identity.clone(),
            db: self.dir.path().join("cove.db"),
        });
        self.addr = running.addr();
        self.running = Some(running);
    }

    /// Registers `name` with a fresh identity.
    pub fn register(&self, name: &str) -> (Connection, Identity) {
        let id = Identity::generate(&mut cove_std::os_rng());
        let c = self
            .try_connect(name, AuthMode::Register, &id)
            .unwrap_or_else(|e| panic!("register {name}: {e}"));
        (c, id)
    }

    /// Logs `name` in.
    pub fn login(&self, name: &str, id: &Identity) -> Connection {
        self.try_connect(name, AuthMode::Login, id)
            .unwrap_or_else(|e| panic!("login {name}: {e}"))
    }

    /// Connects with the default client options, pinning this server's key.
    pub fn try_connect(
        &self,
        name: &str,
        mode: AuthMode,
        id: &Identity,
    ) -> Result<Connection, ConnectError> {
        self.connect_with(ClientOptions::new(name, mode, id.clone()))
    }

    /// Connects with `options` (this server's key pinned unless another pin is set).
    pub fn connect_with(&self, mut options: ClientOptions) -> Result<Connection, ConnectError> {
        if options.config.server_key.is_none() {
            options.config.server_key = Some(self.key());
        }
        options.connect_timeout = T;
        connect(self.addr, options)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // A test failed: stop the server on another thread, so that a second panic
            // (a server that stopped with an error) is reported there instead of
            // aborting the whole test binary and hiding the first failure.
            if let Some(r) = self.running.take() {
                let _ = std::thread::spawn(move || r.stop()).join();
            }
            return;
        }
        self.stop();
    }
}

/// Waits for the first event `f` picks, or panics naming `what` and what came instead.
pub fn wait<T>(c: &mut Connection, what: &str, f: impl FnMut(&Event) -> Option<T>) -> T {
    match c.events().wait_for(T, f) {
        Some(t) => t,
        None => {
            let seen = c.events().drain();
            panic!("timed out waiting for {what}; other events: {seen:?}")
        }
    }
}

/// Waits for the reply to request `req`.
pub fn reply(c: &mut Connection, req: u32) -> Reply {
    wait(c, &format!("the reply to request {req}"), |e| match e {
        Event::Message(r) if request_of(r) == Some(req) => Some(r.clone()),
        _ => None,
    })
}

/// Waits for the `Closed` event.
pub fn closed(c: &mut Connection) -> (ErrorCode, bool) {
    wait(c, "the connection to close", |e| match e {
        Event::Closed { code, by_peer } => Some((*code, *by_peer)),
        _ => None,
    })
}

/// The request ID a reply answers (0 and `None` for notices).
pub fn request_of(r: &Reply) -> Option<u32> {
    match r {
        Reply::PublicKey { req, .. }
        | Reply::MessageAck { req, .. }
        | Reply::UserList { req, .. }
        | Reply::Error { req, .. }
        | Reply::RoomJoined { req, .. }
        | Reply::RoomLeft { req, .. }
        | Reply::RoomList { req, .. }
        | Reply::PrekeyBundle { req, .. }
        | Reply::Ok { req }
        | Reply::PendingDone { req, .. }
        | Reply::HistoryMessage { req, .. }
        | Reply::HistoryDone { req, .. } => Some(*req),
        _ => None,
    }
}

/// Creates a public room; returns its ID.
pub fn create_room(c: &mut Connection, title: &str) -> RoomId {
    let req = c.create_room(title).expect("create");
    match reply(c, req) {
        Reply::RoomJoined { room, members, .. } => {
            assert_eq!(members.len(), 1);
            room
        }
        other => panic!("expected RoomJoined, got {other:?}"),
    }
}

/// Joins `room`; returns its members.
pub fn join(c: &mut Connection, room: RoomId) -> Vec<Arc<str>> {
    let req = c.join_room(room).expect("join");
    match reply(c, req) {
        Reply::RoomJoined {
            room: r, members, ..
        } => {
            assert_eq!(r, room);
            members
        }
        other => panic!("expected RoomJoined, got {other:?}"),
    }
}

/// The error code of an `Error` reply.
pub fn error_code(r: &Reply) -> Option<ErrorCode> {
    match r {
        Reply::Error { code, .. } => Some(*code),
        _ => None,
    }
}

/// Logs out and waits for the close.
pub fn logout(mut c: Connection) {
    c.logout().expect("logout");
    closed(&mut c);
}

/// A round trip on `c`: everything the server sent `c` before the answer has arrived,
/// and everything `c` sent before it was handled.
pub fn sync(c: &mut Connection) {
    let req = c.list_users().expect("list users");
    match reply(c, req) {
        Reply::UserList { .. } => {}
        other => panic!("expected a user list, got {other:?}"),
    }
}

/// Polls `cond` until it holds or `T` passes (for state only visible from outside,
/// such as "the server accepts again").
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + T;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What a raw socket received until the server closed it.
#[derive(Debug)]
pub struct RawClose {
    /// The code of the first alert frame, if any.
    pub alert: Option<ErrorCode>,
    /// How long after the call the server closed.
    pub after: Duration,
}

/// Reads a raw connection until EOF (or an error such as a reset), at most `T`.
/// Panics if the server keeps it open longer.
pub fn read_until_closed(s: &mut TcpStream) -> RawClose {
    let start = Instant::now();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let left = T.saturating_sub(start.elapsed());
        assert!(!left.is_zero(), "the server kept the connection open");
        s.set_read_timeout(Some(left)).expect("timeout");
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                panic!("the server kept the connection open")
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                panic!("the server kept the connection open")
            }
            Err(_) => break, // reset: closed
        }
    }
    let after = start.elapsed();
    let mut alert = None;
    let mut rest = &buf[..];
    while let Ok(Some((frame, used))) = decode_frame(rest, u32::MAX) {
        if frame.typ == FrameType::Alert {
            alert = Alert::decode(frame.payload).ok().map(|a| a.code);
            break;
        }
        rest = &rest[used..];
    }
    RawClose { alert, after }
}

/// Opens a raw TCP connection and writes `bytes`.
pub fn raw(addr: SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(bytes).expect("write");
    s
}

/// Expands to one `#[test]` per conformance test, for runtime `$rt`.
macro_rules! suite {
    ($rt:ty) => {
        $crate::conformance::suite!(@tests $rt;
            handshake_register_and_login,
            wrong_key_is_refused,
            name_already_taken,
            unknown_user_cannot_log_in,
            changed_server_key_is_refused,
            rooms_create_join_leave_list,
            twenty_first_join_is_refused,
            all_members_see_the_same_order,
            direct_messages_live_and_offline,
            presence_updates_reach_room_peers,
            rate_limit_answers_with_an_error,
            rate_limit_closes_a_persistent_flooder,
            oversize_frame_gets_an_error_and_a_close,
            four_gib_length_prefix_is_refused_at_once,
            garbage_bytes_are_refused,
            silent_connection_hits_the_handshake_deadline,
            reader_that_never_reads_is_cut_off,
            key_rotation_under_traffic_loses_nothing,
            restart_keeps_accounts_and_queued_dms,
            kill_9_after_queued_ack_then_restart_delivers_once,
            many_connections_at_once,
            connection_cap_refuses_with_a_reason,
            bad_nicknames_get_a_clear_error,
            unknown_room_gets_a_clear_error,
            graceful_shutdown_tells_every_client,
            room_membership_survives_a_graceful_restart,
            room_catch_up_survives_kill_9_exactly_once,
            private_rooms_need_an_invitation,
            admin_removes_a_member,
            catch_up_flows_in_window_sized_bursts,
            catch_up_and_history_read_older_messages_from_the_store,
            history_pages_backwards_in_order,
            retention_gap_is_announced_before_the_replay,
            idle_sockets_from_one_address_do_not_keep_others_out,
            registration_from_one_address_is_throttled,
            a_reconnecting_flooder_stays_at_the_accounts_rate,
            maximum_size_bodies_are_delivered_and_one_byte_more_is_refused,
            non_reader_of_large_messages_is_cut_off_by_bytes,
            small_frame_member_is_never_cut_off_and_large_senders_are_refused,
            flat_out_burst_loses_nothing_and_cuts_no_reader,
            non_reader_is_cut_off_and_its_room_goes_on,
        );
    };
    (@tests $rt:ty; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::conformance::$name::<$rt>();
            }
        )*
    };
}
pub(crate) use suite;
