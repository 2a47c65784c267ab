//! Cryptographic building blocks: cipher suites, the pluggable [`CryptoProvider`], the
//! default [`RustCrypto`] provider, hashing/HKDF helpers and the long-term [`Identity`].
//!
//! Asymmetric operations and the AEAD sit behind [`CryptoProvider`] (in the style of
//! rustls) so that a simulator can plug a cheap deterministic provider. SHA-256 and HKDF
//! are used directly from the `sha2` and `hkdf` crates.

mod aead_key;
mod identity;
mod provider;
#[cfg(feature = "ring")]
mod ring_provider;

pub use aead_key::AeadKey;
#[cfg(feature = "alloc")]
pub use aead_key::PreparedAead;
pub use identity::{FINGERPRINT_LEN, IDENTITY_LEN, Identity, PublicIdentity, fingerprint_of};
pub use provider::{RUST_CRYPTO, RustCrypto};
#[cfg(feature = "ring")]
pub use ring_provider::{RING, Ring};

use core::fmt;
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Length of an AEAD authentication tag.
pub const TAG_LEN: usize = 16;
/// Length of an AEAD key.
pub const KEY_LEN: usize = 32;
/// Length of an AEAD nonce.
pub const NONCE_LEN: usize = 12;
/// Length of a SHA-256 digest (Noise `HASHLEN`).
pub const HASH_LEN: usize = 32;
/// Length of an X25519 or Ed25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// An AEAD cipher suite. The handshake is always X25519 + SHA-256; the suite picks the AEAD
/// for both the Noise handshake and the transport records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Suite {
    /// AES-256-GCM (`Noise_XX_25519_AESGCM_SHA256`). Primary suite.
    AesGcm = 1,
    /// ChaCha20-Poly1305 (`Noise_XX_25519_ChaChaPoly_SHA256`). For CPUs without AES instructions.
    ChaChaPoly = 2,
}

impl Suite {
    /// Every suite, in order of preference.
    pub const ALL: [Suite; 2] = [Suite::AesGcm, Suite::ChaChaPoly];

    /// Decodes a suite byte.
    pub const fn from_u8(b: u8) -> Option<Suite> {
        match b {
            1 => Some(Suite::AesGcm),
            2 => Some(Suite::ChaChaPoly),
            _ => None,
        }
    }

    /// The suite's wire byte.
    pub const fn to_u8(self) -> u8 {
        self as u8
    }

    /// The full Noise protocol name for the XX pattern with this suite.
    pub const fn noise_name(self) -> &'static str {
        match self {
            Suite::AesGcm => "Noise_XX_25519_AESGCM_SHA256",
            Suite::ChaChaPoly => "Noise_XX_25519_ChaChaPoly_SHA256",
        }
    }

    /// The Noise cipher name (`AESGCM` or `ChaChaPoly`).
    pub const fn cipher_name(self) -> &'static str {
        match self {
            Suite::AesGcm => "AESGCM",
            Suite::ChaChaPoly => "ChaChaPoly",
        }
    }

    /// The 12-byte nonce for counter `n`: four zero bytes then the 64-bit counter,
    /// big-endian for AES-GCM and little-endian for ChaCha20-Poly1305 (Noise §12).
    pub const fn nonce(self, n: u64) -> [u8; NONCE_LEN] {
        let c = match self {
            Suite::AesGcm => n.to_be_bytes(),
            Suite::ChaChaPoly => n.to_le_bytes(),
        };
        [0, 0, 0, 0, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.cipher_name())
    }
}

/// A set of [`Suite`]s, e.g. the suites a server accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SuiteSet(u8);

impl SuiteSet {
    /// No suite at all.
    pub const EMPTY: SuiteSet = SuiteSet(0);
    /// Every suite.
    pub const ALL: SuiteSet = SuiteSet(0b11);

    const fn bit(s: Suite) -> u8 {
        1 << (s as u8 - 1)
    }

    /// The set holding only `s`.
    pub const fn only(s: Suite) -> SuiteSet {
        SuiteSet(Self::bit(s))
    }

    /// This set plus `s`.
    pub const fn with(self, s: Suite) -> SuiteSet {
        SuiteSet(self.0 | Self::bit(s))
    }

    /// Whether `s` is in the set.
    pub const fn contains(self, s: Suite) -> bool {
        self.0 & Self::bit(s) != 0
    }
}

impl Default for SuiteSet {
    fn default() -> Self {
        SuiteSet::ALL
    }
}

/// Errors of the cryptographic primitives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CryptoError {
    /// The X25519 result was all zeros: the peer sent a low-order point.
    NonContributory,
    /// AEAD authentication failed (or the input was too long for the AEAD).
    Aead,
    /// A signature did not verify (or the public key or signature was malformed or weak).
    BadSignature,
}

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CryptoError::NonContributory => "non-contributory X25519 result (low-order point)",
            CryptoError::Aead => "AEAD authentication failed",
            CryptoError::BadSignature => "signature verification failed",
        })
    }
}

impl core::error::Error for CryptoError {}

/// The pluggable asymmetric and AEAD primitives (object-safe; hold it as
/// `&'static dyn CryptoProvider`).
///
/// Secrets are passed as byte arrays; results that are secret come back in
/// [`Zeroizing`] wrappers. An implementation must be deterministic given its inputs.
pub trait CryptoProvider: Sync {
    /// X25519 public key of a (raw, unclamped) secret scalar.
    fn x25519_public(&self, secret: &[u8; 32]) -> [u8; 32];

