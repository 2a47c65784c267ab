//! The blocking server: a reader and a writer thread per connection, a shared hub, and a
//! committer thread that makes store operations durable before their replies go out.
//!
//! # Threads and locks
//!
//! - **accept** (the thread calling [`Server::run`]): accepts, enforces the connection
//!   cap, sets `TCP_NODELAY`, spawns the connection's reader.
//! - **reader** (one per connection): reads the socket with a timeout taken from
//!   `ServerConnection::poll_timeout`, feeds the bytes to the connection (under the
//!   connection's own mutex, so crypto runs in parallel across connections), then hands
//!   the resulting events to the hub (under the hub mutex).
//! - **writer** (one per connection): blocks on the connection's bounded queue of
//!   replies; on each wake-up it seals *every* queued reply and writes all pending bytes
//!   with one `write_all`.
//! - **committer**: takes the store operations of all steps that piled up, applies them
//!   in one transaction, then hands those steps' replies to the writers, in order.
//!
//! Lock order: the hub mutex may be held while *trying* to queue a reply (never
//! blocking); a connection mutex is never held while taking the hub mutex, and no lock
//! is held across a socket read or write.
//!
//! # Delivery order and the write-ahead rule
//!
//! Replies leave the hub in order. A step without store operations is dispatched at once
//! only if nothing is waiting for a commit; otherwise it queues behind the pending steps,
//! so no reply ever overtakes an earlier one, and no reply is handed to a writer before
//! the operations of its step are durable.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use cove_core::crypto::{CryptoProvider, Identity, RUST_CRYPTO};
use cove_core::hub::{ConnId, Hub, HubConfig, Reply};
use cove_core::server::{ServerConfig, ServerConnection, ServerEvent};
use cove_core::store::{Store, StoreOp};
use cove_core::wire::ErrorCode;
use tracing::{debug, error, info, warn};

use crate::{now, os_rng, random_u64, until};

/// Limits of a [`Server`] beyond those of the core's connection and hub.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Per-connection limits and timers of the core (frame size, handshake deadline,
    /// keepalive, rate limit, key rotation, cipher suites).
    pub connection: ServerConfig,
    /// Limits of the hub (room size, offline queue length, ...).
    pub hub: HubConfig,
    /// Most connections open at once; one more is refused with `LimitReached`.
    /// Default 1024.
    pub max_connections: usize,
    /// Most replies waiting for one connection's writer; past this the connection is cut
    /// off with `SendQueueExceeded` ("SendQ exceeded"). Default 1024.
    pub send_queue: usize,
    /// A write to a client that makes no progress for this long cuts the client off.
    /// Default 10 s.
    pub write_timeout: Duration,
    /// On shutdown, how long connections get to flush their goodbye before their
    /// sockets are closed regardless. Default 5 s.
    pub shutdown_grace: Duration,
    /// Stack size of the per-connection threads. Default 256 KiB.
    pub thread_stack: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            connection: ServerConfig::default(),
            hub: HubConfig::default(),
            max_connections: 1024,
            send_queue: 1024,
            write_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(5),
            thread_stack: 256 * 1024,
        }
    }
}

/// Why the server could not start or had to stop.
#[derive(Debug)]
pub enum ServerError {
    /// Binding or accepting failed.
    Io(io::Error),
    /// The store failed; the server stopped rather than acknowledge what is not durable.
    Store(String),
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Io(e) => write!(f, "{e}"),
            ServerError::Store(e) => write!(f, "store failed: {e}"),
        }
    }
}

impl std::error::Error for ServerError {}

impl From<io::Error> for ServerError {
    fn from(e: io::Error) -> Self {
        ServerError::Io(e)
    }
}

/// What a writer thread is asked to do.
enum Out {
    /// Seal and send this reply.
    Reply(Reply),
    /// Pending output exists (or the connection closed): flush it.
    Wake,
    /// The server is stopping: say goodbye and close.
    Shutdown,
}

/// How the hub's replies reach one connection.
struct Route {
    tx: SyncSender<Out>,
    stream: Arc<TcpStream>,
    cut: Arc<AtomicBool>,
}

