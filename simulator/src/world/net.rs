//! The simulated network: one [`Pipe`] per TCP connection, each with two ordered
//! directions of timed segments. Latency and jitter are drawn per connection and per
//! segment; a direction can stall, and a user's partition holds back everything it sends
//! or receives until it heals. Segments never corrupt and never reorder.

use std::collections::VecDeque;

use super::{Event, Sim, add};
use crate::model::Checked;
use crate::trace::Kind;

/// A piece of one direction of a connection: bytes, and/or a FIN or a reset.
#[derive(Debug)]
pub(super) struct Segment {
    /// When it is due at the receiver (before stalls and partitions).
    pub(super) at: u64,
    pub(super) data: Vec<u8>,
    /// The sender closed its side (after `data`).
    pub(super) fin: bool,
    /// A reset: the receiver sees an error at once.
    pub(super) rst: bool,
}

/// One direction of a connection: the segments in flight, in order.
#[derive(Debug, Default)]
pub(super) struct Direction {
    pub(super) segs: VecDeque<Segment>,
    /// When the last segment is due: later segments never overtake it.
    pub(super) last: u64,
    pub(super) stalled_until: u64,
    /// The time an `Arrive` event is queued for, if any.
    pub(super) scheduled: Option<u64>,
}

/// One simulated TCP connection between a user's client and the server.
#[derive(Debug)]
pub(super) struct Pipe {
    pub(super) user: usize,
    pub(super) latency: u64,
    /// Server life the connection was opened in.
    pub(super) epoch: u32,
    /// Client to server.
    pub(super) up: Direction,
    /// Server to client.
    pub(super) down: Direction,
    pub(super) accepted: bool,
    pub(super) client_gone: bool,
    pub(super) server_gone: bool,
    /// Client data reached a dead server while it was down: reset once it is back.
    pub(super) pending_rst: bool,
}

impl Sim {
    /// When a segment sent for `seg_at` can actually arrive: after any stall of its
    /// direction and any partition of its user.
    fn effective(&self, pipe: &Pipe, up: bool, seg_at: u64) -> u64 {
        let dir = if up { &pipe.up } else { &pipe.down };
        let cut = self.users[pipe.user].cut_until[usize::from(!up)];
        seg_at.max(dir.stalled_until).max(cut)
    }

    /// Queues an `Arrive` for the front segment of a direction, unless one is queued.
    pub(super) fn schedule_dir(&mut self, id: u64, up: bool) {
        let Some(pipe) = self.pipes.get(&id) else {
            return;
        };
        let dir = if up { &pipe.up } else { &pipe.down };
        let Some(front) = dir.segs.front() else {
            return;
        };
        let t = self.effective(pipe, up, front.at).max(self.now);
        if dir.scheduled == Some(t) {
            return;
        }
        if let Some(pipe) = self.pipes.get_mut(&id) {
            let dir = if up { &mut pipe.up } else { &mut pipe.down };
            dir.scheduled = Some(t);
        }
        self.schedule(t, Event::Arrive { conn: id, up });
    }

    /// Puts bytes (and/or a FIN or RST) on one direction of a connection.
    pub(super) fn send(&mut self, id: u64, up: bool, data: Vec<u8>, fin: bool, rst: bool) {
        let jitter = self.net.below(self.knobs.jitter_us + 1);
        let now = self.now;
        let Some(pipe) = self.pipes.get_mut(&id) else {
            return;
        };
        let latency = pipe.latency;
        let dir = if up { &mut pipe.up } else { &mut pipe.down };
        let at = add(now, latency + jitter).max(dir.last);
        dir.last = at;
        dir.segs.push_back(Segment { at, data, fin, rst });
        self.schedule_dir(id, up);
    }

    /// Delivers everything due now on one direction of a connection.
    pub(super) fn arrive(&mut self, id: u64, up: bool) -> Checked {
        let now = self.now;
        let mut segs = Vec::new();
        {
            let Some(pipe) = self.pipes.get(&id) else {
                return Ok(());
            };
            let dir = if up { &pipe.up } else { &pipe.down };
            if dir.scheduled != Some(now) {
                return Ok(());
            }
            let due = dir
                .segs
                .front()
                .is_some_and(|s| self.effective(pipe, up, s.at) <= now);
            let Some(pipe) = self.pipes.get_mut(&id) else {
                return Ok(());
            };
            let dir = if up { &mut pipe.up } else { &mut pipe.down };
            dir.scheduled = None;
            if due {
                // Everything due now on this direction, in order.
                while dir.segs.front().is_some_and(|s| s.at <= now) {
                    if let Some(s) = dir.segs.pop_front() {
                        segs.push(s);
                    }
                }
            }
        }
        self.schedule_dir(id, up);
        for seg in segs {
            self.trace.note(
                now,
                Kind::Arrive,
                id,
                u64::from(up) | (seg.data.len() as u64) << 1,
            );
            self.trace.bytes(&seg.data);
            self.canary.check_wire(id, &seg.data)?;
            self.secure.canary.check_wire(id, &seg.data)?;
            if up {
                self.arrive_at_server(id, seg)?;
            } else {
                self.arrive_at_client(id, seg)?;
            }
        }
        self.reap(id);
        Ok(())
    }

    /// Drops a connection once both ends are gone and nothing is in flight.
    pub(super) fn reap(&mut self, id: u64) {
        if let Some(p) = self.pipes.get(&id)
            && p.client_gone
            && p.server_gone
            && p.up.segs.is_empty()
            && p.down.segs.is_empty()
        {
            self.pipes.remove(&id);
        }
    }
}
