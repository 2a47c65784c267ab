//! An async client for programs, on the core's [`Client`] state machine, over any stream
//! with the `futures-io` traits.
//!
//! [`connect`] opens a TCP connection with smol, spawns the connection's [`Driver`] on
//! smol's global executor, runs the handshake and the register-or-login, and returns a
//! [`Connection`]: commands are methods of its [`ClientHandle`] (cheap to clone, usable
//! from any task or thread), and what the server says arrives as owned [`Event`]s from a
//! bounded queue, read with [`Events`]. [`connect_stream`] does the same over a stream
//! the program opened itself, spawning the driver with any [`Spawn`]; [`start`] hands
//! the driver back for the program to run however it likes.
//!
//! The driver reads with the core's timer armed (an async-io [`Timer`]), lets the core
//! answer pings, and writes all pending bytes in one `poll_write`. When the program falls
//! behind reading events, the queue fills and the driver stops reading the socket:
//! back-pressure, not loss.
//!
//! A direct message is acknowledged by the program, with [`ClientHandle::ack_dm`], once
//! it has shown or stored it: the server keeps it (and sends it again on the next
//! connection) until then, so a crash in between loses nothing. Set
//! `options.config.auto_ack_dms` to have the core acknowledge on receipt instead.
//!
//! ```no_run
//! use cove_core::wire::AuthMode;
//! use cove_smol::client::{connect, ClientOptions, Event};
//! use std::time::Duration;
//!
//! smol::block_on(async {
//!     let identity = cove_core::crypto::Identity::generate(&mut cove_smol::os_rng());
//!     let options = ClientOptions::new("alice", AuthMode::Register, identity);
//!     let mut alice = connect("127.0.0.1:7878", options).await?;
//!     let req = alice.create_room("lobby").await?;
//!     let joined = alice.events().wait_for(Duration::from_secs(5), |e| match e {
//!         Event::Message(cove_core::hub::Reply::RoomJoined { req: r, room, .. }) if *r == req => Some(*room),
//!         _ => None,
//!     }).await;
//!     Ok::<(), Box<dyn std::error::Error>>(())
//! })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::ops::Deref;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use cove_core::client::{ClientError, ClientState, LargeClient as Client};
use cove_core::crypto::RING;
use cove_core::session::SessionStats;
use cove_core::wire::{ErrorCode, HEADER_LEN, RoomId, Status};
use event_listener::Event as Notify;
use futures_lite::{AsyncRead, AsyncWrite, Stream};
use smol::{Async, Timer};

use crate::mailbox::Mailbox;
use crate::{SmolGlobal, Spawn, now, os_rng};

mod driver;

pub use cove_core::connect::{ClientOptions, ConnectError, Event, Welcome};
pub use driver::Driver;

fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the handle, the events and the driver of one connection share.
struct Inner {
    client: Mutex<Box<Client>>,
    /// The driver's waker: a command that queued bytes wakes it to write them.
    driver: Mutex<Option<Waker>>,
    /// Signalled when the driver wrote (room in the transmit queue) or ended.
    drained: Notify,
    events: Mailbox<Event, ()>,
    peer: Option<SocketAddr>,
}

impl Inner {
    fn wake_driver(&self) {
        if let Some(w) = lock(&self.driver).take() {
            w.wake();
        }
    }

    fn close(&self) {
        lock(&self.client).close(now(), ErrorCode::ConnectionTerminated);
        self.wake_driver();
    }
}

