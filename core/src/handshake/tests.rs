//! Tests of the handshake: both suites end to end, tampering, negotiation, forged messages.

use super::payload::{SERVER_PAYLOAD_LEN, sign};
use super::*;
use crate::crypto::RUST_CRYPTO;
use crate::crypto::{Identity, Suite, SuiteSet};
use crate::session::Session;
use crate::time::Instant;
use crate::wire::{AuthMode, MAX_NAME_LEN};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn ids() -> (Identity, Identity) {
    (
        Identity::from_bytes(&[1; 64]),
        Identity::from_bytes(&[2; 64]),
    )
}

struct Msgs {
    syn: [u8; SYN_LEN],
    syn_ack: [u8; SYN_ACK_LEN],
    ack: [u8; ACK_MAX_LEN],
    ack_len: usize,
}

fn start(suite: Suite, seed: u8) -> (ClientHandshake, ServerHandshake) {
    let (c, s) = ids();
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    let client =
        ClientHandshake::new(&RUST_CRYPTO, &c, suite, AuthMode::Login, "alice", &mut rng).unwrap();
    let server = ServerHandshake::new(&RUST_CRYPTO, &s, SuiteSet::ALL, &mut rng);
    (client, server)
}

/// Runs a whole handshake, returning the messages and both ends.
fn run(suite: Suite, seed: u8) -> (Msgs, ClientHello, ServerHello, Session, Session) {
    let (mut client, mut server) = start(suite, seed);
    let mut m = Msgs {
        syn: [0; SYN_LEN],
        syn_ack: [0; SYN_ACK_LEN],
        ack: [0; ACK_MAX_LEN],
        ack_len: 0,
    };
    assert_eq!(client.write_syn(&mut m.syn).unwrap(), SYN_LEN);
    server.read_syn(&m.syn).unwrap();
    assert_eq!(server.write_syn_ack(&mut m.syn_ack).unwrap(), SYN_ACK_LEN);
    let sh = client.read_syn_ack(&m.syn_ack).unwrap();
    let (n, cs) = client.write_ack(&mut m.ack).unwrap();
    m.ack_len = n;
    let (ch, ss) = server.read_ack(&m.ack[..n]).unwrap();
    (m, ch, sh, cs, ss)
}

#[test]
fn end_to_end_both_suites() {
    let (c, s) = ids();
    for suite in Suite::ALL {
        let (m, ch, sh, mut cs, mut ss) = run(suite, 3);
        assert_eq!(m.syn[..2], [PROTOCOL_VERSION, suite.to_u8()]);
        assert_eq!(m.ack_len, ACK_MIN_LEN + 4);
        assert_eq!(ch.name.as_str(), "alice");
        assert_eq!(ch.mode, AuthMode::Login);
        assert_eq!(ch.ed25519, c.public().ed25519);
        assert_eq!(ch.x25519, c.public().x25519);
        assert_eq!(sh.ed25519, s.public().ed25519);
        assert_eq!(sh.x25519, s.public().x25519);
        assert_eq!(cs.handshake_hash(), ss.handshake_hash());
        assert_eq!(cs.suite(), suite);
        let mut buf = [0u8; 64];
        let n = cs.seal_record(Instant(0), b"\x10hi", &mut buf).unwrap();
        let h: [u8; 5] = buf[..5].try_into().unwrap();
        assert_eq!(
            ss.open_record(Instant(0), &h, &mut buf[5..n]).unwrap(),
            b"\x10hi"
        );
        let n = ss.seal_record(Instant(0), b"\x11yo", &mut buf).unwrap();
        let h: [u8; 5] = buf[..5].try_into().unwrap();
        assert_eq!(
            cs.open_record(Instant(0), &h, &mut buf[5..n]).unwrap(),
            b"\x11yo"
        );
    }
}

#[test]
fn isns_are_acked() {
    let (mut client, mut server) = start(Suite::AesGcm, 5);
    let mut syn = [0u8; SYN_LEN];
    client.write_syn(&mut syn).unwrap();
    server.read_syn(&syn).unwrap();
    assert_eq!(server.client_isn, client.client_isn());
    let mut sa = [0u8; SYN_ACK_LEN];
    server.write_syn_ack(&mut sa).unwrap();
    assert_eq!(
        client.read_syn_ack(&sa).unwrap().server_isn,
        server.server_isn()
    );
}

