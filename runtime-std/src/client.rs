//! A blocking client for programs, on the core's [`Client`] state machine.
//!
//! [`connect`] opens the TCP connection, runs the handshake and the register-or-login,
//! and returns a [`Connection`]: commands are methods of its [`ClientHandle`] (a cheap,
//! cloneable handle usable from any thread), and what the server says arrives as owned
//! [`Event`]s on a bounded channel, read with [`Events`]. A reader thread per connection
//! drives the core: it reads with the core's timer as the read timeout, answers pings
//! (the core does that), and writes all pending bytes in one `write`.
//!
//! Direct messages are acknowledged by the program, with [`ClientHandle::ack_dm`], once
//! it has shown or stored one: a crash before that leaves the message on the server. Set
//! `config.auto_ack_dms` in the [`ClientOptions`] to have the core acknowledge on
//! receipt instead.
//!
//! ```no_run
//! use cove_core::wire::AuthMode;
//! use cove_std::client::{connect, ClientOptions, Event};
//! use std::time::Duration;
//!
//! let identity = cove_core::crypto::Identity::generate(&mut cove_std::os_rng());
//! let mut alice = connect("127.0.0.1:7878", ClientOptions::new("alice", AuthMode::Register, identity))?;
//! let req = alice.create_room("lobby")?;
//! let joined = alice.events().wait_for(Duration::from_secs(5), |e| match e {
//!     Event::Message(cove_core::hub::Reply::RoomJoined { req: r, room, .. }) if *r == req => Some(*room),
//!     _ => None,
//! });
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::ops::Deref;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use cove_core::client::{ClientError, ClientState, LargeClient as Client};
use cove_core::crypto::RING;
use cove_core::session::SessionStats;
use cove_core::wire::{ErrorCode, HEADER_LEN, RoomId, Status};
use tracing::debug;

use crate::{now, os_rng, until};

use cove_core::connect::owned;
pub use cove_core::connect::{ClientOptions, ConnectError, Event, Welcome};

fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Inner {
    client: Mutex<Box<Client>>,
    /// Held while taking bytes from the client and writing them, so writes keep order.
    writer: Mutex<TcpStream>,
    peer: SocketAddr,
}

impl Inner {
    /// Writes everything the client has pending, waiting for another thread's write to
    /// finish first. On failure the connection is closed.
    fn flush(&self) -> io::Result<()> {
        loop {
            self.write_pending(lock(&self.writer))?;
            // Checked once the writer lock is released: bytes the reader thread queued
            // while this thread wrote (it does not wait for the lock, see
            // `flush_if_idle`) are written by this thread.
            if lock(&self.client).pending_transmit().is_empty() {
                return Ok(());
            }
        }
    }

    /// For the reader thread: writes what is pending unless another thread is writing,
    /// which then writes it too. The reader never waits for a write: a program whose
    /// write blocks (the server reads it slowly: back-pressure) must go on reading, or
    /// the server, waiting for it to read, would never read its write.
    fn flush_if_idle(&self) -> io::Result<()> {
        let w = match self.writer.try_lock() {
            Ok(w) => w,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return Ok(()),
        };
        self.write_pending(w)
    }

    fn write_pending(&self, mut w: MutexGuard<'_, TcpStream>) -> io::Result<()> {
        let bytes = {
            let mut c = lock(&self.client);
            let bytes = c.pending_transmit().to_vec();
            c.advance_transmit(bytes.len());
            bytes
        };
        if bytes.is_empty() {
            return Ok(());
        }
        let r = w.write_all(&bytes);
        if let Err(e) = &r {
            debug!(peer = %self.peer, error = %e, "write failed; closing");
            lock(&self.client).handle_eof(now());
            let _ = w.shutdown(Shutdown::Both);
        }
        r
    }

    fn close(&self) {
        lock(&self.client).close(now(), ErrorCode::ConnectionTerminated);
        let _ = self.flush();
        let _ = lock(&self.writer).shutdown(Shutdown::Both);
    }
}

/// Commands of one connection. Cheap to clone; usable from any thread. Each command
/// returns the request ID its answer will carry.
#[derive(Clone)]
pub struct ClientHandle {
    inner: Arc<Inner>,
}

impl fmt::Debug for ClientHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientHandle")
            .field("peer", &self.inner.peer)
            .field("state", &self.state())
            .finish()
    }
}

impl ClientHandle {
    /// Runs `f` on the connection's core [`Client`] with the current time, then writes
    /// what it queued: for requests the named commands do not cover (for example the
    /// end-to-end layer's `Action::send`). When the transmit queue is full, `f` runs a
    /// second time after the pending bytes are written, so it must be safe to repeat
    /// after a `SendQueueFull` error (the core's commands are).
    pub fn run<T>(
        &self,
        f: impl FnMut(&mut Client, cove_core::Instant) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        self.command(f)
    }

