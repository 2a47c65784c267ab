//! What one step of the driver produced, checked against the model.

use std::collections::{BTreeMap, BTreeSet};

use cove_core::crypto::TAG_LEN;
use cove_core::hub::{ConnId, Reply};
use cove_core::server::encode_reply;
use cove_core::store::StoreOp;
use cove_core::wire::{AuthMode, DEFAULT_MAX_FRAME, RoomId};

use super::USERS;
use super::model::{Expect, Model};

impl Model {
    /// Checks what the last step produced (`Driver::last_step`) against the model, and
    /// queues its operations and replies for the pipeline checks.
    pub(super) fn observe(&mut self, expect: Expect, connecting: Option<(usize, usize)>) {
        let step = self.driver.last_step().clone();
        for op in &step.ops {
            if let StoreOp::DmQueued(dm) = op {
                self.queued_to.insert(dm.msg_id, dm.to.clone());
            }
        }
        self.emitted += step.ops.len() as u64;
        self.unbatched.extend(step.ops);
        for (conn, reply) in &step.replies {
            self.unreleased
                .push_back((self.emitted, *conn, reply.clone()));
        }
        let replies = step.replies;
        if let Expect::Fetch(conn) = expect {
            self.last_dm.remove(&conn);
        }
        let mut closing = Vec::new();
        // Room messages pushed per (connection, room) in this step; rooms announced at a
        // login; the history page's messages and its end.
        let mut pushes: BTreeMap<(ConnId, RoomId), u64> = BTreeMap::new();
        let mut announced = BTreeSet::new();
        let mut login = None;
        let mut history = Vec::new();
        let mut history_done = None;
        for (conn, reply) in replies {
            if !self.lingering.contains_key(&conn) {
                assert!(
                    !self.closed.contains(&conn),
                    "{reply:?} addressed to closed connection {conn:?}"
                );
                assert!(
                    !closing.contains(&conn),
                    "{reply:?} addressed after Close to {conn:?}"
                );
                assert!(
                    self.slot_of(conn).is_some(),
                    "reply to unknown connection {conn:?}"
                );
            }
            let mut plain = Vec::new();
            encode_reply(&reply, &mut self.scratch, &mut plain)
                .unwrap_or_else(|e| panic!("{reply:?} does not encode: {e:?}"));
            assert!(
                plain.len() + TAG_LEN <= DEFAULT_MAX_FRAME as usize,
                "a {}-byte reply exceeds a client's frame once sealed",
                plain.len()
            );
            match reply {
                Reply::Auth { mode, result } => {
                    let (slot, user) = connecting.expect("Auth outside a connect");
                    assert_eq!(self.slots[slot].conn, Some(conn));
                    if result.is_ok() {
                        login = Some((conn, user));
                        self.conn_users.insert(conn, user);
                        self.slots[slot].user = Some(user);
                        self.last_dm.remove(&conn);
                        self.outstanding.remove(&conn);
                        if mode == AuthMode::Register {
                            // Promised once this reply is released (see `release`).
                            self.registered.insert(conn, user);
                        }
                    }
                }
                Reply::Close { .. } => closing.push(conn),
                Reply::RoomJoined {
                    req,
                    room,
                    members,
                    private,
                    ..
                } => {
                    assert!(members.len() <= self.config.room_capacity);
                    let user = self.member_on(conn, "RoomJoined");
                    if req == 0 {
                        // A login announces each of the user's rooms before its catch-up.
                        assert!(
                            self.room_state.is_member(user, room),
                            "{} was announced {room}, which is not one of its rooms",
                            USERS[user]
                        );
                        assert!(announced.insert(room), "{room} announced twice");
                        let cursor = self.room_state.cursor(user, room);
                        self.seen_seq.insert((conn, room), cursor);
                    } else {
                        if matches!(expect, Expect::Create(creator) if creator == conn) {
                            self.room_state.create(room, private);
                            // A new room (perhaps a deleted one's ID): nothing seen of it.
                            self.seen_seq.retain(|(_, r), _| *r != room);
                        }
                        self.room_state.join(user, room);
                        self.seen_seq
                            .insert((conn, room), self.room_state.last(room));
                    }
                    let mut got: Vec<&str> = members.iter().map(|m| &**m).collect();
                    let mut want: Vec<&str> = self.room_state.members[&room]
                        .iter()
                        .map(|u| USERS[*u])
                        .collect();
                    got.sort_unstable();
                    want.sort_unstable();
                    assert_eq!(got, want, "RoomJoined lists the wrong members of {room}");
                    if !self.rooms.contains(&room) {
                        self.rooms.push(room);
                    }
                }
                Reply::RoomLeft { room, .. } => {
                    let user = self.member_on(conn, "RoomLeft");
                    self.room_state.leave(user, room);
                    self.seen_seq.remove(&(conn, room));
                }
                Reply::Ok { req } => {
                    if let Expect::Remove {
                        req: asked,
                        room,
                        target: Some(target),
                    } = &expect
                        && *asked == req
                    {
                        self.room_state.leave(*target, *room);
                        if let Some(c) = self.conn_of_user(USERS[*target]) {
                            self.seen_seq.remove(&(c, *room));
                        }
                    }
                }
                Reply::MemberJoined { room, .. } | Reply::MemberLeft { room, .. } => {
                    let user = self.member_on(conn, "a member notice");
                    assert!(
                        self.room_state.is_member(user, room),
                        "{} told about {room}'s members without being one",
                        USERS[user]
                    );
                }
                Reply::RoomList { rooms, .. } => {
                    assert!(rooms.len() <= self.config.max_list_entries);
                    for r in rooms {
                        assert!(usize::from(r.members) <= self.config.room_capacity);
                        assert!(
                            !self.room_state.private.contains(&r.room),
                            "private room {} listed",
                            r.room
                        );
                    }
                }
                Reply::RoomGap { room, .. } => panic!("a gap in {room}, with retention off"),
                Reply::HistoryMessage { req, seq, .. } => history.push((req, seq)),
                Reply::HistoryDone { req, count, .. } => {
                    assert!(history_done.is_none(), "two history pages in one step");
                    history_done = Some((req, count));
                }
                Reply::UserList { users, .. } => {
                    assert!(users.len() <= self.config.max_list_entries);
                }
                Reply::RoomMessage { room, seq, .. } => {
                    let user = self.member_on(conn, "RoomMessage");
                    assert!(
                        self.room_state.is_member(user, room),
                        "{room}'s message {seq} pushed to {}, not a member",
                        USERS[user]
                    );
                    let seen = self
                        .seen_seq
                        .get_mut(&(conn, room))
                        .unwrap_or_else(|| panic!("{room}'s {seq} before {conn:?} joined it"));
                    // One path for live messages and catch-up: in order, no gap, no repeat.
                    assert_eq!(seq, *seen + 1, "{conn:?} got {room}'s {seq} after {seen}");
                    *seen = seq;
                    assert!(
                        seq <= self.room_state.last(room),
                        "{room}'s {seq} before it was sent"
                    );
                    let unacked = seq - self.room_state.cursor(user, room);
                    assert!(
                        unacked <= self.config.room_window as u64,
                        "{unacked} of {room}'s messages pushed past a window of {}",
                        self.config.room_window
                    );
                    *pushes.entry((conn, room)).or_default() += 1;
                }
                Reply::IncomingDm { msg_id, .. } => {
                    let set = self.outstanding.entry(conn).or_default();
                    set.insert(msg_id);
                    assert!(
                        set.len() <= self.config.dm_window,
                        "{} direct messages pushed past a window of {}",
                        set.len(),
                        self.config.dm_window
                    );
                    let last = self.last_dm.entry(conn).or_insert(0);
                    assert!(msg_id > *last, "direct message {msg_id} after {last}");
                    *last = msg_id;
                    if !self.dms.contains(&msg_id) {
                        self.dms.push(msg_id);
                    }
                }
                Reply::MessageAck { msg_id, .. } if msg_id != 0 => {
                    assert!(
                        self.handed_out.insert(msg_id),
                        "direct-message ID {msg_id} given out twice"
                    );
                    self.dms.push(msg_id);
                }
                _ => {}
            }
        }
        self.check_room_step(&expect, &pushes, login, &announced);
        if let Expect::History { req, before, count } = expect {
            let page: Vec<u64> = history
                .iter()
                .filter(|(r, _)| *r == req)
                .map(|(_, s)| *s)
                .collect();
            assert_eq!(page.len(), history.len(), "history for another request");
            assert!(page.windows(2).all(|w| w[0] < w[1]), "history out of order");
            assert!(
                page.iter().all(|s| *s < before),
                "history at or after {before}"
            );
            match count {
                Some(n) => {
                    assert_eq!(page.len() as u64, n, "a history page of the wrong size");
                    assert_eq!(history_done, Some((req, n as u16)), "HistoryDone");
                }
                None => assert!(page.is_empty() && history_done.is_none()),
            }
        } else {
            assert!(history.is_empty() && history_done.is_none());
        }
        // The connection closes once its `Close` is released; the model is done with it now
        // (but see `lingering`).
        for conn in closing {
            let user = self.slot_of(conn).and_then(|s| self.slots[s].user);
            self.forget_conn(conn);
            if let Some(user) = user
                && self.driver.hub().user_of(conn).is_some()
            {
                self.lingering.insert(conn, user);
            }
        }
        let hub = self.driver.hub();
        self.lingering.retain(|c, _| hub.user_of(*c).is_some());
    }
}
