//! Helpers of the durable-rooms conformance tests: connecting with or without automatic
//! room acknowledgements, collecting everything before a round trip, and reading
//! catch-up, history and login announcements.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use cove::config::Limits;
use cove_core::crypto::Identity;
use cove_core::hub::Reply;
use cove_core::wire::{AuthMode, ErrorCode, RoomId};
use cove_std::client::{ClientOptions, Connection, Event};

use super::*;

/// No room messages.
pub const NONE: &[(u64, String)] = &[];

/// Limits with the rate limit out of the way, for tests that send hundreds of messages.
pub fn fast(limits: Limits) -> Limits {
    Limits {
        rate: Some(1_000_000),
        rate_burst: Some(1_000_000),
        ..limits
    }
}

/// Connects to `s` as `name`, acknowledging room messages on receipt if `auto_ack`.
pub fn connect_as(
    s: &TestServer,
    name: &str,
    mode: AuthMode,
    id: &Identity,
    auto_ack: bool,
) -> Connection {
    let mut o = ClientOptions::new(name, mode, id.clone());
    o.config.auto_ack_rooms = auto_ack;
    s.connect_with(o).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Registers `name` with a client that acknowledges room messages on receipt.
pub fn register_auto_ack(s: &TestServer, name: &str) -> Connection {
    let id = Identity::generate(&mut cove_std::os_rng());
    connect_as(s, name, AuthMode::Register, &id, true)
}

/// Connects to a `cove serve` process at `addr`, pinning `key` if known.
pub fn cli_connect(
    addr: SocketAddr,
    name: &str,
    mode: AuthMode,
    id: &Identity,
    key: Option<[u8; 32]>,
) -> Connection {
    let mut o = ClientOptions::new(name, mode, id.clone());
    o.config.server_key = key;
    o.connect_timeout = T;
    cove_std::client::connect(addr, o).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Everything the server sent `c` (and nobody took yet) before the answer to a request
/// sent now: with requests handled in order, that is all the server had pushed by then.
pub fn until_round_trip(c: &mut Connection) -> Vec<Reply> {
    let req = c.list_users().expect("list users");
    let deadline = Instant::now() + T;
    let mut got = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match c.events().recv_timeout(left) {
            Some(Event::Message(Reply::UserList { req: r, .. })) if r == req => return got,
            Some(Event::Message(r)) => got.push(r),
            Some(other) => panic!("{other:?} before the round trip; before it: {got:?}"),
            None => panic!("timed out waiting for the round trip; before it: {got:?}"),
        }
    }
}

/// The messages of `room` among `replies`: sequence number and body.
pub fn room_msgs(room: RoomId, replies: &[Reply]) -> Vec<(u64, String)> {
    replies
        .iter()
        .filter_map(|r| match r {
            Reply::RoomMessage {
                room: r, seq, body, ..
            } if *r == room => Some((*seq, String::from_utf8_lossy(body).into_owned())),
            _ => None,
        })
        .collect()
}

/// What `room_msgs` must return for sequence numbers `seqs` sent as "m{seq}".
pub fn expected(seqs: impl IntoIterator<Item = u64>) -> Vec<(u64, String)> {
    seqs.into_iter().map(|i| (i, format!("m{i}"))).collect()
}

/// Sends "m{i}" for each `i`, then makes sure the server handled them all.
pub fn send_all(c: &mut Connection, room: RoomId, seqs: impl IntoIterator<Item = u64>) {
    for i in seqs {
        c.send_room(room, format!("m{i}").as_bytes()).expect("send");
    }
    sync(c);
}

/// Waits for the reply to `req` and returns its error code (panics on anything else).
pub fn refused(c: &mut Connection, req: u32) -> ErrorCode {
    let r = reply(c, req);
    error_code(&r).unwrap_or_else(|| panic!("expected an error, got {r:?}"))
}

/// Waits for `Ok` to `req`.
pub fn ok(c: &mut Connection, req: u32) {
    match reply(c, req) {
        Reply::Ok { .. } => {}
        other => panic!("expected Ok, got {other:?}"),
    }
}

/// The login announcement of `room` among `replies`: its members, sorted, and its admin.
pub fn announced(room: RoomId, replies: &[Reply]) -> Option<(Vec<String>, Arc<str>)> {
    replies.iter().find_map(|r| match r {
        Reply::RoomJoined {
            req: 0,
            room: r,
            members,
            admin,
            ..
        } if *r == room => {
            let mut names: Vec<String> = members.iter().map(|m| m.to_string()).collect();
            names.sort_unstable();
            Some((names, admin.clone()))
        }
        _ => None,
    })
}

/// Checks a login's catch-up: the room is announced (with req 0) before its messages,
/// which are exactly `want`, in order.
pub fn assert_catch_up(room: RoomId, replies: &[Reply], want: &[(u64, String)]) {
    let joined = replies
        .iter()
        .position(|r| matches!(r, Reply::RoomJoined { req: 0, room: r, .. } if *r == room))
        .unwrap_or_else(|| panic!("room not announced at login: {replies:?}"));
    let first_msg = replies
        .iter()
        .position(|r| matches!(r, Reply::RoomMessage { room: r, .. } if *r == room));
    if let Some(i) = first_msg {
        assert!(joined < i, "announced before its messages: {replies:?}");
    }
    assert_eq!(room_msgs(room, replies), want);
}

/// The answer to one history request: messages (seq, body), then `first_available`.
pub fn history(
    c: &mut Connection,
    room: RoomId,
    before: u64,
    limit: u8,
) -> (Vec<(u64, String)>, u64) {
    let req = c.fetch_history(room, before, limit).expect("fetch history");
    let mut msgs = Vec::new();
    loop {
        match reply(c, req) {
            Reply::HistoryMessage {
                room: r, seq, body, ..
            } => {
                assert_eq!(r, room);
                msgs.push((seq, String::from_utf8_lossy(&body).into_owned()));
            }
            Reply::HistoryDone {
                room: r,
                first_available,
                count,
                ..
            } => {
                assert_eq!(r, room);
                assert_eq!(usize::from(count), msgs.len(), "count matches the messages");
                return (msgs, first_available);
            }
            other => panic!("expected history, got {other:?}"),
        }
    }
}

/// alice, carol and bob in a new room titled `title`, where bob's program takes one event
/// and then never another: his reader thread blocks, so the server's writes to him stall.
pub fn room_with_stalled_bob(
    s: &TestServer,
    title: &str,
) -> (Connection, Connection, Connection, RoomId) {
    let (mut alice, _) = s.register("alice");
    let (mut carol, _) = s.register("carol");
    let id = Identity::generate(&mut cove_std::os_rng());
    let mut opts = ClientOptions::new("bob", AuthMode::Register, id);
    opts.event_queue = 1;
    let mut bob = s.connect_with(opts).expect("bob");
    let room = create_room(&mut alice, title);
    join(&mut carol, room);
    join(&mut bob, room);
    sync(&mut carol);
    (alice, carol, bob, room)
}