/// Commands of one connection. Cheap to clone; usable from any task or thread. Each
/// command returns the request ID its answer will carry; it waits only when the
/// connection's transmit queue is full (the server is not reading).
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
    /// Runs `f` on the connection's core [`Client`] with the current time and wakes the
    /// driver to write what it queued: for requests the named commands do not cover (for
    /// example the end-to-end layer's `Action::send`). While the transmit queue is full,
    /// `f` runs again each time the driver has written, so it must be safe to repeat after
    /// a `SendQueueFull` error (the core's commands are).
    pub async fn run<T>(
        &self,
        f: impl FnMut(&mut Client, cove_core::Instant) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        self.command(f).await
    }

    async fn command<T>(
        &self,
        mut f: impl FnMut(&mut Client, cove_core::Instant) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        loop {
            let listener = self.inner.drained.listen();
            let r = f(&mut lock(&self.inner.client), now());
            self.inner.wake_driver();
            match r {
                // Wait for the driver to write, then try again.
                Err(ClientError::SendQueueFull { .. }) => listener.await,
                other => return other,
            }
        }
    }

    /// Creates a room and joins it; the answer is `RoomJoined`.
    pub async fn create_room(&self, title: &str) -> Result<u32, ClientError> {
        self.command(|c, now| c.create_room(now, title)).await
    }

    /// Creates a private room (joined by invitation only, not listed) as its admin; the
    /// answer is `RoomJoined`.
    pub async fn create_private_room(&self, title: &str) -> Result<u32, ClientError> {
        self.command(|c, now| c.create_private_room(now, title))
            .await
    }

    /// Invites `name` to `room` (admin only); the answer is `Ok` or an error.
    pub async fn invite(&self, room: RoomId, name: &str) -> Result<u32, ClientError> {
        self.command(|c, now| c.invite(now, room, name)).await
    }

    /// Removes `name` from `room` (admin only); the answer is `Ok` or an error.
    pub async fn remove_member(&self, room: RoomId, name: &str) -> Result<u32, ClientError> {
        self.command(|c, now| c.remove_member(now, room, name))
            .await
    }

    /// Changes `room`'s title (admin only); the answer is `Ok` or an error.
    pub async fn set_room_title(&self, room: RoomId, title: &str) -> Result<u32, ClientError> {
        self.command(|c, now| c.set_room_title(now, room, title))
            .await
    }

    /// Asks for up to `limit` retained messages of `room` before `before`; the answer is
    /// `HistoryMessage`s then `HistoryDone`.
    pub async fn fetch_history(
        &self,
        room: RoomId,
        before: u64,
        limit: u8,
    ) -> Result<u32, ClientError> {
        self.command(|c, now| c.fetch_history(now, room, before, limit))
            .await
    }

    /// Acknowledges `room`'s messages up to `seq` once they are shown or stored (unless
    /// `config.auto_ack_rooms`).
    pub async fn ack_room(&self, room: RoomId, seq: u64) -> Result<(), ClientError> {
        self.command(|c, now| c.ack_room(now, room, seq)).await
    }

    /// The highest sequence number of `room` acknowledged; persist it between runs
    /// (`ClientOptions::room_cursors`).
    pub fn room_cursor(&self, room: RoomId) -> u64 {
        lock(&self.inner.client).room_cursor(room)
    }

    /// Joins a room; the answer is `RoomJoined` or an error.
    pub async fn join_room(&self, room: RoomId) -> Result<u32, ClientError> {
        self.command(|c, now| c.join_room(now, room)).await
    }

    /// Leaves a room; the answer is `RoomLeft` or an error.
    pub async fn leave_room(&self, room: RoomId) -> Result<u32, ClientError> {
        self.command(|c, now| c.leave_room(now, room)).await
    }

    /// Lists rooms; the answer is `RoomList`.
    pub async fn list_rooms(&self) -> Result<u32, ClientError> {
        self.command(|c, now| c.list_rooms(now)).await
    }

    /// Sends a message to a room the user is in.
    pub async fn send_room(&self, room: RoomId, body: &[u8]) -> Result<u32, ClientError> {
        self.command(|c, now| c.send_room(now, room, body)).await
    }

    /// Sends a direct message; the answer is `MessageAck` (delivered, queued or failed).
    pub async fn send_dm(&self, to: &str, body: &[u8]) -> Result<u32, ClientError> {
        self.command(|c, now| c.send_dm(now, to, body)).await
    }

    /// Sets presence (online or away).
    pub async fn set_status(&self, status: Status) -> Result<u32, ClientError> {
        self.command(|c, now| c.set_status(now, status)).await
    }

    /// Lists users; the answer is `UserList`.
    pub async fn list_users(&self) -> Result<u32, ClientError> {
        self.command(|c, now| c.list_users(now)).await
    }

    /// Asks for a user's identity key; the answer is `PublicKey`.
    pub async fn get_public_key(&self, name: &str) -> Result<u32, ClientError> {
        self.command(|c, now| c.get_public_key(now, name)).await
    }

    /// Asks the server to re-send every unacknowledged DM; ends with `PendingDone`.
    pub async fn fetch_pending(&self) -> Result<u32, ClientError> {
        self.command(|c, now| c.fetch_pending(now)).await
    }

    /// Stores this user's prekey bundle on the server.
    pub async fn upload_prekeys(&self, bundle: &[u8]) -> Result<u32, ClientError> {
        self.command(|c, now| c.upload_prekeys(now, bundle)).await
    }

    /// Fetches a user's prekey bundle.
    pub async fn fetch_prekeys(&self, name: &str) -> Result<u32, ClientError> {
        self.command(|c, now| c.fetch_prekeys(now, name)).await
    }

    /// Acknowledges direct message `msg_id` once the program has shown or stored it: the
    /// server deletes it and it is not shown again ([`ClientHandle::last_dm_id`]). Until
    /// then the server keeps it and re-sends it on the next connection. Not needed when
    /// `options.config.auto_ack_dms` is set.
    pub async fn ack_dm(&self, msg_id: u64) -> Result<(), ClientError> {
        self.command(|c, now| c.ack_dm(now, msg_id)).await
    }

    /// Rotates the sending key with the next record and asks the server to rotate too.
    pub fn request_key_update(&self) {
        lock(&self.inner.client).request_key_update();
    }

    /// Logs out; the server closes the connection (an `Event::Closed` follows).
    pub async fn logout(&self) -> Result<(), ClientError> {
        self.command(|c, now| c.logout(now)).await
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

    /// The server's address, if known.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.inner.peer
    }
}

