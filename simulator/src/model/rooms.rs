//! The model of rooms: creation (public or private), joins (the cap, invitations), leaves
//! and removals by the admin (the only ways a membership ends), the admin handing over to
//! the longest-standing member, invitations, titles and the public room list.
//!
//! Each handler returns the outcome the hub must answer the requester with (`Err(code)`
//! for an error reply) and adds the room replies it must send to `out`.

use std::sync::Arc;

use cove_core::hub::{ConnId, Reply, RoomInfo};
use cove_core::wire::{ErrorCode, RoomId};

use super::durability::RoomWrite;
use super::expect::{Item, Streams, push};
use super::room_log::StepOps;
use super::{Checked, JoinNote, Model, ModelMember, ModelRoom, fail};

/// Most entries in a room list (the hub's default `max_list_entries`).
const LIST_MAX: usize = 500;

impl Model {
    fn check_admin(&self, u: usize, room: RoomId) -> Result<&ModelRoom, ErrorCode> {
        let r = self.rooms.get(&room).ok_or(ErrorCode::RoomNotFound)?;
        if r.member(u).is_none() {
            return Err(ErrorCode::NotInRoom);
        }
        if r.admin != u {
            return Err(ErrorCode::NotRoomAdmin);
        }
        Ok(r)
    }

    /// Connections of the room's online members.
    fn online_members(&self, room: RoomId) -> Vec<ConnId> {
        self.rooms.get(&room).map_or_else(Vec::new, |r| {
            r.members
                .iter()
                .filter_map(|m| self.users[m.u].conn)
                .collect()
        })
    }

