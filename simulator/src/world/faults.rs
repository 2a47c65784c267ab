//! Faults: a Poisson process over the fault classes (stall, reset, partition, client
//! crash, server crash), with rates from the knobs, during the safety phase only.

use cove_core::time::Instant;

use super::{Event, Phase, Sim, add};
use crate::model::Checked;
use crate::trace::Kind;

impl Sim {
    /// Rates per second of each fault class, in the order `fault` numbers them.
    fn fault_rates(&self) -> [f64; 5] {
        let n = self.users.len() as f64;
        let k = &self.knobs;
        [
            k.stall_rate * n / 60.0,
            k.reset_rate * n / 60.0,
            k.partition_rate / 60.0,
            k.client_crash_rate * n / 60.0,
            k.server_crash_rate / 60.0,
        ]
    }

    /// Plans the next fault (only in the safety phase).
    pub(super) fn schedule_fault(&mut self) {
        if self.phase != Phase::Safety {
            return;
        }
        let total: f64 = self.fault_rates().iter().sum();
        if total <= 0.0 {
            return;
        }
        let gap = self.faults.exp(1e6 / total) as u64 + 1;
        self.schedule(add(self.now, gap), Event::Fault);
    }

    /// A random user with a live client connection.
    fn connected_user(&mut self) -> Option<usize> {
        for _ in 0..16 {
            let u = self.faults.index(self.users.len());
            if self.users[u].conn.is_some() {
                return Some(u);
            }
        }
        None
    }

    /// The fault event: draws a class and makes it happen.
    pub(super) fn fault(&mut self) -> Checked {
        if self.phase != Phase::Safety {
            return Ok(());
        }
        let rates = self.fault_rates();
        let total: f64 = rates.iter().sum();
        let mut x = self.faults.unit() * total;
        let mut class = 0;
        for (i, r) in rates.iter().enumerate() {
            if x < *r {
                class = i;
                break;
            }
            x -= r;
        }
        self.trace.note(self.now, Kind::Fault, class as u64, 0);
        match class {
            0 => {
                if let Some(u) = self.connected_user() {
                    let pipe = self.users[u].conn.as_ref().map_or(0, |c| c.pipe);
                    let up = self.faults.chance(0.5);
                    let len = self
                        .faults
                        .range(100_000, self.knobs.stall_max_ms.max(100) * 1000);
                    let until = add(self.now, len);
                    if let Some(p) = self.pipes.get_mut(&pipe) {
                        let dir = if up { &mut p.up } else { &mut p.down };
                        dir.stalled_until = dir.stalled_until.max(until);
                        self.stats.stalls += 1;
                    }
                }
            }
            1 => {
                if let Some(u) = self.connected_user() {
                    let pipe = self.users[u].conn.as_ref().map_or(0, |c| c.pipe);
                    self.stats.resets += 1;
                    self.trace.note_text(self.now, Kind::Fault, u as u64, || {
                        format!("reset of u{u}'s connection {pipe}")
                    });
                    if let Some(p) = self.pipes.get_mut(&pipe) {
                        p.up.segs.clear();
                        p.down.segs.clear();
                    }
                    let client_now = self.client_now(u);
                    if let Some(c) = self.users[u].conn.as_mut() {
                        c.client.handle_eof(client_now);
                    }
                    self.after_client(u)?;
                    if let Some(sc) = self.server.conns.get_mut(&pipe) {
                        sc.conn.handle_eof(Instant(self.now));
                        self.server.touched.insert(pipe);
                        self.feed(pipe)?;
                        self.finish_server_step()?;
                    }
                }
            }
            2 => {
                self.stats.partitions += 1;
                let len = self
                    .faults
                    .range(500_000, self.knobs.partition_max_ms.max(500) * 1000);
                let until = add(self.now, len);
                let shape = self.faults.below(10);
                let (count, dirs): (usize, &[usize]) = match shape {
                    0..=4 => (1, &[0, 1]),
                    5..=7 => (
                        self.faults
                            .range(2, self.knobs.partition_group_max.max(2) as u64)
                            as usize,
                        &[0, 1],
                    ),
                    8 => (1, &[0]),
                    _ => (1, &[1]),
                };
                let first = self.faults.index(self.users.len());
                for i in 0..count.min(self.users.len()) {
                    let u = (first + i * 7919) % self.users.len();
                    for &d in dirs {
                        self.users[u].cut_until[d] = self.users[u].cut_until[d].max(until);
                    }
                }
                self.trace
                    .note_text(self.now, Kind::Fault, first as u64, || {
                        format!(
                            "partition of {count} client(s) from u{first}, dirs {dirs:?}, {len} µs"
                        )
                    });
            }
            3 => {
                if let Some(u) = self.connected_user() {
                    self.stats.client_crashes += 1;
                    let keep = self.faults.chance(self.knobs.keep_state_prob);
                    // A process crash closes the socket (FIN); a power cut leaves it half-open.
                    let fin = self.faults.chance(0.5);
                    self.trace.note_text(self.now, Kind::Fault, u as u64, || {
                        format!("client u{u} crashes, keeps state: {keep}, socket closed: {fin}")
                    });
                    self.teardown_client(u, fin);
                    if !keep {
                        self.users[u].local_last_dm = 0;
                        self.users[u].last_shown = 0;
                        self.users[u].marks.clear();
                        self.users[u].amnesia += 1;
                    }
                }
            }
            _ => self.server_crash_fault()?,
        }
        self.schedule_fault();
        Ok(())
    }
}
