//! A driver pipeline that fills and drains on nearly every step, under senders on two
//! executor threads and the store thread: no connection is stranded. A connection task
//! that found the pipeline free, then full a moment later, once went to sleep neither
//! reading nor listening for the pipeline's signal, and its client's input (its
//! acknowledgements) stayed unread for good; this flood makes that moment frequent.

use std::time::Duration;

use cove_core::crypto::Identity;
use cove_core::hub::Reply;
use cove_core::store::MemoryStore;
use cove_core::wire::{AuthMode, RoomId};
use cove_smol::client::{ClientOptions, Connection, Event, connect};
use cove_smol::server::{Server, ServerOptions};

const T: Duration = Duration::from_secs(60);
/// Members of the one room; every member sends.
const MEMBERS: usize = 20;
/// Messages each member sends, as fast as it can.
const MSGS: usize = 400;

fn churning_options() -> ServerOptions {
    let mut o = ServerOptions::default();
    // Every room message is a store operation: the pipeline is full after each one.
    o.driver.max_pending_ops = 1;
    let a = &mut o.driver.admission;
    a.max_per_addr = 1_000;
    a.max_unauthenticated_per_addr = 1_000;
    a.handshakes_per_sec = 1_000_000;
    a.handshake_burst = 1_000_000;
    a.registration_burst = 1_000;
    o.connection.rate_per_sec = 1_000_000;
    o.connection.rate_burst = 1_000_000;
    // No keepalive within the test's time on either side: a stranded connection would
    // otherwise be woken by its ping timer (or the client's ping) and hide the hang.
    o.connection.ping_interval = cove_core::Duration::from_secs(3_600);
    o.connection.idle_timeout = cove_core::Duration::from_secs(7_200);
    // The clients acknowledge every message as it comes.
    o.connection.ack_rate_per_sec = 1_000_000;
    o.connection.ack_burst = 1_000_000;
    o.driver.account_rate_per_sec = 1_000_000;
    o.driver.account_burst = 1_000_000;
    o
}

async fn client(addr: std::net::SocketAddr, key: [u8; 32], name: &str) -> Connection {
    let id = Identity::generate(&mut cove_smol::os_rng());
    let mut o = ClientOptions::new(name, AuthMode::Register, id).pin_server_key(key);
    o.connect_timeout = T;
    o.config.auto_ack_rooms = true;
    o.config.ping_interval = cove_core::Duration::from_secs(3_600);
    o.config.idle_timeout = cove_core::Duration::from_secs(7_200);
    // Room for the whole flood: this is about the server's queues, not the client's.
    o.event_queue = 4 * MEMBERS * MSGS;
    connect(addr, o).await.expect("connect")
}

/// Waits for the `RoomJoined` answering `req`.
async fn joined(c: &mut Connection, req: u32) -> RoomId {
    c.events()
        .wait_for(T, |e| match e {
            Event::Message(Reply::RoomJoined { req: r, room, .. }) if *r == req => Some(*room),
            _ => None,
        })
        .await
        .expect("joined")
}

#[test]
fn a_pipeline_full_after_every_step_strands_no_connection() {
    let identity = Identity::generate(&mut cove_smol::os_rng());
    let key = identity.public().ed25519;
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        cove_smol::block_on_threads(2, |ex| async move {
            let server = Server::bind(
                "127.0.0.1:0",
                identity,
                MemoryStore::new(),
                churning_options(),
                ex,
            )
            .await
            .expect("bind");
            let _ = tx.send((server.handle(), server.local_addr().expect("addr")));
            server.run().await
        })
    });
    let (handle, addr) = rx.recv_timeout(T).expect("started");

    let counts = smol::block_on(async {
        let mut members = Vec::new();
        for i in 0..MEMBERS {
            members.push(client(addr, key, &format!("m{i}")).await);
        }
        let req = members[0].create_room("churn").await.expect("create");
        let room = joined(&mut members[0], req).await;
        for m in &mut members[1..] {
            let req = m.join_room(room).await.expect("join");
            joined(m, req).await;
        }
        // Everyone floods at once; each member reads (acknowledging each message as it
        // comes) until it has every message, its own echoes included.
        let want = MEMBERS * MSGS;
        let tasks: Vec<_> = members
            .into_iter()
            .map(|mut m| {
                smol::spawn(async move {
                    let h = m.handle();
                    let send = smol::spawn(async move {
                        for n in 0..MSGS {
                            h.send_room(room, format!("{n}").as_bytes())
                                .await
                                .expect("send");
                        }
                    });
                    let mut got = 0;
                    while got < want {
                        match m.events().recv_timeout(T).await {
                            Some(Event::Message(Reply::RoomMessage { .. })) => got += 1,
                            Some(Event::Closed { code, .. }) => panic!("closed: {code:?}"),
                            Some(_) => {}
                            None => break,
                        }
                    }
                    send.await;
                    got
                })
            })
            .collect();
        let mut counts = Vec::new();
        for t in tasks {
            counts.push(t.await);
        }
        counts
    });
    assert_eq!(
        counts,
        vec![MEMBERS * MSGS; MEMBERS],
        "messages each member got"
    );
    handle.shutdown();
    thread.join().expect("thread").expect("clean stop");
}
