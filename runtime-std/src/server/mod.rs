//! The blocking server: a reader and a writer thread per connection, the core's
//! [`Driver`] (hub routing and the write-ahead pipeline) behind one mutex, and a committer
//! thread that makes the driver's store batches durable.
//!
//! # Threads and locks
//!
//! - **accept** (the thread calling [`Server::run`]): accepts, enforces the connection
//!   cap, sets `TCP_NODELAY`, spawns the connection's reader.
//! - **reader** (one per connection): reads the socket with a timeout taken from
//!   `ServerConnection::poll_timeout`, feeds the bytes to the connection (under the
//!   connection's own mutex, so crypto runs in parallel across connections), then hands
//!   the resulting events to the driver (under the driver mutex) and routes the replies
//!   the driver releases. While the driver is full the reader waits before feeding it:
//!   back-pressure, so a slow store bounds the server's memory instead of growing it.
//! - **writer** (one per connection): blocks on the connection's bounded queue of
//!   replies (allocated on demand, see `outq`); on each wake-up it seals *every* queued
//!   reply and writes all pending bytes with one `write_all`. A write that makes no
//!   progress for `write_timeout` cuts the client off.
//!
//! # Back-pressure between connections
//!
//! The core's [`Flow`](cove_core::server::Flow) decides; this adapter applies it. After
//! feeding a request of connection `S`, the reader asks whether any connection the step's
//! replies went to is over the high-water mark (what the driver holds for it plus what
//! its queue holds); if so `S`'s reader waits, before its next request, until those
//! drain to the low-water mark (their writers look after each write) or go away. Writers
//! never wait for readers, so queues drain whoever waits.
//! - **committer**: takes the driver's next batch of store operations, applies it
//!   without the lock, reports it durable, then routes the replies that waited for it.
//!
//! Lock order: the driver mutex may be held while *trying* to queue a reply (never
//! blocking); a connection mutex is never held while taking the driver mutex, and no
//! lock is held across a socket read or write or a store call.
//!
//! # Delivery order and the write-ahead rule
//!
//! The driver keeps them (see [`cove_core::server::Driver`]): it releases a reply only
//! once the store operations of its step and of every earlier step are durable, in
//! order. This adapter only queues what the driver releases.

mod accept;
mod conn;
mod outq;
mod pipeline;
mod shutdown;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use cove_core::crypto::{CryptoProvider, Identity, RING};
use cove_core::hub::{ConnId, Hub};
use cove_core::server::{Driver, DriverStats, Flow, FlowStats, ServerConfig};
use cove_core::store::Store;
use tracing::{error, info, warn};

/// The limits of a [`Server`]: the core's one struct, shared with every adapter.
pub use cove_core::server::ServerOptions;

use crate::random_u64;
use accept::{accept, is_transient_accept_error};
use pipeline::committer;
use shutdown::graceful_shutdown;

/// Stack size of the per-connection threads unless [`Server::set_thread_stack`] says
/// otherwise.
pub const DEFAULT_THREAD_STACK: usize = 256 * 1024;

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

/// A snapshot of the write-ahead pipeline, for monitoring (and for tests that check the
/// bound holds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pipeline {
    /// Replies held behind store batches not yet durable, or released and not yet
    /// queued on a writer.
    pub pending_replies: usize,
    /// Store operations not yet durable.
    pub pending_ops: usize,
    /// Whether the driver is at its bound (readers wait).
    pub full: bool,
    /// Readers waiting right now for the driver to have room.
    pub paused_readers: usize,
    /// The driver's counters since start.
    pub stats: DriverStats,
    /// Readers waiting right now because a connection their replies go to is deep.
    pub paused_senders: usize,
    /// Back-pressure counters since start.
    pub flow: FlowStats,
}

/// How the driver's replies reach one connection.
struct Route {
    /// Its writer's queue, bounded by `send_queue` replies and `send_queue_bytes`
    /// (replies queued plus what the writer sealed and is still writing).
    queue: Arc<outq::OutQueue>,
    stream: Arc<TcpStream>,
    cut: Arc<AtomicBool>,
    /// Its reader waits here (on the state mutex) while back-pressure pauses it, so a
    /// resumed sender is woken alone instead of every paused reader at once.
    resume: Arc<Condvar>,
}

/// Everything under the driver mutex.
struct State {
    driver: Driver,
    /// Connections the driver's replies may go to.
    routes: HashMap<ConnId, Route>,
    /// Sockets of every connection whose threads still run (for shutdown).
    sockets: HashMap<ConnId, Arc<TcpStream>>,
    /// Readers waiting for the driver to have room, or for deep connections to drain.
    paused: usize,
    /// Who waits for whom (back-pressure between connections).
    flow: Flow,
    stop_committer: bool,
    store_failure: Option<String>,
}

