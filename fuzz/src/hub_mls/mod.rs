//! The hub as MLS Delivery Service, behind the core's `Driver`, fed structured sequences of
//! `InitGroup`, `GroupCommit`, `GetGroupInfo`, `OpenDirect`, `UploadKeyPackages`,
//! `FetchKeyPackage` and `RoomMessage` requests (with the room requests around them) from
//! four users, and server restarts.
//!
//! The MLS bytes are structurally plausible (`bytes.rs`): real cleartext headers built around
//! the epochs, group IDs, sender and content types the input picks — the room's own, one
//! off, or anything — followed by arbitrary bytes; or arbitrary bytes altogether. Every
//! batch is made durable at once, so a restart loses nothing and the model carries over.
//!
//! Checked at every step (`harness.rs`, `checks.rs`), against a model built from the store
//! operations the hub emitted:
//! - nothing panics; every reply encodes and, sealed, fits a client's frame;
//! - no refusal closes the connection, and every request gets exactly one answer;
//! - a refused request changes nothing (no store operation);
//! - a room's group keeps its ID, and its accepted epochs go up by exactly one: **at most
//!   one Commit is accepted per (room, epoch)**; a GroupInfo sent is the latest stored;
//! - a Commit naming the room's current epoch with a matching GroupInfo is accepted from a
//!   member (no add), and `StaleEpoch` answers only a Commit of another epoch;
//! - a room with a group logs only: application PrivateMessages of its group within
//!   `epoch_window` and not from before the newest member's first epoch, the Commit just accepted, and a Welcome right after an add's Commit
//!   (or as a direct room's first entry); the verdict on an application message is exactly
//!   the model's; members join such a room only through a Commit or `OpenDirect`;
//! - the KeyPackage directory holds only packages whose key and name are the uploader's,
//!   hands out the oldest one-time package first, **never one twice**, the last-resort one
//!   only when none is left, `NoKeyPackage` only when there is neither, and tells an online
//!   owner exactly when its stock is below `key_packages_low`.

mod bytes;
mod checks;
mod harness;

pub use bytes::*;

use arbitrary::Arbitrary;
use cove_core::hub::{HubConfig, MlsLimits};
use cove_core::time::Duration;

use crate::arb::{ArbWriter, Bytes, ToArb, decode};
use crate::connection::RoomSel;
use harness::Harness;

/// The users; a name selector past them picks [`STRANGER`], who never registers.
pub const USERS: [&str; 4] = ["ann", "ben", "cat", "dan"];
/// A name that is never registered.
pub const STRANGER: &str = "zed";

/// The name a selector picks: one of the users, or the stranger.
pub fn name_of(sel: u8) -> &'static str {
    USERS
        .get(usize::from(sel) % (USERS.len() + 1))
        .copied()
        .unwrap_or(STRANGER)
}

/// The hub's limits, each mapped into a small range so that it is reached.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct DsLimits {
    pub room_capacity: u8,
    pub max_rooms_per_user: u8,
    pub key_packages_per_user: u8,
    pub key_package_bytes: u8,
    pub key_packages_low: u8,
    pub epoch_window: u8,
    pub max_group_info_len: u8,
    pub max_directs_per_user: u8,
}

impl DsLimits {
    /// The configuration these limits stand for.
    #[allow(clippy::needless_update)] // one more field with the `inject-bugs` feature
    pub fn config(&self) -> HubConfig {
        HubConfig {
            room_capacity: 1 + usize::from(self.room_capacity % 4),
            max_rooms: 8,
            max_rooms_per_user: 1 + usize::from(self.max_rooms_per_user % 4),
            log_max_messages: usize::MAX,
            log_max_bytes: usize::MAX,
            log_max_bytes_total: usize::MAX,
            log_max_age: Duration::from_secs(100 * 365 * 24 * 3600),
            mls: MlsLimits {
                key_packages_per_user: usize::from(self.key_packages_per_user % 5),
                key_package_bytes_total: 128 * (1 + usize::from(self.key_package_bytes % 32)),
                key_packages_low: usize::from(self.key_packages_low % 4),
                epoch_window: u64::from(self.epoch_window % 6),
                max_group_info_len: 16 + 64 * usize::from(self.max_group_info_len),
                max_directs_per_user: 1 + usize::from(self.max_directs_per_user % 3),
            },
            ..HubConfig::default()
        }
    }
}

impl ToArb for DsLimits {
    fn write(&self, w: &mut ArbWriter) {
        w.u8(self.room_capacity)
            .u8(self.max_rooms_per_user)
            .u8(self.key_packages_per_user)
            .u8(self.key_package_bytes)
            .u8(self.key_packages_low)
            .u8(self.epoch_window)
            .u8(self.max_group_info_len)
            .u8(self.max_directs_per_user);
    }
}

/// A group ID: the room's (its group's, or the one the harness gives a room without
/// one), another, or any bytes.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum GidSpec {
    /// The room's.
    Room,
    /// A fixed other ID.
    Other(u8),
    /// These bytes (the hub refuses IDs over 64 bytes).
    Raw(Bytes),
}

