//! The provider's error type.

use core::fmt;
use mls_rs_core::error::IntoAnyError;
use mls_rs_crypto_hpke::hpke::HpkeError;

/// Why an operation of [`MlsCrypto`](super::MlsCrypto) failed.
///
/// Everything a peer controls (keys, ciphertexts, signatures) fails with one of these,
/// never with a panic.
#[derive(Debug)]
#[non_exhaustive]
pub enum ProviderError {
    /// An AEAD key had the wrong length for the suite's AEAD.
    AeadKeyLength,
    /// An AEAD nonce was not 12 bytes.
    AeadNonceLength,
    /// The message was too long for the AEAD.
    AeadSeal,
    /// AEAD authentication failed (wrong key, nonce, associated data, or a modified
    /// or truncated ciphertext).
    AeadOpen,
    /// HKDF-Expand was given a pseudorandom key shorter than 32 bytes, or asked for more
    /// than 255 × 32 bytes.
    Kdf,
    /// The HMAC key was refused.
    MacKey,
    /// An X25519 public key was not 32 bytes, or is a low-order point.
    InvalidKemPublicKey,
    /// An X25519 secret key was not 32 bytes.
    InvalidKemSecretKey,
    /// The X25519 result was all zeros: the peer's point has low order.
    NonContributory,
    /// An Ed25519 secret key was neither the 32-byte seed nor seed ‖ matching public key.
    InvalidSignatureSecretKey,
    /// An Ed25519 public key was not 32 bytes or not a valid point.
    InvalidSignaturePublicKey,
    /// A signature was malformed or did not verify (strictly).
    BadSignature,
    /// An HPKE operation failed (key encapsulation, key schedule or AEAD inside HPKE).
    Hpke(HpkeError),
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProviderError::AeadKeyLength => "AEAD key has the wrong length",
            ProviderError::AeadNonceLength => "AEAD nonce has the wrong length",
            ProviderError::AeadSeal => "message too long for the AEAD",
            ProviderError::AeadOpen => "AEAD authentication failed",
            ProviderError::Kdf => "HKDF input or output length out of range",
            ProviderError::MacKey => "HMAC key refused",
            ProviderError::InvalidKemPublicKey => "invalid X25519 public key",
            ProviderError::InvalidKemSecretKey => "invalid X25519 secret key",
            ProviderError::NonContributory => "non-contributory X25519 result (low-order point)",
            ProviderError::InvalidSignatureSecretKey => "invalid Ed25519 secret key",
            ProviderError::InvalidSignaturePublicKey => "invalid Ed25519 public key",
            ProviderError::BadSignature => "signature verification failed",
            ProviderError::Hpke(_) => "HPKE operation failed",
        })
    }
}

impl core::error::Error for ProviderError {}

impl From<HpkeError> for ProviderError {
    fn from(e: HpkeError) -> Self {
        ProviderError::Hpke(e)
    }
}

impl IntoAnyError for ProviderError {}
