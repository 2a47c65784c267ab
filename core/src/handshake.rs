//! cove's SYN / SYN-ACK / ACK handshake, carried as the three messages of Noise XX.
//!
//! These functions produce and consume frame **payloads**; the caller adds the 5-byte frame
//! header with type `FRAME_SYN`, `FRAME_SYN_ACK` or `FRAME_ACK`.
//!
//! ```text
//! SYN      [u8 version][u8 suite] ‖ Noise msg1 (e)              payload [u32 client_isn]
//! SYN-ACK  Noise msg2 (e, ee, s, es)  payload [u32 server_isn][u32 client_isn+1][32 ed25519][64 sig]
//! ACK      Noise msg3 (s, se)         payload [u32 server_isn+1][u8 mode][u8 n][name][32 ed25519][64 sig]
//! ```
//!
//! The prologue is `"cove/1" ‖ version ‖ suite`. Each signature is Ed25519 over a label and
//! the handshake hash `h` right before that message's payload is encrypted.

use crate::crypto::{
    CryptoError, CryptoProvider, HASH_LEN, Identity, SIGNATURE_LEN, Suite, SuiteSet, TAG_LEN,
};
use crate::noise::{HandshakeState, NoiseError, Role};
use crate::session::{Session, SessionConfig};
use crate::wire::{AuthMode, MAX_NAME_LEN, valid_name};
use core::fmt;
use rand_core::CryptoRng;
use zeroize::Zeroizing;

/// The protocol version this code speaks.
pub const PROTOCOL_VERSION: u8 = 1;
/// First bytes of the Noise prologue; the version and suite bytes follow.
pub const PROLOGUE_LABEL: &[u8] = b"cove/1";
/// Label the server signs, followed by `h`.
pub const SERVER_AUTH_LABEL: &[u8] = b"cove server auth v1";
/// Label the client signs, followed by `h`.
pub const CLIENT_AUTH_LABEL: &[u8] = b"cove client auth v1";

/// Length of the SYN payload (it has no variable part).
pub const SYN_LEN: usize = 2 + 32 + 4;
const SERVER_PAYLOAD_LEN: usize = 4 + 4 + 32 + SIGNATURE_LEN;
/// Length of the SYN-ACK payload (it has no variable part).
pub const SYN_ACK_LEN: usize = 32 + 32 + TAG_LEN + SERVER_PAYLOAD_LEN + TAG_LEN;
const CLIENT_FIXED_LEN: usize = 4 + 1 + 1 + 32 + SIGNATURE_LEN;
const ACK_TOKENS_LEN: usize = 32 + TAG_LEN;
/// Shortest ACK payload (one-byte name).
pub const ACK_MIN_LEN: usize = ACK_TOKENS_LEN + CLIENT_FIXED_LEN + 1 + TAG_LEN;
/// Longest ACK payload (name of [`MAX_NAME_LEN`] bytes).
pub const ACK_MAX_LEN: usize = ACK_TOKENS_LEN + CLIENT_FIXED_LEN + MAX_NAME_LEN + TAG_LEN;

/// Errors of the handshake. After any error other than `BufferTooSmall` and `OutOfOrder`
/// the handshake is dead; close the connection (after an alert where the protocol says so).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// `out` is too small; `needed` bytes are required. Nothing changed.
    BufferTooSmall {
        /// Bytes required.
        needed: usize,
    },
    /// The call does not fit the handshake's current step. Nothing changed.
    OutOfOrder,
    /// The SYN names a protocol version this side does not speak.
    UnsupportedVersion(u8),
    /// The SYN names an unknown suite or one this server does not allow.
    UnsupportedSuite(u8),
    /// A message has the wrong length or an inconsistent field.
    Malformed,
    /// Authentication failed: a tampered byte, a replayed message or mismatched prologues.
    Decrypt,
    /// The peer sent a low-order X25519 point.
    NonContributory,
    /// The peer's signature over the handshake hash did not verify.
    BadSignature,
    /// The peer acknowledged the wrong sequence number.
    BadAck,
    /// The nickname is not valid (see [`valid_name`]).
    InvalidName,
    /// The auth mode byte is neither register (1) nor login (2).
    InvalidMode,
    /// An earlier error made the handshake unusable.
    Failed,
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::BufferTooSmall { needed } => {
                write!(f, "buffer too small: {needed} bytes needed")
            }
            HandshakeError::OutOfOrder => f.write_str("handshake call out of order"),
            HandshakeError::UnsupportedVersion(v) => write!(f, "unsupported protocol version {v}"),
            HandshakeError::UnsupportedSuite(s) => write!(f, "unsupported cipher suite {s}"),
            HandshakeError::Malformed => f.write_str("malformed handshake message"),
            HandshakeError::Decrypt => f.write_str("handshake authentication failed"),
            HandshakeError::NonContributory => f.write_str("low-order X25519 point"),
            HandshakeError::BadSignature => f.write_str("bad identity signature"),
            HandshakeError::BadAck => f.write_str("wrong acknowledgement number"),
            HandshakeError::InvalidName => f.write_str("invalid nickname"),
            HandshakeError::InvalidMode => f.write_str("invalid auth mode"),
            HandshakeError::Failed => f.write_str("handshake already failed"),
        }
    }
}

impl core::error::Error for HandshakeError {}

