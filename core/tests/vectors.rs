//! Fixed-key test vectors of the cove handshake and records (also in docs/PROTOCOL.md).
//!
//! Client identity = 64 bytes of 0x01 (Ed25519 secret ‖ X25519 secret), server identity =
//! 64 bytes of 0x02. The client draws from `ChaCha20Rng::from_seed([7; 32])`, the server from
//! `ChaCha20Rng::from_seed([8; 32])`; each takes its 32-byte ephemeral secret, then its
//! 4-byte big-endian ISN. Suite AES-256-GCM, nickname "alice", mode register, protocol
//! version 2. The version is in the prologue, so it changes the handshake hash and with it
//! the tags and signed payloads of SYN-ACK and ACK; the record keys come from Noise's
//! chaining key, which the prologue does not touch, so the record vectors are those of
//! version 1.

use cove_core::crypto::{Identity, RUST_CRYPTO, Suite, SuiteSet};
use cove_core::handshake::{
    ACK_MAX_LEN, ClientHandshake, PROTOCOL_VERSION, SYN_ACK_LEN, SYN_LEN, ServerHandshake,
};
use cove_core::time::Instant;
use cove_core::wire::AuthMode;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

struct Vectors {
    syn: String,
    syn_ack: String,
    ack: String,
    handshake_hash: String,
    client_isn: u32,
    server_isn: u32,
    record1: String,
    record2: String,
    server_record: String,
}

fn compute(suite: Suite) -> Vectors {
    let client_id = Identity::from_bytes(&[1; 64]);
    let server_id = Identity::from_bytes(&[2; 64]);
    let mut crng = ChaCha20Rng::from_seed([7; 32]);
    let mut srng = ChaCha20Rng::from_seed([8; 32]);
    let mut client = ClientHandshake::new(
        &RUST_CRYPTO,
        &client_id,
        suite,
        AuthMode::Register,
        "alice",
        &mut crng,
    )
    .unwrap();
    let mut server = ServerHandshake::new(&RUST_CRYPTO, &server_id, SuiteSet::ALL, &mut srng);
    let mut syn = [0u8; SYN_LEN];
    let mut syn_ack = [0u8; SYN_ACK_LEN];
    let mut ack = [0u8; ACK_MAX_LEN];
    client.write_syn(&mut syn).unwrap();
    server.read_syn(&syn).unwrap();
    server.write_syn_ack(&mut syn_ack).unwrap();
    let hello = client.read_syn_ack(&syn_ack).unwrap();
    let (n, mut cs) = client.write_ack(&mut ack).unwrap();
    let (_, mut ss) = server.read_ack(&ack[..n]).unwrap();

    // Record 1: client → server, "\x30hello" under the initial key (counter 0).
    let mut r1 = [0u8; 64];
    let n1 = cs.seal_record(Instant(0), b"\x30hello", &mut r1).unwrap();
    // Record 2: after request_key_update(): KeyUpdate{request_update=1} under the initial
    // key (counter 1), then "\x30again" under the next key (counter 0).
    cs.request_key_update();
    let mut r2 = [0u8; 128];
    let n2 = cs.seal_record(Instant(0), b"\x30again", &mut r2).unwrap();
    // The server opens both, then answers "\x31ok": it first sends its own KeyUpdate
    // (request_update=0) because the client asked.
    let mut copy = r1;
    let h: [u8; 5] = copy[..5].try_into().unwrap();
    assert_eq!(
        ss.open_record(Instant(0), &h, &mut copy[5..n1]).unwrap(),
        b"\x30hello"
    );
    let mut copy = r2;
    let h: [u8; 5] = copy[..5].try_into().unwrap();
    assert_eq!(
        ss.open_record(Instant(0), &h, &mut copy[5..23]).unwrap(),
        &[0x22, 1]
    );
    let h: [u8; 5] = copy[23..28].try_into().unwrap();
    assert_eq!(
        ss.open_record(Instant(0), &h, &mut copy[28..n2]).unwrap(),
        b"\x30again"
    );
    let mut r3 = [0u8; 128];
    let n3 = ss.seal_record(Instant(0), b"\x31ok", &mut r3).unwrap();
    let mut copy = r3;
    let h: [u8; 5] = copy[..5].try_into().unwrap();
    assert_eq!(
        cs.open_record(Instant(0), &h, &mut copy[5..23]).unwrap(),
        &[0x22, 0]
    );
    let h: [u8; 5] = copy[23..28].try_into().unwrap();
    assert_eq!(
        cs.open_record(Instant(0), &h, &mut copy[28..n3]).unwrap(),
        b"\x31ok"
    );

    Vectors {
        syn: hex::encode(syn),
        syn_ack: hex::encode(syn_ack),
        ack: hex::encode(&ack[..n]),
        handshake_hash: hex::encode(cs.handshake_hash()),
        client_isn: client.client_isn(),
        server_isn: hello.server_isn,
        record1: hex::encode(&r1[..n1]),
        record2: hex::encode(&r2[..n2]),
        server_record: hex::encode(&r3[..n3]),
    }
}

