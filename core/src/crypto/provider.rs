//! The default provider, on the RustCrypto and dalek crates.

use super::{CryptoError, CryptoProvider, KEY_LEN, NONCE_LEN, SIGNATURE_LEN, Suite, TAG_LEN};
use aes_gcm::Aes256Gcm;
use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

/// The real provider: aes-gcm, chacha20poly1305, x25519-dalek and ed25519-dalek.
#[derive(Clone, Copy, Debug, Default)]
pub struct RustCrypto;

/// The default provider instance; hold it as `&RUST_CRYPTO` (a `&'static dyn CryptoProvider`).
pub static RUST_CRYPTO: RustCrypto = RustCrypto;

fn tag_array(t: &[u8]) -> [u8; TAG_LEN] {
    let mut out = [0u8; TAG_LEN];
    out.copy_from_slice(t);
    out
}

impl CryptoProvider for RustCrypto {
    fn x25519_public(&self, secret: &[u8; 32]) -> [u8; 32] {
        let s = StaticSecret::from(*secret);
        PublicKey::from(&s).to_bytes()
    }

    fn x25519(
        &self,
        secret: &[u8; 32],
        public: &[u8; 32],
    ) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        let s = StaticSecret::from(*secret);
        let shared = s.diffie_hellman(&PublicKey::from(*public));
        if !shared.was_contributory() {
            return Err(CryptoError::NonContributory);
        }
        Ok(Zeroizing::new(shared.to_bytes()))
    }

    fn seal(
        &self,
        suite: Suite,
        key: &[u8; KEY_LEN],
        nonce: &[u8; NONCE_LEN],
        ad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN], CryptoError> {
        match suite {
            Suite::AesGcm => Aes256Gcm::new(key.into())
                .encrypt_inout_detached(nonce.into(), ad, buf.into())
                .map(|t| tag_array(&t)),
            Suite::ChaChaPoly => ChaCha20Poly1305::new(key.into())
                .encrypt_inout_detached(nonce.into(), ad, buf.into())
                .map(|t| tag_array(&t)),
        }
        .map_err(|_| CryptoError::Aead)
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
        match suite {
            Suite::AesGcm => Aes256Gcm::new(key.into()).decrypt_inout_detached(
                nonce.into(),
                ad,
                buf.into(),
                tag.into(),
            ),
            Suite::ChaChaPoly => ChaCha20Poly1305::new(key.into()).decrypt_inout_detached(
                nonce.into(),
                ad,
                buf.into(),
                tag.into(),
            ),
        }
        .map_err(|_| CryptoError::Aead)
    }

    #[cfg(feature = "alloc")]
    fn prepare(
        &self,
        suite: Suite,
        key: &[u8; KEY_LEN],
    ) -> Option<alloc::boxed::Box<dyn super::PreparedAead>> {
        Some(match suite {
            Suite::AesGcm => alloc::boxed::Box::new(Aes256Gcm::new(key.into())),
            Suite::ChaChaPoly => alloc::boxed::Box::new(ChaCha20Poly1305::new(key.into())),
        })
    }

    fn ed25519_public(&self, secret: &[u8; 32]) -> [u8; 32] {
        SigningKey::from_bytes(secret).verifying_key().to_bytes()
    }

    fn ed25519_sign(&self, secret: &[u8; 32], msg: &[u8]) -> [u8; SIGNATURE_LEN] {
        SigningKey::from_bytes(secret).sign(msg).to_bytes()
    }

    fn ed25519_verify(
        &self,
        public: &[u8; 32],
        msg: &[u8],
        sig: &[u8; SIGNATURE_LEN],
    ) -> Result<(), CryptoError> {
        let vk = VerifyingKey::from_bytes(public).map_err(|_| CryptoError::BadSignature)?;
        if vk.is_weak() {
            return Err(CryptoError::BadSignature);
        }
        vk.verify_strict(msg, &Signature::from_bytes(sig))
            .map_err(|_| CryptoError::BadSignature)
    }
}

/// RustCrypto's AEADs keyed once. Built with their `zeroize` features, they erase their
/// round keys (and ChaCha its key) on drop.
#[cfg(feature = "alloc")]
impl<A> super::PreparedAead for A
where
    A: AeadInOut + Send + Sync + zeroize::ZeroizeOnDrop,
    A: chacha20poly1305::aead::AeadCore<
            NonceSize = chacha20poly1305::aead::consts::U12,
            TagSize = chacha20poly1305::aead::consts::U16,
        >,
{
    fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        ad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN], CryptoError> {
        self.encrypt_inout_detached(nonce.into(), ad, buf.into())
            .map(|t| tag_array(&t))
            .map_err(|_| CryptoError::Aead)
    }

    fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        ad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), CryptoError> {
        self.decrypt_inout_detached(nonce.into(), ad, buf.into(), tag.into())
            .map_err(|_| CryptoError::Aead)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_point_is_non_contributory() {
        assert_eq!(
            RUST_CRYPTO.x25519(&[9; 32], &[0; 32]),
            Err(CryptoError::NonContributory)
        );
        assert!(
            RUST_CRYPTO
                .x25519(&[9; 32], &RUST_CRYPTO.x25519_public(&[5; 32]))
                .is_ok()
        );
    }

    #[test]
    fn aead_round_trip_and_tamper() {
        for suite in Suite::ALL {
            let key = [3u8; 32];
            let nonce = suite.nonce(7);
            let mut buf = *b"hello world";
            let tag = RUST_CRYPTO
                .seal(suite, &key, &nonce, b"ad", &mut buf)
                .unwrap();
            assert_ne!(&buf, b"hello world");
            let mut bad = buf;
            bad[0] ^= 1;
            assert_eq!(
                RUST_CRYPTO.open(suite, &key, &nonce, b"ad", &mut bad, &tag),
                Err(CryptoError::Aead)
            );
            assert!(
                RUST_CRYPTO
                    .open(suite, &key, &nonce, b"AD", &mut buf.clone(), &tag)
                    .is_err()
            );
            RUST_CRYPTO
                .open(suite, &key, &nonce, b"ad", &mut buf, &tag)
                .unwrap();
            assert_eq!(&buf, b"hello world");
        }
    }

    #[test]
    fn sign_verify() {
        let sk = [4u8; 32];
        let pk = RUST_CRYPTO.ed25519_public(&sk);
        let sig = RUST_CRYPTO.ed25519_sign(&sk, b"msg");
        assert!(RUST_CRYPTO.ed25519_verify(&pk, b"msg", &sig).is_ok());
        assert_eq!(
            RUST_CRYPTO.ed25519_verify(&pk, b"msh", &sig),
            Err(CryptoError::BadSignature)
        );
        // The identity point is a weak key.
        let mut weak = [0u8; 32];
        weak[0] = 1;
        assert!(RUST_CRYPTO.ed25519_verify(&weak, b"msg", &sig).is_err());
    }
}
