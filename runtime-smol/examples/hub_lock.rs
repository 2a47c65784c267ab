//! Measurement (not a test) behind cove-smol's choice of a shared `std::sync::Mutex`
//! for the hub rather than a hub task: room traffic through an in-process server, then
//! the hub lock's figures next to the cost of one task round trip on the same executor.
//!
//! `cargo run --release -p cove-smol --example hub_lock [-- CLIENTS MESSAGES]`
//! (default 200 clients in rooms of 20, 100 messages each, so 20,000 room messages and
//! 400,000 deliveries).
//!
//! A hub task would cost at least one request/response round trip between tasks per
//! request: compare that with the mean time a hub step holds the lock, and with how
//! often a step finds the lock taken.

use std::time::{Duration, Instant};

use cove_core::crypto::Identity;
use cove_core::hub::Reply;
use cove_core::store::MemoryStore;
use cove_core::wire::AuthMode;
use cove_smol::client::{ClientOptions, Event, connect};
use cove_smol::server::{Server, ServerOptions};

const ROOM: usize = 20;

fn main() -> Result<(), String> {
    let mut argv = std::env::args().skip(1);
    let clients: usize = argv.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let messages: usize = argv.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let clients = clients.max(ROOM) / ROOM * ROOM;
    cove_smol::block_on_threads(2, |ex| async move {
        let mut options = ServerOptions::default();
        options.connection.rate_per_sec = 1_000_000;
        options.connection.rate_burst = 1_000_000;
        options.send_queue = 1 << 16;
        let identity = Identity::generate(&mut cove_smol::os_rng());
        let server = Server::bind(
            "127.0.0.1:0",
            identity,
            MemoryStore::new(),
            options,
            ex.clone(),
        )
        .await
        .map_err(|e| e.to_string())?;
        let addr = server.local_addr().ok_or("no address")?;
        let handle = server.handle();
        let running = ex.spawn(server.run());

        // Log everyone in, one room per ROOM clients.
        let mut conns = Vec::new();
        for i in 0..clients {
            let id = Identity::generate(&mut cove_smol::os_rng());
            let mut o = ClientOptions::new(&format!("u{i}"), AuthMode::Register, id);
            o.event_queue = 1 << 16;
            conns.push(connect(addr, o).await.map_err(|e| e.to_string())?);
        }
        let mut rooms = Vec::new();
        for group in conns.chunks_mut(ROOM) {
            let req = group[0]
                .create_room("bench")
                .await
                .map_err(|e| e.to_string())?;
            let room = group[0]
                .events()
                .wait_for(Duration::from_secs(10), |e| match e {
                    Event::Message(Reply::RoomJoined { req: r, room, .. }) if *r == req => {
                        Some(*room)
                    }
                    _ => None,
                })
                .await
                .ok_or("no RoomJoined")?;
            for c in &mut group[1..] {
                c.join_room(room).await.map_err(|e| e.to_string())?;
            }
            rooms.push(room);
        }
        // Let the joins settle (every member has seen every join).
        for (k, group) in conns.chunks_mut(ROOM).enumerate() {
            for c in group.iter_mut() {
                let req = c.list_users().await.map_err(|e| e.to_string())?;
                c.events()
                    .wait_for(Duration::from_secs(10), |e| match e {
                        Event::Message(Reply::UserList { req: r, .. }) if *r == req => Some(()),
                        _ => None,
                    })
                    .await
                    .ok_or(format!("group {k}: no user list"))?;
                c.events().drain();
            }
        }

        let before = handle.hub_lock_stats();
        let started = Instant::now();
        let tasks: Vec<_> = conns
            .into_iter()
            .enumerate()
            .map(|(i, mut c)| {
                let room = rooms[i / ROOM];
                ex.spawn(async move {
                    let body = vec![b'x'; 100];
                    for _ in 0..messages {
                        c.send_room(room, &body).await.map_err(|e| e.to_string())?;
                    }
                    let mut got = 0;
                    while got < messages * ROOM {
                        match c.events().recv_timeout(Duration::from_secs(30)).await {
                            Some(Event::Message(Reply::RoomMessage { .. })) => got += 1,
                            Some(_) => {}
                            None => {
                                return Err(format!("u{i}: {got} of {} messages", messages * ROOM));
                            }
                        }
                    }
                    Ok::<_, String>(c)
                })
            })
            .collect();
        let mut conns = Vec::new();
        for t in tasks {
            conns.push(t.await?);
        }
        let wall = started.elapsed();
        let after = handle.hub_lock_stats();
        let steps = after.acquisitions - before.acquisitions;
        let contended = after.contended - before.contended;
        let held = after.held - before.held;
        let deliveries = clients * messages * ROOM;
        println!(
            "{clients} clients, {} rooms of {ROOM}, {} room messages, {deliveries} deliveries in {:.2} s ({:.0} deliveries/s)",
            clients / ROOM,
            clients * messages,
            wall.as_secs_f64(),
            deliveries as f64 / wall.as_secs_f64()
        );
        println!(
            "hub lock: {steps} holds, {:.1} ms in all = {:.1}% of the wall time; {:.1} µs per hold, {:.2} µs per room message (fan-out of {ROOM} included); {contended} holds ({:.2}%) found it taken",
            held.as_secs_f64() * 1e3,
            held.as_secs_f64() * 100.0 / wall.as_secs_f64(),
            held.as_secs_f64() * 1e6 / steps.max(1) as f64,
            held.as_secs_f64() * 1e6 / (clients * messages) as f64,
            contended as f64 * 100.0 / steps.max(1) as f64
        );

        // The alternative's unavoidable cost: a request to a hub task and its answer.
        let (to_hub, hub_rx) = smol::channel::bounded::<u64>(1);
        let (to_conn, conn_rx) = smol::channel::bounded::<u64>(1);
        let hub = ex.spawn(async move {
            while let Ok(x) = hub_rx.recv().await {
                if to_conn.send(x).await.is_err() {
                    break;
                }
            }
        });
        const TRIPS: u64 = 100_000;
        let t = Instant::now();
        for i in 0..TRIPS {
            to_hub.send(i).await.map_err(|e| e.to_string())?;
            conn_rx.recv().await.map_err(|e| e.to_string())?;
        }
        let trip = t.elapsed();
        drop(to_hub);
        hub.await;
        println!(
            "a task round trip on the same executor: {:.2} µs (mean of {TRIPS})",
            trip.as_secs_f64() * 1e6 / TRIPS as f64
        );

        handle.shutdown();
        running.await.map_err(|e| e.to_string())?;
        drop(conns);
        Ok(())
    })
}
