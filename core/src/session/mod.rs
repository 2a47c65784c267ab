//! The encrypted transport after the handshake: records, per-direction traffic secrets and
//! TLS 1.3-style key rotation with `KeyUpdate` records.
//!
//! A record is a whole frame `[u32 len][0x17][ciphertext][16-byte tag]`; the AEAD's AD is the
//! 5-byte frame header and the plaintext is an inner message whose first byte is its type.
//!
//! Per direction: a traffic `secret` (initially the Noise `Split()` key for that direction),
//! the AEAD key `HKDF-Expand(secret, "cove key", 32)` and a 64-bit counter from 0, encoded as
//! the Noise nonce of the suite. On rotation the next secret is
//! `HKDF-Expand(secret, "cove upd", 32)`; the old one is erased and the counter restarts.
//! Any failure poisons the session: every later call errors.

use crate::crypto::{AeadKey, CryptoProvider, HASH_LEN, Suite, TAG_LEN, hkdf_expand};
use crate::time::{Duration, Instant};
use crate::wire::{FRAME_RECORD, HEADER_LEN, MSG_KEY_UPDATE};
use core::fmt;
use zeroize::Zeroizing;

/// HKDF info deriving a direction's AEAD key from its traffic secret.
pub const KEY_LABEL: &[u8] = b"cove key";
/// HKDF info deriving the next traffic secret from the current one.
pub const UPDATE_LABEL: &[u8] = b"cove upd";
/// Plaintext length of a `KeyUpdate` record: `[0x22][u8 request_update]`.
pub const KEY_UPDATE_LEN: usize = 2;
/// Bytes a record adds to its plaintext: the frame header and the tag.
pub const RECORD_OVERHEAD: usize = HEADER_LEN + TAG_LEN;
/// The most [`Session::seal_record`] adds to a plaintext: a `KeyUpdate` record plus the
/// record's own header and tag.
pub const SEAL_MAX_OVERHEAD: usize = RECORD_OVERHEAD + KEY_UPDATE_LEN + RECORD_OVERHEAD;
/// Records one AES-256-GCM key may protect (RFC 9001 §6.6 confidentiality limit, 2^23).
pub const AES_GCM_RECORD_LIMIT: u64 = 1 << 23;
/// Records one ChaCha20-Poly1305 key may protect (2^60, as WireGuard's rekey point).
pub const CHACHA_RECORD_LIMIT: u64 = 1 << 60;

/// When the send side rotates its key on its own. Values are clamped (see
/// [`Session::set_config`]) so rotation always happens before the per-key hard limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// Rotate once this many records were sealed under the current key.
    pub rotate_after_records: u64,
    /// Rotate once this many plaintext bytes were sealed under the current key.
    pub rotate_after_bytes: u64,
    /// Rotate once this much time passed since the current send key was installed.
    pub rotate_after: Duration,
}

impl Default for SessionConfig {
    /// 2^20 records, 1 GiB, one hour.
    fn default() -> Self {
        SessionConfig {
            rotate_after_records: 1 << 20,
            rotate_after_bytes: 1 << 30,
            rotate_after: Duration::from_secs(3600),
        }
    }
}

/// Counters of a session, for statistics and the simulator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Records sealed (including `KeyUpdate` records).
    pub records_sent: u64,
    /// Records opened successfully (including `KeyUpdate` records).
    pub records_received: u64,
    /// Plaintext bytes sealed.
    pub bytes_sent: u64,
    /// Plaintext bytes opened.
    pub bytes_received: u64,
    /// Key updates of the send direction.
    pub key_updates_sent: u64,
    /// Key updates of the receive direction.
    pub key_updates_received: u64,
}

