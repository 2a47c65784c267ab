//! The server side of the handshake: `read_syn` → `write_syn_ack` → `read_ack`.

use crate::crypto::{CryptoProvider, Identity, Suite, SuiteSet, TAG_LEN};
use crate::noise::{HandshakeState, Role};
use crate::session::{Session, SessionConfig};
use crate::wire::{AuthMode, DEFAULT_MAX_FRAME, MAX_NAME_LEN, MIN_FRAME_LIMIT, valid_name};
use core::fmt;
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::payload::{
    ACK_MAX_LEN, ACK_MIN_LEN, CLIENT_AUTH_LABEL, CLIENT_FIXED_LEN, ClientHello, FRAME_LIMIT_LEN,
    PROTOCOL_VERSION, SERVER_AUTH_LABEL, SERVER_PAYLOAD_LEN, SYN_ACK_LEN, SYN_LEN, array, be32,
    prologue, sign, verify,
};
use super::{HandshakeError, random_secret, random_u32};

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
    // `pub(super)` fields are read by the tests, which forge messages with this side's
    // own keys, hash and sequence numbers.
    pub(super) identity: Identity,
    allowed: SuiteSet,
    e: Zeroizing<[u8; 32]>,
    pub(super) noise: Option<HandshakeState>,
    pub(super) client_isn: u32,
    pub(super) server_isn: u32,
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
        let mut buf = [0u8; CLIENT_FIXED_LEN + MAX_NAME_LEN + FRAME_LIMIT_LEN + TAG_LEN];
        let n = noise.read_payload(&payload[t..], &mut buf)?;
        let pl = &buf[..n];
        if pl.len() < CLIENT_FIXED_LEN {
            return Err(HandshakeError::Malformed);
        }
        let ack = be32(&pl[0..4]);
        let mode = AuthMode::from_u8(pl[4]);
        let name_len = pl[5] as usize;
        // The frame limit is the one optional field: present exactly when the payload is
        // FRAME_LIMIT_LEN longer than its fixed part and name.
        let fixed = CLIENT_FIXED_LEN + name_len;
        let max_frame = if pl.len() == fixed {
            DEFAULT_MAX_FRAME
        } else if pl.len() == fixed + FRAME_LIMIT_LEN {
            be32(&pl[fixed..])
        } else {
            return Err(HandshakeError::Malformed);
        };
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
        if max_frame < MIN_FRAME_LIMIT {
            return Err(HandshakeError::FrameLimitTooSmall(max_frame));
        }
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
                max_frame,
            },
            session,
        ))
    }
}
