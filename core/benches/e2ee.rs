//! Criterion benchmarks of the end-to-end layer (feature `e2ee`), each next to a transport
//! reference measured in the same run, since docs/BENCHMARKS.md reports ratios:
//!
//! - an application message of 100 B and 4 KiB: `E2ee::encrypt` by the sender and
//!   `E2ee::handle_room_message` by the receiver (each saves the group's state, as the layer
//!   does for every message), against sealing and opening a transport record of the same
//!   plaintext size (the session's AES-256-GCM suite), and against the Ed25519 signature
//!   and verification every MLS message carries;
//! - a Commit adding a 20th member to a 19-member group: made by the adder (with its
//!   Welcome and GroupInfo), applied by another member, joined from by the newcomer;
//! - an external join of that 19-member group, making it 20 (the room capacity): the
//!   joiner's external commit from the GroupInfo, and a member applying it;
//! - exporting a member's state (what the app persists before acknowledging);
//! - against one full Noise XX handshake (both sides), the transport's setup cost.
//!
//! Every operation that changes a group runs on a state restored (untimed) from an
//! exported one, so each iteration starts from the same group.

use std::hint::black_box;

use cove_core::Instant;
use cove_core::crypto::{CryptoProvider, Identity, RUST_CRYPTO, Suite, SuiteSet};
use cove_core::e2ee::{CommitOut, E2ee, Inbound, MlsCrypto};
use cove_core::handshake::{ACK_MAX_LEN, ClientHandshake, SYN_ACK_LEN, SYN_LEN, ServerHandshake};
use cove_core::session::{Session, SessionConfig};
use cove_core::wire::{AuthMode, HEADER_LEN, RoomId};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const SECS: u64 = 1_800_000_000;
const ROOM: RoomId = RoomId(*b"BENCH2");
const SIZES: [usize; 2] = [100, 4096];

/// One account: its name, identity and MLS state.
struct Account {
    name: String,
    id: Identity,
    e: E2ee,
}

impl Account {
    fn new(i: u32) -> Account {
        let name = format!("member{i}");
        let mut seed = [0u8; 32];
        seed[..4].copy_from_slice(&i.to_be_bytes());
        let id = Identity::generate(&mut ChaCha20Rng::from_seed(seed));
        seed[31] = 0xe2;
        let e = E2ee::new(&id, &name, MlsCrypto::from_seed(seed)).expect("valid name");
        Account { name, id, e }
    }

    /// A copy of this account's state, restored from its export (with a fresh random
    /// stream, so no draw repeats).
    fn restored(&self, state: &[u8], tag: u8) -> E2ee {
        E2ee::restore(&self.id, &self.name, MlsCrypto::from_seed([tag; 32]), state)
            .expect("state restores")
    }
}

/// The room's log, as the hub stamps it.
struct Log {
    seq: u64,
}

