//! RFC 9180 Appendix A.1 and A.2 (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, with
//! AES-128-GCM and with ChaCha20-Poly1305; base and PSK modes), transcribed into
//! `data/rfc9180_x25519.json`.
//!
//! Checked: key derivation of both key pairs, single-shot open (base and PSK), a receiver
//! context opening the first messages in order, every exported value, and the AEAD alone
//! against each listed (key, nonce, aad, pt, ct).

use super::{hex_field, suite};
use alloc::vec::Vec;
use mls_rs_core::crypto::{
    CipherSuite, CipherSuiteProvider, HpkeCiphertext, HpkeContextR, HpkePsk, HpkePublicKey,
    HpkeSecretKey,
};
use serde_json::Value;

fn vectors() -> Vec<Value> {
    let v: Value = serde_json::from_str(include_str!("data/rfc9180_x25519.json")).unwrap();
    v.as_array().unwrap().clone()
}

fn suite_for(v: &Value) -> CipherSuite {
    assert_eq!(
        (v["kem_id"].as_u64(), v["kdf_id"].as_u64()),
        (Some(32), Some(1))
    );
    match v["aead_id"].as_u64() {
        Some(1) => CipherSuite::CURVE25519_AES128,
        Some(3) => CipherSuite::CURVE25519_CHACHA,
        other => panic!("unexpected aead {other:?}"),
    }
}

#[test]
fn rfc9180_vectors_for_both_suites() {
    let vectors = vectors();
    let mut seen = Vec::new();
    for v in &vectors {
        let cs = suite(1, suite_for(v));
        let mode = v["mode"].as_u64().unwrap();
        seen.push((cs.cipher_suite(), mode));

        // DeriveKeyPair.
        for (ikm, sk, pk) in [("ikmR", "skRm", "pkRm"), ("ikmE", "skEm", "pkEm")] {
            let (s, p) = cs.kem_derive(&hex_field(v, ikm)).unwrap();
            assert_eq!(s, HpkeSecretKey::from(hex_field(v, sk)), "{ikm}");
            assert_eq!(p, HpkePublicKey::from(hex_field(v, pk)), "{ikm}");
        }
        let sk_r = HpkeSecretKey::from(hex_field(v, "skRm"));
        let pk_r = HpkePublicKey::from(hex_field(v, "pkRm"));
        cs.kem_public_key_validate(&pk_r).unwrap();
        let info = hex_field(v, "info");
        let enc = hex_field(v, "enc");
        let encs = v["encryptions"].as_array().unwrap();

        // Single-shot open of the first message (sequence number 0).
        let first = &encs[0];
        assert_eq!(first["sequence_number"].as_u64(), Some(0));
        let ct = HpkeCiphertext {
            kem_output: enc.clone(),
            ciphertext: hex_field(first, "ct"),
        };
        let aad = hex_field(first, "aad");
        let pt = if mode == 1 {
            let psk = hex_field(v, "psk");
            let psk_id = hex_field(v, "psk_id");
            let bundle = HpkePsk::new(&psk_id, &psk);
            // Without the PSK it does not open.
            assert!(cs.hpke_open(&ct, &sk_r, &pk_r, &info, Some(&aad)).is_err());
            cs.hpke_open_psk(&ct, &sk_r, &pk_r, &info, Some(&aad), bundle)
                .unwrap()
        } else {
            cs.hpke_open(&ct, &sk_r, &pk_r, &info, Some(&aad)).unwrap()
        };
        assert_eq!(*pt, hex_field(first, "pt"));

        if mode == 0 {
            // A receiver context: messages 0, 1, 2 in order, then every export.
            let mut ctx = cs.hpke_setup_r(&enc, &sk_r, &pk_r, &info).unwrap();
            for e in &encs[..3] {
                let pt = ctx
                    .open(Some(&hex_field(e, "aad")), &hex_field(e, "ct"))
                    .unwrap();
                assert_eq!(*pt, hex_field(e, "pt"));
            }
            for x in v["exports"].as_array().unwrap() {
                let len = usize::try_from(x["L"].as_u64().unwrap()).unwrap();
                let out = ctx.export(&hex_field(x, "exporter_context"), len).unwrap();
                assert_eq!(*out, hex_field(x, "exported_value"));
            }
        }

        // The AEAD alone, with the context's key and each message's nonce.
        let key = hex_field(v, "key");
        assert_eq!(key.len(), cs.aead_key_size());
        for e in encs {
            let (nonce, aad) = (hex_field(e, "nonce"), hex_field(e, "aad"));
            let sealed = cs
                .aead_seal(&key, &hex_field(e, "pt"), Some(&aad), &nonce)
                .unwrap();
            assert_eq!(sealed, hex_field(e, "ct"));
            let opened = cs.aead_open(&key, &sealed, Some(&aad), &nonce).unwrap();
            assert_eq!(*opened, hex_field(e, "pt"));
        }
    }
    seen.sort_by_key(|(cs, mode)| (u16::from(*cs), *mode));
    assert_eq!(
        seen,
        [
            (CipherSuite::CURVE25519_AES128, 0),
            (CipherSuite::CURVE25519_AES128, 1),
            (CipherSuite::CURVE25519_CHACHA, 0),
            (CipherSuite::CURVE25519_CHACHA, 1),
        ]
    );
}
