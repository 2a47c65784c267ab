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

use crate::crypto::{CryptoProvider, HASH_LEN, KEY_LEN, Suite, TAG_LEN, hkdf_expand};
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
    key: Zeroizing<[u8; KEY_LEN]>,
    counter: u64,
    bytes: u64,
    since: Option<Instant>,
}

impl Direction {
    fn new(secret: &[u8; 32]) -> Direction {
        Direction {
            secret: Zeroizing::new(*secret),
            key: hkdf_expand(secret, KEY_LABEL),
            counter: 0,
            bytes: 0,
            since: None,
        }
    }

    /// Moves to the next secret, erasing the current one.
    fn update(&mut self, now: Instant) {
        let next = hkdf_expand(&self.secret, UPDATE_LABEL);
        // Assigning drops (and so zeroizes) the old secret and key.
        self.key = hkdf_expand(&next, KEY_LABEL);
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
            send: Direction::new(send_secret),
            recv: Direction::new(recv_secret),
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
            self.send.update(now);
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
        match self.provider.seal(
            self.suite,
            &self.send.key,
            &nonce,
            &header,
            &mut out[HEADER_LEN..body_end],
        ) {
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
        if self
            .provider
            .open(self.suite, &self.recv.key, &nonce, header, body, &t)
            .is_err()
        {
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
            self.recv.update(now);
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
mod tests {
    use super::*;
    use crate::crypto::RUST_CRYPTO;

    fn pair(suite: Suite, config: SessionConfig) -> (Session, Session) {
        let a = Session::new(&RUST_CRYPTO, suite, &[1; 32], &[2; 32], [9; 32], config);
        let b = Session::new(&RUST_CRYPTO, suite, &[2; 32], &[1; 32], [9; 32], config);
        (a, b)
    }

    /// Opens every record in `buf`, returning the non-KeyUpdate plaintexts' first bytes.
    fn open_all(s: &mut Session, now: Instant, buf: &mut [u8], seen: &mut [u8; 64]) -> usize {
        let mut off = 0;
        let mut n = 0;
        while off < buf.len() {
            let header: [u8; 5] = buf[off..off + 5].try_into().unwrap();
            let len = u32::from_be_bytes(header[..4].try_into().unwrap()) as usize;
            let pt = s
                .open_record(now, &header, &mut buf[off + 5..off + 5 + len])
                .unwrap();
            if pt[0] != MSG_KEY_UPDATE {
                seen[n] = pt[1];
                n += 1;
            }
            off += 5 + len;
        }
        n
    }

    #[test]
    fn records_round_trip_both_suites() {
        for suite in Suite::ALL {
            let (mut a, mut b) = pair(suite, SessionConfig::default());
            let mut buf = [0u8; 128];
            for i in 0..10u8 {
                let n = a
                    .seal_record(Instant(0), &[0x10, i, 2, 3], &mut buf)
                    .unwrap();
                assert_eq!(n, 4 + RECORD_OVERHEAD);
                assert_eq!(buf[4], FRAME_RECORD);
                let header: [u8; 5] = buf[..5].try_into().unwrap();
                let pt = b.open_record(Instant(0), &header, &mut buf[5..n]).unwrap();
                assert_eq!(pt, &[0x10, i, 2, 3]);
                let n = b.seal_record(Instant(0), &[0x11, i], &mut buf).unwrap();
                let header: [u8; 5] = buf[..5].try_into().unwrap();
                assert_eq!(
                    a.open_record(Instant(0), &header, &mut buf[5..n]).unwrap(),
                    &[0x11, i]
                );
            }
            assert_eq!(a.stats().records_sent, 10);
            assert_eq!(a.stats().records_received, 10);
            assert_eq!(a.stats().key_updates_sent, 0);
        }
    }

    #[test]
    fn tampered_record_fails_keeps_counter_and_poisons() {
        let (mut a, mut b) = pair(Suite::AesGcm, SessionConfig::default());
        let mut buf = [0u8; 64];
        let n = a.seal_record(Instant(0), b"\x10hello", &mut buf).unwrap();
        for pos in [0usize, 4, 5, 8, n - 1] {
            let (_, mut b2) = pair(Suite::AesGcm, SessionConfig::default());
            let mut t = buf;
            t[pos] ^= 0x40;
            let header: [u8; 5] = t[..5].try_into().unwrap();
            assert!(
                b2.open_record(Instant(0), &header, &mut t[5..n]).is_err(),
                "pos {pos}"
            );
            assert_eq!(b2.recv.counter, 0);
            assert!(b2.is_poisoned());
        }
        let mut t = buf;
        t[7] ^= 1;
        let header: [u8; 5] = t[..5].try_into().unwrap();
        assert_eq!(
            b.open_record(Instant(0), &header, &mut t[5..n]),
            Err(SessionError::Decrypt)
        );
        assert_eq!(b.recv.counter, 0);
        assert_eq!(b.stats().records_received, 0);
        // Poisoned: even the genuine record is refused now, and so is sealing.
        let header: [u8; 5] = buf[..5].try_into().unwrap();
        assert_eq!(
            b.open_record(Instant(0), &header, &mut buf[5..n]),
            Err(SessionError::Poisoned)
        );
        assert_eq!(
            b.seal_record(Instant(0), b"\x10x", &mut [0u8; 64]),
            Err(SessionError::Poisoned)
        );
    }

    #[test]
    fn replayed_record_fails() {
        let (mut a, mut b) = pair(Suite::ChaChaPoly, SessionConfig::default());
        let mut buf = [0u8; 64];
        let n = a.seal_record(Instant(0), b"\x10hello", &mut buf).unwrap();
        let copy = buf;
        let header: [u8; 5] = buf[..5].try_into().unwrap();
        b.open_record(Instant(0), &header, &mut buf[5..n]).unwrap();
        let mut buf = copy;
        assert_eq!(
            b.open_record(Instant(0), &header, &mut buf[5..n]),
            Err(SessionError::Decrypt)
        );
    }

    #[test]
    fn record_under_old_key_after_update_fails() {
        let (mut a, mut b) = pair(Suite::AesGcm, SessionConfig::default());
        let (mut stale, _) = pair(Suite::AesGcm, SessionConfig::default());
        let mut buf = [0u8; 128];
        a.request_key_update();
        let n = a.seal_record(Instant(0), b"\x10new", &mut buf).unwrap();
        assert_eq!(n, SEAL_MAX_OVERHEAD + 4);
        let mut seen = [0u8; 64];
        assert_eq!(open_all(&mut b, Instant(0), &mut buf[..n], &mut seen), 1);
        assert_eq!(b.stats().key_updates_received, 1);
        // The peer asked (request_update = 1): b's next record starts with its own update.
        let n = b.seal_record(Instant(0), b"\x10back", &mut buf).unwrap();
        assert_eq!(n, SEAL_MAX_OVERHEAD + 5);
        assert_eq!(open_all(&mut a, Instant(0), &mut buf[..n], &mut seen), 1);
        assert_eq!(a.stats().key_updates_received, 1);
        // A record sealed under the initial key (counter 1) no longer opens.
        let _ = stale.seal_record(Instant(0), b"\x10old", &mut buf).unwrap();
        let n = stale.seal_record(Instant(0), b"\x10old", &mut buf).unwrap();
        let header: [u8; 5] = buf[..5].try_into().unwrap();
        assert_eq!(
            b.open_record(Instant(0), &header, &mut buf[5..n]),
            Err(SessionError::Decrypt)
        );
    }

    #[test]
    fn rotation_every_three_records_loses_nothing() {
        let cfg = SessionConfig {
            rotate_after_records: 3,
            ..SessionConfig::default()
        };
        let (mut a, mut b) = pair(Suite::ChaChaPoly, cfg);
        let mut buf = [0u8; 128];
        let mut seen = [0u8; 64];
        for i in 0..50u8 {
            if i == 20 {
                a.request_key_update();
            }
            let n = a.seal_record(Instant(0), &[0x10, i], &mut buf).unwrap();
            assert_eq!(open_all(&mut b, Instant(0), &mut buf[..n], &mut seen), 1);
            assert_eq!(seen[0], i);
            let n = b.seal_record(Instant(0), &[0x11, i], &mut buf).unwrap();
            assert_eq!(open_all(&mut a, Instant(0), &mut buf[..n], &mut seen), 1);
            assert_eq!(seen[0], i);
        }
        let (sa, sb) = (a.stats(), b.stats());
        assert!(sa.key_updates_sent >= 16, "{sa:?}");
        assert_eq!(sa.key_updates_sent, sb.key_updates_received);
        assert_eq!(sb.key_updates_sent, sa.key_updates_received);
        assert_eq!(sa.records_sent, sb.records_received);
        assert_eq!(sa.records_sent, 50 + sa.key_updates_sent);
    }

    #[test]
    fn time_and_byte_thresholds_rotate() {
        let cfg = SessionConfig {
            rotate_after_bytes: 10,
            rotate_after: Duration::from_secs(60),
            ..SessionConfig::default()
        };
        let (mut a, _) = pair(Suite::AesGcm, cfg);
        let mut buf = [0u8; 128];
        assert_eq!(
            a.seal_record(Instant(0), b"\x10abc", &mut buf).unwrap(),
            4 + RECORD_OVERHEAD
        );
        assert!(!a.key_update_due(Instant(59_000_000)));
        assert!(a.key_update_due(Instant(60_000_000)));
        let n = a
            .seal_record(Instant(60_000_000), b"\x10abcdefghijk", &mut buf)
            .unwrap();
        assert_eq!(n, 12 + SEAL_MAX_OVERHEAD);
        assert!(
            a.key_update_due(Instant(60_000_001)),
            "12 bytes >= 10 under the new key"
        );
        assert_eq!(a.stats().key_updates_sent, 1);
    }

    #[test]
    fn buffer_too_small_changes_nothing() {
        let (mut a, mut b) = pair(Suite::AesGcm, SessionConfig::default());
        a.request_key_update();
        let mut small = [0u8; 20];
        assert_eq!(
            a.seal_record(Instant(0), b"\x10hi", &mut small),
            Err(SessionError::BufferTooSmall {
                needed: SEAL_MAX_OVERHEAD + 3
            })
        );
        assert_eq!(a.send.counter, 0);
        assert!(a.key_update_due(Instant(0)));
        let mut buf = [0u8; 128];
        let n = a.seal_record(Instant(0), b"\x10hi", &mut buf).unwrap();
        let mut seen = [0u8; 64];
        assert_eq!(open_all(&mut b, Instant(0), &mut buf[..n], &mut seen), 1);
        assert_eq!(
            a.seal_record(Instant(0), &[MSG_KEY_UPDATE, 0], &mut buf),
            Err(SessionError::ReservedType)
        );
    }

    #[test]
    fn malformed_key_update_and_bad_header_poison() {
        let (mut a, mut b) = pair(Suite::AesGcm, SessionConfig::default());
        let mut buf = [0u8; 64];
        // Forge a KeyUpdate with a bad flag by sealing it below the public API.
        a.seal_one(&[MSG_KEY_UPDATE, 7], &mut buf[..RECORD_OVERHEAD + 2])
            .unwrap();
        let header: [u8; 5] = buf[..5].try_into().unwrap();
        assert_eq!(
            b.open_record(Instant(0), &header, &mut buf[5..RECORD_OVERHEAD + 2]),
            Err(SessionError::BadKeyUpdate)
        );
        assert!(b.is_poisoned());
        let (_, mut c) = pair(Suite::AesGcm, SessionConfig::default());
        assert_eq!(
            c.open_record(Instant(0), &[0, 0, 0, 3, 0x17], &mut [0u8; 3]),
            Err(SessionError::Truncated)
        );
        assert!(c.is_poisoned());
        let (_, mut c) = pair(Suite::AesGcm, SessionConfig::default());
        assert_eq!(
            c.open_record(Instant(0), &[0, 0, 0, 20, 0x17], &mut [0u8; 21]),
            Err(SessionError::BadHeader)
        );
        let (_, mut c) = pair(Suite::AesGcm, SessionConfig::default());
        assert_eq!(
            c.open_record(Instant(0), &[0, 0, 0, 20, 0x03], &mut [0u8; 20]),
            Err(SessionError::BadHeader)
        );
    }

    #[test]
    fn hard_limit_refuses_sealing() {
        let (mut a, mut b) = pair(Suite::AesGcm, SessionConfig::default());
        a.set_hard_limit_for_test(5);
        b.set_hard_limit_for_test(5);
        let mut buf = [0u8; 64];
        let mut seen = [0u8; 64];
        for _ in 0..5 {
            let n = a.seal_record(Instant(0), b"\x10x", &mut buf).unwrap();
            open_all(&mut b, Instant(0), &mut buf[..n], &mut seen);
        }
        assert_eq!(
            a.seal_record(Instant(0), b"\x10x", &mut buf),
            Err(SessionError::KeyExhausted)
        );
        assert_eq!(
            a.seal_record(Instant(0), b"\x10x", &mut buf),
            Err(SessionError::KeyExhausted)
        );
        assert_eq!(a.send.counter, 5);
    }

    #[test]
    fn thresholds_are_clamped_below_the_hard_limit() {
        let cfg = SessionConfig {
            rotate_after_records: u64::MAX,
            rotate_after_bytes: 0,
            ..SessionConfig::default()
        };
        let (a, _) = pair(Suite::AesGcm, cfg);
        assert_eq!(a.config().rotate_after_records, AES_GCM_RECORD_LIMIT - 1);
        assert_eq!(a.config().rotate_after_bytes, 1);
        let (c, _) = pair(Suite::ChaChaPoly, cfg);
        assert_eq!(c.config().rotate_after_records, CHACHA_RECORD_LIMIT - 1);
    }
}
