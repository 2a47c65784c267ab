//! Tests of the provider: a conformance battery over every operation of both suites,
//! published known-answer vectors (RFC 9180 HPKE, the MLS working group's crypto-basics,
//! a passive client joining from Welcome vectors made by another implementation),
//! determinism of the seeded stream, key encodings, and two mls-rs clients talking.

mod conformance;
mod determinism;
mod keys;
mod mls_vectors;
mod rfc9180;
mod smoke;

use super::{MlsCipherSuite, MlsCrypto};
use alloc::vec::Vec;
use mls_rs_core::crypto::{CipherSuite, CryptoProvider};
use serde_json::Value;

/// Sizes of the data, info and aad strings the battery runs over.
const DATA_SIZES: [usize; 5] = [0, 1, 16, 123, 2000];

/// The provider for `suite` from a provider seeded with `seed`.
fn suite(seed: u8, suite: CipherSuite) -> MlsCipherSuite {
    MlsCrypto::from_seed([seed; 32])
        .cipher_suite_provider(suite)
        .unwrap()
}

/// Decodes a hex string field of a JSON object.
fn hex_field(v: &Value, name: &str) -> Vec<u8> {
    let s = v[name]
        .as_str()
        .unwrap_or_else(|| panic!("missing field {name}"));
    hex::decode(s).unwrap()
}

/// The cipher suite of a vector, as its JSON gives it.
fn suite_of(v: &Value) -> CipherSuite {
    CipherSuite::from(u16::try_from(v["cipher_suite"].as_u64().unwrap()).unwrap())
}

#[test]
fn supports_exactly_the_two_x25519_suites() {
    let crypto = MlsCrypto::from_seed([0; 32]);
    assert_eq!(
        crypto.supported_cipher_suites(),
        [
            CipherSuite::CURVE25519_AES128,
            CipherSuite::CURVE25519_CHACHA
        ]
    );
    for cs in 0..=16u16 {
        let cs = CipherSuite::from(cs);
        let p = crypto.cipher_suite_provider(cs);
        assert_eq!(
            p.is_some(),
            crypto.supported_cipher_suites().contains(&cs),
            "{cs:?}"
        );
    }
}

#[test]
fn provider_is_clone_send_sync() {
    fn check<T: Clone + Send + Sync + 'static>() {}
    check::<MlsCrypto>();
    check::<MlsCipherSuite>();
}