    /// X25519 shared secret. Errors with [`CryptoError::NonContributory`] when the result is
    /// all zeros (the peer's point has low order).
    fn x25519(
        &self,
        secret: &[u8; 32],
        public: &[u8; 32],
    ) -> Result<Zeroizing<[u8; 32]>, CryptoError>;

    /// Encrypts `buf` in place under `suite` and returns the detached 16-byte tag.
    fn seal(
        &self,
        suite: Suite,
        key: &[u8; KEY_LEN],
        nonce: &[u8; NONCE_LEN],
        ad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN], CryptoError>;

    /// Decrypts `buf` in place after checking the detached `tag`. On error the contents of
    /// `buf` are unspecified and must not be used.
    fn open(
        &self,
        suite: Suite,
        key: &[u8; KEY_LEN],
        nonce: &[u8; NONCE_LEN],
        ad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), CryptoError>;

    /// `suite`'s cipher keyed once with `key`, for an [`AeadKey`] that seals many records;
    /// `None` (the default) makes each call of [`seal`](Self::seal) and
    /// [`open`](Self::open) key the cipher afresh. Its results must equal theirs.
    #[cfg(feature = "alloc")]
    fn prepare(
        &self,
        suite: Suite,
        key: &[u8; KEY_LEN],
    ) -> Option<alloc::boxed::Box<dyn PreparedAead>> {
        let _ = (suite, key);
        None
    }

    /// Ed25519 public key of a 32-byte secret key (seed).
    fn ed25519_public(&self, secret: &[u8; 32]) -> [u8; 32];

    /// Ed25519 signature of `msg`.
    fn ed25519_sign(&self, secret: &[u8; 32], msg: &[u8]) -> [u8; SIGNATURE_LEN];

    /// Strict Ed25519 verification (`verify_strict`: rejects weak keys and non-canonical
    /// encodings).
    fn ed25519_verify(
        &self,
        public: &[u8; 32],
        msg: &[u8],
        sig: &[u8; SIGNATURE_LEN],
    ) -> Result<(), CryptoError>;
}

/// SHA-256 of the concatenation of `parts`.
pub fn sha256(parts: &[&[u8]]) -> [u8; HASH_LEN] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// HKDF-Expand (RFC 5869) with PRK `prk` and `info`, 32 bytes of output.
pub fn hkdf_expand(prk: &[u8; 32], info: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut okm = Zeroizing::new([0u8; 32]);
    // A 32-byte PRK is always accepted and 32 bytes is far below the 255*32 limit.
    if let Ok(hk) = Hkdf::<Sha256>::from_prk(prk) {
        let _ = hk.expand(info, &mut okm[..]);
    }
    okm
}

/// The Noise `HKDF(chaining_key, input_key_material, 2)` function: two 32-byte outputs.
///
/// Noise's HKDF equals RFC 5869 HKDF with salt = chaining key, empty info and 64 bytes of output.
pub fn noise_hkdf2(ck: &[u8; 32], ikm: &[u8]) -> (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>) {
    let mut okm = Zeroizing::new([0u8; 64]);
    let hk = Hkdf::<Sha256>::new(Some(ck), ikm);
    // 64 bytes is within HKDF's output limit.
    let _ = hk.expand(&[], &mut okm[..]);
    let mut a = Zeroizing::new([0u8; 32]);
    let mut b = Zeroizing::new([0u8; 32]);
    a.copy_from_slice(&okm[..32]);
    b.copy_from_slice(&okm[32..]);
    (a, b)
}

/// The suite a client on this machine should propose: AES-256-GCM when the CPU has AES
/// instructions (and carry-less multiply for GHASH), ChaCha20-Poly1305 otherwise. Needs
/// `std` to ask the CPU; a `no_std` board picks its suite itself (usually ChaCha).
#[cfg(feature = "std")]
pub fn preferred_suite() -> Suite {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
        {
            return Suite::AesGcm;
        }
        Suite::ChaChaPoly
    }
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("aes") {
            return Suite::AesGcm;
        }
        Suite::ChaChaPoly
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        Suite::ChaChaPoly
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_encoding() {
        assert_eq!(Suite::AesGcm.nonce(1), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(
            Suite::ChaChaPoly.nonce(1),
            [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn suite_set() {
        let s = SuiteSet::only(Suite::ChaChaPoly);
        assert!(s.contains(Suite::ChaChaPoly) && !s.contains(Suite::AesGcm));
        assert!(SuiteSet::EMPTY.with(Suite::AesGcm).contains(Suite::AesGcm));
        for b in 0..=255u8 {
            if let Some(s) = Suite::from_u8(b) {
                assert_eq!(s.to_u8(), b);
            }
        }
    }

    #[test]
    fn rfc5869_case1_expand_matches() {
        // RFC 5869 test case 1 PRK and info, first 32 bytes of OKM.
        let prk: [u8; 32] = [
            0x07, 0x77, 0x09, 0x36, 0x2c, 0x2e, 0x32, 0xdf, 0x0d, 0xdc, 0x3f, 0x0d, 0xc4, 0x7b,
            0xba, 0x63, 0x90, 0xb6, 0xc7, 0x3b, 0xb5, 0x0f, 0x9c, 0x31, 0x22, 0xec, 0x84, 0x4a,
            0xd7, 0xc2, 0xb3, 0xe5,
        ];
        let info = [0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9];
        let okm = hkdf_expand(&prk, &info);
        assert_eq!(&okm[..8], &[0x3c, 0xb2, 0x5f, 0x25, 0xfa, 0xac, 0xd5, 0x7a]);
    }
}
