//! Direct messages: every DM to a registered user is queued durably, pushed to the
//! recipient's connection through a bounded window, and deleted only when acknowledged.
//! So a DM is never lost between "accepted" and "acked", live or offline.
//!
//! Queued bodies are bounded per recipient and server-wide in bytes
//! ([`HubConfig::max_queue_bytes_per_user`](super::HubConfig::max_queue_bytes_per_user),
//! [`HubConfig::max_queue_bytes_total`](super::HubConfig::max_queue_bytes_total)) as well
//! as in messages: a DM past either is refused (`QueueFull`), never dropped.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;

use super::frame_limits::{dm_record_len, fits};
use super::{ConnId, Hub, ID_BLOCK, Reply, User};
use crate::store::{QueuedDm, StoreOp};
use crate::time::Instant;
use crate::wire::{AckStatus, ErrorCode, MAX_BODY_LEN};

/// Body bytes of the queued direct messages, per recipient and in total.
///
/// [`Hub::restore`] fills the queues without counting them: the first DM sent or acked
/// counts what is queued then (restore comes before any connection, so before either),
/// and from there every queue and dequeue keeps the figures exact.
#[derive(Debug, Default)]
pub(super) struct QueuedBytes {
    /// Recipients with a non-empty queue, and its body bytes.
    per_user: BTreeMap<Arc<str>, usize>,
    total: usize,
    counted: bool,
}

impl QueuedBytes {
    fn of(&self, name: &str) -> usize {
        self.per_user.get(name).copied().unwrap_or(0)
    }

    fn add(&mut self, name: &Arc<str>, len: usize) {
        *self.per_user.entry(name.clone()).or_insert(0) += len;
        self.total += len;
    }

    fn sub(&mut self, name: &Arc<str>, len: usize) {
        if let Some(bytes) = self.per_user.get_mut(name) {
            *bytes = bytes.saturating_sub(len);
            if *bytes == 0 {
                self.per_user.remove(name);
            }
        }
        self.total = self.total.saturating_sub(len);
    }

    /// Counts every queue from scratch, once.
    fn count(&mut self, users: &BTreeMap<Arc<str>, User>) {
        if self.counted {
            return;
        }
        self.counted = true;
        self.per_user.clear();
        self.total = 0;
        for (name, user) in users {
            let bytes = queue_bytes(user);
            if bytes > 0 {
                self.add(name, bytes);
            }
        }
    }
}

fn queue_bytes(user: &User) -> usize {
    user.queue.iter().map(|q| q.body.len()).sum()
}

impl Hub {
    /// Body bytes of the unacknowledged direct messages queued for `name`.
    pub fn queued_bytes_for(&self, name: &str) -> usize {
        self.users.get(name).map_or(0, queue_bytes)
    }

    /// Body bytes of the unacknowledged direct messages queued for all users together.
    pub fn queued_bytes_total(&self) -> usize {
        if self.dm_bytes.counted {
            self.dm_bytes.total
        } else {
            self.users.values().map(queue_bytes).sum()
        }
    }

    fn fresh_msg_id(&mut self) -> u64 {
        if self.next_msg_id >= self.ids_reserved_upto {
            self.ids_reserved_upto = self.next_msg_id + ID_BLOCK;
            self.store_ops.push_back(StoreOp::IdsReserved {
                upto: self.ids_reserved_upto,
            });
        }
        let id = self.next_msg_id;
        self.next_msg_id += 1;
        id
    }

