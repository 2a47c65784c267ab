//! Noise `SymmetricState` and the XX `HandshakeState` (spec rev 34, §5.2, §5.3, §7.5).

use super::{CipherState, MAX_MESSAGE_LEN, NoiseError};
use crate::crypto::{
    CryptoError, CryptoProvider, HASH_LEN, PUBLIC_KEY_LEN, Suite, TAG_LEN, noise_hkdf2, sha256,
};
use zeroize::Zeroizing;

/// The two `Split()` keys: initiator→responder, responder→initiator.
pub(crate) type SplitKeys = (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>);

/// Which side of the handshake this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Sends the first message (the client).
    Initiator,
    /// Receives the first message (the server).
    Responder,
}

/// `SymmetricState`: chaining key `ck`, handshake hash `h` and a `CipherState`.
struct SymmetricState {
    ck: Zeroizing<[u8; HASH_LEN]>,
    h: [u8; HASH_LEN],
    cs: CipherState,
}

impl SymmetricState {
    /// `InitializeSymmetric(protocol_name)`.
    fn new(provider: &'static dyn CryptoProvider, suite: Suite) -> SymmetricState {
        let name = suite.noise_name().as_bytes();
        let mut h = [0u8; HASH_LEN];
        if name.len() <= HASH_LEN {
            h[..name.len()].copy_from_slice(name);
        } else {
            h = sha256(&[name]);
        }
        SymmetricState {
            ck: Zeroizing::new(h),
            h,
            cs: CipherState::new(provider, suite),
        }
    }

    /// `MixHash(data)`.
    fn mix_hash(&mut self, data: &[u8]) {
        self.h = sha256(&[&self.h, data]);
    }

    /// `MixKey(input_key_material)`.
    fn mix_key(&mut self, ikm: &[u8]) {
        let (ck, k) = noise_hkdf2(&self.ck, ikm);
        self.ck = ck;
        self.cs.initialize_key(&k);
    }

    /// `EncryptAndHash` in place on `buf[..len]`; returns the ciphertext length.
    fn encrypt_and_hash(&mut self, buf: &mut [u8], len: usize) -> Result<usize, NoiseError> {
        let h = self.h;
        let n = self.cs.encrypt_in_place(&h, buf, len)?;
        self.mix_hash(&buf[..n]);
        Ok(n)
    }

    /// `DecryptAndHash` in place on `buf`; returns the plaintext length.
    fn decrypt_and_hash(&mut self, buf: &mut [u8]) -> Result<usize, NoiseError> {
        let h = self.h;
        let next_h = sha256(&[&h, buf]);
        let n = self.cs.decrypt_in_place(&h, buf)?;
        self.h = next_h;
        Ok(n)
    }

    /// `Split()`: the initiator→responder and responder→initiator keys.
    fn split(&self) -> (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>) {
        noise_hkdf2(&self.ck, &[])
    }
}

/// Where a handshake is within its current message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// The next call processes the tokens of message `step`.
    Tokens,
    /// Tokens of message `step` are done; its payload is next.
    Payload,
}

/// The two transport cipher states from [`HandshakeState::split`], oriented for this side.
#[derive(Debug)]
pub struct TransportPair {
    /// Encrypts what this side sends.
    pub send: CipherState,
    /// Decrypts what this side receives.
    pub recv: CipherState,
}

/// A Noise XX handshake in progress (initiator or responder). Secrets are zeroized on drop.
pub struct HandshakeState {
    provider: &'static dyn CryptoProvider,
    role: Role,
    ss: SymmetricState,
    s: Zeroizing<[u8; 32]>,
    s_pub: [u8; 32],
    e: Zeroizing<[u8; 32]>,
    e_pub: [u8; 32],
    rs: Option<[u8; 32]>,
    re: Option<[u8; 32]>,
    /// Index of the current message: 0, 1, 2; 3 once finished.
    step: u8,
    phase: Phase,
    failed: bool,
}

impl core::fmt::Debug for HandshakeState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HandshakeState")
            .field("role", &self.role)
            .field("suite", &self.ss.cs.suite())
            .field("step", &self.step)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

/// Length of the tokens of XX message `step` (the key is always set for `s` in XX).
const fn tokens_len(step: u8) -> usize {
    match step {
        0 => PUBLIC_KEY_LEN,
        1 => PUBLIC_KEY_LEN + PUBLIC_KEY_LEN + TAG_LEN,
        _ => PUBLIC_KEY_LEN + TAG_LEN,
    }
}