impl Log {
    fn next(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
}

/// `creator` makes the group and adds `joiners` one Commit at a time; `follower` (the first
/// joiner) applies every later Commit, so both are at the group's last epoch. Returns the
/// last Commit's output.
fn grow(creator: &mut Account, joiners: &mut [Account], log: &mut Log) -> Option<CommitOut> {
    creator.e.create_group(ROOM, SECS).expect("create");
    let mut last = None;
    for i in 0..joiners.len() {
        let kp = joiners[i].e.key_packages(1, SECS).expect("kp").remove(0);
        let out = creator.e.add_member(ROOM, &kp, SECS).expect("add");
        creator.e.commit_accepted(ROOM).expect("accepted");
        let commit_seq = log.next();
        let welcome_seq = log.next();
        let welcome = out.welcome.clone().expect("welcome");
        if i == 0 {
            let r = joiners[0]
                .e
                .handle_room_message(ROOM, welcome_seq, &creator.name, &welcome, SECS)
                .expect("joins");
            assert_eq!(r, Inbound::Joined);
        } else {
            let r = joiners[0]
                .e
                .handle_room_message(ROOM, commit_seq, &creator.name, &out.commit, SECS)
                .expect("applies");
            assert!(matches!(r, Inbound::Commit { .. }));
        }
        last = Some(out);
    }
    last
}

/// A group of two, both at its last epoch.
fn pair(first: u32) -> (Account, Account, Log) {
    let mut log = Log { seq: 0 };
    let mut alice = Account::new(first);
    let mut bob = [Account::new(first + 1)];
    grow(&mut alice, &mut bob, &mut log);
    let [bob] = bob;
    (alice, bob, log)
}

fn application(c: &mut Criterion) {
    let mut g = c.benchmark_group("e2ee_message");
    // MLS signs every message with the sender's Ed25519 key and the receiver verifies it:
    // the two primitives, measured here, are most of a message's cost.
    let secret = [9u8; 32];
    let public = RUST_CRYPTO.ed25519_public(&secret);
    let signed = [7u8; 200];
    let sig = RUST_CRYPTO.ed25519_sign(&secret, &signed);
    g.bench_function("reference_ed25519_sign", |b| {
        b.iter(|| RUST_CRYPTO.ed25519_sign(black_box(&secret), &signed))
    });
    g.bench_function("reference_ed25519_verify", |b| {
        b.iter(|| RUST_CRYPTO.ed25519_verify(black_box(&public), &signed, &sig))
    });
    for size in SIZES {
        let plain = vec![0x41u8; size];
        g.throughput(Throughput::Bytes(size as u64));
        let (mut alice, _, _) = pair(1);
        g.bench_function(BenchmarkId::new("encrypt", size), |b| {
            b.iter(|| alice.e.encrypt(ROOM, black_box(&plain)).expect("encrypt"))
        });
        // A fresh pair: the receiver reads every message, in order.
        let (mut alice, mut bob, mut log) = pair(3);
        g.bench_function(BenchmarkId::new("decrypt", size), |b| {
            b.iter_batched(
                || {
                    let body = alice.e.encrypt(ROOM, &plain).expect("encrypt");
                    (log.next(), body)
                },
                |(seq, body)| {
                    let r = bob
                        .e
                        .handle_room_message(ROOM, seq, &alice.name, &body, SECS)
                        .expect("decrypt");
                    assert!(matches!(r, Inbound::Message { .. }));
                    r
                },
                BatchSize::SmallInput,
            )
        });
    }
    // The transport reference: the same plaintext sizes through a session's records.
    for size in SIZES {
        let mut plain = vec![0x41u8; size];
        plain[0] = 0x14;
        let mut out = vec![0u8; size + Session::seal_max_overhead()];
        g.throughput(Throughput::Bytes(size as u64));
        let (mut tx, _) = handshake(Suite::AesGcm);
        g.bench_function(BenchmarkId::new("transport_seal", size), |b| {
            b.iter(|| {
                tx.seal_record(Instant(0), black_box(&plain), &mut out)
                    .expect("seal")
            })
        });
        // A fresh pair, whose receiver opens every record in order.
        let (mut tx, mut rx) = handshake(Suite::AesGcm);
        g.bench_function(BenchmarkId::new("transport_open", size), |b| {
            b.iter_batched(
                || {
                    let n = tx.seal_record(Instant(0), &plain, &mut out).expect("seal");
                    out[..n].to_vec()
                },
                |mut record| {
                    let mut header = [0u8; HEADER_LEN];
                    header.copy_from_slice(&record[..HEADER_LEN]);
                    let opened = rx
                        .open_record(Instant(0), &header, &mut record[HEADER_LEN..])
                        .expect("open");
                    black_box(opened.len())
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

fn commits(c: &mut Criterion) {
    let mut log = Log { seq: 0 };
    let mut creator = Account::new(100);
    // The creator and 18 joiners: 19 members.
    let mut joiners: Vec<Account> = (101..119).map(Account::new).collect();
    let last = grow(&mut creator, &mut joiners, &mut log).expect("commits");
    // The GroupInfo of the group's current epoch, as its last Commit published it.
    let info = last.group_info;
    assert_eq!(creator.e.members(ROOM).len(), 19);
    let follower = &joiners[0];
    let creator_state = creator.e.export_state();
    let follower_state = follower.e.export_state();

    // The 20th member, added with a Welcome.
    let mut newcomer = Account::new(200);
    let kp = newcomer.e.key_packages(1, SECS).expect("kp").remove(0);
    let newcomer_state = newcomer.e.export_state();
    let add = creator
        .restored(&creator_state, 1)
        .add_member(ROOM, &kp, SECS)
        .expect("add");
    let welcome = add.welcome.clone().expect("welcome");
    let seq = log.seq + 1;

    let mut g = c.benchmark_group("e2ee_group_of_19");
    g.sample_size(20);
    g.bench_function("add_member_commit", |b| {
        b.iter_batched(
            || creator.restored(&creator_state, 2),
            |mut e| e.add_member(ROOM, &kp, SECS).expect("add"),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("apply_add_commit", |b| {
        b.iter_batched(
            || follower.restored(&follower_state, 3),
            |mut e| {
                let r = e
                    .handle_room_message(ROOM, seq, &creator.name, &add.commit, SECS)
                    .expect("apply");
                assert!(matches!(r, Inbound::Commit { .. }));
                e
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("join_from_welcome", |b| {
        b.iter_batched(
            || newcomer.restored(&newcomer_state, 4),
            |mut e| {
                let r = e
                    .handle_room_message(ROOM, seq + 1, &creator.name, &welcome, SECS)
                    .expect("join");
                assert_eq!(r, Inbound::Joined);
                e
            },
            BatchSize::SmallInput,
        )
    });

    // The 20th member by external commit, from the GroupInfo of the group's last epoch.
    let joiner = Account::new(300);
    let joiner_state = joiner.e.export_state();
    let external = joiner
        .restored(&joiner_state, 5)
        .join_external(ROOM, &info, SECS)
        .expect("external join");
    g.bench_function("external_join_commit", |b| {
        b.iter_batched(
            || joiner.restored(&joiner_state, 6),
            |mut e| e.join_external(ROOM, &info, SECS).expect("external join"),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("apply_external_commit", |b| {
        b.iter_batched(
            || follower.restored(&follower_state, 7),
            |mut e| {
                let r = e
                    .handle_room_message(ROOM, seq, &joiner.name, &external.commit, SECS)
                    .expect("apply");
                assert!(matches!(r, Inbound::Commit { .. }));
                e
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("export_state", |b| {
        b.iter(|| black_box(creator.e.export_state()))
    });
    println!(
        "19-member group: creator state {} B, GroupInfo {} B, add Commit {} B, Welcome {} B, \
         external Commit {} B",
        creator_state.len(),
        info.len(),
        add.commit.len(),
        welcome.len(),
        external.commit.len()
    );
    g.bench_function("reference_handshake", |b| {
        b.iter(|| handshake(Suite::AesGcm))
    });
    g.finish();
}

/// A client and a server session from one full handshake, never rotating keys.
fn handshake(suite: Suite) -> (Session, Session) {
    let client_id = Identity::from_bytes(&[1; 64]);
    let server_id = Identity::from_bytes(&[2; 64]);
    let mut rng = ChaCha20Rng::from_seed([4; 32]);
    let mut client = ClientHandshake::new(
        &RUST_CRYPTO,
        &client_id,
        suite,
        AuthMode::Login,
        "bench",
        &mut rng,
    )
    .expect("valid name");
    let mut server = ServerHandshake::new(&RUST_CRYPTO, &server_id, SuiteSet::ALL, &mut rng);
    let mut syn = [0u8; SYN_LEN];
    let mut syn_ack = [0u8; SYN_ACK_LEN];
    let mut ack = [0u8; ACK_MAX_LEN];
    let n = client.write_syn(&mut syn).expect("syn");
    server.read_syn(&syn[..n]).expect("read syn");
    let n = server.write_syn_ack(&mut syn_ack).expect("syn-ack");
    client.read_syn_ack(&syn_ack[..n]).expect("read syn-ack");
    let (n, mut tx) = client.write_ack(&mut ack).expect("ack");
    let (_, mut rx) = server.read_ack(&ack[..n]).expect("read ack");
    let cfg = SessionConfig {
        rotate_after_records: u64::MAX,
        rotate_after_bytes: u64::MAX,
        rotate_after: cove_core::Duration(u64::MAX),
    };
    tx.set_config(cfg);
    rx.set_config(cfg);
    (tx, rx)
}

criterion_group!(benches, application, commits);
criterion_main!(benches);
