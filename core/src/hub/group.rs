//! The hub as MLS Delivery Service (RFC 9750): it orders each room's group messages but
//! holds no key and sees no plaintext. Per room it keeps the group's ID, current epoch and
//! latest GroupInfo; it accepts exactly one Commit per epoch (a second one is refused with
//! `StaleEpoch`), logs Commits and Welcomes in the room's total order like any message,
//! admits joiners by external commit, and makes direct conversations (groups of two).
//! It reads only the cleartext MLS headers (`wire::mls`).

use alloc::sync::Arc;

use super::{ConnId, Hub, Reply};
use crate::store::StoreOp;
use crate::time::Instant;
use crate::wire::mls::{
    ContentType, SenderType, WireFormat, group_info_header, message_header, wire_format,
};
use crate::wire::{ErrorCode, MAX_BODY_LEN, RoomId};

/// A room's MLS group as the Delivery Service knows it.
#[derive(Clone, Debug)]
pub(super) struct GroupState {
    pub(super) group_id: Arc<[u8]>,
    /// The epoch the group is in: the next Commit must name it.
    pub(super) epoch: u64,
    /// `MLSMessage(GroupInfo)` of `epoch`, for external joins.
    pub(super) group_info: Arc<[u8]>,
    /// The first epoch of the newest member (made by the Commit that added or rejoined
    /// them): application messages from before it are refused, as that member could not
    /// read them, and their sender makes them again once it has processed that Commit.
    pub(super) joined_at: u64,
}

impl GroupState {
    /// Reads the group's ID and epoch from a GroupInfo.
    pub(super) fn from_group_info(group_info: Arc<[u8]>) -> Option<GroupState> {
        let h = group_info_header(&group_info).ok()?;
        Some(GroupState {
            group_id: Arc::from(h.group_id),
            epoch: h.epoch,
            group_info: group_info.clone(),
            // Not known from a GroupInfo alone (after a restart): the current epoch, which
            // refuses too much rather than too little.
            joined_at: h.epoch,
        })
    }
}

/// The parts of a `GroupCommit` request.
#[derive(Debug)]
pub(super) struct CommitRequest {
    pub(super) commit: Arc<[u8]>,
    pub(super) group_info: Arc<[u8]>,
    pub(super) add: Option<Arc<str>>,
    pub(super) welcome: Arc<[u8]>,
}

impl Hub {
    /// A GroupInfo of acceptable size.
    fn parse_group_info(&self, group_info: &Arc<[u8]>) -> Result<GroupState, ErrorCode> {
        if group_info.len() > self.config.mls.max_group_info_len {
            return Err(ErrorCode::BodyTooLarge);
        }
        GroupState::from_group_info(group_info.clone()).ok_or(ErrorCode::NotMls)
    }

    /// What an application message in `room` must be: if the room has a group, an MLS
    /// PrivateMessage of application data of that group, from its epoch or one of the
    /// `epoch_window` before it, and not from before the newest member's first epoch.
    pub(super) fn check_application(&self, room: RoomId, body: &[u8]) -> Result<(), ErrorCode> {
        let Some(g) = self.rooms.get(&room).and_then(|r| r.group.as_ref()) else {
            return Ok(());
        };
        let h = message_header(body).map_err(|_| ErrorCode::NotMls)?;
        if h.wire_format != WireFormat::PrivateMessage
            || h.content_type != ContentType::Application
            || h.group_id != &*g.group_id
        {
            return Err(ErrorCode::NotMls);
        }
        if h.epoch > g.epoch
            || h.epoch.saturating_add(self.config.mls.epoch_window) < g.epoch
            || h.epoch < g.joined_at
        {
            return Err(ErrorCode::StaleEpoch);
        }
        Ok(())
    }

    /// The room's admin publishes its group (once).
    pub(super) fn init_group(
        &mut self,
        conn: ConnId,
        name: &Arc<str>,
        req: u32,
        room: RoomId,
        group_info: Arc<[u8]>,
    ) {
        if let Err(code) = self.check_admin(name, room) {
            return self.error(conn, req, code);
        }
        if self.rooms.get(&room).is_some_and(|r| r.group.is_some()) {
            return self.error(conn, req, ErrorCode::GroupExists);
        }
        let group = match self.parse_group_info(&group_info) {
            // A new group starts at epoch 0.
            Ok(g) if g.epoch == 0 => g,
            Ok(_) => return self.error(conn, req, ErrorCode::NotMls),
            Err(code) => return self.error(conn, req, code),
        };
        self.set_group(room, group);
        self.send(conn, Reply::Ok { req });
    }

    fn set_group(&mut self, room: RoomId, group: GroupState) {
        self.store_ops.push_back(StoreOp::GroupSet {
            room,
            epoch: group.epoch,
            group_info: group.group_info.clone(),
        });
        if let Some(r) = self.rooms.get_mut(&room) {
            r.group = Some(group);
        }
    }