#[test]
fn tampered_byte_in_any_message_fails() {
    let (good, ..) = run(Suite::AesGcm, 4);
    for i in 0..SYN_LEN {
        let (mut client, mut server) = start(Suite::AesGcm, 4);
        let mut syn = [0u8; SYN_LEN];
        client.write_syn(&mut syn).unwrap();
        syn[i] ^= 1;
        let failed = match server.read_syn(&syn) {
            Err(_) => true,
            Ok(()) => {
                let mut sa = [0u8; SYN_ACK_LEN];
                server.write_syn_ack(&mut sa).unwrap();
                client.read_syn_ack(&sa).is_err()
            }
        };
        assert!(failed, "SYN byte {i}");
    }
    // Every 5th byte and the last one, to keep debug builds quick.
    for i in (0..SYN_ACK_LEN).step_by(5).chain([SYN_ACK_LEN - 1]) {
        let (mut client, _) = start(Suite::AesGcm, 4);
        client.write_syn(&mut [0u8; SYN_LEN]).unwrap();
        let mut sa = good.syn_ack;
        sa[i] ^= 1;
        assert!(client.read_syn_ack(&sa).is_err(), "SYN-ACK byte {i}");
        assert_eq!(
            client.read_syn_ack(&good.syn_ack),
            Err(HandshakeError::Failed)
        );
    }
    for i in (0..good.ack_len).step_by(5).chain([good.ack_len - 1]) {
        let (mut client, mut server) = start(Suite::AesGcm, 4);
        client.write_syn(&mut [0u8; SYN_LEN]).unwrap();
        server.read_syn(&good.syn).unwrap();
        server.write_syn_ack(&mut [0u8; SYN_ACK_LEN]).unwrap();
        let mut ack = good.ack;
        ack[i] ^= 1;
        assert!(
            server.read_ack(&ack[..good.ack_len]).is_err(),
            "ACK byte {i}"
        );
    }
    // And the untampered messages replayed into a fresh pair still work (deterministic).
    let (mut client, mut server) = start(Suite::AesGcm, 4);
    client.write_syn(&mut [0u8; SYN_LEN]).unwrap();
    server.read_syn(&good.syn).unwrap();
    server.write_syn_ack(&mut [0u8; SYN_ACK_LEN]).unwrap();
    assert!(server.read_ack(&good.ack[..good.ack_len]).is_ok());
}

#[test]
fn suite_and_version_negotiation_errors() {
    let (mut client, _) = start(Suite::AesGcm, 6);
    let (_, s) = ids();
    let mut server = ServerHandshake::new(
        &RUST_CRYPTO,
        &s,
        SuiteSet::only(Suite::ChaChaPoly),
        &mut ChaCha20Rng::from_seed([0; 32]),
    );
    let mut syn = [0u8; SYN_LEN];
    client.write_syn(&mut syn).unwrap();
    assert_eq!(
        server.read_syn(&syn),
        Err(HandshakeError::UnsupportedSuite(1))
    );
    let mut server = ServerHandshake::new(
        &RUST_CRYPTO,
        &s,
        SuiteSet::ALL,
        &mut ChaCha20Rng::from_seed([0; 32]),
    );
    // A version 1 client is refused: its room messages have another layout.
    assert_eq!(PROTOCOL_VERSION, 2);
    syn[0] = 1;
    assert_eq!(
        server.read_syn(&syn),
        Err(HandshakeError::UnsupportedVersion(1))
    );
    let mut server = ServerHandshake::new(
        &RUST_CRYPTO,
        &s,
        SuiteSet::ALL,
        &mut ChaCha20Rng::from_seed([0; 32]),
    );
    syn[0] = 3;
    assert_eq!(
        server.read_syn(&syn),
        Err(HandshakeError::UnsupportedVersion(3))
    );
    let mut server = ServerHandshake::new(
        &RUST_CRYPTO,
        &s,
        SuiteSet::ALL,
        &mut ChaCha20Rng::from_seed([0; 32]),
    );
    syn[0] = PROTOCOL_VERSION;
    syn[1] = 9;
    assert_eq!(
        server.read_syn(&syn),
        Err(HandshakeError::UnsupportedSuite(9))
    );
    let mut server = ServerHandshake::new(
        &RUST_CRYPTO,
        &s,
        SuiteSet::ALL,
        &mut ChaCha20Rng::from_seed([0; 32]),
    );
    syn[1] = 1;
    assert_eq!(
        server.read_syn(&syn[..SYN_LEN - 1]),
        Err(HandshakeError::Malformed)
    );
    let mut server = ServerHandshake::new(
        &RUST_CRYPTO,
        &s,
        SuiteSet::ALL,
        &mut ChaCha20Rng::from_seed([0; 32]),
    );
    assert_eq!(server.read_syn(&[1]), Err(HandshakeError::Malformed));
}

