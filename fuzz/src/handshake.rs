//! Targets for the two handshake roles.
//!
//! Input: one control byte, then a body. Bits 0–1 of the control byte pick a mode, bit 2
//! the suite (AES-GCM or ChaCha20-Poly1305), bits 3–4 (responder only) the suites the
//! server allows. Every mode checks the outcome against an independent oracle: raw bytes
//! are accepted exactly when they equal what the honest peer would send, and a payload
//! encrypted with the real Noise keys is accepted exactly when a reference parser written
//! here from the spec accepts it.

use cove_core::crypto::{CryptoProvider, RUST_CRYPTO, SuiteSet};
use cove_core::handshake::{
    ACK_MAX_LEN, ACK_MIN_LEN, CLIENT_AUTH_LABEL, ClientHandshake, HandshakeError, PROTOCOL_VERSION,
    SERVER_AUTH_LABEL, SYN_ACK_LEN, SYN_LEN, ServerHandshake, prologue,
};
use cove_core::noise::{HandshakeState, Role};
use cove_core::session::Session;
use cove_core::wire::{AuthMode, FRAME_RECORD, HEADER_LEN, valid_name};

use crate::util::{
    CLIENT_SECRET, SERVER_SECRET, T0, client_identity, ed25519_secret, rng, server_identity, suite,
    x25519_secret,
};

/// The nickname the honest client uses.
pub const CLIENT_NAME: &str = "alice";

/// Responder mode: the body is the SYN payload.
pub const RESPONDER_RAW_SYN: u8 = 0;
/// Responder mode: a real client's SYN, then the body as the ACK payload.
pub const RESPONDER_RAW_ACK: u8 = 1;
/// Responder mode: a valid Noise message 3 whose encrypted payload is the body.
pub const RESPONDER_CRAFTED_ACK: u8 = 2;
/// Responder mode: `[ack delta][auth mode][flags][name…]` built into a signed ACK payload
/// (flags bit 0 corrupts the signature, bit 1 signs with the wrong key).
pub const RESPONDER_SIGNED_ACK: u8 = 3;

/// Initiator mode: the body is the SYN-ACK payload.
pub const INITIATOR_RAW_SYN_ACK: u8 = 0;
/// Initiator mode: a valid Noise message 2 whose encrypted payload is the body.
pub const INITIATOR_CRAFTED_SYN_ACK: u8 = 1;
/// Initiator mode: `[ack delta][flags][server isn: 4]` built into a signed SYN-ACK payload.
pub const INITIATOR_SIGNED_SYN_ACK: u8 = 2;

/// Bytes of the client's ACK payload before the name (ack, mode, name length).
const ACK_HEAD: usize = 6;
/// Bytes of the client's ACK payload besides the name.
const ACK_FIXED: usize = ACK_HEAD + 32 + 64;
/// Bytes of the server's SYN-ACK payload.
const SYN_ACK_PAYLOAD: usize = 4 + 4 + 32 + 64;
/// Tokens of Noise message 2 (`e`, encrypted `s`).
const SYN_ACK_TOKENS: usize = 32 + 32 + 16;
/// Tokens of Noise message 3 (encrypted `s`).
const ACK_TOKENS: usize = 32 + 16;

fn ephemeral(tag: u8) -> [u8; 32] {
    let mut e = [tag; 32];
    e[0] ^= 0x40;
    e
}

fn allowed_suites(bits: u8) -> SuiteSet {
    match bits & 3 {
        1 => SuiteSet::only(cove_core::crypto::Suite::AesGcm),
        2 => SuiteSet::only(cove_core::crypto::Suite::ChaChaPoly),
        _ => SuiteSet::ALL,
    }
}

