//! A cove client for the generator: the core's sans-IO client, registered with a fresh
//! key, in plaintext (non-MLS) public rooms, acknowledging room messages in batches.

use cove_core::client::{Client, ClientConfig, ClientEvent};
use cove_core::crypto::{Identity, RING, preferred_suite};
use cove_core::wire::{AuthMode, ErrorCode, RoomId, ServerMsg};

use super::endpoint::{Cx, Endpoint, Member, Status};

/// Output queue per connection, in bytes: about a hundred 100-byte messages.
const TX: usize = 16 * 1024;
/// Largest message this client encodes; bodies up to [`MAX_BODY`].
const MSG: usize = 4096;
/// Largest body `cove bench` sends.
pub const MAX_BODY: usize = 4000;
/// Largest frame the server may send this client (announced in the handshake).
pub const MAX_FRAME: u32 = 16 * 1024;

type BenchClient = Client<TX, MSG>;

/// What a request sent during the setup was for.
#[derive(Clone, Copy)]
enum Request {
    Create(usize),
    Join(usize),
}

/// One generator connection to a cove server.
pub struct CoveEp {
    client: Box<BenchClient>,
    /// Room IDs, in the order of [`Member::rooms`].
    ids: Vec<Option<RoomId>>,
    /// Per room: highest sequence number received, and how many are unacknowledged.
    acks: Vec<(u64, u32)>,
    /// Acknowledge once this many are unacknowledged in a room.
    ack_every: u32,
    pending: Vec<(u32, Request)>,
    ready: bool,
    failure: Option<String>,
    ended: bool,
}

fn hint(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::RateLimited => {
            " (a rate limit of `cove serve` is too low for this load: --rate, --rate-burst, \
             --handshake-rate, --registration-burst; see SERVER LIMITS in `cove bench --help`)"
        }
        ErrorCode::RoomFull => " (raise `cove serve --room-capacity` to at least --members)",
        ErrorCode::LimitReached => {
            " (a limit of `cove serve`: --max-connections, --max-connections-per-address, \
             --max-unauthenticated, --max-unauthenticated-per-address, --max-rooms or \
             --max-rooms-per-user; see SERVER LIMITS in `cove bench --help`)"
        }
        ErrorCode::UserExists => " (a name clash: run again)",
        ErrorCode::SendQueueExceeded => " (the server cut off a client it thought too slow)",
        _ => "",
    }
}

impl CoveEp {
    /// Starts connection `name` (registering a fresh identity); the handshake's first
    /// message is queued.
    pub fn new(
        cx: &mut Cx<'_>,
        name: &str,
        room_count: usize,
        ack_every: u32,
    ) -> Result<CoveEp, String> {
        let identity = Identity::generate(&mut cove_std::os_rng());
        let mut config = ClientConfig::new(preferred_suite(), AuthMode::Register);
        config.max_frame = MAX_FRAME;
        config.auto_ack_rooms = false;
        config.auto_ack_dms = true;
        let client = Client::new(
            cx.core_now,
            config,
            &RING,
            &identity,
            name,
            &mut cove_std::os_rng(),
        )
        .map_err(|e| format!("cannot start a handshake: {e:?}"))?;
        Ok(CoveEp {
            client: Box::new(client),
            ids: vec![None; room_count],
            acks: vec![(0, 0); room_count],
            ack_every: ack_every.max(1),
            pending: Vec::new(),
            ready: false,
            failure: None,
            ended: false,
        })
    }

    fn answer(&mut self, req: u32) -> Option<Request> {
        let i = self.pending.iter().position(|(r, _)| *r == req)?;
        Some(self.pending.swap_remove(i).1)
    }

    fn fail(&mut self, cx: &mut Cx<'_>, what: String) {
        if cx.running {
            cx.refused(|| what);
        } else if self.failure.is_none() {
            self.failure = Some(what);
        }
    }