/// Builds the server's SYN-ACK by hand with a chosen ack and signature.
fn forged_syn_ack(
    server: &mut ServerHandshake,
    ack: u32,
    sign_h: Option<[u8; 32]>,
    out: &mut [u8],
) {
    let noise = server.noise.as_mut().unwrap();
    let t = noise.write_tokens(out).unwrap();
    let h = sign_h.unwrap_or(noise.handshake_hash());
    let mut pl = [0u8; SERVER_PAYLOAD_LEN];
    pl[0..4].copy_from_slice(&server.server_isn.to_be_bytes());
    pl[4..8].copy_from_slice(&ack.to_be_bytes());
    pl[8..40].copy_from_slice(&server.identity.public().ed25519);
    pl[40..104].copy_from_slice(&sign(&RUST_CRYPTO, &server.identity, SERVER_AUTH_LABEL, &h));
    noise.write_payload(&pl, &mut out[t..]).unwrap();
}

#[test]
fn bad_server_signature_and_bad_ack() {
    for (ack_delta, h, want) in [
        (1u32, Some([0u8; 32]), HandshakeError::BadSignature),
        (2, None, HandshakeError::BadAck),
        (0, None, HandshakeError::BadAck),
    ] {
        let (mut client, mut server) = start(Suite::ChaChaPoly, 7);
        let mut syn = [0u8; SYN_LEN];
        client.write_syn(&mut syn).unwrap();
        server.read_syn(&syn).unwrap();
        let mut sa = [0u8; SYN_ACK_LEN];
        forged_syn_ack(
            &mut server,
            client.client_isn().wrapping_add(ack_delta),
            h,
            &mut sa,
        );
        assert_eq!(client.read_syn_ack(&sa), Err(want));
    }
}

/// Builds the client's ACK by hand with chosen fields.
fn forged_ack(
    client: &mut ClientHandshake,
    ack: u32,
    mode: u8,
    name: &[u8],
    sign_h: Option<[u8; 32]>,
    tail: &[u8],
    out: &mut [u8],
) -> usize {
    let t = client.noise.write_tokens(out).unwrap();
    let h = sign_h.unwrap_or(client.noise.handshake_hash());
    let mut pl = [0u8; 200];
    pl[0..4].copy_from_slice(&ack.to_be_bytes());
    pl[4] = mode;
    pl[5] = name.len() as u8;
    let mut i = 6 + name.len();
    pl[6..i].copy_from_slice(name);
    pl[i..i + 32].copy_from_slice(&client.identity.public().ed25519);
    i += 32;
    pl[i..i + 64].copy_from_slice(&sign(&RUST_CRYPTO, &client.identity, CLIENT_AUTH_LABEL, &h));
    i += 64;
    pl[i..i + tail.len()].copy_from_slice(tail);
    i += tail.len();
    t + client.noise.write_payload(&pl[..i], &mut out[t..]).unwrap()
}

#[test]
fn bad_client_ack_fields() {
    type Case<'a> = (u32, u8, &'a [u8], Option<[u8; 32]>, HandshakeError);
    let cases: [Case; 5] = [
        (1, 1, b"bob", Some([1; 32]), HandshakeError::BadSignature),
        (2, 1, b"bob", None, HandshakeError::BadAck),
        (1, 3, b"bob", None, HandshakeError::InvalidMode),
        (1, 1, b"b b", None, HandshakeError::InvalidName),
        (1, 1, b"", None, HandshakeError::Malformed),
    ];
    for (delta, mode, name, h, want) in cases {
        let (mut client, mut server) = start(Suite::AesGcm, 8);
        let mut syn = [0u8; SYN_LEN];
        client.write_syn(&mut syn).unwrap();
        server.read_syn(&syn).unwrap();
        let mut sa = [0u8; SYN_ACK_LEN];
        server.write_syn_ack(&mut sa).unwrap();
        let sh = client.read_syn_ack(&sa).unwrap();
        let mut ack = [0u8; 300];
        let n = forged_ack(
            &mut client,
            sh.server_isn.wrapping_add(delta),
            mode,
            name,
            h,
            &[],
            &mut ack,
        );
        assert_eq!(
            server.read_ack(&ack[..n]).map(|_| ()),
            Err(want),
            "{name:?}"
        );
    }
}

