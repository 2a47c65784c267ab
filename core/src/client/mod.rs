//! The client state machine. Needs no allocator: the caller owns the read buffer, the
//! transmit queue is a fixed-size `heapless` buffer.
//!
//! States (seed 000's CONNECTED / IN_LOBBY / IN_ROOM stay visible in [`ClientState`]):
//!
//! ```text
//! Handshaking --SYN-ACK ok, ACK sent--> Authenticating --AuthResponse ok--> InLobby
//! InLobby <--join/leave--> InRoom (in one or more rooms)
//! any --close, error, timeout--> Closed
//! ```
//!
//! # Driving it
//!
//! After [`Client::new`], write [`Client::pending_transmit`] to the socket. Then loop:
//! read into your buffer and call [`Client::handle_input`] until it consumes nothing,
//! handling each returned event (its data borrows your buffer); after every call drain
//! [`Client::poll_event`], write [`Client::pending_transmit`], and arm a timer for
//! [`Client::poll_timeout`] that calls [`Client::handle_timeout`].

use rand_core::CryptoRng;

use crate::crypto::{CryptoProvider, Identity};
use crate::handshake::{ACK_MAX_LEN, ClientHandshake, HandshakeError, SYN_LEN};
use crate::keepalive::{Keepalive, KeepaliveAction};
use crate::session::Session;
use crate::time::Instant;
use crate::wire::{
    Alert, ClientMsg, ErrorCode, FrameError, FrameType, HEADER_LEN, RoomId, ServerMsg,
    decode_frame, encode_header,
};

mod commands;
mod types;

pub use types::*;

// The client has no allocator, so the handshake state lives inline (and is dropped once
// the handshake is done) rather than behind a Box.
#[allow(clippy::large_enum_variant)]
enum Phase {
    AwaitSynAck(ClientHandshake),
    AwaitAuth(Session),
    Ready(Session),
    Closed,
}

/// Largest inner message a default [`Client`] encodes (bodies a little under this):
/// small enough for a board's RAM.
pub const MAX_CLIENT_MESSAGE: usize = 8 * 1024;

/// Largest inner message a [`LargeClient`] encodes: every body the protocol allows
/// ([`crate::wire::MAX_BODY_LEN`]), and one byte more, so the server's refusal of an
/// oversize body can be seen.
pub const LARGE_CLIENT_MESSAGE: usize = 64 * 1024;

/// A client for hosts with memory to spare (about 150 KiB; keep it boxed): it sends
/// bodies up to the protocol's largest. The std adapters use it.
pub type LargeClient = Client<{ 80 * 1024 }, LARGE_CLIENT_MESSAGE>;

/// A cove client connection. `TX` is the transmit queue's size in bytes, `MSG` the
/// largest inner message it encodes.
pub struct Client<const TX: usize = 32_768, const MSG: usize = MAX_CLIENT_MESSAGE> {
    config: ClientConfig,
    phase: Phase,
    tx: heapless::Vec<u8, TX>,
    tx_pos: usize,
    plain: [u8; MSG],
    next_req: u32,
    rooms: heapless::Vec<RoomId, MAX_ROOMS>,
    /// The highest sequence number acknowledged per room (rooms past `MAX_ROOMS` are
    /// not tracked, so their repeats are shown).
    room_acked: heapless::Vec<(RoomId, u64), MAX_ROOMS>,
    last_dm_id: u64,
    handshake_deadline: Instant,
    keepalive: Keepalive,
    closed_event: Option<(ErrorCode, bool)>,
    close_code: Option<ErrorCode>,
    server_key: Option<[u8; 32]>,
}

