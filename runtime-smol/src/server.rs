//! The async server: a task per connection, a shared hub, and a committer task that
//! makes store operations durable before their replies go out.
//!
//! # Tasks
//!
//! - **accept** (the future returned by [`Server::run`] or [`Server::run_with`]): takes
//!   connections from a smol listener or from any stream of connections, enforces the
//!   connection cap, and spawns each connection's task with the server's [`Spawn`].
//! - **connection** (one per connection): owns its
//!   [`ServerConnection`] and its stream outright (no lock), and on every wake-up does
//!   everything that is ready: moves the replies waiting in its bounded queue into the
//!   core, reads what arrived and feeds the resulting events to the hub, writes *all*
//!   pending bytes with one `poll_write` (every record of the wake-up coalesced), and
//!   arms one async-io timer for the earlier of the core's `poll_timeout` and the
//!   write-stall deadline.
//! - **committer**: takes the store operations of every step that piled up, applies
//!   them in one batch on the blocking pool ([`smol::unblock`]), then releases those
//!   steps' replies to the connections, in order.
//!
//! # Why the hub sits behind a `std::sync::Mutex`, not in a task of its own
//!
//! A hub step is a few map operations and allocations, no crypto and no IO. The mutex
//! is never held across an `.await`, a socket call or a store call, and a burst of
//! requests is fed in chunks of 16 so one hold stays short. Measured with
//! `cargo run --release -p cove-smol --example hub_lock` on this project's 2-core
//! machine (200 clients in 10 rooms of 20, 20,000 room messages, 400,000 deliveries,
//! server and clients in one process): 1.6–1.9 s, the lock held 6–7% of the wall time,
//! 5.5–5.8 µs per room message *including* its fan-out to 20 queues, and fewer than 1%
//! of the holds found it taken. A hub task would run that same serial work plus at
//! least one task round trip per request (0.85–1.7 µs measured on the same executor,
//! i.e. 15–30% more per request), and would need a bounded request queue with an
//! overflow policy of its own. With contention this low the mutex is the cheaper and
//! simpler choice; [`ServerHandle::hub_lock_stats`] reports the same figures for a
//! running server, so an operator can see when that stops being true.
//!
//! # Delivery order and the write-ahead rule
//!
//! Replies leave the hub in order. A step without store operations is dispatched at once
//! only if nothing is waiting for a commit; otherwise it queues behind the pending steps,
//! so no reply ever overtakes an earlier one, and no reply reaches a connection before
//! the operations of its step are durable.
//!
//! # Memory of an idle connection
//!
//! An idle connection owns its core state, an empty input buffer (reads go through a
//! per-thread scratch buffer, see the `scratch` module), an empty reply queue (it
//! allocates only while replies wait) and one timer: a few KiB in all, which is what
//! lets one process hold 10,000 of them (`examples/idle_connections.rs`).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use cove_core::crypto::{CryptoProvider, Identity, RUST_CRYPTO};
use cove_core::hub::{ConnId, Hub, HubConfig, Reply};
use cove_core::server::{ServerConfig, ServerConnection, ServerEvent};
use cove_core::store::{Store, StoreOp};
use cove_core::wire::ErrorCode;
use event_listener::Event;
use futures_lite::{AsyncRead, AsyncWrite, Stream, StreamExt};
use smol::{Async, Timer};
use tracing::{debug, error, info, warn};

use crate::mailbox::{Mailbox, PushError};
use crate::scratch::{consume, poll_read_append};
use crate::{Spawn, now, os_rng, random_u64, to_std_instant};

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
    /// Most replies waiting for one connection; past this the connection is cut off with
    /// `SendQueueExceeded` ("SendQ exceeded"). Default 1024.
    pub send_queue: usize,
    /// A write to a client that makes no progress for this long cuts the client off.
    /// Default 10 s.
    pub write_timeout: Duration,
    /// On shutdown, how long connections get to flush their goodbye before they are
    /// dropped regardless. Default 5 s.
    pub shutdown_grace: Duration,
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
        }
    }
}

/// Why the server could not start or had to stop.
#[derive(Debug)]
#[non_exhaustive]
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

/// Why a connection's reply queue was closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cut {
    /// Its queue overflowed: close with `SendQueueExceeded`.
    SendQueue,
    /// The server is stopping: send what is queued, then say goodbye.
    Shutdown,
    /// The grace period is over: drop the connection now.
    Force,
}

