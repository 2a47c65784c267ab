//! Every random draw comes from the seeded stream: same seed, same bytes; clones share it.

use super::suite;
use crate::e2ee::provider::{MlsCipherSuite, MlsCrypto};
use alloc::vec::Vec;
use mls_rs_core::crypto::{CipherSuite, CipherSuiteProvider, CryptoProvider, HpkeContextS};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

const AES: CipherSuite = CipherSuite::CURVE25519_AES128;
const CHACHA: CipherSuite = CipherSuite::CURVE25519_CHACHA;

/// One of each kind of random draw, in a fixed order, as bytes.
fn draws(cs: &MlsCipherSuite) -> Vec<Vec<u8>> {
    let (_, target) = cs.kem_derive(&[42; 32]).unwrap();
    let mut out = Vec::new();
    out.push(cs.random_bytes_vec(48).unwrap());
    let (sk, pk) = cs.kem_generate().unwrap();
    out.push(sk.to_vec());
    out.push(pk.to_vec());
    let (sk, pk) = cs.signature_key_generate().unwrap();
    out.push(sk.to_vec());
    out.push(pk.to_vec());
    let ct = cs.hpke_seal(&target, b"info", None, b"plaintext").unwrap();
    out.push(ct.kem_output);
    out.push(ct.ciphertext);
    let (enc, mut ctx) = cs.hpke_setup_s(&target, b"info").unwrap();
    out.push(enc);
    out.push(ctx.seal(None, b"more").unwrap());
    out
}

#[test]
fn same_seed_same_bytes_for_every_kind_of_draw() {
    for c in [AES, CHACHA] {
        let a = draws(&suite(1, c));
        let b = draws(&suite(1, c));
        assert_eq!(a, b);
        // Another seed changes every draw.
        let c2 = draws(&suite(2, c));
        for (x, y) in a.iter().zip(&c2) {
            assert_ne!(x, y);
        }
    }
}

#[test]
fn from_rng_seeds_from_the_callers_generator() {
    let mut r1 = ChaCha20Rng::from_seed([5; 32]);
    let mut r2 = ChaCha20Rng::from_seed([5; 32]);
    let p1 = MlsCrypto::from_rng(&mut r1);
    let p2 = MlsCrypto::from_rng(&mut r2);
    let d1 = draws(&p1.cipher_suite_provider(AES).unwrap());
    assert_eq!(d1, draws(&p2.cipher_suite_provider(AES).unwrap()));
    // It took exactly a 32-byte seed from the caller's generator, which goes on from there.
    let mut reference = ChaCha20Rng::from_seed([5; 32]);
    let mut seed = [0u8; 32];
    reference.fill_bytes(&mut seed);
    assert_eq!(r1.next_u64(), reference.next_u64());
    let p3 = MlsCrypto::from_seed(seed);
    assert_eq!(d1, draws(&p3.cipher_suite_provider(AES).unwrap()));
    // Another caller seed, another stream.
    let p4 = MlsCrypto::from_rng(&mut ChaCha20Rng::from_seed([6; 32]));
    assert_ne!(d1, draws(&p4.cipher_suite_provider(AES).unwrap()));
}

#[test]
fn clones_and_suites_share_one_stream() {
    let p = MlsCrypto::from_seed([7; 32]);
    let q = p.clone();
    let a = p.cipher_suite_provider(AES).unwrap();
    let b = q.cipher_suite_provider(CHACHA).unwrap();
    let b2 = b.clone();
    let x = a.random_bytes_vec(20).unwrap();
    let y = b.random_bytes_vec(20).unwrap();
    let z = b2.random_bytes_vec(24).unwrap();
    let fresh = suite(7, CHACHA).random_bytes_vec(64).unwrap();
    assert_eq!([x, y, z].concat(), fresh);
}

#[cfg(feature = "std")]
#[test]
fn a_provider_is_shared_across_threads() {
    let p = MlsCrypto::from_seed([8; 32]);
    let cs = p.cipher_suite_provider(AES).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let cs = cs.clone();
            std::thread::spawn(move || {
                let mut v = Vec::new();
                for _ in 0..64 {
                    v.push(cs.random_bytes_vec(16).unwrap());
                }
                v
            })
        })
        .collect();
    let mut all: Vec<Vec<u8>> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    // 256 draws of 16 bytes from one stream: all distinct, and together exactly the
    // stream's first 4096 bytes (in some interleaving, at 16-byte granularity).
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), n);
    let stream = suite(8, AES).random_bytes_vec(16 * n).unwrap();
    let mut chunks: Vec<Vec<u8>> = stream.chunks(16).map(|c| c.to_vec()).collect();
    chunks.sort();
    assert_eq!(all, chunks);
}
