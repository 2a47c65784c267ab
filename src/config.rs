//! Server limits: command-line flags, a config file, defaults — in that order of
//! precedence.
//!
//! The config file has one `key = value` per line, `#` starts a comment, and the keys are
//! the long flag names without the dashes, for example:
//!
//! ```text
//! # cove.conf
//! max-connections = 2000
//! room-capacity   = 20
//! rate            = 50
//! ```

use clap::Args;
use cove_core::Duration as CoreDuration;
use cove_std::server::ServerOptions;

macro_rules! limits {
    ($( $(#[doc = $doc:literal])* $field:ident : $ty:ty = $key:literal ),* $(,)?) => {
        /// Server limits; every field is optional and falls back to the config file, then
        /// to the default.
        #[derive(Args, Clone, Debug, Default, PartialEq, Eq)]
        pub struct Limits {
            $(
                $(#[doc = $doc])*
                #[arg(long = $key, value_name = "N", help_heading = "Limits (also settable in the config file)")]
                pub $field: Option<$ty>,
            )*
        }

        impl Limits {
            /// Every key the config file accepts, with its help text.
            pub const KEYS: &'static [(&'static str, &'static str)] = &[
                $( ($key, concat!($($doc),*)) ),*
            ];

            /// Fills the fields not set yet from config-file text. Unknown keys and bad
            /// values are errors that name the line.
            pub fn merge_file(&mut self, text: &str) -> Result<(), String> {
                for (i, raw) in text.lines().enumerate() {
                    let line = raw.split('#').next().unwrap_or("").trim();
                    if line.is_empty() {
                        continue;
                    }
                    let Some((key, value)) = line.split_once('=') else {
                        return Err(format!("line {}: expected `key = value`", i + 1));
                    };
                    let (key, value) = (key.trim(), value.trim().replace('_', ""));
                    match key {
                        $(
                            $key => {
                                let v: $ty = value.parse().map_err(|e| {
                                    format!("line {}: {}: {e}", i + 1, $key)
                                })?;
                                self.$field.get_or_insert(v);
                            }
                        )*
                        other => {
                            return Err(format!(
                                "line {}: unknown key `{other}` (known: {})",
                                i + 1,
                                Self::KEYS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
                            ));
                        }
                    }
                }
                Ok(())
            }
        }
    };
}

limits! {
    /// Most connections open at once (default 1024).
    max_connections: usize = "max-connections",
    /// Most connections from one source address, IPv6 counted by /64 (default 64).
    max_per_address: usize = "max-connections-per-address",
    /// Most connections still in their handshake, server-wide; the rest of the cap is kept
    /// for logged-in users (default 256).
    max_unauthenticated: usize = "max-unauthenticated",
    /// Most connections still in their handshake from one address (default 8).
    max_unauthenticated_per_address: usize = "max-unauthenticated-per-address",
    /// New connections per second from one address, steady state (default 5; burst 20).
    handshake_rate: u32 = "handshake-rate",
    /// Seconds between registrations from one address, steady state (default 60).
    registration_interval_secs: u64 = "registration-interval-secs",
    /// Registrations one address may make in a burst (default 5).
    registration_burst: u32 = "registration-burst",
    /// Most members in one room, at most 255 (default 20).
    room_capacity: usize = "room-capacity",
    /// Most rooms on the server (default 10000).
    max_rooms: usize = "max-rooms",
    /// Most rooms one user may be in (default 32).
    max_rooms_per_user: usize = "max-rooms-per-user",
    /// Most unacknowledged direct messages queued for one user (default 1000 messages).
    offline_queue: usize = "offline-queue",
    /// Most bytes of direct-message bodies queued unacknowledged for one user; one more is
    /// refused "queue full" (default 1048576 bytes, 1 MiB).
    offline_queue_bytes: usize = "offline-queue-bytes",
    /// Most bytes of direct-message bodies queued unacknowledged for all users together
    /// (default 268435456 bytes, 256 MiB).
    offline_queue_bytes_total: usize = "offline-queue-bytes-total",
    /// Most room messages pushed to a member and not acknowledged yet, per room (default 64).
    room_window: usize = "room-window",
    /// Most messages a room's log retains for catch-up and history (default 1000).
    room_log_messages: usize = "room-log-messages",
    /// Most bytes of message bodies a room's log retains (default 1048576 bytes, 1 MiB).
    room_log_bytes: usize = "room-log-bytes",
    /// Seconds a room's log retains a message (default 2592000, 30 days).
    room_log_age_secs: u64 = "room-log-age-secs",
    /// Most of a room's newest messages kept in memory; older retained ones are read
    /// back from the store for catch-up and history (default 64; none a connected member
    /// has yet to receive is ever left out).
    room_memory_messages: usize = "room-memory-messages",
    /// Most bytes of a room's newest message bodies kept in memory (default 65536 bytes,
    /// 64 KiB).
    room_memory_bytes: usize = "room-memory-bytes",
    /// Most registered accounts (default 1000000).
    max_accounts: usize = "max-accounts",
    /// Most replies waiting for one client before it is cut off, "SendQ exceeded" (default
    /// 1024 replies); the bytes waiting are bounded too, at 4194304 bytes (4 MiB). From
    /// half of either on, the clients whose messages fill it are slowed (not read) until
    /// it drains to a quarter.
    send_queue: usize = "send-queue",
    /// Requests per second per connection and per account, steady state (default 50).
    rate: u32 = "rate",
    /// Requests per connection in a burst (default 100).
    rate_burst: u32 = "rate-burst",
    /// Refused requests a connection or account may collect before it is closed; one is
    /// forgiven every 10 s (default 50).
    rate_strikes: u32 = "rate-strikes",
    /// Largest frame payload a client may send, in bytes (default 65536 bytes, 64 KiB);
    /// before its handshake is done a client may send frames of at most 264 bytes.
    max_frame: u32 = "max-frame",
    /// Rotate a connection's key after this many records (default 1048576).
    rotate_after_records: u64 = "rotate-after-records",
    /// Rotate a connection's key after this many plaintext bytes (default 1073741824
    /// bytes, 1 GiB).
    rotate_after_bytes: u64 = "rotate-after-bytes",
    /// Rotate a connection's key after this many seconds (default 3600).
    rotate_after_secs: u64 = "rotate-after-secs",
    /// Milliseconds a client has to finish the handshake (default 10000).
    handshake_timeout_ms: u64 = "handshake-timeout-ms",
    /// Seconds of silence before the server pings a client (default 30).
    ping_interval_secs: u64 = "ping-interval-secs",
    /// Seconds of silence before a client is dropped and marked offline (default 90).
    idle_timeout_secs: u64 = "idle-timeout-secs",
    /// Milliseconds a write to a client may make no progress before it is cut off, and a
    /// client others wait for may take to drain its queue (default 10000).
    write_timeout_ms: u64 = "write-timeout-ms",
}

impl Limits {
    /// Applies the fields that are set onto `options`.
    pub fn apply(&self, options: &mut ServerOptions) {
        let c = &mut options.connection;
        let h = &mut options.hub;
        let adm = &mut options.driver.admission;
        if let Some(v) = self.max_connections {
            adm.max_connections = v;
        }
        if let Some(v) = self.max_per_address {
            adm.max_per_addr = v;
        }
        if let Some(v) = self.max_unauthenticated {
            adm.max_unauthenticated = v;
        }
        if let Some(v) = self.max_unauthenticated_per_address {
            adm.max_unauthenticated_per_addr = v;
        }
        if let Some(v) = self.handshake_rate {
            adm.handshakes_per_sec = v;
        }
        if let Some(v) = self.registration_interval_secs {
            adm.registration_every = CoreDuration::from_secs(v);
        }
        if let Some(v) = self.registration_burst {
            adm.registration_burst = v;
        }
        if let Some(v) = self.room_capacity {
            h.room_capacity = v.min(255);
        }
        if let Some(v) = self.max_rooms {
            h.max_rooms = v;
        }
        if let Some(v) = self.max_rooms_per_user {
            h.max_rooms_per_user = v;
        }
        if let Some(v) = self.offline_queue {
            h.max_queue_per_user = v;
        }
        if let Some(v) = self.offline_queue_bytes {
            h.max_queue_bytes_per_user = v;
        }
        if let Some(v) = self.offline_queue_bytes_total {
            h.max_queue_bytes_total = v;
        }
        if let Some(v) = self.room_window {
            h.room_window = v.max(1);
        }
        if let Some(v) = self.room_log_messages {
            h.log_max_messages = v.max(1);
        }
        if let Some(v) = self.room_log_bytes {
            h.log_max_bytes = v;
        }
        if let Some(v) = self.room_log_age_secs {
            h.log_max_age = CoreDuration::from_secs(v);
        }
        if let Some(v) = self.room_memory_messages {
            h.log_memory_messages = v.max(1);
        }
        if let Some(v) = self.room_memory_bytes {
            h.log_memory_bytes = v;
        }
        if let Some(v) = self.max_accounts {
            h.max_accounts = v;
        }
        if let Some(v) = self.send_queue {
            options.send_queue = v.max(1);
        }
        // The request rate holds per connection and per account alike (an account's
        // budget survives its reconnects).
        let d = &mut options.driver;
        if let Some(v) = self.rate {
            c.rate_per_sec = v;
            d.account_rate_per_sec = v;
        }
        if let Some(v) = self.rate_burst {
            c.rate_burst = v;
            d.account_burst = v;
        }
        if let Some(v) = self.rate_strikes {
            c.rate_strikes = v;
            d.account_strikes = v;
        }
        if let Some(v) = self.max_frame {
            c.max_frame = v;
        }
        if let Some(v) = self.rotate_after_records {
            c.session.rotate_after_records = v;
        }
        if let Some(v) = self.rotate_after_bytes {
            c.session.rotate_after_bytes = v;
        }
        if let Some(v) = self.rotate_after_secs {
            c.session.rotate_after = CoreDuration::from_secs(v);
        }
        if let Some(v) = self.handshake_timeout_ms {
            c.handshake_timeout = CoreDuration::from_millis(v);
        }
        if let Some(v) = self.ping_interval_secs {
            c.ping_interval = CoreDuration::from_secs(v);
        }
        if let Some(v) = self.idle_timeout_secs {
            c.idle_timeout = CoreDuration::from_secs(v);
        }
        if let Some(v) = self.write_timeout_ms {
            options.write_timeout = CoreDuration::from_millis(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let mut l = Limits {
            room_capacity: Some(5),
            ..Limits::default()
        };
        l.merge_file(
            "# comment\nroom-capacity = 7\nrate = 1_000 # inline\n\nwrite-timeout-ms=250\n",
        )
        .expect("parse");
        assert_eq!(l.room_capacity, Some(5));
        assert_eq!(l.rate, Some(1000));
        let mut o = ServerOptions::default();
        l.apply(&mut o);
        assert_eq!(o.hub.room_capacity, 5);
        assert_eq!(o.connection.rate_per_sec, 1000);
        assert_eq!(o.write_timeout, CoreDuration::from_millis(250));
        assert_eq!(
            o.driver.admission.max_connections,
            ServerOptions::default().driver.admission.max_connections
        );
        assert_eq!(o.hub.room_window, ServerOptions::default().hub.room_window);
    }

    #[test]
    fn room_window_and_retention_reach_the_hub() {
        let mut l = Limits::default();
        let text = "room-window = 8\nroom-log-messages = 10\n\
                    room-log-bytes = 4096\nroom-log-age-secs = 60\n\
                    room-memory-messages = 0\nroom-memory-bytes = 512\n";
        l.merge_file(text).expect("parse");
        let mut o = ServerOptions::default();
        assert_eq!(
            o.hub.log_memory_messages, 64,
            "a server reads old messages back"
        );
        l.apply(&mut o);
        assert_eq!(
            o.hub.log_memory_messages, 1,
            "at least the newest stays whole"
        );
        assert_eq!(o.hub.log_memory_bytes, 512);
        assert_eq!(o.hub.room_window, 8);
        assert_eq!(o.hub.log_max_messages, 10);
        assert_eq!(o.hub.log_max_bytes, 4096);
        assert_eq!(o.hub.log_max_age, CoreDuration::from_secs(60));
    }

    #[test]
    fn queued_dm_byte_budgets_reach_the_hub() {
        let mut l = Limits::default();
        let text = "offline-queue-bytes = 4096\noffline-queue-bytes-total = 65_536\n";
        l.merge_file(text).expect("parse");
        let mut o = ServerOptions::default();
        l.apply(&mut o);
        assert_eq!(o.hub.max_queue_bytes_per_user, 4096);
        assert_eq!(o.hub.max_queue_bytes_total, 65_536);
        let defaults = ServerOptions::default();
        assert_eq!(defaults.hub.max_queue_bytes_per_user, 1 << 20);
        assert_eq!(defaults.hub.max_queue_bytes_total, 256 << 20);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_line() {
        let e = Limits::default()
            .merge_file("rate = 3\nbogus = 1\n")
            .unwrap_err();
        assert!(e.contains("line 2") && e.contains("bogus"), "{e}");
        let e = Limits::default().merge_file("rate = lots\n").unwrap_err();
        assert!(e.contains("line 1") && e.contains("rate"), "{e}");
        let e = Limits::default().merge_file("rate\n").unwrap_err();
        assert!(e.contains("key = value"), "{e}");
    }
}
