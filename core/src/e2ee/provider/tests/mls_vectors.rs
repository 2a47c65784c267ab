//! MLS interoperability vectors for suites 0x0001 and 0x0003 (fixtures in `data/`):
//!
//! - `crypto_basics.json`: the MLS working group's crypto-basics vectors (RefHash,
//!   ExpandWithLabel, DeriveSecret, DeriveTreeSecret, SignWithLabel, EncryptWithLabel of
//!   RFC 9420 §5), as shipped in mls-rs's `test_data/basic_crypto.json`. Their signature
//!   keys are 32-byte seeds.
//! - `passive_client_welcome.json`: the passive-client Welcome vectors shipped in mls-rs's
//!   `test_data/interop_passive_client_welcome.json`, made by mls-rs with its RustCrypto
//!   provider (64-byte `seed ‖ public` signature keys). A client running on this provider
//!   joins from the Welcome and must reach the listed epoch authenticator. Only the cases
//!   without external PSKs are kept: cove builds mls-rs without its `psk` feature.

use super::{hex_field, suite, suite_of};
use crate::e2ee::provider::MlsCrypto;
use alloc::vec::Vec;
use mls_rs::group::ExportedTree;
use mls_rs::identity::basic::BasicIdentityProvider;
use mls_rs::mls_rs_codec::MlsEncode;
use mls_rs::storage_provider::in_memory::InMemoryKeyPackageStorage;
use mls_rs::{Client, MlsMessage};
use mls_rs_core::crypto::{
    CipherSuite, CipherSuiteProvider, HpkeCiphertext, HpkePublicKey, HpkeSecretKey,
    SignaturePublicKey, SignatureSecretKey,
};
use mls_rs_core::key_package::KeyPackageData;
use serde_json::Value;