    /// The room's latest GroupInfo, for members and for those who may join.
    pub(super) fn get_group_info(&mut self, conn: ConnId, name: &Arc<str>, req: u32, room: RoomId) {
        let Some(r) = self.rooms.get(&room) else {
            return self.error(conn, req, ErrorCode::RoomNotFound);
        };
        let may_join = !r.private || r.invited.contains(name);
        if r.member(name).is_none() && !may_join {
            return self.error(conn, req, ErrorCode::NotInvited);
        }
        let Some(g) = &r.group else {
            return self.error(conn, req, ErrorCode::NoGroup);
        };
        let reply = Reply::GroupInfo {
            req,
            room,
            epoch: g.epoch,
            group_info: g.group_info.clone(),
        };
        self.send(conn, reply);
    }

    /// A Commit for the room's current epoch: from a member (optionally adding someone
    /// with a Welcome), or an external commit from a joiner.
    pub(super) fn group_commit(
        &mut self,
        now: Instant,
        conn: ConnId,
        name: &Arc<str>,
        req: u32,
        room: RoomId,
        c: CommitRequest,
    ) {
        let joining = match self.check_commit(name, room, &c) {
            Ok(joining) => joining,
            Err(code) => return self.error(conn, req, code),
        };
        let mut next = match self.parse_group_info(&c.group_info) {
            Ok(g) => g,
            Err(code) => return self.error(conn, req, code),
        };
        // A Commit that brings someone in (an Add, an external commit, a member's own
        // rejoining) starts their first epoch; any other keeps the newest member's.
        let external =
            message_header(&c.commit).is_ok_and(|h| h.sender == Some(SenderType::NewMemberCommit));
        if !joining
            && !external
            && c.add.is_none()
            && let Some(g) = self.rooms.get(&room).and_then(|r| r.group.as_ref())
        {
            next.joined_at = g.joined_at;
        }
        self.set_group(room, next);
        // Members hear of a newcomer before the Commit that adds them to the group, so
        // their view of the room never lags their group's roster; the newcomer's cursor
        // starts after the Commit (a joiner's group starts at the epoch it made).
        if joining {
            self.add_member_skipping(Some(conn), name, req, room, 1);
            self.log_entry(now, room, name, c.commit);
            return;
        }
        match c.add {
            Some(who) => {
                let who_conn = self.conn_of(&who);
                self.add_member_skipping(who_conn, &who, 0, room, 1);
                self.log_entry(now, room, name, c.commit);
                self.log_entry(now, room, name, c.welcome);
            }
            None => {
                self.log_entry(now, room, name, c.commit);
            }
        }
        self.send(conn, Reply::Ok { req });
    }

    /// Checks a `GroupCommit`; `Ok(true)` for an external commit that joins.
    fn check_commit(
        &self,
        name: &Arc<str>,
        room: RoomId,
        c: &CommitRequest,
    ) -> Result<bool, ErrorCode> {
        if c.commit.len() > MAX_BODY_LEN || c.welcome.len() > MAX_BODY_LEN {
            return Err(ErrorCode::BodyTooLarge);
        }
        let r = self.rooms.get(&room).ok_or(ErrorCode::RoomNotFound)?;
        let g = r.group.as_ref().ok_or(ErrorCode::NoGroup)?;
        let h = message_header(&c.commit).map_err(|_| ErrorCode::NotMls)?;
        if h.content_type != ContentType::Commit || h.group_id != &*g.group_id {
            return Err(ErrorCode::NotMls);
        }
        if h.epoch != g.epoch && !self.second_commit_bug(h.epoch, g.epoch) {
            return Err(ErrorCode::StaleEpoch);
        }
        let gi = group_info_header(&c.group_info).map_err(|_| ErrorCode::NotMls)?;
        if gi.group_id != &*g.group_id || Some(gi.epoch) != h.epoch.checked_add(1) {
            return Err(ErrorCode::NotMls);
        }
        let joining = r.member(name).is_none();
        if joining {
            if h.sender != Some(SenderType::NewMemberCommit) {
                return Err(ErrorCode::NotInRoom);
            }
            if c.add.is_some() || !c.welcome.is_empty() {
                return Err(ErrorCode::InvalidFormat);
            }
            if r.direct || (r.private && !r.invited.contains(name)) {
                return Err(ErrorCode::NotInvited);
            }
            if r.members.len() >= self.room_capacity() {
                return Err(ErrorCode::RoomFull);
            }
            if self.user_room_count(name) >= self.config.max_rooms_per_user {
                return Err(ErrorCode::LimitReached);
            }
            return Ok(true);
        }
        match &c.add {
            None if c.welcome.is_empty() => {}
            None => return Err(ErrorCode::InvalidFormat),
            Some(who) => {
                if wire_format(&c.welcome) != Ok(WireFormat::Welcome) {
                    return Err(ErrorCode::NotMls);
                }
                if r.direct || (r.private && r.admin != *name) {
                    return Err(ErrorCode::NotRoomAdmin);
                }
                if !self.users.contains_key(who) {
                    return Err(ErrorCode::UserNotFound);
                }
                if r.member(who).is_some() {
                    return Err(ErrorCode::AlreadyInRoom);
                }
                if r.members.len() >= self.room_capacity() {
                    return Err(ErrorCode::RoomFull);
                }
                if self.user_room_count(who) >= self.config.max_rooms_per_user {
                    return Err(ErrorCode::LimitReached);
                }
            }
        }
        Ok(false)
    }