type Outbox = Mailbox<Reply, Cut>;

/// Everything under the hub mutex.
struct HubState {
    hub: Hub,
    /// Connections the hub may deliver to.
    routes: HashMap<ConnId, Arc<Outbox>>,
    /// Every connection whose task still runs (for shutdown and the cap).
    open: HashMap<ConnId, Arc<Outbox>>,
    /// Store operations not yet handed to the committer.
    pending_ops: Vec<StoreOp>,
    /// Replies waiting behind those operations.
    pending: Vec<(ConnId, Reply)>,
    /// The committer is applying a batch whose replies are not yet dispatched.
    in_flight: bool,
    stop_committer: bool,
    committer_done: bool,
    store_failure: Option<String>,
}

struct Shared {
    state: Mutex<HubState>,
    /// Tells the committer that work is pending.
    work: Event,
    /// Tells waiters that the pipeline drained, a connection ended, or the committer
    /// stopped.
    idle: Event,
    /// Tells the accept loop to stop.
    stop: Event,
    config: Arc<ServerConfig>,
    identity: Identity,
    provider: &'static dyn CryptoProvider,
    options: ServerOptions,
    shutting_down: AtomicBool,
    next_conn: AtomicU64,
    spawner: Box<dyn Spawn>,
    lock_stats: LockCounters,
}

/// How the hub mutex is used, counted on every hub step.
#[derive(Default)]
struct LockCounters {
    acquisitions: AtomicU64,
    contended: AtomicU64,
    held_ns: AtomicU64,
}

/// How the hub mutex has been used since the server started: the figures behind the
/// choice of a mutex over a hub task (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HubLockStats {
    /// Hub steps (each takes the lock once).
    pub acquisitions: u64,
    /// Steps that found the lock taken and had to wait.
    pub contended: u64,
    /// Total time the lock was held by hub steps.
    pub held: Duration,
}

/// The hub state, locked for one hub step; counts the step on drop.
struct HubGuard<'a> {
    guard: MutexGuard<'a, HubState>,
    since: std::time::Instant,
    counters: &'a LockCounters,
}

impl std::ops::Deref for HubGuard<'_> {
    type Target = HubState;
    fn deref(&self) -> &HubState {
        &self.guard
    }
}

impl std::ops::DerefMut for HubGuard<'_> {
    fn deref_mut(&mut self) -> &mut HubState {
        &mut self.guard
    }
}

impl Drop for HubGuard<'_> {
    fn drop(&mut self) {
        let ns = u64::try_from(self.since.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.counters.held_ns.fetch_add(ns, Ordering::Relaxed);
    }
}

/// Takes the hub lock for a hub step, counting contention and hold time.
fn lock_hub(shared: &Shared) -> HubGuard<'_> {
    let counters = &shared.lock_stats;
    counters.acquisitions.fetch_add(1, Ordering::Relaxed);
    let guard = match shared.state.try_lock() {
        Ok(g) => g,
        Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => {
            counters.contended.fetch_add(1, Ordering::Relaxed);
            lock(&shared.state)
        }
    };
    HubGuard {
        guard,
        since: std::time::Instant::now(),
        counters,
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in another task must not take the whole server down with it.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A handle to a server: stop it, count its connections, or hand it a connection
/// accepted elsewhere. Cheap to clone; usable from any thread (a Ctrl-C handler, say).
#[derive(Clone)]
pub struct ServerHandle {
    shared: Arc<Shared>,
    local_addr: Option<SocketAddr>,
}

impl fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl ServerHandle {
    /// Starts a graceful shutdown: stop accepting, let the commit pipeline drain, close
    /// every connection with `ShuttingDown`. [`Server::run`] returns once it is done.
    pub fn shutdown(&self) {
        if self.shared.shutting_down.swap(true, Ordering::SeqCst) {
            return;
        }
        info!("shutting down");
        self.shared.stop.notify(usize::MAX);
    }

    /// Whether a shutdown has started.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.shutting_down.load(Ordering::SeqCst)
    }

    /// The address the server's own listener is bound to, if it has one.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// Connections open now.
    pub fn connections(&self) -> usize {
        lock(&self.shared.state).open.len()
    }

    /// How the hub mutex has been used so far.
    pub fn hub_lock_stats(&self) -> HubLockStats {
        let c = &self.shared.lock_stats;
        HubLockStats {
            acquisitions: c.acquisitions.load(Ordering::Relaxed),
            contended: c.contended.load(Ordering::Relaxed),
            held: Duration::from_nanos(c.held_ns.load(Ordering::Relaxed)),
        }
    }

    /// Serves one connection that the program accepted itself, over any stream with the
    /// `futures-io` traits, and resolves when the connection is over. Spawn it on any
    /// executor. Past the connection cap it refuses the client with `LimitReached`.
    ///
    /// For a TCP stream, set `TCP_NODELAY` before handing it over: the server writes
    /// each wake-up's output in one call and wants it on the wire at once.
    pub fn serve<S>(&self, stream: S, peer: Option<SocketAddr>) -> impl Future<Output = ()> + Send
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        serve_connection(self.shared.clone(), stream, peer)
    }
}