#[test]
fn out_of_order_calls() {
    let (mut client, mut server) = start(Suite::AesGcm, 9);
    let mut buf = [0u8; 256];
    assert_eq!(
        client.read_syn_ack(&[0u8; SYN_ACK_LEN]),
        Err(HandshakeError::OutOfOrder)
    );
    assert_eq!(
        client.write_ack(&mut buf).map(|_| ()),
        Err(HandshakeError::OutOfOrder)
    );
    assert_eq!(
        server.write_syn_ack(&mut buf),
        Err(HandshakeError::OutOfOrder)
    );
    assert_eq!(
        server.read_ack(&buf[..ACK_MIN_LEN]).map(|_| ()),
        Err(HandshakeError::OutOfOrder)
    );
    let mut syn = [0u8; SYN_LEN];
    client.write_syn(&mut syn).unwrap();
    assert_eq!(client.write_syn(&mut syn), Err(HandshakeError::OutOfOrder));
    server.read_syn(&syn).unwrap();
    assert_eq!(server.read_syn(&syn), Err(HandshakeError::OutOfOrder));
    let mut sa = [0u8; SYN_ACK_LEN];
    server.write_syn_ack(&mut sa).unwrap();
    client.read_syn_ack(&sa).unwrap();
    // Replayed SYN-ACK on the same handshake.
    assert_eq!(client.read_syn_ack(&sa), Err(HandshakeError::OutOfOrder));
    let (n, _) = client.write_ack(&mut buf).unwrap();
    assert_eq!(
        client.write_ack(&mut buf).map(|_| ()),
        Err(HandshakeError::OutOfOrder)
    );
    server.read_ack(&buf[..n]).unwrap();
    assert_eq!(
        server.read_ack(&buf[..n]).map(|_| ()),
        Err(HandshakeError::OutOfOrder)
    );
}

#[test]
fn syn_ack_replayed_into_another_handshake_fails() {
    let (old, ..) = run(Suite::AesGcm, 10);
    let (mut client, _) = start(Suite::AesGcm, 11);
    client.write_syn(&mut [0u8; SYN_LEN]).unwrap();
    assert_eq!(
        client.read_syn_ack(&old.syn_ack),
        Err(HandshakeError::Decrypt)
    );
}

#[test]
fn low_order_points_rejected() {
    // Client sends an all-zero ephemeral: the server's `ee` is non-contributory.
    let (mut client, mut server) = start(Suite::AesGcm, 12);
    let mut syn = [0u8; SYN_LEN];
    client.write_syn(&mut syn).unwrap();
    syn[2..34].fill(0);
    server.read_syn(&syn).unwrap();
    assert_eq!(
        server.write_syn_ack(&mut [0u8; SYN_ACK_LEN]),
        Err(HandshakeError::NonContributory)
    );
    assert_eq!(
        server.write_syn_ack(&mut [0u8; SYN_ACK_LEN]),
        Err(HandshakeError::Failed)
    );
    // Server answers with an all-zero ephemeral.
    let (good, ..) = run(Suite::AesGcm, 12);
    let (mut client, _) = start(Suite::AesGcm, 12);
    client.write_syn(&mut [0u8; SYN_LEN]).unwrap();
    let mut sa = good.syn_ack;
    sa[..32].fill(0);
    assert_eq!(
        client.read_syn_ack(&sa),
        Err(HandshakeError::NonContributory)
    );
}

#[test]
fn small_buffers_change_nothing() {
    let (mut client, mut server) = start(Suite::ChaChaPoly, 13);
    let mut small = [0u8; 10];
    assert_eq!(
        client.write_syn(&mut small),
        Err(HandshakeError::BufferTooSmall { needed: SYN_LEN })
    );
    let mut syn = [0u8; SYN_LEN];
    client.write_syn(&mut syn).unwrap();
    server.read_syn(&syn).unwrap();
    assert_eq!(
        server.write_syn_ack(&mut small),
        Err(HandshakeError::BufferTooSmall {
            needed: SYN_ACK_LEN
        })
    );
    let mut sa = [0u8; SYN_ACK_LEN];
    server.write_syn_ack(&mut sa).unwrap();
    client.read_syn_ack(&sa).unwrap();
    let needed = client.ack_len();
    assert_eq!(
        client.write_ack(&mut small).map(|_| ()),
        Err(HandshakeError::BufferTooSmall { needed })
    );
    let mut ack = [0u8; ACK_MAX_LEN];
    let (n, _) = client.write_ack(&mut ack).unwrap();
    assert_eq!(n, needed);
    server.read_ack(&ack[..n]).unwrap();
}

