//! The async server: a task per connection, the core's [`Driver`] (the hub and its
//! write-ahead pipeline) behind one mutex, and a committer thread that makes the driver's
//! store batches durable before their replies go out.
//!
//! # Tasks
//!
//! - **accept** (the future returned by [`Server::run`] or [`Server::run_with`]): takes
//!   connections from a smol listener or from any stream of connections, enforces the
//!   connection cap, and spawns each connection's task with the server's [`Spawn`].
//! - **connection** (one per connection): owns its
//!   [`ServerConnection`](cove_core::server::ServerConnection) and its stream outright
//!   (no lock), and on every wake-up does everything that is ready: moves the replies waiting in its bounded queue into the
//!   core, reads what arrived and feeds the resulting events to the driver, writes *all*
//!   pending bytes with one `poll_write` (every record of the wake-up coalesced), and
//!   keeps one async-io timer at or before the earliest of the core's `poll_timeout`
//!   and the write-stall deadline (moved only when it must fire earlier).
//! - **committer** (a thread, `cove-store`, not a task): takes the driver's next batch of
//!   store operations (every step that piled up meanwhile), applies it without the lock,
//!   reports it durable, and routes the replies that released, writing those for idle
//!   connections itself. One wake-up per batch; see the `committer` module for why.
//!
//! # Why the driver sits behind a `std::sync::Mutex`, not in a task of its own
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
//! running server, so an operator can see when that stops being true. (These figures
//! were taken before the routing moved into the core's driver; a step does the same hub
//! work plus a few queue pushes, so re-measure before quoting them.)
//!
//! # Delivery order and the write-ahead rule
//!
//! The driver keeps both rules (see [`cove_core::server::Driver`]): no reply overtakes an
//! earlier one, and none leaves before its step's operations are durable. This adapter
//! only moves what the driver releases ([`Driver::poll_reply`]) into the connections'
//! bounded queues; a full queue is reported back ([`Driver::handle_cut`]) and that
//! connection is cut off with `SendQueueExceeded`.
//!
//! # Back-pressure between connections
//!
//! The core's [`Flow`] decides; this adapter applies it. After feeding a request of
//! connection `S`, `S` waits for every connection the step's replies went to that is over
//! the high-water mark (what the driver holds for it plus what its outbox holds): its
//! task reads and feeds nothing more (its outbox is marked paused) but goes on writing,
//! until those drain to the low-water mark (their tasks look after each write) or go
//! away. A connection waited for longer than `write_timeout` without draining does not
//! read and is cut off by the paused tasks' timers.
//!
//! # Back-pressure on the store
//!
//! The driver's pipeline is bounded ([`cove_core::server::DriverConfig`]). While it
//! reports [`Driver::is_full`] (a slow store), connection tasks stop reading their
//! sockets and stop feeding events; they wait for the committer's signal that a batch
//! became durable. A flooding client then fills its own TCP window, not the server's
//! memory.
//!
//! # Memory of an idle connection
//!
//! An idle connection owns its core state, an empty input buffer (reads go through a
//! per-thread scratch buffer, see the `scratch` module), an empty reply queue (it
//! allocates only while replies wait) and one timer: a few KiB in all, which is what
//! lets one process hold 10,000 of them (`examples/idle_connections.rs`).

mod accept;
mod committer;
mod conn_task;
mod direct;
mod hub_lock;
mod pipeline;
mod shutdown;

use conn_task::serve_connection;
pub use hub_lock::HubLockStats;
use hub_lock::LockCounters;
pub use pipeline::PipelineStats;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use cove_core::crypto::{CryptoProvider, Identity, RING};
use cove_core::hub::{ConnId, Hub};
use cove_core::server::{Driver, Flow, Outgoing, ServerConfig};
use cove_core::store::Store;
use event_listener::Event;
use futures_lite::{AsyncRead, AsyncWrite};
use smol::Async;
use tracing::info;

use crate::mailbox::Mailbox;
use crate::{Spawn, random_u64};

