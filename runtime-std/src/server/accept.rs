//! Accepting connections, and refusing them over the cap.

use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use cove_core::hub::ConnId;
use cove_core::server::ServerConnection;
use cove_core::wire::ErrorCode;
use tracing::{debug, warn};

use super::conn::{drain, run_connection};
use super::outq::OutQueue;
use super::{Route, Shared, lock};
use crate::{now, os_rng};

pub(super) fn is_transient_accept_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    ) || matches!(e.raw_os_error(), Some(23 | 24)) // ENFILE, EMFILE
}

pub(super) fn accept(shared: &Arc<Shared>, stream: TcpStream, peer: SocketAddr) {
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
    // Allocated on demand, bounded in replies and bytes.
    let queue = Arc::new(OutQueue::new(
        shared.options.send_queue,
        shared.options.connection.send_queue_bytes,
        shared.outbound_peak.clone(),
    ));
    let cut = Arc::new(AtomicBool::new(false));
    let stream = Arc::new(stream);
    {
        let mut st = lock(&shared.state);
        // The connection cap and the fair shares per address are the driver's.
        if let Err(code) = st.driver.handle_accept(now, id, peer.ip().into()) {
            drop(st);
            warn!(%peer, %code, "refusing a connection");
            conn.close(now, code);
            refuse(shared, stream, conn.pending_transmit().to_vec());
            return;
        }
        st.routes.insert(
            id,
            Route {
                queue: queue.clone(),
                stream: stream.clone(),
                cut: cut.clone(),
                resume: Arc::new(std::sync::Condvar::new()),
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
            .stack_size(shared.thread_stack())
            .spawn(move || {
                run_connection(&shared, id, peer, stream, conn, queue, cut);
                let mut st = lock(&shared.state);
                st.sockets.remove(&id);
                shared.idle.notify_all();
            })
    };
    if let Err(e) = spawned {
        warn!(%peer, error = %e, "could not start a connection thread");
        let mut st = lock(&shared.state);
        let closed = cove_core::server::ServerEvent::Closed {
            code: ErrorCode::ServerError,
            by_peer: false,
        };
        st.driver.handle_event(now, id, closed);
        st.routes.remove(&id);
        if let Some(s) = st.sockets.remove(&id) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

/// Most refused connections lingering at once; past it, refusals skip the linger.
pub(super) const MAX_LINGERING_REFUSALS: usize = 64;

/// Sends a refused connection its alert and closes it without a reset, on a short-lived
/// thread so the accept loop never waits for it.
pub(super) fn refuse(shared: &Arc<Shared>, stream: Arc<TcpStream>, goodbye: Vec<u8>) {
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
