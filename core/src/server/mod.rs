//! `ServerConnection`: one per TCP connection. Framing, handshake, transport crypto,
//! key rotation, keepalive and rate limiting. It turns bytes into [`ServerEvent`]s for
//! the hub, and the hub's [`Reply`]s into bytes.
//!
//! The [`Driver`] joins the connections to the one [`Hub`](crate::hub::Hub): it routes
//! their events, makes the hub's store operations durable first, and hands back replies.
//!
//! # Driving it (the drain order, for every server)
//!
//! ```text
//! loop {
//!     read socket into buf[filled..]           (buf ≥ min_read_buffer())
//!     n = conn.handle_input(now, &mut buf[..filled]); keep buf[n..filled]
//!     while let Some(ev) = conn.poll_event()   → driver.handle_event(now, id, ev)
//!     while let Some(b) = driver.poll_batch()  → store.apply(&b.ops); driver.handle_durable(b.id)
//!     while let Some((id, o)) = driver.poll_outgoing() → conns[id].handle_outgoing(now, &o)
//!     write conn.pending_transmit() to the socket; conn.advance_transmit(written)
//!     sleep until conn.poll_timeout() or input; then conn.handle_timeout(now)
//!     once conn.is_closed() and pending_transmit() is empty: close the socket
//! }
//! ```
//!
//! Stop reading (and feeding the driver) while [`Driver::is_full`]; the store's batches
//! may run on another thread or task, concurrently with everything else.

mod accounts;
mod admission;
mod config;
mod convert;
mod driver;
mod fit;
mod flow;
mod options;
mod relay;

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;

use rand_core::CryptoRng;

pub use admission::{AdmissionConfig, SourceAddr};
pub use config::ServerConfig;
pub use convert::{ListScratch, encode_reply, reply_from, request_from};
pub use driver::{
    Batch, BatchId, Driver, DriverConfig, DriverError, DriverState, DriverStats, Step,
};
pub use flow::{Depth, Flow, FlowConfig, FlowStats};
pub use options::ServerOptions;
pub use relay::Outgoing;

use crate::crypto::{CryptoProvider, Identity};
use crate::handshake::{HandshakeError, SYN_ACK_LEN, ServerHandshake};
use crate::hub::{Reply, Request};
use crate::keepalive::{Keepalive, KeepaliveAction};
use crate::rate::TokenBucket;
use crate::session::Session;
use crate::time::{Duration, Instant};
use crate::wire::{
    Alert, AuthMode, ClientMsg, ErrorCode, FrameError, FrameType, HEADER_LEN, ServerMsg,
    decode_frame, encode_header,
};

/// What a connection tells its adapter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerEvent {
    /// The handshake finished: the hub registers or logs in this user. The identity key
    /// was proven by the handshake.
    Authenticate {
        /// The nickname.
        name: Arc<str>,
        /// The client's Ed25519 identity key.
        key: [u8; 32],
        /// Register or login.
        mode: AuthMode,
        /// The largest frame payload this connection accepts: what the client announced,
        /// capped by [`ServerConfig::client_max_frame`]. The hub keeps every record it
        /// sends this connection within it.
        max_frame: u32,
    },
    /// A request for the hub.
    Request(Request),
    /// The connection is closed; the hub takes the user offline. Nothing follows.
    Closed {
        /// Why.
        code: ErrorCode,
        /// Whether the peer closed it (or vanished), rather than this side.
        by_peer: bool,
    },
}

/// Where the connection is. Every frame is judged against this in one `match`.
enum Phase {
    /// Waiting for the client's SYN.
    AwaitSyn(ServerHandshake),
    /// SYN-ACK sent, waiting for the ACK.
    AwaitAck(ServerHandshake),
    /// Handshake done: encrypted records both ways.
    Open(Session),
    /// Closed; only the pending transmit remains.
    Closed,
}

/// One refused request is forgiven this often: a client refused more often than that,
/// steadily, runs out of refusals and is closed, however it paces itself.
pub const STRIKE_FORGIVEN_EVERY: Duration = Duration::from_secs(10);

/// Events held before the adapter must drain them; input stops being consumed past this.
const MAX_PENDING_EVENTS: usize = 64;

