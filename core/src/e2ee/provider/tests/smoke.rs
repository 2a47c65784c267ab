//! Two mls-rs clients on this provider (mls-rs built as cove builds it: no default
//! features, no std): a group, an Add through a KeyPackage and a Welcome, application
//! messages both ways, and a Commit that rotates keys. Run for both suites, and twice with
//! the same seeds to show that the whole exchange is reproducible byte for byte.

use crate::crypto::Identity;
use crate::e2ee::provider::{MlsCrypto, signature_key_from_identity};
use alloc::vec::Vec;
use mls_rs::client_builder::MlsConfig;
use mls_rs::group::ReceivedMessage;
use mls_rs::identity::SigningIdentity;
use mls_rs::identity::basic::{BasicCredential, BasicIdentityProvider};
use mls_rs::{CipherSuite, CipherSuiteProvider, Client, CryptoProvider, ExtensionList, MlsMessage};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn client(
    crypto: MlsCrypto,
    name: &str,
    suite: CipherSuite,
    identity: Option<&Identity>,
) -> Client<impl MlsConfig> {
    let (secret, public) = match identity {
        Some(id) => signature_key_from_identity(id),
        None => crypto
            .cipher_suite_provider(suite)
            .unwrap()
            .signature_key_generate()
            .unwrap(),
    };
    let credential = BasicCredential::new(name.as_bytes().to_vec()).into_credential();
    Client::builder()
        .crypto_provider(crypto)
        .identity_provider(BasicIdentityProvider::new())
        .signing_identity(SigningIdentity::new(credential, public), secret, suite)
        .build()
}

fn application_data(received: ReceivedMessage) -> Vec<u8> {
    match received {
        ReceivedMessage::ApplicationMessage(m) => m.data().to_vec(),
        other => panic!("expected an application message, got {other:?}"),
    }
}

/// Runs the exchange and returns every MLS message that crossed the wire, serialized.
fn exchange(suite: CipherSuite, seed: u8) -> Vec<Vec<u8>> {
    let mut wire = Vec::new();
    let alice_id = Identity::generate(&mut ChaCha20Rng::from_seed([seed; 32]));
    let alice = client(
        MlsCrypto::from_seed([seed; 32]),
        "alice",
        suite,
        Some(&alice_id),
    );
    let bob = client(
        MlsCrypto::from_seed([seed.wrapping_add(1); 32]),
        "bob",
        suite,
        None,
    );

    let mut a = alice
        .create_group(ExtensionList::new(), ExtensionList::new(), None)
        .unwrap();
    let kp = bob
        .generate_key_package_message(ExtensionList::new(), ExtensionList::new(), None)
        .unwrap();
    let kp = MlsMessage::from_bytes(&kp.to_bytes().unwrap()).unwrap();
    wire.push(kp.to_bytes().unwrap());

    let commit = a.commit_builder().add_member(kp).unwrap().build().unwrap();
    a.apply_pending_commit().unwrap();
    assert_eq!(commit.welcome_messages.len(), 1);
    let welcome = commit.welcome_messages[0].to_bytes().unwrap();
    wire.push(commit.commit_message.to_bytes().unwrap());
    wire.push(welcome.clone());

    let (mut b, _) = bob
        .join_group(None, &MlsMessage::from_bytes(&welcome).unwrap(), None)
        .unwrap();
    assert_eq!(a.current_epoch(), 1);
    assert_eq!(b.current_epoch(), 1);
    assert_eq!(
        a.epoch_authenticator().unwrap().to_vec(),
        b.epoch_authenticator().unwrap().to_vec()
    );
    // Bob sees Alice's account key as her MLS signature key.
    let alice_member = b
        .roster()
        .members_iter()
        .find(|m| m.index != b.current_member_index())
        .unwrap();
    assert_eq!(
        alice_member.signing_identity.signature_key.as_bytes(),
        &alice_id.public().ed25519
    );

    let to_bob = a
        .encrypt_application_message(b"hi bob", Vec::new())
        .unwrap();
    let to_bob = to_bob.to_bytes().unwrap();
    wire.push(to_bob.clone());
    let got = b
        .process_incoming_message(MlsMessage::from_bytes(&to_bob).unwrap())
        .unwrap();
    assert_eq!(application_data(got), b"hi bob");

    let to_alice = b
        .encrypt_application_message(b"hi alice", Vec::new())
        .unwrap();
    let to_alice = to_alice.to_bytes().unwrap();
    wire.push(to_alice.clone());
    let got = a
        .process_incoming_message(MlsMessage::from_bytes(&to_alice).unwrap())
        .unwrap();
    assert_eq!(application_data(got), b"hi alice");

    // Bob commits (a fresh path: new HPKE keys, encrypted to Alice), Alice follows.
    let update = b.commit(Vec::new()).unwrap();
    b.apply_pending_commit().unwrap();
    let update = update.commit_message.to_bytes().unwrap();
    wire.push(update.clone());
    let got = a
        .process_incoming_message(MlsMessage::from_bytes(&update).unwrap())
        .unwrap();
    assert!(matches!(got, ReceivedMessage::Commit(_)));
    assert_eq!((a.current_epoch(), b.current_epoch()), (2, 2));
    assert_eq!(
        a.epoch_authenticator().unwrap().to_vec(),
        b.epoch_authenticator().unwrap().to_vec()
    );

    let after = a.encrypt_application_message(b"after", Vec::new()).unwrap();
    let after = after.to_bytes().unwrap();
    wire.push(after.clone());
    let got = b
        .process_incoming_message(MlsMessage::from_bytes(&after).unwrap())
        .unwrap();
    assert_eq!(application_data(got), b"after");
    // A message is read once: its key is gone (forward secrecy within the epoch).
    assert!(
        b.process_incoming_message(MlsMessage::from_bytes(&after).unwrap())
            .is_err()
    );
    wire
}

#[test]
fn two_clients_talk_on_both_suites() {
    for suite in MlsCrypto::CIPHER_SUITES {
        let wire = exchange(suite, 10);
        assert_eq!(wire.len(), 7);
    }
}

#[test]
fn same_seeds_reproduce_the_exchange_byte_for_byte() {
    let suite = CipherSuite::CURVE25519_CHACHA;
    let first = exchange(suite, 20);
    assert_eq!(first, exchange(suite, 20));
    let other = exchange(suite, 30);
    for (x, y) in first.iter().zip(&other) {
        assert_ne!(x, y);
    }
}
