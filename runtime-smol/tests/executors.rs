//! The cove-smol client and server under two executors with their own TCP streams:
//! smol's (`Async<TcpStream>`, the default) and async-std's (`async_std::net::TcpStream`
//! and `async_std::task::spawn`).
//!
//! async-std is deprecated upstream in favour of smol; it is a dev-dependency only, kept
//! to prove that the adapter is written against the `futures-io` traits and a pluggable
//! [`Spawn`], not against smol. (async-std itself runs on async-io, so the adapter's
//! async-io timers are at home there; under an executor without async-io's reactor they
//! still work, driven by async-io's fallback thread.)

use std::net::SocketAddr;
use std::time::Duration;

use cove_core::crypto::Identity;
use cove_core::hub::Reply;
use cove_core::store::MemoryStore;
use cove_core::wire::{AckStatus, AuthMode, ErrorCode};
use cove_smol::client::{ClientOptions, ConnectError, Connection, Event, connect_stream};
use cove_smol::server::{Server, ServerHandle, ServerOptions};
use cove_smol::{Spawn, Task};
use futures_lite::{AsyncRead, AsyncWrite};

/// Longest any one expected thing may take.
const T: Duration = Duration::from_secs(20);

/// Waits for the first event `f` picks, or panics naming `what`.
async fn wait<X>(c: &mut Connection, what: &str, f: impl FnMut(&Event) -> Option<X>) -> X {
    match c.events().wait_for(T, f).await {
        Some(x) => x,
        None => panic!(
            "timed out waiting for {what}; other events: {:?}",
            c.events().drain()
        ),
    }
}

/// Register alice and bob, a room message both see in the same order, a live and an
/// offline DM, then a graceful shutdown that both clients hear about.
async fn scenario<S, F>(
    handle: ServerHandle,
    key: [u8; 32],
    spawner: impl Spawn,
    dial: impl Fn() -> F,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: std::future::Future<Output = (S, SocketAddr)>,
{
    let connect = async |name: &str, mode, id: &Identity| -> Result<Connection, ConnectError> {
        let (stream, peer) = dial().await;
        let mut o = ClientOptions::new(name, mode, id.clone()).pin_server_key(key);
        o.connect_timeout = T;
        connect_stream(stream, Some(peer), o, &spawner).await
    };
    let alice_id = Identity::generate(&mut cove_smol::os_rng());
    let bob_id = Identity::generate(&mut cove_smol::os_rng());
    let mut alice = connect("alice", AuthMode::Register, &alice_id)
        .await
        .expect("alice");
    let mut bob = connect("bob", AuthMode::Register, &bob_id)
        .await
        .expect("bob");
    assert_eq!(alice.welcome().server_key, key);
    assert_eq!(alice.welcome().mode, AuthMode::Register);

    let req = alice.create_room("lobby").await.expect("create");
    let room = wait(&mut alice, "RoomJoined", |e| match e {
        Event::Message(Reply::RoomJoined { req: r, room, .. }) if *r == req => Some(*room),
        _ => None,
    })
    .await;
    let req = bob.join_room(room).await.expect("join");
    wait(&mut bob, "bob's RoomJoined", |e| match e {
        Event::Message(Reply::RoomJoined { req: r, .. }) if *r == req => Some(()),
        _ => None,
    })
    .await;
    for i in 0..20 {
        alice
            .send_room(room, format!("a{i}").as_bytes())
            .await
            .expect("send");
        bob.send_room(room, format!("b{i}").as_bytes())
            .await
            .expect("send");
    }
    let mut seen = Vec::new();
    for c in [&mut alice, &mut bob] {
        let mut got = Vec::new();
        while got.len() < 40 {
            got.push(
                wait(c, "room messages", |e| match e {
                    Event::Message(Reply::RoomMessage { seq, body, .. }) => {
                        Some((*seq, body.to_vec()))
                    }
                    _ => None,
                })
                .await,
            );
        }
        assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "per-room order");
        seen.push(got);
    }
    assert_eq!(seen[0], seen[1], "both members see one order");

    let req = alice.send_dm("bob", b"hi bob").await.expect("dm");
    let status = wait(&mut alice, "the DM's ack", |e| match e {
        Event::Message(Reply::MessageAck { req: r, status, .. }) if *r == req => Some(*status),
        _ => None,
    })
    .await;
    assert_eq!(status, AckStatus::Delivered);
    let (msg_id, body) = wait(&mut bob, "the DM", |e| match e {
        Event::Message(Reply::IncomingDm { msg_id, body, .. }) => Some((*msg_id, body.to_vec())),
        _ => None,
    })
    .await;
    assert_eq!(body, b"hi bob");
    // Shown: acknowledge it, so the server forgets it (an unacknowledged DM would be
    // queued again for bob's next connection).
    bob.ack_dm(msg_id).await.expect("ack");

    // Bob logs out; a DM for him is queued and delivered when he is back.
    bob.logout().await.expect("logout");
    wait(&mut bob, "bob's close", |e| {
        matches!(e, Event::Closed { .. }).then_some(())
    })
    .await;
    drop(bob);
    let req = alice.send_dm("bob", b"later").await.expect("dm");
    let status = wait(&mut alice, "the DM's ack", |e| match e {
        Event::Message(Reply::MessageAck { req: r, status, .. }) if *r == req => Some(*status),
        _ => None,
    })
    .await;
    assert_eq!(status, AckStatus::Queued);
    let mut bob = connect("bob", AuthMode::Login, &bob_id)
        .await
        .expect("bob again");
    assert_eq!(bob.welcome().pending, 1);
    let body = wait(&mut bob, "the queued DM", |e| match e {
        Event::Message(Reply::IncomingDm { body, .. }) => Some(body.to_vec()),
        _ => None,
    })
    .await;
    assert_eq!(body, b"later");

    // A graceful shutdown reaches both.
    handle.shutdown();
    for c in [&mut alice, &mut bob] {
        let code = wait(c, "the goodbye", |e| match e {
            Event::Closed { code, .. } => Some(*code),
            _ => None,
        })
        .await;
        assert_eq!(code, ErrorCode::ShuttingDown);
    }
}