/// A server, ready to [`run`](Server::run). See the module docs.
pub struct Server {
    listener: Option<Async<TcpListener>>,
    handle: ServerHandle,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.handle.local_addr)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Binds `addr` (TCP, via smol's `Async<TcpListener>`), loads `store` into a fresh
    /// hub (on the blocking pool) and starts the committer with `spawner`.
    /// `identity` is the server's long-term key.
    pub async fn bind<S>(
        addr: impl ToSocketAddrs,
        identity: Identity,
        store: S,
        options: ServerOptions,
        spawner: impl Spawn,
    ) -> Result<Server, ServerError>
    where
        S: Store + Send + 'static,
    {
        let listener = Async::new(TcpListener::bind(addr)?)?;
        let local_addr = listener.get_ref().local_addr()?;
        let mut server = Server::new(identity, store, options, spawner).await?;
        server.listener = Some(listener);
        server.handle.local_addr = Some(local_addr);
        Ok(server)
    }

    /// A server without a listener of its own: hand it connections with
    /// [`ServerHandle::serve`] or [`Server::run_with`]. Loads `store` and starts the
    /// committer with `spawner`.
    pub async fn new<S>(
        identity: Identity,
        mut store: S,
        options: ServerOptions,
        spawner: impl Spawn,
    ) -> Result<Server, ServerError>
    where
        S: Store + Send + 'static,
    {
        let (store, records) = smol::unblock(move || {
            let r = store.load().map_err(|e| e.to_string());
            (store, r)
        })
        .await;
        let records = records.map_err(ServerError::Store)?;
        info!(
            accounts = records.accounts.len(),
            queued_dms = records.queued.len(),
            "store loaded"
        );
        let mut hub = Hub::new(options.hub.clone(), random_u64());
        hub.restore(records);
        let shared = Arc::new(Shared {
            state: Mutex::new(HubState {
                hub,
                routes: HashMap::new(),
                open: HashMap::new(),
                pending_ops: Vec::new(),
                pending: Vec::new(),
                in_flight: false,
                stop_committer: false,
                committer_done: false,
                store_failure: None,
            }),
            work: Event::new(),
            idle: Event::new(),
            stop: Event::new(),
            config: Arc::new(options.connection.clone()),
            identity,
            provider: &RUST_CRYPTO,
            options,
            shutting_down: AtomicBool::new(false),
            next_conn: AtomicU64::new(1),
            spawner: Box::new(spawner),
            lock_stats: LockCounters::default(),
        });
        shared
            .spawner
            .spawn(Box::pin(committer(shared.clone(), store)));
        Ok(Server {
            listener: None,
            handle: ServerHandle {
                shared,
                local_addr: None,
            },
        })
    }

    /// The address the server listens on (useful after binding port 0), if it has a
    /// listener.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.handle.local_addr
    }

    /// A handle to shut the server down from elsewhere.
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// Accepts connections on the listener of [`Server::bind`] until
    /// [`ServerHandle::shutdown`], then shuts down gracefully. A server made with
    /// [`Server::new`] just waits for the shutdown (serving what
    /// [`ServerHandle::serve`] is given) and then shuts down gracefully. Returns an
    /// error if accepting or the store failed (after shutting down).
    pub async fn run(mut self) -> Result<(), ServerError> {
        match self.listener.take() {
            Some(listener) => {
                let incoming = futures_lite::stream::unfold(listener, |l| async move {
                    let next = l.accept().await.map(|(s, peer)| {
                        let _ = s.get_ref().set_nodelay(true);
                        (TcpConn(s), Some(peer))
                    });
                    Some((next, l))
                });
                self.run_with(incoming).await
            }
            None => {
                self.run_with(futures_lite::stream::pending::<io::Result<(TcpConn, _)>>())
                    .await
            }
        }
    }

    /// Like [`Server::run`], but takes connections from `incoming`: any stream of
    /// accepted connections with the `futures-io` traits (an async-std or tokio-compat
    /// listener, a TLS acceptor, an in-memory pipe). Each is served on a task of the
    /// server's [`Spawn`]. The end of `incoming` starts the shutdown too.
    pub async fn run_with<St, S>(self, incoming: St) -> Result<(), ServerError>
    where
        St: Stream<Item = io::Result<(S, Option<SocketAddr>)>>,
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let shared = self.handle.shared.clone();
        if let Some(addr) = self.handle.local_addr {
            info!(%addr, "listening");
        }
        // Boxed, so dropping it closes a listener it owns before the shutdown.
        let mut incoming = Box::pin(incoming);
        let mut result = Ok(());
        loop {
            let stop = shared.stop.listen();
            if shared.shutting_down.load(Ordering::SeqCst) {
                break;
            }
            let next = futures_lite::future::or(async { Some(incoming.next().await) }, async {
                stop.await;
                None
            })
            .await;
            match next {
                None => break,
                Some(None) => {
                    info!("no more connections to accept");
                    break;
                }
                Some(Some(Ok((stream, peer)))) => {
                    if shared.shutting_down.load(Ordering::SeqCst) {
                        break;
                    }
                    shared
                        .spawner
                        .spawn(Box::pin(serve_connection(shared.clone(), stream, peer)));
                }
                Some(Some(Err(e))) if is_transient_accept_error(&e) => {
                    // Out of descriptors or the peer gave up: back off briefly, go on.
                    warn!(error = %e, "accept failed");
                    Timer::after(Duration::from_millis(50)).await;
                }
                Some(Some(Err(e))) => {
                    error!(error = %e, "accept failed; stopping");
                    result = Err(ServerError::Io(e));
                    break;
                }
            }
        }
        self.handle.shutdown();
        // New connections are refused from here on.
        drop(incoming);
        drop(self.listener);
        graceful_shutdown(&shared).await;
        if let Some(failure) = lock(&shared.state).store_failure.take() {
            return Err(ServerError::Store(failure));
        }
        result
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