/// Errors of the transport session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionError {
    /// `out` is too small; `needed` bytes are required. Nothing changed.
    BufferTooSmall {
        /// Bytes required.
        needed: usize,
    },
    /// The plaintext is too long for a frame.
    TooLong,
    /// The caller tried to seal a plaintext whose type is `KeyUpdate`: only the session sends
    /// those. Nothing changed.
    ReservedType,
    /// The key reached its hard limit of records; sealing is refused (on receive: the peer
    /// did not rotate in time, and the session is poisoned).
    KeyExhausted,
    /// The frame header is not a record header or its length does not match the payload.
    BadHeader,
    /// The record is shorter than a tag.
    Truncated,
    /// Authentication failed: tampered bytes, a replay, a reordering or a stale key.
    Decrypt,
    /// A `KeyUpdate` record with a malformed body.
    BadKeyUpdate,
    /// An earlier failure made the session unusable.
    Poisoned,
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::BufferTooSmall { needed } => {
                write!(f, "buffer too small: {needed} bytes needed")
            }
            SessionError::TooLong => f.write_str("record plaintext too long"),
            SessionError::ReservedType => f.write_str("KeyUpdate is sent by the session only"),
            SessionError::KeyExhausted => f.write_str("record limit of the key reached"),
            SessionError::BadHeader => f.write_str("bad record header"),
            SessionError::Truncated => f.write_str("record shorter than its tag"),
            SessionError::Decrypt => f.write_str("record authentication failed"),
            SessionError::BadKeyUpdate => f.write_str("malformed KeyUpdate"),
            SessionError::Poisoned => f.write_str("session unusable after an earlier failure"),
        }
    }
}

impl core::error::Error for SessionError {}

/// One direction's key material and counters. Secrets are zeroized on drop.
struct Direction {
    secret: Zeroizing<[u8; 32]>,
    /// The record key derived from `secret`, its cipher keyed once (see [`AeadKey`]).
    key: AeadKey,
    counter: u64,
    bytes: u64,
    since: Option<Instant>,
}

impl Direction {
    fn new(provider: &'static dyn CryptoProvider, suite: Suite, secret: &[u8; 32]) -> Direction {
        Direction {
            secret: Zeroizing::new(*secret),
            key: AeadKey::new(provider, suite, hkdf_expand(secret, KEY_LABEL)),
            counter: 0,
            bytes: 0,
            since: None,
        }
    }

    /// Moves to the next secret, erasing the current one and its keyed cipher.
    fn update(&mut self, provider: &'static dyn CryptoProvider, suite: Suite, now: Instant) {
        let next = hkdf_expand(&self.secret, UPDATE_LABEL);
        // Assigning drops (and so zeroizes) the old secret and key.
        self.key = AeadKey::new(provider, suite, hkdf_expand(&next, KEY_LABEL));
        self.secret = next;
        self.counter = 0;
        self.bytes = 0;
        self.since = Some(now);
    }
}

