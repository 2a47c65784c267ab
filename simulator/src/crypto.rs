//! A cheap deterministic [`CryptoProvider`] for the very largest runs (`--cheap-crypto`).
//!
//! **Not cryptography.** It keeps the properties the protocol's state machines rely on, at a
//! fraction of the cost of X25519, Ed25519 and AES-GCM:
//!
//! - Diffie-Hellman is real DH in the multiplicative group modulo the Mersenne prime
//!   2^61 − 1, so both sides of a handshake agree on the shared secret, and different key
//!   pairs give different secrets. A zero (or out-of-range) public value is refused as
//!   non-contributory, as X25519 refuses low-order points.
//! - The AEAD XORs a keystream drawn from the key and nonce and appends a 128-bit keyed
//!   tag over the associated data and the ciphertext: a flipped bit, a wrong key, a wrong
//!   nonce (replay or reordering) or different associated data fails to open. Plaintext
//!   never appears on the wire, so the transport canary check still means something.
//! - A "signature" is a keyed hash under the *public* key: anyone could forge one, but an
//!   honest peer's signature verifies and any change to the message or key fails. Public
//!   keys are the real Ed25519 ones (one scalar multiplication per key and per signature):
//!   end-to-end encryption, which always uses real cryptography, signs with the account
//!   key, and the server checks KeyPackages against the key the account registered.
//!
//! Default runs use the real provider; the summary says which one a run used.

use cove_core::crypto::{
    CryptoError, CryptoProvider, KEY_LEN, NONCE_LEN, RUST_CRYPTO, SIGNATURE_LEN, Suite, TAG_LEN,
};
use zeroize::Zeroizing;

use crate::rng::mix64;

/// The cheap provider; hold it as `&CHEAP_CRYPTO`.
#[derive(Clone, Copy, Debug, Default)]
pub struct CheapCrypto;

/// The cheap provider instance.
pub static CHEAP_CRYPTO: CheapCrypto = CheapCrypto;

/// 2^61 − 1, a Mersenne prime.
const P: u64 = (1 << 61) - 1;
/// The group generator (any element works for agreement; 3 has a large order).
const G: u64 = 3;
/// Marks the unused bytes of a fake public key, so keys are never all zero.
const DH_MARK: &[u8; 24] = b"cove-sim fake x25519 key";

fn mul_mod(a: u64, b: u64) -> u64 {
    let prod = u128::from(a) * u128::from(b);
    let lo = (prod as u64) & P;
    let hi = (prod >> 61) as u64;
    let mut r = lo + hi;
    if r >= P {
        r -= P;
    }
    r
}

fn pow_mod(mut base: u64, mut exp: u64) -> u64 {
    let mut acc = 1u64;
    base %= P;
    while exp > 0 {
        if exp & 1 == 1 {
            acc = mul_mod(acc, base);
        }
        base = mul_mod(base, base);
        exp >>= 1;
    }
    acc
}

/// Folds bytes into a 64-bit state, eight at a time.
fn absorb(mut h: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = mix64(h ^ u64::from_le_bytes(w));
    }
    let rest = chunks.remainder();
    let mut w = [0u8; 8];
    w[..rest.len()].copy_from_slice(rest);
    mix64(h ^ u64::from_le_bytes(w) ^ ((data.len() as u64) << 56))
}

fn expand<const N: usize>(seed: u64) -> [u8; N] {
    let mut out = [0u8; N];
    for (i, c) in out.chunks_mut(8).enumerate() {
        let w = mix64(seed ^ (i as u64).wrapping_mul(0xA076_1D64_78BD_642F)).to_le_bytes();
        c.copy_from_slice(&w[..c.len()]);
    }
    out
}

fn exponent(secret: &[u8; 32]) -> u64 {
    // In 1..P-1, so the public value is never 1 or 0.
    absorb(0x005E_C2E7, secret) % (P - 2) + 1
}

fn stream_seed(suite: Suite, key: &[u8; KEY_LEN], nonce: &[u8; NONCE_LEN]) -> u64 {
    absorb(absorb(u64::from(suite.to_u8()), key), nonce)
}