impl ToArb for GidSpec {
    fn write(&self, w: &mut ArbWriter) {
        match self {
            GidSpec::Room => {
                w.variant(0, 3);
            }
            GidSpec::Other(b) => {
                w.variant(1, 3).u8(*b);
            }
            GidSpec::Raw(b) => {
                w.variant(2, 3).bytes(&b.0);
            }
        }
    }
}

/// An epoch, relative to the one the request should name.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum EpochSpec {
    /// The expected one.
    Expected,
    /// That many after it.
    Plus(u8),
    /// That many before it.
    Minus(u8),
    /// `u64::MAX` less this.
    Top(u8),
    /// Any.
    Raw(u64),
}

impl EpochSpec {
    /// The epoch, given the expected one.
    pub fn resolve(&self, expected: u64) -> u64 {
        match self {
            EpochSpec::Expected => expected,
            EpochSpec::Plus(n) => expected.wrapping_add(u64::from(*n)),
            EpochSpec::Minus(n) => expected.wrapping_sub(u64::from(*n)),
            EpochSpec::Top(n) => u64::MAX - u64::from(*n),
            EpochSpec::Raw(e) => *e,
        }
    }
}

impl ToArb for EpochSpec {
    fn write(&self, w: &mut ArbWriter) {
        match self {
            EpochSpec::Expected => {
                w.variant(0, 5);
            }
            EpochSpec::Plus(n) => {
                w.variant(1, 5).u8(*n);
            }
            EpochSpec::Minus(n) => {
                w.variant(2, 5).u8(*n);
            }
            EpochSpec::Top(n) => {
                w.variant(3, 5).u8(*n);
            }
            EpochSpec::Raw(e) => {
                w.variant(4, 5).u64(*e);
            }
        }
    }
}

/// A GroupInfo.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum InfoSpec {
    /// A GroupInfo header, then `tail`.
    Header {
        /// Its group.
        gid: GidSpec,
        /// Its epoch.
        epoch: EpochSpec,
        /// The rest.
        tail: Bytes,
    },
    /// A header with the expected group and epoch, padded to `64 * n` bytes.
    Sized(u8),
    /// Any bytes.
    Raw(Bytes),
}

impl ToArb for InfoSpec {
    fn write(&self, w: &mut ArbWriter) {
        match self {
            InfoSpec::Header { gid, epoch, tail } => {
                w.variant(0, 3);
                gid.write(w);
                epoch.write(w);
                w.bytes(&tail.0);
            }
            InfoSpec::Sized(n) => {
                w.variant(1, 3).u8(*n);
            }
            InfoSpec::Raw(b) => {
                w.variant(2, 3).bytes(&b.0);
            }
        }
    }
}

/// A framed MLS message: public or private, with a sender type (public only) and content
/// type picked by `% 5` and `% 4` (so invalid values occur), or any bytes.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum MessageSpec {
    /// A header, then `tail`.
    Header {
        /// A PublicMessage (else a PrivateMessage).
        public: bool,
        /// Sender type of a PublicMessage (`% 5`: 1 member … 4 new_member_commit).
        sender: u8,
        /// Content type (`% 4`: 1 application, 2 proposal, 3 commit).
        content: u8,
        /// Its group.
        gid: GidSpec,
        /// Its epoch.
        epoch: EpochSpec,
        /// The rest.
        tail: Bytes,
    },
    /// Any bytes.
    Raw(Bytes),
}

impl ToArb for MessageSpec {
    fn write(&self, w: &mut ArbWriter) {
        match self {
            MessageSpec::Header {
                public,
                sender,
                content,
                gid,
                epoch,
                tail,
            } => {
                w.variant(0, 2).bool(*public).u8(*sender).u8(*content);
                gid.write(w);
                epoch.write(w);
                w.bytes(&tail.0);
            }
            MessageSpec::Raw(b) => {
                w.variant(1, 2).bytes(&b.0);
            }
        }
    }
}

/// The Welcome of a `GroupCommit` or `OpenDirect`.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum WelcomeSpec {
    /// None (empty).
    Empty,
    /// A Welcome header, then these bytes.
    Welcome(Bytes),
    /// Any bytes.
    Raw(Bytes),
}

impl ToArb for WelcomeSpec {
    fn write(&self, w: &mut ArbWriter) {
        match self {
            WelcomeSpec::Empty => {
                w.variant(0, 3);
            }
            WelcomeSpec::Welcome(b) => {
                w.variant(1, 3).bytes(&b.0);
            }
            WelcomeSpec::Raw(b) => {
                w.variant(2, 3).bytes(&b.0);
            }
        }
    }
}

/// One KeyPackage of an upload.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum PackageSpec {
    /// The uploader's own (key and name), made unique by the harness, padded by `pad * 16`
    /// bytes (so the per-package limit of the wire, 2,048, is reached).
    Own {
        /// Padding, in 16-byte units.
        pad: u8,
    },
    /// Another account's key with the uploader's name.
    OtherKey(u8),
    /// The uploader's key with another name.
    OtherName(u8),
    /// The `i`-th package this user uploaded before (modulo how many).
    Again(u8),
    /// Any bytes.
    Raw(Bytes),
}

