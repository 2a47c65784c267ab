//! Seeds of the two handshake targets, and the honest handshake the others start from.

use cove_core::crypto::{RUST_CRYPTO, Suite, SuiteSet};
use cove_core::handshake::{ClientHandshake, SYN_ACK_LEN, SYN_LEN, ServerHandshake};
use cove_core::session::Session;
use cove_core::wire::{AuthMode, ClientMsg, FrameType};

use super::{Seed, enc_client, frame};
use crate::handshake::{self as hs, CLIENT_NAME};
use crate::util::{T0, client_identity, rng, server_identity};

/// An honest handshake's three frames and a first record.
pub(super) fn honest_frames() -> Vec<Vec<u8>> {
    let mut client = ClientHandshake::new(
        &RUST_CRYPTO,
        client_identity(),
        Suite::AesGcm,
        AuthMode::Register,
        CLIENT_NAME,
        &mut rng(30),
    )
    .expect("client");
    let mut server =
        ServerHandshake::new(&RUST_CRYPTO, server_identity(), SuiteSet::ALL, &mut rng(31));
    let mut syn = [0u8; SYN_LEN];
    client.write_syn(&mut syn).expect("SYN");
    server.read_syn(&syn).expect("SYN");
    let mut syn_ack = [0u8; SYN_ACK_LEN];
    server.write_syn_ack(&mut syn_ack).expect("SYN-ACK");
    client.read_syn_ack(&syn_ack).expect("SYN-ACK");
    let mut ack = [0u8; 256];
    let (n, mut session) = client.write_ack(&mut ack).expect("ACK");
    let plain = enc_client(&ClientMsg::ListRooms { req: 1 });
    let mut rec = vec![0u8; plain.len() + Session::seal_max_overhead()];
    let r = session.seal_record(T0, &plain, &mut rec).expect("record");
    rec.truncate(r);
    vec![
        frame(FrameType::Syn, &syn),
        frame(FrameType::SynAck, &syn_ack),
        frame(FrameType::Ack, &ack[..n]),
        rec,
    ]
}

fn with_ctl(ctl: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![ctl];
    v.extend_from_slice(body);
    v
}

pub(super) fn responder_seeds() -> Vec<Seed> {
    let mut seeds = Vec::new();
    for (suite, bit, name) in [(Suite::AesGcm, 0, "aes"), (Suite::ChaChaPoly, 4, "chacha")] {
        let mut client = ClientHandshake::new(
            &RUST_CRYPTO,
            client_identity(),
            suite,
            AuthMode::Register,
            CLIENT_NAME,
            &mut rng(2),
        )
        .expect("client");
        let mut syn = [0u8; SYN_LEN];
        client.write_syn(&mut syn).expect("SYN");
        seeds.push((
            format!("raw_syn_{name}"),
            with_ctl(hs::RESPONDER_RAW_SYN | bit, &syn),
        ));
        seeds.push((
            format!("raw_ack_{name}"),
            with_ctl(hs::RESPONDER_RAW_ACK | bit, &hs::honest_ack(suite)),
        ));
        let mut spec = vec![0u8, AuthMode::Login as u8, 0];
        spec.extend_from_slice(b"alice");
        seeds.push((
            format!("signed_ack_{name}"),
            with_ctl(hs::RESPONDER_SIGNED_ACK | bit, &spec),
        ));
        seeds.push((
            format!("crafted_ack_{name}"),
            with_ctl(
                hs::RESPONDER_CRAFTED_ACK | bit,
                &hs::valid_crafted_ack(suite),
            ),
        ));
    }
    // The server allows only ChaCha; the client offers AES.
    let mut syn_only_chacha = vec![hs::RESPONDER_RAW_SYN | (2 << 3)];
    syn_only_chacha.extend_from_slice(&[1, Suite::AesGcm.to_u8()]);
    syn_only_chacha.extend_from_slice(&[9; SYN_LEN - 2]);
    seeds.push(("raw_syn_suite_refused".into(), syn_only_chacha));
    seeds.push((
        "signed_ack_bad_name".into(),
        with_ctl(hs::RESPONDER_SIGNED_ACK, b"\x00\x01\x00al ice"),
    ));
    seeds.push((
        "signed_ack_bad_sig".into(),
        with_ctl(hs::RESPONDER_SIGNED_ACK, b"\x00\x01\x11alice"),
    ));
    seeds
}

pub(super) fn initiator_seeds() -> Vec<Seed> {
    let mut seeds = Vec::new();
    for (suite, bit, name) in [(Suite::AesGcm, 0, "aes"), (Suite::ChaChaPoly, 4, "chacha")] {
        seeds.push((
            format!("raw_syn_ack_{name}"),
            with_ctl(hs::INITIATOR_RAW_SYN_ACK | bit, &hs::honest_syn_ack(suite)),
        ));
        seeds.push((
            format!("signed_syn_ack_{name}"),
            with_ctl(hs::INITIATOR_SIGNED_SYN_ACK | bit, &[0, 0, 0, 0, 0, 42]),
        ));
        seeds.push((
            format!("crafted_syn_ack_{name}"),
            with_ctl(
                hs::INITIATOR_CRAFTED_SYN_ACK | bit,
                &hs::valid_crafted_syn_ack(suite),
            ),
        ));
    }
    seeds.push((
        "signed_syn_ack_bad_ack".into(),
        with_ctl(hs::INITIATOR_SIGNED_SYN_ACK, &[1, 0, 0, 0, 0, 42]),
    ));
    seeds.push(("out_of_order".into(), vec![3, 1, 2, 3]));
    seeds
}