/// Everything under the hub mutex.
struct HubState {
    hub: Hub,
    /// Connections the hub may deliver to.
    routes: HashMap<ConnId, Route>,
    /// Sockets of every connection whose threads still run (for shutdown).
    sockets: HashMap<ConnId, Arc<TcpStream>>,
    /// Store operations not yet handed to the committer.
    pending_ops: Vec<StoreOp>,
    /// Replies waiting behind those operations.
    pending: Vec<(ConnId, Reply)>,
    /// The committer is applying a batch whose replies are not yet dispatched.
    in_flight: bool,
    stop_committer: bool,
    store_failure: Option<String>,
}

struct Shared {
    state: Mutex<HubState>,
    /// Signals the committer that work is pending.
    work: Condvar,
    /// Signals shutdown that the pipeline drained or a connection ended.
    idle: Condvar,
    config: Arc<ServerConfig>,
    identity: Identity,
    provider: &'static dyn CryptoProvider,
    options: ServerOptions,
    shutting_down: AtomicBool,
    next_conn: AtomicU64,
    /// Refused connections whose goodbye is still lingering.
    lingering: AtomicUsize,
    local_addr: SocketAddr,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in another thread must not take the whole server down with it.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A handle to stop a running server from another thread (for example a Ctrl-C handler).
#[derive(Clone)]
pub struct ServerHandle {
    shared: Arc<Shared>,
}

impl fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle")
            .field("local_addr", &self.shared.local_addr)
            .finish()
    }
}

impl ServerHandle {
    /// Starts a graceful shutdown: stop accepting, let the pipeline drain, close every
    /// connection with `ShuttingDown`. [`Server::run`] returns once it is done.
    pub fn shutdown(&self) {
        if self.shared.shutting_down.swap(true, Ordering::SeqCst) {
            return;
        }
        info!("shutting down");
        // Wake the accept loop with a connection to ourselves.
        let mut addr = self.shared.local_addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// Connections open now.
    pub fn connections(&self) -> usize {
        lock(&self.shared.state).sockets.len()
    }
}

/// A bound server, ready to [`run`](Server::run).
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
    committer: Option<JoinHandle<()>>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.shared.local_addr)
            .finish()
    }
}

impl Server {
    /// Binds `addr`, loads `store` into a fresh hub and starts the committer thread.
    /// `identity` is the server's long-term key.
    pub fn bind<S>(
        addr: impl ToSocketAddrs,
        identity: Identity,
        mut store: S,
        options: ServerOptions,
    ) -> Result<Server, ServerError>
    where
        S: Store + Send + 'static,
    {
        let records = store
            .load()
            .map_err(|e| ServerError::Store(e.to_string()))?;
        info!(
            accounts = records.accounts.len(),
            queued_dms = records.queued.len(),
            "store loaded"
        );
        let mut hub = Hub::new(options.hub.clone(), random_u64());
        hub.restore(records);
        let listener = TcpListener::bind(addr)?;
        let local_addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(HubState {
                hub,
                routes: HashMap::new(),
                sockets: HashMap::new(),
                pending_ops: Vec::new(),
                pending: Vec::new(),
                in_flight: false,
                stop_committer: false,
                store_failure: None,
            }),
            work: Condvar::new(),
            idle: Condvar::new(),
            config: Arc::new(options.connection.clone()),
            identity,
            provider: &RUST_CRYPTO,
            options,
            shutting_down: AtomicBool::new(false),
            next_conn: AtomicU64::new(1),
            lingering: AtomicUsize::new(0),
            local_addr,
        });
        let committer = {
            let shared = shared.clone();
            thread::Builder::new()
                .name("cove-committer".into())
                .spawn(move || committer(shared, store))?
        };
        Ok(Server {
            listener,
            shared,
            committer: Some(committer),
        })
    }

    /// The address the server listens on (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// A handle to shut the server down from elsewhere.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            shared: self.shared.clone(),
        }
    }

    /// Runs the server on a new thread; join the handle for [`Server::run`]'s result.
    pub fn spawn(self) -> io::Result<JoinHandle<Result<(), ServerError>>> {
        thread::Builder::new()
            .name("cove-accept".into())
            .spawn(move || self.run())
    }

    /// Accepts connections until [`ServerHandle::shutdown`], then shuts down gracefully.
    /// Returns an error if the store failed (after shutting down).
    pub fn run(self) -> Result<(), ServerError> {
        let Server {
            listener,
            shared,
            committer,
        } = self;
        info!(addr = %shared.local_addr, "listening");
        let mut result = Ok(());
        while !shared.shutting_down.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((stream, peer)) => {
                    if shared.shutting_down.load(Ordering::SeqCst) {
                        break;
                    }
                    accept(&shared, stream, peer);
                }
                Err(e) if is_transient_accept_error(&e) => {
                    // Out of descriptors or the peer gave up: back off briefly, go on.
                    warn!(error = %e, "accept failed");
                    thread::sleep(Duration::from_millis(50));
                }
                Err(e) => {
                    error!(error = %e, "accept failed; stopping");
                    result = Err(ServerError::Io(e));
                    shared.shutting_down.store(true, Ordering::SeqCst);
                    break;
                }
            }
        }
        // New connections are refused from here on.
        drop(listener);
        graceful_shutdown(&shared, committer);
        if let Some(failure) = lock(&shared.state).store_failure.take() {
            return Err(ServerError::Store(failure));
        }
        result
    }
}