/// The events of one connection, in the order the server sent them. Also a [`Stream`].
pub struct Events {
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
    pub async fn recv(&mut self) -> Option<Event> {
        if let Some(e) = self.backlog.pop_front() {
            return Some(e);
        }
        std::future::poll_fn(|cx| self.inner.events.poll_recv(cx)).await
    }

    /// The next event, waiting at most `timeout`; `None` if there was none in time or the
    /// connection is over.
    pub async fn recv_timeout(&mut self, timeout: Duration) -> Option<Event> {
        futures_lite::future::or(self.recv(), async {
            Timer::after(timeout).await;
            None
        })
        .await
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.backlog
            .pop_front()
            .or_else(|| self.inner.events.try_recv())
    }

    /// Waits at most `timeout` for the first event `f` maps to `Some`, and returns that.
    /// Events passed over stay queued, in order, for later calls.
    pub async fn wait_for<T>(
        &mut self,
        timeout: Duration,
        mut f: impl FnMut(&Event) -> Option<T>,
    ) -> Option<T> {
        if let Some(i) = self.backlog.iter().position(|e| f(e).is_some()) {
            let e = self.backlog.remove(i)?;
            return f(&e);
        }
        let inner = self.inner.clone();
        let backlog = &mut self.backlog;
        let search = async {
            loop {
                let e = std::future::poll_fn(|cx| inner.events.poll_recv(cx)).await?;
                match f(&e) {
                    Some(t) => return Some(t),
                    None => backlog.push_back(e),
                }
            }
        };
        futures_lite::future::or(search, async {
            Timer::after(timeout).await;
            None
        })
        .await
    }

    /// Every event received so far that no call has taken, without waiting.
    pub fn drain(&mut self) -> Vec<Event> {
        while let Some(e) = self.inner.events.try_recv() {
            self.backlog.push_back(e);
        }
        self.backlog.drain(..).collect()
    }
}

impl Stream for Events {
    type Item = Event;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let this = self.get_mut();
        if let Some(e) = this.backlog.pop_front() {
            return Poll::Ready(Some(e));
        }
        this.inner.events.poll_recv(cx)
    }
}

