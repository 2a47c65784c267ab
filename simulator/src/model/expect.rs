//! What one hub step must send, room by room, and the comparison with what it sent.
//!
//! The model builds, for each `(connection, room)`, the exact list of room replies the
//! step must emit in order (joins, gaps, messages, notices, invitations, history); the
//! hub's replies are cut the same way. Any difference is a violation, named after the
//! invariant the first differing item belongs to: a gap → "retention gap", a history item
//! → "history", a message to someone who is not a member → "delivery to non-member", a
//! message skipped, withheld or repeated → "room exactly once", a message past the window
//! → "room window", a member notice → "membership notices", anything else → "rooms".

use std::collections::BTreeMap;
use std::sync::Arc;

use cove_core::hub::{ConnId, Reply};
use cove_core::wire::RoomId;

use super::{Checked, Model, Violation, user_of_name};
use crate::check::{history, retention, room_delivery};

/// One room reply, with names as user indices (`usize::MAX` for a name that is no user).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Item {
    /// `RoomJoined`: after a create or join (its `req`), or announced at login (`req` 0).
    Joined {
        req: u32,
        members: Vec<usize>,
        private: bool,
        admin: usize,
        title: Arc<str>,
    },
    /// `RoomGap { first_available }`.
    Gap(u64),
    /// `RoomMessage` with this sequence number (its sender and body are checked apart).
    Msg(u64),
    /// `RoomLeft` answering request `req`.
    Left(u32),
    /// `RoomRemoved` by the admin `by`.
    Removed { by: usize },
    /// `MemberJoined` of this user.
    MemberJoined(usize),
    /// `MemberLeft` of this user.
    MemberLeft(usize),
    /// `RoomInvited` by `by`.
    Invited { by: usize, title: Arc<str> },
    /// `RoomTitle`.
    Title(Arc<str>),
    /// `HistoryMessage` of page `req`.
    History { req: u32, seq: u64 },
    /// `HistoryDone` of page `req`.
    HistoryDone { req: u32, first: u64, count: u16 },
}

/// Room replies per `(connection, room)`, in the order sent.
pub(crate) type Streams = BTreeMap<(ConnId, RoomId), Vec<Item>>;

/// Appends `item` to the stream of `(conn, room)`.
pub(crate) fn push(out: &mut Streams, conn: ConnId, room: RoomId, item: Item) {
    out.entry((conn, room)).or_default().push(item);
}

fn idx(name: &str) -> usize {
    user_of_name(name).unwrap_or(usize::MAX)
}

/// The room replies among `deliveries`, cut into streams.
fn actual(deliveries: &[(ConnId, Reply)]) -> Streams {
    let mut out = Streams::new();
    for (conn, reply) in deliveries {
        let (room, item) = match reply {
            Reply::RoomJoined {
                req,
                room,
                title,
                members,
                private,
                direct: _,
                admin,
            } => (
                *room,
                Item::Joined {
                    req: *req,
                    members: members.iter().map(|m| idx(m)).collect(),
                    private: *private,
                    admin: idx(admin),
                    title: title.clone(),
                },
            ),
            Reply::RoomGap {
                room,
                first_available,
            } => (*room, Item::Gap(*first_available)),
            Reply::RoomMessage { room, seq, .. } => (*room, Item::Msg(*seq)),
            Reply::RoomLeft { req, room } => (*room, Item::Left(*req)),
            Reply::RoomRemoved { room, by } => (*room, Item::Removed { by: idx(by) }),
            Reply::MemberJoined { room, name } => (*room, Item::MemberJoined(idx(name))),
            Reply::MemberLeft { room, name } => (*room, Item::MemberLeft(idx(name))),
            Reply::RoomInvited { room, title, by } => (
                *room,
                Item::Invited {
                    by: idx(by),
                    title: title.clone(),
                },
            ),
            Reply::RoomTitle { room, title } => (*room, Item::Title(title.clone())),
            Reply::HistoryMessage { req, room, seq, .. } => (
                *room,
                Item::History {
                    req: *req,
                    seq: *seq,
                },
            ),
            Reply::HistoryDone {
                req,
                room,
                first_available,
                count,
            } => (
                *room,
                Item::HistoryDone {
                    req: *req,
                    first: *first_available,
                    count: *count,
                },
            ),
            _ => continue,
        };
        push(&mut out, *conn, room, item);
    }
    out
}

