//! Every operation of both suites: round trips over a spread of sizes, tampering,
//! malformed inputs, and the standard known answers of the hash, MAC and KDF.
//!
//! This covers what mls-rs-core's provider conformance suite checks (signature, AEAD,
//! HPKE base/PSK/export, HKDF, MAC, hash). That suite (`mls_rs_core::crypto::test_suite`)
//! reads its vectors from `test_data/*.json` beside mls-rs-core's own manifest, files the
//! published crate does not ship, so it cannot run from a registry dependency; the same
//! properties are checked here, and the known answers of other implementations are in the
//! sibling modules.

use super::{DATA_SIZES, suite};
use crate::e2ee::provider::{MlsCrypto, ProviderError};
use alloc::vec;
use alloc::vec::Vec;
use mls_rs_core::crypto::{
    CipherSuite, CipherSuiteProvider, HpkeContextR, HpkeContextS, HpkePsk, HpkePublicKey,
};

fn both(seed: u8) -> [crate::e2ee::provider::MlsCipherSuite; 2] {
    MlsCrypto::CIPHER_SUITES.map(|cs| suite(seed, cs))
}

fn sizes() -> impl Iterator<Item = (usize, usize, usize)> {
    DATA_SIZES[1..].iter().flat_map(|&pt| {
        DATA_SIZES
            .iter()
            .flat_map(move |&info| DATA_SIZES.iter().map(move |&aad| (pt, info, aad)))
    })
}