impl From<NoiseError> for HandshakeError {
    fn from(e: NoiseError) -> Self {
        match e {
            NoiseError::BufferTooSmall { needed } => HandshakeError::BufferTooSmall { needed },
            NoiseError::OutOfOrder => HandshakeError::OutOfOrder,
            NoiseError::Truncated | NoiseError::TooLong => HandshakeError::Malformed,
            NoiseError::NonContributory => HandshakeError::NonContributory,
            NoiseError::Failed => HandshakeError::Failed,
            _ => HandshakeError::Decrypt,
        }
    }
}

/// What the client learns from the SYN-ACK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerHello {
    /// The server's Ed25519 identity key (compare with a pinned key).
    pub ed25519: [u8; 32],
    /// The server's X25519 static key (the Noise `rs`).
    pub x25519: [u8; 32],
    /// The server's initial sequence number.
    pub server_isn: u32,
}

/// What the server learns from the ACK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientHello {
    /// The nickname (validated with [`valid_name`]).
    pub name: heapless::String<MAX_NAME_LEN>,
    /// Register or login.
    pub mode: AuthMode,
    /// The client's Ed25519 identity key (proven by the signature).
    pub ed25519: [u8; 32],
    /// The client's X25519 static key (the Noise `rs`).
    pub x25519: [u8; 32],
    /// The client's initial sequence number.
    pub client_isn: u32,
}

/// The Noise prologue for `version` and `suite`.
pub fn prologue(version: u8, suite: Suite) -> [u8; 8] {
    let mut p = [0u8; 8];
    p[..6].copy_from_slice(PROLOGUE_LABEL);
    p[6] = version;
    p[7] = suite.to_u8();
    p
}

fn random_secret<R: CryptoRng + ?Sized>(rng: &mut R) -> Zeroizing<[u8; 32]> {
    let mut e = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(&mut e[..]);
    e
}

fn random_u32<R: CryptoRng + ?Sized>(rng: &mut R) -> u32 {
    let mut b = [0u8; 4];
    rng.fill_bytes(&mut b);
    u32::from_be_bytes(b)
}

fn signed_message(label: &[u8], h: &[u8; HASH_LEN]) -> ([u8; 64], usize) {
    let mut m = [0u8; 64];
    m[..label.len()].copy_from_slice(label);
    m[label.len()..label.len() + HASH_LEN].copy_from_slice(h);
    (m, label.len() + HASH_LEN)
}

fn sign(
    provider: &dyn CryptoProvider,
    id: &Identity,
    label: &[u8],
    h: &[u8; HASH_LEN],
) -> [u8; 64] {
    let (m, n) = signed_message(label, h);
    provider.ed25519_sign(id.ed25519_secret(), &m[..n])
}

fn verify(
    provider: &dyn CryptoProvider,
    key: &[u8; 32],
    label: &[u8],
    h: &[u8; HASH_LEN],
    sig: &[u8; 64],
) -> Result<(), HandshakeError> {
    let (m, n) = signed_message(label, h);
    provider
        .ed25519_verify(key, &m[..n], sig)
        .map_err(|e| match e {
            CryptoError::BadSignature => HandshakeError::BadSignature,
            _ => HandshakeError::BadSignature,
        })
}

fn array<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[..N]);
    a
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes(array(b))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClientState {
    Start,
    SentSyn,
    GotSynAck,
    Done,
    Failed,
}

/// The client side: `write_syn` → `read_syn_ack` → `write_ack`.
pub struct ClientHandshake {
    provider: &'static dyn CryptoProvider,
    identity: Identity,
    suite: Suite,
    mode: AuthMode,
    name: heapless::String<MAX_NAME_LEN>,
    noise: HandshakeState,
    client_isn: u32,
    server_isn: u32,
    session_config: SessionConfig,
    state: ClientState,
}