fn graceful_shutdown(shared: &Shared, committer: Option<JoinHandle<()>>) {
    {
        let grace = shared.options.shutdown_grace;
        // 1. New requests are no longer fed to the hub; let the commit pipeline drain so
        //    every acknowledged operation is durable and its reply queued.
        let mut st = lock(&shared.state);
        let deadline = std::time::Instant::now() + grace;
        while st.in_flight || !st.pending.is_empty() || !st.pending_ops.is_empty() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                warn!("commit pipeline did not drain in time");
                break;
            }
            st = shared
                .idle
                .wait_timeout(st, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        // 2. Say goodbye to everyone: the goodbye queues behind what was already queued.
        let ids: Vec<ConnId> = st.routes.keys().copied().collect();
        for id in ids {
            let refused = st
                .routes
                .get(&id)
                .filter(|route| route.tx.try_send(Out::Shutdown).is_err());
            if let Some(route) = refused {
                let _ = route.stream.shutdown(Shutdown::Both);
            }
        }
        // 3. Wait for the connection threads, then close whatever is left.
        while !st.sockets.is_empty() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                warn!(
                    left = st.sockets.len(),
                    "closing connections that did not finish"
                );
                for s in st.sockets.values() {
                    let _ = s.shutdown(Shutdown::Both);
                }
                break;
            }
            st = shared
                .idle
                .wait_timeout(st, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        // 4. Stop the committer once it has nothing left.
        st.stop_committer = true;
        shared.work.notify_all();
        drop(st);
        if let Some(c) = committer {
            let _ = c.join();
        }
        info!("stopped");
    }
}

fn is_transient_accept_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    ) || matches!(e.raw_os_error(), Some(23 | 24)) // ENFILE, EMFILE
}