impl Model {
    /// Compares one step's room replies with `expected`, and every room or history
    /// message's sender and body with the log.
    pub(super) fn compare_streams(
        &self,
        expected: &Streams,
        deliveries: &[(ConnId, Reply)],
    ) -> Checked {
        let actual = actual(deliveries);
        let empty = Vec::new();
        for key in expected.keys().chain(actual.keys()) {
            let exp = expected.get(key).unwrap_or(&empty);
            let act = actual.get(key).unwrap_or(&empty);
            if exp != act {
                return Err(self.classify(key.0, key.1, exp, act));
            }
        }
        self.check_contents(deliveries)
    }

    /// Names the first difference between what a stream should hold and what it held.
    fn classify(&self, conn: ConnId, room: RoomId, exp: &[Item], act: &[Item]) -> Violation {
        let i = exp.iter().zip(act).take_while(|(a, b)| a == b).count();
        let (e, a) = (exp.get(i), act.get(i));
        let who = self.conns.get(&conn).copied();
        let member = who.and_then(|u| self.rooms.get(&room).and_then(|r| r.member(u)));
        let is_history =
            |x: Option<&Item>| matches!(x, Some(Item::History { .. } | Item::HistoryDone { .. }));
        let is_notice =
            |x: Option<&Item>| matches!(x, Some(Item::MemberJoined(_) | Item::MemberLeft(_)));
        let check = match (e, a) {
            (Some(Item::Gap(_)), _) | (_, Some(Item::Gap(_))) => retention::GAP,
            _ if is_history(e) || is_history(a) => history::CHECK,
            (_, Some(Item::Msg(_))) if member.is_none() => room_delivery::NON_MEMBER,
            (Some(Item::Msg(_)), _) => room_delivery::EXACTLY_ONCE,
            // Past what the model pushed (after this step): beyond the window; at or
            // below it: a repeat.
            (_, Some(Item::Msg(seq))) => match member {
                Some(m) if *seq <= m.pushed => room_delivery::EXACTLY_ONCE,
                _ => room_delivery::WINDOW,
            },
            _ if is_notice(e) || is_notice(a) => "membership notices",
            _ => "rooms",
        };
        let who = who.map_or_else(|| "no logged-in user".to_string(), |u| format!("u{u}"));
        let state = member.map_or_else(
            || "not a member".to_string(),
            |m| {
                format!(
                    "member since #{}, cursor #{}, pushed #{}",
                    m.since, m.cursor, m.pushed
                )
            },
        );
        Violation::new(
            check,
            format!(
                "{conn:?} ({who}, {state}) in {room:?}: item {i} should be {e:?}, hub sent {a:?} \
                 (expected {} items: {}; sent {}: {})",
                exp.len(),
                brief(exp),
                act.len(),
                brief(act)
            ),
        )
    }

    /// Every room message and history message carries what the log holds for its seq.
    fn check_contents(&self, deliveries: &[(ConnId, Reply)]) -> Checked {
        for (_, reply) in deliveries {
            let (room, seq, from, body, check) = match reply {
                Reply::RoomMessage {
                    room,
                    seq,
                    from,
                    body,
                    ..
                } => (room, seq, from, body, "room integrity"),
                Reply::HistoryMessage {
                    room,
                    seq,
                    from,
                    body,
                    ..
                } => (room, seq, from, body, history::CHECK),
                _ => continue,
            };
            let Some(r) = self.rooms.get(room) else {
                return Err(Violation::new(
                    check,
                    format!("{room:?}#{seq} sent from a room that does not exist"),
                ));
            };
            let agrees = self
                .room_message(r.inc, *seq)
                .is_some_and(|e| **from == *self.names[e.from] && *e.body == **body);
            if !agrees {
                return Err(Violation::new(
                    check,
                    format!("{room:?}#{seq} sent with a sender or body the log does not hold"),
                ));
            }
        }
        Ok(())
    }
}

/// A short rendering of a stream: its first items.
fn brief(items: &[Item]) -> String {
    let mut s: Vec<String> = items.iter().take(6).map(|i| format!("{i:?}")).collect();
    if items.len() > 6 {
        s.push(format!("… {} more", items.len() - 6));
    }
    s.join(", ")
}