    /// With the injected bug, a Commit for the epoch just closed is accepted too.
    #[cfg(feature = "inject-bugs")]
    fn second_commit_bug(&self, named: u64, current: u64) -> bool {
        self.config.bugs.accept_two_commits && named + 1 == current
    }

    #[cfg(not(feature = "inject-bugs"))]
    fn second_commit_bug(&self, _named: u64, _current: u64) -> bool {
        false
    }

    /// Opens the direct conversation of `name` and `peer`: a private room of the two
    /// whose group `name` made from one of `peer`'s KeyPackages; the Welcome is its first
    /// entry. One per pair: whoever arrives first wins, the other gets `DirectExists`
    /// (and is already a member of the winner's room).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn open_direct(
        &mut self,
        now: Instant,
        conn: ConnId,
        name: &Arc<str>,
        req: u32,
        peer: Arc<str>,
        group_info: Arc<[u8]>,
        welcome: Arc<[u8]>,
    ) {
        let room = match self.check_direct(name, &peer, &group_info, &welcome) {
            Ok(room) => room,
            Err(code) => return self.error(conn, req, code),
        };
        let Some(group) = GroupState::from_group_info(group_info) else {
            return self.error(conn, req, ErrorCode::NotMls);
        };
        let Some((peer, _)) = self.users.get_key_value(&peer) else {
            return self.error(conn, req, ErrorCode::UserNotFound);
        };
        let peer = peer.clone();
        let mut r = super::rooms::Room::new(Arc::from(""), true, name.clone());
        r.direct = true;
        self.rooms.insert(room, r);
        self.store_ops.push_back(StoreOp::RoomCreated {
            room,
            title: Arc::from(""),
            private: true,
            admin: name.clone(),
        });
        self.store_ops.push_back(StoreOp::DirectCreated { room });
        self.set_group(room, group);
        for who in [name, &peer] {
            if let Some(u) = self.users.get_mut(who) {
                u.directs += 1;
            }
        }
        self.directs.insert(pair(name, &peer), room);
        // The peer first, so the opener's `RoomJoined` names both members.
        let peer_conn = self.conn_of(&peer);
        self.add_member(peer_conn, &peer, 0, room);
        self.add_member(Some(conn), name, req, room);
        self.log_entry(now, room, name, welcome);
    }

    /// Checks an `OpenDirect` and picks the new room's ID.
    fn check_direct(
        &mut self,
        name: &Arc<str>,
        peer: &Arc<str>,
        group_info: &Arc<[u8]>,
        welcome: &Arc<[u8]>,
    ) -> Result<RoomId, ErrorCode> {
        if peer == name {
            return Err(ErrorCode::InvalidFormat);
        }
        let limit = self.config.mls.max_directs_per_user;
        let peer_user = self.users.get(peer).ok_or(ErrorCode::UserNotFound)?;
        if self.directs.contains_key(&pair(name, peer)) {
            return Err(ErrorCode::DirectExists);
        }
        let own = self.users.get(name).map_or(0, |u| u.directs);
        if own >= limit || peer_user.directs >= limit || self.rooms.len() >= self.config.max_rooms {
            return Err(ErrorCode::LimitReached);
        }
        if welcome.len() > MAX_BODY_LEN {
            return Err(ErrorCode::BodyTooLarge);
        }
        if wire_format(welcome) != Ok(WireFormat::Welcome) {
            return Err(ErrorCode::NotMls);
        }
        // Made at epoch 0 by its opener, who committed the peer's addition: epoch 1.
        if self.parse_group_info(group_info)?.epoch != 1 {
            return Err(ErrorCode::NotMls);
        }
        self.fresh_room_id().ok_or(ErrorCode::LimitReached)
    }

    /// Rebuilds the pair index and counts of a restored direct room.
    pub(super) fn restore_direct(&mut self, room: RoomId) {
        let Some(r) = self.rooms.get(&room) else {
            return;
        };
        let names: alloc::vec::Vec<Arc<str>> = r.members.iter().map(|m| m.name.clone()).collect();
        for n in &names {
            if let Some(u) = self.users.get_mut(n) {
                u.directs += 1;
            }
        }
        if let [a, b] = names.as_slice() {
            self.directs.insert(pair(a, b), room);
        }
    }
}

/// The key of a pair of users, the same whichever is named first.
fn pair(a: &Arc<str>, b: &Arc<str>) -> (Arc<str>, Arc<str>) {
    if a <= b {
        (a.clone(), b.clone())
    } else {
        (b.clone(), a.clone())
    }
}