/// One client connection, server side. See the module docs for how to drive it.
pub struct ServerConnection {
    config: Arc<ServerConfig>,
    phase: Phase,
    handshake_deadline: Instant,
    keepalive: Keepalive,
    rate: TokenBucket,
    /// Refusals the connection may still collect before it is closed.
    strikes: TokenBucket,
    control: TokenBucket,
    acks: TokenBucket,
    /// Records received since the peer's last key update (its first one is free).
    records_since_update: u64,
    events: VecDeque<ServerEvent>,
    tx: Vec<u8>,
    tx_pos: usize,
    /// Scratch buffers for encoding replies.
    plain: Vec<u8>,
    scratch: ListScratch,
    close_code: Option<ErrorCode>,
    /// The largest frame payload the client accepts (announced in its ACK, capped by
    /// the configuration): no record sealed for it is larger.
    peer_max_frame: u32,
}

impl ServerConnection {
    /// A connection accepted at `now`. `identity` is the server's long-term key; `rng`
    /// supplies the ephemeral key and initial sequence number.
    pub fn new(
        now: Instant,
        config: Arc<ServerConfig>,
        provider: &'static dyn CryptoProvider,
        identity: &Identity,
        rng: &mut impl CryptoRng,
    ) -> ServerConnection {
        let mut hs = ServerHandshake::new(provider, identity, config.suites, rng);
        hs.set_session_config(config.session);
        ServerConnection {
            handshake_deadline: now + config.handshake_timeout,
            keepalive: Keepalive::new(now, config.ping_interval, config.idle_timeout),
            rate: TokenBucket::new(now, config.rate_per_sec, config.rate_burst),
            strikes: TokenBucket::every(now, STRIKE_FORGIVEN_EVERY, config.rate_strikes),
            control: TokenBucket::new(now, config.control_rate_per_sec, config.control_burst),
            acks: TokenBucket::new(now, config.ack_rate_per_sec, config.ack_burst),
            records_since_update: 1,
            phase: Phase::AwaitSyn(hs),
            events: VecDeque::new(),
            tx: Vec::new(),
            tx_pos: 0,
            plain: Vec::new(),
            scratch: ListScratch::default(),
            close_code: None,
            peer_max_frame: config.client_max_frame,
            config,
        }
    }

    /// The smallest read buffer that always holds one whole frame.
    pub fn min_read_buffer(&self) -> usize {
        self.config.max_frame as usize + HEADER_LEN
    }

    /// Whether the connection is closed (flush [`Self::pending_transmit`], then drop it).
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// Why it closed, once closed.
    pub fn close_code(&self) -> Option<ErrorCode> {
        self.close_code
    }

    /// Whether the handshake is done and records flow.
    pub fn is_established(&self) -> bool {
        matches!(self.phase, Phase::Open(_))
    }

    /// The session, once established (for statistics such as key updates).
    pub fn session(&self) -> Option<&Session> {
        match &self.phase {
            Phase::Open(s) => Some(s),
            _ => None,
        }
    }

    /// Consumes whole frames from `input` (decrypting in place) and returns how many bytes
    /// were used; keep the rest and pass it again with more. Stops early when
    /// [`Self::poll_event`] has not been drained, or once closed. A peer's violation never
    /// panics: it closes the connection with a code and a `Closed` event.
    pub fn handle_input(&mut self, now: Instant, input: &mut [u8]) -> usize {
        let mut pos = 0;
        while !self.is_closed() && self.events.len() < MAX_PENDING_EVENTS {
            let rest = &mut input[pos..];
            let (typ, len) = match decode_frame(rest, self.config.max_frame) {
                Ok(None) => break,
                Ok(Some((frame, used))) => (frame.typ, used),
                Err(FrameError::TooLarge { .. }) => {
                    self.close(now, ErrorCode::FrameTooLarge);
                    break;
                }
                Err(_) => {
                    self.close(now, ErrorCode::InvalidFormat);
                    break;
                }
            };
            self.keepalive.heard(now);
            let frame = &mut rest[..len];
            let (header, payload) = frame.split_at_mut(HEADER_LEN);
            let mut hdr = [0u8; HEADER_LEN];
            hdr.copy_from_slice(header);
            self.handle_frame(now, typ, &hdr, payload);
            pos += len;
        }
        pos
    }

