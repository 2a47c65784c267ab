//! Interoperability of cove's Noise XX with the `snow` crate, both suites, both roles.

use cove_core::crypto::{CryptoProvider, RUST_CRYPTO, Suite};
use cove_core::noise::{HandshakeState, Role, TransportPair};

const PROLOGUE: &[u8] = b"cove interop prologue";

fn params(suite: Suite) -> snow::params::NoiseParams {
    suite.noise_name().parse().unwrap()
}

struct Keys {
    cove_s: [u8; 32],
    cove_e: [u8; 32],
    snow_s: [u8; 32],
    snow_e: [u8; 32],
}

const KEYS: Keys = Keys {
    cove_s: [0x11; 32],
    cove_e: [0x22; 32],
    snow_s: [0x33; 32],
    snow_e: [0x44; 32],
};

fn snow_side(suite: Suite, initiator: bool, fixed_e: bool) -> snow::HandshakeState {
    let p = params(suite);
    let b = snow::Builder::new(p)
        .local_private_key(&KEYS.snow_s)
        .unwrap()
        .prologue(PROLOGUE)
        .unwrap();
    let b = if fixed_e {
        b.fixed_ephemeral_key_for_testing_only(&KEYS.snow_e)
    } else {
        b
    };
    if initiator {
        b.build_initiator().unwrap()
    } else {
        b.build_responder().unwrap()
    }
}

fn transport_exchange(cove: &mut TransportPair, snow: &mut snow::TransportState) {
    let mut buf = [0u8; 256];
    let mut out = [0u8; 256];
    for i in 0..5u8 {
        let msg = [i; 40];
        let n = cove.send.encrypt(&[], &msg, &mut buf).unwrap();
        let m = snow.read_message(&buf[..n], &mut out).unwrap();
        assert_eq!(&out[..m], &msg);
        let reply = [i ^ 0xff; 33];
        let n = snow.write_message(&reply, &mut buf).unwrap();
        let m = cove.recv.decrypt(&[], &buf[..n], &mut out).unwrap();
        assert_eq!(&out[..m], &reply);
    }
}

fn cove_initiator_with_snow_responder(suite: Suite) {
    let mut me = HandshakeState::new(
        &RUST_CRYPTO,
        suite,
        Role::Initiator,
        &KEYS.cove_s,
        &KEYS.cove_e,
        PROLOGUE,
    );
    let mut them = snow_side(suite, false, false);
    let mut msg = [0u8; 1024];
    let mut pl = [0u8; 1024];

    let n = me.write_message(b"syn payload", &mut msg).unwrap();
    let m = them.read_message(&msg[..n], &mut pl).unwrap();
    assert_eq!(&pl[..m], b"syn payload");

    let n = them.write_message(b"syn-ack payload", &mut msg).unwrap();
    let m = me.read_message(&msg[..n], &mut pl).unwrap();
    assert_eq!(&pl[..m], b"syn-ack payload");
    assert_eq!(
        me.remote_static().unwrap(),
        RUST_CRYPTO.x25519_public(&KEYS.snow_s)
    );

    let n = me.write_message(b"ack payload", &mut msg).unwrap();
    let m = them.read_message(&msg[..n], &mut pl).unwrap();
    assert_eq!(&pl[..m], b"ack payload");
    assert_eq!(
        them.get_remote_static().unwrap(),
        &RUST_CRYPTO.x25519_public(&KEYS.cove_s)
    );

    assert!(me.is_finished() && them.is_handshake_finished());
    assert_eq!(&me.handshake_hash()[..], them.get_handshake_hash());
    let mut cove = me.split().unwrap();
    let mut snow = them.into_transport_mode().unwrap();
    transport_exchange(&mut cove, &mut snow);
}

