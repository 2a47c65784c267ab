//! What the three handshake payloads hold: their sizes, the hello each side learns, and the
//! signature over the handshake hash.

use crate::crypto::{
    CryptoError, CryptoProvider, HASH_LEN, Identity, SIGNATURE_LEN, Suite, TAG_LEN,
};
#[cfg(doc)]
use crate::wire::DEFAULT_MAX_FRAME;
use crate::wire::{AuthMode, MAX_NAME_LEN};

use super::HandshakeError;

/// The protocol version this code speaks: 2 since durable rooms (private rooms, room
/// admins, a retained room log with per-member cursors and history). A peer speaking
/// another version is refused: version 1 messages `CreateRoom` and `RoomJoined` have a
/// different layout, so the two cannot share a connection.
pub const PROTOCOL_VERSION: u8 = 2;
/// First bytes of the Noise prologue; the version and suite bytes follow. The label names
/// the handshake design, not the protocol version (that is the byte after it), so it stays
/// `cove/1` in version 2.
pub const PROLOGUE_LABEL: &[u8] = b"cove/1";
/// Label the server signs, followed by `h`.
pub const SERVER_AUTH_LABEL: &[u8] = b"cove server auth v1";
/// Label the client signs, followed by `h`.
pub const CLIENT_AUTH_LABEL: &[u8] = b"cove client auth v1";

/// Length of the SYN payload (it has no variable part).
pub const SYN_LEN: usize = 2 + 32 + 4;
pub(super) const SERVER_PAYLOAD_LEN: usize = 4 + 4 + 32 + SIGNATURE_LEN;
/// Length of the SYN-ACK payload (it has no variable part).
pub const SYN_ACK_LEN: usize = 32 + 32 + TAG_LEN + SERVER_PAYLOAD_LEN + TAG_LEN;
pub(super) const CLIENT_FIXED_LEN: usize = 4 + 1 + 1 + 32 + SIGNATURE_LEN;
pub(super) const ACK_TOKENS_LEN: usize = 32 + TAG_LEN;
/// Length of the ACK's optional last field: the largest frame payload the client accepts
/// (`u32`, big-endian). A client that accepts [`DEFAULT_MAX_FRAME`] leaves it out.
pub const FRAME_LIMIT_LEN: usize = 4;
/// Shortest ACK payload (one-byte name, no frame limit).
pub const ACK_MIN_LEN: usize = ACK_TOKENS_LEN + CLIENT_FIXED_LEN + 1 + TAG_LEN;
/// Longest ACK payload (name of [`MAX_NAME_LEN`] bytes and a frame limit).
pub const ACK_MAX_LEN: usize =
    ACK_TOKENS_LEN + CLIENT_FIXED_LEN + MAX_NAME_LEN + FRAME_LIMIT_LEN + TAG_LEN;

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
    /// The nickname (validated with [`valid_name`](crate::wire::valid_name)).
    pub name: heapless::String<MAX_NAME_LEN>,
    /// Register or login.
    pub mode: AuthMode,
    /// The client's Ed25519 identity key (proven by the signature).
    pub ed25519: [u8; 32],
    /// The client's X25519 static key (the Noise `rs`).
    pub x25519: [u8; 32],
    /// The client's initial sequence number.
    pub client_isn: u32,
    /// The largest frame payload the client accepts: what its ACK announced, or
    /// [`DEFAULT_MAX_FRAME`] when it announced nothing. At least
    /// [`MIN_FRAME_LIMIT`](crate::wire::MIN_FRAME_LIMIT).
    pub max_frame: u32,
}

/// The Noise prologue for `version` and `suite`.
pub fn prologue(version: u8, suite: Suite) -> [u8; 8] {
    let mut p = [0u8; 8];
    p[..6].copy_from_slice(PROLOGUE_LABEL);
    p[6] = version;
    p[7] = suite.to_u8();
    p
}

fn signed_message(label: &[u8], h: &[u8; HASH_LEN]) -> ([u8; 64], usize) {
    let mut m = [0u8; 64];
    m[..label.len()].copy_from_slice(label);
    m[label.len()..label.len() + HASH_LEN].copy_from_slice(h);
    (m, label.len() + HASH_LEN)
}

pub(super) fn sign(
    provider: &dyn CryptoProvider,
    id: &Identity,
    label: &[u8],
    h: &[u8; HASH_LEN],
) -> [u8; 64] {
    let (m, n) = signed_message(label, h);
    provider.ed25519_sign(id.ed25519_secret(), &m[..n])
}

pub(super) fn verify(
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

pub(super) fn array<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[..N]);
    a
}

pub(super) fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes(array(b))
}
