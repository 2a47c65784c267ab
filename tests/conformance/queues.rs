//! Conformance tests for the outbound bound per connection: it is counted in bytes
//! (`send_queue_bytes`, 4 MiB by default), replies queued and sealed alike, so a member who
//! stops reading a room of large messages is cut off long before the reply count bound.

use std::time::Instant;

use cove::config::Limits;
use cove_core::crypto::Identity;
use cove_core::hub::Reply;
use cove_core::wire::{AuthMode, ErrorCode, Status};
use cove_std::client::{ClientOptions, Event};
use cove_std::server::ServerOptions;

use super::*;

/// A member of a room of 3 who never reads is cut off once about 4 MiB wait for him (60 KB
/// messages: well before the default bound of 1024 replies, ~60 MiB), and the others
/// receive every message, in order.
pub fn non_reader_of_large_messages_is_cut_off_by_bytes<R: Runtime>() {
    const BODY: usize = 60_000;
    const BATCH: usize = 8;
    const TOTAL: usize = 200;
    // 4 MiB queued on the server, plus what the sockets' kernel buffers on both sides
    // absorb (several MiB on loopback), is far below this; 1024 queued replies are not.
    const CUT_BY: usize = 400;
    let limits = Limits {
        // The room window alone would stop Bob's backlog at 64 messages (3.8 MB): this
        // test is about the byte bound.
        room_window: Some(1_000_000),
        rate: Some(1_000_000),
        rate_burst: Some(1_000_000),
        ..Limits::default()
    };
    let s = TestServer::start::<R>(limits);
    let (mut alice, _) = s.register("alice");
    let (mut carol, _) = s.register("carol");
    let id = Identity::generate(&mut cove_std::os_rng());
    let mut opts = ClientOptions::new("bob", AuthMode::Register, id);
    // Bob's program takes one event and then never another: his reader thread blocks, so
    // his socket is not read and the server's queue for him grows.
    opts.event_queue = 1;
    let mut bob = s.connect_with(opts).expect("bob");
    let room = create_room(&mut alice, "large");
    join(&mut carol, room);
    join(&mut bob, room);
    sync(&mut carol);

    let body = vec![b'x'; BODY];
    let started = Instant::now();
    let mut sent = 0usize;
    let mut cut_after = None;
    let mut carol_seqs = Vec::new();
    while sent < TOTAL || cut_after.is_none() {
        assert!(started.elapsed() < T * 3, "too slow: {sent} sent");
        assert!(
            sent < CUT_BY,
            "bob was not cut off after {sent} messages of {BODY} bytes"
        );
        for _ in 0..BATCH {
            alice.send_room(room, &body).expect("send");
        }
        sent += BATCH;
        // Alice waits for her own echoes so she and Carol keep up with the traffic.
        let mut echoes = 0;
        while echoes < BATCH {
            let ev = wait(
                &mut alice,
                "alice's echo or bob going offline",
                |e| match e {
                    Event::Message(Reply::RoomMessage { from, body, .. }) if &**from == "alice" => {
                        assert_eq!(body.len(), BODY);
                        Some(false)
                    }
                    Event::Message(Reply::StatusUpdate {
                        name,
                        status: Status::Offline,
                    }) if &**name == "bob" => Some(true),
                    _ => None,
                },
            );
            if ev {
                cut_after.get_or_insert(sent);
            } else {
                echoes += 1;
            }
        }
        while let Some(e) = carol.events().try_recv() {
            if let Event::Message(Reply::RoomMessage { seq, body, .. }) = e {
                assert_eq!(body.len(), BODY);
                carol_seqs.push(seq);
            }
        }
    }
    while carol_seqs.len() < sent {
        let seq = wait(&mut carol, "carol's messages", |e| match e {
            Event::Message(Reply::RoomMessage { seq, .. }) => Some(*seq),
            _ => None,
        });
        carol_seqs.push(seq);
    }
    assert_eq!(carol_seqs.len(), sent, "carol got every message once");
    assert!(carol_seqs.windows(2).all(|w| w[1] == w[0] + 1), "no gaps");
    sync(&mut carol);
    // The server's memory for him stayed within the documented bound: what it queued for
    // any one connection never passed `send_queue_bytes` (4 MiB), though 60 KB messages
    // kept coming for him long after.
    let bound = ServerOptions::default().connection.send_queue_bytes;
    let peak = s.peak_outbound_bytes();
    assert!(
        peak <= bound,
        "{peak} bytes queued for one connection, bound {bound}"
    );
    assert!(
        peak > bound / 2,
        "megabytes were queued for him before the cut-off ({peak} of {bound})"
    );
    // Bob, once he reads again, finds his connection closed.
    let (code, _) = closed(&mut bob);
    assert!(
        matches!(
            code,
            ErrorCode::SendQueueExceeded | ErrorCode::ConnectionTerminated
        ),
        "{code:?}"
    );
}
