//! Ed25519 signature keys, signing and strict verification (ed25519-dalek).
//!
//! # Key encoding
//!
//! A [`SignatureSecretKey`] made here holds the 32-byte Ed25519 secret key (the RFC 8032
//! seed), exactly the first half of cove's `Identity::to_bytes()`, so an account's identity
//! key is its MLS signature key as it is. For secret keys made elsewhere, the 64-byte form
//! `seed ‖ public key` is accepted too, provided its public half is the one the seed
//! derives. A [`SignaturePublicKey`] is the 32-byte compressed Edwards point, a signature
//! the 64-byte `R ‖ S`.

use super::error::ProviderError;
use super::rng::SharedRng;
use alloc::sync::Arc;
use alloc::vec::Vec;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use mls_rs_core::crypto::{SignaturePublicKey, SignatureSecretKey};
use spin::Mutex;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Length of an Ed25519 seed (the secret key as cove stores it).
pub(super) const SEED_LEN: usize = 32;
/// Length of `seed ‖ public key`.
const KEYPAIR_LEN: usize = 64;

/// Decodes a secret key of either accepted form. The returned key wipes itself on drop.
fn signing_key(secret: &SignatureSecretKey) -> Result<SigningKey, ProviderError> {
    let bytes = secret.as_bytes();
    match bytes.len() {
        SEED_LEN => {
            let mut seed = Zeroizing::new([0u8; SEED_LEN]);
            seed.copy_from_slice(bytes);
            Ok(SigningKey::from_bytes(&seed))
        }
        KEYPAIR_LEN => {
            let mut pair = Zeroizing::new([0u8; KEYPAIR_LEN]);
            pair.copy_from_slice(bytes);
            SigningKey::from_keypair_bytes(&pair)
                .map_err(|_| ProviderError::InvalidSignatureSecretKey)
        }
        _ => Err(ProviderError::InvalidSignatureSecretKey),
    }
}

/// The key pair of the 32-byte `seed`, in the encoding described in the module docs.
pub(super) fn key_pair_from_seed(
    seed: &[u8; SEED_LEN],
) -> (SignatureSecretKey, SignaturePublicKey) {
    let sk = SigningKey::from_bytes(seed);
    let public = SignaturePublicKey::new(sk.verifying_key().to_bytes().to_vec());
    (SignatureSecretKey::new(seed.to_vec()), public)
}

/// A fresh key pair from the provider's stream.
pub(super) fn generate(rng: &SharedRng) -> (SignatureSecretKey, SignaturePublicKey) {
    key_pair_from_seed(&rng.bytes32())
}

/// The public key of `secret`.
pub(super) fn derive_public(
    secret: &SignatureSecretKey,
) -> Result<SignaturePublicKey, ProviderError> {
    let sk = signing_key(secret)?;
    Ok(SignaturePublicKey::new(
        sk.verifying_key().to_bytes().to_vec(),
    ))
}

/// The last signing key used, kept decoded and shared by a provider's clones.
///
/// Decoding a secret key derives its public half, a base-point multiplication that costs
/// as much as the signature itself; a member signs every message, Commit and KeyPackage
/// with the same key, so one entry is enough. The entry is matched in constant time and
/// wiped when replaced or dropped (`SigningKey` zeroizes itself).
#[derive(Clone, Default)]
pub(super) struct SignerCache(Arc<Mutex<Option<CachedSigner>>>);

/// The secret key as it was handed in, and its decoded form.
type CachedSigner = (Zeroizing<Vec<u8>>, SigningKey);

impl SignerCache {
    /// The decoded key of `secret`, from the cache when it holds that key.
    fn key(&self, secret: &SignatureSecretKey) -> Result<SigningKey, ProviderError> {
        let bytes = secret.as_bytes();
        if let Some((held, key)) = self.0.lock().as_ref()
            && bool::from(held.as_slice().ct_eq(bytes))
        {
            return Ok(key.clone());
        }
        let key = signing_key(secret)?;
        *self.0.lock() = Some((Zeroizing::new(bytes.to_vec()), key.clone()));
        Ok(key)
    }
}

impl core::fmt::Debug for SignerCache {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SignerCache(..)")
    }
}

/// The Ed25519 signature of `data` under `secret`.
pub(super) fn sign(
    cache: &SignerCache,
    secret: &SignatureSecretKey,
    data: &[u8],
) -> Result<Vec<u8>, ProviderError> {
    Ok(cache.key(secret)?.sign(data).to_bytes().to_vec())
}

/// Strict verification: `verify_strict` (canonical `S`, no small-order `R` or key), and
/// weak (small-order) public keys are refused outright.
pub(super) fn verify(
    public: &SignaturePublicKey,
    signature: &[u8],
    data: &[u8],
) -> Result<(), ProviderError> {
    let pk: &[u8; 32] = public
        .as_bytes()
        .try_into()
        .map_err(|_| ProviderError::InvalidSignaturePublicKey)?;
    let vk = VerifyingKey::from_bytes(pk).map_err(|_| ProviderError::InvalidSignaturePublicKey)?;
    if vk.is_weak() {
        return Err(ProviderError::InvalidSignaturePublicKey);
    }
    let sig = Signature::from_slice(signature).map_err(|_| ProviderError::BadSignature)?;
    vk.verify_strict(data, &sig)
        .map_err(|_| ProviderError::BadSignature)
}