    pub(super) fn send_dm(
        &mut self,
        now: Instant,
        conn: ConnId,
        from: &Arc<str>,
        req: u32,
        to: Arc<str>,
        body: Arc<[u8]>,
    ) {
        let failed = |hub: &mut Hub, code| {
            hub.error(conn, req, code);
            hub.send(
                conn,
                Reply::MessageAck {
                    req,
                    msg_id: 0,
                    status: AckStatus::Failed,
                },
            );
        };
        if body.len() > MAX_BODY_LEN {
            return failed(self, ErrorCode::BodyTooLarge);
        }
        let Some((to, user)) = self.users.get_key_value(&to) else {
            return failed(self, ErrorCode::UserNotFound);
        };
        if !fits(dm_record_len(from, body.len()), user.max_frame) {
            return failed(self, ErrorCode::TooLargeForRecipient);
        }
        if user.queue.len() >= self.config.max_queue_per_user {
            return failed(self, ErrorCode::QueueFull);
        }
        let to = to.clone();
        let online = user.conn.is_some();
        self.dm_bytes.count(&self.users);
        let len = body.len();
        let fits = |queued: usize, max: usize| queued.checked_add(len).is_some_and(|b| b <= max);
        if !fits(self.dm_bytes.of(&to), self.config.max_queue_bytes_per_user)
            || !fits(self.dm_bytes.total, self.config.max_queue_bytes_total)
        {
            return failed(self, ErrorCode::QueueFull);
        }
        let msg_id = self.fresh_msg_id();
        let dm = QueuedDm {
            msg_id,
            to: to.clone(),
            from: from.clone(),
            timestamp: now.micros(),
            body,
        };
        self.store_ops.push_back(StoreOp::DmQueued(dm.clone()));
        if let Some(user) = self.users.get_mut(&to) {
            user.queue.push_back(dm);
            self.dm_bytes.add(&to, len);
        }
        self.stats.direct_messages += 1;
        let status = if online {
            AckStatus::Delivered
        } else {
            AckStatus::Queued
        };
        self.send(
            conn,
            Reply::MessageAck {
                req,
                msg_id,
                status,
            },
        );
        self.pump_dms(&to);
    }

    /// Sends queued DMs to the user's connection while its window has room. A DM too
    /// large for the connection's frame limit (queued before it announced that limit)
    /// stays queued for a connection that can take it: it is passed over, with one
    /// `TooLargeForRecipient` notice, and holds no place in the window.
    pub(super) fn pump_dms(&mut self, name: &Arc<str>) {
        let window = self.config.dm_window;
        let Some(user) = self.users.get_mut(name) else {
            return;
        };
        let Some(conn) = user.conn else {
            return;
        };
        while user.pushed < user.queue.len() && user.pushed.saturating_sub(user.skipped) < window {
            let Some(dm) = user.queue.get(user.pushed) else {
                break;
            };
            if !fits(dm_record_len(&dm.from, dm.body.len()), user.max_frame) {
                user.pushed += 1;
                user.skipped += 1;
                let code = ErrorCode::TooLargeForRecipient;
                let text = code.description();
                self.stats.deliveries += 1;
                self.deliveries
                    .push_back((conn, Reply::Error { req: 0, code, text }));
                continue;
            }
            let reply = Reply::IncomingDm {
                msg_id: dm.msg_id,
                from: dm.from.clone(),
                timestamp: dm.timestamp,
                body: dm.body.clone(),
            };
            user.pushed += 1;
            self.stats.deliveries += 1;
            self.deliveries.push_back((conn, reply));
        }
    }

    pub(super) fn ack_dm(&mut self, name: &Arc<str>, msg_id: u64) {
        self.dm_bytes.count(&self.users);
        let Some(user) = self.users.get_mut(name) else {
            return;
        };
        // Acks for unknown IDs (already acked, or never ours) change nothing.
        let Some(pos) = user.queue.iter().position(|q| q.msg_id == msg_id) else {
            return;
        };
        if let Some(dm) = user.queue.remove(pos) {
            self.dm_bytes.sub(name, dm.body.len());
        }
        if pos < user.pushed {
            user.pushed -= 1;
        }
        self.store_ops.push_back(StoreOp::DmAcked {
            to: name.clone(),
            msg_id,
        });
        self.pump_dms(name);
    }

    pub(super) fn fetch_pending(&mut self, conn: ConnId, name: &Arc<str>, req: u32) {
        let count = match self.users.get_mut(name) {
            Some(user) => {
                user.pushed = 0;
                user.skipped = 0;
                u32::try_from(user.queue.len()).unwrap_or(u32::MAX)
            }
            None => 0,
        };
        self.pump_dms(name);
        self.send(conn, Reply::PendingDone { req, count });
    }
}