fn snow_initiator_with_cove_responder(suite: Suite) {
    let mut me = HandshakeState::new(
        &RUST_CRYPTO,
        suite,
        Role::Responder,
        &KEYS.cove_s,
        &KEYS.cove_e,
        PROLOGUE,
    );
    let mut them = snow_side(suite, true, false);
    let mut msg = [0u8; 1024];
    let mut pl = [0u8; 1024];

    let n = them.write_message(b"first", &mut msg).unwrap();
    let m = me.read_message(&msg[..n], &mut pl).unwrap();
    assert_eq!(&pl[..m], b"first");

    let n = me.write_message(b"second", &mut msg).unwrap();
    let m = them.read_message(&msg[..n], &mut pl).unwrap();
    assert_eq!(&pl[..m], b"second");

    let n = them.write_message(b"third", &mut msg).unwrap();
    let m = me.read_message(&msg[..n], &mut pl).unwrap();
    assert_eq!(&pl[..m], b"third");
    assert_eq!(
        me.remote_static().unwrap(),
        RUST_CRYPTO.x25519_public(&KEYS.snow_s)
    );

    assert_eq!(&me.handshake_hash()[..], them.get_handshake_hash());
    let mut cove = me.split().unwrap();
    let mut snow = them.into_transport_mode().unwrap();
    transport_exchange(&mut cove, &mut snow);
}

#[test]
fn cove_initiator_snow_responder_aesgcm() {
    cove_initiator_with_snow_responder(Suite::AesGcm);
}

#[test]
fn cove_initiator_snow_responder_chachapoly() {
    cove_initiator_with_snow_responder(Suite::ChaChaPoly);
}

#[test]
fn snow_initiator_cove_responder_aesgcm() {
    snow_initiator_with_cove_responder(Suite::AesGcm);
}

#[test]
fn snow_initiator_cove_responder_chachapoly() {
    snow_initiator_with_cove_responder(Suite::ChaChaPoly);
}

/// Cacophony-style fixed vector: fixed static and ephemeral keys on both sides, the same
/// payloads; every message byte of cove must equal snow's.
#[test]
fn fixed_key_vectors_match_snow_byte_for_byte() {
    for suite in Suite::ALL {
        let mut cove_i = HandshakeState::new(
            &RUST_CRYPTO,
            suite,
            Role::Initiator,
            &KEYS.cove_s,
            &KEYS.cove_e,
            PROLOGUE,
        );
        let mut cove_r = HandshakeState::new(
            &RUST_CRYPTO,
            suite,
            Role::Responder,
            &KEYS.snow_s,
            &KEYS.snow_e,
            PROLOGUE,
        );
        let mut snow_i = snow::Builder::new(params(suite))
            .local_private_key(&KEYS.cove_s)
            .unwrap()
            .fixed_ephemeral_key_for_testing_only(&KEYS.cove_e)
            .prologue(PROLOGUE)
            .unwrap()
            .build_initiator()
            .unwrap();
        let mut snow_r = snow_side(suite, false, true);
        let payloads: [&[u8]; 3] = [
            b"4c756477696720766f6e204d69736573",
            b"4d757272617920526f746862617264",
            b"",
        ];
        let mut a = [0u8; 512];
        let mut b = [0u8; 512];
        let mut pl = [0u8; 512];
        for (i, p) in payloads.iter().enumerate() {
            let (na, nb) = if i % 2 == 0 {
                let na = cove_i.write_message(p, &mut a).unwrap();
                let nb = snow_i.write_message(p, &mut b).unwrap();
                cove_r.read_message(&a[..na], &mut pl).unwrap();
                snow_r.read_message(&b[..nb], &mut pl).unwrap();
                (na, nb)
            } else {
                let na = cove_r.write_message(p, &mut a).unwrap();
                let nb = snow_r.write_message(p, &mut b).unwrap();
                cove_i.read_message(&a[..na], &mut pl).unwrap();
                snow_i.read_message(&b[..nb], &mut pl).unwrap();
                (na, nb)
            };
            assert_eq!(
                hex::encode(&a[..na]),
                hex::encode(&b[..nb]),
                "{suite} message {i}"
            );
        }
        assert_eq!(&cove_i.handshake_hash()[..], snow_i.get_handshake_hash());
        let mut ci = cove_i.split().unwrap();
        let mut si = snow_i.into_transport_mode().unwrap();
        for k in 0..3u8 {
            let n = ci.send.encrypt(&[], &[k; 17], &mut a).unwrap();
            let m = si.write_message(&[k; 17], &mut b).unwrap();
            assert_eq!(&a[..n], &b[..m], "{suite} transport {k}");
        }
    }
}