fn keystream_xor(seed: u64, buf: &mut [u8]) {
    for (i, c) in buf.chunks_mut(8).enumerate() {
        let ks = mix64(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_le_bytes();
        for (b, k) in c.iter_mut().zip(ks) {
            *b ^= k;
        }
    }
}

fn tag(seed: u64, ad: &[u8], ciphertext: &[u8]) -> [u8; TAG_LEN] {
    let h = absorb(absorb(seed ^ 0x7A6, ad), ciphertext);
    let mut t = [0u8; TAG_LEN];
    t[..8].copy_from_slice(&h.to_le_bytes());
    t[8..].copy_from_slice(&mix64(h ^ seed).to_le_bytes());
    t
}

impl CryptoProvider for CheapCrypto {
    fn x25519_public(&self, secret: &[u8; 32]) -> [u8; 32] {
        let mut out = [0u8; 32];
        out[..8].copy_from_slice(&pow_mod(G, exponent(secret)).to_le_bytes());
        out[8..].copy_from_slice(DH_MARK);
        out
    }

    fn x25519(
        &self,
        secret: &[u8; 32],
        public: &[u8; 32],
    ) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        let mut y = [0u8; 8];
        y.copy_from_slice(&public[..8]);
        let y = u64::from_le_bytes(y);
        if y <= 1 || y >= P || &public[8..] != DH_MARK {
            return Err(CryptoError::NonContributory);
        }
        let shared = pow_mod(y, exponent(secret));
        Ok(Zeroizing::new(expand::<32>(mix64(shared ^ 0xD4))))
    }

    fn seal(
        &self,
        suite: Suite,
        key: &[u8; KEY_LEN],
        nonce: &[u8; NONCE_LEN],
        ad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN], CryptoError> {
        let seed = stream_seed(suite, key, nonce);
        keystream_xor(seed, buf);
        Ok(tag(seed, ad, buf))
    }

    fn open(
        &self,
        suite: Suite,
        key: &[u8; KEY_LEN],
        nonce: &[u8; NONCE_LEN],
        ad: &[u8],
        buf: &mut [u8],
        tag_in: &[u8; TAG_LEN],
    ) -> Result<(), CryptoError> {
        let seed = stream_seed(suite, key, nonce);
        if tag(seed, ad, buf) != *tag_in {
            return Err(CryptoError::Aead);
        }
        keystream_xor(seed, buf);
        Ok(())
    }

    fn ed25519_public(&self, secret: &[u8; 32]) -> [u8; 32] {
        // The real public key: an end-to-end encrypted user's MLS signature key is its
        // account's Ed25519 key, which the server checks its KeyPackages against.
        RUST_CRYPTO.ed25519_public(secret)
    }

    fn ed25519_sign(&self, secret: &[u8; 32], msg: &[u8]) -> [u8; SIGNATURE_LEN] {
        let public = self.ed25519_public(secret);
        expand::<SIGNATURE_LEN>(absorb(absorb(0x519, &public), msg))
    }

    fn ed25519_verify(
        &self,
        public: &[u8; 32],
        msg: &[u8],
        sig: &[u8; SIGNATURE_LEN],
    ) -> Result<(), CryptoError> {
        if public.iter().all(|b| *b == 0) {
            return Err(CryptoError::BadSignature);
        }
        let expected = expand::<SIGNATURE_LEN>(absorb(absorb(0x519, public), msg));
        if expected == *sig {
            Ok(())
        } else {
            Err(CryptoError::BadSignature)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dh_agrees_and_rejects_zero() {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let (pa, pb) = (
            CHEAP_CRYPTO.x25519_public(&a),
            CHEAP_CRYPTO.x25519_public(&b),
        );
        let s1 = CHEAP_CRYPTO.x25519(&a, &pb).unwrap();
        let s2 = CHEAP_CRYPTO.x25519(&b, &pa).unwrap();
        assert_eq!(*s1, *s2);
        let s3 = CHEAP_CRYPTO.x25519(&a, &pa).unwrap();
        assert_ne!(*s1, *s3);
        assert_eq!(
            CHEAP_CRYPTO.x25519(&a, &[0; 32]),
            Err(CryptoError::NonContributory)
        );
    }

    #[test]
    fn aead_hides_and_detects_tampering() {
        let key = [9u8; 32];
        let nonce = Suite::AesGcm.nonce(4);
        let plain = *b"canary canary canary!";
        let mut buf = plain;
        let t = CHEAP_CRYPTO
            .seal(Suite::AesGcm, &key, &nonce, b"ad", &mut buf)
            .unwrap();
        assert_ne!(buf, plain);
        let mut bad = buf;
        bad[3] ^= 0x10;
        assert!(
            CHEAP_CRYPTO
                .open(Suite::AesGcm, &key, &nonce, b"ad", &mut bad, &t)
                .is_err()
        );
        let mut other = buf;
        let wrong_nonce = Suite::AesGcm.nonce(5);
        assert!(
            CHEAP_CRYPTO
                .open(Suite::AesGcm, &key, &wrong_nonce, b"ad", &mut other, &t)
                .is_err()
        );
        let mut wrong_key = buf;
        assert!(
            CHEAP_CRYPTO
                .open(Suite::AesGcm, &[8; 32], &nonce, b"ad", &mut wrong_key, &t)
                .is_err()
        );
        CHEAP_CRYPTO
            .open(Suite::AesGcm, &key, &nonce, b"ad", &mut buf, &t)
            .unwrap();
        assert_eq!(buf, plain);
    }

    #[test]
    fn signatures_verify_and_detect_changes() {
        let sk = [5u8; 32];
        let pk = CHEAP_CRYPTO.ed25519_public(&sk);
        let sig = CHEAP_CRYPTO.ed25519_sign(&sk, b"hello");
        assert!(CHEAP_CRYPTO.ed25519_verify(&pk, b"hello", &sig).is_ok());
        assert!(CHEAP_CRYPTO.ed25519_verify(&pk, b"hellp", &sig).is_err());
        let other = CHEAP_CRYPTO.ed25519_public(&[6; 32]);
        assert!(CHEAP_CRYPTO.ed25519_verify(&other, b"hello", &sig).is_err());
    }
}