impl<const TX: usize, const MSG: usize> Client<TX, MSG> {
    /// Starts a connection at `now`: the SYN is queued for transmission at once.
    pub fn new(
        now: Instant,
        config: ClientConfig,
        provider: &'static dyn CryptoProvider,
        identity: &Identity,
        name: &str,
        rng: &mut impl CryptoRng,
    ) -> Result<Client<TX, MSG>, HandshakeError> {
        let mut hs =
            ClientHandshake::new(provider, identity, config.suite, config.mode, name, rng)?;
        hs.set_session_config(config.session);
        // The server is told the largest frame this client reads, and never sends more.
        hs.set_frame_limit(config.max_frame)?;
        let mut syn = [0u8; SYN_LEN];
        let n = hs.write_syn(&mut syn)?;
        let mut client = Client {
            handshake_deadline: now + config.handshake_timeout,
            keepalive: Keepalive::new(now, config.ping_interval, config.idle_timeout),
            config,
            phase: Phase::AwaitSynAck(hs),
            tx: heapless::Vec::new(),
            tx_pos: 0,
            plain: [0; MSG],
            next_req: 1,
            rooms: heapless::Vec::new(),
            room_acked: heapless::Vec::new(),
            last_dm_id: 0,
            closed_event: None,
            close_code: None,
            server_key: None,
        };
        client.push_frame(FrameType::Syn, &syn[..n]).map_err(|_| {
            HandshakeError::BufferTooSmall {
                needed: n + HEADER_LEN,
            }
        })?;
        Ok(client)
    }

    /// The state, as seed 000 names it.
    pub fn state(&self) -> ClientState {
        match self.phase {
            Phase::AwaitSynAck(_) => ClientState::Handshaking,
            Phase::AwaitAuth(_) => ClientState::Authenticating,
            Phase::Ready(_) if self.rooms.is_empty() => ClientState::InLobby,
            Phase::Ready(_) => ClientState::InRoom,
            Phase::Closed => ClientState::Closed,
        }
    }

    /// Rooms this client is in.
    pub fn rooms(&self) -> &[RoomId] {
        &self.rooms
    }

    /// The server's proven identity key, after the SYN-ACK.
    pub fn server_key(&self) -> Option<[u8; 32]> {
        self.server_key
    }

    /// Why it closed, once closed.
    pub fn close_code(&self) -> Option<ErrorCode> {
        self.close_code
    }

    /// The session, once the handshake is done (for statistics such as key updates).
    pub fn session(&self) -> Option<&Session> {
        match &self.phase {
            Phase::AwaitAuth(s) | Phase::Ready(s) => Some(s),
            _ => None,
        }
    }

    /// The highest direct-message ID acknowledged; persist it and restore it with
    /// [`Client::set_last_dm_id`] so a reconnect never shows a message twice.
    pub fn last_dm_id(&self) -> u64 {
        self.last_dm_id
    }

    /// Restores [`Client::last_dm_id`] from an earlier session.
    pub fn set_last_dm_id(&mut self, id: u64) {
        self.last_dm_id = id;
    }

    /// The highest sequence number of `room` acknowledged (0 if none or not tracked);
    /// persist it and restore it with [`Client::set_room_cursor`] so a reconnect never
    /// shows a room message twice.
    pub fn room_cursor(&self, room: RoomId) -> u64 {
        self.room_acked
            .iter()
            .find(|(r, _)| *r == room)
            .map_or(0, |(_, s)| *s)
    }

    /// Restores [`Client::room_cursor`] from an earlier session. Returns false when
    /// `MAX_ROOMS` rooms are already tracked.
    pub fn set_room_cursor(&mut self, room: RoomId, seq: u64) -> bool {
        match self.room_acked.iter_mut().find(|(r, _)| *r == room) {
            Some(entry) => {
                entry.1 = entry.1.max(seq);
                true
            }
            None => self.room_acked.push((room, seq)).is_ok(),
        }
    }