impl ToArb for PackageSpec {
    fn write(&self, w: &mut ArbWriter) {
        match self {
            PackageSpec::Own { pad } => {
                w.variant(0, 5).u8(*pad);
            }
            PackageSpec::OtherKey(u) => {
                w.variant(1, 5).u8(*u);
            }
            PackageSpec::OtherName(u) => {
                w.variant(2, 5).u8(*u);
            }
            PackageSpec::Again(i) => {
                w.variant(3, 5).u8(*i);
            }
            PackageSpec::Raw(b) => {
                w.variant(4, 5).bytes(&b.0);
            }
        }
    }
}

/// A request. Name selectors go through [`name_of`].
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum DsReq {
    CreateRoom {
        private: bool,
    },
    Invite {
        room: RoomSel,
        who: u8,
    },
    JoinRoom(RoomSel),
    LeaveRoom(RoomSel),
    Remove {
        room: RoomSel,
        who: u8,
    },
    InitGroup {
        room: RoomSel,
        info: InfoSpec,
    },
    /// The GroupInfo's expected epoch is the Commit's plus one.
    GroupCommit {
        room: RoomSel,
        commit: MessageSpec,
        info: InfoSpec,
        add: Option<u8>,
        welcome: WelcomeSpec,
    },
    GetGroupInfo(RoomSel),
    OpenDirect {
        peer: u8,
        info: InfoSpec,
        welcome: WelcomeSpec,
    },
    Upload {
        last_resort: bool,
        packages: Vec<PackageSpec>,
    },
    Fetch {
        who: u8,
    },
    RoomMessage {
        room: RoomSel,
        body: MessageSpec,
    },
}

impl ToArb for DsReq {
    fn write(&self, w: &mut ArbWriter) {
        const N: u32 = 12;
        match self {
            DsReq::CreateRoom { private } => {
                w.variant(0, N).bool(*private);
            }
            DsReq::Invite { room, who } => {
                w.variant(1, N);
                room.write(w);
                w.u8(*who);
            }
            DsReq::JoinRoom(room) => {
                w.variant(2, N);
                room.write(w);
            }
            DsReq::LeaveRoom(room) => {
                w.variant(3, N);
                room.write(w);
            }
            DsReq::Remove { room, who } => {
                w.variant(4, N);
                room.write(w);
                w.u8(*who);
            }
            DsReq::InitGroup { room, info } => {
                w.variant(5, N);
                room.write(w);
                info.write(w);
            }
            DsReq::GroupCommit {
                room,
                commit,
                info,
                add,
                welcome,
            } => {
                w.variant(6, N);
                room.write(w);
                commit.write(w);
                info.write(w);
                match add {
                    Some(u) => w.bool(true).u8(*u),
                    None => w.bool(false),
                };
                welcome.write(w);
            }
            DsReq::GetGroupInfo(room) => {
                w.variant(7, N);
                room.write(w);
            }
            DsReq::OpenDirect {
                peer,
                info,
                welcome,
            } => {
                w.variant(8, N).u8(*peer);
                info.write(w);
                welcome.write(w);
            }
            DsReq::Upload {
                last_resort,
                packages,
            } => {
                w.variant(9, N).bool(*last_resort);
                packages.write(w);
            }
            DsReq::Fetch { who } => {
                w.variant(10, N).u8(*who);
            }
            DsReq::RoomMessage { room, body } => {
                w.variant(11, N);
                room.write(w);
                body.write(w);
            }
        }
    }
}

/// One step.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum DsOp {
    /// User `user % 4` sends a request (logging in first if it is not).
    Request {
        /// Which user.
        user: u8,
        /// What.
        req: DsReq,
    },
    /// User `user % 4` logs in (registering the first time) if it is not.
    Login {
        /// Which user.
        user: u8,
    },
    /// The user's connection drops.
    Disconnect {
        /// Which user.
        user: u8,
    },
    /// The server restarts from its store (everything is durable).
    Restart,
}

impl ToArb for DsOp {
    fn write(&self, w: &mut ArbWriter) {
        match self {
            DsOp::Request { user, req } => {
                w.variant(0, 4).u8(*user);
                req.write(w);
            }
            DsOp::Login { user } => {
                w.variant(1, 4).u8(*user);
            }
            DsOp::Disconnect { user } => {
                w.variant(2, 4).u8(*user);
            }
            DsOp::Restart => {
                w.variant(3, 4);
            }
        }
    }
}

/// The whole input.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct DsInput {
    /// The hub's limits.
    pub limits: DsLimits,
    /// The steps.
    pub ops: Vec<DsOp>,
}

impl ToArb for DsInput {
    fn write(&self, w: &mut ArbWriter) {
        self.limits.write(w);
        self.ops.write(w);
    }
}

/// The Delivery Service target: a hub fed structured sequences of MLS requests.
pub fn hub_mls(data: &[u8]) {
    let Some(input) = decode::<DsInput>(data) else {
        return;
    };
    let mut h = Harness::new(&input.limits);
    for op in &input.ops {
        h.apply(op);
    }
}

#[cfg(test)]
mod tests;
