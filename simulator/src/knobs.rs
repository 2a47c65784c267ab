//! The knobs of one run, drawn from the seed (swarm testing: each seed switches fault
//! classes and operation kinds on or off and picks their intensity), then overridable one
//! by one with `--set name=value`. Every knob is printed at the start of a run, so a
//! failure report carries the whole configuration.

use crate::rng::Prng;

macro_rules! knobs {
    ($( $(#[$doc:meta])* $name:ident : $ty:ty ),* $(,)?) => {
        /// Everything a seed decides about a run besides the individual random draws.
        #[derive(Clone, Debug, PartialEq)]
        pub struct Knobs {
            $( $(#[$doc])* pub $name: $ty, )*
        }

        impl Knobs {
            /// Every knob as `(name, value)`, in declaration order.
            pub fn list(&self) -> Vec<(&'static str, String)> {
                vec![ $( (stringify!($name), self.$name.to_string()), )* ]
            }

            /// Sets the knob `name` from its textual `value`.
            pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
                match name {
                    $( stringify!($name) => {
                        self.$name = value
                            .parse()
                            .map_err(|_| format!("bad value {value:?} for knob {name}"))?;
                        Ok(())
                    } )*
                    _ => Err(format!("unknown knob {name:?} (see the knob list printed at start)")),
                }
            }
        }
    };
}

knobs! {
    /// Shortest one-way network latency of a connection, µs.
    latency_min_us: u64,
    /// Longest one-way base latency of a connection, µs.
    latency_max_us: u64,
    /// Extra random delay per segment, µs (never reorders: TCP is in order).
    jitter_us: u64,
    /// Time for the server's disk to commit a batch of store ops, µs.
    fsync_us: u64,
    /// Stalls (one direction of one connection freezes) per client per simulated minute.
    stall_rate: f64,
    /// Longest stall, ms.
    stall_max_ms: u64,
    /// Connection resets per client per simulated minute.
    reset_rate: f64,
    /// Partitions per simulated minute (one client, a group, or one direction only).
    partition_rate: f64,
    /// Longest partition, ms.
    partition_max_ms: u64,
    /// Most clients cut off by one partition.
    partition_group_max: usize,
    /// Client crashes per client per simulated minute.
    client_crash_rate: f64,
    /// Chance that a crashed client keeps its local state (its last DM ID and its rooms'
    /// read markers).
    keep_state_prob: f64,
    /// Server crashes per simulated minute.
    server_crash_rate: f64,
    /// Longest time the server stays down after a crash, ms.
    server_down_max_ms: u64,
    /// Largest client clock drift, parts per million (either way).
    skew_ppm_max: u64,
    /// Largest client clock offset, ms.
    skew_offset_max_ms: u64,
    /// Rotate a transport key after this many records.
    rotate_after_records: u64,
    /// Rotate a transport key after this many plaintext bytes.
    rotate_after_bytes: u64,
    /// Rotate a transport key after this long, ms.
    rotate_after_ms: u64,
    /// Keepalive ping interval (client and server), ms.
    ping_ms: u64,
    /// Idle timeout (client and server), ms.
    idle_ms: u64,
    /// Mean think time between a client's actions, ms.
    think_ms: u64,
    /// Weight of "create a room".
    w_create: u32,
    /// Weight of "join a room" (popularity is skewed: a few rooms draw most joins).
    w_join: u32,
    /// Weight of "leave a room".
    w_leave: u32,
    /// Weight of "post to a room".
    w_room_msg: u32,
    /// Weight of "send a direct message" (to anyone, online or not).
    w_dm: u32,
    /// Weight of "set status".
    w_status: u32,
    /// Weight of "list rooms or users".
    w_list: u32,
    /// Weight of "log out and stay away a while".
    w_logout: u32,
    /// Weight of "ask for a key update".
    w_key_update: u32,
    /// Mean time a logged-out client stays away, ms.
    offline_ms: u64,
    /// Rooms a client wants to be in.
    rooms_per_client: usize,
    /// Room capacity (the hub's cap).
    room_capacity: usize,
    /// DMs in flight per connection before acks.
    dm_window: usize,
    /// Most queued DMs per user.
    max_queue: usize,
    /// Mean delay before a client reconnects, ms.
    reconnect_ms: u64,
    /// Share of server crashes that wait for the next batch and strike while the disk
    /// writes it (between the driver handing it out and its being durable).
    crash_mid_commit: f64,
    /// The driver's bound on replies held behind the disk (back-pressure past it).
    max_held_replies: usize,
    /// The driver's bound on store ops not yet durable (back-pressure past it).
    max_pending_ops: usize,
    /// Chance that a new room is private (joined by invitation only).
    private_prob: f64,
    /// Weight of "invite someone to a room one administers".
    w_invite: u32,
    /// Weight of "remove a member from a room one administers".
    w_remove: u32,
    /// Weight of "retitle a room one administers".
    w_title: u32,
    /// Weight of "fetch a page of a room's history".
    w_history: u32,
    /// Room messages pushed and not acknowledged per member per room (the hub's window).
    room_window: usize,
    /// Most messages a room's log retains (the hub's retention by count).
    log_max_messages: usize,
    /// Most body bytes a room's log retains (the hub's retention by bytes).
    log_max_bytes: usize,
    /// Most of a room's newest messages the hub keeps in memory; older ones are read
    /// back from the simulated disk (the hub's `log_memory_messages`).
    log_memory_messages: usize,
    /// Most body bytes of a room's newest messages kept in memory (`log_memory_bytes`).
    log_memory_bytes: usize,
    /// Chance that the application acknowledges a room message it has shown only at its
    /// next action (a lost connection then loses the ack: the server replays).
    lazy_ack_prob: f64,
    /// Chance that a body an edge user sends (see `world::sim_client`) is exactly the
    /// protocol's largest (`MAX_BODY_LEN`), one byte less, or one byte more (refused).
    edge_body_prob: f64,
    /// Most body bytes queued for one user's DMs (the hub's byte budget per recipient).
    max_queue_bytes: usize,
    /// Every how many users one runs end-to-end encryption (a `SecureSession` beside its
    /// client): users `e2ee_every - 1`, `2 * e2ee_every - 1`, … (0: none, 1: everyone).
    e2ee_every: usize,
}

impl Knobs {
    /// Draws a swarm configuration for `clients` clients.
    pub fn draw(rng: &mut Prng) -> Knobs {
        // Each fault class is on for a seed with some probability, at a drawn intensity.
        let on = |p: f64, rng: &mut Prng| rng.chance(p);
        let latency_min_us = rng.range(50, 2_000);
        let latency_max_us = latency_min_us + rng.range(0, 40_000);
        let ping_ms = rng.range(2_000, 10_000);
        let weight = |rng: &mut Prng, off: f64, lo: u64, hi: u64| -> u32 {
            if rng.chance(off) {
                0
            } else {
                rng.range(lo, hi) as u32
            }
        };

        Knobs {
            latency_min_us,
            latency_max_us,
            jitter_us: rng.range(0, latency_min_us),
            fsync_us: rng.range(50, 5_000),
            stall_rate: if on(0.5, rng) {
                rng.range(1, 20) as f64 / 100.0
            } else {
                0.0
            },
            stall_max_ms: rng.range(100, 8_000),
            reset_rate: if on(0.5, rng) {
                rng.range(1, 10) as f64 / 100.0
            } else {
                0.0
            },
            partition_rate: if on(0.5, rng) {
                rng.range(1, 12) as f64
            } else {
                0.0
            },
            partition_max_ms: rng.range(500, 30_000),
            partition_group_max: rng.range(1, 50) as usize,
            client_crash_rate: if on(0.5, rng) {
                rng.range(1, 10) as f64 / 100.0
            } else {
                0.0
            },
            keep_state_prob: rng.range(0, 100) as f64 / 100.0,
            server_crash_rate: if on(0.4, rng) {
                rng.range(1, 6) as f64 / 2.0
            } else {
                0.0
            },
            server_down_max_ms: rng.range(0, 5_000),
            skew_ppm_max: if on(0.5, rng) {
                rng.range(10, 50_000)
            } else {
                0
            },
            skew_offset_max_ms: if on(0.5, rng) {
                rng.range(0, 3_600_000)
            } else {
                0
            },
            rotate_after_records: if on(0.7, rng) {
                rng.range(2, 200)
            } else {
                1 << 20
            },
            rotate_after_bytes: if on(0.3, rng) {
                rng.range(256, 65_536)
            } else {
                1 << 30
            },
            rotate_after_ms: if on(0.3, rng) {
                rng.range(500, 20_000)
            } else {
                3_600_000
            },
            ping_ms,
            idle_ms: ping_ms * rng.range(2, 4),
            think_ms: rng.range(2_000, 15_000),
            w_create: weight(rng, 0.0, 5, 30),
            w_join: weight(rng, 0.0, 30, 100),
            w_leave: weight(rng, 0.15, 5, 30),
            w_room_msg: weight(rng, 0.0, 50, 300),
            w_dm: weight(rng, 0.1, 20, 150),
            w_status: weight(rng, 0.2, 2, 10),
            w_list: weight(rng, 0.3, 2, 10),
            w_logout: weight(rng, 0.2, 1, 6),
            w_key_update: weight(rng, 0.3, 1, 10),
            offline_ms: rng.range(1_000, 30_000),
            rooms_per_client: rng.range(1, 4) as usize,
            room_capacity: if rng.chance(0.7) {
                20
            } else {
                rng.range(2, 19) as usize
            },
            dm_window: if rng.chance(0.7) {
                64
            } else {
                rng.range(1, 8) as usize
            },
            max_queue: if rng.chance(0.7) {
                1_000
            } else {
                rng.range(2, 20) as usize
            },
            reconnect_ms: rng.range(200, 5_000),
            // Drawn after the others, so that adding them changed no other knob.
            crash_mid_commit: rng.range(0, 100) as f64 / 100.0,
            max_held_replies: if rng.chance(0.3) {
                rng.range(4, 64) as usize
            } else {
                16_384
            },
            max_pending_ops: if rng.chance(0.3) {
                rng.range(1, 8) as usize
            } else {
                4_096
            },
            // Durable rooms (drawn last, so that adding them changed no other knob).
            private_prob: if rng.chance(0.3) {
                0.0
            } else {
                rng.range(5, 60) as f64 / 100.0
            },
            w_invite: weight(rng, 0.2, 2, 20),
            w_remove: weight(rng, 0.3, 1, 10),
            w_title: weight(rng, 0.5, 1, 5),
            w_history: weight(rng, 0.2, 2, 20),
            room_window: if rng.chance(0.4) {
                rng.range(1, 8) as usize
            } else {
                64
            },
            log_max_messages: if rng.chance(0.4) {
                rng.range(1, 30) as usize
            } else {
                1_000
            },
            log_max_bytes: if rng.chance(0.2) {
                rng.range(64, 2_000) as usize
            } else {
                1 << 20
            },
            lazy_ack_prob: if rng.chance(0.5) {
                0.0
            } else {
                rng.range(10, 90) as f64 / 100.0
            },
            // Edge sizes (drawn last, so that adding them changed no other knob).
            edge_body_prob: rng.range(2, 15) as f64 / 100.0,
            max_queue_bytes: if rng.chance(0.3) {
                rng.range(1_000, 300_000) as usize
            } else {
                1 << 20
            },
            // Drawn after the others, so that adding them changed no other knob. Most
            // runs read old messages back from the disk, as `cove serve` does.
            log_memory_messages: if rng.chance(0.6) {
                rng.range(1, 12) as usize
            } else if rng.chance(0.5) {
                256
            } else {
                usize::MAX
            },
            log_memory_bytes: if rng.chance(0.2) {
                rng.range(64, 2_000) as usize
            } else {
                usize::MAX
            },
            // End-to-end encryption: every user, as every `cove chat` user, so that the
            // canary check covers every body the server handles. Not drawn: plaintext
            // users (`--set e2ee_every=0`, or `=3` for a mix) are a choice, for the
            // plaintext rooms' own runs and the largest ones.
            e2ee_every: 1,
        }
    }

    /// The knobs as one line: `name=value name=value ...`.
    pub fn one_line(&self) -> String {
        self.list()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Turns every fault off (the liveness phase, and `--no-faults`).
    pub fn faults_off(&mut self) {
        self.stall_rate = 0.0;
        self.reset_rate = 0.0;
        self.partition_rate = 0.0;
        self.client_crash_rate = 0.0;
        self.server_crash_rate = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_deterministic_and_settable() {
        let a = Knobs::draw(&mut Prng::new(1));
        let b = Knobs::draw(&mut Prng::new(1));
        assert_eq!(a, b);
        let mut c = a.clone();
        c.set("room_capacity", "3").unwrap();
        assert_eq!(c.room_capacity, 3);
        assert!(c.set("nope", "1").is_err());
        assert!(c.set("room_capacity", "x").is_err());
        assert!(a.one_line().contains("think_ms="));
        assert!(a.idle_ms > a.ping_ms);
    }
}