/// Waits until `cond` holds of the hub state, or `deadline` passes (`false`).
async fn wait_until(
    shared: &Shared,
    deadline: Option<std::time::Instant>,
    cond: impl Fn(&HubState) -> bool,
) -> bool {
    loop {
        let listener = shared.idle.listen();
        if cond(&lock(&shared.state)) {
            return true;
        }
        match deadline {
            None => listener.await,
            Some(d) => {
                let timed_out = futures_lite::future::or(
                    async {
                        listener.await;
                        false
                    },
                    async {
                        Timer::at(d).await;
                        true
                    },
                )
                .await;
                if timed_out {
                    return cond(&lock(&shared.state));
                }
            }
        }
    }
}

async fn graceful_shutdown(shared: &Shared) {
    let deadline = std::time::Instant::now() + shared.options.shutdown_grace;
    // 1. New requests are no longer fed to the hub; let the commit pipeline drain so
    //    every acknowledged operation is durable and its reply queued.
    let drained = wait_until(shared, Some(deadline), |st| {
        !st.in_flight && st.pending.is_empty() && st.pending_ops.is_empty()
    })
    .await;
    if !drained {
        warn!("commit pipeline did not drain in time");
    }
    // 2. Say goodbye to everyone: the goodbye queues behind what was already queued.
    for outbox in lock(&shared.state).open.values() {
        outbox.close(Cut::Shutdown);
    }
    // 3. Wait for the connection tasks, then drop whatever is left.
    if !wait_until(shared, Some(deadline), |st| st.open.is_empty()).await {
        {
            let st = lock(&shared.state);
            warn!(
                left = st.open.len(),
                "dropping connections that did not finish"
            );
            for outbox in st.open.values() {
                outbox.close(Cut::Force);
            }
        }
        let soon = std::time::Instant::now() + Duration::from_secs(1);
        wait_until(shared, Some(soon), |st| st.open.is_empty()).await;
    }
    // 4. Stop the committer once it has nothing left.
    lock(&shared.state).stop_committer = true;
    shared.work.notify(usize::MAX);
    wait_until(shared, None, |st| st.committer_done).await;
    info!("stopped");
}

