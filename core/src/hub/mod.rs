//! The hub: one per server. Accounts, rooms, presence and offline queues.
//!
//! It takes `(now, ConnId, ServerEvent)` ([`Hub::handle_event`]) and emits deliveries
//! `(ConnId, Reply)` and [`StoreOp`]s. It does no crypto and no IO. Servers do not drive
//! it directly: [`crate::server::Driver`] owns it, routes every event to it and makes its
//! store operations durable before its replies leave.
//!
//! Iteration order never depends on hashing: every map is a `BTreeMap`, so two hubs fed
//! the same inputs emit the same outputs.

mod config;
mod direct;
mod frame_limits;
mod group;
mod key_packages;
mod loads;
mod request;
mod restore;
mod retained;
mod room_log;
mod rooms;

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;

#[cfg(feature = "inject-bugs")]
pub use config::InjectedBugs;
pub use config::{HubConfig, MlsLimits};
pub use request::{ConnId, Reply, Request, RoomInfo};

use crate::server::ServerEvent;
use crate::store::{QueuedDm, StoreOp};
use crate::time::Instant;
use crate::wire::{
    AuthMode, DEFAULT_MAX_FRAME, ErrorCode, MAX_BODY_LEN, RoomId, Status, valid_name,
};

/// A registered account.
#[derive(Debug)]
struct User {
    key: [u8; 32],
    conn: Option<ConnId>,
    status: Status,
    rooms: BTreeSet<RoomId>,
    /// Private rooms the user is invited to.
    invites: BTreeSet<RoomId>,
    /// Unacknowledged direct messages, oldest first.
    queue: VecDeque<QueuedDm>,
    /// How many entries at the front of `queue` were sent (or skipped as too large for
    /// it) on the current connection.
    pushed: usize,
    /// How many of those `pushed` were skipped: they hold no place in the window.
    skipped: usize,
    /// The largest frame payload the user's latest connection accepts.
    max_frame: u32,
    prekeys: Option<Arc<[u8]>>,
    /// One-time KeyPackages, oldest first, and the last-resort one.
    key_packages: VecDeque<Arc<[u8]>>,
    last_resort: Option<Arc<[u8]>>,
    /// Direct conversations the user is in.
    directs: usize,
}

impl User {
    fn new(key: [u8; 32]) -> User {
        User {
            key,
            conn: None,
            status: Status::Offline,
            rooms: BTreeSet::new(),
            invites: BTreeSet::new(),
            queue: VecDeque::new(),
            pushed: 0,
            skipped: 0,
            max_frame: DEFAULT_MAX_FRAME,
            prekeys: None,
            key_packages: VecDeque::new(),
            last_resort: None,
            directs: 0,
        }
    }
}

/// Counters a hub keeps for logs and the simulator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HubStats {
    /// Replies emitted.
    pub deliveries: u64,
    /// Room messages accepted.
    pub room_messages: u64,
    /// Direct messages accepted.
    pub direct_messages: u64,
}

/// The server's shared state. See the module docs.
#[derive(Debug)]
pub struct Hub {
    config: HubConfig,
    users: BTreeMap<Arc<str>, User>,
    /// Authenticated connections and their user.
    conns: BTreeMap<ConnId, Arc<str>>,
    rooms: BTreeMap<RoomId, rooms::Room>,
    /// Body bytes of every room log together.
    log_bytes_total: usize,
    /// Body bytes of the queued direct messages, per recipient and in total.
    dm_bytes: direct::QueuedBytes,
    /// KeyPackage bytes of every user together.
    key_package_bytes: usize,
    /// The direct conversation of each pair of users (the smaller name first).
    directs: BTreeMap<(Arc<str>, Arc<str>), RoomId>,
    deliveries: VecDeque<(ConnId, Reply)>,
    store_ops: VecDeque<StoreOp>,
    /// Reads of older room messages for the store.
    loads: loads::Loads,
    next_msg_id: u64,
    ids_reserved_upto: u64,
    rng: u64,
    stats: HubStats,
}

/// Message IDs are reserved durably in blocks this large, so a restart never reuses one.
const ID_BLOCK: u64 = 1 << 16;

impl Hub {
    /// A hub with no accounts. `seed` drives room-ID generation (not secret).
    pub fn new(config: HubConfig, seed: u64) -> Hub {
        Hub {
            config,
            users: BTreeMap::new(),
            conns: BTreeMap::new(),
            rooms: BTreeMap::new(),
            log_bytes_total: 0,
            dm_bytes: direct::QueuedBytes::default(),
            key_package_bytes: 0,
            directs: BTreeMap::new(),
            deliveries: VecDeque::new(),
            store_ops: VecDeque::new(),
            loads: loads::Loads::default(),
            next_msg_id: 1,
            ids_reserved_upto: 1,
            rng: seed ^ 0x9E37_79B9_7F4A_7C15,
            stats: HubStats::default(),
        }
    }

