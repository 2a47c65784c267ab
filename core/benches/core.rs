//! Criterion benchmarks of the core: the handshake next to the primitives it is made of,
//! record seal/open for both suites, and hub fanout. Ratios, not absolute times, are what
//! docs/BENCHMARKS.md reports: every figure here is measured in the same run.

use std::hint::black_box;
use std::sync::Arc;

use cove_core::Instant;
use cove_core::crypto::{CryptoProvider, Identity, RUST_CRYPTO, Suite, SuiteSet};
use cove_core::handshake::{ACK_MAX_LEN, ClientHandshake, SYN_ACK_LEN, SYN_LEN, ServerHandshake};
use cove_core::hub::{ConnId, Hub, HubConfig, Reply, Request};
use cove_core::server::{Driver, DriverConfig, ListScratch, ServerEvent, encode_reply};
use cove_core::session::{Session, SessionConfig};
use cove_core::wire::{AuthMode, HEADER_LEN, RoomId};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn handshake(c: &mut Criterion) {
    let client_id = Identity::from_bytes(&[1; 64]);
    let server_id = Identity::from_bytes(&[2; 64]);
    let mut rng = ChaCha20Rng::from_seed([3; 32]);
    let mut g = c.benchmark_group("handshake");
    for suite in [Suite::AesGcm, Suite::ChaChaPoly] {
        g.bench_function(BenchmarkId::new("full", suite.cipher_name()), |b| {
            b.iter(|| {
                let (c, s) = run_handshake(&client_id, &server_id, suite, &mut rng);
                black_box((c, s));
            })
        });
    }
    // The primitives a handshake is made of (per side: one ephemeral key, three DH, one
    // signature, one verification).
    let secret = [9u8; 32];
    let public = RUST_CRYPTO.x25519_public(&[8u8; 32]);
    let ed_public = RUST_CRYPTO.ed25519_public(&secret);
    let msg = [7u8; 51];
    let sig = RUST_CRYPTO.ed25519_sign(&secret, &msg);
    g.bench_function("x25519_keygen", |b| {
        b.iter(|| RUST_CRYPTO.x25519_public(black_box(&secret)))
    });
    g.bench_function("x25519_dh", |b| {
        b.iter(|| RUST_CRYPTO.x25519(black_box(&secret), &public))
    });
    g.bench_function("ed25519_sign", |b| {
        b.iter(|| RUST_CRYPTO.ed25519_sign(black_box(&secret), &msg))
    });
    g.bench_function("ed25519_verify", |b| {
        b.iter(|| RUST_CRYPTO.ed25519_verify(black_box(&ed_public), &msg, &sig))
    });
    g.finish();
}

fn run_handshake(
    client_id: &Identity,
    server_id: &Identity,
    suite: Suite,
    rng: &mut ChaCha20Rng,
) -> (Session, Session) {
    let mut client = ClientHandshake::new(
        &RUST_CRYPTO,
        client_id,
        suite,
        AuthMode::Login,
        "bench",
        rng,
    )
    .expect("valid name");
    let mut server = ServerHandshake::new(&RUST_CRYPTO, server_id, SuiteSet::ALL, rng);
    let mut syn = [0u8; SYN_LEN];
    let mut syn_ack = [0u8; SYN_ACK_LEN];
    let mut ack = [0u8; ACK_MAX_LEN];
    let n = client.write_syn(&mut syn).expect("syn");
    server.read_syn(&syn[..n]).expect("read syn");
    let n = server.write_syn_ack(&mut syn_ack).expect("syn-ack");
    client.read_syn_ack(&syn_ack[..n]).expect("read syn-ack");
    let (n, client_session) = client.write_ack(&mut ack).expect("ack");
    let (_, server_session) = server.read_ack(&ack[..n]).expect("read ack");
    (client_session, server_session)
}

fn records(c: &mut Criterion) {
    let client_id = Identity::from_bytes(&[1; 64]);
    let server_id = Identity::from_bytes(&[2; 64]);
    let mut rng = ChaCha20Rng::from_seed([4; 32]);
    let mut g = c.benchmark_group("record");
    for suite in [Suite::AesGcm, Suite::ChaChaPoly] {
        for size in [100usize, 1024] {
            let (mut tx, mut rx) = run_handshake(&client_id, &server_id, suite, &mut rng);
            // Never rotate during the benchmark: rotation is measured by the tests.
            let cfg = SessionConfig {
                rotate_after_records: u64::MAX,
                rotate_after_bytes: u64::MAX,
                rotate_after: cove_core::Duration(u64::MAX),
            };
            tx.set_config(cfg);
            rx.set_config(cfg);
            let mut plain = vec![0x14u8; size];
            plain[0] = 0x14;
            let mut out = vec![0u8; size + Session::seal_max_overhead()];
            g.throughput(Throughput::Bytes(size as u64));
            g.bench_function(
                BenchmarkId::new(format!("seal_{}", suite.cipher_name()), size),
                |b| {
                    b.iter(|| {
                        tx.seal_record(Instant(0), black_box(&plain), &mut out)
                            .expect("seal")
                    })
                },
            );
            // A fresh pair: the seal-only run above moved `tx`'s counter past `rx`'s.
            let (mut tx, mut rx) = run_handshake(&client_id, &server_id, suite, &mut rng);
            tx.set_config(cfg);
            rx.set_config(cfg);
            g.bench_function(
                BenchmarkId::new(format!("seal_open_{}", suite.cipher_name()), size),
                |b| {
                    b.iter(|| {
                        let n = tx
                            .seal_record(Instant(0), black_box(&plain), &mut out)
                            .expect("seal");
                        // Open every record written (a KeyUpdate may precede the data
                        // once the AEAD's per-key limit forces a rotation).
                        let mut at = 0;
                        while at < n {
                            let mut header = [0u8; HEADER_LEN];
                            header.copy_from_slice(&out[at..at + HEADER_LEN]);
                            let len =
                                u32::from_be_bytes([header[0], header[1], header[2], header[3]])
                                    as usize;
                            let body = &mut out[at + HEADER_LEN..at + HEADER_LEN + len];
                            let opened = rx.open_record(Instant(0), &header, body).expect("open");
                            black_box(opened.len());
                            at += HEADER_LEN + len;
                        }
                    })
                },
            );
        }
    }
    g.finish();
}

