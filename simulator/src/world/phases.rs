//! The run's phases — safety (workload and faults), then liveness (everything healed,
//! everyone back, until the world converges or the deadline passes) — and the session
//! statistics gathered along the way.

use cove_core::session::SessionStats;

use super::{Event, Phase, Sim, add};
use crate::check;
use crate::model::{Checked, Violation};
use crate::trace::Kind;

/// How often the liveness phase checks for convergence.
const CHECK_EVERY: u64 = 250_000;

impl Sim {
    /// The end of the safety phase: faults off, network healed, everyone back.
    pub(super) fn start_liveness(&mut self) -> Checked {
        self.phase = Phase::Liveness;
        self.knobs.faults_off();
        self.trace.note_text(self.now, Kind::Phase, 1, || {
            "liveness: faults off, network healed, everyone back".into()
        });
        self.liveness_deadline = add(self.now, self.cfg.liveness_secs.saturating_mul(1_000_000));
        self.stats.safety_end_us = self.now;
        for u in 0..self.users.len() {
            self.users[u].cut_until = [0, 0];
            self.users[u].away_until = 0;
            self.flush_acks(u);
            self.flush_client(u);
            if self.users[u].conn.is_none() {
                self.users[u].connect_gen += 1;
                let generation = self.users[u].connect_gen;
                let at = add(self.now, self.work.below(1_000_000));
                self.schedule(
                    at,
                    Event::Connect {
                        user: u as u32,
                        generation,
                    },
                );
            }
        }
        let ids: Vec<u64> = self.pipes.keys().copied().collect();
        for id in ids {
            if let Some(p) = self.pipes.get_mut(&id) {
                p.up.stalled_until = 0;
                p.down.stalled_until = 0;
            }
            self.schedule_dir(id, true);
            self.schedule_dir(id, false);
        }
        self.server.crash_armed = false;
        if !self.server.up {
            self.server_up()?;
        }
        self.schedule(add(self.now, CHECK_EVERY), Event::Check);
        Ok(())
    }

    /// The periodic convergence check of the liveness phase.
    pub(super) fn check_convergence(&mut self) -> Checked {
        self.trace.note(self.now, Kind::Check, 0, 0);
        let busy = self.server.busy();
        let hub = self.server.driver.hub();
        let records = &self.server.durable;
        match check::convergence::unconverged(busy, hub, records, &self.users, &self.model) {
            None => {
                self.stats.converged_us = self.now.saturating_sub(self.stats.safety_end_us);
                self.phase = Phase::Done;
                Ok(())
            }
            Some(why) if self.now >= self.liveness_deadline => Err(Violation::new(
                "liveness",
                format!(
                    "not converged {} s after healing: {why}",
                    self.cfg.liveness_secs
                ),
            )),
            Some(_) => {
                self.schedule(add(self.now, CHECK_EVERY), Event::Check);
                Ok(())
            }
        }
    }

    // ----- statistics ---------------------------------------------------------------

    /// Counts the key updates of a session that is ending.
    pub(super) fn count_session(&mut self, stats: Option<SessionStats>) {
        if let Some(s) = stats {
            self.stats.key_updates += s.key_updates_sent;
        }
    }

    /// Counts the key updates of the sessions still open at the end.
    pub(super) fn collect_session_stats(&mut self) {
        let mut total = 0;
        for sc in self.server.conns.values() {
            total += sc.conn.session().map_or(0, |s| s.stats().key_updates_sent);
        }
        for user in &self.users {
            if let Some(c) = user.conn.as_ref() {
                total += c.client.session().map_or(0, |s| s.stats().key_updates_sent);
            }
        }
        self.stats.key_updates += total;
        self.stats.room_messages = self.model.room_messages;
        let (s, e) = (&self.secure, &mut self.stats.e2ee);
        e.decrypted = s.decrypts.decrypted;
        e.before_join = s.decrypts.before_join;
        e.after_gap = s.decrypts.after_gap;
        e.lost_joins = s.decrypts.lost_joins;
        e.group_sets = s.epochs.group_sets;
        let r = &s.removed;
        e.removed_states = [r.states, r.fed, r.read_before, r.retired];
        e.canary_scans = s.canary.scanned;
    }
}