    /// Processes at most one whole frame from `input`, decrypting it in place. Returns the
    /// bytes used (0 = need more, or closed) and the frame's event, which borrows `input`.
    pub fn handle_input<'a>(&mut self, now: Instant, input: &'a mut [u8]) -> Input<'a> {
        let mut result = Input {
            consumed: 0,
            event: None,
        };
        if matches!(self.phase, Phase::Closed) {
            return result;
        }
        let (typ, len) = match decode_frame(input, self.config.max_frame) {
            Ok(None) => return result,
            Ok(Some((frame, used))) => (frame.typ, used),
            Err(FrameError::TooLarge { .. }) => {
                self.close(now, ErrorCode::FrameTooLarge);
                return result;
            }
            Err(_) => {
                self.close(now, ErrorCode::InvalidFormat);
                return result;
            }
        };
        result.consumed = len;
        self.keepalive.heard(now);
        let (header, payload) = input[..len].split_at_mut(HEADER_LEN);
        let mut hdr = [0u8; HEADER_LEN];
        hdr.copy_from_slice(header);
        result.event = self.handle_frame(now, typ, &hdr, payload);
        result
    }

    fn handle_frame<'a>(
        &mut self,
        now: Instant,
        typ: FrameType,
        header: &[u8; HEADER_LEN],
        payload: &'a mut [u8],
    ) -> Option<ClientEvent<'a>> {
        let phase = core::mem::replace(&mut self.phase, Phase::Closed);
        match (phase, typ) {
            (Phase::AwaitSynAck(mut hs), FrameType::SynAck) => {
                let hello = match hs.read_syn_ack(payload) {
                    Ok(h) => h,
                    Err(e) => return self.fail(now, client_handshake_code(e)),
                };
                if self.config.server_key.is_some_and(|k| k != hello.ed25519) {
                    return self.fail(now, ErrorCode::AuthFailed);
                }
                let mut ack = [0u8; ACK_MAX_LEN];
                let (n, session) = match hs.write_ack(&mut ack) {
                    Ok(x) => x,
                    Err(e) => return self.fail(now, client_handshake_code(e)),
                };
                self.phase = Phase::AwaitAuth(session);
                if self.push_frame(FrameType::Ack, &ack[..n]).is_err() {
                    return self.fail(now, ErrorCode::ConnectionTerminated);
                }
                self.server_key = Some(hello.ed25519);
                None
            }
            (phase @ (Phase::AwaitAuth(_) | Phase::Ready(_)), FrameType::Record) => {
                self.phase = phase;
                self.handle_record(now, header, payload)
            }
            (Phase::Closed, _) => None,
            // A cleartext alert is only believed until the server has confirmed the
            // session keys: a server that fails to read the ACK has no keys to encrypt its
            // refusal with. Once logged in, anyone on the path could forge one, so it is a
            // violation, not a trusted close code.
            (Phase::AwaitSynAck(_) | Phase::AwaitAuth(_), FrameType::Alert) => {
                let code =
                    Alert::decode(payload).map_or(ErrorCode::ConnectionTerminated, |a| a.code);
                self.closed(code, true);
                self.poll_event()
            }
            (phase, _) => {
                self.phase = phase;
                self.fail(now, ErrorCode::InvalidFormat)
            }
        }
    }

    fn handle_record<'a>(
        &mut self,
        now: Instant,
        header: &[u8; HEADER_LEN],
        payload: &'a mut [u8],
    ) -> Option<ClientEvent<'a>> {
        let (Phase::AwaitAuth(session) | Phase::Ready(session)) = &mut self.phase else {
            return None;
        };
        let plain = match session.open_record(now, header, payload) {
            Ok(p) => p,
            Err(_) => return self.fail(now, ErrorCode::DecryptFailed),
        };
        let msg = match ServerMsg::decode(plain) {
            Ok(m) => m,
            Err(_) => return self.fail(now, ErrorCode::InvalidFormat),
        };
        match msg {
            ServerMsg::Ping { nonce } => {
                // A full queue means the server is not reading; the idle timer handles it.
                let _ = self.send(now, &ClientMsg::Pong { nonce });
                None
            }
            ServerMsg::Pong { .. } | ServerMsg::KeyUpdate { .. } => None,
            ServerMsg::Close { code, .. } => {
                self.closed(code, true);
                self.poll_event()
            }
            // The answer must be to what was asked: a login answered as a registration
            // (or the reverse) is a protocol violation.
            ServerMsg::AuthResponse { mode, .. } if mode != self.config.mode => {
                self.fail(now, ErrorCode::InvalidFormat)
            }
            ServerMsg::AuthResponse { mode, result } => match (&self.phase, result) {
                (Phase::AwaitAuth(_), Ok(pending)) => {
                    let phase = core::mem::replace(&mut self.phase, Phase::Closed);
                    let (Phase::AwaitAuth(s), Some(server_key)) = (phase, self.server_key) else {
                        return self.fail(now, ErrorCode::InvalidFormat);
                    };
                    self.phase = Phase::Ready(s);
                    Some(ClientEvent::LoggedIn {
                        server_key,
                        mode,
                        pending,
                    })
                }
                (Phase::AwaitAuth(_), Err(code)) => {
                    self.closed(code, true);
                    self.poll_event()
                }
                _ => self.fail(now, ErrorCode::InvalidFormat),
            },
            ServerMsg::IncomingDm { msg_id, .. } => {
                if msg_id <= self.last_dm_id {
                    // Shown and acknowledged before; the ack was lost with a connection.
                    let _ = self.send(now, &ClientMsg::AckDm { msg_id });
                    return None;
                }
                if self.config.auto_ack_dms {
                    let _ = self.ack_dm(now, msg_id);
                }
                Some(ClientEvent::Message(msg))
            }
            ServerMsg::RoomJoined { room, .. } => {
                if !self.rooms.contains(&room) {
                    // More rooms than MAX_ROOMS are still reported, just not tracked.
                    let _ = self.rooms.push(room);
                }
                Some(ClientEvent::Message(msg))
            }
            ServerMsg::RoomMessage { room, seq, .. } => {
                let acked = self.room_cursor(room);
                if seq <= acked {
                    // Shown and acknowledged before; the ack was lost with a connection.
                    let _ = self.send(now, &ClientMsg::AckRoom { room, seq: acked });
                    return None;
                }
                if self.config.auto_ack_rooms {
                    let _ = self.ack_room(now, room, seq);
                }
                Some(ClientEvent::Message(msg))
            }
            ServerMsg::RoomRemoved { room, .. } => {
                self.rooms.retain(|r| *r != room);
                Some(ClientEvent::Message(msg))
            }
            ServerMsg::RoomLeft { room, .. } => {
                self.rooms.retain(|r| *r != room);
                Some(ClientEvent::Message(msg))
            }
            other => Some(ClientEvent::Message(other)),
        }
    }

    /// Closes with `code` and returns the `Closed` event.
    fn fail<'a>(&mut self, now: Instant, code: ErrorCode) -> Option<ClientEvent<'a>> {
        self.close(now, code);
        self.poll_event()
    }

    /// Events not tied to an input frame (a close from a timer or a command).
    pub fn poll_event(&mut self) -> Option<ClientEvent<'static>> {
        self.closed_event
            .take()
            .map(|(code, by_peer)| ClientEvent::Closed { code, by_peer })
    }

    /// Sends any message. Most callers use the named commands, which pick request IDs.
    pub fn send(&mut self, now: Instant, msg: &ClientMsg<'_>) -> Result<(), ClientError> {
        let session = match &mut self.phase {
            Phase::Ready(s) => s,
            Phase::AwaitAuth(s)
                if matches!(msg, ClientMsg::Pong { .. } | ClientMsg::Close { .. }) =>
            {
                s
            }
            Phase::Closed => return Err(ClientError::Closed),
            _ => return Err(ClientError::NotReady),
        };
        let len = msg.encoded_len();
        if len > self.plain.len() {
            return Err(ClientError::TooLarge);
        }
        let n = msg.encode(&mut self.plain).map_err(ClientError::Wire)?;
        let needed = n + Session::seal_max_overhead();
        // Drop bytes already written before looking for room.
        if self.tx_pos > 0 {
            let tail = self.tx.len() - self.tx_pos;
            self.tx.copy_within(self.tx_pos.., 0);
            self.tx.truncate(tail);
            self.tx_pos = 0;
        }
        let start = self.tx.len();
        if start + needed > TX {
            return Err(ClientError::SendQueueFull { needed });
        }
        // Capacity was checked just above, so the resize cannot fail.
        let _ = self.tx.resize(start + needed, 0);
        match session.seal_record(now, &self.plain[..n], &mut self.tx[start..]) {
            Ok(written) => {
                self.tx.truncate(start + written);
                Ok(())
            }
            Err(_) => {
                self.tx.truncate(start);
                self.close(now, ErrorCode::ConnectionTerminated);
                Err(ClientError::Closed)
            }
        }
    }

    /// Closes from this side with `code`, telling the server if keys exist.
    pub fn close(&mut self, now: Instant, code: ErrorCode) {
        // Judged by the close code, not the phase: a failing transition has already
        // taken the phase apart when it calls this.
        if self.close_code.is_some() {
            return;
        }
        // The reason is recorded before the `Close` is sent: when the session cannot seal
        // it (poisoned by a bad record, or exhausted), `send` calls `close` again, which
        // must then return at once instead of recursing, and keep this reason.
        self.close_code = Some(code);
        self.closed_event = Some((code, false));
        if matches!(self.phase, Phase::Ready(_) | Phase::AwaitAuth(_)) {
            let _ = self.send(
                now,
                &ClientMsg::Close {
                    code,
                    text: code.description(),
                },
            );
        }
        self.phase = Phase::Closed;
    }

    fn closed(&mut self, code: ErrorCode, by_peer: bool) {
        self.phase = Phase::Closed;
        if self.close_code.is_none() {
            self.close_code = Some(code);
            self.closed_event = Some((code, by_peer));
        }
    }

    /// The transport went away at `now` (EOF or error).
    pub fn handle_eof(&mut self, now: Instant) {
        let _ = now;
        self.closed(ErrorCode::ConnectionTerminated, true);
    }

    fn push_frame(&mut self, typ: FrameType, payload: &[u8]) -> Result<(), ()> {
        let header = encode_header(typ, payload.len() as u32);
        self.tx.extend_from_slice(&header).map_err(|_| ())?;
        self.tx.extend_from_slice(payload).map_err(|_| ())
    }

    /// Bytes waiting to be written: write them in one call.
    pub fn pending_transmit(&self) -> &[u8] {
        &self.tx[self.tx_pos..]
    }

    /// `n` bytes of [`Client::pending_transmit`] were written.
    pub fn advance_transmit(&mut self, n: usize) {
        self.tx_pos = (self.tx_pos + n).min(self.tx.len());
        if self.tx_pos == self.tx.len() {
            self.tx.clear();
            self.tx_pos = 0;
        }
    }

    /// Copies as much pending output as fits into `out`; returns the number of bytes.
    pub fn poll_transmit(&mut self, out: &mut [u8]) -> usize {
        let pending = self.pending_transmit();
        let n = pending.len().min(out.len());
        out[..n].copy_from_slice(&pending[..n]);
        self.advance_transmit(n);
        n
    }

    /// When [`Client::handle_timeout`] next has work, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Closed => None,
            // Keepalive does not run during the handshake (handle_timeout ignores it), so
            // only the handshake deadline may wake us: anything earlier would spin.
            Phase::AwaitSynAck(_) | Phase::AwaitAuth(_) => Some(self.handshake_deadline),
            Phase::Ready(_) => Some(self.keepalive.poll_timeout()),
        }
    }

    /// Fires due timers: the handshake deadline, keepalive pings and the idle timeout.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Closed => {}
            Phase::AwaitSynAck(_) | Phase::AwaitAuth(_) => {
                if now >= self.handshake_deadline {
                    self.close(now, ErrorCode::HandshakeTimeout);
                }
            }
            Phase::Ready(_) => match self.keepalive.handle_timeout(now) {
                KeepaliveAction::Idle => {}
                KeepaliveAction::SendPing(nonce) => {
                    let _ = self.send(now, &ClientMsg::Ping { nonce });
                }
                KeepaliveAction::TimedOut => self.close(now, ErrorCode::IdleTimeout),
            },
        }
    }
}

/// The code a client closes with when the server's handshake message is bad.
fn client_handshake_code(e: HandshakeError) -> ErrorCode {
    match e {
        HandshakeError::BadSignature | HandshakeError::NonContributory => ErrorCode::AuthFailed,
        _ => ErrorCode::InvalidFormat,
    }
}