/// An established transport session. Obtained from the handshake
/// ([`ClientHandshake::write_ack`](crate::handshake::ClientHandshake::write_ack),
/// [`ServerHandshake::read_ack`](crate::handshake::ServerHandshake::read_ack)).
pub struct Session {
    provider: &'static dyn CryptoProvider,
    suite: Suite,
    config: SessionConfig,
    hard_limit: u64,
    send: Direction,
    recv: Direction,
    /// `request_key_update()` was called: update before the next record and ask the peer to.
    local_request: bool,
    /// The peer asked us to update our send key.
    peer_request: bool,
    handshake_hash: [u8; HASH_LEN],
    stats: SessionStats,
    poisoned: bool,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("suite", &self.suite)
            .field("stats", &self.stats)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session from the two initial traffic secrets (the Noise `Split()` keys, oriented
    /// for this side) and the handshake hash. Normal code gets a session from the
    /// handshake; this is public for tests, fuzzing and the simulator.
    pub fn new(
        provider: &'static dyn CryptoProvider,
        suite: Suite,
        send_secret: &[u8; 32],
        recv_secret: &[u8; 32],
        handshake_hash: [u8; HASH_LEN],
        config: SessionConfig,
    ) -> Session {
        let mut s = Session {
            provider,
            suite,
            config,
            hard_limit: Self::suite_limit(suite),
            send: Direction::new(provider, suite, send_secret),
            recv: Direction::new(provider, suite, recv_secret),
            local_request: false,
            peer_request: false,
            handshake_hash,
            stats: SessionStats::default(),
            poisoned: false,
        };
        s.set_config(config);
        s
    }

    /// The per-key record limit of a suite.
    pub const fn suite_limit(suite: Suite) -> u64 {
        match suite {
            Suite::AesGcm => AES_GCM_RECORD_LIMIT,
            Suite::ChaChaPoly => CHACHA_RECORD_LIMIT,
        }
    }

    /// Replaces the rotation thresholds. `rotate_after_records` is clamped to
    /// `1..=hard limit - 1` (the `KeyUpdate` record itself needs a nonce under the old key),
    /// `rotate_after_bytes` to at least 1.
    pub fn set_config(&mut self, config: SessionConfig) {
        let mut c = config;
        c.rotate_after_records = c.rotate_after_records.clamp(1, self.hard_limit - 1);
        c.rotate_after_bytes = c.rotate_after_bytes.max(1);
        self.config = c;
    }

    /// The rotation thresholds in force (after clamping).
    pub fn config(&self) -> SessionConfig {
        self.config
    }

    /// The suite.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// The final Noise handshake hash: a unique session identifier (channel binding).
    pub fn handshake_hash(&self) -> [u8; HASH_LEN] {
        self.handshake_hash
    }

    /// Counters.
    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    /// Whether an earlier failure made the session unusable.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// The most [`seal_record`](Self::seal_record) adds to a plaintext ([`SEAL_MAX_OVERHEAD`]).
    pub const fn seal_max_overhead() -> usize {
        SEAL_MAX_OVERHEAD
    }

    /// Asks for a key update: before the next record the send side rotates and asks the
    /// peer (`request_update = 1`) to rotate its send side too.
    pub fn request_key_update(&mut self) {
        self.local_request = true;
    }

    /// Whether the next [`seal_record`](Self::seal_record) at `now` will first send a `KeyUpdate`.
    pub fn key_update_due(&self, now: Instant) -> bool {
        self.local_request
            || self.peer_request
            || self.send.counter >= self.config.rotate_after_records
            || self.send.bytes >= self.config.rotate_after_bytes
            || self
                .send
                .since
                .is_some_and(|t| now.saturating_since(t) >= self.config.rotate_after)
    }

    /// Seals `plaintext` (an inner message, first byte = its type) into one record frame in
    /// `out`, preceded by a `KeyUpdate` record if an update is due. Returns the bytes written.
    ///
    /// A too-small `out` ([`SessionError::BufferTooSmall`]) changes nothing.
    pub fn seal_record(
        &mut self,
        now: Instant,
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, SessionError> {
        if self.poisoned {
            return Err(SessionError::Poisoned);
        }
        if plaintext.first() == Some(&MSG_KEY_UPDATE) {
            return Err(SessionError::ReservedType);
        }
        if plaintext.len() > u32::MAX as usize - TAG_LEN {
            return Err(SessionError::TooLong);
        }
        if self.send.since.is_none() {
            self.send.since = Some(now);
        }
        let update = self.key_update_due(now);
        let first = if update {
            RECORD_OVERHEAD + KEY_UPDATE_LEN
        } else {
            0
        };
        let needed = first + RECORD_OVERHEAD + plaintext.len();
        if out.len() < needed {
            return Err(SessionError::BufferTooSmall { needed });
        }
        if !update && self.send.counter >= self.hard_limit {
            return Err(SessionError::KeyExhausted);
        }
        if update {
            let body = [MSG_KEY_UPDATE, u8::from(self.local_request)];
            self.seal_one(&body, &mut out[..first])?;
            self.send.update(self.provider, self.suite, now);
            self.stats.key_updates_sent += 1;
            self.local_request = false;
            self.peer_request = false;
        }
        self.seal_one(plaintext, &mut out[first..needed])?;
        Ok(needed)
    }

    /// Seals one record into `out` (exactly `RECORD_OVERHEAD + plaintext.len()` bytes).
    fn seal_one(&mut self, plaintext: &[u8], out: &mut [u8]) -> Result<(), SessionError> {
        if self.send.counter >= self.hard_limit {
            return Err(SessionError::KeyExhausted);
        }
        let ct_len = plaintext.len() + TAG_LEN;
        let header = record_header(ct_len);
        out[..HEADER_LEN].copy_from_slice(&header);
        let body_end = HEADER_LEN + plaintext.len();
        out[HEADER_LEN..body_end].copy_from_slice(plaintext);
        let nonce = self.suite.nonce(self.send.counter);
        match self
            .send
            .key
            .seal(&nonce, &header, &mut out[HEADER_LEN..body_end])
        {
            Ok(tag) => {
                out[body_end..body_end + TAG_LEN].copy_from_slice(&tag);
                self.send.counter += 1;
                self.send.bytes = self.send.bytes.saturating_add(plaintext.len() as u64);
                self.stats.records_sent += 1;
                self.stats.bytes_sent =
                    self.stats.bytes_sent.saturating_add(plaintext.len() as u64);
                Ok(())
            }
            Err(_) => {
                self.poisoned = true;
                Err(SessionError::Decrypt)
            }
        }
    }

    /// Opens a record: `header` is its 5-byte frame header, `payload` the rest of the frame
    /// (ciphertext and tag), decrypted in place. Returns the plaintext.
    ///
    /// A `KeyUpdate` record is returned like any other (type byte `0x22`) and the receive
    /// key rotates at once; with `request_update = 1` the send side updates before its next
    /// record. Any failure poisons the session; the counter never advances on failure.
    pub fn open_record<'a>(
        &mut self,
        now: Instant,
        header: &[u8; HEADER_LEN],
        payload: &'a mut [u8],
    ) -> Result<&'a [u8], SessionError> {
        if self.poisoned {
            return Err(SessionError::Poisoned);
        }
        match self.open_inner(now, header, payload) {
            Ok(len) => Ok(&payload[..len]),
            Err(e) => {
                self.poisoned = true;
                Err(e)
            }
        }
    }

