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
    /// Most pending invitations per room. Default 64.
    pub max_invites_per_room: usize,
    /// Most messages in one history page. Default 100.
    pub history_page: usize,
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
            dm_window: 64,
            max_online: 100_000,
            max_accounts: 1_000_000,
            max_list_entries: 500,
            room_window: 64,
            log_max_messages: 1_000,
            log_max_bytes: 1024 * 1024,
            log_max_age: Duration::from_secs(30 * 24 * 3600),
            log_max_bytes_total: 256 * 1024 * 1024,
            max_invites_per_room: 64,
            history_page: 100,
            #[cfg(feature = "inject-bugs")]
            bugs: InjectedBugs::default(),
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
}
