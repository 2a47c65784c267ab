//! SHA-256 and HMAC-SHA256, the hash and MAC of both suites.
//!
//! HMAC comes from the `hmac` crate as re-exported by `hkdf` (which is built on it), so
//! the core needs no dependency of its own for it.

use super::error::ProviderError;
use alloc::vec::Vec;
use hkdf::hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// SHA-256 of `data`.
pub(super) fn sha256(data: &[u8]) -> Vec<u8> {
    Sha256::digest(data).to_vec()
}

/// HMAC-SHA256 of `data` under `key` (RFC 2104). HMAC takes keys of every length (long
/// ones are hashed first), so the error is not expected in practice.
pub(super) fn hmac_sha256(key: &[u8], data: &[u8]) -> Result<Vec<u8>, ProviderError> {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).map_err(|_| ProviderError::MacKey)?;
    mac.update(data);
    Ok(mac.finalize().into_bytes().to_vec())
}