/// Applies batches of store operations, then releases their replies.
async fn committer<S: Store + Send + 'static>(shared: Arc<Shared>, store: S) {
    let mut store = Some(store);
    loop {
        let (ops, replies) = loop {
            let listener = shared.work.listen();
            {
                let mut st = lock(&shared.state);
                if !st.pending_ops.is_empty() || !st.pending.is_empty() {
                    st.in_flight = true;
                    break (
                        std::mem::take(&mut st.pending_ops),
                        std::mem::take(&mut st.pending),
                    );
                }
                st.in_flight = false;
                if st.stop_committer {
                    st.committer_done = true;
                    drop(st);
                    shared.idle.notify(usize::MAX);
                    return;
                }
            }
            shared.idle.notify(usize::MAX);
            listener.await;
        };
        let result = match if ops.is_empty() { None } else { store.take() } {
            None if ops.is_empty() => Ok(()),
            None => Err("the store was lost by an earlier failure".to_string()),
            Some(mut s) => {
                let n = ops.len();
                let (s, r) = smol::unblock(move || {
                    let r = s.apply(&ops).map_err(|e| e.to_string());
                    (s, r)
                })
                .await;
                store = Some(s);
                debug!(ops = n, "committed");
                r
            }
        };
        let mut st = lock_hub(&shared);
        match result {
            Ok(()) => {
                dispatch(&mut st, replies);
                drain_hub(&shared, &mut st);
            }
            Err(e) => {
                // Nothing of this batch may be acknowledged: drop its replies and stop.
                error!(error = %e, "store failed; shutting down without acknowledging");
                if st.store_failure.is_none() {
                    st.store_failure = Some(e);
                }
                drop(st);
                if !shared.shutting_down.swap(true, Ordering::SeqCst) {
                    shared.stop.notify(usize::MAX);
                }
            }
        }
    }
}

/// Most events handed to the hub under one hold of its lock: a burst of requests (a
/// client may pipeline a hundred room messages into one read) takes the lock a few
/// times, so no other executor thread waits long for it.
const EVENTS_PER_HOLD: usize = 16;

/// Hands one connection's events to the hub and routes what the hub produced.
fn feed_hub(shared: &Shared, id: ConnId, events: &mut Vec<ServerEvent>) {
    let mut rest = events.drain(..);
    loop {
        let chunk: Vec<ServerEvent> = rest.by_ref().take(EVENTS_PER_HOLD).collect();
        if chunk.is_empty() {
            return;
        }
        feed_hub_chunk(shared, id, chunk);
    }
}

fn feed_hub_chunk(shared: &Shared, id: ConnId, events: Vec<ServerEvent>) {
    let stopping = shared.shutting_down.load(Ordering::SeqCst);
    let mut st = lock_hub(shared);
    for ev in events {
        let now = now();
        match ev {
            ServerEvent::Authenticate { name, key, mode } => {
                if !stopping {
                    st.hub.handle_connect(now, id, &name, key, mode)
                }
            }
            ServerEvent::Request(r) => {
                if !stopping {
                    st.hub.handle_request(now, id, r)
                }
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
            shared.work.notify(1);
        }
    }
}

/// Queues replies on their connections, never waiting: a full queue cuts that
/// connection off (the hub is told, so the loop in [`drain_hub`] routes the fallout).
fn dispatch(st: &mut HubState, replies: Vec<(ConnId, Reply)>) {
    for (id, reply) in replies {
        let Some(outbox) = st.routes.get(&id) else {
            continue; // closed meanwhile; the hub knows or is about to
        };
        match outbox.push(reply) {
            Ok(()) => {}
            Err(PushError::Full(_)) => {
                warn!(
                    conn = id.0,
                    "send queue exceeded; cutting the connection off"
                );
                if let Some(outbox) = st.routes.remove(&id) {
                    outbox.close(Cut::SendQueue);
                }
                st.hub.handle_disconnect(now(), id);
            }
            Err(PushError::Closed(_)) => {
                st.routes.remove(&id);
                st.hub.handle_disconnect(now(), id);
            }
        }
    }
}

fn log_events(id: ConnId, peer: Option<SocketAddr>, events: &[ServerEvent]) {
    let peer = PeerDisplay(peer);
    for ev in events {
        match ev {
            ServerEvent::Authenticate { name, mode, .. } => {
                info!(conn = id.0, %peer, %name, ?mode, "handshake complete")
            }
            ServerEvent::Request(r) => debug!(conn = id.0, request = kind(r), "request"),
            ServerEvent::Closed { code, by_peer } => {
                info!(conn = id.0, %peer, %code, by_peer, "connection closed")
            }
        }
    }
}

struct PeerDisplay(Option<SocketAddr>);

impl fmt::Display for PeerDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(a) => write!(f, "{a}"),
            None => f.write_str("-"),
        }
    }
}

