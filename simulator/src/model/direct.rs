//! The model of direct messages: acceptance (body size, accounts, queue limits in
//! messages and bytes, presence), message IDs that only grow, pushes only to the
//! recipient and never after its ack.

use std::sync::Arc;

use cove_core::hub::{ConnId, Reply};
use cove_core::wire::{AckStatus, ErrorCode, MAX_BODY_LEN};

use super::hub_step::{error_code, find};
use super::{Checked, Model, ModelDm, fail, user_of_name};

impl Model {
    /// `u` (on `conn`) sent a DM to `to`.
    pub(super) fn send_dm(
        &mut self,
        conn: ConnId,
        u: usize,
        to: &Arc<str>,
        body: &Arc<[u8]>,
        deliveries: &[(ConnId, Reply)],
    ) -> Checked {
        let ack = find(deliveries, conn).find_map(|r| match r {
            Reply::MessageAck { msg_id, status, .. } => Some((*msg_id, *status)),
            _ => None,
        });
        let Some((msg_id, status)) = ack else {
            return fail("dm ack", format!("DM from u{u} unanswered"));
        };
        let target = user_of_name(to).filter(|t| *t < self.users.len());
        let exists = target.is_some_and(|t| self.users[t].exists);
        let len = body.len();
        let too_large = len > MAX_BODY_LEN;
        if status == AckStatus::Failed {
            let code = error_code(deliveries, conn);
            if too_large != (code == Some(ErrorCode::BodyTooLarge)) {
                return fail(
                    "body size",
                    format!("DM of {len} bytes to {to} refused with {code:?}"),
                );
            }
            return match code {
                Some(ErrorCode::UserNotFound) if exists => {
                    fail("dm ack", format!("DM to existing {to} refused as unknown"))
                }
                Some(ErrorCode::QueueFull) if target.is_some_and(|t| !self.queue_full(t, len)) => {
                    fail("dm ack", format!("DM to {to} refused as queue full"))
                }
                _ => Ok(()),
            };
        }
        if too_large {
            return fail(
                "body size",
                format!("DM of {len} bytes (over {MAX_BODY_LEN}) to {to} accepted"),
            );
        }
        let Some(t) = target.filter(|_| exists) else {
            return fail("dm ack", format!("DM to unknown {to} accepted"));
        };
        let queued = self.queued_bytes(t);
        if queued + len > self.dm_limits.max_bytes {
            return fail(
                "dm queue bytes",
                format!(
                    "DM of {len} bytes to {to} accepted onto {queued} queued (budget {})",
                    self.dm_limits.max_bytes
                ),
            );
        }
        if msg_id <= self.max_id_life || msg_id <= self.max_id_durable {
            return fail(
                "message ids",
                format!(
                    "DM id {msg_id} not above {} (this life) / {} (durable)",
                    self.max_id_life, self.max_id_durable
                ),
            );
        }
        let online = self.users[t].conn.is_some();
        if (status == AckStatus::Delivered) != online {
            return fail(
                "dm ack",
                format!("DM {msg_id} to {to} acked {status:?} while online={online}"),
            );
        }
        self.max_id_life = msg_id;
        self.users[t].queue.push_back(msg_id);
        self.unbatched.dms.push(msg_id);
        self.dms.insert(
            msg_id,
            ModelDm {
                from: u,
                to: t,
                body: body.clone(),
                via: conn,
                durable: false,
                acked: false,
                ack_durable: false,
                promised: false,
                shown: false,
            },
        );
        Ok(())
    }

    /// Body bytes of the DMs queued for `t`.
    fn queued_bytes(&self, t: usize) -> usize {
        let users = &self.users[t];
        users
            .queue
            .iter()
            .filter_map(|id| self.dms.get(id))
            .map(|dm| dm.body.len())
            .sum()
    }

    /// Whether one more DM of `len` bytes for `t` is past one of the hub's queue limits:
    /// its messages, its bytes or the bytes of every queue together.
    fn queue_full(&self, t: usize, len: usize) -> bool {
        let l = &self.dm_limits;
        self.users[t].queue.len() >= l.max_queue
            || self.queued_bytes(t) + len > l.max_bytes
            || (0..self.users.len())
                .map(|u| self.queued_bytes(u))
                .sum::<usize>()
                + len
                > l.max_bytes_total
    }

    /// `u` acknowledged DM `msg_id`.
    pub(super) fn ack_dm(&mut self, u: usize, msg_id: u64) {
        let q = &mut self.users[u].queue;
        if let Some(pos) = q.iter().position(|id| *id == msg_id) {
            q.remove(pos);
            if let Some(dm) = self.dms.get_mut(&msg_id) {
                dm.acked = true;
            }
            self.unbatched.acks.push(msg_id);
        }
    }

    /// Checks every `IncomingDm` among one step's deliveries: a DM the hub accepted,
    /// unaltered, to its recipient's connection, not yet acknowledged.
    pub(super) fn check_dms(&self, deliveries: &[(ConnId, Reply)]) -> Checked {
        for (conn, reply) in deliveries {
            let Reply::IncomingDm {
                msg_id, from, body, ..
            } = reply
            else {
                continue;
            };
            let Some(dm) = self.dms.get(msg_id) else {
                return fail("dm integrity", format!("hub pushed unknown DM {msg_id}"));
            };
            let to = self.conns.get(conn).copied();
            if to != Some(dm.to) {
                return fail(
                    "dm to wrong user",
                    format!(
                        "DM {msg_id} for u{} pushed to {conn:?} (user {to:?})",
                        dm.to
                    ),
                );
            }
            if dm.acked {
                return fail("dm after ack", format!("DM {msg_id} pushed after its ack"));
            }
            if **from != *self.names[dm.from] || *body != dm.body {
                return fail("dm integrity", format!("DM {msg_id} altered by the hub"));
            }
        }
        Ok(())
    }
}