    fn command<T>(
        &self,
        mut f: impl FnMut(&mut Client, cove_core::Instant) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        let first = f(&mut lock(&self.inner.client), now());
        let r = match first {
            Err(ClientError::SendQueueFull { .. }) => {
                // Write out what is pending, then try once more.
                let _ = self.inner.flush();
                f(&mut lock(&self.inner.client), now())
            }
            other => other,
        };
        // A failed write closes the connection; the reader reports `Closed`.
        let _ = self.inner.flush();
        r
    }

    /// Creates a room and joins it; the answer is `RoomJoined`.
    pub fn create_room(&self, title: &str) -> Result<u32, ClientError> {
        self.command(|c, now| c.create_room(now, title))
    }

    /// Creates a private room (joined by invitation only, not listed) as its admin; the
    /// answer is `RoomJoined`.
    pub fn create_private_room(&self, title: &str) -> Result<u32, ClientError> {
        self.command(|c, now| c.create_private_room(now, title))
    }

    /// Invites `name` to `room` (admin only); the answer is `Ok` or an error.
    pub fn invite(&self, room: RoomId, name: &str) -> Result<u32, ClientError> {
        self.command(|c, now| c.invite(now, room, name))
    }

    /// Removes `name` from `room` (admin only); the answer is `Ok` or an error.
    pub fn remove_member(&self, room: RoomId, name: &str) -> Result<u32, ClientError> {
        self.command(|c, now| c.remove_member(now, room, name))
    }

    /// Changes `room`'s title (admin only); the answer is `Ok` or an error.
    pub fn set_room_title(&self, room: RoomId, title: &str) -> Result<u32, ClientError> {
        self.command(|c, now| c.set_room_title(now, room, title))
    }

    /// Asks for up to `limit` retained messages of `room` before `before`; the answer is
    /// `HistoryMessage`s then `HistoryDone`.
    pub fn fetch_history(&self, room: RoomId, before: u64, limit: u8) -> Result<u32, ClientError> {
        self.command(|c, now| c.fetch_history(now, room, before, limit))
    }

    /// Acknowledges `room`'s messages up to `seq` once they are shown or stored (unless
    /// `config.auto_ack_rooms`).
    pub fn ack_room(&self, room: RoomId, seq: u64) -> Result<(), ClientError> {
        self.command(|c, now| c.ack_room(now, room, seq))
    }

    /// The highest sequence number of `room` acknowledged; persist it between runs
    /// (`ClientOptions::room_cursors`).
    pub fn room_cursor(&self, room: RoomId) -> u64 {
        lock(&self.inner.client).room_cursor(room)
    }

    /// Joins a room; the answer is `RoomJoined` or an error.
    pub fn join_room(&self, room: RoomId) -> Result<u32, ClientError> {
        self.command(|c, now| c.join_room(now, room))
    }

    /// Leaves a room; the answer is `RoomLeft` or an error.
    pub fn leave_room(&self, room: RoomId) -> Result<u32, ClientError> {
        self.command(|c, now| c.leave_room(now, room))
    }

    /// Lists rooms; the answer is `RoomList`.
    pub fn list_rooms(&self) -> Result<u32, ClientError> {
        self.command(|c, now| c.list_rooms(now))
    }

    /// Sends a message to a room the user is in.
    pub fn send_room(&self, room: RoomId, body: &[u8]) -> Result<u32, ClientError> {
        self.command(|c, now| c.send_room(now, room, body))
    }

    /// Sends a direct message; the answer is `MessageAck` (delivered, queued or failed).
    pub fn send_dm(&self, to: &str, body: &[u8]) -> Result<u32, ClientError> {
        self.command(|c, now| c.send_dm(now, to, body))
    }

    /// Sets presence (online or away).
    pub fn set_status(&self, status: Status) -> Result<u32, ClientError> {
        self.command(|c, now| c.set_status(now, status))
    }

    /// Lists users; the answer is `UserList`.
    pub fn list_users(&self) -> Result<u32, ClientError> {
        self.command(|c, now| c.list_users(now))
    }

    /// Asks for a user's identity key; the answer is `PublicKey`.
    pub fn get_public_key(&self, name: &str) -> Result<u32, ClientError> {
        self.command(|c, now| c.get_public_key(now, name))
    }

    /// Asks the server to re-send every unacknowledged DM; ends with `PendingDone`.
    pub fn fetch_pending(&self) -> Result<u32, ClientError> {
        self.command(|c, now| c.fetch_pending(now))
    }

