//! The server's disk and its life: batches from the driver are written to the disk and
//! reported durable `fsync_us` later; a crash loses what is not durable, and the
//! restarted server restores its hub from the disk.

use cove_core::Instant;
use cove_core::hub::Hub;
use cove_core::server::Driver;
use cove_core::store::{LogLoad, LoggedMessage, MemoryStore};

use super::super::secure::is_secure;
use super::super::{Event, Phase, Sim, add};
use crate::check;
use crate::model::{Checked, Violation, user_of_name};
use crate::rng::split;
use crate::trace::Kind;

impl Sim {
    /// Hands the driver's next batch (if it has one) to the disk.
    pub(super) fn start_commit(&mut self) -> Checked {
        // Asked even while a batch is in flight: the model checks that the driver then
        // hands out nothing.
        let Some(batch) = self.server.driver.poll_batch() else {
            return Ok(());
        };
        self.model.seal_batch(batch.id.0)?;
        let at = add(self.now, self.knobs.fsync_us);
        let epoch = self.server.epoch;
        self.schedule(
            at,
            Event::Commit {
                epoch,
                batch: batch.id.0,
            },
        );
        if self.server.crash_armed {
            // The crash strikes while this batch is being written.
            self.server.crash_armed = false;
            let crash_at = add(self.now, self.faults.below(self.knobs.fsync_us.max(1)));
            self.schedule(crash_at, Event::ServerCrash { epoch });
        }
        self.server.in_flight = Some((batch, at));
        Ok(())
    }

    /// The disk's commit event for `batch`.
    pub(in crate::world) fn commit_due(&mut self, epoch: u32, batch: u64) -> Checked {
        let due = self
            .server
            .in_flight
            .as_ref()
            .is_some_and(|(b, at)| b.id.0 == batch && *at == self.now);
        if epoch != self.server.epoch || !due {
            return Ok(());
        }
        let Some((batch, _)) = self.server.in_flight.take() else {
            return Ok(());
        };
        self.trace
            .note(self.now, Kind::Commit, batch.ops.len() as u64, batch.id.0);
        for op in &batch.ops {
            MemoryStore::apply_to(&mut self.server.durable, op);
        }
        // The batch's reads see its writes, as a store's do.
        let loaded: Vec<_> = batch
            .loads
            .iter()
            .map(|load| (*load, MemoryStore::read_from(&self.server.durable, load)))
            .collect();
        self.stats.commits += 1;
        self.model.commit_batch(batch.id.0)?;
        let every = self.secure.every;
        check::cursors::after_commit(&self.server.durable, &batch.ops, &self.model, |u| {
            is_secure(u, every)
        })?;
        self.secure
            .canary
            .check_log_line(&format!("ops={} committed", batch.ops.len()))?;
        self.secure_durable(&batch.ops)?;
        self.server
            .driver
            .handle_durable(batch.id)
            .map_err(|e| Violation::new("batches", format!("the driver refused: {e}")))?;
        for (load, msgs) in loaded {
            self.loaded_step(load, msgs)?;
        }
        // Connections held back while the driver was full read on.
        while !self.server.driver.is_full() {
            let Some(id) = self.server.blocked_order.pop_front() else {
                break;
            };
            if !self.server.blocked.remove(&id) {
                continue;
            }
            self.server.touched.insert(id);
            self.feed(id)?;
            self.read_input(id)?;
        }
        self.finish_server_step()
    }

    /// The disk's answer to `load` through the driver, checked like any hub step.
    fn loaded_step(&mut self, load: LogLoad, msgs: Vec<LoggedMessage>) -> Checked {
        self.stats.loads += 1;
        self.server
            .driver
            .handle_loaded(Instant(self.now), load, msgs);
        self.trace.note(self.now, Kind::Load, load.from, load.to);
        self.check_step_ops()?;
        if !self.model.rooms.contains_key(&load.room) {
            // An encrypted users' room: its own checkers follow it.
            return Ok(());
        }
        let step = self.server.driver.last_step();
        self.model
            .on_loaded(&load, &step.replies, &step.ops, &step.loads)
    }

