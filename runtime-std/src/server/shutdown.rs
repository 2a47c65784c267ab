//! Graceful shutdown: drain the commit pipeline, say goodbye, wait, force.

use std::net::Shutdown;
use std::sync::PoisonError;
use std::thread::JoinHandle;

use cove_core::hub::ConnId;
use tracing::{info, warn};

use super::{Shared, lock};
use crate::to_std;

pub(super) fn graceful_shutdown(shared: &Shared, committer: Option<JoinHandle<()>>) {
    {
        let grace = to_std(shared.options.shutdown_grace);
        // 1. New logins and requests no longer reach the hub; let the pipeline drain so
        //    every acknowledged operation is durable and its reply queued.
        let mut st = lock(&shared.state);
        st.driver.begin_shutdown();
        shared.room.notify_all();
        let deadline = std::time::Instant::now() + grace;
        while !st.driver.is_drained() {
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
                .filter(|route| route.queue.shutdown().is_err());
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