    fn open_inner(
        &mut self,
        now: Instant,
        header: &[u8; HEADER_LEN],
        payload: &mut [u8],
    ) -> Result<usize, SessionError> {
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        if header[4] != FRAME_RECORD || len as usize != payload.len() {
            return Err(SessionError::BadHeader);
        }
        if payload.len() < TAG_LEN {
            return Err(SessionError::Truncated);
        }
        if self.recv.counter >= self.hard_limit {
            return Err(SessionError::KeyExhausted);
        }
        if self.recv.since.is_none() {
            self.recv.since = Some(now);
        }
        let pt_len = payload.len() - TAG_LEN;
        let (body, tag) = payload.split_at_mut(pt_len);
        let mut t = [0u8; TAG_LEN];
        t.copy_from_slice(tag);
        let nonce = self.suite.nonce(self.recv.counter);
        if self.recv.key.open(&nonce, header, body, &t).is_err() {
            zeroize::Zeroize::zeroize(body);
            return Err(SessionError::Decrypt);
        }
        self.recv.counter += 1;
        self.stats.records_received += 1;
        self.stats.bytes_received = self.stats.bytes_received.saturating_add(pt_len as u64);
        if body.first() == Some(&MSG_KEY_UPDATE) {
            let request = match body {
                [_, 0] => false,
                [_, 1] => true,
                _ => return Err(SessionError::BadKeyUpdate),
            };
            self.recv.update(self.provider, self.suite, now);
            self.stats.key_updates_received += 1;
            if request {
                self.peer_request = true;
            }
        }
        Ok(pt_len)
    }

    /// Lowers the per-key hard limit without re-clamping the thresholds (tests only).
    #[cfg(test)]
    pub(crate) fn set_hard_limit_for_test(&mut self, limit: u64) {
        self.hard_limit = limit;
    }
}

/// The frame header of a record with `ct_len` bytes of ciphertext and tag.
fn record_header(ct_len: usize) -> [u8; HEADER_LEN] {
    let l = (ct_len as u32).to_be_bytes();
    [l[0], l[1], l[2], l[3], FRAME_RECORD]
}

#[cfg(test)]
mod tests;
