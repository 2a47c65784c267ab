//! A provider for servers: the AEADs from `ring`, everything else from [`RustCrypto`].
//!
//! Measured on the machines cove's servers run on (`cargo bench -p cove-core --features
//! ring --bench aead`), ring's AES-256-GCM seals a 100-byte record in about half the time
//! of RustCrypto's keyed `aes-gcm` 0.11, whose AVX-512 path reloads the round keys on every
//! call. ring builds C and assembly for its target, so the `no_std` board build keeps
//! RustCrypto; a server or a client on a host may choose this one. Both produce the same
//! bytes (the tests below check that), so peers need not agree on a provider.

// The only unsafe code of the crate: see `ErasedOnDrop`.
#![allow(unsafe_code)]

use alloc::boxed::Box;
use core::mem::MaybeUninit;

use super::{
    CryptoError, CryptoProvider, KEY_LEN, NONCE_LEN, PreparedAead, RUST_CRYPTO, RustCrypto,
    SIGNATURE_LEN, Suite, TAG_LEN,
};
use ring::aead::{AES_256_GCM, Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, Tag, UnboundKey};
use zeroize::Zeroizing;

/// ring's AES-256-GCM and ChaCha20-Poly1305, with X25519 and Ed25519 from [`RustCrypto`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Ring;

/// The ring provider instance; hold it as `&RING` (a `&'static dyn CryptoProvider`).
pub static RING: Ring = Ring;

fn algorithm(suite: Suite) -> &'static ring::aead::Algorithm {
    match suite {
        Suite::AesGcm => &AES_256_GCM,
        Suite::ChaChaPoly => &CHACHA20_POLY1305,
    }
}

/// A ring key that erases itself on drop.
///
/// ring's keys do not zeroize their schedules, so the key lives in a `MaybeUninit` whose
/// bytes are overwritten with zeros once the key has been dropped.
struct ErasedOnDrop(Box<MaybeUninit<LessSafeKey>>);

impl ErasedOnDrop {
    fn new(suite: Suite, key: &[u8; KEY_LEN]) -> Option<ErasedOnDrop> {
        let key = LessSafeKey::new(UnboundKey::new(algorithm(suite), key).ok()?);
        Some(ErasedOnDrop(Box::new(MaybeUninit::new(key))))
    }

    fn key(&self) -> &LessSafeKey {
        // SAFETY: the value is initialized in `new` and stays initialized until `drop`,
        // the only place that de-initializes it, after which `self` is never used again.
        unsafe { self.0.assume_init_ref() }
    }
}

impl Drop for ErasedOnDrop {
    fn drop(&mut self) {
        // SAFETY: the value was initialized in `new` and is dropped exactly once, here.
        // Afterwards the `MaybeUninit` holds bytes no one reads as a key: a
        // `MaybeUninit<T>` is valid for any bit pattern, so zeroing it is sound, and the
        // `Box` frees it without dropping a `T` again.
        unsafe {
            self.0.assume_init_drop();
            zeroize::zeroize_flat_type(&mut *self.0 as *mut MaybeUninit<LessSafeKey>);
        }
    }
}

impl PreparedAead for ErasedOnDrop {
    fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        ad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN], CryptoError> {
        let tag = self
            .key()
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(*nonce), Aad::from(ad), buf)
            .map_err(|_| CryptoError::Aead)?;
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        ad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), CryptoError> {
        self.key()
            .open_in_place_separate_tag(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(ad),
                Tag::from(*tag),
                buf,
                0..,
            )
            .map(|_| ())
            .map_err(|_| CryptoError::Aead)
    }
}

impl CryptoProvider for Ring {
    fn x25519_public(&self, secret: &[u8; 32]) -> [u8; 32] {
        RUST_CRYPTO.x25519_public(secret)
    }

