//! Benchmarks of durable rooms, through the driver as a server runs them: catch-up of
//! 1,000 missed messages in a 20-member room (server CPU, window by window with the
//! member's acks); and, printed once, the bytes a catch-up puts on the wire for a room
//! whose log holds 10,000, and the hub's memory with 1,000 rooms at full retention
//! (counted by a counting allocator).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use cove_core::Instant;
use cove_core::hub::{ConnId, Hub, HubConfig, Reply, Request};
use cove_core::server::{Driver, DriverConfig, ListScratch, ServerEvent, encode_reply};
use cove_core::wire::{AuthMode, ErrorCode, RoomId};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Counts the bytes allocated and not yet freed, to measure the hub's memory.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`, which upholds `GlobalAlloc`'s
// contract; the counter is only arithmetic on the sizes the caller passed.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: same layout, forwarded as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const T: Instant = Instant(1_000_000);
const BODY: usize = 100;

fn settle(d: &mut Driver) -> Vec<(ConnId, Reply)> {
    while let Some(b) = d.poll_batch() {
        d.handle_durable(b.id).expect("in flight");
    }
    std::iter::from_fn(|| d.poll_reply()).collect()
}

fn event(d: &mut Driver, conn: u64, ev: ServerEvent) -> Vec<(ConnId, Reply)> {
    d.handle_event(T, ConnId(conn), ev);
    settle(d)
}

fn login(d: &mut Driver, conn: u64, name: &str, mode: AuthMode) -> Vec<(ConnId, Reply)> {
    let key = [name.len() as u8; 32];
    let name = Arc::from(name);
    let max_frame = cove_core::wire::DEFAULT_MAX_FRAME;
    let auth = ServerEvent::Authenticate {
        name,
        key,
        mode,
        max_frame,
    };
    event(d, conn, auth)
}

fn request(d: &mut Driver, conn: u64, r: Request) -> Vec<(ConnId, Reply)> {
    event(d, conn, ServerEvent::Request(r))
}

fn closed(d: &mut Driver, conn: u64) {
    let code = ErrorCode::ConnectionTerminated;
    event(
        d,
        conn,
        ServerEvent::Closed {
            code,
            by_peer: true,
        },
    );
}

/// A driver around a hub with `hub`'s limits and no request budget in the way.
fn unlimited(hub: HubConfig, seed: u64) -> Driver {
    let config = DriverConfig {
        account_rate_per_sec: u32::MAX,
        account_burst: u32::MAX,
        ..DriverConfig::default()
    };
    Driver::new(Hub::new(hub, seed), config)
}

/// `conn` creates a public room; its ID.
fn create(d: &mut Driver, conn: u64) -> RoomId {
    let title = "bench".into();
    let create = Request::CreateRoom {
        req: 1,
        title,
        private: false,
    };
    request(d, conn, create)
        .iter()
        .find_map(|(_, r)| match r {
            Reply::RoomJoined { room, .. } => Some(*room),
            _ => None,
        })
        .expect("room")
}

/// A 20-member room with `logged` messages in its log; member 19 ("m19") missed the
/// last `missed` of them.
fn room_with_history(logged: usize, missed: usize) -> (Driver, RoomId) {
    let hub = HubConfig {
        log_max_messages: logged,
        log_max_bytes: logged * BODY,
        ..HubConfig::default()
    };
    let mut d = unlimited(hub, 1);
    for i in 0..20u64 {
        login(&mut d, i, &format!("m{i}"), AuthMode::Register);
    }
    let room = create(&mut d, 0);
    for i in 1..20u64 {
        request(&mut d, i, Request::JoinRoom { req: 2, room });
    }
    let body: Arc<[u8]> = Arc::from(vec![7u8; BODY]);
    for n in 0..logged {
        if n == logged - missed {
            closed(&mut d, 19);
        }
        let msg = Request::RoomMessage {
            req: 3,
            room,
            body: body.clone(),
        };
        request(&mut d, 0, msg);
        // The online members acknowledge as they go, so their windows keep flowing.
        let online = if n < logged - missed { 20 } else { 19 };
        for i in 0..online {
            let ack = Request::AckRoom {
                room,
                seq: n as u64 + 1,
            };
            request(&mut d, i, ack);
        }
    }
    (d, room)
}

/// m19 logs in and takes its catch-up window by window; returns the messages and the
/// bytes they took in encoded form.
fn catch_up(d: &mut Driver, room: RoomId, conn: u64, scratch: &mut ListScratch) -> (usize, usize) {
    let mut out = login(d, conn, "m19", AuthMode::Login);
    let (mut msgs, mut bytes) = (0, 0);
    let mut plain = Vec::new();
    loop {
        let mut last = None;
        for (_, r) in &out {
            if let Reply::RoomMessage { seq, .. } = r {
                msgs += 1;
                last = Some(*seq);
            }
            encode_reply(r, scratch, &mut plain).expect("encodes");
            bytes += plain.len() + 5 + 16; // frame header and AEAD tag
        }
        let Some(seq) = last else {
            return (msgs, bytes);
        };
        out = request(d, conn, Request::AckRoom { room, seq });
    }
}

fn catch_up_bench(c: &mut Criterion) {
    let (mut d, room) = room_with_history(10_000, 1_000);
    let mut scratch = ListScratch::default();
    let mut conn = 100;
    let (msgs, bytes) = catch_up(&mut d, room, conn, &mut scratch);
    eprintln!(
        "catch-up: {msgs} messages, {bytes} bytes on the wire (before record framing of key updates)"
    );
    assert_eq!(msgs, 1_000);
    let mut g = c.benchmark_group("rooms");
    g.throughput(Throughput::Elements(1_000));
    g.sample_size(20);
    // Each iteration rewinds m19: it leaves the network, and its cursor is put back by
    // replaying the same login on a room whose log still holds the 1,000 messages.
    g.bench_function("catch_up_1000_of_10000", |b| {
        b.iter_batched(
            || {
                let (d, room) = room_with_history(2_000, 1_000);
                (d, room)
            },
            |(mut d, room)| {
                conn += 1;
                black_box(catch_up(&mut d, room, conn, &mut scratch));
            },
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();
    closed(&mut d, conn);
}

fn hub_memory(_: &mut Criterion) {
    let before = LIVE.load(Ordering::Relaxed);
    let hub = HubConfig {
        max_rooms: 1_000,
        log_max_messages: 1_000,
        log_max_bytes_total: usize::MAX,
        ..HubConfig::default()
    };
    let mut d = unlimited(hub, 2);
    for r in 0..1_000u64 {
        // One writer per room: a user may be in 32 rooms at most.
        login(&mut d, r, &format!("w{r}"), AuthMode::Register);
        let room = create(&mut d, r);
        for _ in 0..1_000 {
            // A body of its own each, as messages from the network are.
            let body: Arc<[u8]> = Arc::from(vec![7u8; BODY]);
            request(&mut d, r, Request::RoomMessage { req: 2, room, body });
        }
    }
    let used = LIVE.load(Ordering::Relaxed) - before;
    let payload = 1_000 * 1_000 * BODY;
    eprintln!(
        "hub memory, 1,000 rooms x 1,000 messages of {BODY} B: {used} bytes allocated for {payload} body bytes ({:.2}x)",
        used as f64 / payload as f64
    );
    black_box(d);
}

criterion_group!(benches, catch_up_bench, hub_memory);
criterion_main!(benches);