#[test]
fn hash_is_sha256() {
    for cs in both(1) {
        assert_eq!(
            cs.hash(b"abc").unwrap(),
            hex::decode("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
                .unwrap()
        );
        assert_eq!(
            cs.hash(b"").unwrap(),
            hex::decode("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
                .unwrap()
        );
    }
}

#[test]
fn mac_is_hmac_sha256_rfc4231() {
    let cases: [(Vec<u8>, &[u8], &str); 3] = [
        (
            vec![0x0b; 20],
            b"Hi There",
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
        ),
        (
            b"Jefe".to_vec(),
            b"what do ya want for nothing?",
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        ),
        (
            vec![0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
        ),
    ];
    for cs in both(1) {
        for (key, data, tag) in &cases {
            assert_eq!(cs.mac(key, data).unwrap(), hex::decode(tag).unwrap());
        }
    }
}

#[test]
fn kdf_is_hkdf_sha256_rfc5869() {
    // RFC 5869 A.1 and A.3 (empty salt and info).
    let ikm = [0x0b; 22];
    let salt = hex::decode("000102030405060708090a0b0c").unwrap();
    let info = hex::decode("f0f1f2f3f4f5f6f7f8f9").unwrap();
    for cs in both(1) {
        assert_eq!(cs.kdf_extract_size(), 32);
        let prk = cs.kdf_extract(&salt, &ikm).unwrap();
        assert_eq!(
            *prk,
            hex::decode("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5")
                .unwrap()
        );
        assert_eq!(
            *cs.kdf_expand(&prk, &info, 42).unwrap(),
            hex::decode(
                "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
            )
            .unwrap()
        );
        let prk = cs.kdf_extract(&[], &ikm).unwrap();
        assert_eq!(
            *prk,
            hex::decode("19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04")
                .unwrap()
        );
        assert_eq!(
            *cs.kdf_expand(&prk, &[], 42).unwrap(),
            hex::decode(
                "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
            )
            .unwrap()
        );
        // Limits: a short PRK, and more than 255 blocks, are errors, not panics.
        assert!(matches!(
            cs.kdf_expand(&[7; 16], b"", 32),
            Err(ProviderError::Kdf)
        ));
        assert_eq!(cs.kdf_expand(&prk, b"", 255 * 32).unwrap().len(), 255 * 32);
        assert!(matches!(
            cs.kdf_expand(&prk, b"", 255 * 32 + 1),
            Err(ProviderError::Kdf)
        ));
        assert!(cs.kdf_expand(&prk, b"", 0).unwrap().is_empty());
    }
}

#[test]
fn aead_round_trips_and_refuses_tampering() {
    for cs in both(2) {
        let key_len = cs.aead_key_size();
        let expected = if cs.cipher_suite() == CipherSuite::CURVE25519_AES128 {
            16
        } else {
            32
        };
        assert_eq!(key_len, expected);
        assert_eq!(cs.aead_nonce_size(), 12);
        let key = cs.random_bytes_vec(key_len).unwrap();
        let nonce = cs.random_bytes_vec(12).unwrap();
        for &len in &DATA_SIZES {
            for &aad_len in &DATA_SIZES {
                let pt = cs.random_bytes_vec(len).unwrap();
                let aad = cs.random_bytes_vec(aad_len).unwrap();
                let ct = cs.aead_seal(&key, &pt, Some(&aad), &nonce).unwrap();
                assert_eq!(ct.len(), len + 16);
                let back = cs.aead_open(&key, &ct, Some(&aad), &nonce).unwrap();
                assert_eq!(*back, pt);
                // Each byte position matters: first, middle, tag.
                for pos in [0, ct.len() / 2, ct.len() - 1] {
                    let mut bad = ct.clone();
                    bad[pos] ^= 0x80;
                    assert!(matches!(
                        cs.aead_open(&key, &bad, Some(&aad), &nonce),
                        Err(ProviderError::AeadOpen)
                    ));
                }
                let mut other_aad = aad.clone();
                other_aad.push(0);
                assert!(cs.aead_open(&key, &ct, Some(&other_aad), &nonce).is_err());
                let mut other_nonce = nonce.clone();
                other_nonce[11] ^= 1;
                assert!(cs.aead_open(&key, &ct, Some(&aad), &other_nonce).is_err());
                let mut other_key = key.clone();
                other_key[0] ^= 1;
                assert!(cs.aead_open(&other_key, &ct, Some(&aad), &nonce).is_err());
                assert!(
                    cs.aead_open(&key, &ct[..ct.len() - 1], Some(&aad), &nonce)
                        .is_err()
                );
            }
        }
        // No aad and an empty aad are the same thing.
        let ct = cs.aead_seal(&key, b"x", None, &nonce).unwrap();
        assert_eq!(ct, cs.aead_seal(&key, b"x", Some(&[]), &nonce).unwrap());
        // Malformed inputs are errors.
        assert!(matches!(
            cs.aead_seal(&key[1..], b"x", None, &nonce),
            Err(ProviderError::AeadKeyLength)
        ));
        assert!(matches!(
            cs.aead_seal(&key, b"x", None, &nonce[1..]),
            Err(ProviderError::AeadNonceLength)
        ));
        assert!(matches!(
            cs.aead_open(&key, &[0; 15], None, &nonce),
            Err(ProviderError::AeadOpen)
        ));
        assert!(matches!(
            cs.aead_open(&[0; 24], &ct, None, &nonce),
            Err(ProviderError::AeadKeyLength)
        ));
    }
}

#[test]
fn hpke_base_mode_round_trips_over_sizes() {
    for cs in both(3) {
        let (sk, pk) = cs.kem_generate().unwrap();
        cs.kem_public_key_validate(&pk).unwrap();
        let (other_sk, other_pk) = cs.kem_generate().unwrap();
        for (pt_len, info_len, aad_len) in sizes() {
            let pt = cs.random_bytes_vec(pt_len).unwrap();
            let info = cs.random_bytes_vec(info_len).unwrap();
            let aad = cs.random_bytes_vec(aad_len).unwrap();
            let aad = (aad_len > 0).then_some(aad.as_slice());
            let ct = cs.hpke_seal(&pk, &info, aad, &pt).unwrap();
            assert_eq!(ct.kem_output.len(), 32);
            assert_eq!(ct.ciphertext.len(), pt_len + 16);
            assert_eq!(*cs.hpke_open(&ct, &sk, &pk, &info, aad).unwrap(), pt);
            // The wrong recipient, info or aad does not open it.
            assert!(cs.hpke_open(&ct, &other_sk, &other_pk, &info, aad).is_err());
            let mut wrong_info = info.clone();
            wrong_info.push(1);
            assert!(cs.hpke_open(&ct, &sk, &pk, &wrong_info, aad).is_err());
            assert!(cs.hpke_open(&ct, &sk, &pk, &info, Some(b"other")).is_err());
        }
    }
}

#[test]
fn hpke_contexts_seal_in_order_and_export_alike() {
    for cs in both(4) {
        let (sk, pk) = cs.kem_generate().unwrap();
        for &info_len in &DATA_SIZES {
            let info = cs.random_bytes_vec(info_len).unwrap();
            let (enc, mut sender) = cs.hpke_setup_s(&pk, &info).unwrap();
            let mut receiver = cs.hpke_setup_r(&enc, &sk, &pk, &info).unwrap();
            let msgs: Vec<Vec<u8>> = DATA_SIZES
                .iter()
                .map(|&n| cs.random_bytes_vec(n).unwrap())
                .collect();
            let cts: Vec<Vec<u8>> = msgs
                .iter()
                .map(|m| sender.seal(Some(b"ad"), m).unwrap())
                .collect();
            // The same plaintext twice in one context gives two different ciphertexts.
            assert_ne!(
                sender.seal(None, &msgs[2]).unwrap(),
                sender.seal(None, &msgs[2]).unwrap()
            );
            // Out of order fails (the nonce is the sequence number), in order works.
            assert!(
                cs.hpke_setup_r(&enc, &sk, &pk, &info)
                    .unwrap()
                    .open(Some(b"ad"), &cts[1])
                    .is_err()
            );
            for (m, ct) in msgs.iter().zip(&cts) {
                assert_eq!(*receiver.open(Some(b"ad"), ct).unwrap(), *m);
            }
            for &ctx_len in &DATA_SIZES {
                let ctx = cs.random_bytes_vec(ctx_len).unwrap();
                for &len in &DATA_SIZES[1..] {
                    let a = sender.export(&ctx, len).unwrap();
                    assert_eq!(a.len(), len);
                    assert_eq!(*a, *receiver.export(&ctx, len).unwrap());
                }
            }
            assert_ne!(
                *sender.export(b"a", 32).unwrap(),
                *sender.export(b"b", 32).unwrap()
            );
        }
    }
}

#[test]
fn hpke_psk_mode_binds_the_psk() {
    for cs in both(5) {
        let (sk, pk) = cs.kem_generate().unwrap();
        let psk = cs.random_bytes_vec(32).unwrap();
        let psk_id = cs.random_bytes_vec(16).unwrap();
        for (pt_len, info_len, aad_len) in sizes().step_by(7) {
            let pt = cs.random_bytes_vec(pt_len).unwrap();
            let info = cs.random_bytes_vec(info_len).unwrap();
            let aad = cs.random_bytes_vec(aad_len).unwrap();
            let aad = (aad_len > 0).then_some(aad.as_slice());
            let bundle = HpkePsk::new(&psk_id, &psk);
            let ct = cs.hpke_seal_psk(&pk, &info, aad, &pt, bundle).unwrap();
            let opened = cs
                .hpke_open_psk(&ct, &sk, &pk, &info, aad, HpkePsk::new(&psk_id, &psk))
                .unwrap();
            assert_eq!(*opened, pt);
            // Base mode, another PSK or another PSK id does not open it.
            assert!(cs.hpke_open(&ct, &sk, &pk, &info, aad).is_err());
            let mut other = psk.clone();
            other[0] ^= 1;
            assert!(
                cs.hpke_open_psk(&ct, &sk, &pk, &info, aad, HpkePsk::new(&psk_id, &other))
                    .is_err()
            );
            assert!(
                cs.hpke_open_psk(&ct, &sk, &pk, &info, aad, HpkePsk::new(b"id", &psk))
                    .is_err()
            );
        }
        // A PSK shorter than 32 bytes is refused.
        assert!(
            cs.hpke_seal_psk(&pk, b"", None, b"x", HpkePsk::new(b"id", &[1; 31]))
                .is_err()
        );
    }
}

#[test]
fn kem_derive_is_a_function_of_ikm() {
    for cs in both(6) {
        let (sk1, pk1) = cs.kem_derive(&[1; 32]).unwrap();
        let (sk2, pk2) = cs.kem_derive(&[1; 32]).unwrap();
        let (sk3, pk3) = cs.kem_derive(&[2; 32]).unwrap();
        assert_eq!((&sk1, &pk1), (&sk2, &pk2));
        assert_ne!(sk1, sk3);
        assert_ne!(pk1, pk3);
        assert_eq!((sk1.len(), pk1.len()), (32, 32));
        cs.kem_public_key_validate(&pk3).unwrap();
        // A derived pair works for HPKE.
        let ct = cs.hpke_seal(&pk1, b"i", None, b"pt").unwrap();
        assert_eq!(*cs.hpke_open(&ct, &sk1, &pk1, b"i", None).unwrap(), b"pt");
        // Malformed public keys.
        for bad in [vec![], vec![9; 31], vec![9; 33]] {
            let bad = HpkePublicKey::from(bad);
            assert!(cs.kem_public_key_validate(&bad).is_err());
            assert!(cs.hpke_seal(&bad, b"", None, b"x").is_err());
        }
    }
}

#[test]
fn signatures_sign_verify_and_refuse_forgeries() {
    for cs in both(7) {
        let (other_sk, other_pk) = cs.signature_key_generate().unwrap();
        for &len in &DATA_SIZES {
            let data = cs.random_bytes_vec(len).unwrap();
            let (sk, pk) = cs.signature_key_generate().unwrap();
            assert_eq!((sk.len(), pk.len()), (32, 32));
            assert_eq!(cs.signature_key_derive_public(&sk).unwrap(), pk);
            let sig = cs.sign(&sk, &data).unwrap();
            assert_eq!(sig.len(), 64);
            cs.verify(&pk, &sig, &data).unwrap();
            // Ed25519 is deterministic.
            assert_eq!(sig, cs.sign(&sk, &data).unwrap());
            assert!(matches!(
                cs.verify(&other_pk, &sig, &data),
                Err(ProviderError::BadSignature)
            ));
            let mut bad = sig.clone();
            bad[len % 64] ^= 1;
            assert!(cs.verify(&pk, &bad, &data).is_err());
            let mut more = data.clone();
            more.push(0);
            assert!(cs.verify(&pk, &sig, &more).is_err());
            assert!(cs.verify(&pk, &sig[..63], &data).is_err());
            assert!(
                cs.verify(&pk, &[sig.as_slice(), &[0]].concat(), &data)
                    .is_err()
            );
        }
        let sig = cs.sign(&other_sk, b"m").unwrap();
        assert!(matches!(
            cs.verify(&other_pk[..31].to_vec().into(), &sig, b"m"),
            Err(ProviderError::InvalidSignaturePublicKey)
        ));
    }
}