    fn handle_frame(
        &mut self,
        now: Instant,
        typ: FrameType,
        header: &[u8; HEADER_LEN],
        payload: &mut [u8],
    ) {
        let phase = core::mem::replace(&mut self.phase, Phase::Closed);
        match (phase, typ) {
            (Phase::Open(session), FrameType::Record) => {
                self.phase = Phase::Open(session);
                self.handle_record(now, header, payload);
            }
            (Phase::AwaitSyn(mut hs), FrameType::Syn) => {
                if let Err(e) = hs.read_syn(payload) {
                    return self.close(now, handshake_code(e));
                }
                let mut out = [0u8; SYN_ACK_LEN];
                match hs.write_syn_ack(&mut out) {
                    Ok(n) => {
                        self.push_frame(FrameType::SynAck, &out[..n]);
                        self.phase = Phase::AwaitAck(hs);
                    }
                    Err(e) => self.close(now, handshake_code(e)),
                }
            }
            (Phase::AwaitAck(mut hs), FrameType::Ack) => match hs.read_ack(payload) {
                Ok((hello, session)) => {
                    self.peer_max_frame = hello.max_frame.min(self.config.client_max_frame);
                    self.events.push_back(ServerEvent::Authenticate {
                        name: Arc::from(hello.name.as_str()),
                        key: hello.ed25519,
                        mode: hello.mode,
                        max_frame: self.peer_max_frame,
                    });
                    self.phase = Phase::Open(session);
                }
                Err(e) => self.close(now, handshake_code(e)),
            },
            (Phase::Closed, _) => {}
            // A cleartext alert is only believed before session keys exist: after that
            // anyone on the path could forge one, so it is a violation, not a close code.
            (phase @ (Phase::AwaitSyn(_) | Phase::AwaitAck(_)), FrameType::Alert) => {
                self.phase = phase;
                let code =
                    Alert::decode(payload).map_or(ErrorCode::ConnectionTerminated, |a| a.code);
                self.closed(code, true);
            }
            (phase, _) => {
                // A frame that is not legal here: out of order, replayed, or unknown.
                self.phase = phase;
                self.close(now, ErrorCode::InvalidFormat);
            }
        }
    }

    fn handle_record(&mut self, now: Instant, header: &[u8; HEADER_LEN], payload: &mut [u8]) {
        let Phase::Open(session) = &mut self.phase else {
            return;
        };
        let plain = match session.open_record(now, header, payload) {
            Ok(p) => p,
            Err(_) => return self.close(now, ErrorCode::DecryptFailed),
        };
        let verdict = match ClientMsg::decode(plain) {
            Ok(msg) => {
                if !matches!(msg, ClientMsg::KeyUpdate { .. }) {
                    self.records_since_update = self.records_since_update.saturating_add(1);
                }
                self.handle_message(now, &msg)
            }
            Err(_) => Err(ErrorCode::InvalidFormat),
        };
        if let Err(code) = verdict {
            self.close_with(now, code, code == ErrorCode::ConnectionTerminated);
        }
    }

    /// Control messages are answered here; requests go to the hub. `Err` closes.
    fn handle_message(&mut self, now: Instant, msg: &ClientMsg<'_>) -> Result<(), ErrorCode> {
        match *msg {
            // A key update rides on traffic: the client rotates right before a record, so
            // two updates with no record between them are a peer burning our HKDF.
            ClientMsg::KeyUpdate { .. } if self.records_since_update == 0 => {
                Err(ErrorCode::RateLimited)
            }
            ClientMsg::KeyUpdate { .. } => {
                self.records_since_update = 0;
                Ok(())
            }
            ClientMsg::Ping { .. } | ClientMsg::Pong { .. } if !self.control.try_take(now) => {
                Err(ErrorCode::RateLimited)
            }
            ClientMsg::Ping { nonce } => self.seal_msg(now, &ServerMsg::Pong { nonce }),
            ClientMsg::Pong { .. } => Ok(()),
            ClientMsg::Close { .. } => Err(ErrorCode::ConnectionTerminated),
            ref other => {
                let Some(request) = request_from(other) else {
                    return Ok(());
                };
                // Acks are flow control for what the server sent, with a budget of their own
                // (a client catching up on a room acks up to a whole window at once); they
                // have no reply to refuse with, so past it the connection closes.
                let is_ack = matches!(request, Request::AckDm { .. } | Request::AckRoom { .. });
                if is_ack && !self.acks.try_take(now) {
                    return Err(ErrorCode::RateLimited);
                }
                if !is_ack && !self.rate.try_take(now) {
                    if !self.strikes.try_take(now) {
                        return Err(ErrorCode::RateLimited);
                    }
                    let code = ErrorCode::RateLimited;
                    let req = request_id(&request);
                    return self.seal_msg(
                        now,
                        &ServerMsg::Error {
                            req,
                            code,
                            text: code.description(),
                        },
                    );
                }
                self.events.push_back(ServerEvent::Request(request));
                Ok(())
            }
        }
    }

