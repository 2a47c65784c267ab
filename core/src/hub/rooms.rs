//! Rooms: creation, membership with a cap, and totally ordered room messages.

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::{ConnId, Hub, Reply, RoomInfo};
use crate::time::Instant;
use crate::wire::{ErrorCode, MAX_BODY_LEN, ROOM_ID_LEN, RoomId};

/// A member of a room and the connection that receives its messages.
#[derive(Clone, Debug)]
pub(super) struct Member {
    pub(super) name: Arc<str>,
    pub(super) conn: ConnId,
}

/// A room: members in join order and the next sequence number to stamp.
#[derive(Debug)]
pub(super) struct Room {
    pub(super) title: Arc<str>,
    pub(super) members: Vec<Member>,
    pub(super) next_seq: u64,
    /// Members who left but still receive messages: only with the injected bug.
    #[cfg(feature = "inject-bugs")]
    pub(super) departed: Vec<Member>,
}

/// Draws before giving up on finding a free room ID (the space is 31^6, so this only
/// fails when the server is absurdly full).
const ROOM_ID_TRIES: usize = 64;

impl Hub {
    fn room_capacity(&self) -> usize {
        // A room always admits its creator, and the wire counts members in a byte.
        let cap = self.config.room_capacity.clamp(1, u8::MAX as usize);
        #[cfg(feature = "inject-bugs")]
        if self.config.bugs.admit_over_capacity {
            return cap + 1;
        }
        cap
    }

    fn user_room_count(&self, name: &Arc<str>) -> usize {
        self.users.get(name).map_or(0, |u| u.rooms.len())
    }

    pub(super) fn create_room(&mut self, conn: ConnId, name: &Arc<str>, req: u32, title: Arc<str>) {
        if self.rooms.len() >= self.config.max_rooms
            || self.user_room_count(name) >= self.config.max_rooms_per_user
        {
            return self.error(conn, req, ErrorCode::LimitReached);
        }
        let Some(room) = self.fresh_room_id() else {
            return self.error(conn, req, ErrorCode::LimitReached);
        };
        self.rooms.insert(
            room,
            Room {
                title: title.clone(),
                members: Vec::new(),
                next_seq: 1,
                #[cfg(feature = "inject-bugs")]
                departed: Vec::new(),
            },
        );
        self.add_member(conn, name, req, room);
    }

    fn fresh_room_id(&mut self) -> Option<RoomId> {
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
        if r.members.iter().any(|m| m.name == *name) {
            return self.error(conn, req, ErrorCode::AlreadyInRoom);
        }
        if r.members.len() >= capacity {
            return self.error(conn, req, ErrorCode::RoomFull);
        }
        if self.user_room_count(name) >= self.config.max_rooms_per_user {
            return self.error(conn, req, ErrorCode::LimitReached);
        }
        self.add_member(conn, name, req, room);
    }

    /// Adds `name` to an existing room it is not in, and tells everyone.
    fn add_member(&mut self, conn: ConnId, name: &Arc<str>, req: u32, room: RoomId) {
        let Some(r) = self.rooms.get_mut(&room) else {
            return;
        };
        let others: Vec<ConnId> = r.members.iter().map(|m| m.conn).collect();
        r.members.push(Member {
            name: name.clone(),
            conn,
        });
        let members = r.members.iter().map(|m| m.name.clone()).collect();
        let title = r.title.clone();
        if let Some(user) = self.users.get_mut(name) {
            user.rooms.insert(room);
        }
        self.send(
            conn,
            Reply::RoomJoined {
                req,
                room,
                title,
                members,
            },
        );
        for other in others {
            self.send(
                other,
                Reply::MemberJoined {
                    room,
                    name: name.clone(),
                },
            );
        }
    }

    pub(super) fn leave_room(&mut self, conn: ConnId, name: &Arc<str>, req: u32, room: RoomId) {
        let Some(r) = self.rooms.get(&room) else {
            return self.error(conn, req, ErrorCode::RoomNotFound);
        };
        if !r.members.iter().any(|m| m.name == *name) {
            return self.error(conn, req, ErrorCode::NotInRoom);
        }
        self.remove_member(room, name);
        self.send(conn, Reply::RoomLeft { req, room });
    }

    /// Removes `name` from `room`, tells the others, and deletes the room once empty.
    pub(super) fn remove_member(&mut self, room: RoomId, name: &Arc<str>) {
        if let Some(user) = self.users.get_mut(name) {
            user.rooms.remove(&room);
        }
        let Some(r) = self.rooms.get_mut(&room) else {
            return;
        };
        let Some(pos) = r.members.iter().position(|m| m.name == *name) else {
            return;
        };
        let _gone = r.members.remove(pos);
        #[cfg(feature = "inject-bugs")]
        if self.config.bugs.deliver_to_departed {
            r.departed.push(_gone);
        }
        let others: Vec<ConnId> = r.members.iter().map(|m| m.conn).collect();
        if r.members.is_empty() {
            self.rooms.remove(&room);
        }
        for other in others {
            self.send(
                other,
                Reply::MemberLeft {
                    room,
                    name: name.clone(),
                },
            );
        }
    }

    pub(super) fn room_message(
        &mut self,
        now: Instant,
        conn: ConnId,
        name: &Arc<str>,
        req: u32,
        room: RoomId,
        body: Arc<[u8]>,
    ) {
        if body.len() > MAX_BODY_LEN {
            return self.error(conn, req, ErrorCode::BodyTooLarge);
        }
        let Some(r) = self.rooms.get_mut(&room) else {
            return self.error(conn, req, ErrorCode::RoomNotFound);
        };
        if !r.members.iter().any(|m| m.name == *name) {
            return self.error(conn, req, ErrorCode::NotInRoom);
        }
        let seq = r.next_seq;
        r.next_seq += 1;
        #[cfg(feature = "inject-bugs")]
        if self.config.bugs.skip_sequence && seq % 5 == 0 {
            r.next_seq += 1;
        }
        self.stats.room_messages += 1;
        self.stats.deliveries += r.members.len() as u64;
        let timestamp = now.micros();
        for m in &r.members {
            self.deliveries.push_back((
                m.conn,
                Reply::RoomMessage {
                    room,
                    seq,
                    from: name.clone(),
                    timestamp,
                    body: body.clone(),
                },
            ));
        }
        #[cfg(feature = "inject-bugs")]
        for m in &r.departed {
            self.deliveries.push_back((
                m.conn,
                Reply::RoomMessage {
                    room,
                    seq,
                    from: name.clone(),
                    timestamp,
                    body: body.clone(),
                },
            ));
        }
    }

    pub(super) fn list_rooms(&mut self, conn: ConnId, req: u32) {
        let capacity = self.config.room_capacity.clamp(1, u8::MAX as usize) as u8;
        let rooms = self
            .rooms
            .iter()
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
}