struct Shared {
    state: Mutex<State>,
    /// Signals the committer that a batch may be ready.
    work: Condvar,
    /// Signals shutdown that the pipeline drained or a connection ended.
    idle: Condvar,
    /// Signals paused readers that a batch became durable, a deep connection drained or
    /// went away, or the server is stopping.
    room: Condvar,
    config: Arc<ServerConfig>,
    identity: Identity,
    provider: &'static dyn CryptoProvider,
    options: ServerOptions,
    thread_stack: AtomicUsize,
    shutting_down: AtomicBool,
    next_conn: AtomicU64,
    /// Refused connections whose goodbye is still lingering.
    lingering: AtomicUsize,
    /// The most bytes one connection's outbound queue has held (`Route::peak`).
    outbound_peak: Arc<AtomicUsize>,
    local_addr: SocketAddr,
}

impl Shared {
    fn thread_stack(&self) -> usize {
        self.thread_stack.load(Ordering::Relaxed)
    }
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
        // From now on only closes reach the hub; paused readers re-check.
        {
            let mut st = lock(&self.shared.state);
            st.driver.begin_shutdown();
            for route in st.routes.values() {
                route.resume.notify_one();
            }
        }
        self.shared.room.notify_all();
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

    /// The most bytes any one connection's outbound queue has held since start: the
    /// [`encoded_len_hint`](cove_core::hub::Reply::encoded_len_hint) of the replies queued
    /// for it plus what its writer sealed and had not written. Bounded by
    /// `send_queue_bytes`, except that one reply always fits an empty queue.
    pub fn peak_outbound_bytes(&self) -> usize {
        self.shared.outbound_peak.load(Ordering::SeqCst)
    }

    /// Connections open now.
    pub fn connections(&self) -> usize {
        lock(&self.shared.state).sockets.len()
    }

    /// The most connections this server holds: `max_connections`, at most
    /// [`MAX_THREADED_CONNECTIONS`].
    pub fn max_connections(&self) -> usize {
        lock(&self.shared.state)
            .driver
            .config()
            .admission
            .max_connections
    }

    /// Where the write-ahead pipeline is now.
    pub fn pipeline(&self) -> Pipeline {
        let st = lock(&self.shared.state);
        Pipeline {
            pending_replies: st.driver.pending_replies(),
            pending_ops: st.driver.pending_ops(),
            full: st.driver.is_full(),
            paused_readers: st.paused,
            stats: st.driver.stats(),
            paused_senders: st.flow.paused(),
            flow: st.flow.stats(),
        }
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

/// The most connections cove-std holds, whatever `max_connections` asks: each takes a
/// reader and a writer thread, and past about 8,000 connections (16,000 threads, each with
/// its stack and guard mappings) Linux's default `vm.max_map_count` of 65,530 refuses new
/// threads' memory, which aborts the process. Half that keeps well clear.
pub const MAX_THREADED_CONNECTIONS: usize = 4096;

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
            .load(options.hub.log_memory())
            .map_err(|e| ServerError::Store(e.to_string()))?;
        info!(
            accounts = records.accounts.len(),
            queued_dms = records.queued.len(),
            "store loaded"
        );
        let mut hub = Hub::new(options.hub.clone(), random_u64());
        hub.restore(records);
        let mut driver_config = options.driver.clone();
        let cap = &mut driver_config.admission.max_connections;
        if *cap > MAX_THREADED_CONNECTIONS {
            warn!(
                asked = *cap,
                held = MAX_THREADED_CONNECTIONS,
                "cove-std runs two threads per connection and holds at most {MAX_THREADED_CONNECTIONS} \
                 connections; use the smol runtime for more"
            );
            *cap = MAX_THREADED_CONNECTIONS;
        }
        let driver = Driver::new(hub, driver_config);
        let listener = TcpListener::bind(addr)?;
        let local_addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                driver,
                routes: HashMap::new(),
                sockets: HashMap::new(),
                paused: 0,
                flow: Flow::new(options.flow()),
                stop_committer: false,
                store_failure: None,
            }),
            work: Condvar::new(),
            idle: Condvar::new(),
            room: Condvar::new(),
            config: Arc::new(options.connection.clone()),
            identity,
            provider: &RING,
            options,
            thread_stack: AtomicUsize::new(DEFAULT_THREAD_STACK),
            shutting_down: AtomicBool::new(false),
            next_conn: AtomicU64::new(1),
            lingering: AtomicUsize::new(0),
            outbound_peak: Arc::new(AtomicUsize::new(0)),
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

    /// Sets the stack size of the per-connection threads started from now on (default
    /// [`DEFAULT_THREAD_STACK`]). A knob of this adapter only.
    pub fn set_thread_stack(&mut self, bytes: usize) {
        self.shared.thread_stack.store(bytes, Ordering::Relaxed);
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
