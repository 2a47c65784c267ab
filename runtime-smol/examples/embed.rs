//! Embedding the cove server in your own smol program.
//!
//! Run with `cargo run -p cove-smol --example embed`. The program below:
//!
//! 1. builds a smol executor served by one thread per core (or hand the server your own
//!    executor: anything implementing [`cove_smol::Spawn`], including a closure);
//! 2. binds a server with a store of its own choosing (an in-memory one here; the `cove`
//!    binary uses SQLite — implement [`cove_core::store::Store`] for yours);
//! 3. runs the server as one task among the program's others, talks to it with the
//!    cove-smol client, and
//! 4. shuts it down gracefully from a handle, the way a Ctrl-C handler would.

use std::time::Duration;

use cove_core::crypto::Identity;
use cove_core::hub::Reply;
use cove_core::store::MemoryStore;
use cove_core::wire::AuthMode;
use cove_smol::client::{ClientOptions, Event, connect};
use cove_smol::server::{Server, ServerOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    cove_smol::block_on_threads(threads, |ex| async move {
        // The server's long-term identity: generate it once and keep it (its public key
        // is what clients pin).
        let identity = Identity::generate(&mut cove_smol::os_rng());
        let mut options = ServerOptions::default();
        options.hub.room_capacity = 50; // every limit of the core and the hub is here
        let server = Server::bind(
            "127.0.0.1:0",
            identity,
            MemoryStore::new(),
            options,
            ex.clone(),
        )
        .await?;
        let addr = server.local_addr().ok_or("no address")?;
        let handle = server.handle();
        println!("serving on {addr}");
        // The server is just a future: spawn it next to the rest of the program.
        let running = ex.spawn(server.run());

        // The rest of the program: here, a client of our own server.
        let id = Identity::generate(&mut cove_smol::os_rng());
        let mut alice = connect(addr, ClientOptions::new("alice", AuthMode::Register, id)).await?;
        let req = alice.create_room("embedded").await?;
        let room = alice
            .events()
            .wait_for(Duration::from_secs(5), |e| match e {
                Event::Message(Reply::RoomJoined { req: r, room, .. }) if *r == req => Some(*room),
                _ => None,
            })
            .await
            .ok_or("no answer")?;
        alice
            .send_room(room, b"hello from inside the program")
            .await?;
        let echo = alice
            .events()
            .wait_for(Duration::from_secs(5), |e| match e {
                Event::Message(Reply::RoomMessage { body, .. }) => Some(body.clone()),
                _ => None,
            })
            .await
            .ok_or("no echo")?;
        println!(
            "room {room}: {} connection(s); alice heard {:?}",
            handle.connections(),
            String::from_utf8_lossy(&echo)
        );

        // Stop: no new connections, pending store writes committed, every client told.
        handle.shutdown();
        running.await?;
        let bye = alice
            .events()
            .wait_for(Duration::from_secs(5), |e| match e {
                Event::Closed { code, .. } => Some(*code),
                _ => None,
            })
            .await;
        println!("server stopped; alice was told: {bye:?}");
        Ok(())
    })
}