    /// The limits in force.
    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// Counters since start.
    pub fn stats(&self) -> HubStats {
        self.stats
    }

    /// The next reply to send, and to which connection.
    pub(crate) fn poll_delivery(&mut self) -> Option<(ConnId, Reply)> {
        self.deliveries.pop_front()
    }

    /// The next operation to make durable before sending this step's replies.
    pub(crate) fn poll_store_op(&mut self) -> Option<StoreOp> {
        self.store_ops.pop_front()
    }

    /// Number of users logged in.
    pub fn online(&self) -> usize {
        self.conns.len()
    }

    /// The user logged in on `conn`, if any.
    pub fn user_of(&self, conn: ConnId) -> Option<&Arc<str>> {
        self.conns.get(&conn)
    }

    /// Members of a room, in join order (for tests and the simulator's checks).
    pub fn room_members(&self, room: RoomId) -> Option<impl Iterator<Item = &str>> {
        self.rooms
            .get(&room)
            .map(|r| r.members.iter().map(|m| &*m.name))
    }

    /// Number of unacknowledged direct messages queued for `name`.
    pub fn queued_for(&self, name: &str) -> usize {
        self.users.get(name).map_or(0, |u| u.queue.len())
    }

    /// One event of one connection: the single place where connection events meet the
    /// hub. Servers call it through [`crate::server::Driver`], which also keeps the
    /// write-ahead rule for what it emits.
    pub fn handle_event(&mut self, now: Instant, conn: ConnId, event: ServerEvent) {
        match event {
            ServerEvent::Authenticate {
                name,
                key,
                mode,
                max_frame,
            } => self.connect(now, conn, &name, key, mode, max_frame),
            ServerEvent::Request(request) => self.handle_request(now, conn, request),
            ServerEvent::Closed { .. } => self.handle_disconnect(now, conn),
        }
    }

    /// A connection that accepts the default frame size finished its handshake (see
    /// [`Hub::connect`]).
    #[cfg(test)]
    pub(crate) fn handle_connect(
        &mut self,
        now: Instant,
        conn: ConnId,
        name: &str,
        key: [u8; 32],
        mode: AuthMode,
    ) {
        self.connect(now, conn, name, key, mode, DEFAULT_MAX_FRAME);
    }

    /// A connection finished its handshake: register or log in `name` with `key`. It
    /// accepts frames of up to `max_frame` bytes of payload.
    ///
    /// Emits [`Reply::Auth`]; on failure also [`Reply::Close`]. A successful login while
    /// the account is connected elsewhere closes the older connection.
    fn connect(
        &mut self,
        now: Instant,
        conn: ConnId,
        name: &str,
        key: [u8; 32],
        mode: AuthMode,
        max_frame: u32,
    ) {
        let _ = now;
        if let Err(code) = self.authenticate(conn, name, key, mode) {
            self.send(
                conn,
                Reply::Auth {
                    mode,
                    result: Err(code),
                },
            );
            self.send(conn, Reply::Close { code });
            return;
        }
        let Some((name, user)) = self.users.get_key_value(name) else {
            return;
        };
        let name = name.clone();
        if let Some(old) = user.conn {
            self.send(
                old,
                Reply::Close {
                    code: ErrorCode::AlreadyConnected,
                },
            );
            self.disconnect(old);
        }
        let Some(user) = self.users.get_mut(&name) else {
            return;
        };
        user.conn = Some(conn);
        user.status = Status::Online;
        user.pushed = 0;
        user.skipped = 0;
        user.max_frame = max_frame;
        let pending = u32::try_from(user.queue.len()).unwrap_or(u32::MAX);
        self.conns.insert(conn, name.clone());
        self.set_member_links(&name);
        self.send(
            conn,
            Reply::Auth {
                mode,
                result: Ok(pending),
            },
        );
        self.pump_dms(&name);
        self.announce_rooms(now, &name);
        self.warn_key_packages_low(&name);
    }

