//! Key encodings: Ed25519 secret keys (seed, or seed ‖ public), the account identity as
//! signature key, strict verification, and X25519 low-order points.

use super::suite;
use crate::crypto::{CryptoProvider as _, Identity, RUST_CRYPTO};
use crate::e2ee::provider::{MlsCrypto, ProviderError, signature_key_from_identity};
use alloc::vec;
use mls_rs_core::crypto::{
    CipherSuiteProvider, HpkeCiphertext, HpkePublicKey, SignaturePublicKey, SignatureSecretKey,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// RFC 8032 §7.1, TEST 1 and TEST 2.
const RFC8032: [(&str, &str, &str, &str); 2] = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
];

#[test]
fn ed25519_matches_rfc8032() {
    for cs in MlsCrypto::CIPHER_SUITES.map(|c| suite(1, c)) {
        for (sk, pk, msg, sig) in RFC8032 {
            let sk = SignatureSecretKey::new(hex::decode(sk).unwrap());
            let pk = SignaturePublicKey::new(hex::decode(pk).unwrap());
            let msg = hex::decode(msg).unwrap();
            assert_eq!(cs.signature_key_derive_public(&sk).unwrap(), pk);
            assert_eq!(cs.sign(&sk, &msg).unwrap(), hex::decode(sig).unwrap());
            cs.verify(&pk, &hex::decode(sig).unwrap(), &msg).unwrap();
        }
    }
}

#[test]
fn secret_key_is_the_seed_and_the_64_byte_form_is_accepted() {
    let cs = suite(2, MlsCrypto::CIPHER_SUITES[0]);
    let (sk, pk) = cs.signature_key_generate().unwrap();
    assert_eq!(sk.len(), 32);
    let long = SignatureSecretKey::new([sk.as_bytes(), pk.as_bytes()].concat());
    assert_eq!(cs.signature_key_derive_public(&long).unwrap(), pk);
    assert_eq!(cs.sign(&long, b"m").unwrap(), cs.sign(&sk, b"m").unwrap());
    // A 64-byte key whose public half is not the seed's is refused.
    let (_, other_pk) = cs.signature_key_generate().unwrap();
    let mismatched = SignatureSecretKey::new([sk.as_bytes(), other_pk.as_bytes()].concat());
    assert!(matches!(
        cs.signature_key_derive_public(&mismatched),
        Err(ProviderError::InvalidSignatureSecretKey)
    ));
    assert!(cs.sign(&mismatched, b"m").is_err());
    for len in [0, 31, 33, 63, 65] {
        let bad = SignatureSecretKey::new(vec![7; len]);
        assert!(matches!(
            cs.sign(&bad, b"m"),
            Err(ProviderError::InvalidSignatureSecretKey)
        ));
    }
}

/// The decoded signing key is cached between signatures: alternating keys, through the
/// provider and a clone of it, each signature is still made with the key asked for.
#[test]
fn alternating_signing_keys_each_sign_with_their_own() {
    let cs = suite(3, MlsCrypto::CIPHER_SUITES[0]);
    let clone = cs.clone();
    let (a, a_pk) = cs.signature_key_generate().unwrap();
    let (b, b_pk) = cs.signature_key_generate().unwrap();
    for (i, (signer, sk, pk, other)) in [
        (&cs, &a, &a_pk, &b_pk),
        (&clone, &b, &b_pk, &a_pk),
        (&cs, &b, &b_pk, &a_pk),
        (&clone, &a, &a_pk, &b_pk),
        (&cs, &a, &a_pk, &b_pk),
    ]
    .into_iter()
    .enumerate()
    {
        let msg = [i as u8; 9];
        let sig = signer.sign(sk, &msg).unwrap();
        cs.verify(pk, &sig, &msg).unwrap();
        assert!(cs.verify(other, &sig, &msg).is_err(), "signature {i}");
    }
    // A bad key after a good one is refused, not served from the cache.
    let short = SignatureSecretKey::new(a.as_bytes()[..31].to_vec());
    assert!(cs.sign(&short, b"m").is_err());
}

#[test]
fn identity_key_is_the_signature_key() {
    let id = Identity::generate(&mut ChaCha20Rng::from_seed([9; 32]));
    let (sk, pk) = signature_key_from_identity(&id);
    assert_eq!(sk.as_bytes(), &id.to_bytes()[..32]);
    assert_eq!(pk.as_bytes(), &id.public().ed25519);
    for cs in MlsCrypto::CIPHER_SUITES.map(|c| suite(3, c)) {
        assert_eq!(cs.signature_key_derive_public(&sk).unwrap(), pk);
        let sig = cs.sign(&sk, b"hello").unwrap();
        cs.verify(&pk, &sig, b"hello").unwrap();
        // The same bytes as the core's own Ed25519 signature with that identity.
        let seed = <[u8; 32]>::try_from(&id.to_bytes()[..32]).unwrap();
        assert_eq!(RUST_CRYPTO.ed25519_sign(&seed, b"hello").as_slice(), sig);
    }
}

#[test]
fn verification_is_strict() {
    let cs = suite(4, MlsCrypto::CIPHER_SUITES[1]);
    let (sk, pk) = cs.signature_key_generate().unwrap();
    let sig = cs.sign(&sk, b"m").unwrap();
    // S + L (the group order) is the same scalar, non-canonically encoded.
    let l =
        hex::decode("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010").unwrap();
    let mut s_plus_l = sig.clone();
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(s_plus_l[32 + i]) + u16::from(l[i]) + carry;
        s_plus_l[32 + i] = v as u8;
        carry = v >> 8;
    }
    assert!(cs.verify(&pk, &s_plus_l, b"m").is_err());
    // A small-order public key (the identity point) is refused whatever the signature.
    let mut identity_point = vec![0u8; 32];
    identity_point[0] = 1;
    assert!(matches!(
        cs.verify(&identity_point.into(), &sig, b"m"),
        Err(ProviderError::InvalidSignaturePublicKey)
    ));
}

#[test]
fn low_order_x25519_keys_are_refused() {
    let zero = vec![0u8; 32];
    let mut one = vec![0u8; 32];
    one[0] = 1;
    // A point of order 8 (RFC 7748's curve has cofactor 8).
    let order8 =
        hex::decode("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800").unwrap();
    for cs in MlsCrypto::CIPHER_SUITES.map(|c| suite(5, c)) {
        let (sk, pk) = cs.kem_generate().unwrap();
        for bad in [&zero, &one, &order8] {
            let bad_pk = HpkePublicKey::from(bad.clone());
            assert!(matches!(
                cs.kem_public_key_validate(&bad_pk),
                Err(ProviderError::InvalidKemPublicKey)
            ));
            // Encrypting to it would give an all-zero shared secret: refused.
            assert!(cs.hpke_seal(&bad_pk, b"", None, b"x").is_err());
            // A low-order ephemeral key sent to us is refused too.
            let forged = HpkeCiphertext {
                kem_output: bad.clone(),
                ciphertext: vec![0; 17],
            };
            assert!(cs.hpke_open(&forged, &sk, &pk, b"", None).is_err());
        }
    }
}
