//! Noise `CipherState` (spec rev 34, §5.1).

use super::NoiseError;
use crate::crypto::{CryptoProvider, KEY_LEN, Suite, TAG_LEN};
use zeroize::{Zeroize, Zeroizing};

/// A Noise `CipherState`: an optional key `k` and a 64-bit nonce counter `n`.
///
/// `n` only advances after a successful encryption or decryption; `n = 2^64 - 1` is
/// reserved and refused with [`NoiseError::NonceExhausted`]. The key is zeroized on drop.
pub struct CipherState {
    provider: &'static dyn CryptoProvider,
    suite: Suite,
    k: Option<Zeroizing<[u8; KEY_LEN]>>,
    n: u64,
}

impl core::fmt::Debug for CipherState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CipherState")
            .field("suite", &self.suite)
            .field("has_key", &self.k.is_some())
            .field("n", &self.n)
            .finish()
    }
}

impl CipherState {
    /// An empty cipher state (`InitializeKey(empty)`).
    pub fn new(provider: &'static dyn CryptoProvider, suite: Suite) -> CipherState {
        CipherState {
            provider,
            suite,
            k: None,
            n: 0,
        }
    }

    /// A cipher state with key `k` and `n = 0` (`InitializeKey(k)`).
    pub fn with_key(
        provider: &'static dyn CryptoProvider,
        suite: Suite,
        k: &[u8; KEY_LEN],
    ) -> CipherState {
        CipherState {
            provider,
            suite,
            k: Some(Zeroizing::new(*k)),
            n: 0,
        }
    }

    /// `InitializeKey(k)`: sets the key and resets the nonce.
    pub(crate) fn initialize_key(&mut self, k: &[u8; KEY_LEN]) {
        self.k = Some(Zeroizing::new(*k));
        self.n = 0;
    }

    /// `HasKey()`.
    pub fn has_key(&self) -> bool {
        self.k.is_some()
    }

    /// The next nonce counter value.
    pub fn nonce(&self) -> u64 {
        self.n
    }

    /// The suite.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// Bytes an encryption adds: a tag if there is a key, nothing otherwise.
    pub fn overhead(&self) -> usize {
        if self.has_key() { TAG_LEN } else { 0 }
    }

    /// `EncryptWithAd(ad, plaintext)` in place: `buf[..len]` is the plaintext; the ciphertext
    /// and tag are written to `buf[..len + overhead()]`. Returns the ciphertext length.
    /// Without a key the plaintext is left as is.
    pub fn encrypt_in_place(
        &mut self,
        ad: &[u8],
        buf: &mut [u8],
        len: usize,
    ) -> Result<usize, NoiseError> {
        let needed = len + self.overhead();
        if buf.len() < needed {
            return Err(NoiseError::BufferTooSmall { needed });
        }
        let Some(k) = &self.k else {
            return Ok(len);
        };
        if self.n == u64::MAX {
            return Err(NoiseError::NonceExhausted);
        }
        let nonce = self.suite.nonce(self.n);
        let (body, rest) = buf.split_at_mut(len);
        let tag = self
            .provider
            .seal(self.suite, k, &nonce, ad, body)
            .map_err(|_| NoiseError::Decrypt)?;
        rest[..TAG_LEN].copy_from_slice(&tag);
        self.n += 1;
        Ok(needed)
    }

    /// `DecryptWithAd(ad, ciphertext)` in place: `buf` is the ciphertext with its tag; on
    /// success the plaintext is `buf[..returned len]`. On failure `n` does not change and the
    /// buffer is zeroed. Without a key the input is returned as is.
    pub fn decrypt_in_place(&mut self, ad: &[u8], buf: &mut [u8]) -> Result<usize, NoiseError> {
        let Some(k) = &self.k else {
            return Ok(buf.len());
        };
        if buf.len() < TAG_LEN {
            return Err(NoiseError::Truncated);
        }
        if self.n == u64::MAX {
            return Err(NoiseError::NonceExhausted);
        }
        let nonce = self.suite.nonce(self.n);
        let (body, tag) = buf.split_at_mut(buf.len() - TAG_LEN);
        let mut t = [0u8; TAG_LEN];
        t.copy_from_slice(tag);
        if self
            .provider
            .open(self.suite, k, &nonce, ad, body, &t)
            .is_err()
        {
            buf.zeroize();
            return Err(NoiseError::Decrypt);
        }
        self.n += 1;
        Ok(body.len())
    }

    /// Encrypts `plaintext` with `ad` into `out` (ciphertext ‖ tag). Returns the bytes written.
    /// A too-small `out` changes nothing.
    pub fn encrypt(
        &mut self,
        ad: &[u8],
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, NoiseError> {
        let needed = plaintext.len() + self.overhead();
        if out.len() < needed {
            return Err(NoiseError::BufferTooSmall { needed });
        }
        out[..plaintext.len()].copy_from_slice(plaintext);
        self.encrypt_in_place(ad, out, plaintext.len())
    }

    /// Decrypts `ciphertext` (with its tag) with `ad` into `out`. Returns the plaintext length.
    /// A too-small `out` changes nothing; a failed decryption leaves `n` unchanged.
    pub fn decrypt(
        &mut self,
        ad: &[u8],
        ciphertext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, NoiseError> {
        if self.has_key() && ciphertext.len() < TAG_LEN {
            return Err(NoiseError::Truncated);
        }
        let needed = ciphertext.len();
        if out.len() < needed {
            return Err(NoiseError::BufferTooSmall { needed });
        }
        out[..needed].copy_from_slice(ciphertext);
        self.decrypt_in_place(ad, &mut out[..needed])
    }

    /// Sets the nonce counter (tests only).
    #[cfg(test)]
    pub(crate) fn set_nonce(&mut self, n: u64) {
        self.n = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::RUST_CRYPTO;

    #[test]
    fn failed_decrypt_keeps_nonce_and_reserved_nonce_refused() {
        let mut a = CipherState::with_key(&RUST_CRYPTO, Suite::AesGcm, &[1; 32]);
        let mut b = CipherState::with_key(&RUST_CRYPTO, Suite::AesGcm, &[1; 32]);
        let mut ct = [0u8; 64];
        let n = a.encrypt(b"", b"abc", &mut ct).unwrap();
        let mut bad = ct;
        bad[0] ^= 1;
        let mut pt = [0u8; 64];
        assert_eq!(b.decrypt(b"", &bad[..n], &mut pt), Err(NoiseError::Decrypt));
        assert_eq!(b.nonce(), 0);
        assert_eq!(b.decrypt(b"", &ct[..n], &mut pt), Ok(3));
        assert_eq!(&pt[..3], b"abc");
        a.set_nonce(u64::MAX);
        assert_eq!(
            a.encrypt(b"", b"x", &mut ct),
            Err(NoiseError::NonceExhausted)
        );
        a.set_nonce(u64::MAX - 1);
        assert!(a.encrypt(b"", b"x", &mut ct).is_ok());
        assert_eq!(
            a.encrypt(b"", b"x", &mut ct),
            Err(NoiseError::NonceExhausted)
        );
    }
}