    fn authenticate(
        &mut self,
        conn: ConnId,
        name: &str,
        key: [u8; 32],
        mode: AuthMode,
    ) -> Result<(), ErrorCode> {
        if self.conns.contains_key(&conn) {
            return Err(ErrorCode::InvalidFormat);
        }
        if !valid_name(name) {
            return Err(ErrorCode::InvalidUsername);
        }
        match mode {
            AuthMode::Register => {
                if self.users.contains_key(name) {
                    return Err(ErrorCode::UserExists);
                }
                if self.users.len() >= self.config.max_accounts {
                    return Err(ErrorCode::LimitReached);
                }
                if self.conns.len() >= self.config.max_online {
                    return Err(ErrorCode::LimitReached);
                }
                let name: Arc<str> = Arc::from(name);
                self.users.insert(name.clone(), User::new(key));
                self.store_ops
                    .push_back(StoreOp::AccountCreated { name, key });
            }
            AuthMode::Login => {
                let user = self.users.get(name).ok_or(ErrorCode::UserNotFound)?;
                if user.key != key {
                    return Err(ErrorCode::AuthFailed);
                }
                if user.conn.is_none() && self.conns.len() >= self.config.max_online {
                    return Err(ErrorCode::LimitReached);
                }
            }
        }
        Ok(())
    }

    /// The connection closed (or timed out): the user goes offline; its rooms keep it.
    /// Unknown or already-closed connections are ignored.
    pub(crate) fn handle_disconnect(&mut self, now: Instant, conn: ConnId) {
        let _ = now;
        self.disconnect(conn);
    }

    fn disconnect(&mut self, conn: ConnId) {
        self.forget_waits(conn);
        let Some(name) = self.conns.remove(&conn) else {
            return;
        };
        // Presence only: the user stays a member of every room until it leaves.
        self.broadcast_status(&name, Status::Offline);
        if let Some(user) = self.users.get_mut(&name) {
            user.conn = None;
            user.status = Status::Offline;
            user.pushed = 0;
            user.skipped = 0;
        }
        self.set_member_links(&name);
    }

    /// A request from `conn`. Requests from connections that are not logged in get
    /// `NotAuthenticated`.
    pub(crate) fn handle_request(&mut self, now: Instant, conn: ConnId, request: Request) {
        let Some(name) = self.conns.get(&conn).cloned() else {
            let req = request_id(&request);
            self.error(conn, req, ErrorCode::NotAuthenticated);
            return;
        };
        match request {
            Request::GetPublicKey { req, name: who } => {
                let key = self.users.get(&who).map(|u| u.key);
                self.send(
                    conn,
                    Reply::PublicKey {
                        req,
                        name: who,
                        key,
                    },
                );
            }
            Request::SendDm { req, to, body } => self.send_dm(now, conn, &name, req, to, body),
            Request::FetchPending { req } => self.fetch_pending(conn, &name, req),
            Request::SetStatus { req, status } => self.set_status(conn, &name, req, status),
            Request::ListUsers { req } => self.list_users(conn, req),
            Request::Logout => {
                self.disconnect(conn);
                self.send(
                    conn,
                    Reply::Close {
                        code: ErrorCode::ConnectionTerminated,
                    },
                );
            }
            Request::AckDm { msg_id } => self.ack_dm(&name, msg_id),
            Request::CreateRoom {
                req,
                title,
                private,
            } => self.create_room(conn, &name, req, title, private),
            Request::InviteMember {
                req,
                room,
                name: who,
            } => self.invite(conn, &name, req, room, who),
            Request::RemoveMember {
                req,
                room,
                name: who,
            } => self.remove_from_room(conn, &name, req, room, who),
            Request::SetRoomTitle { req, room, title } => {
                self.set_title(conn, &name, req, room, title)
            }
            Request::AckRoom { room, seq } => self.ack_room(now, &name, room, seq),
            Request::FetchHistory {
                req,
                room,
                before,
                limit,
            } => self.history(conn, &name, req, room, before, limit),
            Request::JoinRoom { req, room } => self.join_room(conn, &name, req, room),
            Request::LeaveRoom { req, room } => self.leave_room(conn, &name, req, room),
            Request::ListRooms { req } => self.list_rooms(conn, req),
            Request::RoomMessage { req, room, body } => {
                self.room_message(now, conn, &name, req, room, body)
            }
            Request::UploadPrekeys { req, bundle } if bundle.len() > MAX_BODY_LEN => {
                self.error(conn, req, ErrorCode::BodyTooLarge)
            }
            Request::UploadPrekeys { req, bundle } => {
                if let Some(user) = self.users.get_mut(&name) {
                    user.prekeys = Some(bundle.clone());
                }
                self.store_ops
                    .push_back(StoreOp::PrekeysStored { name, bundle });
                self.send(conn, Reply::Ok { req });
            }
            Request::UploadKeyPackages {
                req,
                last_resort,
                packages,
            } => self.upload_key_packages(conn, &name, req, last_resort, packages),
            Request::FetchKeyPackage { req, name: who } => self.fetch_key_package(conn, req, who),
            Request::InitGroup {
                req,
                room,
                group_info,
            } => self.init_group(conn, &name, req, room, group_info),
            Request::GroupCommit {
                req,
                room,
                commit,
                group_info,
                add,
                welcome,
            } => {
                let commit = group::CommitRequest {
                    commit,
                    group_info,
                    add,
                    welcome,
                };
                self.group_commit(now, conn, &name, req, room, commit)
            }
            Request::GetGroupInfo { req, room } => self.get_group_info(conn, &name, req, room),
            Request::OpenDirect {
                req,
                peer,
                group_info,
                welcome,
            } => self.open_direct(now, conn, &name, req, peer, group_info, welcome),
            Request::FetchPrekeys { req, name: who } => match self.users.get(&who) {
                Some(user) => {
                    let bundle = user.prekeys.clone();
                    self.send(
                        conn,
                        Reply::PrekeyBundle {
                            req,
                            name: who,
                            bundle,
                        },
                    );
                }
                None => self.error(conn, req, ErrorCode::UserNotFound),
            },
        }
    }

