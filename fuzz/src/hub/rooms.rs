//! Rooms as the model sees them (protocol v2): durable membership that only a leave or a
//! removal ends, one sequence per room, and per member a durable cursor (what it
//! acknowledged) that bounds a window of messages pushed and not yet acknowledged.
//!
//! Retention is out of reach in this target (see `Limits::config`), so every message a
//! room ever had is in its log, and the hub's delivery rule is exact: a member online on
//! connection `c` has been pushed everything up to the room's last message, or as much as
//! its window allows, in order and without gaps.

use std::collections::{BTreeMap, BTreeSet};

use cove_core::hub::ConnId;
use cove_core::store::Records;
use cove_core::wire::RoomId;

use super::USERS;
use super::model::{Expect, Model};

/// Rooms that exist, with their members and positions.
#[derive(Clone, Debug, Default)]
pub(super) struct Rooms {
    /// Members of each existing room, by user index, in join order.
    pub(super) members: BTreeMap<RoomId, Vec<usize>>,
    /// Rooms created private.
    pub(super) private: BTreeSet<RoomId>,
    /// The last sequence number stamped in each room (0 before the first message).
    pub(super) last: BTreeMap<RoomId, u64>,
    /// Per member: the room's last sequence number when it joined, and its cursor.
    pub(super) since: BTreeMap<(usize, RoomId), u64>,
    pub(super) cursor: BTreeMap<(usize, RoomId), u64>,
}

impl Rooms {
    /// Rooms as the store has them: what a restarted hub must hold.
    pub(super) fn from_records(records: &Records) -> Rooms {
        let mut rooms = Rooms::default();
        for r in &records.rooms {
            let members: Vec<usize> = r
                .members
                .iter()
                .map(|m| {
                    USERS
                        .iter()
                        .position(|u| **u == *m.name)
                        .unwrap_or_else(|| panic!("stored member {} is not a user", m.name))
                })
                .collect();
            for (user, m) in members.iter().zip(&r.members) {
                rooms.since.insert((*user, r.room), m.since);
                rooms.cursor.insert((*user, r.room), m.cursor);
            }
            rooms.members.insert(r.room, members);
            rooms.last.insert(r.room, r.next_seq.saturating_sub(1));
            if r.private {
                rooms.private.insert(r.room);
            }
        }
        rooms
    }

    pub(super) fn exists(&self, room: RoomId) -> bool {
        self.members.contains_key(&room)
    }

    pub(super) fn is_member(&self, user: usize, room: RoomId) -> bool {
        self.members.get(&room).is_some_and(|m| m.contains(&user))
    }

    pub(super) fn last(&self, room: RoomId) -> u64 {
        self.last.get(&room).copied().unwrap_or(0)
    }

    pub(super) fn cursor(&self, user: usize, room: RoomId) -> u64 {
        self.cursor.get(&(user, room)).copied().unwrap_or(0)
    }

    pub(super) fn since(&self, user: usize, room: RoomId) -> u64 {
        self.since.get(&(user, room)).copied().unwrap_or(0)
    }

    /// The rooms `user` is a member of.
    pub(super) fn rooms_of(&self, user: usize) -> BTreeSet<RoomId> {
        let mut of = self.members.iter().filter(|(_, m)| m.contains(&user));
        let mut out = BTreeSet::new();
        for (room, _) in of.by_ref() {
            out.insert(*room);
        }
        out
    }

    /// A new room with no messages.
    pub(super) fn create(&mut self, room: RoomId, private: bool) {
        assert!(!self.exists(room), "room {room} created twice");
        self.members.insert(room, Vec::new());
        self.last.insert(room, 0);
        if private {
            self.private.insert(room);
        }
    }

    /// `user` joins: it starts after the room's last message, with nothing acknowledged.
    pub(super) fn join(&mut self, user: usize, room: RoomId) {
        let last = self.last(room);
        let members = self
            .members
            .get_mut(&room)
            .unwrap_or_else(|| panic!("joined room {room}, which does not exist"));
        assert!(
            !members.contains(&user),
            "{} joined {room} twice",
            USERS[user]
        );
        members.push(user);
        self.since.insert((user, room), last);
        self.cursor.insert((user, room), last);
    }

    /// `user` leaves or is removed; the last one out deletes the room.
    pub(super) fn leave(&mut self, user: usize, room: RoomId) {
        let Some(members) = self.members.get_mut(&room) else {
            panic!("left room {room}, which does not exist");
        };
        let before = members.len();
        members.retain(|m| *m != user);
        assert_eq!(
            members.len() + 1,
            before,
            "{} left {room} without being in it",
            USERS[user]
        );
        self.since.remove(&(user, room));
        self.cursor.remove(&(user, room));
        if members.is_empty() {
            self.members.remove(&room);
            self.last.remove(&room);
            self.private.remove(&room);
        }
    }

    /// How many messages a catch-up from `cursor` pushes, with `window` of them allowed
    /// unacknowledged: everything after the cursor, at most a window.
    pub(super) fn catch_up(&self, user: usize, room: RoomId, window: u64) -> u64 {
        (self.last(room) - self.cursor(user, room)).min(window)
    }
}

impl Model {
    /// The user logged in on `conn` as the hub sees it (a lingering connection included).
    pub(super) fn user_on(&self, conn: ConnId) -> Option<usize> {
        self.slot_of(conn)
            .and_then(|s| self.slots[s].user)
            .or_else(|| self.lingering.get(&conn).copied())
    }

