//! An AEAD key that seals and opens many records: the key bytes and, with an allocator,
//! the provider's cipher keyed once.
//!
//! Keying a cipher costs more than sealing a short record with it (AES-256's key schedule
//! and GHASH's powers of H): a session that keyed AES-GCM for every record spent a third of
//! its sealing time there. So a session keeps one [`AeadKey`] per direction and replaces it
//! on key update. Without `alloc` (a board's no-alloc client) only the key bytes are kept
//! and each record keys the cipher afresh: the same results, a little more CPU, no RAM.

#[cfg(feature = "alloc")]
use alloc::boxed::Box;

use super::{CryptoError, CryptoProvider, KEY_LEN, NONCE_LEN, Suite, TAG_LEN};
use zeroize::Zeroizing;

/// A cipher a provider has keyed once for one suite and key
/// ([`CryptoProvider::prepare`]). Dropping it must erase its key material.
#[cfg(feature = "alloc")]
pub trait PreparedAead: Send + Sync {
    /// Encrypts `buf` in place and returns the detached tag.
    fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        ad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN], CryptoError>;

    /// Decrypts `buf` in place after checking the detached `tag`; on error `buf` is
    /// unspecified.
    fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        ad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), CryptoError>;
}

/// One suite's key for many records, zeroized on drop (and its keyed cipher with it).
pub struct AeadKey {
    provider: &'static dyn CryptoProvider,
    suite: Suite,
    key: Zeroizing<[u8; KEY_LEN]>,
    #[cfg(feature = "alloc")]
    prepared: Option<Box<dyn PreparedAead>>,
}

impl core::fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut d = f.debug_struct("AeadKey");
        d.field("suite", &self.suite);
        #[cfg(feature = "alloc")]
        d.field("prepared", &self.prepared.is_some());
        d.finish_non_exhaustive()
    }
}

impl AeadKey {
    /// `key` for `suite`, keyed once by `provider` where it offers that.
    pub fn new(
        provider: &'static dyn CryptoProvider,
        suite: Suite,
        key: Zeroizing<[u8; KEY_LEN]>,
    ) -> AeadKey {
        AeadKey {
            provider,
            suite,
            #[cfg(feature = "alloc")]
            prepared: provider.prepare(suite, &key),
            key,
        }
    }

    /// Whether the provider keyed a cipher once for this key (else each call keys one).
    pub fn is_prepared(&self) -> bool {
        #[cfg(feature = "alloc")]
        return self.prepared.is_some();
        #[cfg(not(feature = "alloc"))]
        false
    }

    /// Encrypts `buf` in place under `nonce` and `ad`; returns the detached tag.
    pub fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        ad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN], CryptoError> {
        #[cfg(feature = "alloc")]
        if let Some(p) = &self.prepared {
            return p.seal(nonce, ad, buf);
        }
        self.provider.seal(self.suite, &self.key, nonce, ad, buf)
    }

    /// Decrypts `buf` in place after checking `tag`; on error `buf` is unspecified.
    pub fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        ad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), CryptoError> {
        #[cfg(feature = "alloc")]
        if let Some(p) = &self.prepared {
            return p.open(nonce, ad, buf, tag);
        }
        self.provider
            .open(self.suite, &self.key, nonce, ad, buf, tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::RUST_CRYPTO;

    /// A provider that keys nothing once: every call goes through its one-shot `seal`.
    struct OneShot;

    impl CryptoProvider for OneShot {
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
            RUST_CRYPTO.seal(suite, key, nonce, ad, buf)
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
            RUST_CRYPTO.open(suite, key, nonce, ad, buf, tag)
        }
        fn ed25519_public(&self, secret: &[u8; 32]) -> [u8; 32] {
            RUST_CRYPTO.ed25519_public(secret)
        }
        fn ed25519_sign(
            &self,
            secret: &[u8; 32],
            msg: &[u8],
        ) -> [u8; crate::crypto::SIGNATURE_LEN] {
            RUST_CRYPTO.ed25519_sign(secret, msg)
        }
        fn ed25519_verify(
            &self,
            public: &[u8; 32],
            msg: &[u8],
            sig: &[u8; crate::crypto::SIGNATURE_LEN],
        ) -> Result<(), CryptoError> {
            RUST_CRYPTO.ed25519_verify(public, msg, sig)
        }
    }

    static ONE_SHOT: OneShot = OneShot;

    /// A provider without a keyed cipher leaves the key unprepared and seals through its
    /// one-shot calls, with the same bytes as a prepared key.
    #[test]
    fn without_a_keyed_cipher_each_call_keys_one() {
        for suite in Suite::ALL {
            let plain = AeadKey::new(&ONE_SHOT, suite, Zeroizing::new([3; KEY_LEN]));
            let keyed = AeadKey::new(&RUST_CRYPTO, suite, Zeroizing::new([3; KEY_LEN]));
            assert!(!plain.is_prepared());
            let nonce = suite.nonce(8);
            let (mut a, mut b) = (*b"same bytes", *b"same bytes");
            let ta = plain.seal(&nonce, b"", &mut a).unwrap();
            let tb = keyed.seal(&nonce, b"", &mut b).unwrap();
            assert_eq!((a, ta), (b, tb));
            plain.open(&nonce, b"", &mut a, &ta).unwrap();
            assert_eq!(&a, b"same bytes");
        }
    }

    /// The keyed cipher and the provider's one-shot calls agree byte for byte, both ways,
    /// and a tampered record is refused by each.
    #[test]
    fn a_prepared_key_seals_and_opens_as_the_one_shot_calls_do() {
        for suite in Suite::ALL {
            let key = AeadKey::new(&RUST_CRYPTO, suite, Zeroizing::new([9; KEY_LEN]));
            assert_eq!(key.is_prepared(), cfg!(feature = "alloc"));
            let nonce = suite.nonce(41);
            let mut a = *b"a record of some length";
            let mut b = a;
            let tag_a = key.seal(&nonce, b"hdr", &mut a).unwrap();
            let tag_b = RUST_CRYPTO
                .seal(suite, &[9; KEY_LEN], &nonce, b"hdr", &mut b)
                .unwrap();
            assert_eq!((a, tag_a), (b, tag_b));
            let mut bad = a;
            bad[3] ^= 1;
            assert_eq!(
                key.open(&nonce, b"hdr", &mut bad, &tag_a),
                Err(CryptoError::Aead)
            );
            assert_eq!(
                key.open(&suite.nonce(42), b"hdr", &mut a.clone(), &tag_a),
                Err(CryptoError::Aead)
            );
            key.open(&nonce, b"hdr", &mut a, &tag_a).unwrap();
            assert_eq!(&a, b"a record of some length");
            RUST_CRYPTO
                .open(suite, &[9; KEY_LEN], &nonce, b"hdr", &mut b, &tag_b)
                .unwrap();
            assert_eq!(a, b);
        }
    }
}