    fn set_status(&mut self, conn: ConnId, name: &Arc<str>, req: u32, status: Status) {
        if status == Status::Offline {
            self.error(conn, req, ErrorCode::InvalidFormat);
            return;
        }
        if let Some(user) = self.users.get_mut(name) {
            user.status = status;
        }
        self.send(conn, Reply::Ok { req });
        self.broadcast_status(name, status);
    }

    /// Tells everyone who shares a room with `name` (once each) its new status.
    fn broadcast_status(&mut self, name: &Arc<str>, status: Status) {
        let Some(user) = self.users.get(name) else {
            return;
        };
        let rooms: Vec<RoomId> = user.rooms.iter().copied().collect();
        let mut peers = BTreeSet::new();
        for room in rooms {
            peers.extend(self.online_members(room, Some(name)));
        }
        for peer in peers {
            self.send(
                peer,
                Reply::StatusUpdate {
                    name: name.clone(),
                    status,
                },
            );
        }
    }

    fn list_users(&mut self, conn: ConnId, req: u32) {
        // Online users first, then the rest, each group by name; at most max_list_entries.
        let online = self.users.iter().filter(|(_, u)| u.conn.is_some());
        let offline = self.users.iter().filter(|(_, u)| u.conn.is_none());
        let users: Arc<[(Arc<str>, Status)]> = online
            .chain(offline)
            .take(self.config.max_list_entries)
            .map(|(n, u)| (n.clone(), u.status))
            .collect();
        self.send(conn, Reply::UserList { req, users });
    }

    fn send(&mut self, conn: ConnId, reply: Reply) {
        self.stats.deliveries += 1;
        self.deliveries.push_back((conn, reply));
    }

    fn error(&mut self, conn: ConnId, req: u32, code: ErrorCode) {
        self.send(
            conn,
            Reply::Error {
                req,
                code,
                text: code.description(),
            },
        );
    }

    /// Draws the next pseudo-random `u64` (splitmix64; only for room IDs, not secret).
    fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The request ID a request carries, 0 if none.
pub(crate) fn request_id(request: &Request) -> u32 {
    match request {
        Request::GetPublicKey { req, .. }
        | Request::SendDm { req, .. }
        | Request::FetchPending { req }
        | Request::SetStatus { req, .. }
        | Request::ListUsers { req }
        | Request::CreateRoom { req, .. }
        | Request::JoinRoom { req, .. }
        | Request::LeaveRoom { req, .. }
        | Request::ListRooms { req }
        | Request::RoomMessage { req, .. }
        | Request::UploadPrekeys { req, .. }
        | Request::FetchPrekeys { req, .. }
        | Request::InviteMember { req, .. }
        | Request::RemoveMember { req, .. }
        | Request::SetRoomTitle { req, .. }
        | Request::FetchHistory { req, .. }
        | Request::UploadKeyPackages { req, .. }
        | Request::FetchKeyPackage { req, .. }
        | Request::InitGroup { req, .. }
        | Request::GroupCommit { req, .. }
        | Request::GetGroupInfo { req, .. }
        | Request::OpenDirect { req, .. } => *req,
        Request::Logout | Request::AckDm { .. } | Request::AckRoom { .. } => 0,
    }
}

#[cfg(test)]
mod group_tests;
#[cfg(test)]
mod key_package_tests;
#[cfg(test)]
mod load_tests;
#[cfg(test)]
mod room_tests;
#[cfg(test)]
mod size_tests;
#[cfg(test)]
mod test_server;
#[cfg(test)]
mod tests;
