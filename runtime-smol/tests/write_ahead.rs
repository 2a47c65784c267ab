//! The write-ahead rule through cove-smol, seen by a client: a reply whose step wrote to
//! the store waits for that write (and so does every reply after it), a store that
//! fails makes the server stop without acknowledging the write, and a store that stalls
//! fills the driver's bounded pipeline, which pauses the connections instead of letting
//! a flood pile up in memory.

use std::collections::BTreeSet;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use cove_core::crypto::Identity;
use cove_core::hub::Reply;
use cove_core::store::{LogLoad, LogMemory, LoggedMessage, MemoryStore, Records, Store, StoreOp};
use cove_core::wire::{AckStatus, AuthMode};
use cove_smol::client::{ClientOptions, Connection, Event, connect};
use cove_smol::server::{PipelineStats, Server, ServerError, ServerHandle, ServerOptions};

const T: Duration = Duration::from_secs(20);

/// What the test controls about the store.
#[derive(Default)]
struct Valve {
    /// `apply` blocks while this is false.
    flowing: bool,
    /// `apply` fails (once flowing).
    broken: bool,
    /// Every op `apply` was called with.
    seen: Vec<StoreOp>,
}

/// A store in memory behind a valve the test opens, closes or breaks.
#[derive(Clone, Default)]
struct ValveStore {
    valve: Arc<(Mutex<Valve>, Condvar)>,
    data: Arc<Mutex<MemoryStore>>,
}

impl ValveStore {
    fn set(&self, flowing: bool, broken: bool) {
        let (m, cv) = &*self.valve;
        let mut v = m.lock().expect("valve");
        v.flowing = flowing;
        v.broken = broken;
        cv.notify_all();
    }

    /// Waits (at most `T`) until `apply` has been called with an op `pick` accepts.
    fn wait_seen(&self, pick: impl Fn(&StoreOp) -> bool) {
        let (m, cv) = &*self.valve;
        let v = m.lock().expect("valve");
        let (v, t) = cv
            .wait_timeout_while(v, T, |v| !v.seen.iter().any(&pick))
            .expect("valve");
        assert!(
            !t.timed_out(),
            "the op never reached the store: {:?}",
            v.seen
        );
    }
}

#[derive(Debug)]
struct Broken;

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the disk is gone")
    }
}

impl Store for ValveStore {
    type Error = Broken;

    fn apply(&mut self, ops: &[StoreOp]) -> Result<(), Broken> {
        let (m, cv) = &*self.valve;
        let mut v = m.lock().expect("valve");
        v.seen.extend_from_slice(ops);
        cv.notify_all();
        let v = cv.wait_while(v, |v| !v.flowing).expect("valve");
        if v.broken {
            return Err(Broken);
        }
        self.data
            .lock()
            .expect("data")
            .apply(ops)
            .map_err(|_| Broken)
    }

    fn load(&mut self, whole: LogMemory) -> Result<Records, Broken> {
        let data = self.data.lock().expect("data");
        Ok(MemoryStore::load_from(data.records(), whole))
    }

    fn read_log(&mut self, load: &LogLoad) -> Result<Vec<LoggedMessage>, Broken> {
        Ok(MemoryStore::read_from(
            self.data.lock().expect("data").records(),
            load,
        ))
    }
}

/// A server on its own two-thread executor; returns its handle, the thread running it,
/// its address and key.
fn start(
    store: ValveStore,
) -> (
    ServerHandle,
    std::thread::JoinHandle<Result<(), ServerError>>,
    std::net::SocketAddr,
    [u8; 32],
) {
    let identity = Identity::generate(&mut cove_smol::os_rng());
    let key = identity.public().ed25519;
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        cove_smol::block_on_threads(2, |ex| async move {
            let server = Server::bind("127.0.0.1:0", identity, store, ServerOptions::default(), ex)
                .await
                .expect("bind");
            let _ = tx.send((server.handle(), server.local_addr().expect("addr")));
            server.run().await
        })
    });
    let (handle, addr) = rx.recv_timeout(T).expect("started");
    (handle, thread, addr, key)
}

async fn client(addr: std::net::SocketAddr, key: [u8; 32], name: &str) -> Connection {
    let id = Identity::generate(&mut cove_smol::os_rng());
    let mut o = ClientOptions::new(name, AuthMode::Register, id).pin_server_key(key);
    o.connect_timeout = T;
    connect(addr, o).await.expect("connect")
}

