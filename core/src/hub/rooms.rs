//! Rooms: durable conversations. Creation, public and private rooms, invitations, the
//! admin's powers, and membership that only a leave or a removal ends — a disconnect,
//! a logout or a restart does not. Messages, the log and delivery are in `room_log`.

use alloc::collections::BTreeSet;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::loads::PendingHistory;
use super::retained::Retained;
use super::{ConnId, Hub, Reply, RoomInfo};
use crate::store::{LoggedMessage, StoreOp};
use crate::wire::{DEFAULT_MAX_FRAME, ErrorCode, ROOM_ID_LEN, RoomId};

/// A member of a room and how far its messages reached them.
#[derive(Clone, Debug)]
pub(super) struct Member {
    pub(super) name: Arc<str>,
    /// The room's last sequence number when they joined: history before is not theirs.
    pub(super) since: u64,
    /// The highest sequence number they acknowledged (durable).
    pub(super) cursor: u64,
    /// The highest sequence number pushed on their current connection.
    pub(super) pushed: u64,
    /// The user's connection and frame limit, copied here so that a fan-out, which
    /// visits every member for every message, never looks the user up by name. Always
    /// equal to the user's own `conn` and `max_frame`: [`Hub::set_member_links`] keeps it
    /// so wherever those change (checked on every delivery in debug builds).
    pub(super) conn: Option<ConnId>,
    pub(super) max_frame: u32,
}

/// A room: members in join order, its log and the next sequence number to stamp.
#[derive(Debug)]
pub(super) struct Room {
    pub(super) title: Arc<str>,
    pub(super) private: bool,
    pub(super) admin: Arc<str>,
    pub(super) members: Vec<Member>,
    pub(super) invited: Vec<Arc<str>>,
    pub(super) next_seq: u64,
    /// Retained messages, oldest first, consecutive sequence numbers; the newest whole.
    pub(super) log: Retained,
    /// The load from the store this room waits for, if any (its ID): one at a time.
    pub(super) loading: Option<u64>,
    /// The older messages the last load read from the store, consecutive: kept for the
    /// acks that follow (a member catching up takes a window of them, then one more per
    /// ack) until the next load replaces them or retention drops them. At most one
    /// window or history page per room.
    pub(super) loaded: Vec<LoggedMessage>,
    /// History pages waiting for `loading`, in the order they were asked.
    pub(super) histories: Vec<PendingHistory>,
    /// A direct conversation of two (made by `OpenDirect`).
    pub(super) direct: bool,
    /// The room's MLS group, once published.
    pub(super) group: Option<super::group::GroupState>,
    /// Members who left but still receive messages: only with the injected bug.
    #[cfg(feature = "inject-bugs")]
    pub(super) departed: Vec<Arc<str>>,
}

impl Room {
    pub(super) fn new(title: Arc<str>, private: bool, admin: Arc<str>) -> Room {
        Room {
            title,
            private,
            admin,
            members: Vec::new(),
            invited: Vec::new(),
            next_seq: 1,
            log: Retained::default(),
            loading: None,
            loaded: Vec::new(),
            histories: Vec::new(),
            direct: false,
            group: None,
            #[cfg(feature = "inject-bugs")]
            departed: Vec::new(),
        }
    }

    pub(super) fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| &*m.name == name)
    }

    pub(super) fn member_mut(&mut self, name: &str) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| &*m.name == name)
    }

    /// The first sequence number still in the log (the next one if the log is empty).
    pub(super) fn first_retained(&self) -> u64 {
        self.log.first().unwrap_or(self.next_seq)
    }

    /// Message `seq` if the hub has it at hand: kept whole, or just loaded.
    pub(super) fn message(&self, seq: u64) -> Option<&LoggedMessage> {
        message_at(&self.log, &self.loaded, seq)
    }

    /// Forgets loaded messages below `first` (retention dropped them).
    pub(super) fn drop_loaded_below(&mut self, first: u64) {
        let n = self.loaded.iter().take_while(|m| m.seq < first).count();
        if n == self.loaded.len() {
            self.loaded = Vec::new();
        } else {
            self.loaded.drain(..n);
        }
    }

    /// Whether every message of `start..end` is at hand (see [`Room::message`]).
    pub(super) fn has_range(&self, start: u64, end: u64) -> bool {
        let end = end.min(self.log.tail_first());
        start >= end
            || (self.loaded.first().is_some_and(|m| m.seq <= start)
                && self.loaded.last().is_some_and(|m| m.seq + 1 >= end))
    }
}

/// Message `seq` from a room's log kept whole or its just loaded messages (borrowing
/// only those two, so a fan-out can hold a member at the same time).
pub(super) fn message_at<'a>(
    log: &'a Retained,
    loaded: &'a [LoggedMessage],
    seq: u64,
) -> Option<&'a LoggedMessage> {
    if let Some(m) = log.get(seq) {
        return Some(m);
    }
    let first = loaded.first()?.seq;
    loaded.get(usize::try_from(seq.checked_sub(first)?).ok()?)
}