    fn x25519(
        &self,
        secret: &[u8; 32],
        public: &[u8; 32],
    ) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        RUST_CRYPTO.x25519(secret, public)
    }

    fn seal(
        &self,
        suite: Suite,
        key: &[u8; KEY_LEN],
        nonce: &[u8; NONCE_LEN],
        ad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN], CryptoError> {
        ErasedOnDrop::new(suite, key)
            .ok_or(CryptoError::Aead)?
            .seal(nonce, ad, buf)
    }

    fn open(
        &self,
        suite: Suite,
        key: &[u8; KEY_LEN],
        nonce: &[u8; NONCE_LEN],
        ad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), CryptoError> {
        ErasedOnDrop::new(suite, key)
            .ok_or(CryptoError::Aead)?
            .open(nonce, ad, buf, tag)
    }

    fn prepare(&self, suite: Suite, key: &[u8; KEY_LEN]) -> Option<Box<dyn PreparedAead>> {
        // A key of the right length is always accepted; `None` would fall back to `seal`.
        Some(Box::new(ErasedOnDrop::new(suite, key)?))
    }

    fn ed25519_public(&self, secret: &[u8; 32]) -> [u8; 32] {
        RustCrypto.ed25519_public(secret)
    }

    fn ed25519_sign(&self, secret: &[u8; 32], msg: &[u8]) -> [u8; SIGNATURE_LEN] {
        RustCrypto.ed25519_sign(secret, msg)
    }

    fn ed25519_verify(
        &self,
        public: &[u8; 32],
        msg: &[u8],
        sig: &[u8; SIGNATURE_LEN],
    ) -> Result<(), CryptoError> {
        RustCrypto.ed25519_verify(public, msg, sig)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::AeadKey;

    /// ring and RustCrypto produce the same ciphertext and tag for every suite, each opens
    /// the other's, and each refuses a flipped bit or another header.
    #[test]
    fn ring_and_rust_crypto_agree_byte_for_byte() {
        for suite in Suite::ALL {
            for len in [0usize, 1, 15, 16, 17, 100, 1500] {
                let nonce = suite.nonce(len as u64 * 7 + 3);
                let plain: alloc::vec::Vec<u8> = (0..len).map(|i| i as u8).collect();
                let mut a = plain.clone();
                let mut b = plain.clone();
                let ring_key = AeadKey::new(&RING, suite, Zeroizing::new([5; KEY_LEN]));
                assert!(ring_key.is_prepared());
                let ta = ring_key.seal(&nonce, b"header", &mut a).unwrap();
                let tb = RUST_CRYPTO
                    .seal(suite, &[5; KEY_LEN], &nonce, b"header", &mut b)
                    .unwrap();
                assert_eq!((&a, ta), (&b, tb), "{suite} {len}");
                assert_eq!(
                    RING.seal(suite, &[5; KEY_LEN], &nonce, b"header", &mut plain.clone()),
                    Ok(ta)
                );
                if len > 0 {
                    let mut bad = a.clone();
                    bad[len - 1] ^= 0x80;
                    assert_eq!(
                        ring_key.open(&nonce, b"header", &mut bad, &ta),
                        Err(CryptoError::Aead)
                    );
                }
                assert_eq!(
                    ring_key.open(&nonce, b"headex", &mut a.clone(), &ta),
                    Err(CryptoError::Aead)
                );
                assert_eq!(
                    RING.open(suite, &[5; KEY_LEN], &nonce, b"header", &mut b, &tb),
                    Ok(())
                );
                ring_key.open(&nonce, b"header", &mut a, &ta).unwrap();
                assert_eq!((&a, &b), (&plain, &plain));
            }
        }
    }

    #[test]
    fn asymmetric_operations_are_rust_cryptos() {
        let sig = RING.ed25519_sign(&[4; 32], b"m");
        assert_eq!(sig, RUST_CRYPTO.ed25519_sign(&[4; 32], b"m"));
        let pk = RING.ed25519_public(&[4; 32]);
        assert_eq!(RING.ed25519_verify(&pk, b"m", &sig), Ok(()));
        assert_eq!(
            RING.ed25519_verify(&pk, b"n", &sig),
            Err(CryptoError::BadSignature)
        );
        let p = RING.x25519_public(&[6; 32]);
        assert_eq!(p, RUST_CRYPTO.x25519_public(&[6; 32]));
        assert_eq!(RING.x25519(&[7; 32], &p), RUST_CRYPTO.x25519(&[7; 32], &p));
        assert_eq!(
            RING.x25519(&[7; 32], &[0; 32]),
            Err(CryptoError::NonContributory)
        );
    }
}
