//! HKDF-SHA256 (RFC 5869), the KDF of both suites and of their KEM.

use super::error::ProviderError;
use alloc::vec;
use alloc::vec::Vec;
use hkdf::Hkdf;
use mls_rs_crypto_traits::{KdfId, KdfType};
use sha2::Sha256;
use zeroize::Zeroize;

/// SHA-256 output length, the size of an HKDF-SHA256 pseudorandom key.
pub(super) const HASH_LEN: usize = 32;

/// HKDF-SHA256 on the `hkdf` and `sha2` crates (it appears in the HPKE context types).
#[derive(Clone, Copy, Debug, Default)]
pub struct HkdfSha256;

impl KdfType for HkdfSha256 {
    type Error = ProviderError;

    fn kdf_id(&self) -> u16 {
        KdfId::HkdfSha256 as u16
    }

    /// HKDF-Expand. Fails when `prk` is shorter than 32 bytes or `len` exceeds 255 × 32.
    fn expand(&self, prk: &[u8], info: &[u8], len: usize) -> Result<Vec<u8>, ProviderError> {
        let hk = Hkdf::<Sha256>::from_prk(prk).map_err(|_| ProviderError::Kdf)?;
        let mut okm = vec![0u8; len];
        hk.expand(info, &mut okm).map_err(|_| ProviderError::Kdf)?;
        Ok(okm)
    }

    /// HKDF-Extract; an empty `salt` is the RFC's default (HMAC pads it to zeros).
    fn extract(&self, salt: &[u8], ikm: &[u8]) -> Result<Vec<u8>, ProviderError> {
        let (mut prk, _) = Hkdf::<Sha256>::extract(Some(salt), ikm);
        let out = prk.to_vec();
        prk.as_mut_slice().zeroize();
        Ok(out)
    }

    fn extract_size(&self) -> usize {
        HASH_LEN
    }
}