/// Draws before giving up on finding a free room ID (the space is 31^6, so this only
/// fails when the server is absurdly full).
const ROOM_ID_TRIES: usize = 64;

impl Hub {
    pub(super) fn room_capacity(&self) -> usize {
        // A room always admits its creator, and the wire counts members in a byte.
        let cap = self.config.room_capacity.clamp(1, u8::MAX as usize);
        #[cfg(feature = "inject-bugs")]
        if self.config.bugs.admit_over_capacity {
            return cap + 1;
        }
        cap
    }

    /// Rooms `name` is in, direct conversations not counted (they have their own cap).
    pub(super) fn user_room_count(&self, name: &Arc<str>) -> usize {
        self.users
            .get(name)
            .map_or(0, |u| u.rooms.len().saturating_sub(u.directs))
    }

    /// The connection `name` is logged in on, if any.
    pub(super) fn conn_of(&self, name: &str) -> Option<ConnId> {
        self.users.get(name).and_then(|u| u.conn)
    }

    /// Copies `name`'s connection and frame limit into its membership of every room it is
    /// in: call it wherever either changes (see [`Member::conn`]).
    pub(super) fn set_member_links(&mut self, name: &Arc<str>) {
        let Some(user) = self.users.get(name) else {
            return;
        };
        for room in &user.rooms {
            if let Some(m) = self.rooms.get_mut(room).and_then(|r| r.member_mut(name)) {
                m.conn = user.conn;
                m.max_frame = user.max_frame;
            }
        }
    }

    /// Connections of the room's members who are online, except `except`.
    pub(super) fn online_members(&self, room: RoomId, except: Option<&str>) -> Vec<ConnId> {
        let Some(r) = self.rooms.get(&room) else {
            return Vec::new();
        };
        r.members
            .iter()
            .filter(|m| Some(&*m.name) != except)
            .filter_map(|m| m.conn)
            .collect()
    }

    pub(super) fn create_room(
        &mut self,
        conn: ConnId,
        name: &Arc<str>,
        req: u32,
        title: Arc<str>,
        private: bool,
    ) {
        if self.rooms.len() >= self.config.max_rooms
            || self.user_room_count(name) >= self.config.max_rooms_per_user
        {
            return self.error(conn, req, ErrorCode::LimitReached);
        }
        let Some(room) = self.fresh_room_id() else {
            return self.error(conn, req, ErrorCode::LimitReached);
        };
        let r = Room::new(title.clone(), private, name.clone());
        self.rooms.insert(room, r);
        self.store_ops.push_back(StoreOp::RoomCreated {
            room,
            title,
            private,
            admin: name.clone(),
        });
        self.add_member(Some(conn), name, req, room);
    }

    pub(super) fn fresh_room_id(&mut self) -> Option<RoomId> {
        for _ in 0..ROOM_ID_TRIES {
            let r = self.next_random().to_le_bytes();
            let mut ix = [0u8; ROOM_ID_LEN];
            ix.copy_from_slice(&r[..ROOM_ID_LEN]);
            let id = RoomId::from_indices(ix);
            if !self.rooms.contains_key(&id) {
                return Some(id);
            }
        }
        None
    }

    pub(super) fn join_room(&mut self, conn: ConnId, name: &Arc<str>, req: u32, room: RoomId) {
        let capacity = self.room_capacity();
        let Some(r) = self.rooms.get(&room) else {
            return self.error(conn, req, ErrorCode::RoomNotFound);
        };
        if r.member(name).is_some() {
            return self.error(conn, req, ErrorCode::AlreadyInRoom);
        }
        if r.group.is_some() {
            // An encrypted room is joined by an external commit (`GroupCommit`).
            return self.error(conn, req, ErrorCode::NotMls);
        }
        if r.private && !r.invited.contains(name) {
            return self.error(conn, req, ErrorCode::NotInvited);
        }
        if r.members.len() >= capacity {
            return self.error(conn, req, ErrorCode::RoomFull);
        }
        if self.user_room_count(name) >= self.config.max_rooms_per_user {
            return self.error(conn, req, ErrorCode::LimitReached);
        }
        self.add_member(Some(conn), name, req, room);
    }

    /// Adds `name` to an existing room it is not in, durably, and tells everyone (`conn`
    /// is `name`'s connection, if online). Its cursor starts after the room's last message.
    pub(super) fn add_member(
        &mut self,
        conn: Option<ConnId>,
        name: &Arc<str>,
        req: u32,
        room: RoomId,
    ) {
        self.add_member_skipping(conn, name, req, room, 0);
    }

