//! The options of `cove bench`, with the help a person reads.

use clap::Args;

/// The `cove serve` limits a flat-out benchmark needs raised (the defaults protect a
/// public server from exactly this kind of load, all from one address).
pub const SERVE_FLAGS: &str = "--rate 1000000 --rate-burst 1000000 \
--max-connections 100000 --max-connections-per-address 100000 \
--max-unauthenticated 100000 --max-unauthenticated-per-address 100000 \
--handshake-rate 1000000 --registration-burst 1000000";

/// Help printed after the options.
pub const AFTER_HELP: &str = "\
WHAT IT DOES
  Connects --clients clients, registers each with a fresh Ed25519 key, puts them into
  --rooms public plaintext (non-MLS) rooms of --members each (the first member creates a
  room, the others join it; client c holds room slots c, c+N, ... so rooms are always
  full and clients with no slot stay idle), waits until everyone is in, then each client
  in a room sends --msgs messages (round robin over its rooms). Each body starts with a
  40-byte text header (sender, room, sequence number, send time) padded to --size bytes.
  Receivers measure end-to-end latency and check every (sender, room) stream for lost,
  duplicated and reordered messages; they acknowledge room messages every --ack-every.
  The run ends when every expected message arrived, or --drain-timeout seconds after
  the last one came once all were sent.

  Deliveries count messages that reached another member: K msgs x N senders x (M-1).
  cove also echoes each message to its sender (its acknowledgement); echoes are checked
  but neither counted as deliveries nor in the latency.

SERVER LIMITS
  A cove server's defaults refuse this load (50 requests/s per connection, 5 new
  registrations per address, 64 connections per address...). Start it with:
    cove serve --data /tmp/cove-bench --runtime smol \\
      --rate 1000000 --rate-burst 1000000 \\
      --max-connections 100000 --max-connections-per-address 100000 \\
      --max-unauthenticated 100000 --max-unauthenticated-per-address 100000 \\
      --handshake-rate 1000000 --registration-burst 1000000
  and --room-capacity M when --members M is over 20 (at most 255). A refusal is reported
  with the limit to raise. Clients and the server need `ulimit -n` above the client count.

EXIT STATUS
  0: every message arrived once and in order; 2: the run completed but something was
  lost, duplicated, reordered or malformed, or a client was cut off (the report says
  what); 1: the setup failed (the server refused, or did not answer).

EXAMPLES
  cove bench --clients 200 --rooms 10 --members 20 --msgs 1000 --rate max
  cove bench --clients 200 --rooms 10 --members 20 --msgs 100 --rate 10 --quickack
  cove bench --irc --server 127.0.0.1:6667 --clients 200 --msgs 100   # an IRC server
  cove bench --json --server-pid $(pgrep -n cove) ...                  # for scripts
bench/run.sh in the source tree compares cove with ngircd side by side.";

/// How fast each client sends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rate {
    /// As fast as the server takes them.
    Max,
    /// Messages per second per client.
    PerSec(f64),
}

fn parse_rate(s: &str) -> Result<Rate, String> {
    if s.eq_ignore_ascii_case("max") {
        return Ok(Rate::Max);
    }
    match s.parse::<f64>() {
        Ok(r) if r > 0.0 && r.is_finite() => Ok(Rate::PerSec(r)),
        _ => Err(format!(
            "{s:?}: a positive number of messages per second, or `max`"
        )),
    }
}

/// Arguments of `cove bench`.
#[derive(Args, Clone, Debug)]
pub struct BenchArgs {
    /// Server address (cove, or IRC with --irc).
    #[arg(long, default_value = "127.0.0.1:7878", value_name = "ADDR")]
    pub server: String,
    /// Number of client connections.
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub clients: u32,
    /// Number of rooms (IRC: channels).
    #[arg(long, default_value_t = 10, value_name = "R")]
    pub rooms: u32,
    /// Members per room, at least 2 and at most --clients. When rooms x members exceeds
    /// the clients, clients are in several rooms (at most 32); when it is less, the
    /// clients left over stay connected and idle.
    #[arg(long, default_value_t = 20, value_name = "M")]
    pub members: u32,
    /// Messages each client in a room sends (0: connect, join, and measure nothing).
    #[arg(long, default_value_t = 100, value_name = "K")]
    pub msgs: u32,
    /// Messages per second per client (decimals allowed: 0.1 is one every 10 s), spread
    /// evenly over the clients; or `max` to send flat out, as fast as the server reads.
    #[arg(long, default_value = "max", value_name = "R|max", value_parser = parse_rate)]
    pub rate: Rate,
    /// Bytes per message body, header included: at least 40, at most 4000 (400 with
    /// --irc, to fit IRC's 512-byte line).
    #[arg(long, default_value_t = 100, value_name = "B")]
    pub size: usize,
    /// Generator threads, each an epoll loop over its share of the clients. Default: the
    /// number of CPU cores.
    #[arg(long, value_name = "T")]
    pub threads: Option<usize>,
    /// Print one JSON object on stdout (no progress bar): the figures of the text report,
    /// with times in ms (latency) and s, server CPU per delivery in µs, RSS in KiB.
    #[arg(long)]
    pub json: bool,
    /// Drive an IRC server (ngircd, ...) instead: NICK/USER, JOIN #channel, PRIVMSG. The
    /// same workload and statistics; IRC does not echo a message to its sender.
    #[arg(long)]
    pub irc: bool,
    /// Set TCP_QUICKACK on the client sockets (after every read): the clients acknowledge
    /// at once instead of delaying ACKs, which otherwise meet the server's Nagle delay
    /// (ngircd does not set TCP_NODELAY) and add up to 40 ms at paced rates. Linux only.
    #[arg(long)]
    pub quickack: bool,
    /// The server's process ID: read its CPU time (user + system) from /proc/PID/stat
    /// before and after the run, to report server CPU per delivery (µs), and its peak
    /// resident memory (VmHWM, of the whole process lifetime) from /proc/PID/status.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// Do not show the progress bar (it is drawn on stderr when it is a terminal).
    #[arg(long)]
    pub no_progress: bool,
    /// Clients in their handshake (connect + register) at once, all threads together.
    /// Default 64; 10 with --irc, because ngircd's listen backlog is 10 and a full
    /// backlog makes connects wait for SYN retries (seconds).
    #[arg(long, value_name = "N")]
    pub connect_batch: Option<usize>,
    /// Acknowledge a room's messages once this many are unacknowledged (cove; one AckRoom
    /// carries the highest sequence number). Keep it at most half the server's
    /// --room-window (default 64), or delivery stalls.
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub ack_every: u32,
    /// Seconds to wait for outstanding deliveries once every message is sent, counted
    /// from the last one that arrived; then the run ends and the missing are lost.
    #[arg(long, default_value_t = 5.0, value_name = "SECS")]
    pub drain_timeout: f64,
    /// Seconds each setup step (connect, create rooms, join rooms) may take.
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub setup_timeout: u64,
}