    /// The next event for the adapter to hand to the hub.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        let ev = self.events.pop_front();
        if ev.is_none() && self.events.capacity() > 0 {
            // Drained: an idle connection keeps no queue (see `compact_tx`).
            self.events = VecDeque::new();
        }
        ev
    }

    /// Encrypts a reply from the driver for this client. A [`Reply::Close`] closes the
    /// connection after it; a client that let too much output pile up is cut off with
    /// `SendQueueExceeded`. Replies to a closed connection are dropped: the driver has
    /// been (or will be) told it closed. A reply larger than the frame limit the client
    /// announced is never sent whole: a list is cut, an answer becomes an error (see
    /// `fit.rs`), and the connection stays open.
    pub fn handle_reply(&mut self, now: Instant, reply: &Reply) {
        if !self.is_established() {
            return;
        }
        if let Reply::Close { code } = reply {
            return self.close(now, *code);
        }
        if encode_reply(reply, &mut self.scratch, &mut self.plain).is_err() {
            // The hub only builds replies that fit the wire; refuse loudly if one does not.
            return self.close(now, ErrorCode::ServerError);
        }
        let limit = self.peer_max_frame as usize;
        let tag = crate::crypto::TAG_LEN;
        if self.plain.len() + tag > limit
            && !fit::encode_within(reply, limit, tag, &mut self.scratch, &mut self.plain)
        {
            return;
        }
        if let Err(code) = self.seal_plain(now) {
            self.close(now, code);
        }
        if let Reply::Auth {
            result: Err(code), ..
        } = reply
        {
            self.close(now, *code);
        }
    }

    /// [`handle_reply`](Self::handle_reply) for a reply from
    /// [`Driver::poll_outgoing`]: a room message encoded once for all its recipients is
    /// sealed from those shared bytes, without encoding it again.
    pub fn handle_outgoing(&mut self, now: Instant, out: &Outgoing) {
        let Some(encoded) = &out.encoded else {
            return self.handle_reply(now, &out.reply);
        };
        if !self.is_established()
            || encoded.len() + crate::crypto::TAG_LEN > self.peer_max_frame as usize
        {
            // Too large for this client: the reply's own path refuses or shrinks it.
            return self.handle_reply(now, &out.reply);
        }
        if let Err(code) = self.seal_bytes(now, encoded) {
            self.close(now, code);
        }
    }

    fn seal_msg(&mut self, now: Instant, msg: &ServerMsg<'_>) -> Result<(), ErrorCode> {
        self.plain.clear();
        self.plain.resize(msg.encoded_len(), 0);
        let n = msg
            .encode(&mut self.plain)
            .map_err(|_| ErrorCode::ServerError)?;
        self.plain.truncate(n);
        self.seal_plain(now)
    }

    /// Seals `self.plain` as one record onto the transmit queue. A record larger than the
    /// client accepts is refused: sent, it would only make the client close.
    fn seal_plain(&mut self, now: Instant) -> Result<(), ErrorCode> {
        let plain = core::mem::take(&mut self.plain);
        let sealed = self.seal_bytes(now, &plain);
        self.plain = plain;
        sealed
    }

    /// Seals `plain` as one record onto the transmit queue (see `seal_plain`).
    fn seal_bytes(&mut self, now: Instant, plain: &[u8]) -> Result<(), ErrorCode> {
        if plain.len() + crate::crypto::TAG_LEN > self.peer_max_frame as usize {
            return Err(ErrorCode::ServerError);
        }
        let needed = plain.len() + Session::seal_max_overhead();
        if self.tx.len() - self.tx_pos + needed > self.config.send_queue_bytes {
            return Err(ErrorCode::SendQueueExceeded);
        }
        self.compact_tx();
        let Phase::Open(session) = &mut self.phase else {
            return Err(ErrorCode::InvalidFormat);
        };
        let start = self.tx.len();
        self.tx.resize(start + needed, 0);
        match session.seal_record(now, plain, &mut self.tx[start..]) {
            Ok(n) => {
                self.tx.truncate(start + n);
                Ok(())
            }
            Err(_) => {
                self.tx.truncate(start);
                Err(ErrorCode::ServerError)
            }
        }
    }

    fn push_frame(&mut self, typ: FrameType, payload: &[u8]) {
        self.compact_tx();
        self.tx
            .extend_from_slice(&encode_header(typ, payload.len() as u32));
        self.tx.extend_from_slice(payload);
    }

    fn compact_tx(&mut self) {
        if self.tx_pos > 0 && self.tx_pos == self.tx.len() {
            // Everything is written: an idle connection keeps no buffer (10,000 idle
            // connections would otherwise hold their largest bursts). The next record
            // allocates again, tens of nanoseconds against the microseconds of its write.
            self.tx = Vec::new();
            self.tx_pos = 0;
            self.plain = Vec::new();
        } else if self.tx_pos > 4096 && self.tx_pos * 2 > self.tx.len() {
            self.tx.drain(..self.tx_pos);
            self.tx_pos = 0;
        }
    }

    /// Closes from this side with `code`: tells the peer (an encrypted `Close` once keys
    /// exist, a cleartext alert before), then emits `Closed`.
    pub fn close(&mut self, now: Instant, code: ErrorCode) {
        self.close_with(now, code, false);
    }

    fn close_with(&mut self, now: Instant, code: ErrorCode, by_peer: bool) {
        // Judged by the close code, not the phase: a failing transition has already
        // taken the phase apart when it calls this.
        if self.close_code.is_some() {
            return;
        }
        if !by_peer {
            let text = code.description();
            if self.is_established() {
                // With the send queue full the close record is dropped: the peer is not
                // reading anyway.
                let _ = self.seal_msg(now, &ServerMsg::Close { code, text });
            } else {
                let mut out = [0u8; 3 + crate::wire::MAX_TEXT_LEN];
                if let Ok(n) = (Alert { code, text }).encode(&mut out) {
                    self.push_frame(FrameType::Alert, &out[..n]);
                }
            }
        }
        self.phase = Phase::Closed;
        self.closed(code, by_peer);
    }

    fn closed(&mut self, code: ErrorCode, by_peer: bool) {
        self.phase = Phase::Closed;
        if self.close_code.is_none() {
            self.close_code = Some(code);
            self.events.push_back(ServerEvent::Closed { code, by_peer });
        }
    }

    /// The transport went away at `now` (EOF or a socket error): emits `Closed` once.
    pub fn handle_eof(&mut self, now: Instant) {
        let _ = now;
        self.closed(ErrorCode::ConnectionTerminated, true);
    }

    /// Bytes of memory the transmit queue holds now (for adapters' memory accounting).
    pub fn transmit_capacity(&self) -> usize {
        self.tx.capacity()
    }

    /// Bytes of memory all of the connection's buffers hold now: the transmit queue, the
    /// encoding scratch and the event queue. Zero for an idle connection whose output is
    /// written and whose events are taken.
    pub fn buffer_bytes(&self) -> usize {
        self.tx.capacity()
            + self.plain.capacity()
            + self.events.capacity() * core::mem::size_of::<ServerEvent>()
    }

    /// Bytes waiting to be written, all records coalesced: write them in one call.
    pub fn pending_transmit(&self) -> &[u8] {
        &self.tx[self.tx_pos..]
    }

    /// `n` bytes of [`Self::pending_transmit`] were written.
    pub fn advance_transmit(&mut self, n: usize) {
        self.tx_pos = (self.tx_pos + n).min(self.tx.len());
        self.compact_tx();
    }

    /// Copies as much pending output as fits into `out`; returns the number of bytes.
    pub fn poll_transmit(&mut self, out: &mut [u8]) -> usize {
        let pending = self.pending_transmit();
        let n = pending.len().min(out.len());
        out[..n].copy_from_slice(&pending[..n]);
        self.advance_transmit(n);
        n
    }

    /// When [`Self::handle_timeout`] next has work, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Closed => None,
            Phase::AwaitSyn(_) | Phase::AwaitAck(_) => Some(self.handshake_deadline),
            Phase::Open(_) => Some(self.keepalive.poll_timeout()),
        }
    }

    /// Fires due timers: the handshake deadline, keepalive pings and the idle timeout.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Closed => {}
            Phase::AwaitSyn(_) | Phase::AwaitAck(_) => {
                if now >= self.handshake_deadline {
                    self.close(now, ErrorCode::HandshakeTimeout);
                }
            }
            Phase::Open(_) => match self.keepalive.handle_timeout(now) {
                KeepaliveAction::Idle => {}
                KeepaliveAction::SendPing(nonce) => {
                    if let Err(code) = self.seal_msg(now, &ServerMsg::Ping { nonce }) {
                        self.close(now, code);
                    }
                }
                KeepaliveAction::TimedOut => self.close(now, ErrorCode::IdleTimeout),
            },
        }
    }
}

/// The code sent to a client whose handshake failed.
fn handshake_code(e: HandshakeError) -> ErrorCode {
    match e {
        HandshakeError::UnsupportedVersion(_) => ErrorCode::UnsupportedVersion,
        HandshakeError::UnsupportedSuite(_) => ErrorCode::UnsupportedSuite,
        HandshakeError::BadSignature | HandshakeError::NonContributory => ErrorCode::AuthFailed,
        HandshakeError::InvalidName => ErrorCode::InvalidUsername,
        _ => ErrorCode::InvalidFormat,
    }
}

/// The request ID a request carries, 0 if none.
fn request_id(request: &Request) -> u32 {
    crate::hub::request_id(request)
}
