//! The adapter's side of the driver: feeding events, committing batches, releasing
//! replies, crashing. Checks the write-ahead pipeline from outside.

use cove_core::hub::{ConnId, Hub, Reply};
use cove_core::server::{Driver, DriverState, ServerEvent};
use cove_core::store::{LogMemory, Store, StoreOp};
use cove_core::wire::AckStatus;

use super::USERS;
use super::model::{Expect, Input, Model};
use super::rooms::Rooms;

impl Model {
    /// One connection event, then whatever the adapter does after it.
    pub(super) fn feed(
        &mut self,
        conn: ConnId,
        event: ServerEvent,
        expect: Expect,
        connecting: Option<(usize, usize)>,
    ) {
        self.step(Input::Event(conn, event), expect, connecting);
        self.settle();
    }

    /// Hands one input to the driver and checks the step. A full driver is not fed: like
    /// an adapter that stops reading, the harness first waits for the store.
    pub(super) fn step(
        &mut self,
        input: Input,
        expect: Expect,
        connecting: Option<(usize, usize)>,
    ) {
        while self.driver.is_full() {
            assert!(
                self.make_durable(),
                "the driver is full with nothing to make durable"
            );
            self.release();
        }
        match input {
            Input::Event(conn, event) => self.driver.handle_event(self.now, conn, event),
            Input::Cut(conn) => self.driver.handle_cut(self.now, conn),
        }
        self.observe(expect, connecting);
    }

    /// After a step: commits every batch unless the input commits lazily, releases what
    /// may go out, and turns released `Close`s into `Closed` events.
    pub(super) fn settle(&mut self) {
        loop {
            if !self.lazy {
                while self.make_durable() {}
            }
            self.release();
            let Some((conn, code)) = self.to_close.pop_front() else {
                break;
            };
            // The connection sent its `Close` and closed: the adapter tells the driver.
            let closed = ServerEvent::Closed {
                code,
                by_peer: false,
            };
            self.step(Input::Event(conn, closed), Expect::Nothing, None);
        }
    }

    /// Every batch becomes durable and every reply goes out.
    pub(super) fn flush(&mut self) {
        loop {
            while self.make_durable() {}
            self.settle();
            if self.driver.pending_ops() == 0 && self.to_close.is_empty() {
                break;
            }
        }
        assert!(
            self.unreleased.is_empty(),
            "replies still held after a flush"
        );
    }

    /// The store takes the next batch, if none is in flight.
    pub(super) fn take_batch(&mut self) {
        if self.in_flight.is_some() {
            assert!(
                self.driver.poll_batch().is_none(),
                "a second batch while one is in flight"
            );
            return;
        }
        let Some(batch) = self.driver.poll_batch() else {
            assert!(self.unbatched.is_empty(), "operations waiting but no batch");
            return;
        };
        // Group commit: the batch is everything emitted since the last one, in order.
        let expected: Vec<StoreOp> = self.unbatched.drain(..).collect();
        assert_eq!(
            batch.ops, expected,
            "a batch is not the operations emitted since the last one"
        );
        self.in_flight = Some(batch);
    }

    /// The batch in flight (taken first if none is) becomes durable; false when there
    /// was nothing to make durable.
    pub(super) fn make_durable(&mut self) -> bool {
        self.take_batch();
        let Some(batch) = self.in_flight.take() else {
            return false;
        };
        self.store_batch(&batch.ops);
        self.durable += batch.ops.len() as u64;
        self.driver
            .handle_durable(batch.id)
            .expect("the batch in flight is known to the driver");
        true
    }

    /// The store fails a batch: the driver drops what waits for it and accepts nothing
    /// more; what it released before stays released. The server then restarts.
    pub(super) fn store_fails(&mut self) {
        self.take_batch();
        let Some(batch) = &self.in_flight else {
            return;
        };
        self.driver.handle_store_failed(batch.id);
        assert_eq!(self.driver.state(), DriverState::Failed);
        // Replies released before the failure may still be taken; nothing else comes.
        self.release();
        assert!(
            self.driver.poll_batch().is_none(),
            "a batch after a failure"
        );
        assert!(self.driver.is_drained(), "a failed driver still holds work");
        // The failed batch is still "in flight" for the restart: it never reached the store.
        self.restart(false);
    }

    /// Writes operations to the store and notes the acknowledgements among them.
    fn store_batch(&mut self, ops: &[StoreOp]) {
        self.store.apply(ops).expect("memory store");
        for op in ops {
            match op {
                StoreOp::DmAcked { to, msg_id } => {
                    self.durably_acked.insert((to.clone(), *msg_id));
                }
                StoreOp::RoomDeleted { room } => {
                    self.durably_deleted.insert(*room);
                    self.promised_room_msgs.retain(|(r, _)| r != room);
                }
                StoreOp::RoomCreated { room, .. } => {
                    self.durably_deleted.remove(room);
                }
                StoreOp::MemberAdded { room, name, .. } => {
                    self.durably_added.insert((*room, name.clone()));
                }
                _ => {}
            }
        }
    }

