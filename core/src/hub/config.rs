//! Limits of a hub.

use crate::time::Duration;

/// Limits of a [`Hub`](super::Hub). Every collection the hub keeps is bounded by one of these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubConfig {
    /// Most members in one room, 1 to 255 (values outside are clamped). Default 20.
    pub room_capacity: usize,
    /// Most rooms on the server. Default 10,000.
    pub max_rooms: usize,
    /// Most rooms one user may be in at once. Default 32.
    pub max_rooms_per_user: usize,
    /// Most unacknowledged direct messages queued for one user; one more is refused with
    /// `QueueFull`. Default 1,000.
    pub max_queue_per_user: usize,
    /// Most body bytes of the unacknowledged direct messages queued for one user; a
    /// message that would take the queue past it is refused with `QueueFull`. Default
    /// 1 MiB (1,048,576 bytes).
    pub max_queue_bytes_per_user: usize,
    /// Most body bytes of the unacknowledged direct messages queued for all users
    /// together; a message that would take the total past it is refused with
    /// `QueueFull`. Default 256 MiB (268,435,456 bytes).
    pub max_queue_bytes_total: usize,
    /// Most direct messages sent to a connection and not yet acknowledged by it. Default 64.
    pub dm_window: usize,
    /// Most users logged in at once. Default 100,000.
    pub max_online: usize,
    /// Most registered accounts. Default 1,000,000.
    pub max_accounts: usize,
    /// Most entries in a user or room list reply. Default 500.
    pub max_list_entries: usize,
    /// Most room messages pushed to a member and not yet acknowledged, per room: live
    /// messages and catch-up after an absence both flow through this window, so a long
    /// absence never floods a connection. Default 64.
    pub room_window: usize,
    /// Most messages a room's log retains; older ones are dropped. Default 1,000.
    pub log_max_messages: usize,
    /// Most body bytes a room's log retains; older messages are dropped. Default 1 MiB.
    pub log_max_bytes: usize,
    /// Messages older than this are dropped from a room's log. Default 30 days.
    pub log_max_age: Duration,
    /// Most body bytes all room logs together retain: a room whose message takes the
    /// total past it drops its own oldest messages first. Default 256 MiB.
    pub log_max_bytes_total: usize,
    /// Most of a room's newest messages kept whole in memory (at least one). Older
    /// retained messages are read back from the store when a member catches up or pages
    /// through history: memory then grows with the number of rooms, not with retention.
    /// Default: all of them (`usize::MAX`), for drivers without a store; `cove serve`
    /// keeps 64.
    pub log_memory_messages: usize,
    /// Most body bytes of a room's newest messages kept whole in memory (a single newest
    /// message may exceed it). Default: no bound (`usize::MAX`); `cove serve` keeps 64 KiB.
    pub log_memory_bytes: usize,
    /// Most pending invitations per room. Default 64.
    pub max_invites_per_room: usize,
    /// Most messages in one history page. Default 100.
    pub history_page: usize,
    /// The Delivery Service's limits for end-to-end encrypted groups.
    pub mls: MlsLimits,
    /// Deliberate bugs, to prove the simulator catches them. Never enable outside tests.
    #[cfg(feature = "inject-bugs")]
    pub bugs: InjectedBugs,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            room_capacity: 20,
            max_rooms: 10_000,
            max_rooms_per_user: 32,
            max_queue_per_user: 1_000,
            max_queue_bytes_per_user: 1024 * 1024,
            max_queue_bytes_total: 256 * 1024 * 1024,
            dm_window: 64,
            max_online: 100_000,
            max_accounts: 1_000_000,
            max_list_entries: 500,
            room_window: 64,
            log_max_messages: 1_000,
            log_max_bytes: 1024 * 1024,
            log_max_age: Duration::from_secs(30 * 24 * 3600),
            log_max_bytes_total: 256 * 1024 * 1024,
            log_memory_messages: usize::MAX,
            log_memory_bytes: usize::MAX,
            max_invites_per_room: 64,
            history_page: 100,
            mls: MlsLimits::default(),
            #[cfg(feature = "inject-bugs")]
            bugs: InjectedBugs::default(),
        }
    }
}

impl HubConfig {
    /// How much of each room's log is kept whole in memory (what a store's
    /// [`load`](crate::store::Store::load) needs to hand back whole).
    pub fn log_memory(&self) -> crate::store::LogMemory {
        crate::store::LogMemory {
            messages: self.log_memory_messages,
            bytes: self.log_memory_bytes,
        }
    }
}

/// Deliberate bugs the simulator's own tests switch on, one at a time.
#[cfg(feature = "inject-bugs")]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InjectedBugs {
    /// Every fifth room message skips a sequence number.
    pub skip_sequence: bool,
    /// A full room admits one more member.
    pub admit_over_capacity: bool,
    /// `restore` forgets each user's newest queued direct message.
    pub drop_queued_on_restore: bool,
    /// A member who left still receives the room's messages.
    pub deliver_to_departed: bool,
    /// The driver releases replies before their store batch is durable.
    pub release_before_durable: bool,
    /// Catch-up after an absence skips the first missed message.
    pub catchup_skips_one: bool,
    /// Catch-up replays the member's last acknowledged message.
    pub catchup_replays_acked: bool,
    /// Joining a room is not made durable.
    pub membership_not_durable: bool,
    /// A second Commit for an epoch is accepted too (a forked group).
    pub accept_two_commits: bool,
}

/// Limits of the hub's MLS Delivery Service: the KeyPackage directory and groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MlsLimits {
    /// Most one-time KeyPackages stored per user (plus one last-resort package). Default 16.
    pub key_packages_per_user: usize,
    /// Most KeyPackage bytes stored for all users together; uploads past it are refused
    /// with `LimitReached`. Default 32 MiB.
    pub key_package_bytes_total: usize,
    /// When a user's one-time stock falls below this, the user is told to upload more
    /// (`KeyPackagesLow`, at login and after each package handed out). Default 8.
    pub key_packages_low: usize,
    /// How many epochs before the current one an application message may name (messages
    /// sent just before a Commit). Default 4.
    pub epoch_window: u64,
    /// Largest `GroupInfo` a room keeps, in bytes (a 20-member group's, with its ratchet
    /// tree, is about 6 KB). Default 16,384.
    pub max_group_info_len: usize,
    /// Most direct conversations one user may have. Default 1,000.
    pub max_directs_per_user: usize,
}

impl Default for MlsLimits {
    fn default() -> Self {
        MlsLimits {
            key_packages_per_user: 16,
            key_package_bytes_total: 32 * 1024 * 1024,
            key_packages_low: 8,
            epoch_window: 4,
            max_group_info_len: 16_384,
            max_directs_per_user: 1_000,
        }
    }
}
