//! The suites' AEADs: AES-128-GCM (0x0001) and ChaCha20-Poly1305 (0x0003).

use super::error::ProviderError;
use aes_gcm::Aes128Gcm;
use alloc::vec::Vec;
use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use mls_rs_crypto_traits::{AeadId, AeadType};
use zeroize::Zeroizing;

/// Length of the nonce of both AEADs.
const NONCE_LEN: usize = 12;
/// Length of the authentication tag of both AEADs.
const TAG_LEN: usize = 16;

/// The AEAD of a suite (it appears in the HPKE context types), on the `aes-gcm` and
/// `chacha20poly1305` crates.
///
/// Ciphertexts are `encrypted data ‖ 16-byte tag`, as MLS and HPKE expect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Aead {
    /// AES-128-GCM: 16-byte key.
    Aes128Gcm,
    /// ChaCha20-Poly1305: 32-byte key.
    ChaCha20Poly1305,
}

fn nonce(nonce: &[u8]) -> Result<&[u8; NONCE_LEN], ProviderError> {
    nonce.try_into().map_err(|_| ProviderError::AeadNonceLength)
}

impl Aead {
    /// Encrypts `buf` in place and returns the tag. A key of the wrong length is refused
    /// by `new_from_slice`.
    fn seal_in_place(
        self,
        key: &[u8],
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN], ProviderError> {
        let tag = match self {
            Aead::Aes128Gcm => Aes128Gcm::new_from_slice(key)
                .map_err(|_| ProviderError::AeadKeyLength)?
                .encrypt_inout_detached(nonce.into(), aad, buf.into()),
            Aead::ChaCha20Poly1305 => ChaCha20Poly1305::new_from_slice(key)
                .map_err(|_| ProviderError::AeadKeyLength)?
                .encrypt_inout_detached(nonce.into(), aad, buf.into()),
        }
        // The only failure is a message too long for the AEAD.
        .map_err(|_| ProviderError::AeadSeal)?;
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(&tag);
        Ok(out)
    }

    /// Checks `tag` and decrypts `buf` in place.
    fn open_in_place(
        self,
        key: &[u8],
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), ProviderError> {
        match self {
            Aead::Aes128Gcm => Aes128Gcm::new_from_slice(key)
                .map_err(|_| ProviderError::AeadKeyLength)?
                .decrypt_inout_detached(nonce.into(), aad, buf.into(), tag.into()),
            Aead::ChaCha20Poly1305 => ChaCha20Poly1305::new_from_slice(key)
                .map_err(|_| ProviderError::AeadKeyLength)?
                .decrypt_inout_detached(nonce.into(), aad, buf.into(), tag.into()),
        }
        .map_err(|_| ProviderError::AeadOpen)
    }
}

impl AeadType for Aead {
    type Error = ProviderError;

    fn aead_id(&self) -> u16 {
        match self {
            Aead::Aes128Gcm => AeadId::Aes128Gcm as u16,
            Aead::ChaCha20Poly1305 => AeadId::Chacha20Poly1305 as u16,
        }
    }

    fn seal(
        &self,
        key: &[u8],
        data: &[u8],
        aad: Option<&[u8]>,
        nonce_bytes: &[u8],
    ) -> Result<Vec<u8>, ProviderError> {
        let nonce = nonce(nonce_bytes)?;
        // The plaintext copy is wiped if sealing fails.
        let mut out = Zeroizing::new(Vec::with_capacity(data.len().saturating_add(TAG_LEN)));
        out.extend_from_slice(data);
        let tag = self.seal_in_place(key, nonce, aad.unwrap_or_default(), &mut out)?;
        out.extend_from_slice(&tag);
        Ok(core::mem::take(&mut *out))
    }

    fn open(
        &self,
        key: &[u8],
        ciphertext: &[u8],
        aad: Option<&[u8]>,
        nonce_bytes: &[u8],
    ) -> Result<Vec<u8>, ProviderError> {
        let nonce = nonce(nonce_bytes)?;
        let body_len = ciphertext
            .len()
            .checked_sub(TAG_LEN)
            .ok_or(ProviderError::AeadOpen)?;
        let (body, tag) = ciphertext.split_at(body_len);
        let tag: &[u8; TAG_LEN] = tag.try_into().map_err(|_| ProviderError::AeadOpen)?;
        // Whatever lands in the buffer before the tag is checked is wiped on failure.
        let mut buf = Zeroizing::new(body.to_vec());
        self.open_in_place(key, nonce, aad.unwrap_or_default(), &mut buf, tag)?;
        Ok(core::mem::take(&mut *buf))
    }

    fn key_size(&self) -> usize {
        match self {
            Aead::Aes128Gcm => 16,
            Aead::ChaCha20Poly1305 => 32,
        }
    }

    fn nonce_size(&self) -> usize {
        NONCE_LEN
    }
}
