//! Limits of a hub.

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
}