    /// Stores this user's prekey bundle on the server.
    pub fn upload_prekeys(&self, bundle: &[u8]) -> Result<u32, ClientError> {
        self.command(|c, now| c.upload_prekeys(now, bundle))
    }

    /// Fetches a user's prekey bundle.
    pub fn fetch_prekeys(&self, name: &str) -> Result<u32, ClientError> {
        self.command(|c, now| c.fetch_prekeys(now, name))
    }

    /// Acknowledges direct message `msg_id` (from a `Reply::IncomingDm`) once the program
    /// has shown or stored it: the server deletes it and it is not shown again. Not
    /// needed with `config.auto_ack_dms`.
    pub fn ack_dm(&self, msg_id: u64) -> Result<(), ClientError> {
        self.command(|c, now| c.ack_dm(now, msg_id))
    }

    /// Rotates the sending key with the next record and asks the server to rotate too.
    pub fn request_key_update(&self) {
        lock(&self.inner.client).request_key_update();
    }

    /// Logs out; the server closes the connection (an `Event::Closed` follows).
    pub fn logout(&self) -> Result<(), ClientError> {
        self.command(|c, now| c.logout(now))
    }

    /// Closes from this side at once (an `Event::Closed` follows).
    pub fn close(&self) {
        self.inner.close();
    }

    /// Where the connection is.
    pub fn state(&self) -> ClientState {
        lock(&self.inner.client).state()
    }

    /// Rooms the user is in.
    pub fn rooms(&self) -> Vec<RoomId> {
        lock(&self.inner.client).rooms().to_vec()
    }

    /// The highest DM ID acknowledged so far: persist it for the next connection.
    pub fn last_dm_id(&self) -> u64 {
        lock(&self.inner.client).last_dm_id()
    }

    /// Record counters of the encrypted session (records, bytes, key updates).
    pub fn session_stats(&self) -> Option<SessionStats> {
        lock(&self.inner.client).session().map(|s| s.stats())
    }

    /// The server's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.inner.peer
    }
}

/// The events of one connection, in the order the server sent them.
pub struct Events {
    rx: Receiver<Event>,
    backlog: VecDeque<Event>,
    inner: Arc<Inner>,
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events")
            .field("backlog", &self.backlog.len())
            .finish_non_exhaustive()
    }
}

impl Events {
    /// The next event, waiting as long as it takes; `None` once the connection is over
    /// and every event was read.
    pub fn recv(&mut self) -> Option<Event> {
        self.backlog.pop_front().or_else(|| self.rx.recv().ok())
    }

    /// The next event, waiting at most `timeout`; `None` if there was none in time or the
    /// connection is over.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Option<Event> {
        if let Some(e) = self.backlog.pop_front() {
            return Some(e);
        }
        self.rx.recv_timeout(timeout).ok()
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Option<Event> {
        if let Some(e) = self.backlog.pop_front() {
            return Some(e);
        }
        self.rx.try_recv().ok()
    }

    /// Waits at most `timeout` for the first event `f` maps to `Some`, and returns that.
    /// Events passed over stay queued, in order, for later calls.
    pub fn wait_for<T>(
        &mut self,
        timeout: Duration,
        mut f: impl FnMut(&Event) -> Option<T>,
    ) -> Option<T> {
        if let Some(i) = self.backlog.iter().position(|e| f(e).is_some()) {
            let e = self.backlog.remove(i)?;
            return f(&e);
        }
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(e) => match f(&e) {
                    Some(t) => return Some(t),
                    None => self.backlog.push_back(e),
                },
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Every event received so far that no call has taken, without waiting.
    pub fn drain(&mut self) -> Vec<Event> {
        while let Ok(e) = self.rx.try_recv() {
            self.backlog.push_back(e);
        }
        self.backlog.drain(..).collect()
    }
}

impl Iterator for Events {
    type Item = Event;
    fn next(&mut self) -> Option<Event> {
        self.recv()
    }
}

impl Drop for Events {
    /// Nobody will read this connection's events any more: close it.
    fn drop(&mut self) {
        self.inner.close();
    }
}

/// One logged-in connection: the commands of [`ClientHandle`] (through `Deref`) and the
/// [`Events`]. Dropping it closes the connection.
pub struct Connection {
    handle: ClientHandle,
    events: Events,
    welcome: Welcome,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("handle", &self.handle)
            .field("welcome", &self.welcome)
            .finish()
    }
}

impl Deref for Connection {
    type Target = ClientHandle;
    fn deref(&self) -> &ClientHandle {
        &self.handle
    }
}

impl Connection {
    /// What the login said.
    pub fn welcome(&self) -> Welcome {
        self.welcome
    }

    /// A handle for commands from other threads.
    pub fn handle(&self) -> ClientHandle {
        self.handle.clone()
    }