/// Logs `c` out and waits for the close.
async fn leave(mut c: Connection) {
    c.logout().await.expect("logout");
    c.events()
        .wait_for(T, |e| matches!(e, Event::Closed { .. }).then_some(()))
        .await
        .expect("closed");
}

#[test]
fn a_reply_waits_for_its_write_and_later_replies_wait_behind_it() {
    let store = ValveStore::default();
    store.set(true, false);
    let (server, thread, addr, key) = start(store.clone());
    smol::block_on(async {
        let mut alice = client(addr, key, "alice").await;
        leave(client(addr, key, "bob").await).await;
        let req = alice.create_room("slow disk").await.expect("create");
        let room = alice
            .events()
            .wait_for(T, |e| match e {
                Event::Message(Reply::RoomJoined { req: r, room, .. }) if *r == req => Some(*room),
                _ => None,
            })
            .await
            .expect("room");

        store.set(false, false);
        let dm = alice.send_dm("bob", b"for later").await.expect("dm");
        alice
            .send_room(room, b"said after the dm")
            .await
            .expect("room");
        store.wait_seen(|op| matches!(op, StoreOp::DmQueued(_)));
        // The store holds the DM: neither its ack nor the later room echo may arrive.
        // (A bounded look, not a sleep-and-hope: the positive case follows.)
        assert_eq!(
            alice
                .events()
                .recv_timeout(Duration::from_millis(300))
                .await,
            None
        );

        store.set(true, false);
        let first = alice.events().recv_timeout(T).await.expect("the ack");
        assert!(
            matches!(first, Event::Message(Reply::MessageAck { req, status: AckStatus::Queued, .. }) if req == dm),
            "{first:?}"
        );
        let second = alice.events().recv_timeout(T).await.expect("the echo");
        assert!(
            matches!(second, Event::Message(Reply::RoomMessage { .. })),
            "{second:?}"
        );
    });
    server.shutdown();
    thread.join().expect("thread").expect("clean stop");
}

#[test]
fn a_broken_store_acknowledges_nothing_and_stops_the_server() {
    let store = ValveStore::default();
    store.set(true, false);
    let (_server, thread, addr, key) = start(store.clone());
    smol::block_on(async {
        let mut alice = client(addr, key, "alice").await;
        leave(client(addr, key, "bob").await).await;
        store.set(true, true);
        alice.send_dm("bob", b"never durable").await.expect("dm");
        let mut acked = false;
        while let Some(e) = alice.events().recv_timeout(T).await {
            match e {
                Event::Message(Reply::MessageAck {
                    status: AckStatus::Queued | AckStatus::Delivered,
                    ..
                }) => acked = true,
                Event::Closed { .. } => break,
                _ => {}
            }
        }
        assert!(!acked, "a DM that was never durable was acknowledged");
    });
    match thread.join().expect("thread") {
        Err(ServerError::Store(e)) => assert!(e.contains("the disk is gone"), "{e}"),
        other => panic!("expected the store's error, got {other:?}"),
    }
}

/// A server like `start`'s, with `options`, that the test can crash: sending on the
/// returned channel drops the server's future where it stands (no shutdown, no goodbye,
/// nothing drained) and ends its executor.
fn start_crashable(
    store: ValveStore,
    options: ServerOptions,
) -> (
    ServerHandle,
    std::thread::JoinHandle<()>,
    std::net::SocketAddr,
    [u8; 32],
    smol::channel::Sender<()>,
) {
    let identity = Identity::generate(&mut cove_smol::os_rng());
    let key = identity.public().ed25519;
    let (tx, rx) = std::sync::mpsc::channel();
    let (crash, crashed) = smol::channel::bounded::<()>(1);
    let thread = std::thread::spawn(move || {
        cove_smol::block_on_threads(2, |ex| async move {
            let server = Server::bind("127.0.0.1:0", identity, store, options, ex)
                .await
                .expect("bind");
            let _ = tx.send((server.handle(), server.local_addr().expect("addr")));
            futures_lite::future::or(
                async {
                    let _ = server.run().await;
                },
                async {
                    let _ = crashed.recv().await;
                },
            )
            .await;
        })
    });
    let (handle, addr) = rx.recv_timeout(T).expect("started");
    (handle, thread, addr, key, crash)
}

/// Polls `server`'s pipeline until `pick` accepts it, at most `T`.
async fn wait_pipeline(server: &ServerHandle, pick: impl Fn(&PipelineStats) -> bool) {
    let deadline = Instant::now() + T;
    loop {
        let p = server.pipeline();
        if pick(&p) {
            return;
        }
        assert!(Instant::now() < deadline, "pipeline never got there: {p:?}");
        smol::Timer::after(Duration::from_millis(5)).await;
    }
}