    /// [`Hub::add_member`] whose cursor also skips the next `skip` entries, which the
    /// caller logs at once: everyone learns of the member before the Commit that adds
    /// them to the room's group, and the member does not receive that Commit.
    pub(super) fn add_member_skipping(
        &mut self,
        conn: Option<ConnId>,
        name: &Arc<str>,
        req: u32,
        room: RoomId,
        skip: u64,
    ) {
        let others = self.online_members(room, None);
        let Some(r) = self.rooms.get_mut(&room) else {
            return;
        };
        let since = r.next_seq - 1 + skip;
        let (member_conn, max_frame) = self
            .users
            .get(name)
            .map_or((None, DEFAULT_MAX_FRAME), |u| (u.conn, u.max_frame));
        r.members.push(Member {
            name: name.clone(),
            since,
            cursor: since,
            pushed: since,
            conn: member_conn,
            max_frame,
        });
        r.invited.retain(|n| n != name);
        let joined = joined_reply(req, room, r);
        #[cfg(feature = "inject-bugs")]
        let durable = !self.config.bugs.membership_not_durable;
        #[cfg(not(feature = "inject-bugs"))]
        let durable = true;
        if durable {
            self.store_ops.push_back(StoreOp::MemberAdded {
                room,
                name: name.clone(),
                since,
            });
        }
        if let Some(user) = self.users.get_mut(name) {
            user.rooms.insert(room);
            user.invites.remove(&room);
        }
        if let Some(conn) = conn {
            self.send(conn, joined);
        }
        for other in others {
            let name = name.clone();
            self.send(other, Reply::MemberJoined { room, name });
        }
    }

    pub(super) fn leave_room(&mut self, conn: ConnId, name: &Arc<str>, req: u32, room: RoomId) {
        let Some(r) = self.rooms.get(&room) else {
            return self.error(conn, req, ErrorCode::RoomNotFound);
        };
        if r.member(name).is_none() {
            return self.error(conn, req, ErrorCode::NotInRoom);
        }
        self.remove_member(room, name);
        self.send(conn, Reply::RoomLeft { req, room });
    }

    /// The admin removes `target` from `room`.
    pub(super) fn remove_from_room(
        &mut self,
        conn: ConnId,
        name: &Arc<str>,
        req: u32,
        room: RoomId,
        target: Arc<str>,
    ) {
        if let Err(code) = self.check_admin(name, room) {
            return self.error(conn, req, code);
        }
        if target == *name {
            // The admin leaves with LeaveRoom, which hands the room on.
            return self.error(conn, req, ErrorCode::InvalidFormat);
        }
        if self
            .rooms
            .get(&room)
            .and_then(|r| r.member(&target))
            .is_none()
        {
            return self.error(conn, req, ErrorCode::NotInRoom);
        }
        let removed = self.conn_of(&target);
        self.remove_member(room, &target);
        if let Some(c) = removed {
            let by = name.clone();
            self.send(c, Reply::RoomRemoved { room, by });
        }
        self.send(conn, Reply::Ok { req });
    }

    /// The room's admin invites `target`.
    pub(super) fn invite(
        &mut self,
        conn: ConnId,
        name: &Arc<str>,
        req: u32,
        room: RoomId,
        target: Arc<str>,
    ) {
        if let Err(code) = self.check_admin(name, room) {
            return self.error(conn, req, code);
        }
        let Some((target, _)) = self.users.get_key_value(&target) else {
            return self.error(conn, req, ErrorCode::UserNotFound);
        };
        let target = target.clone();
        let max = self.config.max_invites_per_room;
        let Some(r) = self.rooms.get_mut(&room) else {
            return self.error(conn, req, ErrorCode::RoomNotFound);
        };
        if r.member(&target).is_some() {
            return self.error(conn, req, ErrorCode::AlreadyInRoom);
        }
        if !r.invited.contains(&target) {
            if r.invited.len() >= max {
                return self.error(conn, req, ErrorCode::LimitReached);
            }
            r.invited.push(target.clone());
            self.store_ops.push_back(StoreOp::Invited {
                room,
                name: target.clone(),
            });
        }
        let title = r.title.clone();
        if let Some(user) = self.users.get_mut(&target) {
            user.invites.insert(room);
        }
        if let Some(c) = self.conn_of(&target) {
            let by = name.clone();
            self.send(c, Reply::RoomInvited { room, title, by });
        }
        self.send(conn, Reply::Ok { req });
    }

