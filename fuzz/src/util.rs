//! Fixtures shared by the targets: fixed identities, deterministic randomness, a clock.

use std::sync::OnceLock;

use cove_core::Instant;
use cove_core::crypto::{IDENTITY_LEN, Identity, Suite};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// Secret bytes of the server's identity (`ed25519 secret ‖ x25519 secret`).
pub const SERVER_SECRET: [u8; IDENTITY_LEN] = secret(0x5e);
/// Secret bytes of the fuzzing client's identity.
pub const CLIENT_SECRET: [u8; IDENTITY_LEN] = secret(0xc1);

const fn secret(tag: u8) -> [u8; IDENTITY_LEN] {
    let mut b = [0u8; IDENTITY_LEN];
    let mut i = 0;
    while i < IDENTITY_LEN {
        b[i] = tag ^ (i as u8).wrapping_mul(37);
        i += 1;
    }
    b
}

/// The server's identity (made once: deriving public keys costs scalar multiplications).
pub fn server_identity() -> &'static Identity {
    static ID: OnceLock<Identity> = OnceLock::new();
    ID.get_or_init(|| Identity::from_bytes(&SERVER_SECRET))
}

/// The fuzzing client's identity.
pub fn client_identity() -> &'static Identity {
    static ID: OnceLock<Identity> = OnceLock::new();
    ID.get_or_init(|| Identity::from_bytes(&CLIENT_SECRET))
}

/// The Ed25519 secret of an identity made from `bytes`.
pub fn ed25519_secret(bytes: &[u8; IDENTITY_LEN]) -> [u8; 32] {
    let mut s = [0u8; 32];
    s.copy_from_slice(&bytes[..32]);
    s
}

/// The X25519 secret of an identity made from `bytes`.
pub fn x25519_secret(bytes: &[u8; IDENTITY_LEN]) -> [u8; 32] {
    let mut s = [0u8; 32];
    s.copy_from_slice(&bytes[32..]);
    s
}

/// A deterministic RNG: the same input always runs the same handshake.
pub fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// The suite a flag selects.
pub fn suite(chacha: bool) -> Suite {
    if chacha {
        Suite::ChaChaPoly
    } else {
        Suite::AesGcm
    }
}

/// Where every target's clock starts.
pub const T0: Instant = Instant(1_000_000);