/// A request's kind, without its (encrypted, but still private) payload.
fn kind(r: &cove_core::hub::Request) -> &'static str {
    use cove_core::hub::Request as R;
    match r {
        R::GetPublicKey { .. } => "GetPublicKey",
        R::SendDm { .. } => "SendDm",
        R::FetchPending { .. } => "FetchPending",
        R::SetStatus { .. } => "SetStatus",
        R::ListUsers { .. } => "ListUsers",
        R::Logout => "Logout",
        R::AckDm { .. } => "AckDm",
        R::CreateRoom { .. } => "CreateRoom",
        R::JoinRoom { .. } => "JoinRoom",
        R::LeaveRoom { .. } => "LeaveRoom",
        R::ListRooms { .. } => "ListRooms",
        R::RoomMessage { .. } => "RoomMessage",
        R::UploadPrekeys { .. } => "UploadPrekeys",
        R::FetchPrekeys { .. } => "FetchPrekeys",
    }
}

/// Above this many bytes waiting to be written, a connection stops taking replies from
/// its queue: the queue (bounded) absorbs the backlog and overflows into a cut-off.
const HIGH_WATER: usize = 256 * 1024;
/// Most replies taken from the queue per step, so a busy connection still reads and
/// writes in between.
const TAKE_BATCH: usize = 256;
/// Steps per poll before a busy connection yields to other tasks.
const BUDGET: u32 = 32;

async fn serve_connection<S>(shared: Arc<Shared>, mut stream: S, peer: Option<SocketAddr>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let now = now();
    let mut conn = ServerConnection::new(
        now,
        shared.config.clone(),
        shared.provider,
        &shared.identity,
        &mut os_rng(),
    );
    let id = ConnId(shared.next_conn.fetch_add(1, Ordering::Relaxed));
    let outbox = Arc::new(Outbox::new(shared.options.send_queue));
    let admitted = {
        let mut st = lock(&shared.state);
        if shared.shutting_down.load(Ordering::SeqCst) {
            return;
        }
        let admitted = st.open.len() < shared.options.max_connections;
        if admitted {
            st.routes.insert(id, outbox.clone());
            st.open.insert(id, outbox.clone());
        }
        admitted
    };
    if !admitted {
        warn!(peer = %PeerDisplay(peer), "connection limit reached; refusing");
        conn.close(now, ErrorCode::LimitReached, false);
        let goodbye = async {
            let _ =
                futures_lite::AsyncWriteExt::write_all(&mut stream, conn.pending_transmit()).await;
            let _ = futures_lite::AsyncWriteExt::close(&mut stream).await;
            linger(&mut stream).await;
        };
        futures_lite::future::or(goodbye, async {
            Timer::after(Duration::from_secs(1)).await;
        })
        .await;
        return;
    }
    debug!(conn = id.0, peer = %PeerDisplay(peer), "connection accepted");
    let cap = conn.min_read_buffer();
    let mut task = ConnTask {
        shared: &shared,
        id,
        peer,
        stream,
        conn,
        outbox: &outbox,
        input: Vec::new(),
        cap,
        events: Vec::new(),
        replies: Vec::new(),
        timer: Timer::never(),
        timer_at: None,
        stall_deadline: None,
        read_done: false,
        write_failed: false,
        need_flush: false,
    };
    std::future::poll_fn(|cx| task.poll(cx)).await;
    // Closed: tell the hub (if the core has not yet), then close the stream's write side
    // (briefly: a peer that stopped reading gets no more time).
    if !task.conn.is_closed() {
        task.conn.handle_eof();
    }
    task.collect_events();
    task.flush_events();
    if !task.write_failed {
        let close = futures_lite::AsyncWriteExt::close(&mut task.stream);
        futures_lite::future::or(async { drop(close.await) }, async {
            Timer::after(Duration::from_millis(100)).await;
        })
        .await;
        linger(&mut task.stream).await;
    }
    drop(task);
    {
        let mut st = lock(&shared.state);
        st.open.remove(&id);
        st.routes.remove(&id);
    }
    shared.idle.notify(usize::MAX);
}

