//! The `Hub`, behind the core's `Driver`, fed structured sequences of requests from
//! several connections.
//!
//! Six connection slots, six users, small limits (picked by the input) so every limit is
//! reached. The harness is an adapter: every connection event goes through
//! `Driver::handle_event`, the driver's batches go to a `MemoryStore`, and released
//! replies go to the connections (a `Close` closes its connection, whose `Closed` event
//! goes back to the driver). The input picks when batches are handed to the store and
//! when they become durable, and may crash the server in between.
//!
//! Checked at every step (on what the hub produced, `Driver::last_step`), against a model
//! kept here:
//! - every reply encodes to the wire and, sealed, fits a client's frame;
//! - nothing is addressed to a connection after it closed (or after its `Close`);
//! - rooms (protocol v2, `rooms.rs`): membership is what the joins, leaves and removals
//!   said, survives disconnects, logouts and crashes, and stays within `room_capacity`,
//!   `max_rooms` and `max_rooms_per_user`; private rooms are never listed; a room message
//!   goes to exactly the online members whose window (`room_window`) has room, once, with
//!   the room's next number; every connection gets each room's messages in order, without
//!   gap or repeat, never more than a window past its cursor; an acknowledgement lets
//!   exactly the window's worth through; a login announces exactly the user's rooms, each
//!   with its catch-up from the cursor; a history page is the right size and order;
//! - offline queues stay within `max_queue_per_user`, unacknowledged pushed direct
//!   messages within `dm_window`, and direct-message IDs increase between re-fetches;
//! - `online()` counts exactly the logged-in connections.
//!
//! Checked on the pipeline (`pipeline.rs`):
//! - each batch carries exactly the operations the steps emitted since the last one, in
//!   order, and only one is in flight;
//! - replies are released in the order they were produced, none lost or repeated, and
//!   **no reply is released before every store operation of its step and of the steps
//!   before it is durable**; a join is answered only once the store has the membership;
//!   a full driver always has a batch to make durable; after a store failure nothing
//!   more is accepted or released;
//! - a crash loses nothing anyone was told: every direct message whose `MessageAck` was
//!   released is in the store unless its acknowledgement became durable, every room
//!   message shown to a member is in its room's log, every account whose registration
//!   was answered is there; the restored hub holds exactly the stored queues and rooms
//!   (and, when nothing was pending, the same queues as before), and no released
//!   direct-message ID is ever given out again;
//! - at the end, with everything durable, a hub restored from the store has the same
//!   queues and rooms.
//!
//! Not modelled: room log retention (out of reach by configuration), admission (no
//! connection is accepted through the driver), shutdown.

mod model;
mod pipeline;
mod rooms;
mod step;

use arbitrary::Arbitrary;
use cove_core::hub::HubConfig;
use cove_core::server::DriverConfig;
use cove_core::time::Duration;

use crate::arb::{ArbWriter, ToArb, decode};
use crate::connection::{MsgSel, RoomSel};
use model::Model;

/// The users; a request may also name [`STRANGER`], who never registers.
pub const USERS: [&str; 6] = ["ann", "ben", "cat", "dan", "eve", "fay"];
/// A name that is never registered.
pub const STRANGER: &str = "zed";
/// Connection slots.
pub const SLOTS: usize = 6;

/// The hub's limits, each mapped into a small range so that it is reached.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Limits {
    pub room_capacity: u8,
    pub max_rooms: u8,
    pub max_rooms_per_user: u8,
    pub max_queue_per_user: u8,
    pub dm_window: u8,
    pub max_online: u8,
    pub max_accounts: u8,
    pub max_list_entries: u8,
    pub room_window: u8,
}

impl Limits {
    /// The configuration these limits stand for.
    // With the `inject-bugs` feature (which the simulator may unify in) the config has one
    // more field, so the update is needed in some builds and needless in others.
    #[allow(clippy::needless_update)]
    pub fn config(&self) -> HubConfig {
        HubConfig {
            room_capacity: 1 + usize::from(self.room_capacity % 4),
            max_rooms: 1 + usize::from(self.max_rooms % 6),
            max_rooms_per_user: 1 + usize::from(self.max_rooms_per_user % 3),
            max_queue_per_user: 1 + usize::from(self.max_queue_per_user % 5),
            dm_window: 1 + usize::from(self.dm_window % 3),
            max_online: 1 + usize::from(self.max_online % 6),
            max_accounts: 1 + usize::from(self.max_accounts % 6),
            max_list_entries: usize::from(self.max_list_entries % 6),
            room_window: 1 + usize::from(self.room_window % 4),
            // Retention is out of reach: the model expects every message in the log (the
            // hub's own tests cover retention and gaps).
            log_max_messages: usize::MAX,
            log_max_bytes: usize::MAX,
            log_max_bytes_total: usize::MAX,
            log_max_age: Duration::from_secs(100 * 365 * 24 * 3600),
            ..HubConfig::default()
        }
    }
}