/// The limits of a [`Server`]: the core's `ServerOptions`, shared with cove-std so both
/// adapters enforce the same bounds from the same settings.
pub use cove_core::server::ServerOptions;

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

type Outbox = Mailbox<Outgoing, Cut>;

/// Everything under the hub mutex.
struct HubState {
    /// The hub and its write-ahead pipeline.
    driver: Driver,
    /// Connections the driver may deliver to.
    routes: HashMap<ConnId, Arc<Outbox>>,
    /// Every connection whose task still runs (for shutdown and the cap).
    open: HashMap<ConnId, Arc<Outbox>>,
    /// Every connection's state, for routers to deliver to idle ones.
    direct: HashMap<ConnId, Arc<dyn direct::Direct>>,
    /// Who waits for whom (back-pressure between connections).
    flow: Flow,
    stop_committer: bool,
    committer_done: bool,
    store_failure: Option<String>,
}

struct Shared {
    state: Mutex<HubState>,
    /// Tells the committer that a batch may be ready.
    work: Event,
    /// Tells connection tasks waiting out a full pipeline to look again (a batch became
    /// durable, the store failed, or the server is stopping).
    space: Event,
    /// Whether connection tasks must stop reading and feeding: the driver is full and
    /// still accepting requests. Written under the lock, read without it.
    full: AtomicBool,
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
    /// The most bytes one connection's outbox has held (queued estimates plus sealed and
    /// unwritten bytes), over every connection.
    outbound_peak: Arc<std::sync::atomic::AtomicUsize>,
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
        {
            // From here on the driver routes only closes; nobody waits for room.
            let mut st = lock(&self.shared.state);
            st.driver.begin_shutdown();
            pipeline::sync_full(&self.shared, &st);
        }
        self.shared.space.notify(usize::MAX);
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

    /// The most bytes any one connection's outbound queue has held since start: the
    /// [`encoded_len_hint`](cove_core::server::Outgoing::encoded_len_hint) of the replies queued
    /// for it plus what its task sealed and had not written. Bounded by
    /// `send_queue_bytes`, except that one reply always fits an empty queue.
    pub fn peak_outbound_bytes(&self) -> usize {
        self.shared
            .outbound_peak
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// How the hub mutex has been used so far.
    pub fn hub_lock_stats(&self) -> HubLockStats {
        self.shared.lock_stats.stats()
    }

    /// What the write-ahead pipeline holds now, and its counters since start.
    pub fn pipeline(&self) -> PipelineStats {
        PipelineStats::of(&lock(&self.shared.state))
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
    /// hub (on the blocking pool) and starts the committer thread; connection tasks run
    /// on `spawner`.
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
    /// committer thread; connection tasks run on `spawner`.
    pub async fn new<S>(
        identity: Identity,
        mut store: S,
        options: ServerOptions,
        spawner: impl Spawn,
    ) -> Result<Server, ServerError>
    where
        S: Store + Send + 'static,
    {
        let whole = options.hub.log_memory();
        let (store, records) = smol::unblock(move || {
            let r = store.load(whole).map_err(|e| e.to_string());
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
                driver: Driver::new(hub, options.driver.clone()),
                routes: HashMap::new(),
                open: HashMap::new(),
                direct: HashMap::new(),
                flow: Flow::new(options.flow()),
                stop_committer: false,
                committer_done: false,
                store_failure: None,
            }),
            work: Event::new(),
            space: Event::new(),
            full: AtomicBool::new(false),
            idle: Event::new(),
            stop: Event::new(),
            config: Arc::new(options.connection.clone()),
            identity,
            provider: &RING,
            options,
            shutting_down: AtomicBool::new(false),
            next_conn: AtomicU64::new(1),
            spawner: Box::new(spawner),
            lock_stats: LockCounters::default(),
            outbound_peak: Arc::default(),
        });
        // Without a committer nothing becomes durable, so nothing could be acknowledged.
        committer::start(shared.clone(), store)?;
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
}