/// Payload overhead of XX message `step`: message 0 is sent before any key exists.
const fn payload_overhead(step: u8) -> usize {
    if step == 0 { 0 } else { TAG_LEN }
}

fn dh_err(e: CryptoError) -> NoiseError {
    match e {
        CryptoError::NonContributory => NoiseError::NonContributory,
        _ => NoiseError::Decrypt,
    }
}

impl HandshakeState {
    /// `Initialize()` for XX with the local static secret `s`, the local ephemeral secret `e`
    /// (fresh random bytes for every handshake; fixed only in tests) and the prologue.
    pub fn new(
        provider: &'static dyn CryptoProvider,
        suite: Suite,
        role: Role,
        static_secret: &[u8; 32],
        ephemeral_secret: &[u8; 32],
        prologue: &[u8],
    ) -> HandshakeState {
        let static_public = provider.x25519_public(static_secret);
        HandshakeState::with_static_public(
            provider,
            suite,
            role,
            static_secret,
            &static_public,
            ephemeral_secret,
            prologue,
        )
    }

    /// Like [`HandshakeState::new`], with the static public key already known (it is
    /// cached by `Identity`), saving a scalar multiplication per handshake.
    /// `static_public` must be the public key of `static_secret`.
    pub fn with_static_public(
        provider: &'static dyn CryptoProvider,
        suite: Suite,
        role: Role,
        static_secret: &[u8; 32],
        static_public: &[u8; 32],
        ephemeral_secret: &[u8; 32],
        prologue: &[u8],
    ) -> HandshakeState {
        let mut ss = SymmetricState::new(provider, suite);
        ss.mix_hash(prologue);
        HandshakeState {
            provider,
            role,
            ss,
            s: Zeroizing::new(*static_secret),
            s_pub: *static_public,
            e: Zeroizing::new(*ephemeral_secret),
            e_pub: provider.x25519_public(ephemeral_secret),
            rs: None,
            re: None,
            step: 0,
            phase: Phase::Tokens,
            failed: false,
        }
    }

    /// The role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The suite.
    pub fn suite(&self) -> Suite {
        self.ss.cs.suite()
    }

    /// The handshake hash `h` as it is now. Between [`write_tokens`](Self::write_tokens) and
    /// [`write_payload`](Self::write_payload) (or [`read_tokens`](Self::read_tokens) and
    /// [`read_payload`](Self::read_payload)) this is the `h` used as AD for the payload.
    pub fn handshake_hash(&self) -> [u8; HASH_LEN] {
        self.ss.h
    }

    /// The peer's static public key, once received.
    pub fn remote_static(&self) -> Option<[u8; 32]> {
        self.rs
    }

    /// The local static public key.
    pub fn local_static(&self) -> [u8; 32] {
        self.s_pub
    }

    /// The local ephemeral public key.
    pub fn local_ephemeral(&self) -> [u8; 32] {
        self.e_pub
    }

    /// Whether all three messages have been processed.
    pub fn is_finished(&self) -> bool {
        self.step >= 3
    }

    /// Whether the next message is ours to write.
    pub fn is_my_turn(&self) -> bool {
        let initiator_turn = self.step.is_multiple_of(2);
        self.step < 3 && initiator_turn == (self.role == Role::Initiator)
    }

    /// Total length of the next message for a `payload_len`-byte payload.
    pub fn message_len(&self, payload_len: usize) -> usize {
        tokens_len(self.step) + payload_len + payload_overhead(self.step)
    }

    fn check(&self, write: bool, phase: Phase) -> Result<(), NoiseError> {
        if self.failed {
            return Err(NoiseError::Failed);
        }
        if self.step >= 3 || self.is_my_turn() != write || self.phase != phase {
            return Err(NoiseError::OutOfOrder);
        }
        Ok(())
    }

    fn fail<T>(&mut self, e: NoiseError) -> Result<T, NoiseError> {
        self.failed = true;
        Err(e)
    }

    fn dh(
        &self,
        local: &[u8; 32],
        remote: Option<[u8; 32]>,
    ) -> Result<Zeroizing<[u8; 32]>, NoiseError> {
        let remote = remote.ok_or(NoiseError::OutOfOrder)?;
        self.provider.x25519(local, &remote).map_err(dh_err)
    }