    fn message(&mut self, cx: &mut Cx<'_>, me: &mut Member, msg: ServerMsg<'_>) {
        match msg {
            ServerMsg::RoomMessage {
                room, seq, body, ..
            } => {
                cx.deliver(me, body);
                if let Some(j) = self.ids.iter().position(|id| *id == Some(room)) {
                    let a = &mut self.acks[j];
                    a.0 = a.0.max(seq);
                    a.1 += 1;
                }
            }
            ServerMsg::RoomJoined { req, room, .. } if req != 0 => match self.answer(req) {
                Some(Request::Create(j)) => {
                    self.ids[j] = Some(room);
                    if let (Ok(mut ids), Some(&r)) = (cx.shared.room_ids.lock(), me.rooms.get(j)) {
                        if let Some(slot) = ids.get_mut(r as usize) {
                            *slot = Some(room);
                        }
                    }
                }
                Some(Request::Join(j)) => self.ids[j] = Some(room),
                None => {}
            },
            ServerMsg::Error { req, code, text } => {
                let what = match self.answer(req) {
                    Some(Request::Create(_)) => "creating a room",
                    Some(Request::Join(_)) => "joining a room",
                    None => "a request",
                };
                let h = hint(code);
                self.fail(
                    cx,
                    format!(
                        "the server refused {what}: {} ({text}){h}",
                        code.description()
                    ),
                );
            }
            _ => {}
        }
    }
}

impl Endpoint for CoveEp {
    fn output(&self) -> &[u8] {
        self.client.pending_transmit()
    }

    fn advance(&mut self, n: usize) {
        self.client.advance_transmit(n);
    }

    fn input(&mut self, buf: &mut [u8], cx: &mut Cx<'_>, me: &mut Member) -> usize {
        let got = self.client.handle_input(cx.core_now, buf);
        match got.event {
            Some(ClientEvent::LoggedIn { .. }) => self.ready = true,
            Some(ClientEvent::Message(msg)) => self.message(cx, me, msg),
            Some(ClientEvent::Closed { code, by_peer }) => {
                let who = if by_peer {
                    "the server closed"
                } else {
                    "closed"
                };
                let why = format!("{who} the connection: {}{}", code.description(), hint(code));
                self.ended(&why);
            }
            None => {}
        }
        got.consumed
    }

    fn after_input(&mut self, cx: &mut Cx<'_>) {
        for j in 0..self.acks.len() {
            let (seq, unacked) = self.acks[j];
            if unacked < self.ack_every {
                continue;
            }
            let Some(room) = self.ids[j] else { continue };
            if self.client.ack_room(cx.core_now, room, seq).is_ok() {
                self.acks[j].1 = 0;
                cx.counters.acks += 1;
            }
        }
    }

    fn queue(&mut self, cx: &mut Cx<'_>, j: usize, body: &[u8]) -> bool {
        let Some(room) = self.ids.get(j).copied().flatten() else {
            return false;
        };
        self.client.send_room(cx.core_now, room, body).is_ok()
    }

    fn create(&mut self, cx: &mut Cx<'_>, me: &Member, j: usize) {
        let title = format!("bench {}", me.rooms.get(j).copied().unwrap_or(0));
        match self.client.create_room(cx.core_now, &title) {
            Ok(req) => self.pending.push((req, Request::Create(j))),
            Err(e) => self.fail(cx, format!("cannot create a room: {e}")),
        }
    }

    fn join(&mut self, cx: &mut Cx<'_>, me: &Member, j: usize) {
        let r = me.rooms.get(j).copied().unwrap_or(0);
        let id = cx
            .shared
            .room_ids
            .lock()
            .ok()
            .and_then(|ids| ids.get(r as usize).copied().flatten());
        let Some(id) = id else {
            self.fail(cx, format!("room {r} was not created"));
            return;
        };
        match self.client.join_room(cx.core_now, id) {
            Ok(req) => self.pending.push((req, Request::Join(j))),
            Err(e) => self.fail(cx, format!("cannot join a room: {e}")),
        }
    }

    fn tick(&mut self, cx: &mut Cx<'_>) {
        self.client.handle_timeout(cx.core_now);
        if let Some(ClientEvent::Closed { code, .. }) = self.client.poll_event() {
            self.ended(&format!("closed the connection: {}", code.description()));
        }
    }

    fn ended(&mut self, why: &str) {
        if !self.ended {
            self.ended = true;
            self.client.handle_eof(cove_core::Instant(0));
            if self.failure.is_none() {
                self.failure = Some(why.to_string());
            }
        }
    }

    fn status(&self) -> Status {
        Status {
            ready: self.ready,
            pending: self.pending.len(),
            failure: self.failure.clone(),
        }
    }

    fn closed(&self) -> bool {
        self.ended
    }
}
