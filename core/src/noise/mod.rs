//! Noise XX (`Noise_XX_25519_AESGCM_SHA256`, `Noise_XX_25519_ChaChaPoly_SHA256`), Noise
//! specification revision 34, without allocation.
//!
//! [`HandshakeState`] runs the three XX messages
//!
//! ```text
//! -> e
//! <- e, ee, s, es
//! -> s, se
//! ```
//!
//! and [`HandshakeState::split`] yields the two transport [`CipherState`]s. Besides the usual
//! `write_message` / `read_message`, each message can be processed in two steps (tokens, then
//! payload) so a caller can read the handshake hash `h` right before the payload is
//! encrypted or decrypted, e.g. to sign it.

mod cipher;
mod handshake_state;

pub use cipher::CipherState;
pub use handshake_state::{HandshakeState, Role, TransportPair};

use core::fmt;

/// Largest Noise message (spec §3).
pub const MAX_MESSAGE_LEN: usize = 65535;

/// Errors of the Noise layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoiseError {
    /// The output buffer is too small; `needed` bytes are required. Nothing changed.
    BufferTooSmall {
        /// Bytes required.
        needed: usize,
    },
    /// The call does not fit the handshake's current step (not our turn, already finished,
    /// or not finished yet). Nothing changed.
    OutOfOrder,
    /// A message is shorter than its tokens and tag require.
    Truncated,
    /// A message or payload exceeds [`MAX_MESSAGE_LEN`].
    TooLong,
    /// AEAD authentication failed: tampered bytes, wrong keys or a different prologue.
    Decrypt,
    /// A Diffie-Hellman result was all zeros (the peer sent a low-order point).
    NonContributory,
    /// The nonce counter reached the reserved value 2^64 - 1.
    NonceExhausted,
    /// An earlier error left the handshake unusable.
    Failed,
}

impl fmt::Display for NoiseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoiseError::BufferTooSmall { needed } => {
                write!(f, "buffer too small: {needed} bytes needed")
            }
            NoiseError::OutOfOrder => f.write_str("handshake call out of order"),
            NoiseError::Truncated => f.write_str("noise message truncated"),
            NoiseError::TooLong => f.write_str("noise message too long"),
            NoiseError::Decrypt => f.write_str("noise decryption failed"),
            NoiseError::NonContributory => f.write_str("non-contributory Diffie-Hellman result"),
            NoiseError::NonceExhausted => f.write_str("noise nonce exhausted"),
            NoiseError::Failed => f.write_str("handshake already failed"),
        }
    }
}

impl core::error::Error for NoiseError {}
