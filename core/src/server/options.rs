//! The limits every server adapter shares, in one struct, so that `cove serve --runtime
//! std` and `--runtime smol` enforce the same bounds from the same settings.

use super::{DriverConfig, ServerConfig};
use crate::hub::HubConfig;
use crate::time::Duration;

/// Everything a server adapter needs to know about its limits. Adapters re-export it;
/// knobs that only make sense for one adapter (a thread's stack size) stay there.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Per-connection limits and timers (frame size, handshake deadline, keepalive, rate
    /// limit, key rotation, cipher suites).
    pub connection: ServerConfig,
    /// Limits of the hub (room size, offline queue length, ...). A server keeps each
    /// room's newest 64 messages (at most 64 KiB of them) in memory and reads older ones
    /// back from its store ([`HubConfig::log_memory_messages`]).
    pub hub: HubConfig,
    /// Bounds of the write-ahead pipeline, and admission (the connection cap and fair
    /// shares per source address: `driver.admission`).
    pub driver: DriverConfig,
    /// Most replies waiting for one connection's writer; past this the connection is cut
    /// off with `SendQueueExceeded` ("SendQ exceeded"). Default 1024. Half of it (and
    /// half of `send_queue_bytes`) is the high-water mark at which the senders of further
    /// replies stop being read until the queue drains to a quarter ([`super::Flow`]), so
    /// a member that reads is slowed down to, never cut off.
    pub send_queue: usize,
    /// A write to a client that makes no progress for this long cuts the client off, and
    /// so does a queue that senders wait for and that does not drain for this long.
    /// Default 10 s.
    pub write_timeout: Duration,
    /// On shutdown, how long connections get to flush their goodbye before their sockets
    /// are closed regardless. Default 5 s.
    pub shutdown_grace: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            connection: ServerConfig::default(),
            hub: HubConfig {
                log_memory_messages: 64,
                log_memory_bytes: 64 * 1024,
                ..HubConfig::default()
            },
            driver: DriverConfig::default(),
            send_queue: 1024,
            write_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}