    /// Takes every reply the driver releases: in order, and only once everything its
    /// step (and every step before) emitted is durable. What a reply tells a client is
    /// a promise the store must keep.
    pub(super) fn release(&mut self) {
        while let Some((conn, reply)) = self.driver.poll_reply() {
            let (need, c, r) = self
                .unreleased
                .pop_front()
                .unwrap_or_else(|| panic!("{reply:?} released but never produced"));
            assert_eq!((c, &r), (conn, &reply), "replies released out of order");
            assert!(
                need <= self.durable,
                "{reply:?} released with {} of the {need} operations before it durable",
                self.durable
            );
            match reply {
                Reply::Close { code } if !self.gone.contains(&conn) => {
                    self.gone.insert(conn);
                    self.to_close.push_back((conn, code));
                }
                Reply::Auth { result: Ok(_), .. } => {
                    if let Some(user) = self.registered.remove(&conn) {
                        self.promised_accounts.insert(user);
                    }
                }
                Reply::RoomJoined { req, room, .. } if req != 0 => {
                    let user = self.conn_users[&conn];
                    assert!(
                        self.durably_added.contains(&(room, USERS[user].into())),
                        "{} told it joined {room} before the store knew",
                        USERS[user]
                    );
                }
                Reply::RoomMessage { room, seq, .. } if !self.durably_deleted.contains(&room) => {
                    self.promised_room_msgs.insert((room, seq));
                }
                Reply::MessageAck { msg_id, status, .. } if status != AckStatus::Failed => {
                    assert!(
                        self.issued.insert(msg_id),
                        "direct-message ID {msg_id} released twice"
                    );
                    let to = self
                        .queued_to
                        .get(&msg_id)
                        .unwrap_or_else(|| panic!("message {msg_id} acked but never queued"));
                    self.promised_dms.insert((to.clone(), msg_id));
                }
                _ => {}
            }
        }
    }

    /// The adapter's view agrees with the driver's: what waits for the store, and what
    /// waits to be released.
    pub(super) fn check_pipeline(&self) {
        let in_flight = self.in_flight.as_ref().map_or(0, |b| b.ops.len());
        assert_eq!(
            self.driver.pending_ops(),
            self.unbatched.len() + in_flight,
            "the driver's pending operations"
        );
        assert_eq!(
            self.driver.pending_replies(),
            self.unreleased.len(),
            "the driver's pending replies"
        );
        if !self.lazy {
            assert!(
                self.driver.is_drained(),
                "an eager pipeline left work behind"
            );
        }
    }

    /// A crash and restart: the connections are gone, as is everything not durable; the
    /// hub comes back from the store. A batch in flight reached the store if `applied`.
    pub(super) fn restart(&mut self, applied: bool) {
        let all_durable = self.unbatched.is_empty() && (applied || self.in_flight.is_none());
        if let Some(batch) = self.in_flight.take()
            && applied
        {
            self.store_batch(&batch.ops);
        }
        for slot in &mut self.slots {
            if let Some(conn) = slot.conn.take() {
                self.closed.insert(conn);
            }
            slot.user = None;
        }
        self.lingering.clear();
        self.outstanding.clear();
        self.last_dm.clear();
        self.seen_seq.clear();
        let records = self.store.load(LogMemory::ALL).expect("memory store");
        for (to, id) in &self.promised_dms {
            assert!(
                records
                    .queued
                    .iter()
                    .any(|q| q.msg_id == *id && q.to == *to)
                    || self.durably_acked.contains(&(to.clone(), *id)),
                "direct message {id} to {to} was acknowledged to its sender, then lost"
            );
        }
        for (room, seq) in &self.promised_room_msgs {
            assert!(
                records
                    .rooms
                    .iter()
                    .any(|r| r.room == *room && r.log.iter().any(|m| m.seq == *seq)),
                "message {seq} of {room} was shown to a member, then lost"
            );
        }
        for user in &self.promised_accounts {
            assert!(
                records.accounts.iter().any(|(n, _)| **n == *USERS[*user]),
                "{} was told it registered, then lost",
                USERS[*user]
            );
        }
        let before: Vec<usize> = USERS
            .iter()
            .map(|u| self.driver.hub().queued_for(u))
            .collect();
        let mut hub = Hub::new(self.config.clone(), self.next_conn);
        hub.restore(records.clone());
        let after: Vec<usize> = USERS.iter().map(|u| hub.queued_for(u)).collect();
        let stored: Vec<usize> = USERS
            .iter()
            .map(|u| records.queued.iter().filter(|q| &*q.to == *u).count())
            .collect();
        assert_eq!(after, stored, "the restored queues are not the stored ones");
        if all_durable {
            assert_eq!(before, after, "queued direct messages lost in a restart");
        }
        assert_eq!(hub.online(), 0);
        // Rooms come back as the store has them: members, cursors and numbers.
        for r in &records.rooms {
            let restored: Vec<&str> = hub
                .room_members(r.room)
                .unwrap_or_else(|| panic!("stored room {} not restored", r.room))
                .collect();
            let stored: Vec<&str> = r.members.iter().map(|m| &*m.name).collect();
            assert_eq!(
                restored, stored,
                "room {} restored with other members",
                r.room
            );
        }
        self.room_state = Rooms::from_records(&records);
        self.driver = Driver::new(hub, self.driver_config.clone());
        // The new driver starts from nothing: what the old one held is gone, unsent.
        self.unbatched.clear();
        self.unreleased.clear();
        self.to_close.clear();
        self.registered.clear();
        self.handed_out.clear();
        self.emitted = 0;
        self.durable = 0;
    }
}
