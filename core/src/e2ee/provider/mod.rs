//! cove's mls-rs `CryptoProvider`, built on the crates the core already uses.
//!
//! [`MlsCrypto`] supports exactly two cipher suites (RFC 9420 §17.1):
//!
//! | suite | KEM | AEAD | hash / KDF | signature |
//! |---|---|---|---|---|
//! | `MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519` (0x0001) | DHKEM(X25519, HKDF-SHA256) | AES-128-GCM | SHA-256 / HKDF-SHA256 | Ed25519 |
//! | `MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519` (0x0003) | DHKEM(X25519, HKDF-SHA256) | ChaCha20-Poly1305 | SHA-256 / HKDF-SHA256 | Ed25519 |
//!
//! on x25519-dalek, ed25519-dalek, aes-gcm, chacha20poly1305, hkdf (with its hmac) and sha2,
//! with HPKE from `mls-rs-crypto-hpke`. It needs no operating system: it builds `no_std`
//! for the board.
//!
//! # Randomness
//!
//! Every random draw (`random_bytes`, `kem_generate`, `signature_key_generate`, the
//! ephemeral key of every HPKE encryption) comes from one ChaCha20 stream seeded by the
//! caller ([`MlsCrypto::from_seed`], [`MlsCrypto::from_rng`]), never from the OS. The same
//! seed and the same sequence of calls give the same bytes. Clones share the stream.
//!
//! # Keys
//!
//! Signature secret keys are the 32-byte Ed25519 seed, so an account's identity key is its
//! MLS signature key ([`signature_key_from_identity`]); the 64-byte `seed ‖ public key`
//! form is accepted as input too. HPKE secret keys are the 32 raw X25519 bytes. X25519
//! results that are all zeros are refused, and so are low-order HPKE public keys.
//! Signatures are verified strictly (`verify_strict`, weak keys refused).
//!
//! The provider implements mls-rs's synchronous traits (cove never builds mls-rs with
//! `mls_build_async`).

mod aead;
mod dh;
mod error;
mod hash;
mod kdf;
mod rng;
mod sign;
mod suite;
#[cfg(test)]
mod tests;

pub use aead::Aead;
pub use error::ProviderError;
pub use kdf::HkdfSha256;
pub use suite::MlsCipherSuite;

use crate::crypto::Identity;
use alloc::vec::Vec;
use mls_rs_core::crypto::{CipherSuite, CryptoProvider, SignaturePublicKey, SignatureSecretKey};
use rand_core::CryptoRng;
use rng::SharedRng;
use sign::SignerCache;

/// cove's MLS crypto provider: the two X25519/Ed25519 suites, every random draw from a
/// caller-seeded stream. See the [module docs](self).
///
/// Cheap to clone; clones share the random stream (and the decoded signing key).
#[derive(Clone, Debug)]
pub struct MlsCrypto {
    rng: SharedRng,
    signer: SignerCache,
}

impl MlsCrypto {
    /// The supported cipher suites, in order of preference: AES-128-GCM (0x0001), then
    /// ChaCha20-Poly1305 (0x0003).
    pub const CIPHER_SUITES: [CipherSuite; 2] = [
        CipherSuite::CURVE25519_AES128,
        CipherSuite::CURVE25519_CHACHA,
    ];

    /// A provider whose random stream is ChaCha20 keyed with `seed`. Deterministic: two
    /// providers from the same seed, called the same way, produce the same bytes.
    pub fn from_seed(seed: [u8; 32]) -> MlsCrypto {
        MlsCrypto {
            rng: SharedRng::from_seed(seed),
            signer: SignerCache::default(),
        }
    }

    /// A provider seeded with 32 bytes drawn from `rng` (the OS in an adapter, the seeded
    /// generator in the simulator).
    pub fn from_rng<R: CryptoRng + ?Sized>(rng: &mut R) -> MlsCrypto {
        MlsCrypto {
            rng: SharedRng::from_rng(rng),
            signer: SignerCache::default(),
        }
    }
}

impl CryptoProvider for MlsCrypto {
    type CipherSuiteProvider = MlsCipherSuite;

    fn supported_cipher_suites(&self) -> Vec<CipherSuite> {
        MlsCrypto::CIPHER_SUITES.to_vec()
    }

    fn cipher_suite_provider(&self, cipher_suite: CipherSuite) -> Option<MlsCipherSuite> {
        MlsCipherSuite::new(cipher_suite, &self.rng, &self.signer)
    }
}

/// The MLS signature key pair of an account: the secret key is the identity's 32-byte
/// Ed25519 secret (`Identity::to_bytes()[..32]`), the public key the Ed25519 public key
/// derived from it with ed25519-dalek (the same for both suites).
///
/// The public key is derived here rather than read from [`Identity::public`], so it is
/// the real Ed25519 key even for an identity made with a simulator's stand-in provider.
pub fn signature_key_from_identity(
    identity: &Identity,
) -> (SignatureSecretKey, SignaturePublicKey) {
    sign::key_pair_from_seed(identity.ed25519_secret())
}