impl ToArb for Limits {
    fn write(&self, w: &mut ArbWriter) {
        w.u8(self.room_capacity)
            .u8(self.max_rooms)
            .u8(self.max_rooms_per_user)
            .u8(self.max_queue_per_user)
            .u8(self.dm_window)
            .u8(self.max_online)
            .u8(self.max_accounts)
            .u8(self.max_list_entries)
            .u8(self.room_window);
    }
}

/// A request, with small selectors instead of free values.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum HubReq {
    /// `name` picks from the users and the stranger.
    GetPublicKey {
        name: u8,
    },
    SendDm {
        to: u8,
        body: u8,
    },
    FetchPending,
    SetStatus(u8),
    ListUsers,
    Logout,
    AckDm(MsgSel),
    CreateRoom {
        private: bool,
    },
    JoinRoom(RoomSel),
    LeaveRoom(RoomSel),
    ListRooms,
    RoomMessage(RoomSel),
    UploadPrekeys(u8),
    FetchPrekeys {
        name: u8,
    },
    /// Acknowledges the room's messages up to what this connection saw, less `back % 4`;
    /// 255 claims `u64::MAX`.
    AckRoom(RoomSel, u8),
    /// `name` as for `GetPublicKey`.
    Invite(RoomSel, u8),
    Remove(RoomSel, u8),
    SetTitle(RoomSel),
    /// A page of at most `limit` messages before the room's last, less `limit % 3`.
    History(RoomSel, u8),
}

impl ToArb for HubReq {
    fn write(&self, w: &mut ArbWriter) {
        const N: u32 = 19;
        match self {
            HubReq::GetPublicKey { name } => {
                w.variant(0, N).u8(*name);
            }
            HubReq::SendDm { to, body } => {
                w.variant(1, N).u8(*to).u8(*body);
            }
            HubReq::FetchPending => {
                w.variant(2, N);
            }
            HubReq::SetStatus(s) => {
                w.variant(3, N).u8(*s);
            }
            HubReq::ListUsers => {
                w.variant(4, N);
            }
            HubReq::Logout => {
                w.variant(5, N);
            }
            HubReq::AckDm(m) => {
                w.variant(6, N);
                m.write(w);
            }
            HubReq::CreateRoom { private } => {
                w.variant(7, N).bool(*private);
            }
            HubReq::JoinRoom(r) => {
                w.variant(8, N);
                r.write(w);
            }
            HubReq::LeaveRoom(r) => {
                w.variant(9, N);
                r.write(w);
            }
            HubReq::ListRooms => {
                w.variant(10, N);
            }
            HubReq::RoomMessage(r) => {
                w.variant(11, N);
                r.write(w);
            }
            HubReq::UploadPrekeys(b) => {
                w.variant(12, N).u8(*b);
            }
            HubReq::FetchPrekeys { name } => {
                w.variant(13, N).u8(*name);
            }
            HubReq::AckRoom(r, back) => {
                w.variant(14, N);
                r.write(w);
                w.u8(*back);
            }
            HubReq::Invite(r, name) => {
                w.variant(15, N);
                r.write(w);
                w.u8(*name);
            }
            HubReq::Remove(r, name) => {
                w.variant(16, N);
                r.write(w);
                w.u8(*name);
            }
            HubReq::SetTitle(r) => {
                w.variant(17, N);
                r.write(w);
            }
            HubReq::History(r, limit) => {
                w.variant(18, N);
                r.write(w);
                w.u8(*limit);
            }
        }
    }
}