    /// The user a room reply went to: it must be logged in.
    pub(super) fn member_on(&self, conn: ConnId, what: &str) -> usize {
        self.user_on(conn)
            .unwrap_or_else(|| panic!("{what} to {conn:?}, which is not logged in"))
    }

    fn window(&self) -> u64 {
        self.config.room_window as u64
    }

    /// Who gets the room message `conn` sends now, with which number: each online member
    /// whose window has room is pushed exactly it. `None` when the hub must refuse it.
    /// The model stamps the number now, as the hub will.
    pub(super) fn room_message_targets(
        &mut self,
        conn: ConnId,
        room: RoomId,
    ) -> Option<(RoomId, BTreeSet<ConnId>, u64)> {
        let sender = self.user_on(conn)?;
        if !self.room_state.is_member(sender, room) {
            return None;
        }
        let seq = self.room_state.last(room) + 1;
        let mut conns = BTreeSet::new();
        for m in &self.room_state.members[&room] {
            let Some(c) = self.conn_of_user(USERS[*m]) else {
                continue;
            };
            let pushed = self.seen_seq.get(&(c, room)).copied().unwrap_or_else(|| {
                panic!("{} is online in {room} but was never told of it", USERS[*m])
            });
            let cursor = self.room_state.cursor(*m, room);
            if pushed + 1 == seq && pushed - cursor < self.window() {
                conns.insert(c);
            }
        }
        self.room_state.last.insert(room, seq);
        Some((room, conns, seq))
    }

    /// `conn` acknowledges `room` up to `seq`: the cursor moves (never past what was
    /// pushed), and returns how many more messages the window then lets through.
    pub(super) fn ack_room(&mut self, conn: ConnId, room: RoomId, seq: u64) -> u64 {
        let Some(user) = self.user_on(conn) else {
            return 0;
        };
        if !self.room_state.is_member(user, room) {
            return 0;
        }
        let pushed = self.seen_seq[&(conn, room)];
        let cursor = self.room_state.cursor(user, room).max(seq.min(pushed));
        self.room_state.cursor.insert((user, room), cursor);
        let last = self.room_state.last(room);
        last.min(cursor + self.window()).saturating_sub(pushed)
    }

    /// Which room messages a step may push, and how many: the new message to the
    /// members with room for it, what an acknowledgement lets through, or a login's
    /// catch-up of every room the user is in (from its cursor, at most a window).
    pub(super) fn check_room_step(
        &self,
        expect: &Expect,
        pushes: &BTreeMap<(ConnId, RoomId), u64>,
        login: Option<(ConnId, usize)>,
        announced: &BTreeSet<RoomId>,
    ) {
        match expect {
            Expect::RoomMessage(Some((room, conns, _))) => {
                let got: BTreeSet<ConnId> = pushes.keys().map(|(c, _)| *c).collect();
                assert_eq!(&got, conns, "the room message's recipients");
                assert!(
                    pushes.iter().all(|((_, r), n)| r == room && *n == 1),
                    "more than the new message was pushed"
                );
            }
            Expect::AckRoom(conn, room, n) => {
                let got = pushes.get(&(*conn, *room)).copied().unwrap_or(0);
                assert_eq!(got, *n, "an acknowledgement let {got} messages through");
                assert_eq!(pushes.len(), usize::from(got > 0), "pushes to others");
            }
            _ => match login {
                Some((conn, _)) => assert!(
                    pushes.keys().all(|(c, _)| *c == conn),
                    "a login pushed to other connections"
                ),
                None => assert!(pushes.is_empty(), "room messages out of nowhere"),
            },
        }
        if let Some((conn, user)) = login {
            assert_eq!(
                announced,
                &self.room_state.rooms_of(user),
                "the rooms announced at {}'s login",
                USERS[user]
            );
            for room in announced {
                let got = pushes.get(&(conn, *room)).copied().unwrap_or(0);
                let want = self.room_state.catch_up(user, *room, self.window());
                assert_eq!(got, want, "{}'s catch-up of {room}", USERS[user]);
            }
        } else {
            assert!(announced.is_empty(), "rooms announced without a login");
        }
    }

    /// The hub's rooms are the model's, within every room limit.
    pub(super) fn check_rooms(&self) {
        let hub = self.driver.hub();
        let mut per_user: BTreeMap<usize, usize> = BTreeMap::new();
        for (room, members) in &self.room_state.members {
            let mut got: Vec<&str> = hub
                .room_members(*room)
                .unwrap_or_else(|| panic!("room {room} is gone from the hub"))
                .collect();
            let mut want: Vec<&str> = members.iter().map(|u| USERS[*u]).collect();
            got.sort_unstable();
            want.sort_unstable();
            assert_eq!(got, want, "the members of {room}");
            assert!(!members.is_empty(), "an empty room lives on");
            assert!(
                members.len() <= self.config.room_capacity,
                "room {room} has {} members, capacity {}",
                members.len(),
                self.config.room_capacity
            );
            for m in members {
                *per_user.entry(*m).or_default() += 1;
            }
        }
        assert!(
            self.room_state.members.len() <= self.config.max_rooms,
            "more rooms than allowed"
        );
        for (user, n) in per_user {
            assert!(
                n <= self.config.max_rooms_per_user,
                "{} is in {n} rooms",
                USERS[user]
            );
        }
        for room in &self.rooms {
            if !self.room_state.exists(*room) {
                assert!(
                    hub.room_members(*room).is_none(),
                    "room {room} outlived its members"
                );
            }
        }
    }
}