fn signed(label: &[u8], h: &[u8; 32]) -> Vec<u8> {
    let mut m = label.to_vec();
    m.extend_from_slice(h);
    m
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// A record sealed by `a` opens with `b` to the same plaintext.
pub fn check_sessions_pair(a: &mut Session, b: &mut Session) {
    let plain = [0x20, 1, 2, 3, 4, 5, 6, 7, 8];
    let mut rec = vec![0u8; plain.len() + Session::seal_max_overhead()];
    let n = a.seal_record(T0, &plain, &mut rec).expect("seal");
    let mut header = [0u8; HEADER_LEN];
    header.copy_from_slice(&rec[..HEADER_LEN]);
    assert_eq!(header[4], FRAME_RECORD);
    let opened = b
        .open_record(T0, &header, &mut rec[HEADER_LEN..n])
        .expect("the two ends of a handshake share keys");
    assert_eq!(opened, plain);
}

/// The server handshake fed arbitrary SYNs and ACKs.
pub fn handshake_responder(data: &[u8]) {
    let Some((&ctl, body)) = data.split_first() else {
        return;
    };
    let suite = suite(ctl & 4 != 0);
    let allowed = allowed_suites(ctl >> 3);
    let mut server = ServerHandshake::new(&RUST_CRYPTO, server_identity(), allowed, &mut rng(1));
    match ctl & 3 {
        RESPONDER_RAW_SYN => raw_syn(&mut server, allowed, body),
        RESPONDER_RAW_ACK => {
            if !allowed.contains(suite) {
                return;
            }
            raw_ack(&mut server, suite, body)
        }
        mode => {
            if !allowed.contains(suite) {
                return;
            }
            crafted_ack(&mut server, suite, mode == RESPONDER_SIGNED_ACK, body)
        }
    }
}

fn raw_syn(server: &mut ServerHandshake, allowed: SuiteSet, body: &[u8]) {
    let result = server.read_syn(body);
    // The reference: version, then suite, then length, then the key (never low-order
    // in a way that matters here: X25519 accepts any 32 bytes as a point).
    let expected = match body {
        [] | [_] => Err(HandshakeError::Malformed),
        [v, ..] if *v != PROTOCOL_VERSION => Err(HandshakeError::UnsupportedVersion(*v)),
        [_, s, ..]
            if cove_core::crypto::Suite::from_u8(*s).is_none_or(|s| !allowed.contains(s)) =>
        {
            Err(HandshakeError::UnsupportedSuite(*s))
        }
        _ if body.len() != SYN_LEN => Err(HandshakeError::Malformed),
        _ => Ok(()),
    };
    assert_eq!(result, expected);
    if result.is_err() {
        assert_eq!(server.read_syn(body), Err(HandshakeError::Failed));
        let mut out = [0u8; SYN_ACK_LEN];
        assert_eq!(server.write_syn_ack(&mut out), Err(HandshakeError::Failed));
        assert!(server.read_ack(&[0; ACK_MIN_LEN]).is_err());
        return;
    }
    assert_eq!(
        server.suite().map(|s| s.to_u8()),
        Some(body[1]),
        "suite not recorded"
    );
    assert_eq!(server.read_syn(body), Err(HandshakeError::OutOfOrder));
    let mut short = [0u8; SYN_ACK_LEN - 1];
    assert_eq!(
        server.write_syn_ack(&mut short),
        Err(HandshakeError::BufferTooSmall {
            needed: SYN_ACK_LEN
        })
    );
    let mut out = [0u8; SYN_ACK_LEN];
    match server.write_syn_ack(&mut out) {
        Ok(n) => assert_eq!(n, SYN_ACK_LEN),
        // A low-order client key makes `ee` all zeros.
        Err(e) => {
            assert_eq!(e, HandshakeError::NonContributory);
            return;
        }
    }
    // Anything but a real ACK now fails, and then everything fails.
    assert_eq!(
        server.read_ack(&out[..ACK_MIN_LEN]).err(),
        Some(HandshakeError::Decrypt)
    );
    assert_eq!(
        server.read_ack(&out[..ACK_MIN_LEN]).err(),
        Some(HandshakeError::Failed)
    );
}

/// An honest client, its SYN read by `server`, and the SYN-ACK it answered with.
fn honest_start(
    server: &mut ServerHandshake,
    suite: cove_core::crypto::Suite,
) -> (ClientHandshake, [u8; SYN_ACK_LEN]) {
    let mut client = ClientHandshake::new(
        &RUST_CRYPTO,
        client_identity(),
        suite,
        AuthMode::Register,
        CLIENT_NAME,
        &mut rng(2),
    )
    .expect("valid name");
    let mut syn = [0u8; SYN_LEN];
    assert_eq!(client.write_syn(&mut syn), Ok(SYN_LEN));
    server.read_syn(&syn).expect("honest SYN");
    let mut syn_ack = [0u8; SYN_ACK_LEN];
    assert_eq!(server.write_syn_ack(&mut syn_ack), Ok(SYN_ACK_LEN));
    (client, syn_ack)
}

/// The ACK payload the honest client sends in this exact handshake.
pub fn honest_ack(suite: cove_core::crypto::Suite) -> Vec<u8> {
    let mut server =
        ServerHandshake::new(&RUST_CRYPTO, server_identity(), SuiteSet::ALL, &mut rng(1));
    let (mut client, syn_ack) = honest_start(&mut server, suite);
    client.read_syn_ack(&syn_ack).expect("honest SYN-ACK");
    let mut ack = [0u8; ACK_MAX_LEN];
    let (n, _) = client.write_ack(&mut ack).expect("ACK");
    ack[..n].to_vec()
}

fn raw_ack(server: &mut ServerHandshake, suite: cove_core::crypto::Suite, body: &[u8]) {
    let (mut client, syn_ack) = honest_start(server, suite);
    let hello = client.read_syn_ack(&syn_ack).expect("honest SYN-ACK");
    assert_eq!(hello.ed25519, server_identity().public().ed25519);
    let mut ack = [0u8; ACK_MAX_LEN];
    let (n, mut client_session) = client.write_ack(&mut ack).expect("ACK");
    let honest = &ack[..n];
    match server.read_ack(body) {
        Ok((hello, mut server_session)) => {
            assert_eq!(body, honest, "the server accepted a forged ACK");
            assert_eq!(hello.name.as_str(), CLIENT_NAME);
            assert_eq!(hello.mode, AuthMode::Register);
            assert_eq!(hello.ed25519, client_identity().public().ed25519);
            assert_eq!(hello.client_isn, client.client_isn());
            check_sessions_pair(&mut client_session, &mut server_session);
            check_sessions_pair(&mut server_session, &mut client_session);
        }
        Err(e) => {
            assert_ne!(body, honest, "the honest ACK was refused: {e:?}");
            assert_eq!(server.read_ack(honest).err(), Some(HandshakeError::Failed));
        }
    }
}

/// A Noise initiator standing in for a client that can put any plaintext in its ACK.
struct Crafter {
    noise: HandshakeState,
    server_isn: u32,
}

impl Crafter {
    /// Runs SYN and SYN-ACK with `server`.
    fn start(server: &mut ServerHandshake, suite: cove_core::crypto::Suite) -> Crafter {
        let mut noise = HandshakeState::new(
            &RUST_CRYPTO,
            suite,
            Role::Initiator,
            &x25519_secret(&CLIENT_SECRET),
            &ephemeral(3),
            &prologue(PROTOCOL_VERSION, suite),
        );
        let mut syn = vec![PROTOCOL_VERSION, suite.to_u8()];
        let mut msg = [0u8; SYN_LEN];
        let n = noise
            .write_message(&0x0102_0304u32.to_be_bytes(), &mut msg)
            .expect("msg 1");
        syn.extend_from_slice(&msg[..n]);
        server.read_syn(&syn).expect("crafted SYN");
        let mut syn_ack = [0u8; SYN_ACK_LEN];
        assert_eq!(server.write_syn_ack(&mut syn_ack), Ok(SYN_ACK_LEN));
        let mut pl = [0u8; SYN_ACK_LEN];
        let n = noise.read_message(&syn_ack, &mut pl).expect("msg 2");
        assert_eq!(n, SYN_ACK_PAYLOAD);
        assert_eq!(be32(&pl[4..8]), 0x0102_0305, "server acked the wrong ISN");
        assert_eq!(&pl[8..40], &server_identity().public().ed25519);
        Crafter {
            noise,
            server_isn: be32(&pl[0..4]),
        }
    }

    /// Writes the tokens of message 3 and returns them with the hash to sign.
    fn tokens(&mut self) -> (Vec<u8>, [u8; 32]) {
        let mut t = [0u8; ACK_TOKENS];
        let n = self.noise.write_tokens(&mut t).expect("msg 3 tokens");
        (t[..n].to_vec(), self.noise.handshake_hash())
    }

    /// Finishes message 3 with `payload`.
    fn finish(&mut self, mut tokens: Vec<u8>, payload: &[u8]) -> Option<Vec<u8>> {
        let mut out = vec![0u8; payload.len() + 16];
        let n = self.noise.write_payload(payload, &mut out).ok()?;
        tokens.extend_from_slice(&out[..n]);
        Some(tokens)
    }
}

/// The signed ACK payload `[ack][mode][len][name][ed25519][sig]` described by `spec`.
fn build_ack_payload(spec: &[u8], server_isn: u32, h: &[u8; 32]) -> Vec<u8> {
    let delta = spec.first().copied().unwrap_or(0);
    let mode = spec.get(1).copied().unwrap_or(1);
    let flags = spec.get(2).copied().unwrap_or(0);
    let name = spec.get(3..).unwrap_or(&[]);
    let name = &name[..name.len().min(255)];
    let mut pl = server_isn
        .wrapping_add(1)
        .wrapping_add(u32::from(delta))
        .to_be_bytes()
        .to_vec();
    pl.push(mode);
    pl.push(name.len() as u8);
    pl.extend_from_slice(name);
    pl.extend_from_slice(&client_identity().public().ed25519);
    let signer = if flags & 2 != 0 {
        ed25519_secret(&SERVER_SECRET)
    } else {
        ed25519_secret(&CLIENT_SECRET)
    };
    let mut sig = RUST_CRYPTO.ed25519_sign(&signer, &signed(CLIENT_AUTH_LABEL, h));
    if flags & 1 != 0 {
        sig[usize::from(flags >> 2) % 64] ^= 1 << (flags % 8);
    }
    pl.extend_from_slice(&sig);
    pl
}

/// What a correct server makes of an ACK payload: `Some((name, mode, key))` when it must
/// accept it.
fn reference_ack(
    msg_len: usize,
    pl: &[u8],
    server_isn: u32,
    h: &[u8; 32],
) -> Option<(String, AuthMode, [u8; 32])> {
    if !(ACK_MIN_LEN..=ACK_MAX_LEN).contains(&msg_len) || pl.len() < ACK_FIXED {
        return None;
    }
    let n = usize::from(pl[5]);
    if pl.len() != ACK_FIXED + n || be32(pl) != server_isn.wrapping_add(1) {
        return None;
    }
    let mode = AuthMode::from_u8(pl[4])?;
    let name = core::str::from_utf8(&pl[ACK_HEAD..ACK_HEAD + n]).ok()?;
    if !valid_name(name) {
        return None;
    }
    let key: [u8; 32] = pl[ACK_HEAD + n..ACK_HEAD + n + 32].try_into().ok()?;
    let sig: [u8; 64] = pl[ACK_HEAD + n + 32..].try_into().ok()?;
    RUST_CRYPTO
        .ed25519_verify(&key, &signed(CLIENT_AUTH_LABEL, h), &sig)
        .ok()?;
    Some((name.to_owned(), mode, key))
}

fn crafted_ack(
    server: &mut ServerHandshake,
    suite: cove_core::crypto::Suite,
    signed_spec: bool,
    body: &[u8],
) {
    let mut crafter = Crafter::start(server, suite);
    let (tokens, h) = crafter.tokens();
    let payload = if signed_spec {
        build_ack_payload(body, crafter.server_isn, &h)
    } else {
        body.to_vec()
    };
    let Some(ack) = crafter.finish(tokens, &payload) else {
        return;
    };
    let expected = reference_ack(ack.len(), &payload, crafter.server_isn, &h);
    match server.read_ack(&ack) {
        Ok((hello, _session)) => {
            let (name, mode, key) = expected.expect("the server accepted a bad ACK payload");
            assert_eq!(hello.name.as_str(), name);
            assert_eq!(hello.mode, mode);
            assert_eq!(hello.ed25519, key);
            assert_eq!(hello.client_isn, 0x0102_0304);
            assert_eq!(
                hello.x25519,
                RUST_CRYPTO.x25519_public(&x25519_secret(&CLIENT_SECRET))
            );
        }
        Err(e) => assert!(expected.is_none(), "a good ACK payload was refused: {e:?}"),
    }
}

/// The client handshake fed arbitrary SYN-ACKs.
pub fn handshake_initiator(data: &[u8]) {
    let Some((&ctl, body)) = data.split_first() else {
        return;
    };
    let suite = suite(ctl & 4 != 0);
    let mut client = ClientHandshake::new(
        &RUST_CRYPTO,
        client_identity(),
        suite,
        AuthMode::Login,
        CLIENT_NAME,
        &mut rng(3),
    )
    .expect("valid name");
    let mut syn = [0u8; SYN_LEN];
    assert_eq!(client.write_syn(&mut syn), Ok(SYN_LEN));
    assert_eq!(syn[..2], [PROTOCOL_VERSION, suite.to_u8()]);
    let mut ack = [0u8; ACK_MAX_LEN];
    assert_eq!(
        client.write_ack(&mut ack).err(),
        Some(HandshakeError::OutOfOrder)
    );
    match ctl & 3 {
        INITIATOR_RAW_SYN_ACK => raw_syn_ack(&mut client, &syn, body),
        INITIATOR_CRAFTED_SYN_ACK => crafted_syn_ack(&mut client, &syn, false, body),
        INITIATOR_SIGNED_SYN_ACK => crafted_syn_ack(&mut client, &syn, true, body),
        _ => {
            // Out of order: a second SYN, or an ACK before the SYN-ACK.
            assert_eq!(client.write_syn(&mut syn), Err(HandshakeError::OutOfOrder));
            assert_eq!(
                client.write_ack(&mut ack).err(),
                Some(HandshakeError::OutOfOrder)
            );
            let _ = client.read_syn_ack(body);
        }
    }
}

/// The SYN-ACK payload an honest server sends in this exact handshake.
pub fn honest_syn_ack(suite: cove_core::crypto::Suite) -> Vec<u8> {
    let mut client = ClientHandshake::new(
        &RUST_CRYPTO,
        client_identity(),
        suite,
        AuthMode::Login,
        CLIENT_NAME,
        &mut rng(3),
    )
    .expect("valid name");
    let mut syn = [0u8; SYN_LEN];
    client.write_syn(&mut syn).expect("SYN");
    let mut server =
        ServerHandshake::new(&RUST_CRYPTO, server_identity(), SuiteSet::ALL, &mut rng(4));
    server.read_syn(&syn).expect("SYN");
    let mut out = [0u8; SYN_ACK_LEN];
    server.write_syn_ack(&mut out).expect("SYN-ACK");
    out.to_vec()
}

fn raw_syn_ack(client: &mut ClientHandshake, syn: &[u8], body: &[u8]) {
    let mut server =
        ServerHandshake::new(&RUST_CRYPTO, server_identity(), SuiteSet::ALL, &mut rng(4));
    server.read_syn(syn).expect("honest SYN");
    let mut honest = [0u8; SYN_ACK_LEN];
    server.write_syn_ack(&mut honest).expect("SYN-ACK");
    match client.read_syn_ack(body) {
        Ok(hello) => {
            assert_eq!(body, honest, "the client accepted a forged SYN-ACK");
            assert_eq!(hello.ed25519, server_identity().public().ed25519);
            assert_eq!(hello.server_isn, server.server_isn());
            let mut ack = [0u8; ACK_MAX_LEN];
            let (n, mut cs) = client
                .write_ack(&mut ack)
                .expect("ACK after a good SYN-ACK");
            let (_, mut ss) = server.read_ack(&ack[..n]).expect("server takes the ACK");
            check_sessions_pair(&mut cs, &mut ss);
        }
        Err(e) => {
            assert_ne!(body, &honest[..], "the honest SYN-ACK was refused: {e:?}");
            let mut ack = [0u8; ACK_MAX_LEN];
            assert_eq!(
                client.write_ack(&mut ack).err(),
                Some(HandshakeError::Failed)
            );
        }
    }
}

/// The signed SYN-ACK payload `[isn][ack][ed25519][sig]` described by `spec`.
fn build_syn_ack_payload(spec: &[u8], client_isn: u32, h: &[u8; 32]) -> Vec<u8> {
    let delta = spec.first().copied().unwrap_or(0);
    let flags = spec.get(1).copied().unwrap_or(0);
    let isn = spec.get(2..6).map_or(7, be32);
    let mut pl = isn.to_be_bytes().to_vec();
    pl.extend_from_slice(
        &client_isn
            .wrapping_add(1)
            .wrapping_add(u32::from(delta))
            .to_be_bytes(),
    );
    pl.extend_from_slice(&server_identity().public().ed25519);
    let signer = if flags & 2 != 0 {
        ed25519_secret(&CLIENT_SECRET)
    } else {
        ed25519_secret(&SERVER_SECRET)
    };
    let mut sig = RUST_CRYPTO.ed25519_sign(&signer, &signed(SERVER_AUTH_LABEL, h));
    if flags & 1 != 0 {
        sig[usize::from(flags >> 2) % 64] ^= 1 << (flags % 8);
    }
    pl.extend_from_slice(&sig);
    pl
}

fn crafted_syn_ack(client: &mut ClientHandshake, syn: &[u8], signed_spec: bool, body: &[u8]) {
    let suite = cove_core::crypto::Suite::from_u8(syn[1]).expect("own suite");
    let mut noise = HandshakeState::new(
        &RUST_CRYPTO,
        suite,
        Role::Responder,
        &x25519_secret(&SERVER_SECRET),
        &ephemeral(5),
        &prologue(PROTOCOL_VERSION, suite),
    );
    let mut isn = [0u8; SYN_LEN];
    let n = noise.read_message(&syn[2..], &mut isn).expect("msg 1");
    assert_eq!(n, 4);
    let client_isn = be32(&isn);
    assert_eq!(client_isn, client.client_isn());
    let mut msg = vec![0u8; SYN_ACK_TOKENS];
    let t = noise.write_tokens(&mut msg).expect("msg 2 tokens");
    msg.truncate(t);
    let h = noise.handshake_hash();
    let payload = if signed_spec {
        build_syn_ack_payload(body, client_isn, &h)
    } else {
        body.to_vec()
    };
    let mut out = vec![0u8; payload.len() + 16];
    let Ok(p) = noise.write_payload(&payload, &mut out) else {
        return;
    };
    msg.extend_from_slice(&out[..p]);
    // The reference: exact length, the ack of our ISN, then the signature over `h`.
    let expected = msg.len() == SYN_ACK_LEN
        && payload.len() == SYN_ACK_PAYLOAD
        && be32(&payload[4..8]) == client_isn.wrapping_add(1)
        && RUST_CRYPTO
            .ed25519_verify(
                payload[8..40].try_into().expect("32"),
                &signed(SERVER_AUTH_LABEL, &h),
                payload[40..104].try_into().expect("64"),
            )
            .is_ok();
    match client.read_syn_ack(&msg) {
        Ok(hello) => {
            assert!(expected, "the client accepted a bad SYN-ACK payload");
            assert_eq!(hello.server_isn, be32(&payload[0..4]));
            assert_eq!(&hello.ed25519[..], &payload[8..40]);
            let mut ack = [0u8; ACK_MAX_LEN];
            let (n, _) = client.write_ack(&mut ack).expect("ACK");
            let mut pl = [0u8; ACK_MAX_LEN];
            let m = noise.read_message(&ack[..n], &mut pl).expect("msg 3");
            assert_eq!(be32(&pl[..m]), hello.server_isn.wrapping_add(1));
            assert_eq!(pl[4], AuthMode::Login as u8);
        }
        Err(e) => assert!(!expected, "a good SYN-ACK payload was refused: {e:?}"),
    }
}

/// A correctly signed ACK payload for the responder's crafted mode (the seed that reaches
/// the end of `read_ack`).
pub fn valid_crafted_ack(suite: cove_core::crypto::Suite) -> Vec<u8> {
    let mut server =
        ServerHandshake::new(&RUST_CRYPTO, server_identity(), SuiteSet::ALL, &mut rng(1));
    let mut crafter = Crafter::start(&mut server, suite);
    let (_, h) = crafter.tokens();
    let mut spec = vec![0, AuthMode::Register as u8, 0];
    spec.extend_from_slice(CLIENT_NAME.as_bytes());
    build_ack_payload(&spec, crafter.server_isn, &h)
}

/// A correctly signed SYN-ACK payload for the initiator's crafted mode.
pub fn valid_crafted_syn_ack(suite: cove_core::crypto::Suite) -> Vec<u8> {
    let mut client = ClientHandshake::new(
        &RUST_CRYPTO,
        client_identity(),
        suite,
        AuthMode::Login,
        CLIENT_NAME,
        &mut rng(3),
    )
    .expect("valid name");
    let mut syn = [0u8; SYN_LEN];
    client.write_syn(&mut syn).expect("SYN");
    let mut noise = HandshakeState::new(
        &RUST_CRYPTO,
        suite,
        Role::Responder,
        &x25519_secret(&SERVER_SECRET),
        &ephemeral(5),
        &prologue(PROTOCOL_VERSION, suite),
    );
    let mut isn = [0u8; SYN_LEN];
    noise.read_message(&syn[2..], &mut isn).expect("msg 1");
    let mut msg = [0u8; SYN_ACK_TOKENS];
    noise.write_tokens(&mut msg).expect("msg 2 tokens");
    let h = noise.handshake_hash();
    build_syn_ack_payload(&[0, 0, 0, 0, 0, 42], be32(&isn), &h)
}