    /// Writes the message `payload` into `out`; returns the message length.
    /// A too-small `out` changes nothing.
    pub fn write_message(&mut self, payload: &[u8], out: &mut [u8]) -> Result<usize, NoiseError> {
        self.check(true, Phase::Tokens)?;
        let needed = self.message_len(payload.len());
        if needed > MAX_MESSAGE_LEN {
            return Err(NoiseError::TooLong);
        }
        if out.len() < needed {
            return Err(NoiseError::BufferTooSmall { needed });
        }
        let t = self.write_tokens(out)?;
        let p = self.write_payload(payload, &mut out[t..])?;
        Ok(t + p)
    }

    /// First half of writing a message: writes the tokens (`e`, `s`, DHs) into `out` and
    /// returns their length. [`handshake_hash`](Self::handshake_hash) is then the AD the
    /// payload will be encrypted with.
    pub fn write_tokens(&mut self, out: &mut [u8]) -> Result<usize, NoiseError> {
        self.check(true, Phase::Tokens)?;
        let needed = tokens_len(self.step);
        if out.len() < needed {
            return Err(NoiseError::BufferTooSmall { needed });
        }
        let r = match self.step {
            // -> e
            0 => {
                out[..32].copy_from_slice(&self.e_pub);
                self.ss.mix_hash(&self.e_pub.clone());
                Ok(32)
            }
            // <- e, ee, s, es
            1 => self.write_msg2_tokens(out),
            // -> s, se
            _ => self.write_msg3_tokens(out),
        };
        match r {
            Ok(n) => {
                self.phase = Phase::Payload;
                Ok(n)
            }
            Err(e) => self.fail(e),
        }
    }

    fn write_msg2_tokens(&mut self, out: &mut [u8]) -> Result<usize, NoiseError> {
        out[..32].copy_from_slice(&self.e_pub);
        let e_pub = self.e_pub;
        self.ss.mix_hash(&e_pub);
        let ee = self.dh(&self.e, self.re)?;
        self.ss.mix_key(&ee[..]);
        out[32..64].copy_from_slice(&self.s_pub);
        let n = self.ss.encrypt_and_hash(&mut out[32..], 32)?;
        let es = self.dh(&self.s, self.re)?;
        self.ss.mix_key(&es[..]);
        Ok(32 + n)
    }

    fn write_msg3_tokens(&mut self, out: &mut [u8]) -> Result<usize, NoiseError> {
        out[..32].copy_from_slice(&self.s_pub);
        let n = self.ss.encrypt_and_hash(out, 32)?;
        let se = self.dh(&self.s, self.re)?;
        self.ss.mix_key(&se[..]);
        Ok(n)
    }

    /// Second half of writing a message: encrypts `payload` into `out`, returns its length.
    /// A too-small `out` changes nothing.
    pub fn write_payload(&mut self, payload: &[u8], out: &mut [u8]) -> Result<usize, NoiseError> {
        self.check(true, Phase::Payload)?;
        let needed = payload.len() + payload_overhead(self.step);
        if tokens_len(self.step) + needed > MAX_MESSAGE_LEN {
            return Err(NoiseError::TooLong);
        }
        if out.len() < needed {
            return Err(NoiseError::BufferTooSmall { needed });
        }
        out[..payload.len()].copy_from_slice(payload);
        match self.ss.encrypt_and_hash(out, payload.len()) {
            Ok(n) => {
                self.step += 1;
                self.phase = Phase::Tokens;
                Ok(n)
            }
            Err(e) => self.fail(e),
        }
    }

    /// Reads a whole message and writes its payload into `payload_out`; returns the payload
    /// length. `payload_out` must hold the encrypted payload (payload + 16 bytes) as scratch;
    /// if it is too small nothing changes.
    pub fn read_message(
        &mut self,
        msg: &[u8],
        payload_out: &mut [u8],
    ) -> Result<usize, NoiseError> {
        self.check(false, Phase::Tokens)?;
        if msg.len() > MAX_MESSAGE_LEN {
            return Err(NoiseError::TooLong);
        }
        let t = tokens_len(self.step);
        if msg.len() < t + payload_overhead(self.step) {
            return self.fail(NoiseError::Truncated);
        }
        let needed = msg.len() - t;
        if payload_out.len() < needed {
            return Err(NoiseError::BufferTooSmall { needed });
        }
        let used = self.read_tokens(msg)?;
        self.read_payload(&msg[used..], payload_out)
    }

