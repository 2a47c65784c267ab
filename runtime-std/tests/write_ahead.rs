//! The write-ahead rule, observed from outside: no reply of a step leaves the server
//! before that step's store operations are durable, later replies never overtake it, a
//! stalled store pauses the readers instead of growing the server's pending work, and a
//! failing store stops the server without acknowledging anything.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use cove_core::crypto::Identity;
use cove_core::hub::Reply;
use cove_core::store::{LogLoad, LogMemory, LoggedMessage, MemoryStore, Records, Store, StoreOp};
use cove_core::wire::{AckStatus, AuthMode};
use cove_std::client::{ClientOptions, Connection, Event, connect};
use cove_std::server::{Pipeline, Server, ServerError, ServerHandle, ServerOptions};

const T: Duration = Duration::from_secs(20);

#[derive(Default)]
struct GateState {
    open: bool,
    fail: bool,
    /// Ops that reached `apply` (whether or not it has returned).
    attempted: Vec<StoreOp>,
}

/// A memory store whose `apply` waits while the gate is closed, and can be made to fail.
#[derive(Clone, Default)]
struct Gate {
    state: Arc<(Mutex<GateState>, Condvar)>,
    inner: Arc<Mutex<MemoryStore>>,
}

impl Gate {
    fn set(&self, open: bool, fail: bool) {
        let (m, cv) = &*self.state;
        let mut st = m.lock().expect("gate");
        st.open = open;
        st.fail = fail;
        cv.notify_all();
    }

    fn wait_attempted(&self, pred: impl Fn(&[StoreOp]) -> bool) {
        let (m, cv) = &*self.state;
        let st = m.lock().expect("gate");
        let (st, timeout) = cv
            .wait_timeout_while(st, T, |st| !pred(&st.attempted))
            .expect("gate");
        assert!(
            !timeout.timed_out(),
            "ops never reached the store: {:?}",
            st.attempted
        );
    }
}

#[derive(Debug)]
struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("disk on fire")
    }
}

impl Store for Gate {
    type Error = Refused;

    fn apply(&mut self, ops: &[StoreOp]) -> Result<(), Refused> {
        let (m, cv) = &*self.state;
        let mut st = m.lock().expect("gate");
        st.attempted.extend_from_slice(ops);
        cv.notify_all();
        let st = cv.wait_while(st, |st| !st.open).expect("gate");
        if st.fail {
            return Err(Refused);
        }
        let _ = self.inner.lock().expect("store").apply(ops);
        Ok(())
    }

    fn load(&mut self, whole: LogMemory) -> Result<Records, Refused> {
        let inner = self.inner.lock().expect("store");
        Ok(MemoryStore::load_from(inner.records(), whole))
    }

    fn read_log(&mut self, load: &LogLoad) -> Result<Vec<LoggedMessage>, Refused> {
        Ok(MemoryStore::read_from(
            self.inner.lock().expect("store").records(),
            load,
        ))
    }
}

/// What survived a crash: the durable records, reopened as a store.
struct Reopened(Records);

impl Store for Reopened {
    type Error = Refused;

    fn apply(&mut self, ops: &[StoreOp]) -> Result<(), Refused> {
        for op in ops {
            MemoryStore::apply_to(&mut self.0, op);
        }
        Ok(())
    }

    fn load(&mut self, whole: LogMemory) -> Result<Records, Refused> {
        Ok(MemoryStore::load_from(&self.0, whole))
    }

    fn read_log(&mut self, load: &LogLoad) -> Result<Vec<LoggedMessage>, Refused> {
        Ok(MemoryStore::read_from(&self.0, load))
    }
}

type Running = (
    ServerHandle,
    std::thread::JoinHandle<Result<(), ServerError>>,
    [u8; 32],
);

fn start(store: Gate) -> Running {
    start_with(store, ServerOptions::default())
}

fn start_with<S: Store + Send + 'static>(store: S, options: ServerOptions) -> Running {
    let identity = Identity::generate(&mut cove_std::os_rng());
    let key = identity.public().ed25519;
    let server = Server::bind("127.0.0.1:0", identity, store, options).expect("bind");
    let handle = server.handle();
    (handle, server.spawn().expect("spawn"), key)
}

fn client(addr: std::net::SocketAddr, key: [u8; 32], name: &str) -> Connection {
    let id = Identity::generate(&mut cove_std::os_rng());
    client_as(addr, key, name, AuthMode::Register, id)
}

fn client_as(
    addr: std::net::SocketAddr,
    key: [u8; 32],
    name: &str,
    mode: AuthMode,
    id: Identity,
) -> Connection {
    let mut o = ClientOptions::new(name, mode, id).pin_server_key(key);
    // These clients show nothing: room messages are acknowledged as they arrive, so the
    // room window keeps flowing.
    o.config.auto_ack_rooms = true;
    connect(addr, o).expect("connect")
}