    /// The events.
    pub fn events(&mut self) -> &mut Events {
        &mut self.events
    }

    /// Splits into the command handle and the events (for a reader thread).
    pub fn split(self) -> (ClientHandle, Events) {
        (self.handle, self.events)
    }
}

/// Connects to `addr`, runs the handshake and the register-or-login, and returns the
/// logged-in connection.
pub fn connect(
    addr: impl ToSocketAddrs,
    options: ClientOptions,
) -> Result<Connection, ConnectError> {
    let started = std::time::Instant::now();
    let mut last_err = None;
    let mut stream = None;
    for a in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&a, options.connect_timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_err = Some(e),
        }
    }
    let stream = match (stream, last_err) {
        (Some(s), _) => s,
        (None, Some(e)) => return Err(ConnectError::Io(e)),
        (None, None) => {
            return Err(ConnectError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the address resolved to nothing",
            )));
        }
    };
    stream.set_nodelay(true)?;
    let peer = stream.peer_addr()?;
    let max_frame = options.config.max_frame as usize;
    let mut client = Box::new(
        Client::new(
            now(),
            options.config.clone(),
            &RING,
            &options.identity,
            &options.name,
            &mut os_rng(),
        )
        .map_err(ConnectError::Handshake)?,
    );
    client.set_last_dm_id(options.last_dm_id);
    for (room, seq) in &options.room_cursors {
        client.set_room_cursor(*room, *seq);
    }
    let inner = Arc::new(Inner {
        client: Mutex::new(client),
        writer: Mutex::new(stream.try_clone()?),
        peer,
    });
    let (tx, rx) = sync_channel(options.event_queue.max(1));
    {
        let inner = inner.clone();
        thread::Builder::new()
            .name(format!("cove-client-{}", options.name))
            .spawn(move || run_reader(inner, stream, tx, max_frame))?;
    }
    let mut events = Events {
        rx,
        backlog: VecDeque::new(),
        inner: inner.clone(),
    };
    inner.flush()?;

    // The core reports one event for the whole handshake and login; anything else
    // before it is kept, in order, for the program.
    let deadline = started + options.connect_timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match events.rx.recv_timeout(left) {
            Ok(Event::LoggedIn(welcome)) => {
                return Ok(Connection {
                    handle: ClientHandle { inner },
                    events,
                    welcome,
                });
            }
            Ok(Event::Closed { code, by_peer }) => {
                let server_key = lock(&inner.client).server_key();
                return Err(ConnectError::Closed {
                    code,
                    by_peer,
                    server_key,
                });
            }
            Ok(other) => events.backlog.push_back(other),
            Err(_) => return Err(ConnectError::TimedOut), // dropping `events` closes
        }
    }
}

/// Reads the socket and drives the core until the connection closes.
fn run_reader(inner: Arc<Inner>, stream: TcpStream, tx: SyncSender<Event>, max_frame: usize) {
    let mut buf = vec![0u8; max_frame + HEADER_LEN];
    let mut filled = 0usize;
    let mut out = Vec::new();
    loop {
        let deadline = lock(&inner.client).poll_timeout();
        let wait = deadline.map(until);
        let read = match wait {
            Some(d) if d.is_zero() => None,
            _ => {
                let _ = stream.set_read_timeout(wait.map(|d| d.max(Duration::from_millis(1))));
                Some((&stream).read(&mut buf[filled..]))
            }
        };
        let now = now();
        let closed = {
            let mut c = lock(&inner.client);
            match read {
                None => c.handle_timeout(now),
                Some(Ok(0)) => c.handle_eof(now),
                Some(Ok(n)) => {
                    filled += n;
                    loop {
                        let input = c.handle_input(now, &mut buf[..filled]);
                        let used = input.consumed;
                        if let Some(ev) = input.event.and_then(owned) {
                            out.push(ev);
                        }
                        if used == 0 {
                            break;
                        }
                        buf.copy_within(used..filled, 0);
                        filled -= used;
                    }
                    if filled == buf.len() {
                        c.close(now, ErrorCode::FrameTooLarge);
                    }
                }
                Some(Err(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    c.handle_timeout(now)
                }
                Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Some(Err(_)) => c.handle_eof(now),
            }
            out.extend(std::iter::from_fn(|| c.poll_event()).filter_map(owned));
            c.state() == ClientState::Closed
        };
        // Acks and pongs the core queued.
        let _ = inner.flush_if_idle();
        for ev in out.drain(..) {
            // Blocks while the program is behind: back-pressure onto the socket.
            if tx.send(ev).is_err() {
                // Nobody listens any more.
                inner.close();
                return;
            }
        }
        if closed {
            let _ = lock(&inner.writer).shutdown(Shutdown::Both);
            return;
        }
    }
}