fn accept(shared: &Arc<Shared>, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let now = now();
    let mut conn = ServerConnection::new(
        now,
        shared.config.clone(),
        shared.provider,
        &shared.identity,
        &mut os_rng(),
    );
    let id = ConnId(shared.next_conn.fetch_add(1, Ordering::Relaxed));
    let (tx, rx) = sync_channel(shared.options.send_queue.max(1));
    let cut = Arc::new(AtomicBool::new(false));
    let stream = Arc::new(stream);
    {
        let mut st = lock(&shared.state);
        if st.sockets.len() >= shared.options.max_connections {
            drop(st);
            warn!(%peer, "connection limit reached; refusing");
            conn.close(now, ErrorCode::LimitReached, false);
            refuse(shared, stream, conn.pending_transmit().to_vec());
            return;
        }
        st.routes.insert(
            id,
            Route {
                tx: tx.clone(),
                stream: stream.clone(),
                cut: cut.clone(),
            },
        );
        st.sockets.insert(id, stream.clone());
    }
    debug!(conn = id.0, %peer, "connection accepted");
    let conn = Arc::new(Mutex::new(conn));
    let spawned = {
        let shared = shared.clone();
        thread::Builder::new()
            .name(format!("cove-conn-{}", id.0))
            .stack_size(shared.options.thread_stack)
            .spawn(move || {
                run_connection(&shared, id, peer, stream, conn, tx, rx, cut);
                let mut st = lock(&shared.state);
                st.sockets.remove(&id);
                shared.idle.notify_all();
            })
    };
    if let Err(e) = spawned {
        warn!(%peer, error = %e, "could not start a connection thread");
        let mut st = lock(&shared.state);
        st.routes.remove(&id);
        if let Some(s) = st.sockets.remove(&id) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

/// Most refused connections lingering at once; past it, refusals skip the linger.
const MAX_LINGERING_REFUSALS: usize = 64;

/// Sends a refused connection its alert and closes it without a reset, on a short-lived
/// thread so the accept loop never waits for it.
fn refuse(shared: &Arc<Shared>, stream: Arc<TcpStream>, goodbye: Vec<u8>) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let job = move |linger: bool| {
        let _ = (&*stream).write_all(&goodbye);
        if linger {
            let _ = stream.shutdown(Shutdown::Write);
            drain(&stream);
        }
    };
    if shared.lingering.fetch_add(1, Ordering::SeqCst) < MAX_LINGERING_REFUSALS {
        let shared2 = shared.clone();
        let spawned = thread::Builder::new()
            .name("cove-refuse".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                job(true);
                shared2.lingering.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            shared.lingering.fetch_sub(1, Ordering::SeqCst);
        }
    } else {
        shared.lingering.fetch_sub(1, Ordering::SeqCst);
        // Under a flood of refusals: the alert, then close at once.
        job(false);
    }
}

/// The reader side of one connection; starts the writer and joins it at the end.
#[allow(clippy::too_many_arguments)]
fn run_connection(
    shared: &Arc<Shared>,
    id: ConnId,
    peer: SocketAddr,
    stream: Arc<TcpStream>,
    conn: Arc<Mutex<ServerConnection>>,
    tx: SyncSender<Out>,
    rx: Receiver<Out>,
    cut: Arc<AtomicBool>,
) {
    let (done_tx, done_rx) = std::sync::mpsc::sync_channel::<()>(1);
    let spawned = {
        let conn = conn.clone();
        let ws = stream.clone();
        let timeout = shared.options.write_timeout;
        thread::Builder::new()
            .name(format!("cove-write-{}", id.0))
            .stack_size(shared.options.thread_stack)
            .spawn(move || run_writer(id, ws, conn, rx, timeout, done_rx))
    };
    let writer = match spawned {
        Ok(w) => w,
        Err(e) => {
            warn!(conn = id.0, error = %e, "could not start the writer");
            let mut c = lock(&conn);
            c.close(now(), ErrorCode::ServerError, false);
            let events: Vec<ServerEvent> = std::iter::from_fn(|| c.poll_event()).collect();
            drop(c);
            feed_hub(shared, id, events);
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
    };

    let mut buf = vec![0u8; lock(&conn).min_read_buffer()];
    let mut filled = 0usize;
    let mut events = Vec::new();
    loop {
        // Arm the core's next timer as the read timeout.
        let deadline = lock(&conn).poll_timeout();
        let wait = deadline.map(until);
        let read = match wait {
            Some(d) if d.is_zero() => None,
            _ => {
                let _ = stream.set_read_timeout(wait.map(|d| d.max(Duration::from_millis(1))));
                Some((&*stream).read(&mut buf[filled..]))
            }
        };
        let now = now();
        let (has_output, closed) = {
            let mut c = lock(&conn);
            match read {
                None => c.handle_timeout(now),
                Some(Ok(0)) => eof(&mut c, &cut, now),
                Some(Ok(n)) => {
                    filled += n;
                    loop {
                        let used = c.handle_input(now, &mut buf[..filled]);
                        events.extend(std::iter::from_fn(|| c.poll_event()));
                        if used == 0 {
                            break;
                        }
                        buf.copy_within(used..filled, 0);
                        filled -= used;
                    }
                    if filled == buf.len() && !c.is_closed() {
                        // Cannot happen with a conforming core (a frame always fits).
                        c.close(now, ErrorCode::FrameTooLarge, false);
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
                Some(Err(e)) => {
                    debug!(conn = id.0, error = %e, "read failed");
                    eof(&mut c, &cut, now)
                }
            }
            events.extend(std::iter::from_fn(|| c.poll_event()));
            (!c.pending_transmit().is_empty(), c.is_closed())
        };
        if !events.is_empty() {
            log_events(id, peer, &events);
            feed_hub(shared, id, std::mem::take(&mut events));
        }
        if has_output || closed {
            // A full queue means the writer is busy and will see this output anyway.
            let _ = tx.try_send(Out::Wake);
        }
        if closed {
            break;
        }
    }
    drop(tx);
    drain(&stream);
    let _ = done_tx.try_send(());
    let _ = writer.join();
}

/// The peer went away, or the dispatcher cut the connection off (and shut its read side
/// to wake us): close with the right code.
fn eof(c: &mut ServerConnection, cut: &AtomicBool, now: cove_core::Instant) {
    if cut.load(Ordering::SeqCst) {
        c.close(now, ErrorCode::SendQueueExceeded, false);
    } else {
        c.handle_eof();
    }
}

fn log_events(id: ConnId, peer: SocketAddr, events: &[ServerEvent]) {
    for ev in events {
        match ev {
            ServerEvent::Authenticate { name, mode, .. } => {
                info!(conn = id.0, %peer, %name, ?mode, "handshake complete")
            }
            ServerEvent::Request(r) => debug!(conn = id.0, request = ?RequestKind(r), "request"),
            ServerEvent::Closed { code, by_peer } => {
                info!(conn = id.0, %peer, %code, by_peer, "connection closed")
            }
        }
    }
}

/// Logs a request's kind without its (encrypted, but still private) payload.
struct RequestKind<'a>(&'a cove_core::hub::Request);

impl fmt::Debug for RequestKind<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = format!("{:?}", self.0);
        let kind = s.split([' ', '{', '(']).next().unwrap_or("?");
        f.write_str(kind)
    }
}

/// Hands one connection's events to the hub and routes what the hub produced.
fn feed_hub(shared: &Shared, id: ConnId, events: Vec<ServerEvent>) {
    let stopping = shared.shutting_down.load(Ordering::SeqCst);
    let mut st = lock(&shared.state);
    for ev in events {
        let now = now();
        match ev {
            ServerEvent::Authenticate { name, key, mode } => {
                if stopping {
                    continue;
                }
                st.hub.handle_connect(now, id, &name, key, mode)
            }
            ServerEvent::Request(r) => {
                if stopping {
                    continue;
                }
                st.hub.handle_request(now, id, r)
            }
            ServerEvent::Closed { .. } => {
                st.routes.remove(&id);
                st.hub.handle_disconnect(now, id);
            }
        }
    }
    drain_hub(shared, &mut st);
}

/// Moves the hub's output along: dispatched at once when it needs no commit and nothing
/// is waiting ahead of it, else queued for the committer.
fn drain_hub(shared: &Shared, st: &mut HubState) {
    loop {
        let ops: Vec<StoreOp> = std::iter::from_fn(|| st.hub.poll_store_op()).collect();
        let replies: Vec<(ConnId, Reply)> = std::iter::from_fn(|| st.hub.poll_delivery()).collect();
        if ops.is_empty() && replies.is_empty() {
            return;
        }
        let pipeline_empty = !st.in_flight && st.pending_ops.is_empty() && st.pending.is_empty();
        if ops.is_empty() && pipeline_empty {
            dispatch(st, replies);
        } else {
            st.pending_ops.extend(ops);
            st.pending.extend(replies);
            shared.work.notify_one();
        }
    }
}

/// Queues replies on their connections' writers, never blocking: a full queue cuts that
/// connection off (the hub is told, so the loop in [`drain_hub`] routes the fallout).
fn dispatch(st: &mut HubState, replies: Vec<(ConnId, Reply)>) {
    for (id, reply) in replies {
        let Some(route) = st.routes.get(&id) else {
            continue; // closed meanwhile; the hub knows or is about to
        };
        match route.tx.try_send(Out::Reply(reply)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                warn!(
                    conn = id.0,
                    "send queue exceeded; cutting the connection off"
                );
                if let Some(route) = st.routes.remove(&id) {
                    route.cut.store(true, Ordering::SeqCst);
                    // Wakes the reader, which closes with SendQueueExceeded.
                    let _ = route.stream.shutdown(Shutdown::Read);
                }
                st.hub.handle_disconnect(now(), id);
            }
            Err(TrySendError::Disconnected(_)) => {
                st.routes.remove(&id);
                st.hub.handle_disconnect(now(), id);
            }
        }
    }
}

