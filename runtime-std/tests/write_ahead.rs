//! The write-ahead rule, observed from outside: no reply of a step leaves the server
//! before that step's store operations are durable, later replies never overtake it, and
//! a failing store stops the server without acknowledging anything.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use cove_core::crypto::Identity;
use cove_core::hub::Reply;
use cove_core::store::{MemoryStore, Records, Store, StoreOp};
use cove_core::wire::{AckStatus, AuthMode};
use cove_std::client::{ClientOptions, Connection, Event, connect};
use cove_std::server::{Server, ServerError, ServerOptions};

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

    fn load(&mut self) -> Result<Records, Refused> {
        Ok(self.inner.lock().expect("store").records().clone())
    }
}

fn start(
    store: Gate,
) -> (
    cove_std::server::ServerHandle,
    std::thread::JoinHandle<Result<(), ServerError>>,
    [u8; 32],
) {
    let identity = Identity::generate(&mut cove_std::os_rng());
    let key = identity.public().ed25519;
    let server =
        Server::bind("127.0.0.1:0", identity, store, ServerOptions::default()).expect("bind");
    let handle = server.handle();
    (handle, server.spawn().expect("spawn"), key)
}

fn client(addr: std::net::SocketAddr, key: [u8; 32], name: &str) -> Connection {
    let id = Identity::generate(&mut cove_std::os_rng());
    let o = ClientOptions::new(name, AuthMode::Register, id).pin_server_key(key);
    connect(addr, o).expect("connect")
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