    /// A server crash fault. With probability `crash_mid_commit` it waits for the next
    /// batch and strikes while that batch is being written (at once if one is).
    pub(in crate::world) fn server_crash_fault(&mut self) -> Checked {
        if !self.server.up {
            return Ok(());
        }
        if self.server.in_flight.is_none() && self.faults.chance(self.knobs.crash_mid_commit) {
            self.server.crash_armed = true;
            self.trace.note_text(self.now, Kind::Fault, 0, || {
                "server crash armed for the next commit".into()
            });
            return Ok(());
        }
        self.server_crash()
    }

    /// An armed crash comes due.
    pub(in crate::world) fn crash_due(&mut self, epoch: u32) -> Checked {
        if epoch != self.server.epoch || !self.server.up || self.phase != Phase::Safety {
            return Ok(());
        }
        self.server_crash()
    }

    /// The server process dies: the batch in flight, unbatched ops, held replies and
    /// connections are lost.
    fn server_crash(&mut self) -> Checked {
        self.stats.server_crashes += 1;
        if self.server.in_flight.is_some() {
            self.stats.server_crashes_mid_commit += 1;
        }
        self.server.up = false;
        self.server.epoch += 1;
        self.server.in_flight = None;
        self.server.crash_armed = false;
        self.server.touched.clear();
        self.server.blocked.clear();
        self.server.blocked_order.clear();
        let conns = std::mem::take(&mut self.server.conns);
        for (id, sc) in conns {
            self.count_session(sc.conn.session().map(|s| s.stats()));
            if let Some(p) = self.pipes.get_mut(&id) {
                p.server_gone = true;
            }
        }
        for p in self.pipes.values_mut() {
            p.server_gone = true;
        }
        let down = self.faults.below(self.knobs.server_down_max_ms * 1000 + 1);
        let epoch = self.server.epoch;
        let at = add(self.now, down);
        self.trace.note_text(self.now, Kind::Fault, 0, || {
            format!("server crash, down {down} µs")
        });
        self.schedule(at, Event::ServerUp { epoch });
        self.model.crash()
    }

    /// The server restarts from its disk.
    pub(in crate::world) fn server_up(&mut self) -> Checked {
        self.trace.note_text(
            self.now,
            Kind::ServerUp,
            u64::from(self.server.epoch),
            || "server restarts from its store".into(),
        );
        let mut hub = Hub::new(
            self.server.hub_config.clone(),
            split(self.cfg.seed, "hub") ^ u64::from(self.server.epoch),
        );
        // As a store hands it back: older messages without their bodies.
        let whole = self.server.hub_config.log_memory();
        hub.restore(MemoryStore::load_from(&self.server.durable, whole));
        self.server.driver = Driver::new(hub, self.server.driver_config.clone());
        self.server.up = true;
        check::durability::queues_survive_restart(
            self.server.driver.hub(),
            self.users.iter().map(|u| &*u.name),
            &self.model,
            &mut self.stats.dms_restored,
        )?;
        let every = self.secure.every;
        check::durability::rooms_survive_restart(
            self.server.driver.hub(),
            &self.server.durable,
            &self.model,
            |admin| user_of_name(admin).is_some_and(|a| is_secure(a, every)),
        )?;
        self.secure_restart();
        let resets: Vec<u64> = self
            .pipes
            .iter()
            .filter(|(_, p)| p.pending_rst && !p.client_gone)
            .map(|(id, _)| *id)
            .collect();
        for id in resets {
            if let Some(p) = self.pipes.get_mut(&id) {
                p.pending_rst = false;
            }
            self.send(id, false, Vec::new(), false, true);
        }
        Ok(())
    }
}