/// Polls the server until its pipeline satisfies `pred` (state only visible from
/// outside), at most `T`.
fn wait_pipeline(server: &ServerHandle, pred: impl Fn(&Pipeline) -> bool) -> Pipeline {
    let deadline = std::time::Instant::now() + T;
    loop {
        let p = server.pipeline();
        if pred(&p) {
            return p;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "pipeline stuck at {p:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn replies_wait_for_their_commit_and_nothing_overtakes_them() {
    let gate = Gate::default();
    gate.set(true, false);
    let (server, thread, key) = start(gate.clone());
    let mut alice = client(server.local_addr(), key, "alice");
    let mut bob = client(server.local_addr(), key, "bob");
    bob.logout().expect("logout");
    assert!(
        bob.events()
            .wait_for(T, |e| matches!(e, Event::Closed { .. }).then_some(()))
            .is_some()
    );
    let req = alice.create_room("r").expect("create");
    let room = alice
        .events()
        .wait_for(T, |e| match e {
            Event::Message(Reply::RoomJoined { req: r, room, .. }) if *r == req => Some(*room),
            _ => None,
        })
        .expect("room");

    gate.set(false, false);
    let dm = alice
        .send_dm("bob", b"queued while the disk is slow")
        .expect("dm");
    let chat = alice
        .send_room(room, b"after the dm")
        .expect("room message");
    let _ = chat;
    // The DM's op has reached the store, which is holding it.
    gate.wait_attempted(|ops| ops.iter().any(|op| matches!(op, StoreOp::DmQueued(_))));
    // A short, bounded look: neither the ack nor the later room echo may arrive now.
    assert_eq!(
        alice.events().recv_timeout(Duration::from_millis(300)),
        None
    );

    gate.set(true, false);
    let first = alice.events().recv_timeout(T).expect("ack");
    assert!(
        matches!(first, Event::Message(Reply::MessageAck { req, status: AckStatus::Queued, .. }) if req == dm),
        "{first:?}"
    );
    let second = alice.events().recv_timeout(T).expect("echo");
    assert!(
        matches!(second, Event::Message(Reply::RoomMessage { .. })),
        "{second:?}"
    );

    server.shutdown();
    thread.join().expect("thread").expect("clean stop");
}

#[test]
fn a_failing_store_acknowledges_nothing_and_stops_the_server() {
    let gate = Gate::default();
    gate.set(true, false);
    let (server, thread, key) = start(gate.clone());
    let mut alice = client(server.local_addr(), key, "alice");
    let mut bob = client(server.local_addr(), key, "bob");
    bob.logout().expect("logout");
    assert!(
        bob.events()
            .wait_for(T, |e| matches!(e, Event::Closed { .. }).then_some(()))
            .is_some()
    );

    gate.set(true, true);
    alice.send_dm("bob", b"lost to the fire").expect("dm");
    let mut acked = false;
    while let Some(e) = alice.events().recv_timeout(T) {
        match e {
            Event::Message(Reply::MessageAck {
                status: AckStatus::Queued | AckStatus::Delivered,
                ..
            }) => acked = true,
            Event::Closed { .. } => break,
            _ => {}
        }
    }
    assert!(!acked, "a DM that is not durable was acknowledged");
    match thread.join().expect("thread") {
        Err(ServerError::Store(e)) => assert!(e.contains("disk on fire"), "{e}"),
        other => panic!("expected a store error, got {other:?}"),
    }
}

#[test]
fn a_stalled_store_pauses_readers_within_the_bound_and_loses_no_acknowledged_dm() {
    const HELD: usize = 32;
    const OPS: usize = 16;
    const FLOOD: usize = 400;
    let mut options = ServerOptions::default();
    options.driver.max_held_replies = HELD;
    options.driver.max_pending_ops = OPS;
    // Only the store may slow the flooder down here, not the rate limit.
    options.connection.rate_per_sec = 1_000_000;
    options.connection.rate_burst = 1_000_000;
    options.driver.account_rate_per_sec = 1_000_000;
    options.driver.account_burst = 1_000_000;
    let gate = Gate::default();
    gate.set(true, false);
    let (server, thread, key) = start_with(gate.clone(), options);
    let mut alice = client(server.local_addr(), key, "alice");
    let bob_id = Identity::generate(&mut cove_std::os_rng());
    let mut bob = client_as(
        server.local_addr(),
        key,
        "bob",
        AuthMode::Register,
        bob_id.clone(),
    );
    bob.logout().expect("logout");
    assert!(
        bob.events()
            .wait_for(T, |e| matches!(e, Event::Closed { .. }).then_some(()))
            .is_some()
    );
    let req = alice.create_room("r").expect("create");
    let room = alice
        .events()
        .wait_for(T, |e| match e {
            Event::Message(Reply::RoomJoined { req: r, room, .. }) if *r == req => Some(*room),
            _ => None,
        })
        .expect("room");

    // Stall the store on a DM's operations, then flood: room messages, and every fourth
    // a DM to the offline bob (each one more store operation).
    gate.set(false, false);
    let first = alice.send_dm("bob", b"dm 0").expect("dm");
    gate.wait_attempted(|ops| ops.iter().any(|op| matches!(op, StoreOp::DmQueued(_))));
    let before = server.pipeline().stats.steps;
    let flooder = {
        let alice = alice.handle();
        std::thread::spawn(move || {
            let mut dms = vec![(first, b"dm 0".to_vec())];
            for i in 1..=FLOOD {
                if i % 4 == 0 {
                    let body = format!("dm {i}").into_bytes();
                    dms.push((alice.send_dm("bob", &body).expect("dm"), body));
                } else {
                    alice.send_room(room, b"flood").expect("room message");
                }
            }
            dms
        })
    };

    // The driver fills up and the reader waits; the pending work stays within the bound
    // (a step may overshoot it by its own output: one reply, two operations).
    let paused = wait_pipeline(&server, |p| p.full && p.paused_readers == 1);
    let within = |p: &Pipeline| p.pending_replies <= HELD + 1 && p.pending_ops <= OPS + 2;
    assert!(within(&paused), "{paused:?}");
    // Nothing reaches the flooder while the store stalls (a short, bounded look), and
    // the server took on no more of its requests meanwhile.
    assert_eq!(
        alice.events().recv_timeout(Duration::from_millis(300)),
        None
    );
    let still = server.pipeline();
    assert!(within(&still), "{still:?}");
    assert_eq!(still.stats.steps, paused.stats.steps, "a paused reader fed");
    assert!(
        still.stats.steps - before < (FLOOD / 2) as u64,
        "the flood was taken on while the store stalled: {still:?}"
    );

    // Release: every request is answered, in order, nothing dropped.
    gate.set(true, false);
    let dms = flooder.join().expect("flooder");
    let wanted: BTreeMap<u32, Vec<u8>> = dms.into_iter().collect();
    let mut acked = BTreeMap::new();
    let mut echoes = 0;
    while acked.len() < wanted.len() || echoes < FLOOD - (wanted.len() - 1) {
        match alice.events().recv_timeout(T) {
            Some(Event::Message(Reply::MessageAck {
                req,
                msg_id,
                status: AckStatus::Queued | AckStatus::Delivered,
            })) => {
                let body = wanted.get(&req).expect("an ack for a DM sent").clone();
                acked.insert(msg_id, body);
            }
            Some(Event::Message(Reply::RoomMessage { .. })) => echoes += 1,
            other => panic!("after {} acks and {echoes} echoes: {other:?}", acked.len()),
        }
    }
    // The acks of the room echoes still flow in: the pipeline drains below its bound.
    wait_pipeline(&server, |p| !p.full);

    // Crash: what is durable now is all that survives. Every acknowledged DM is in it.
    let durable = gate.inner.lock().expect("store").records().clone();
    for (msg_id, body) in &acked {
        assert!(
            durable
                .queued
                .iter()
                .any(|q| q.msg_id == *msg_id && &*q.to == "bob" && q.body[..] == body[..]),
            "acknowledged DM {msg_id} is not durable"
        );
    }
    server.shutdown();
    thread.join().expect("thread").expect("clean stop");

    // Reopen the store on a new server: bob gets every acknowledged DM, once each,
    // acknowledging as it reads (the server sends a window at a time).
    let (server, thread, key) = start_with(Reopened(durable), ServerOptions::default());
    let mut bob = client_as(server.local_addr(), key, "bob", AuthMode::Login, bob_id);
    assert_eq!(bob.welcome().pending as usize, acked.len());
    let mut got = BTreeMap::new();
    while got.len() < acked.len() {
        match bob.events().recv_timeout(T) {
            Some(Event::Message(Reply::IncomingDm { msg_id, body, .. })) => {
                assert!(got.insert(msg_id, body.to_vec()).is_none(), "shown twice");
                bob.ack_dm(msg_id).expect("ack");
            }
            other => panic!("after {} DMs: {other:?}", got.len()),
        }
    }
    assert_eq!(got, acked);
    server.shutdown();
    thread.join().expect("thread").expect("clean stop");
}