impl fmt::Debug for ClientHandshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientHandshake")
            .field("suite", &self.suite)
            .field("name", &self.name)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl ClientHandshake {
    /// Starts a handshake as `name` with `identity`, offering `suite`. Draws the 32-byte
    /// ephemeral secret, then the 4-byte ISN (big-endian) from `rng`.
    pub fn new<R: CryptoRng + ?Sized>(
        provider: &'static dyn CryptoProvider,
        identity: &Identity,
        suite: Suite,
        mode: AuthMode,
        name: &str,
        rng: &mut R,
    ) -> Result<ClientHandshake, HandshakeError> {
        if !valid_name(name) {
            return Err(HandshakeError::InvalidName);
        }
        let mut n = heapless::String::new();
        n.push_str(name).map_err(|_| HandshakeError::InvalidName)?;
        let e = random_secret(rng);
        let client_isn = random_u32(rng);
        let noise = HandshakeState::with_static_public(
            provider,
            suite,
            Role::Initiator,
            identity.x25519_secret(),
            &identity.public().x25519,
            &e,
            &prologue(PROTOCOL_VERSION, suite),
        );
        Ok(ClientHandshake {
            provider,
            identity: identity.clone(),
            suite,
            mode,
            name: n,
            noise,
            client_isn,
            server_isn: 0,
            session_config: SessionConfig::default(),
            state: ClientState::Start,
        })
    }

    /// Sets the rotation thresholds of the resulting session.
    pub fn set_session_config(&mut self, config: SessionConfig) {
        self.session_config = config;
    }

    /// The client's initial sequence number.
    pub fn client_isn(&self) -> u32 {
        self.client_isn
    }

    /// Length of the ACK payload this client will send.
    pub fn ack_len(&self) -> usize {
        ACK_TOKENS_LEN + CLIENT_FIXED_LEN + self.name.len() + TAG_LEN
    }

    fn expect(&self, s: ClientState) -> Result<(), HandshakeError> {
        match self.state {
            ClientState::Failed => Err(HandshakeError::Failed),
            st if st == s => Ok(()),
            _ => Err(HandshakeError::OutOfOrder),
        }
    }

    fn fail<T>(&mut self, e: HandshakeError) -> Result<T, HandshakeError> {
        self.state = ClientState::Failed;
        Err(e)
    }

    /// Writes the SYN payload ([`SYN_LEN`] bytes) into `out`.
    pub fn write_syn(&mut self, out: &mut [u8]) -> Result<usize, HandshakeError> {
        self.expect(ClientState::Start)?;
        if out.len() < SYN_LEN {
            return Err(HandshakeError::BufferTooSmall { needed: SYN_LEN });
        }
        out[0] = PROTOCOL_VERSION;
        out[1] = self.suite.to_u8();
        match self
            .noise
            .write_message(&self.client_isn.to_be_bytes(), &mut out[2..SYN_LEN])
        {
            Ok(n) => {
                self.state = ClientState::SentSyn;
                Ok(2 + n)
            }
            Err(e) => self.fail(e.into()),
        }
    }

    /// Reads the SYN-ACK payload: authenticates the server and checks its ack.
    pub fn read_syn_ack(&mut self, payload: &[u8]) -> Result<ServerHello, HandshakeError> {
        self.expect(ClientState::SentSyn)?;
        match self.read_syn_ack_inner(payload) {
            Ok(h) => {
                self.state = ClientState::GotSynAck;
                Ok(h)
            }
            Err(e) => self.fail(e),
        }
    }

    fn read_syn_ack_inner(&mut self, payload: &[u8]) -> Result<ServerHello, HandshakeError> {
        if payload.len() != SYN_ACK_LEN {
            return Err(HandshakeError::Malformed);
        }
        let t = self.noise.read_tokens(payload)?;
        let h = self.noise.handshake_hash();
        let mut buf = [0u8; SERVER_PAYLOAD_LEN + TAG_LEN];
        let n = self.noise.read_payload(&payload[t..], &mut buf)?;
        if n != SERVER_PAYLOAD_LEN {
            return Err(HandshakeError::Malformed);
        }
        let server_isn = be32(&buf[0..4]);
        let ack = be32(&buf[4..8]);
        let ed25519: [u8; 32] = array(&buf[8..40]);
        let sig: [u8; 64] = array(&buf[40..104]);
        if ack != self.client_isn.wrapping_add(1) {
            return Err(HandshakeError::BadAck);
        }
        verify(self.provider, &ed25519, SERVER_AUTH_LABEL, &h, &sig)?;
        let x25519 = self
            .noise
            .remote_static()
            .ok_or(HandshakeError::Malformed)?;
        self.server_isn = server_isn;
        Ok(ServerHello {
            ed25519,
            x25519,
            server_isn,
        })
    }

    /// Writes the ACK payload ([`ack_len`](Self::ack_len) bytes) and returns the
    /// established [`Session`]. A too-small `out` changes nothing.
    pub fn write_ack(&mut self, out: &mut [u8]) -> Result<(usize, Session), HandshakeError> {
        self.expect(ClientState::GotSynAck)?;
        let needed = self.ack_len();
        if out.len() < needed {
            return Err(HandshakeError::BufferTooSmall { needed });
        }
        match self.write_ack_inner(&mut out[..needed]) {
            Ok(r) => {
                self.state = ClientState::Done;
                Ok(r)
            }
            Err(e) => self.fail(e),
        }
    }

    fn write_ack_inner(&mut self, out: &mut [u8]) -> Result<(usize, Session), HandshakeError> {
        let t = self.noise.write_tokens(out)?;
        let h = self.noise.handshake_hash();
        let mut pl = [0u8; CLIENT_FIXED_LEN + MAX_NAME_LEN];
        let name = self.name.as_bytes();
        pl[0..4].copy_from_slice(&self.server_isn.wrapping_add(1).to_be_bytes());
        pl[4] = self.mode as u8;
        pl[5] = name.len() as u8;
        let mut i = 6 + name.len();
        pl[6..i].copy_from_slice(name);
        pl[i..i + 32].copy_from_slice(&self.identity.public().ed25519);
        i += 32;
        pl[i..i + 64].copy_from_slice(&sign(self.provider, &self.identity, CLIENT_AUTH_LABEL, &h));
        i += 64;
        let p = self.noise.write_payload(&pl[..i], &mut out[t..])?;
        let (k1, k2) = self.noise.split_keys()?;
        let session = Session::new(
            self.provider,
            self.suite,
            &k1,
            &k2,
            self.noise.handshake_hash(),
            self.session_config,
        );
        Ok((t + p, session))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ServerState {
    Start,
    GotSyn,
    SentSynAck,
    Done,
    Failed,
}

/// The server side: `read_syn` → `write_syn_ack` → `read_ack`.
pub struct ServerHandshake {
    provider: &'static dyn CryptoProvider,
    identity: Identity,
    allowed: SuiteSet,
    e: Zeroizing<[u8; 32]>,
    noise: Option<HandshakeState>,
    client_isn: u32,
    server_isn: u32,
    session_config: SessionConfig,
    state: ServerState,
}

impl fmt::Debug for ServerHandshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandshake")
            .field("allowed", &self.allowed)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl ServerHandshake {
    /// Prepares to answer one SYN, accepting the suites in `allowed`. Draws the 32-byte
    /// ephemeral secret, then the 4-byte ISN (big-endian) from `rng`.
    pub fn new<R: CryptoRng + ?Sized>(
        provider: &'static dyn CryptoProvider,
        identity: &Identity,
        allowed: SuiteSet,
        rng: &mut R,
    ) -> ServerHandshake {
        let e = random_secret(rng);
        let server_isn = random_u32(rng);
        ServerHandshake {
            provider,
            identity: identity.clone(),
            allowed,
            e,
            noise: None,
            client_isn: 0,
            server_isn,
            session_config: SessionConfig::default(),
            state: ServerState::Start,
        }
    }

    /// Sets the rotation thresholds of the resulting session.
    pub fn set_session_config(&mut self, config: SessionConfig) {
        self.session_config = config;
    }

    /// The server's initial sequence number.
    pub fn server_isn(&self) -> u32 {
        self.server_isn
    }

    /// The suite the client chose, once the SYN was read.
    pub fn suite(&self) -> Option<Suite> {
        self.noise.as_ref().map(|n| n.suite())
    }

    fn expect(&self, s: ServerState) -> Result<(), HandshakeError> {
        match self.state {
            ServerState::Failed => Err(HandshakeError::Failed),
            st if st == s => Ok(()),
            _ => Err(HandshakeError::OutOfOrder),
        }
    }

    fn fail<T>(&mut self, e: HandshakeError) -> Result<T, HandshakeError> {
        self.state = ServerState::Failed;
        Err(e)
    }

    /// Reads the SYN payload. [`HandshakeError::UnsupportedVersion`] and
    /// [`HandshakeError::UnsupportedSuite`] let the server answer with an alert.
    pub fn read_syn(&mut self, payload: &[u8]) -> Result<(), HandshakeError> {
        self.expect(ServerState::Start)?;
        match self.read_syn_inner(payload) {
            Ok(()) => {
                self.state = ServerState::GotSyn;
                Ok(())
            }
            Err(e) => self.fail(e),
        }
    }

    fn read_syn_inner(&mut self, payload: &[u8]) -> Result<(), HandshakeError> {
        let [version, suite, ..] = *payload else {
            return Err(HandshakeError::Malformed);
        };
        if version != PROTOCOL_VERSION {
            return Err(HandshakeError::UnsupportedVersion(version));
        }
        let s = Suite::from_u8(suite)
            .filter(|s| self.allowed.contains(*s))
            .ok_or(HandshakeError::UnsupportedSuite(suite))?;
        if payload.len() != SYN_LEN {
            return Err(HandshakeError::Malformed);
        }
        let mut noise = HandshakeState::with_static_public(
            self.provider,
            s,
            Role::Responder,
            self.identity.x25519_secret(),
            &self.identity.public().x25519,
            &self.e,
            &prologue(version, s),
        );
        let mut isn = [0u8; 4];
        let n = noise.read_message(&payload[2..], &mut isn)?;
        if n != 4 {
            return Err(HandshakeError::Malformed);
        }
        self.client_isn = u32::from_be_bytes(isn);
        self.noise = Some(noise);
        Ok(())
    }

    /// Writes the SYN-ACK payload ([`SYN_ACK_LEN`] bytes) into `out`.
    pub fn write_syn_ack(&mut self, out: &mut [u8]) -> Result<usize, HandshakeError> {
        self.expect(ServerState::GotSyn)?;
        if out.len() < SYN_ACK_LEN {
            return Err(HandshakeError::BufferTooSmall {
                needed: SYN_ACK_LEN,
            });
        }
        match self.write_syn_ack_inner(&mut out[..SYN_ACK_LEN]) {
            Ok(n) => {
                self.state = ServerState::SentSynAck;
                Ok(n)
            }
            Err(e) => self.fail(e),
        }
    }

    fn write_syn_ack_inner(&mut self, out: &mut [u8]) -> Result<usize, HandshakeError> {
        let noise = self.noise.as_mut().ok_or(HandshakeError::OutOfOrder)?;
        let t = noise.write_tokens(out)?;
        let h = noise.handshake_hash();
        let mut pl = [0u8; SERVER_PAYLOAD_LEN];
        pl[0..4].copy_from_slice(&self.server_isn.to_be_bytes());
        pl[4..8].copy_from_slice(&self.client_isn.wrapping_add(1).to_be_bytes());
        pl[8..40].copy_from_slice(&self.identity.public().ed25519);
        pl[40..104].copy_from_slice(&sign(self.provider, &self.identity, SERVER_AUTH_LABEL, &h));
        let p = noise.write_payload(&pl, &mut out[t..])?;
        Ok(t + p)
    }

    /// Reads the ACK payload: authenticates the client and returns who it is together with
    /// the established [`Session`].
    pub fn read_ack(&mut self, payload: &[u8]) -> Result<(ClientHello, Session), HandshakeError> {
        self.expect(ServerState::SentSynAck)?;
        match self.read_ack_inner(payload) {
            Ok(r) => {
                self.state = ServerState::Done;
                Ok(r)
            }
            Err(e) => self.fail(e),
        }
    }

    fn read_ack_inner(&mut self, payload: &[u8]) -> Result<(ClientHello, Session), HandshakeError> {
        if !(ACK_MIN_LEN..=ACK_MAX_LEN).contains(&payload.len()) {
            return Err(HandshakeError::Malformed);
        }
        let noise = self.noise.as_mut().ok_or(HandshakeError::OutOfOrder)?;
        let t = noise.read_tokens(payload)?;
        let h = noise.handshake_hash();
        let mut buf = [0u8; CLIENT_FIXED_LEN + MAX_NAME_LEN + TAG_LEN];
        let n = noise.read_payload(&payload[t..], &mut buf)?;
        let pl = &buf[..n];
        if pl.len() < CLIENT_FIXED_LEN {
            return Err(HandshakeError::Malformed);
        }
        let ack = be32(&pl[0..4]);
        let mode = AuthMode::from_u8(pl[4]);
        let name_len = pl[5] as usize;
        if pl.len() != CLIENT_FIXED_LEN + name_len {
            return Err(HandshakeError::Malformed);
        }
        if ack != self.server_isn.wrapping_add(1) {
            return Err(HandshakeError::BadAck);
        }
        let mode = mode.ok_or(HandshakeError::InvalidMode)?;
        let name_bytes = &pl[6..6 + name_len];
        let name_str = core::str::from_utf8(name_bytes).map_err(|_| HandshakeError::InvalidName)?;
        if !valid_name(name_str) {
            return Err(HandshakeError::InvalidName);
        }
        let mut name = heapless::String::new();
        name.push_str(name_str)
            .map_err(|_| HandshakeError::InvalidName)?;
        let i = 6 + name_len;
        let ed25519: [u8; 32] = array(&pl[i..i + 32]);
        let sig: [u8; 64] = array(&pl[i + 32..i + 96]);
        verify(self.provider, &ed25519, CLIENT_AUTH_LABEL, &h, &sig)?;
        let x25519 = noise.remote_static().ok_or(HandshakeError::Malformed)?;
        let (k1, k2) = noise.split_keys()?;
        let session = Session::new(
            self.provider,
            noise.suite(),
            &k2,
            &k1,
            noise.handshake_hash(),
            self.session_config,
        );
        Ok((
            ClientHello {
                name,
                mode,
                ed25519,
                x25519,
                client_isn: self.client_isn,
            },
            session,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::RUST_CRYPTO;
    use crate::time::Instant;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn ids() -> (Identity, Identity) {
        (
            Identity::from_bytes(&[1; 64]),
            Identity::from_bytes(&[2; 64]),
        )
    }

    struct Msgs {
        syn: [u8; SYN_LEN],
        syn_ack: [u8; SYN_ACK_LEN],
        ack: [u8; ACK_MAX_LEN],
        ack_len: usize,
    }

    fn start(suite: Suite, seed: u8) -> (ClientHandshake, ServerHandshake) {
        let (c, s) = ids();
        let mut rng = ChaCha20Rng::from_seed([seed; 32]);
        let client =
            ClientHandshake::new(&RUST_CRYPTO, &c, suite, AuthMode::Login, "alice", &mut rng)
                .unwrap();
        let server = ServerHandshake::new(&RUST_CRYPTO, &s, SuiteSet::ALL, &mut rng);
        (client, server)
    }

    /// Runs a whole handshake, returning the messages and both ends.
    fn run(suite: Suite, seed: u8) -> (Msgs, ClientHello, ServerHello, Session, Session) {
        let (mut client, mut server) = start(suite, seed);
        let mut m = Msgs {
            syn: [0; SYN_LEN],
            syn_ack: [0; SYN_ACK_LEN],
            ack: [0; ACK_MAX_LEN],
            ack_len: 0,
        };
        assert_eq!(client.write_syn(&mut m.syn).unwrap(), SYN_LEN);
        server.read_syn(&m.syn).unwrap();
        assert_eq!(server.write_syn_ack(&mut m.syn_ack).unwrap(), SYN_ACK_LEN);
        let sh = client.read_syn_ack(&m.syn_ack).unwrap();
        let (n, cs) = client.write_ack(&mut m.ack).unwrap();
        m.ack_len = n;
        let (ch, ss) = server.read_ack(&m.ack[..n]).unwrap();
        (m, ch, sh, cs, ss)
    }

    #[test]
    fn end_to_end_both_suites() {
        let (c, s) = ids();
        for suite in Suite::ALL {
            let (m, ch, sh, mut cs, mut ss) = run(suite, 3);
            assert_eq!(m.syn[..2], [1, suite.to_u8()]);
            assert_eq!(m.ack_len, ACK_MIN_LEN + 4);
            assert_eq!(ch.name.as_str(), "alice");
            assert_eq!(ch.mode, AuthMode::Login);
            assert_eq!(ch.ed25519, c.public().ed25519);
            assert_eq!(ch.x25519, c.public().x25519);
            assert_eq!(sh.ed25519, s.public().ed25519);
            assert_eq!(sh.x25519, s.public().x25519);
            assert_eq!(cs.handshake_hash(), ss.handshake_hash());
            assert_eq!(cs.suite(), suite);
            let mut buf = [0u8; 64];
            let n = cs.seal_record(Instant(0), b"\x10hi", &mut buf).unwrap();
            let h: [u8; 5] = buf[..5].try_into().unwrap();
            assert_eq!(
                ss.open_record(Instant(0), &h, &mut buf[5..n]).unwrap(),
                b"\x10hi"
            );
            let n = ss.seal_record(Instant(0), b"\x11yo", &mut buf).unwrap();
            let h: [u8; 5] = buf[..5].try_into().unwrap();
            assert_eq!(
                cs.open_record(Instant(0), &h, &mut buf[5..n]).unwrap(),
                b"\x11yo"
            );
        }
    }

    #[test]
    fn isns_are_acked() {
        let (mut client, mut server) = start(Suite::AesGcm, 5);
        let mut syn = [0u8; SYN_LEN];
        client.write_syn(&mut syn).unwrap();
        server.read_syn(&syn).unwrap();
        assert_eq!(server.client_isn, client.client_isn());
        let mut sa = [0u8; SYN_ACK_LEN];
        server.write_syn_ack(&mut sa).unwrap();
        assert_eq!(
            client.read_syn_ack(&sa).unwrap().server_isn,
            server.server_isn()
        );
    }

    #[test]
    fn tampered_byte_in_any_message_fails() {
        let (good, ..) = run(Suite::AesGcm, 4);
        for i in 0..SYN_LEN {
            let (mut client, mut server) = start(Suite::AesGcm, 4);
            let mut syn = [0u8; SYN_LEN];
            client.write_syn(&mut syn).unwrap();
            syn[i] ^= 1;
            let failed = match server.read_syn(&syn) {
                Err(_) => true,
                Ok(()) => {
                    let mut sa = [0u8; SYN_ACK_LEN];
                    server.write_syn_ack(&mut sa).unwrap();
                    client.read_syn_ack(&sa).is_err()
                }
            };
            assert!(failed, "SYN byte {i}");
        }
        // Every 5th byte and the last one, to keep debug builds quick.
        for i in (0..SYN_ACK_LEN).step_by(5).chain([SYN_ACK_LEN - 1]) {
            let (mut client, _) = start(Suite::AesGcm, 4);
            client.write_syn(&mut [0u8; SYN_LEN]).unwrap();
            let mut sa = good.syn_ack;
            sa[i] ^= 1;
            assert!(client.read_syn_ack(&sa).is_err(), "SYN-ACK byte {i}");
            assert_eq!(
                client.read_syn_ack(&good.syn_ack),
                Err(HandshakeError::Failed)
            );
        }
        for i in (0..good.ack_len).step_by(5).chain([good.ack_len - 1]) {
            let (mut client, mut server) = start(Suite::AesGcm, 4);
            client.write_syn(&mut [0u8; SYN_LEN]).unwrap();
            server.read_syn(&good.syn).unwrap();
            server.write_syn_ack(&mut [0u8; SYN_ACK_LEN]).unwrap();
            let mut ack = good.ack;
            ack[i] ^= 1;
            assert!(
                server.read_ack(&ack[..good.ack_len]).is_err(),
                "ACK byte {i}"
            );
        }
        // And the untampered messages replayed into a fresh pair still work (deterministic).
        let (mut client, mut server) = start(Suite::AesGcm, 4);
        client.write_syn(&mut [0u8; SYN_LEN]).unwrap();
        server.read_syn(&good.syn).unwrap();
        server.write_syn_ack(&mut [0u8; SYN_ACK_LEN]).unwrap();
        assert!(server.read_ack(&good.ack[..good.ack_len]).is_ok());
    }

    #[test]
    fn suite_and_version_negotiation_errors() {
        let (mut client, _) = start(Suite::AesGcm, 6);
        let (_, s) = ids();
        let mut server = ServerHandshake::new(
            &RUST_CRYPTO,
            &s,
            SuiteSet::only(Suite::ChaChaPoly),
            &mut ChaCha20Rng::from_seed([0; 32]),
        );
        let mut syn = [0u8; SYN_LEN];
        client.write_syn(&mut syn).unwrap();
        assert_eq!(
            server.read_syn(&syn),
            Err(HandshakeError::UnsupportedSuite(1))
        );
        let mut server = ServerHandshake::new(
            &RUST_CRYPTO,
            &s,
            SuiteSet::ALL,
            &mut ChaCha20Rng::from_seed([0; 32]),
        );
        syn[0] = 2;
        assert_eq!(
            server.read_syn(&syn),
            Err(HandshakeError::UnsupportedVersion(2))
        );
        let mut server = ServerHandshake::new(
            &RUST_CRYPTO,
            &s,
            SuiteSet::ALL,
            &mut ChaCha20Rng::from_seed([0; 32]),
        );
        syn[0] = 1;
        syn[1] = 9;
        assert_eq!(
            server.read_syn(&syn),
            Err(HandshakeError::UnsupportedSuite(9))
        );
        let mut server = ServerHandshake::new(
            &RUST_CRYPTO,
            &s,
            SuiteSet::ALL,
            &mut ChaCha20Rng::from_seed([0; 32]),
        );
        syn[1] = 1;
        assert_eq!(
            server.read_syn(&syn[..SYN_LEN - 1]),
            Err(HandshakeError::Malformed)
        );
        let mut server = ServerHandshake::new(
            &RUST_CRYPTO,
            &s,
            SuiteSet::ALL,
            &mut ChaCha20Rng::from_seed([0; 32]),
        );
        assert_eq!(server.read_syn(&[1]), Err(HandshakeError::Malformed));
    }

    /// Builds the server's SYN-ACK by hand with a chosen ack and signature.
    fn forged_syn_ack(
        server: &mut ServerHandshake,
        ack: u32,
        sign_h: Option<[u8; 32]>,
        out: &mut [u8],
    ) {
        let noise = server.noise.as_mut().unwrap();
        let t = noise.write_tokens(out).unwrap();
        let h = sign_h.unwrap_or(noise.handshake_hash());
        let mut pl = [0u8; SERVER_PAYLOAD_LEN];
        pl[0..4].copy_from_slice(&server.server_isn.to_be_bytes());
        pl[4..8].copy_from_slice(&ack.to_be_bytes());
        pl[8..40].copy_from_slice(&server.identity.public().ed25519);
        pl[40..104].copy_from_slice(&sign(&RUST_CRYPTO, &server.identity, SERVER_AUTH_LABEL, &h));
        noise.write_payload(&pl, &mut out[t..]).unwrap();
    }

    #[test]
    fn bad_server_signature_and_bad_ack() {
        for (ack_delta, h, want) in [
            (1u32, Some([0u8; 32]), HandshakeError::BadSignature),
            (2, None, HandshakeError::BadAck),
            (0, None, HandshakeError::BadAck),
        ] {
            let (mut client, mut server) = start(Suite::ChaChaPoly, 7);
            let mut syn = [0u8; SYN_LEN];
            client.write_syn(&mut syn).unwrap();
            server.read_syn(&syn).unwrap();
            let mut sa = [0u8; SYN_ACK_LEN];
            forged_syn_ack(
                &mut server,
                client.client_isn().wrapping_add(ack_delta),
                h,
                &mut sa,
            );
            assert_eq!(client.read_syn_ack(&sa), Err(want));
        }
    }

    /// Builds the client's ACK by hand with chosen fields.
    fn forged_ack(
        client: &mut ClientHandshake,
        ack: u32,
        mode: u8,
        name: &[u8],
        sign_h: Option<[u8; 32]>,
        out: &mut [u8],
    ) -> usize {
        let t = client.noise.write_tokens(out).unwrap();
        let h = sign_h.unwrap_or(client.noise.handshake_hash());
        let mut pl = [0u8; 200];
        pl[0..4].copy_from_slice(&ack.to_be_bytes());
        pl[4] = mode;
        pl[5] = name.len() as u8;
        let mut i = 6 + name.len();
        pl[6..i].copy_from_slice(name);
        pl[i..i + 32].copy_from_slice(&client.identity.public().ed25519);
        i += 32;
        pl[i..i + 64].copy_from_slice(&sign(&RUST_CRYPTO, &client.identity, CLIENT_AUTH_LABEL, &h));
        i += 64;
        t + client.noise.write_payload(&pl[..i], &mut out[t..]).unwrap()
    }

    #[test]
    fn bad_client_ack_fields() {
        type Case<'a> = (u32, u8, &'a [u8], Option<[u8; 32]>, HandshakeError);
        let cases: [Case; 5] = [
            (1, 1, b"bob", Some([1; 32]), HandshakeError::BadSignature),
            (2, 1, b"bob", None, HandshakeError::BadAck),
            (1, 3, b"bob", None, HandshakeError::InvalidMode),
            (1, 1, b"b b", None, HandshakeError::InvalidName),
            (1, 1, b"", None, HandshakeError::Malformed),
        ];
        for (delta, mode, name, h, want) in cases {
            let (mut client, mut server) = start(Suite::AesGcm, 8);
            let mut syn = [0u8; SYN_LEN];
            client.write_syn(&mut syn).unwrap();
            server.read_syn(&syn).unwrap();
            let mut sa = [0u8; SYN_ACK_LEN];
            server.write_syn_ack(&mut sa).unwrap();
            let sh = client.read_syn_ack(&sa).unwrap();
            let mut ack = [0u8; 300];
            let n = forged_ack(
                &mut client,
                sh.server_isn.wrapping_add(delta),
                mode,
                name,
                h,
                &mut ack,
            );
            assert_eq!(
                server.read_ack(&ack[..n]).map(|_| ()),
                Err(want),
                "{name:?}"
            );
        }
    }

    #[test]
    fn out_of_order_calls() {
        let (mut client, mut server) = start(Suite::AesGcm, 9);
        let mut buf = [0u8; 256];
        assert_eq!(
            client.read_syn_ack(&[0u8; SYN_ACK_LEN]),
            Err(HandshakeError::OutOfOrder)
        );
        assert_eq!(
            client.write_ack(&mut buf).map(|_| ()),
            Err(HandshakeError::OutOfOrder)
        );
        assert_eq!(
            server.write_syn_ack(&mut buf),
            Err(HandshakeError::OutOfOrder)
        );
        assert_eq!(
            server.read_ack(&buf[..ACK_MIN_LEN]).map(|_| ()),
            Err(HandshakeError::OutOfOrder)
        );
        let mut syn = [0u8; SYN_LEN];
        client.write_syn(&mut syn).unwrap();
        assert_eq!(client.write_syn(&mut syn), Err(HandshakeError::OutOfOrder));
        server.read_syn(&syn).unwrap();
        assert_eq!(server.read_syn(&syn), Err(HandshakeError::OutOfOrder));
        let mut sa = [0u8; SYN_ACK_LEN];
        server.write_syn_ack(&mut sa).unwrap();
        client.read_syn_ack(&sa).unwrap();
        // Replayed SYN-ACK on the same handshake.
        assert_eq!(client.read_syn_ack(&sa), Err(HandshakeError::OutOfOrder));
        let (n, _) = client.write_ack(&mut buf).unwrap();
        assert_eq!(
            client.write_ack(&mut buf).map(|_| ()),
            Err(HandshakeError::OutOfOrder)
        );
        server.read_ack(&buf[..n]).unwrap();
        assert_eq!(
            server.read_ack(&buf[..n]).map(|_| ()),
            Err(HandshakeError::OutOfOrder)
        );
    }

    #[test]
    fn syn_ack_replayed_into_another_handshake_fails() {
        let (old, ..) = run(Suite::AesGcm, 10);
        let (mut client, _) = start(Suite::AesGcm, 11);
        client.write_syn(&mut [0u8; SYN_LEN]).unwrap();
        assert_eq!(
            client.read_syn_ack(&old.syn_ack),
            Err(HandshakeError::Decrypt)
        );
    }

    #[test]
    fn low_order_points_rejected() {
        // Client sends an all-zero ephemeral: the server's `ee` is non-contributory.
        let (mut client, mut server) = start(Suite::AesGcm, 12);
        let mut syn = [0u8; SYN_LEN];
        client.write_syn(&mut syn).unwrap();
        syn[2..34].fill(0);
        server.read_syn(&syn).unwrap();
        assert_eq!(
            server.write_syn_ack(&mut [0u8; SYN_ACK_LEN]),
            Err(HandshakeError::NonContributory)
        );
        assert_eq!(
            server.write_syn_ack(&mut [0u8; SYN_ACK_LEN]),
            Err(HandshakeError::Failed)
        );
        // Server answers with an all-zero ephemeral.
        let (good, ..) = run(Suite::AesGcm, 12);
        let (mut client, _) = start(Suite::AesGcm, 12);
        client.write_syn(&mut [0u8; SYN_LEN]).unwrap();
        let mut sa = good.syn_ack;
        sa[..32].fill(0);
        assert_eq!(
            client.read_syn_ack(&sa),
            Err(HandshakeError::NonContributory)
        );
    }

    #[test]
    fn small_buffers_change_nothing() {
        let (mut client, mut server) = start(Suite::ChaChaPoly, 13);
        let mut small = [0u8; 10];
        assert_eq!(
            client.write_syn(&mut small),
            Err(HandshakeError::BufferTooSmall { needed: SYN_LEN })
        );
        let mut syn = [0u8; SYN_LEN];
        client.write_syn(&mut syn).unwrap();
        server.read_syn(&syn).unwrap();
        assert_eq!(
            server.write_syn_ack(&mut small),
            Err(HandshakeError::BufferTooSmall {
                needed: SYN_ACK_LEN
            })
        );
        let mut sa = [0u8; SYN_ACK_LEN];
        server.write_syn_ack(&mut sa).unwrap();
        client.read_syn_ack(&sa).unwrap();
        let needed = client.ack_len();
        assert_eq!(
            client.write_ack(&mut small).map(|_| ()),
            Err(HandshakeError::BufferTooSmall { needed })
        );
        let mut ack = [0u8; ACK_MAX_LEN];
        let (n, _) = client.write_ack(&mut ack).unwrap();
        assert_eq!(n, needed);
        server.read_ack(&ack[..n]).unwrap();
    }

    #[test]
    fn names_and_sizes() {
        let (c, _) = ids();
        let mut rng = ChaCha20Rng::from_seed([0; 32]);
        for bad in ["", "a b", "ünï", "0123456789012345678901234567890123"] {
            assert_eq!(
                ClientHandshake::new(
                    &RUST_CRYPTO,
                    &c,
                    Suite::AesGcm,
                    AuthMode::Register,
                    bad,
                    &mut rng
                )
                .map(|_| ()),
                Err(HandshakeError::InvalidName)
            );
        }
        let long = "a".repeat(MAX_NAME_LEN);
        let ch = ClientHandshake::new(
            &RUST_CRYPTO,
            &c,
            Suite::AesGcm,
            AuthMode::Register,
            &long,
            &mut rng,
        )
        .unwrap();
        assert_eq!(ch.ack_len(), ACK_MAX_LEN);
        assert_eq!(
            (SYN_LEN, SYN_ACK_LEN, ACK_MIN_LEN, ACK_MAX_LEN),
            (38, 200, 167, 198)
        );
    }
}