    /// The room's admin changes its title.
    pub(super) fn set_title(
        &mut self,
        conn: ConnId,
        name: &Arc<str>,
        req: u32,
        room: RoomId,
        title: Arc<str>,
    ) {
        if let Err(code) = self.check_admin(name, room) {
            return self.error(conn, req, code);
        }
        if let Some(r) = self.rooms.get_mut(&room) {
            r.title = title.clone();
        }
        let title2 = title.clone();
        self.store_ops.push_back(StoreOp::RoomTitleSet {
            room,
            title: title2,
        });
        self.send(conn, Reply::Ok { req });
        for c in self.online_members(room, None) {
            let title = title.clone();
            self.send(c, Reply::RoomTitle { room, title });
        }
    }

    pub(super) fn check_admin(&self, name: &Arc<str>, room: RoomId) -> Result<(), ErrorCode> {
        let r = self.rooms.get(&room).ok_or(ErrorCode::RoomNotFound)?;
        if r.member(name).is_none() {
            return Err(ErrorCode::NotInRoom);
        }
        if r.admin != *name {
            return Err(ErrorCode::NotRoomAdmin);
        }
        Ok(())
    }

    /// Removes `name` from `room` durably, tells the others, hands the admin role on, and
    /// deletes the room once empty.
    pub(super) fn remove_member(&mut self, room: RoomId, name: &Arc<str>) {
        let Some(r) = self.rooms.get_mut(&room) else {
            return;
        };
        let Some(pos) = r.members.iter().position(|m| m.name == *name) else {
            return;
        };
        let direct = r.direct;
        if let Some(user) = self.users.get_mut(name) {
            user.rooms.remove(&room);
            if direct {
                user.directs = user.directs.saturating_sub(1);
            }
        }
        if direct {
            // The pair may open a new conversation; this one ends with its last member.
            self.directs.retain(|_, r| *r != room);
        }
        let Some(r) = self.rooms.get_mut(&room) else {
            return;
        };
        r.members.remove(pos);
        #[cfg(feature = "inject-bugs")]
        if self.config.bugs.deliver_to_departed {
            r.departed.push(name.clone());
        }
        self.store_ops.push_back(StoreOp::MemberRemoved {
            room,
            name: name.clone(),
        });
        if r.members.is_empty() {
            self.log_bytes_total -= r.log.bytes();
            let invited = core::mem::take(&mut r.invited);
            self.rooms.remove(&room);
            for n in invited {
                if let Some(u) = self.users.get_mut(&n) {
                    u.invites.remove(&room);
                }
            }
            self.store_ops.push_back(StoreOp::RoomDeleted { room });
            return;
        }
        if r.admin == *name {
            // The longest-standing member takes over.
            r.admin = r.members[0].name.clone();
            let admin = r.admin.clone();
            self.store_ops
                .push_back(StoreOp::RoomAdminSet { room, admin });
        }
        for other in self.online_members(room, None) {
            let name = name.clone();
            self.send(other, Reply::MemberLeft { room, name });
        }
    }

    /// Public rooms, for `ListRooms` (private rooms are never listed).
    pub(super) fn list_rooms(&mut self, conn: ConnId, req: u32) {
        let capacity = self.config.room_capacity.clamp(1, u8::MAX as usize) as u8;
        let rooms = self
            .rooms
            .iter()
            .filter(|(_, r)| !r.private && !r.direct)
            .take(self.config.max_list_entries)
            .map(|(id, r)| RoomInfo {
                room: *id,
                title: r.title.clone(),
                members: u8::try_from(r.members.len()).unwrap_or(u8::MAX),
                capacity,
            })
            .collect();
        self.send(conn, Reply::RoomList { req, rooms });
    }

    /// At login: each room the user is in (then its catch-up), and pending invitations.
    pub(super) fn announce_rooms(&mut self, now: crate::time::Instant, name: &Arc<str>) {
        let Some(user) = self.users.get(name) else {
            return;
        };
        let Some(conn) = user.conn else {
            return;
        };
        let rooms: Vec<RoomId> = user.rooms.iter().copied().collect();
        let invites: BTreeSet<RoomId> = user.invites.clone();
        for room in rooms {
            let Some(r) = self.rooms.get_mut(&room) else {
                continue;
            };
            if let Some(m) = r.member_mut(name) {
                m.pushed = m.cursor;
            }
            let joined = joined_reply(0, room, r);
            self.send(conn, joined);
            self.pump_room(now, room, name);
        }
        for room in invites {
            if let Some(r) = self.rooms.get(&room) {
                let title = r.title.clone();
                let by = r.admin.clone();
                self.send(conn, Reply::RoomInvited { room, title, by });
            }
        }
    }
}

/// The `RoomJoined` that describes `r` to a member.
fn joined_reply(req: u32, room: RoomId, r: &Room) -> Reply {
    Reply::RoomJoined {
        req,
        room,
        title: r.title.clone(),
        members: r.members.iter().map(|m| m.name.clone()).collect(),
        private: r.private,
        direct: r.direct,
        admin: r.admin.clone(),
    }
}