#[test]
fn client_and_server_under_async_std() {
    let spawn = |t: Task| {
        async_std::task::spawn(t);
    };
    async_std::task::block_on(async {
        let identity = Identity::generate(&mut cove_smol::os_rng());
        let key = identity.public().ed25519;
        let server = Server::new(
            identity,
            MemoryStore::new(),
            ServerOptions::default(),
            spawn,
        )
        .await
        .expect("server");
        let handle = server.handle();
        let listener = async_std::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let running = async_std::task::spawn(async move {
            let incoming = futures_lite::StreamExt::map(listener.incoming(), |s| {
                s.map(|s| {
                    let _ = s.set_nodelay(true);
                    let peer = s.peer_addr().ok();
                    (s, peer)
                })
            });
            server.run_with(incoming).await
        });
        let dial = || async move {
            let s = async_std::net::TcpStream::connect(addr)
                .await
                .expect("connect");
            s.set_nodelay(true).expect("nodelay");
            (s, addr)
        };
        scenario(handle, key, spawn, dial).await;
        async_std::future::timeout(T, running)
            .await
            .expect("the server stopped in time")
            .expect("the server stopped cleanly");
    });
}

#[test]
fn client_and_server_under_smol() {
    cove_smol::block_on_threads(2, |ex| async move {
        let identity = Identity::generate(&mut cove_smol::os_rng());
        let key = identity.public().ed25519;
        let server = Server::bind(
            "127.0.0.1:0",
            identity,
            MemoryStore::new(),
            ServerOptions::default(),
            ex.clone(),
        )
        .await
        .expect("server");
        let handle = server.handle();
        let addr = server.local_addr().expect("addr");
        let running = smol::Executor::spawn(&ex, server.run());
        let dial = || async move {
            let s = smol::Async::<std::net::TcpStream>::connect(addr)
                .await
                .expect("connect");
            s.get_ref().set_nodelay(true).expect("nodelay");
            (s, addr)
        };
        scenario(handle, key, ex.clone(), dial).await;
        futures_lite::future::or(async { Some(running.await) }, async {
            smol::Timer::after(T).await;
            None
        })
        .await
        .expect("the server stopped in time")
        .expect("the server stopped cleanly");
    });
}