fn load(json: &str) -> Vec<Value> {
    serde_json::from_str::<Value>(json)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// `opaque data<V>` (RFC 9420 §2.1.2): a variable-length integer length, then the bytes.
fn opaque(out: &mut Vec<u8>, data: &[u8]) {
    let n = data.len();
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.extend_from_slice(&(0x4000 | n as u16).to_be_bytes());
    } else {
        out.extend_from_slice(&(0x8000_0000 | n as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
}

/// `"MLS 1.0 " + label` followed by `context`, both as `opaque<V>`: the shape of KDFLabel's
/// tail, SignContent and EncryptContext.
fn labeled(label: &str, context: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    opaque(&mut out, &[b"MLS 1.0 ", label.as_bytes()].concat());
    opaque(&mut out, context);
    out
}

fn expand_with_label<C: CipherSuiteProvider>(
    cs: &C,
    secret: &[u8],
    label: &str,
    context: &[u8],
    len: u16,
) -> Vec<u8> {
    let info = [&len.to_be_bytes()[..], &labeled(label, context)].concat();
    cs.kdf_expand(secret, &info, usize::from(len))
        .unwrap()
        .to_vec()
}

fn str_field<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name].as_str().unwrap()
}

fn num_field(v: &Value, name: &str) -> u64 {
    v[name].as_u64().unwrap()
}

#[test]
fn crypto_basics() {
    let vectors = load(include_str!("data/crypto_basics.json"));
    let mut suites: Vec<CipherSuite> = vectors.iter().map(suite_of).collect();
    suites.sort();
    assert_eq!(suites, MlsCrypto::CIPHER_SUITES);
    for v in &vectors {
        let cs = suite(1, suite_of(v));

        let r = &v["ref_hash"];
        let mut input = Vec::new();
        opaque(&mut input, str_field(r, "label").as_bytes());
        opaque(&mut input, &hex_field(r, "value"));
        assert_eq!(cs.hash(&input).unwrap(), hex_field(r, "out"), "ref_hash");

        let e = &v["expand_with_label"];
        let len = u16::try_from(num_field(e, "length")).unwrap();
        let out = expand_with_label(
            &cs,
            &hex_field(e, "secret"),
            str_field(e, "label"),
            &hex_field(e, "context"),
            len,
        );
        assert_eq!(out, hex_field(e, "out"), "expand_with_label");

        let d = &v["derive_secret"];
        let out = expand_with_label(&cs, &hex_field(d, "secret"), str_field(d, "label"), &[], 32);
        assert_eq!(out, hex_field(d, "out"), "derive_secret");

        let t = &v["derive_tree_secret"];
        let generation = u32::try_from(num_field(t, "generation")).unwrap();
        let out = expand_with_label(
            &cs,
            &hex_field(t, "secret"),
            str_field(t, "label"),
            &generation.to_be_bytes(),
            u16::try_from(num_field(t, "length")).unwrap(),
        );
        assert_eq!(out, hex_field(t, "out"), "derive_tree_secret");

        let s = &v["sign_with_label"];
        let sk = SignatureSecretKey::new(hex_field(s, "priv"));
        let pk = SignaturePublicKey::new(hex_field(s, "pub"));
        let content = labeled(str_field(s, "label"), &hex_field(s, "content"));
        assert_eq!(cs.signature_key_derive_public(&sk).unwrap(), pk);
        cs.verify(&pk, &hex_field(s, "signature"), &content)
            .unwrap();
        // Ed25519 is deterministic: our signature is the vector's.
        assert_eq!(cs.sign(&sk, &content).unwrap(), hex_field(s, "signature"));

        let x = &v["encrypt_with_label"];
        let sk = HpkeSecretKey::from(hex_field(x, "priv"));
        let pk = HpkePublicKey::from(hex_field(x, "pub"));
        let info = labeled(str_field(x, "label"), &hex_field(x, "context"));
        let ct = HpkeCiphertext {
            kem_output: hex_field(x, "kem_output"),
            ciphertext: hex_field(x, "ciphertext"),
        };
        let pt = cs.hpke_open(&ct, &sk, &pk, &info, None).unwrap();
        assert_eq!(*pt, hex_field(x, "plaintext"), "encrypt_with_label");
        let again = cs.hpke_seal(&pk, &info, None, &pt).unwrap();
        assert_eq!(*cs.hpke_open(&again, &sk, &pk, &info, None).unwrap(), *pt);
    }
}

#[test]
fn passive_client_joins_from_welcome_vectors() {
    let vectors = load(include_str!("data/passive_client_welcome.json"));
    let mut per_suite = [0usize; 2];
    for (i, v) in vectors.iter().enumerate() {
        let cipher_suite = suite_of(v);
        let slot = MlsCrypto::CIPHER_SUITES
            .iter()
            .position(|c| *c == cipher_suite)
            .unwrap();
        per_suite[slot] += 1;
        assert!(v["external_psks"].as_array().unwrap().is_empty());
        assert!(v["epochs"].as_array().unwrap().is_empty());

        let crypto = MlsCrypto::from_seed([i as u8; 32]);
        let cs = suite(i as u8, cipher_suite);
        let key_package = MlsMessage::from_bytes(&hex_field(v, "key_package"))
            .unwrap()
            .into_key_package()
            .unwrap();
        let reference = key_package.to_reference(&cs).unwrap();
        let expiration = key_package.expiration().unwrap().seconds_since_epoch();
        let storage = InMemoryKeyPackageStorage::new();
        storage.insert(
            reference.to_vec(),
            KeyPackageData::new(
                key_package.mls_encode_to_vec().unwrap(),
                hex_field(v, "init_priv").into(),
                hex_field(v, "encryption_priv").into(),
                expiration,
            ),
        );
        let client = Client::builder()
            .crypto_provider(crypto)
            .identity_provider(BasicIdentityProvider::new())
            .key_package_repo(storage)
            .signing_identity(
                key_package.signing_identity().clone(),
                hex_field(v, "signature_priv").into(),
                cipher_suite,
            )
            .build();
        let welcome = MlsMessage::from_bytes(&hex_field(v, "welcome")).unwrap();
        let tree_bytes = v["ratchet_tree"].as_str().map(|t| hex::decode(t).unwrap());
        let tree = tree_bytes
            .as_deref()
            .map(|t| ExportedTree::from_bytes(t).unwrap());
        let (group, _) = client.join_group(tree, &welcome, None).unwrap();
        assert_eq!(
            group.epoch_authenticator().unwrap().to_vec(),
            hex_field(v, "initial_epoch_authenticator"),
            "case {i}"
        );
    }
    assert_eq!(per_suite, [4, 4]);
}