/// Applies batches of store operations, then releases their replies.
fn committer<S: Store>(shared: Arc<Shared>, mut store: S) {
    let mut st = lock(&shared.state);
    loop {
        while st.pending_ops.is_empty() && st.pending.is_empty() {
            st.in_flight = false;
            shared.idle.notify_all();
            if st.stop_committer {
                return;
            }
            st = shared.work.wait(st).unwrap_or_else(PoisonError::into_inner);
        }
        st.in_flight = true;
        let ops = std::mem::take(&mut st.pending_ops);
        let replies = std::mem::take(&mut st.pending);
        drop(st);
        let result = if ops.is_empty() {
            Ok(())
        } else {
            let n = ops.len();
            let r = store.apply(&ops);
            debug!(ops = n, "committed");
            r
        };
        st = lock(&shared.state);
        match result {
            Ok(()) => {
                dispatch(&mut st, replies);
                drain_hub(&shared, &mut st);
            }
            Err(e) => {
                // Nothing of this batch may be acknowledged: drop its replies and stop.
                error!(error = %e, "store failed; shutting down without acknowledging");
                if st.store_failure.is_none() {
                    st.store_failure = Some(e.to_string());
                }
                if !shared.shutting_down.load(Ordering::SeqCst) {
                    drop(st);
                    ServerHandle {
                        shared: shared.clone(),
                    }
                    .shutdown();
                    st = lock(&shared.state);
                }
            }
        }
    }
}

