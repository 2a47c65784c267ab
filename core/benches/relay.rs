//! What end-to-end encryption costs the server: one room message relayed to a 20-member
//! room through the driver (the hub's checks, the fan-out to every member, the log entry
//! and its write-ahead batch, and every member's acknowledgement), for a plaintext room
//! and for an MLS room, in the same run. The MLS room's body is a real PrivateMessage
//! (100 B of text), the plaintext room's a body of exactly the same length, so the two
//! differ only in what the Delivery Service checks: the MLS header (group, epoch window,
//! wire format). The server does no MLS cryptography; this shows what is left.

use std::hint::black_box;
use std::sync::Arc;

use cove_core::Instant;
use cove_core::crypto::Identity;
use cove_core::e2ee::{E2ee, MlsCrypto};
use cove_core::hub::{ConnId, Hub, HubConfig, Reply, Request};
use cove_core::server::{Driver, DriverConfig, ServerEvent};
use cove_core::wire::{AuthMode, DEFAULT_MAX_FRAME, RoomId};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const T: Instant = Instant(1_000_000);
const SECS: u64 = 1_800_000_000;
const MEMBERS: u64 = 20;

fn settle(d: &mut Driver) -> Vec<(ConnId, Reply)> {
    while let Some(b) = d.poll_batch() {
        d.handle_durable(b.id).expect("in flight");
    }
    std::iter::from_fn(|| d.poll_reply()).collect()
}

fn request(d: &mut Driver, conn: u64, r: Request) -> Vec<(ConnId, Reply)> {
    d.handle_event(T, ConnId(conn), ServerEvent::Request(r));
    settle(d)
}

/// Twenty members logged in (with their real identity keys), and their MLS layers.
fn members(d: &mut Driver) -> Vec<E2ee> {
    (0..MEMBERS)
        .map(|i| {
            let name = format!("member{i}");
            let id = Identity::generate(&mut ChaCha20Rng::seed_from_u64(i));
            let auth = ServerEvent::Authenticate {
                name: Arc::from(&name[..]),
                key: id.public().ed25519,
                mode: AuthMode::Register,
                max_frame: DEFAULT_MAX_FRAME,
            };
            d.handle_event(T, ConnId(i), auth);
            settle(d);
            E2ee::new(&id, &name, MlsCrypto::from_seed([i as u8 + 1; 32])).expect("valid")
        })
        .collect()
}

fn create(d: &mut Driver) -> RoomId {
    let create = Request::CreateRoom {
        req: 1,
        title: "bench".into(),
        private: false,
    };
    request(d, 0, create)
        .iter()
        .find_map(|(_, r)| match r {
            Reply::RoomJoined { room, .. } => Some(*room),
            _ => None,
        })
        .expect("room")
}

/// The MLS room: member 0 publishes the group, the others join it by external commit.
/// Returns the room and a message of `text` encrypted by the last joiner (current epoch).
fn mls_room(d: &mut Driver, e: &mut [E2ee], text: &[u8]) -> (RoomId, Vec<u8>) {
    let room = create(d);
    let group_info = e[0].create_group(room, SECS).expect("group").into();
    let init = Request::InitGroup {
        req: 2,
        room,
        group_info,
    };
    assert!(matches!(request(d, 0, init)[..], [(_, Reply::Ok { .. })]));
    for (i, joiner) in e.iter_mut().enumerate().skip(1) {
        let gi = request(d, i as u64, Request::GetGroupInfo { req: 3, room })
            .into_iter()
            .find_map(|(_, r)| match r {
                Reply::GroupInfo { group_info, .. } => Some(group_info),
                _ => None,
            })
            .expect("group info");
        let out = joiner.join_external(room, &gi, SECS).expect("joins");
        let commit = Request::GroupCommit {
            req: 4,
            room,
            commit: out.commit.into(),
            group_info: out.group_info.into(),
            add: None,
            welcome: Arc::from(&[][..]),
        };
        let replies = request(d, i as u64, commit);
        assert!(
            replies
                .iter()
                .any(|(_, r)| matches!(r, Reply::RoomJoined { .. })),
            "{replies:?}"
        );
        joiner.commit_accepted(room).expect("accepted");
    }
    let last = MEMBERS as usize - 1;
    // The directory (this bench) agrees with every member's key.
    for (name, key) in e[last].members(room) {
        e[last].confirm_key(&name, key);
    }
    let body = e[last].encrypt(room, text).expect("encrypts");
    (room, body)
}

/// The plaintext room: member 0 creates it, the others join.
fn plain_room(d: &mut Driver) -> RoomId {
    let room = create(d);
    for i in 1..MEMBERS {
        request(d, i, Request::JoinRoom { req: 2, room });
    }
    room
}

/// `sender` posts `body` to `room`; every member acknowledges it.
fn relay(d: &mut Driver, sender: u64, room: RoomId, body: &Arc<[u8]>) -> usize {
    let msg = Request::RoomMessage {
        req: 9,
        room,
        body: body.clone(),
    };
    let replies = request(d, sender, msg);
    let mut delivered = 0;
    for (conn, r) in &replies {
        if let Reply::RoomMessage { seq, .. } = r {
            delivered += 1;
            d.handle_event(
                T,
                *conn,
                ServerEvent::Request(Request::AckRoom { room, seq: *seq }),
            );
        }
    }
    settle(d);
    delivered
}

fn relay_benches(c: &mut Criterion) {
    let config = DriverConfig {
        account_rate_per_sec: u32::MAX,
        account_burst: u32::MAX,
        ..DriverConfig::default()
    };
    let text = [b'x'; 100];
    let mut mls = Driver::new(Hub::new(HubConfig::default(), 1), config.clone());
    let mut accounts = members(&mut mls);
    let (mls_room, ciphertext) = mls_room(&mut mls, &mut accounts, &text);
    let ciphertext: Arc<[u8]> = ciphertext.into();
    let mut plain = Driver::new(Hub::new(HubConfig::default(), 2), config);
    members(&mut plain);
    let plain_room = plain_room(&mut plain);
    let same_size: Arc<[u8]> = vec![b'x'; ciphertext.len()].into();
    let sender = MEMBERS - 1;
    assert_eq!(
        relay(&mut mls, sender, mls_room, &ciphertext),
        MEMBERS as usize
    );
    assert_eq!(
        relay(&mut plain, sender, plain_room, &same_size),
        MEMBERS as usize
    );

    let mut g = c.benchmark_group(format!(
        "server relay, 20 members, {} B body",
        ciphertext.len()
    ));
    g.throughput(Throughput::Elements(MEMBERS));
    g.bench_function("plaintext room", |b| {
        b.iter(|| black_box(relay(&mut plain, sender, plain_room, &same_size)))
    });
    g.bench_function("MLS room (PrivateMessage)", |b| {
        b.iter(|| black_box(relay(&mut mls, sender, mls_room, &ciphertext)))
    });
    g.finish();
}

criterion_group!(benches, relay_benches);
criterion_main!(benches);