#[test]
fn a_stalled_store_pauses_a_flood_and_every_acknowledged_dm_survives_a_crash() {
    /// The pipeline's bound on operations that are not yet durable.
    const MAX_OPS: usize = 8;
    /// DMs the flooder sends: far more than the bound.
    const FLOOD: usize = 300;

    let mut options = ServerOptions::default();
    options.driver.max_pending_ops = MAX_OPS;
    options.driver.max_held_replies = 64;
    // The flood is the point: no rate limit gets in its way.
    options.connection.rate_per_sec = 1_000_000;
    options.connection.rate_burst = 1_000_000;
    options.driver.account_rate_per_sec = 1_000_000;
    options.driver.account_burst = 1_000_000;
    let store = ValveStore::default();
    store.set(true, false);
    let (server, thread, addr, key, crash) = start_crashable(store.clone(), options);

    let acked: BTreeSet<u64> = smol::block_on(async {
        let mut alice = client(addr, key, "alice").await;
        leave(client(addr, key, "bob").await).await;

        // Stall the store, then flood bob's offline queue.
        store.set(false, false);
        let before = server.pipeline().stats;
        let flooder = alice.handle();
        let flood = smol::spawn(async move {
            let mut reqs = Vec::new();
            for i in 0..FLOOD {
                let body = format!("dm {i}");
                reqs.push(flooder.send_dm("bob", body.as_bytes()).await.expect("dm"));
            }
            reqs
        });
        store.wait_seen(|op| matches!(op, StoreOp::DmQueued(_)));
        wait_pipeline(&server, |p| p.full).await;

        // While stalled: the connections stop feeding the driver, so its pending work
        // stays within the bound (one step may overshoot by its own operations: a DM's
        // `DmQueued` and at most one `IdsReserved`), and the flooder hears nothing.
        let paused = server.pipeline();
        let until = Instant::now() + Duration::from_millis(300);
        while Instant::now() < until {
            let p = server.pipeline();
            assert!(p.full, "{p:?}");
            assert!(p.pending_ops <= MAX_OPS + 1, "past the bound: {p:?}");
            assert_eq!(
                p.stats.steps, paused.stats.steps,
                "a step while full: {p:?}"
            );
            assert!(
                alice.events().try_recv().is_none(),
                "a reply before release"
            );
            smol::Timer::after(Duration::from_millis(10)).await;
        }
        let fed = paused.stats.steps - before.steps;
        assert!(
            (fed as usize) < FLOOD / 4,
            "{fed} of {FLOOD} DMs were taken in while the store stalled"
        );

        // Release; crash once half the flood is acknowledged.
        store.set(true, false);
        let reqs = flood.await;
        assert_eq!(reqs.len(), FLOOD);
        let mut acked = BTreeSet::new();
        while acked.len() < FLOOD / 2 {
            match alice.events().recv_timeout(T).await.expect("an ack") {
                Event::Message(Reply::MessageAck {
                    msg_id,
                    status: AckStatus::Queued,
                    ..
                }) => {
                    acked.insert(msg_id);
                }
                other => panic!("expected a queued ack, got {other:?}"),
            }
        }
        // The crash: the disk stops mid-write (the batch being applied never lands),
        // then the process dies.
        store.set(false, false);
        crash.send(()).await.expect("crash");
        // Acks already on their way were sent before the crash: they count too.
        while let Some(e) = alice
            .events()
            .recv_timeout(Duration::from_millis(200))
            .await
        {
            match e {
                Event::Message(Reply::MessageAck {
                    msg_id,
                    status: AckStatus::Queued,
                    ..
                }) => {
                    acked.insert(msg_id);
                }
                Event::Closed { .. } => break,
                other => panic!("expected a queued ack, got {other:?}"),
            }
        }
        acked
    });
    thread.join().expect("server thread");

    // Reopen the store as a restarted server would: every acknowledged DM is there.
    let mut reopened = ValveStore {
        valve: Arc::default(),
        data: store.data.clone(),
    };
    let records = reopened.load(LogMemory::ALL).expect("load");
    let durable: BTreeSet<u64> = records
        .queued
        .iter()
        .filter(|dm| &*dm.to == "bob" && &*dm.from == "alice")
        .map(|dm| dm.msg_id)
        .collect();
    let lost: Vec<_> = acked.difference(&durable).collect();
    assert!(
        lost.is_empty(),
        "acknowledged but not durable: {lost:?} ({} acked, {} durable)",
        acked.len(),
        durable.len()
    );
}