/// The writer side of one connection: seal everything queued, write it in one go.
fn run_writer(
    id: ConnId,
    stream: Arc<TcpStream>,
    conn: Arc<Mutex<ServerConnection>>,
    rx: Receiver<Out>,
    write_timeout: Duration,
    reader_done: Receiver<()>,
) {
    let _ = stream.set_write_timeout(Some(write_timeout));
    let mut out: Vec<u8> = Vec::new();
    let mut disconnected = false;
    let mut write_failed = false;
    loop {
        let first = match rx.recv() {
            Ok(m) => Some(m),
            Err(_) => {
                disconnected = true;
                None
            }
        };
        out.clear();
        let closed = {
            let mut c = lock(&conn);
            let now = now();
            let handle = |m: Out, c: &mut ServerConnection| match m {
                Out::Reply(r) => c.send_reply(now, &r),
                Out::Wake => {}
                Out::Shutdown => c.close(now, ErrorCode::ShuttingDown, false),
            };
            if let Some(m) = first {
                handle(m, &mut c);
            }
            loop {
                match rx.try_recv() {
                    Ok(m) => handle(m, &mut c),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        disconnected = true;
                        break;
                    }
                }
            }
            if disconnected && !c.is_closed() {
                // Every sender is gone: the reader finished without closing.
                c.handle_eof();
            }
            out.extend_from_slice(c.pending_transmit());
            c.advance_transmit(out.len());
            c.is_closed()
        };
        let written = if out.is_empty() {
            Ok(())
        } else {
            (&*stream).write_all(&out)
        };
        if let Err(e) = written {
            debug!(conn = id.0, error = %e, "write failed; closing");
            write_failed = true;
            break;
        }
        if closed || disconnected {
            break;
        }
    }
    if !write_failed {
        // A lingering close: send FIN after the goodbye and let the reader drain what
        // the peer still sends, so closing never turns into a reset that could destroy
        // the goodbye before the peer reads it.
        let _ = stream.shutdown(Shutdown::Write);
        let _ = reader_done.recv_timeout(LINGER);
    }
    let _ = stream.shutdown(Shutdown::Both);
}

/// How long a closing connection waits for the peer to read the goodbye and close.
const LINGER: Duration = Duration::from_secs(2);

/// Reads and discards what the peer still sends after the close, until it closes too
/// (or the writer gives up waiting and shuts the socket).
fn drain(stream: &TcpStream) {
    let deadline = std::time::Instant::now() + LINGER;
    let mut sink = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match (&*stream).read(&mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}