impl Drop for Events {
    /// Nobody will read this connection's events any more: close it.
    fn drop(&mut self) {
        self.inner.events.close(());
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

    /// A handle for commands from other tasks.
    pub fn handle(&self) -> ClientHandle {
        self.handle.clone()
    }

    /// The events.
    pub fn events(&mut self) -> &mut Events {
        &mut self.events
    }

    /// Splits into the command handle and the events (for a reader task).
    pub fn split(self) -> (ClientHandle, Events) {
        (self.handle, self.events)
    }
}

/// Connects over TCP with smol's `Async<TcpStream>` (with `TCP_NODELAY`), spawns the
/// driver on smol's global executor, and logs in.
pub async fn connect(
    addr: impl smol::net::AsyncToSocketAddrs,
    options: ClientOptions,
) -> Result<Connection, ConnectError> {
    let started = std::time::Instant::now();
    let deadline = started + options.connect_timeout;
    let addrs = smol::net::resolve(addr).await?;
    let mut last_err = None;
    for a in addrs {
        let attempt = futures_lite::future::or(
            async { Some(Async::<TcpStream>::connect(a).await) },
            async {
                Timer::at(deadline).await;
                None
            },
        )
        .await;
        match attempt {
            None => return Err(ConnectError::TimedOut),
            Some(Ok(stream)) => {
                stream.get_ref().set_nodelay(true)?;
                let mut options = options;
                options.connect_timeout =
                    deadline.saturating_duration_since(std::time::Instant::now());
                return connect_stream(stream, Some(a), options, &SmolGlobal).await;
            }
            Some(Err(e)) => last_err = Some(e),
        }
    }
    Err(ConnectError::Io(last_err.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the address resolved to nothing",
        )
    })))
}

/// Runs the handshake and the login over `stream` (any `futures-io` stream; for TCP,
/// set `TCP_NODELAY` first), with the driver spawned by `spawner`.
pub async fn connect_stream<S>(
    stream: S,
    peer: Option<SocketAddr>,
    options: ClientOptions,
    spawner: &impl Spawn,
) -> Result<Connection, ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let timeout = options.connect_timeout;
    let (handle, events, driver) = start(stream, peer, options)?;
    spawner.spawn(Box::pin(driver));
    login(handle, events, timeout).await
}

/// Waits for the login's answer: the core's one `LoggedIn` event (the server proved its
/// key and accepted the register or login), or the close that refused it.
pub async fn login(
    handle: ClientHandle,
    mut events: Events,
    timeout: Duration,
) -> Result<Connection, ConnectError> {
    let inner = handle.inner.clone();
    let wait = async {
        loop {
            match events.recv().await {
                Some(Event::LoggedIn(welcome)) => return Ok(welcome),
                Some(Event::Closed { code, by_peer }) => {
                    return Err(ConnectError::Closed {
                        code,
                        by_peer,
                        server_key: lock(&inner.client).server_key(),
                    });
                }
                Some(other) => events.backlog.push_back(other),
                None => {
                    return Err(ConnectError::Closed {
                        code: ErrorCode::ConnectionTerminated,
                        by_peer: true,
                        server_key: lock(&inner.client).server_key(),
                    });
                }
            }
        }
    };
    let welcome = futures_lite::future::or(wait, async {
        Timer::after(timeout).await;
        Err(ConnectError::TimedOut)
    })
    .await?; // on error, dropping `events` closes the connection
    Ok(Connection {
        handle,
        events,
        welcome,
    })
}

/// Starts a connection over `stream` without spawning anything: returns the command
/// handle, the events, and the [`Driver`] that the program must run (spawn it, or poll
/// it alongside its own work). The SYN goes out on the driver's first poll.
pub fn start<S>(
    stream: S,
    peer: Option<SocketAddr>,
    options: ClientOptions,
) -> Result<(ClientHandle, Events, Driver<S>), ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let cap = options.config.max_frame as usize + HEADER_LEN;
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
        driver: Mutex::new(None),
        drained: Notify::new(),
        events: Mailbox::new(options.event_queue),
        peer,
    });
    let driver = Driver::new(inner.clone(), stream, cap);
    Ok((
        ClientHandle {
            inner: inner.clone(),
        },
        Events {
            backlog: VecDeque::new(),
            inner,
        },
        driver,
    ))
}