const SYN: &str = "020118b7279e7599928f72e167111e89af25fbdff045bd6faa83425ab2d1468c8b6745c143db";
const SYN_ACK: &str = "e7bdc1ef386e31c64eb0617eb9ca3f916be5159d41933e2ed77783e9ad678a4ed0fe990f5ff2b054e6f95583d199d0214267b389dd357ef82712a1d6965277e9ace3cdc80cb8ab33f2745a28e3ad87b3ea650be792f9dfcc6f5841e17b97f8b03680d515f97e11c851877571bc0297c3c8376a960cef1a8f890298f90ee65d76138cce074a2b73a3d07d733bd4248abb7b090075cc617727e33312c4d37b1a34ec004bddc379330db9afbdae7271608ce6e28253c02d5cf9287a5e37424708ee68cc409d01b88044";
const ACK: &str = "ebe65b5c55afa7ac5ffa29e01783f17e29c9ce9154bfa90a5222260add77b1e1f37f545424d3bab01eca0c109d6208e7e6bd8c4874e0e909be0af2c0112a49fe8ecb36af5088c90074ced619f57980a8d6a5586f326f3d5b0fffc06c843c34484414875136cb874d5db9ca1d775fce1ff5f0e70f6cac2c10b0e101f2bc0147adc718bbb02fc233b8579997be91f304d258a0b70bd9ee599b22da2b3e3aa0d73b0d688e8a6a583e797ae191";
const HANDSHAKE_HASH: &str = "b5c20ad7db776a7168932f63423760ff3c004eebe894e12cdfd2c3d308ffcfc6";
const RECORD1: &str = "00000016175a653f657a044eb98b75611390aef56f76ae8cb8be82";
const RECORD2: &str = "000000121714e323b4118413b1f890c966a113057b1aff00000016174a3b2e10072c8d92574518e47ee166047368d3cd7f51";
const SERVER_RECORD: &str = "0000001217785389058ac93efd8050b3fd81c974730703000000131731889973f16651e5cf1ba109495db78a281f21";

#[test]
fn fixed_key_handshake_and_records_aesgcm() {
    let v = compute(Suite::AesGcm);
    assert_eq!(PROTOCOL_VERSION, 2, "the vectors are those of version 2");
    assert_eq!(v.client_isn, 0x45c1_43db);
    assert_eq!(v.server_isn, 0x8403_4870);
    assert_eq!(v.syn, SYN);
    assert_eq!(v.syn_ack, SYN_ACK);
    assert_eq!(v.ack, ACK);
    assert_eq!(v.handshake_hash, HANDSHAKE_HASH);
    assert_eq!(v.record1, RECORD1);
    assert_eq!(v.record2, RECORD2);
    assert_eq!(v.server_record, SERVER_RECORD);
}

#[test]
fn vector_inputs() {
    let c = Identity::from_bytes(&[1; 64]).public();
    let s = Identity::from_bytes(&[2; 64]).public();
    assert_eq!(
        hex::encode(c.ed25519),
        "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
    );
    assert_eq!(
        hex::encode(c.x25519),
        "a4e09292b651c278b9772c569f5fa9bb13d906b46ab68c9df9dc2b4409f8a209"
    );
    assert_eq!(
        hex::encode(s.ed25519),
        "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394"
    );
    assert_eq!(
        hex::encode(s.x25519),
        "ce8d3ad1ccb633ec7b70c17814a5c76ecd029685050d344745ba05870e587d59"
    );
    assert_eq!(
        hex::encode(c.fingerprint()),
        "34750f98bd59fcfc946da45aaabe933b"
    );
    let mut e = [0u8; 32];
    rand_core::Rng::fill_bytes(&mut ChaCha20Rng::from_seed([7; 32]), &mut e);
    assert_eq!(
        hex::encode(e),
        "f400927857aaf64114f561baacb379708c79a1dc1476ab573216a4020764bde5"
    );
    rand_core::Rng::fill_bytes(&mut ChaCha20Rng::from_seed([8; 32]), &mut e);
    assert_eq!(
        hex::encode(e),
        "c2206fc0bd318594f8cc73bc35106fbaf87b28c38a8dbfc8d9848243038f9c1c"
    );
}

/// The spec and the code cannot drift apart: every computed vector is printed in
/// docs/PROTOCOL.md (hex wrapped across lines there, so whitespace is ignored).
#[test]
fn the_protocol_document_prints_these_vectors() {
    let doc: String = include_str!("../../docs/PROTOCOL.md")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let v = compute(Suite::AesGcm);
    for (what, hex) in [
        ("SYN", &v.syn),
        ("SYN-ACK", &v.syn_ack),
        ("ACK", &v.ack),
        ("final h", &v.handshake_hash),
        ("record 1", &v.record1),
        ("record 2", &v.record2),
        ("server record", &v.server_record),
    ] {
        assert!(
            doc.contains(hex.as_str()),
            "docs/PROTOCOL.md lacks the {what} vector {hex}"
        );
    }
}