#[test]
fn names_and_sizes() {
    let (c, _) = ids();
    let mut rng = ChaCha20Rng::from_seed([0; 32]);
    for bad in ["", "a b", "ünï", "0123456789012345678901234567890123"] {
        assert_eq!(
            ClientHandshake::new(
                &RUST_CRYPTO,
                &c,
                Suite::AesGcm,
                AuthMode::Register,
                bad,
                &mut rng
            )
            .map(|_| ()),
            Err(HandshakeError::InvalidName)
        );
    }
    let long = "a".repeat(MAX_NAME_LEN);
    let ch = ClientHandshake::new(
        &RUST_CRYPTO,
        &c,
        Suite::AesGcm,
        AuthMode::Register,
        &long,
        &mut rng,
    )
    .unwrap();
    assert_eq!(ch.ack_len(), ACK_MAX_LEN - FRAME_LIMIT_LEN);
    let mut ch = ch;
    ch.set_frame_limit(4096).unwrap();
    assert_eq!(ch.ack_len(), ACK_MAX_LEN);
    assert_eq!(
        (SYN_LEN, SYN_ACK_LEN, ACK_MIN_LEN, ACK_MAX_LEN),
        (38, 200, 167, 202)
    );
}

/// Runs a handshake whose client announces `limit`; returns the ACK's length and what
/// the server learnt.
fn run_with_limit(limit: u32) -> (usize, ClientHello) {
    let (mut client, mut server) = start(Suite::ChaChaPoly, 21);
    client.set_frame_limit(limit).unwrap();
    let mut syn = [0u8; SYN_LEN];
    client.write_syn(&mut syn).unwrap();
    server.read_syn(&syn).unwrap();
    let mut sa = [0u8; SYN_ACK_LEN];
    server.write_syn_ack(&mut sa).unwrap();
    client.read_syn_ack(&sa).unwrap();
    let mut ack = [0u8; ACK_MAX_LEN];
    let (n, _) = client.write_ack(&mut ack).unwrap();
    let (hello, _) = server.read_ack(&ack[..n]).unwrap();
    (n, hello)
}

#[test]
fn the_ack_announces_a_frame_limit_only_when_it_is_not_the_default() {
    let (default_len, hello) = run_with_limit(crate::wire::DEFAULT_MAX_FRAME);
    assert_eq!(hello.max_frame, crate::wire::DEFAULT_MAX_FRAME);
    let (small_len, hello) = run_with_limit(4096);
    assert_eq!(hello.max_frame, 4096);
    assert_eq!(small_len, default_len + FRAME_LIMIT_LEN);
    let (_, hello) = run_with_limit(crate::wire::MIN_FRAME_LIMIT);
    assert_eq!(hello.max_frame, crate::wire::MIN_FRAME_LIMIT);
    let (_, hello) = run_with_limit(1 << 20);
    assert_eq!(hello.max_frame, 1 << 20);
}

#[test]
fn a_frame_limit_below_the_minimum_is_refused_on_both_sides() {
    let (mut client, _) = start(Suite::AesGcm, 22);
    let small = crate::wire::MIN_FRAME_LIMIT - 1;
    assert_eq!(
        client.set_frame_limit(small),
        Err(HandshakeError::FrameLimitTooSmall(small))
    );
    // Refused, it changed nothing: the ACK still has no limit field.
    assert_eq!(client.ack_len(), ACK_MIN_LEN + 4);
    // A forged ACK announcing too little, or a limit field of the wrong size.
    let cases: [(&[u8], HandshakeError); 3] = [
        (
            &small.to_be_bytes(),
            HandshakeError::FrameLimitTooSmall(small),
        ),
        (&[0, 0], HandshakeError::Malformed),
        (&[0, 0, 16, 0, 0], HandshakeError::Malformed),
    ];
    for (tail, want) in cases {
        let (mut client, mut server) = start(Suite::AesGcm, 23);
        let mut syn = [0u8; SYN_LEN];
        client.write_syn(&mut syn).unwrap();
        server.read_syn(&syn).unwrap();
        let mut sa = [0u8; SYN_ACK_LEN];
        server.write_syn_ack(&mut sa).unwrap();
        let sh = client.read_syn_ack(&sa).unwrap();
        let mut ack = [0u8; 300];
        let isn = sh.server_isn.wrapping_add(1);
        let n = forged_ack(&mut client, isn, 1, b"bob", None, tail, &mut ack);
        assert_eq!(
            server.read_ack(&ack[..n]).map(|_| ()),
            Err(want),
            "{tail:?}"
        );
    }
}
