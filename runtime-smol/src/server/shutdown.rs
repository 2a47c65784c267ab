//! Graceful shutdown: drain the commit pipeline, say goodbye, wait, force.

use std::time::Duration;

use smol::Timer;
use tracing::{info, warn};

use super::pipeline::sync_full;
use super::{Cut, HubState, Shared, lock};

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

pub(super) async fn graceful_shutdown(shared: &Shared) {
    let grace = Duration::from_micros(shared.options.shutdown_grace.micros());
    let deadline = std::time::Instant::now() + grace;
    // 1. The driver routes no new requests (only closes), so nobody waits for room; let
    //    its pipeline drain so every acknowledged operation is durable and its reply
    //    queued.
    {
        let mut st = lock(&shared.state);
        st.driver.begin_shutdown();
        sync_full(shared, &st);
    }
    shared.space.notify(usize::MAX);
    let drained = wait_until(shared, Some(deadline), |st| st.driver.is_drained()).await;
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