    /// `u` created room `room` (the ID the hub chose) as `title`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn create(
        &mut self,
        conn: ConnId,
        u: usize,
        req: u32,
        room: Option<RoomId>,
        title: &Arc<str>,
        private: bool,
        out: &mut Streams,
        ops: &mut StepOps,
    ) -> Result<(), ErrorCode> {
        if self.rooms.len() >= self.limits.max_rooms
            || self.users[u].rooms.len() >= self.limits.max_rooms_per_user
        {
            return Err(ErrorCode::LimitReached);
        }
        let Some(room) = room.filter(|r| !self.rooms.contains_key(r)) else {
            // No new room, or one that is live: the outcome will not match.
            return Ok(());
        };
        let inc = self.next_inc;
        self.next_inc += 1;
        self.rooms_created += 1;
        self.rooms.insert(
            room,
            ModelRoom {
                inc,
                title: title.clone(),
                private,
                admin: u,
                members: Vec::new(),
                invited: Default::default(),
                next_seq: 1,
                first: 1,
                log_bytes: 0,
            },
        );
        self.log.insert(inc, Vec::new());
        self.directory.push((room, inc));
        self.unbatched.rooms.push(RoomWrite::Created {
            room,
            inc,
            title: title.clone(),
            private,
            admin: u,
        });
        self.add_member(conn, u, req, room, out, ops);
        Ok(())
    }

    /// `u` asks to join `room`.
    pub(super) fn join(&self, u: usize, room: RoomId) -> Result<(), ErrorCode> {
        let r = self.rooms.get(&room).ok_or(ErrorCode::RoomNotFound)?;
        if r.member(u).is_some() {
            return Err(ErrorCode::AlreadyInRoom);
        }
        if r.private && !r.invited.contains(&u) {
            return Err(ErrorCode::NotInvited);
        }
        if r.members.len() >= self.capacity {
            return Err(ErrorCode::RoomFull);
        }
        if self.users[u].rooms.len() >= self.limits.max_rooms_per_user {
            return Err(ErrorCode::LimitReached);
        }
        Ok(())
    }

    /// Checks a join's answer against the cap (both ways), then any other outcome.
    pub(super) fn check_join_outcome(
        &self,
        u: usize,
        room: RoomId,
        want: Result<(), ErrorCode>,
        got: Option<ErrorCode>,
    ) -> Checked {
        let count = self.rooms.get(&room).map_or(0, |r| r.members.len());
        match (want, got) {
            (Err(ErrorCode::RoomFull), None) => fail(
                "room cap",
                format!(
                    "u{u} admitted to {room:?} with {count} members already (cap {})",
                    self.capacity
                ),
            ),
            (Ok(()), Some(ErrorCode::RoomFull)) => fail(
                "room cap",
                format!(
                    "u{u} refused {room:?} as full with {count} of {} members",
                    self.capacity
                ),
            ),
            (want, got) if want.err() != got => fail(
                "rooms",
                format!("join of {room:?} by u{u}: hub answered {got:?}, model {want:?}"),
            ),
            _ => Ok(()),
        }
    }

    /// Adds `u` to `room` (not a member yet): its interval starts after the last message.
    pub(super) fn add_member(
        &mut self,
        conn: ConnId,
        u: usize,
        req: u32,
        room: RoomId,
        out: &mut Streams,
        ops: &mut StepOps,
    ) {
        let others = self.online_members(room);
        let Some(r) = self.rooms.get_mut(&room) else {
            return;
        };
        let since = r.last();
        r.members.push(ModelMember {
            u,
            since,
            cursor: since,
            pushed: since,
        });
        r.invited.remove(&u);
        let item = Item::Joined {
            req,
            members: r.members.iter().map(|m| m.u).collect(),
            private: r.private,
            admin: r.admin,
            title: r.title.clone(),
        };
        let inc = r.inc;
        self.users[u].rooms.insert(room);
        self.users[u].invites.remove(&room);
        self.unbatched
            .rooms
            .push(RoomWrite::MemberAdded { room, u, since });
        ops.membership.push((room, u, Some(since)));
        push(out, conn, room, item);
        for c in others {
            push(out, c, room, Item::MemberJoined(u));
        }
        self.note_join(
            conn,
            JoinNote {
                room,
                inc,
                first_seq: since + 1,
                since,
            },
        );
    }

    /// Ends `u`'s membership of `room`: the others are told, the admin role passes to the
    /// longest-standing member, and the last one out deletes the room.
    pub(super) fn end_membership(
        &mut self,
        room: RoomId,
        u: usize,
        out: &mut Streams,
        ops: &mut StepOps,
    ) {
        self.users[u].rooms.remove(&room);
        let Some(r) = self.rooms.get_mut(&room) else {
            return;
        };
        r.members.retain(|m| m.u != u);
        self.unbatched
            .rooms
            .push(RoomWrite::MemberRemoved { room, u });
        ops.membership.push((room, u, None));
        if r.members.is_empty() {
            let invited = std::mem::take(&mut r.invited);
            self.rooms.remove(&room);
            for i in invited {
                self.users[i].invites.remove(&room);
            }
            self.unbatched.rooms.push(RoomWrite::Deleted(room));
            self.directory_dead += 1;
            if self.directory_dead * 2 > self.directory.len() {
                let rooms = &self.rooms;
                self.directory
                    .retain(|(d, inc)| rooms.get(d).is_some_and(|r| r.inc == *inc));
                self.directory_dead = 0;
            }
            return;
        }
        if r.admin == u {
            r.admin = r.members[0].u;
            let admin = r.admin;
            self.unbatched.rooms.push(RoomWrite::Admin { room, admin });
        }
        for c in self.online_members(room) {
            push(out, c, room, Item::MemberLeft(u));
        }
    }

    /// `u` (on `conn`) leaves `room`.
    pub(super) fn leave(
        &mut self,
        conn: ConnId,
        u: usize,
        req: u32,
        room: RoomId,
        out: &mut Streams,
        ops: &mut StepOps,
    ) -> Result<(), ErrorCode> {
        let r = self.rooms.get(&room).ok_or(ErrorCode::RoomNotFound)?;
        if r.member(u).is_none() {
            return Err(ErrorCode::NotInRoom);
        }
        self.end_membership(room, u, out, ops);
        push(out, conn, room, Item::Left(req));
        Ok(())
    }

    /// The admin `u` removes user `target` from `room`.
    pub(super) fn remove(
        &mut self,
        u: usize,
        room: RoomId,
        target: Option<usize>,
        out: &mut Streams,
        ops: &mut StepOps,
    ) -> Result<(), ErrorCode> {
        let r = self.check_admin(u, room)?;
        if target == Some(u) {
            return Err(ErrorCode::InvalidFormat);
        }
        let Some(t) = target.filter(|t| r.member(*t).is_some()) else {
            return Err(ErrorCode::NotInRoom);
        };
        let removed = self.users[t].conn;
        self.end_membership(room, t, out, ops);
        if let Some(c) = removed {
            push(out, c, room, Item::Removed { by: u });
        }
        Ok(())
    }

    /// The admin `u` invites user `target` to `room`.
    pub(super) fn invite(
        &mut self,
        u: usize,
        room: RoomId,
        target: Option<usize>,
        out: &mut Streams,
    ) -> Result<(), ErrorCode> {
        self.check_admin(u, room)?;
        let Some(t) = target.filter(|t| *t < self.users.len() && self.users[*t].exists) else {
            return Err(ErrorCode::UserNotFound);
        };
        let max = self.limits.max_invites;
        let r = self.rooms.get_mut(&room).ok_or(ErrorCode::RoomNotFound)?;
        if r.member(t).is_some() {
            return Err(ErrorCode::AlreadyInRoom);
        }
        if !r.invited.contains(&t) {
            if r.invited.len() >= max {
                return Err(ErrorCode::LimitReached);
            }
            r.invited.insert(t);
            self.unbatched.rooms.push(RoomWrite::Invited { room, u: t });
        }
        let title = r.title.clone();
        self.users[t].invites.insert(room);
        if let Some(c) = self.users[t].conn {
            push(out, c, room, Item::Invited { by: u, title });
        }
        Ok(())
    }

    /// The admin `u` retitles `room`.
    pub(super) fn retitle(
        &mut self,
        u: usize,
        room: RoomId,
        title: &Arc<str>,
        out: &mut Streams,
    ) -> Result<(), ErrorCode> {
        self.check_admin(u, room)?;
        if let Some(r) = self.rooms.get_mut(&room) {
            r.title = title.clone();
        }
        self.unbatched.rooms.push(RoomWrite::Title {
            room,
            title: title.clone(),
        });
        for c in self.online_members(room) {
            push(out, c, room, Item::Title(title.clone()));
        }
        Ok(())
    }

    /// A room list lists exactly the live public rooms (up to the list limit), never a
    /// private one, with their member counts.
    pub(super) fn check_room_list(&self, rooms: &[RoomInfo]) -> Checked {
        for info in rooms {
            if self.foreign_public.contains(&info.room) {
                continue;
            }
            let Some(r) = self.rooms.get(&info.room) else {
                return fail(
                    "rooms",
                    format!("listed {:?}, which is not live", info.room),
                );
            };
            if r.private {
                return fail("rooms", format!("private room {:?} listed", info.room));
            }
            if usize::from(info.members) != r.members.len() || info.title != r.title {
                return fail(
                    "rooms",
                    format!(
                        "{:?} listed with {} members titled {:?}; model {} titled {:?}",
                        info.room,
                        info.members,
                        info.title,
                        r.members.len(),
                        r.title
                    ),
                );
            }
        }
        let public = self.rooms.values().filter(|r| !r.private).count() + self.foreign_public.len();
        if rooms.len() != public.min(LIST_MAX) {
            return fail(
                "rooms",
                format!("{} rooms listed of {public} public ones", rooms.len()),
            );
        }
        Ok(())
    }
}

/// The room list among a step's replies to `conn`, if any.
pub(super) fn room_list(deliveries: &[(ConnId, Reply)], conn: ConnId) -> Option<&[RoomInfo]> {
    deliveries.iter().find_map(|(c, r)| match r {
        Reply::RoomList { rooms, .. } if *c == conn => Some(rooms.as_slice()),
        _ => None,
    })
}
