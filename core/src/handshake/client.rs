//! The client side of the handshake: `write_syn` → `read_syn_ack` → `write_ack`.

use crate::crypto::{CryptoProvider, Identity, Suite, TAG_LEN};
use crate::noise::{HandshakeState, Role};
use crate::session::{Session, SessionConfig};
use crate::wire::{AuthMode, DEFAULT_MAX_FRAME, MAX_NAME_LEN, MIN_FRAME_LIMIT, valid_name};
use core::fmt;
use rand_core::CryptoRng;

use super::payload::{
    ACK_TOKENS_LEN, CLIENT_AUTH_LABEL, CLIENT_FIXED_LEN, FRAME_LIMIT_LEN, PROTOCOL_VERSION,
    SERVER_AUTH_LABEL, SERVER_PAYLOAD_LEN, SYN_ACK_LEN, SYN_LEN, ServerHello, array, be32,
    prologue, sign, verify,
};
use super::{HandshakeError, random_secret, random_u32};

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
    // `pub(super)` fields are read by the tests, which forge messages with this side's
    // own keys, hash and sequence numbers.
    pub(super) identity: Identity,
    suite: Suite,
    mode: AuthMode,
    name: heapless::String<MAX_NAME_LEN>,
    pub(super) noise: HandshakeState,
    client_isn: u32,
    server_isn: u32,
    session_config: SessionConfig,
    /// The frame limit the ACK announces; `None` for the default, which is left out.
    frame_limit: Option<u32>,
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
            frame_limit: None,
            state: ClientState::Start,
        })
    }

    /// Sets the rotation thresholds of the resulting session.
    pub fn set_session_config(&mut self, config: SessionConfig) {
        self.session_config = config;
    }

    /// Announces in the ACK that this client accepts frame payloads of at most `limit`
    /// bytes, so the server never sends it a larger record. The default
    /// ([`DEFAULT_MAX_FRAME`]) is not announced: the ACK stays as short as a client's
    /// that predates the field. A limit below [`MIN_FRAME_LIMIT`] is refused and changes
    /// nothing.
    pub fn set_frame_limit(&mut self, limit: u32) -> Result<(), HandshakeError> {
        if limit < MIN_FRAME_LIMIT {
            return Err(HandshakeError::FrameLimitTooSmall(limit));
        }
        self.frame_limit = (limit != DEFAULT_MAX_FRAME).then_some(limit);
        Ok(())
    }

    /// The client's initial sequence number.
    pub fn client_isn(&self) -> u32 {
        self.client_isn
    }

    /// Length of the ACK payload this client will send.
    pub fn ack_len(&self) -> usize {
        let limit = if self.frame_limit.is_some() {
            FRAME_LIMIT_LEN
        } else {
            0
        };
        ACK_TOKENS_LEN + CLIENT_FIXED_LEN + self.name.len() + limit + TAG_LEN
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
        let mut pl = [0u8; CLIENT_FIXED_LEN + MAX_NAME_LEN + FRAME_LIMIT_LEN];
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
        if let Some(limit) = self.frame_limit {
            pl[i..i + FRAME_LIMIT_LEN].copy_from_slice(&limit.to_be_bytes());
            i += FRAME_LIMIT_LEN;
        }
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