    /// First half of reading a message: processes the tokens at the start of `msg` and returns
    /// how many bytes they took. [`handshake_hash`](Self::handshake_hash) is then the AD the
    /// payload is decrypted with.
    pub fn read_tokens(&mut self, msg: &[u8]) -> Result<usize, NoiseError> {
        self.check(false, Phase::Tokens)?;
        let t = tokens_len(self.step);
        if msg.len() > MAX_MESSAGE_LEN {
            return Err(NoiseError::TooLong);
        }
        if msg.len() < t + payload_overhead(self.step) {
            return self.fail(NoiseError::Truncated);
        }
        let r = match self.step {
            0 => {
                let mut re = [0u8; 32];
                re.copy_from_slice(&msg[..32]);
                self.re = Some(re);
                self.ss.mix_hash(&re);
                Ok(32)
            }
            1 => self.read_msg2_tokens(msg),
            _ => self.read_msg3_tokens(msg),
        };
        match r {
            Ok(n) => {
                self.phase = Phase::Payload;
                Ok(n)
            }
            Err(e) => self.fail(e),
        }
    }

    fn read_msg2_tokens(&mut self, msg: &[u8]) -> Result<usize, NoiseError> {
        let mut re = [0u8; 32];
        re.copy_from_slice(&msg[..32]);
        self.re = Some(re);
        self.ss.mix_hash(&re);
        let ee = self.dh(&self.e, self.re)?;
        self.ss.mix_key(&ee[..]);
        let mut s = [0u8; 48];
        s.copy_from_slice(&msg[32..80]);
        self.ss.decrypt_and_hash(&mut s)?;
        let mut rs = [0u8; 32];
        rs.copy_from_slice(&s[..32]);
        self.rs = Some(rs);
        let es = self.dh(&self.e, self.rs)?;
        self.ss.mix_key(&es[..]);
        Ok(80)
    }

    fn read_msg3_tokens(&mut self, msg: &[u8]) -> Result<usize, NoiseError> {
        let mut s = [0u8; 48];
        s.copy_from_slice(&msg[..48]);
        self.ss.decrypt_and_hash(&mut s)?;
        let mut rs = [0u8; 32];
        rs.copy_from_slice(&s[..32]);
        self.rs = Some(rs);
        let se = self.dh(&self.e, self.rs)?;
        self.ss.mix_key(&se[..]);
        Ok(48)
    }

    /// Second half of reading a message: decrypts the payload `ciphertext` (everything after
    /// the tokens) into `payload_out`, returns the payload length. `payload_out` must hold
    /// `ciphertext.len()` bytes as scratch; if it is too small nothing changes.
    pub fn read_payload(
        &mut self,
        ciphertext: &[u8],
        payload_out: &mut [u8],
    ) -> Result<usize, NoiseError> {
        self.check(false, Phase::Payload)?;
        if ciphertext.len() < payload_overhead(self.step) {
            return self.fail(NoiseError::Truncated);
        }
        let needed = ciphertext.len();
        if payload_out.len() < needed {
            return Err(NoiseError::BufferTooSmall { needed });
        }
        payload_out[..needed].copy_from_slice(ciphertext);
        match self.ss.decrypt_and_hash(&mut payload_out[..needed]) {
            Ok(n) => {
                self.step += 1;
                self.phase = Phase::Tokens;
                Ok(n)
            }
            Err(e) => self.fail(e),
        }
    }

    /// The two `Split()` keys (initiator→responder, responder→initiator). Crate-internal:
    /// the transport session derives its traffic secrets from them.
    pub(crate) fn split_keys(&self) -> Result<SplitKeys, NoiseError> {
        if self.failed {
            return Err(NoiseError::Failed);
        }
        if !self.is_finished() {
            return Err(NoiseError::OutOfOrder);
        }
        Ok(self.ss.split())
    }

    /// `Split()`: the transport cipher states, `send` and `recv` oriented for this side.
    pub fn split(self) -> Result<TransportPair, NoiseError> {
        let (k1, k2) = self.split_keys()?;
        let suite = self.suite();
        let c1 = CipherState::with_key(self.provider, suite, &k1);
        let c2 = CipherState::with_key(self.provider, suite, &k2);
        Ok(match self.role {
            Role::Initiator => TransportPair { send: c1, recv: c2 },
            Role::Responder => TransportPair { send: c2, recv: c1 },
        })
    }
}