/// An accepted TCP connection whose `close` sends a FIN. (`Async<TcpStream>`'s `close`
/// only flushes, so the peer would see the end only when the socket is dropped.)
struct TcpConn(Async<TcpStream>);

impl AsyncRead for TcpConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TcpConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.0).poll_flush(cx) {
            Poll::Ready(Ok(())) => {
                Poll::Ready(self.0.get_ref().shutdown(std::net::Shutdown::Write))
            }
            other => other,
        }
    }
}

/// How long a closed connection keeps reading (and discarding) what the peer still sends.
const LINGER: Duration = Duration::from_secs(2);

/// Reads and discards the peer's remaining input until it closes or [`LINGER`] passes.
/// Closing a socket that still holds unread input sends a reset, and the reset can destroy
/// the goodbye (`RateLimited`, `FrameTooLarge`, ...) before the peer has read it.
async fn linger<S: AsyncRead + Unpin>(stream: &mut S) {
    let drain = async {
        let mut sink = [0u8; 1024];
        while let Ok(n) = futures_lite::AsyncReadExt::read(stream, &mut sink).await {
            if n == 0 {
                break;
            }
        }
    };
    futures_lite::future::or(drain, async {
        Timer::after(LINGER).await;
    })
    .await;
}

/// The state of one connection's task.
struct ConnTask<'a, S> {
    shared: &'a Shared,
    id: ConnId,
    peer: Option<SocketAddr>,
    stream: S,
    conn: ServerConnection,
    outbox: &'a Outbox,
    /// Bytes read and not yet consumed by the core (empty between frames).
    input: Vec<u8>,
    /// The most `input` may hold: one whole frame.
    cap: usize,
    events: Vec<ServerEvent>,
    replies: Vec<Reply>,
    timer: Timer,
    timer_at: Option<std::time::Instant>,
    /// When a write that is stuck cuts the client off.
    stall_deadline: Option<cove_core::Instant>,
    read_done: bool,
    write_failed: bool,
    need_flush: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> ConnTask<'_, S> {
    fn collect_events(&mut self) {
        while let Some(ev) = self.conn.poll_event() {
            self.events.push(ev);
        }
    }

    fn flush_events(&mut self) {
        if !self.events.is_empty() {
            log_events(self.id, self.peer, &self.events);
            feed_hub(self.shared, self.id, &mut self.events);
        }
    }

    /// One wake-up: do everything that is ready, in the core's drain order.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut budget = BUDGET;
        loop {
            let now = now();
            let mut progress = false;

            // 1. Replies from the hub, unless the socket is far behind.
            let max = if self.conn.pending_transmit().len() < HIGH_WATER {
                TAKE_BATCH
            } else {
                0 // registers for a close all the same
            };
            let taken = self.outbox.poll_take(cx, &mut self.replies, max);
            match taken.closed {
                Some(Cut::Force) => return Poll::Ready(()),
                Some(Cut::SendQueue) => {
                    self.replies.clear();
                    if !self.conn.is_closed() {
                        self.conn.close(now, ErrorCode::SendQueueExceeded, false);
                        progress = true;
                    }
                }
                Some(Cut::Shutdown) | None => {
                    for r in self.replies.drain(..) {
                        self.conn.send_reply(now, &r);
                    }
                    progress |= taken.n > 0;
                    if taken.closed.is_some() && taken.n < max && !self.conn.is_closed() {
                        self.conn.close(now, ErrorCode::ShuttingDown, false);
                        progress = true;
                    }
                }
            }

            // 2. Input.
            if !self.read_done && !self.conn.is_closed() {
                match poll_read_append(&mut self.stream, cx, &mut self.input, self.cap) {
                    Poll::Ready(Ok(0)) => {
                        self.read_done = true;
                        if self.input.len() >= self.cap {
                            // Cannot happen with a conforming core (a frame always fits).
                            self.conn.close(now, ErrorCode::FrameTooLarge, false);
                        } else {
                            self.conn.handle_eof();
                        }
                        progress = true;
                    }
                    Poll::Ready(Ok(_)) => {
                        loop {
                            let used = self.conn.handle_input(now, &mut self.input);
                            self.collect_events();
                            consume(&mut self.input, used);
                            if used == 0 {
                                break;
                            }
                        }
                        progress = true;
                    }
                    Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {
                        progress = true;
                    }
                    Poll::Ready(Err(e)) => {
                        debug!(conn = self.id.0, error = %e, "read failed");
                        self.read_done = true;
                        self.conn.handle_eof();
                        progress = true;
                    }
                    Poll::Pending => {}
                }
            }

            // 3. Timers: the core's, and the write-stall deadline.
            if self.stall_deadline.is_some_and(|stall| now >= stall)
                && !self.conn.pending_transmit().is_empty()
            {
                warn!(conn = self.id.0, "write stalled; cutting the client off");
                self.write_failed = true;
                self.conn.handle_eof();
            }
            if self.conn.poll_timeout().is_some_and(|t| now >= t) {
                self.conn.handle_timeout(now);
                progress = true;
            }

            // 4. Events to the hub (which may queue replies for us: step 1 again).
            self.collect_events();
            if !self.events.is_empty() {
                self.flush_events();
                progress = true;
            }

            // 5. Output: everything pending, in as few writes as the socket allows.
            while !self.write_failed && !self.conn.pending_transmit().is_empty() {
                match Pin::new(&mut self.stream).poll_write(cx, self.conn.pending_transmit()) {
                    Poll::Ready(Ok(0)) => {
                        self.write_failed = true;
                    }
                    Poll::Ready(Ok(n)) => {
                        self.conn.advance_transmit(n);
                        self.stall_deadline = None;
                        self.need_flush = true;
                        progress = true;
                    }
                    Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                    Poll::Ready(Err(e)) => {
                        debug!(conn = self.id.0, error = %e, "write failed; closing");
                        self.write_failed = true;
                    }
                    Poll::Pending => {
                        if self.stall_deadline.is_none() {
                            self.stall_deadline = Some(now + self.write_timeout());
                        }
                        break;
                    }
                }
            }
            if self.write_failed {
                if !self.conn.is_closed() {
                    self.conn.handle_eof();
                }
                return Poll::Ready(());
            }
            if self.conn.pending_transmit().is_empty() {
                self.stall_deadline = None;
                if self.need_flush {
                    match Pin::new(&mut self.stream).poll_flush(cx) {
                        Poll::Ready(Ok(())) => self.need_flush = false,
                        Poll::Ready(Err(_)) => {
                            self.write_failed = true;
                            progress = true;
                        }
                        Poll::Pending => {}
                    }
                }
                if self.conn.is_closed() && !self.need_flush {
                    return Poll::Ready(());
                }
            }

            // 6. Arm the one timer for the earliest deadline.
            let deadline = match (self.conn.poll_timeout(), self.stall_deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            match deadline {
                Some(d) => {
                    let at = to_std_instant(d);
                    if self.timer_at != Some(at) {
                        self.timer.set_at(at);
                        self.timer_at = Some(at);
                    }
                    if Pin::new(&mut self.timer).poll(cx).is_ready() {
                        self.timer_at = None;
                        progress = true;
                    }
                }
                None => {
                    if self.timer_at.take().is_some() {
                        self.timer = Timer::never();
                    }
                }
            }

            if !progress {
                self.trim();
                return Poll::Pending;
            }
            budget -= 1;
            if budget == 0 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
    }

    /// Gives back the scratch vectors' memory after a burst, so an idle connection stays
    /// small.
    fn trim(&mut self) {
        const KEEP: usize = 16;
        if self.replies.is_empty() && self.replies.capacity() > KEEP {
            self.replies = Vec::new();
        }
        if self.events.is_empty() && self.events.capacity() > KEEP {
            self.events = Vec::new();
        }
    }

    fn write_timeout(&self) -> cove_core::Duration {
        cove_core::Duration::from_micros(
            u64::try_from(self.shared.options.write_timeout.as_micros()).unwrap_or(u64::MAX),
        )
    }
}