/// One step.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum HubOp {
    /// Slot `slot % 6` finishes a handshake as user `user % 6` (opening a new connection
    /// if it has none): registers, or logs in; `wrong_key` presents another key.
    Connect {
        /// Which slot.
        slot: u8,
        /// Which user.
        user: u8,
        /// Present a key that is not the user's.
        wrong_key: bool,
        /// Log in rather than register.
        login: bool,
    },
    /// The slot's connection drops.
    Disconnect {
        /// Which slot.
        slot: u8,
    },
    /// The slot's connection (opened if it has none) sends a request.
    Request {
        /// Which slot.
        slot: u8,
        /// What.
        req: HubReq,
    },
    /// Time passes (`n` seconds).
    Advance(u16),
    /// The server crashes and restarts: every connection drops, whatever is not durable
    /// is lost, and a new hub is restored from the store. A batch in flight reached the
    /// store first if `applied` (the crash came before the store said so).
    Restart {
        /// The batch in flight is in the store.
        applied: bool,
    },
    /// The store takes the driver's next batch (if none is in flight); later steps
    /// accumulate behind it.
    Batch,
    /// The batch in flight (taking one first if none is) becomes durable.
    Durable,
    /// The slot's outbound queue is full: the adapter cuts the connection off
    /// (`Driver::handle_cut`).
    Cut {
        /// Which slot.
        slot: u8,
    },
    /// The store fails the batch in flight (taking one first if none is): the driver
    /// acknowledges nothing more, and the server restarts from what is durable.
    StoreFails,
}

impl ToArb for HubOp {
    fn write(&self, w: &mut ArbWriter) {
        const N: u32 = 9;
        match self {
            HubOp::Connect {
                slot,
                user,
                wrong_key,
                login,
            } => {
                w.variant(0, N)
                    .u8(*slot)
                    .u8(*user)
                    .bool(*wrong_key)
                    .bool(*login);
            }
            HubOp::Disconnect { slot } => {
                w.variant(1, N).u8(*slot);
            }
            HubOp::Request { slot, req } => {
                w.variant(2, N).u8(*slot);
                req.write(w);
            }
            HubOp::Advance(n) => {
                w.variant(3, N).u16(*n);
            }
            HubOp::Restart { applied } => {
                w.variant(4, N).bool(*applied);
            }
            HubOp::Batch => {
                w.variant(5, N);
            }
            HubOp::Durable => {
                w.variant(6, N);
            }
            HubOp::Cut { slot } => {
                w.variant(7, N).u8(*slot);
            }
            HubOp::StoreFails => {
                w.variant(8, N);
            }
        }
    }
}

/// How the harness makes the driver's batches durable.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct Commits {
    /// Batches become durable only when a [`HubOp::Batch`] / [`HubOp::Durable`] says so,
    /// or when the driver is full (an adapter waits for the store then). Otherwise every
    /// batch is durable right after the step that made it.
    pub lazy: bool,
    /// The driver's `max_held_replies`: 1 + this % 16.
    pub held_replies: u8,
    /// The driver's `max_pending_ops`: 1 + this % 8.
    pub pending_ops: u8,
}

impl Commits {
    /// The driver configuration these stand for; steps are observed for the checks.
    pub fn config(&self) -> DriverConfig {
        DriverConfig {
            max_held_replies: 1 + usize::from(self.held_replies % 16),
            max_pending_ops: 1 + usize::from(self.pending_ops % 8),
            observe_steps: true,
            // No connection is ever accepted through the driver here, so admission limits
            // nothing (it only counts connections it admitted).
            ..DriverConfig::default()
        }
    }
}

impl ToArb for Commits {
    fn write(&self, w: &mut ArbWriter) {
        w.bool(self.lazy).u8(self.held_replies).u8(self.pending_ops);
    }
}

/// The whole input.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct HubInput {
    /// The hub's limits.
    pub limits: Limits,
    /// How batches are committed.
    pub commits: Commits,
    /// The steps.
    pub ops: Vec<HubOp>,
}

impl ToArb for HubInput {
    fn write(&self, w: &mut ArbWriter) {
        self.limits.write(w);
        self.commits.write(w);
        self.ops.write(w);
    }
}

/// A hub driven by a structured sequence of connects, requests, disconnects, commits and
/// crashes.
pub fn hub_sequence(data: &[u8]) {
    let Some(input) = decode::<HubInput>(data) else {
        return;
    };
    let mut model = Model::new(&input.limits, &input.commits);
    for op in &input.ops {
        model.apply(op);
    }
    model.finish();
}

#[cfg(test)]
mod tests;