/// Commits whatever the driver hands out and drains its replies.
fn settle(driver: &mut Driver) -> Vec<Reply> {
    while let Some(b) = driver.poll_batch() {
        driver.handle_durable(b.id).expect("in flight");
    }
    std::iter::from_fn(|| driver.poll_reply())
        .map(|(_, r)| r)
        .collect()
}

/// One room message fanned out to 20 members through the driver, as a server runs it.
fn hub_fanout(c: &mut Criterion) {
    let mut driver = Driver::new(Hub::new(HubConfig::default(), 1), DriverConfig::default());
    let now = Instant(0);
    for i in 0..20u64 {
        let login = ServerEvent::Authenticate {
            name: format!("user{i}").into(),
            key: [i as u8; 32],
            mode: AuthMode::Register,
            max_frame: cove_core::wire::DEFAULT_MAX_FRAME,
        };
        driver.handle_event(now, ConnId(i), login);
    }
    let create = Request::CreateRoom {
        req: 1,
        title: "bench".into(),
        private: false,
    };
    driver.handle_event(now, ConnId(0), ServerEvent::Request(create));
    let room: RoomId = settle(&mut driver)
        .into_iter()
        .find_map(|r| match r {
            Reply::RoomJoined { room, .. } => Some(room),
            _ => None,
        })
        .expect("room created");
    for i in 1..20u64 {
        let join = Request::JoinRoom { req: 2, room };
        driver.handle_event(now, ConnId(i), ServerEvent::Request(join));
    }
    settle(&mut driver);
    let body: Arc<[u8]> = Arc::from(&[0u8; 100][..]);
    let mut g = c.benchmark_group("hub");
    g.throughput(Throughput::Elements(20));
    g.bench_function("fanout_20_members", |b| {
        b.iter(|| {
            let msg = Request::RoomMessage {
                req: 3,
                room,
                body: body.clone(),
            };
            driver.handle_event(now, ConnId(3), ServerEvent::Request(msg));
            let mut n = 0;
            while let Some(d) = driver.poll_reply() {
                black_box(&d);
                n += 1;
            }
            assert_eq!(n, 20);
        })
    });
    g.finish();
}

/// Sealing one room message (100 B body) for 20 recipients, as the connections do: encoded
/// once per recipient (how each connection did it before), against encoded once and each
/// recipient sealing the shared bytes (`Driver::poll_outgoing`), in the same run.
fn relay_seal(c: &mut Criterion) {
    // The provider the servers use (`--features ring`), else the default one.
    #[cfg(feature = "ring")]
    let provider: &'static dyn CryptoProvider = &cove_core::crypto::RING;
    #[cfg(not(feature = "ring"))]
    let provider: &'static dyn CryptoProvider = &RUST_CRYPTO;
    let never = SessionConfig {
        rotate_after_records: u64::MAX,
        rotate_after_bytes: u64::MAX,
        rotate_after: cove_core::Duration(u64::MAX),
    };
    let mut tx = Session::new(provider, Suite::AesGcm, &[1; 32], &[2; 32], [3; 32], never);
    let reply = Reply::RoomMessage {
        room: RoomId::parse(b"ABCDEF").expect("valid"),
        seq: 1234,
        from: "member7".into(),
        timestamp: 1_800_000_000,
        body: Arc::from(&[7u8; 100][..]),
    };
    let mut scratch = ListScratch::default();
    let mut plain = Vec::new();
    let mut out = vec![0u8; 512];
    let mut g = c.benchmark_group("relay_seal");
    g.throughput(Throughput::Elements(20));
    g.bench_function("encoded_per_recipient_20", |b| {
        b.iter(|| {
            for _ in 0..20 {
                encode_reply(black_box(&reply), &mut scratch, &mut plain).expect("encodes");
                black_box(tx.seal_record(Instant(0), &plain, &mut out).expect("seal"));
            }
        })
    });
    g.bench_function("encoded_once_20", |b| {
        b.iter(|| {
            encode_reply(black_box(&reply), &mut scratch, &mut plain).expect("encodes");
            let shared: Arc<[u8]> = Arc::from(&plain[..]);
            for _ in 0..20 {
                black_box(tx.seal_record(Instant(0), &shared, &mut out).expect("seal"));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, handshake, records, hub_fanout, relay_seal);
criterion_main!(benches);
