//! cove's SYN / SYN-ACK / ACK handshake, carried as the three messages of Noise XX.
//!
//! These functions produce and consume frame **payloads**; the caller adds the 5-byte frame
//! header with type `FRAME_SYN`, `FRAME_SYN_ACK` or `FRAME_ACK`.
//!
//! ```text
//! SYN      [u8 version][u8 suite] ‖ Noise msg1 (e)              payload [u32 client_isn]
//! SYN-ACK  Noise msg2 (e, ee, s, es)  payload [u32 server_isn][u32 client_isn+1][32 ed25519][64 sig]
//! ACK      Noise msg3 (s, se)         payload [u32 server_isn+1][u8 mode][u8 n][name][32 ed25519][64 sig]
//!                                             ([u32 max_frame], only when not the default 64 KiB)
//! ```
//!
//! The prologue is `"cove/1" ‖ version ‖ suite`. Each signature is Ed25519 over a label and
//! the handshake hash `h` right before that message's payload is encrypted.
//!
//! `payload` holds the sizes, the signed transcript and the hello types; `client` and
//! `server` hold the two handshake state machines. Each drives a Noise
//! [`HandshakeState`](crate::noise::HandshakeState) and ends in a
//! [`Session`](crate::session::Session), which the connection state machines
//! (`crate::client`, `crate::server`) use from then on.

mod client;
mod payload;
mod server;
#[cfg(test)]
mod tests;

pub use client::ClientHandshake;
pub use payload::{
    ACK_MAX_LEN, ACK_MIN_LEN, CLIENT_AUTH_LABEL, ClientHello, FRAME_LIMIT_LEN, PROLOGUE_LABEL,
    PROTOCOL_VERSION, SERVER_AUTH_LABEL, SYN_ACK_LEN, SYN_LEN, ServerHello, prologue,
};
pub use server::ServerHandshake;

use crate::noise::NoiseError;
use core::fmt;
use rand_core::CryptoRng;
use zeroize::Zeroizing;

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
    /// The nickname is not valid (see [`valid_name`](crate::wire::valid_name)).
    InvalidName,
    /// The auth mode byte is neither register (1) nor login (2).
    InvalidMode,
    /// The frame limit a client announces (or is asked to announce) is below
    /// [`MIN_FRAME_LIMIT`](crate::wire::MIN_FRAME_LIMIT).
    FrameLimitTooSmall(u32),
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
            HandshakeError::FrameLimitTooSmall(n) => {
                write!(
                    f,
                    "frame limit of {n} bytes is below the protocol's minimum"
                )
            }
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
