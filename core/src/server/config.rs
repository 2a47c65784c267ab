//! Limits and timers of one server connection.

use crate::crypto::SuiteSet;
use crate::session::SessionConfig;
use crate::time::Duration;

/// Configuration shared by every [`ServerConnection`](super::ServerConnection).
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Largest frame payload accepted, in bytes; a longer length prefix closes the
    /// connection before any of the frame is buffered. Default 64 KiB.
    pub max_frame: u32,
    /// Cipher suites the server accepts. Default both.
    pub suites: SuiteSet,
    /// The handshake must finish within this long after the connection opens. Default 10 s.
    pub handshake_timeout: Duration,
    /// Ping a client heard nothing from for this long. Default 30 s.
    pub ping_interval: Duration,
    /// Close a client heard nothing from for this long. Default 90 s.
    pub idle_timeout: Duration,
    /// Requests per second allowed per connection, steady state. Default 50.
    pub rate_per_sec: u32,
    /// Requests allowed in a burst. Default 100.
    pub rate_burst: u32,
    /// Refused requests a connection may collect in a burst; one is forgiven every 10 s
    /// ([`STRIKE_FORGIVEN_EVERY`](super::STRIKE_FORGIVEN_EVERY)), so a client that stays
    /// over its rate is closed with `RateLimited` however it paces itself, while one that
    /// bursts now and then is not. Default 50.
    pub rate_strikes: u32,
    /// Pings and pongs per second, steady state; more closes the connection with
    /// `RateLimited`. (A key update must follow a record of traffic instead.) Default 10.
    pub control_rate_per_sec: u32,
    /// Pings and pongs in a burst. Default 50.
    pub control_burst: u32,
    /// Acknowledgements (`AckDm`, `AckRoom`) per second, steady state; more closes the
    /// connection with `RateLimited`. Default 1,000 (a catch-up acks a window at once).
    pub ack_rate_per_sec: u32,
    /// Acknowledgements in a burst. Default 2,000.
    pub ack_burst: u32,
    /// Largest frame payload a client accepts, in bytes: a reply whose record would be
    /// larger is never sealed (the hub's body limits keep every reply under the default).
    /// Default 64 KiB, the protocol's default.
    pub client_max_frame: u32,
    /// Most bytes waiting to be written to one client; past this it is cut off with
    /// `SendQueueExceeded`. Default 4 MiB.
    pub send_queue_bytes: usize,
    /// Key rotation thresholds.
    pub session: SessionConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_frame: 64 * 1024,
            client_max_frame: crate::wire::DEFAULT_MAX_FRAME,
            suites: SuiteSet::ALL,
            handshake_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(90),
            rate_per_sec: 50,
            rate_burst: 100,
            rate_strikes: 50,
            control_rate_per_sec: 10,
            control_burst: 50,
            ack_rate_per_sec: 1_000,
            ack_burst: 2_000,
            send_queue_bytes: 4 * 1024 * 1024,
            session: SessionConfig::default(),
        }
    }
}
