//! One server and three clients purely in memory on the virtual clock: the whole
//! protocol end to end, and the connection-level answers to bad input.

mod common;

use common::{Seen, World};
use cove_core::hub::{HubConfig, Reply};
use cove_core::server::ServerConfig;
use cove_core::session::SessionConfig;
use cove_core::time::Duration;
use cove_core::wire::{AckStatus, AuthMode, ErrorCode, RoomId};

fn rotating() -> ServerConfig {
    ServerConfig {
        session: SessionConfig {
            rotate_after_records: 7,
            ..SessionConfig::default()
        },
        ..ServerConfig::default()
    }
}

fn joined_room(world: &World, p: usize) -> RoomId {
    world
        .replies(p)
        .iter()
        .find_map(|r| match r {
            Reply::RoomJoined { room, .. } => Some(*room),
            _ => None,
        })
        .expect("joined a room")
}

#[test]
fn three_clients_chat_in_one_order_rotate_keys_and_get_offline_dms_once() {
    let mut w = World::new(rotating(), HubConfig::default());
    let (alice, bob, carol) = (w.add_peer("alice"), w.add_peer("bob"), w.add_peer("carol"));
    for p in [alice, bob, carol] {
        w.connect(p, AuthMode::Register);
        let key = w.server_identity.public().ed25519;
        assert_eq!(
            w.peers[p].seen[0],
            Seen::LoggedIn {
                server_key: key,
                mode: AuthMode::Register,
                pending: 0
            },
            "one event says the server proved its key and accepted the login"
        );
    }

    let now = w.now;
    w.client(alice).create_room(now, "general").unwrap();
    w.run();
    let room = joined_room(&w, alice);
    for p in [bob, carol] {
        w.client(p).join_room(now, room).unwrap();
    }
    w.run();
    assert_eq!(w.hub().room_members(room).unwrap().count(), 3);

    // 100 messages from all three, interleaved, with time passing between some.
    for i in 0..100u32 {
        let from = [alice, bob, carol][(i % 3) as usize];
        let now = w.now;
        if let Err(e) = w
            .client(from)
            .send_room(now, room, format!("m{i}").as_bytes())
        {
            panic!(
                "{e:?} at {i}: {:?} {:?}",
                w.closed(from),
                w.peers[from].client.as_ref().unwrap().state()
            );
        }
        if i % 10 == 0 {
            w.run();
            w.advance(Duration::from_millis(5));
        }
    }
    w.run();
    let order = |w: &World, p: usize| -> Vec<(u64, Vec<u8>)> {
        w.replies(p)
            .into_iter()
            .filter_map(|r| match r {
                Reply::RoomMessage { seq, body, .. } => Some((seq, body.to_vec())),
                _ => None,
            })
            .collect()
    };
    let a = order(&w, alice);
    assert_eq!(a.len(), 100);
    assert!(
        a.windows(2).all(|x| x[0].0 < x[1].0),
        "sequence strictly increases"
    );
    assert_eq!(order(&w, bob), a, "bob sees alice's order");
    assert_eq!(order(&w, carol), a, "carol sees alice's order");
    let mut bodies: Vec<_> = a
        .iter()
        .map(|(_, b)| String::from_utf8(b.clone()).unwrap())
        .collect();
    bodies.sort();
    let mut expected: Vec<_> = (0..100).map(|i| format!("m{i}")).collect();
    expected.sort();
    assert_eq!(bodies, expected, "nothing lost, nothing duplicated");
    for p in [alice, bob, carol] {
        let s = w.peers[p].client.as_ref().unwrap().session().unwrap();
        assert!(
            s.stats().key_updates_sent > 0,
            "peer {p} rotated its sending key"
        );
        assert!(
            s.stats().key_updates_received > 0,
            "peer {p} followed the server's rotation"
        );
    }

    // Carol goes offline; alice DMs her; carol logs back in and gets it exactly once.
    let now = w.now;
    w.client(carol).logout(now).unwrap();
    w.run();
    assert_eq!(w.closed(carol), Some(ErrorCode::ConnectionTerminated));
    w.drop_connection(carol);
    w.take_seen(alice);
    let now = w.now;
    w.client(alice)
        .send_dm(now, "carol", b"are you there?")
        .unwrap();
    w.run();
    assert!(w.replies(alice).iter().any(|r| matches!(
        r,
        Reply::MessageAck {
            status: AckStatus::Queued,
            ..
        }
    )));
    assert_eq!(w.hub().queued_for("carol"), 1);

    w.take_seen(carol);
    w.connect(carol, AuthMode::Login);
    w.advance(Duration::from_secs(1));
    let dms: Vec<_> = w
        .replies(carol)
        .into_iter()
        .filter_map(|r| match r {
            Reply::IncomingDm { from, body, .. } => Some((from.to_string(), body.to_vec())),
            _ => None,
        })
        .collect();
    assert_eq!(dms, [("alice".to_string(), b"are you there?".to_vec())]);
    assert_eq!(w.hub().queued_for("carol"), 0, "carol's ack deleted it");
    assert!(
        w.store.records().queued.is_empty(),
        "and the store forgot it"
    );

    // Carol reconnects again: nothing is shown twice.
    w.drop_connection(carol);
    w.take_seen(carol);
    w.connect(carol, AuthMode::Login);
    w.run();
    assert!(
        !w.replies(carol)
            .iter()
            .any(|r| matches!(r, Reply::IncomingDm { .. }))
    );
}

#[test]
fn login_with_the_wrong_key_is_refused_and_closed() {
    let mut w = World::new(ServerConfig::default(), HubConfig::default());
    let real = w.add_peer("dave");
    w.connect(real, AuthMode::Register);
    let impostor = w.add_peer("dave");
    w.connect(impostor, AuthMode::Login);
    assert!(w.peers[impostor].seen.contains(&Seen::Closed {
        code: ErrorCode::AuthFailed,
        by_peer: true
    }));
    let again = w.add_peer("dave");
    w.connect(again, AuthMode::Register);
    assert_eq!(w.closed(again), Some(ErrorCode::UserExists));
}

#[test]
fn a_tampered_record_closes_the_connection() {
    let mut w = World::new(ServerConfig::default(), HubConfig::default());
    let p = w.add_peer("erin");
    w.connect(p, AuthMode::Register);
    let now = w.now;
    w.client(p).list_rooms(now).unwrap();
    let mut bytes = w.client(p).pending_transmit().to_vec();
    let n = bytes.len();
    w.client(p).advance_transmit(n);
    bytes[n - 3] ^= 0x40;
    let id = w.peers[p].conn.unwrap();
    let conn = w.conns.get_mut(&id).unwrap();
    assert_eq!(conn.handle_input(now, &mut bytes), n);
    assert_eq!(conn.close_code(), Some(ErrorCode::DecryptFailed));
}

#[test]
fn rate_limited_requests_get_an_error_and_persistent_abuse_is_cut_off() {
    let config = ServerConfig {
        rate_per_sec: 1,
        rate_burst: 5,
        rate_strikes: 20,
        ..ServerConfig::default()
    };
    let mut w = World::new(config, HubConfig::default());
    let p = w.add_peer("fred");
    w.connect(p, AuthMode::Register);
    let now = w.now;
    for _ in 0..10 {
        w.client(p).list_rooms(now).unwrap();
    }
    w.run();
    let errs = w.errors(p);
    assert_eq!(
        errs.iter()
            .filter(|c| **c == ErrorCode::RateLimited)
            .count(),
        5
    );
    assert_eq!(w.closed(p), None, "a burst is refused but not punished");
    for _ in 0..20 {
        w.client(p).list_rooms(now).unwrap();
    }
    w.run();
    assert_eq!(w.closed(p), Some(ErrorCode::RateLimited));
}

#[test]
fn a_silent_connection_misses_the_handshake_deadline() {
    let mut w = World::new(ServerConfig::default(), HubConfig::default());
    let p = w.add_peer("gina");
    w.connect(p, AuthMode::Register);
    // Open a raw server connection that never speaks.
    let id = cove_core::hub::ConnId(999);
    let conn = cove_core::server::ServerConnection::new(
        w.now,
        w.server_config.clone(),
        &cove_core::crypto::RUST_CRYPTO,
        &w.server_identity,
        &mut w.rng,
    );
    w.conns.insert(id, conn);
    w.advance(Duration::from_secs(11));
    assert_eq!(w.conns[&id].close_code(), Some(ErrorCode::HandshakeTimeout));
    assert!(w.closed(p).is_none(), "the idle-but-pinging client stays");
}

#[test]
fn an_idle_client_is_pinged_and_a_dead_one_times_out() {
    let mut w = World::new(ServerConfig::default(), HubConfig::default());
    let (live, dead) = (w.add_peer("hana"), w.add_peer("ivan"));
    w.connect(live, AuthMode::Register);
    w.connect(dead, AuthMode::Register);
    // The dead client stops processing anything: its client state machine is gone.
    w.peers[dead].client = None;
    w.advance(Duration::from_secs(200));
    assert!(w.closed(live).is_none(), "pings kept the live one");
    assert_eq!(
        w.hub().user_of(w.peers[dead].conn.unwrap()),
        None,
        "the dead one went offline"
    );
}

#[test]
fn garbage_and_oversize_frames_close_with_a_reason() {
    let mut w = World::new(ServerConfig::default(), HubConfig::default());
    let cases: [(&[u8], ErrorCode); 3] = [
        (&[0xff, 0xff, 0xff, 0xff, 0x17], ErrorCode::FrameTooLarge),
        (&[0, 0, 0, 1, 0x99, 0], ErrorCode::InvalidFormat),
        (&[0, 0, 0, 2, 0x17, 1, 2], ErrorCode::InvalidFormat),
    ];
    for (i, (bytes, code)) in cases.into_iter().enumerate() {
        let mut conn = cove_core::server::ServerConnection::new(
            w.now,
            w.server_config.clone(),
            &cove_core::crypto::RUST_CRYPTO,
            &w.server_identity,
            &mut w.rng,
        );
        let mut input = bytes.to_vec();
        conn.handle_input(w.now, &mut input);
        assert_eq!(conn.close_code(), Some(code), "case {i}");
        assert!(
            !conn.pending_transmit().is_empty(),
            "case {i}: an alert tells the peer why"
        );
    }
}

#[test]
fn handshake_frames_out_of_order_or_replayed_close_the_connection() {
    use cove_core::crypto::RUST_CRYPTO;
    use cove_core::server::ServerConnection;
    let mut w = World::new(ServerConfig::default(), HubConfig::default());
    let p = w.add_peer("jane");
    w.connect(p, AuthMode::Register);
    // Capture a genuine SYN from a fresh client.
    let q = w.add_peer("kim");
    let config = w.client_config.clone();
    let client = cove_core::client::Client::<4096>::new(
        w.now,
        config,
        &RUST_CRYPTO,
        &w.peers[q].identity,
        "kim",
        &mut w.rng,
    )
    .unwrap();
    let syn = client.pending_transmit().to_vec();
    let fresh = |w: &mut World| {
        ServerConnection::new(
            w.now,
            w.server_config.clone(),
            &RUST_CRYPTO,
            &w.server_identity,
            &mut w.rng,
        )
    };

    // An ACK-typed frame before any SYN.
    let mut conn = fresh(&mut w);
    let mut ack_first = syn.clone();
    ack_first[4] = 0x03;
    conn.handle_input(w.now, &mut ack_first);
    assert_eq!(conn.close_code(), Some(ErrorCode::InvalidFormat));

    // The same SYN twice: the replay is refused.
    let mut conn = fresh(&mut w);
    let mut twice = [syn.clone(), syn.clone()].concat();
    conn.handle_input(w.now, &mut twice);
    assert_eq!(conn.close_code(), Some(ErrorCode::InvalidFormat));

    // A SYN replayed into an established session.
    let id = w.peers[p].conn.unwrap();
    let mut replay = syn.clone();
    let now = w.now;
    w.conns.get_mut(&id).unwrap().handle_input(now, &mut replay);
    assert_eq!(w.conns[&id].close_code(), Some(ErrorCode::InvalidFormat));
}

#[test]
fn the_server_may_restrict_the_suites() {
    use cove_core::crypto::{Suite, SuiteSet};
    let config = ServerConfig {
        suites: SuiteSet::only(Suite::AesGcm),
        ..ServerConfig::default()
    };
    let mut w = World::new(config, HubConfig::default());
    w.client_config.suite = Suite::ChaChaPoly;
    let p = w.add_peer("lena");
    w.connect(p, AuthMode::Register);
    assert_eq!(w.closed(p), Some(ErrorCode::UnsupportedSuite));
    w.client_config.suite = Suite::AesGcm;
    let q = w.add_peer("lena");
    w.connect(q, AuthMode::Register);
    assert!(
        w.peers[q]
            .seen
            .iter()
            .any(|s| matches!(s, Seen::LoggedIn { .. }))
    );
}

#[test]
fn a_burst_of_output_is_not_kept_once_written() {
    let mut w = World::new(ServerConfig::default(), HubConfig::default());
    let p = w.add_peer("mona");
    w.connect(p, AuthMode::Register);
    let id = w.peers[p].conn.unwrap();
    let conn = w.conns.get_mut(&id).unwrap();
    let now = w.now;
    for _ in 0..200 {
        conn.handle_reply(
            now,
            &Reply::RoomMessage {
                room: RoomId(*b"ABCDEF"),
                seq: 1,
                from: "x".into(),
                timestamp: 0,
                body: std::sync::Arc::from(&[0u8; 1000][..]),
            },
        );
    }
    assert!(conn.pending_transmit().len() > 200_000);
    // While output waits, the buffers count: the transmit queue and the encoding scratch.
    let held = conn.buffer_bytes();
    assert!(
        held > conn.transmit_capacity(),
        "the scratch counts too: {held}"
    );
    assert!(held < 2 * conn.transmit_capacity(), "{held}");
    let n = conn.pending_transmit().len();
    conn.advance_transmit(n);
    assert_eq!(
        conn.transmit_capacity(),
        0,
        "an idle connection keeps no buffer"
    );
    assert_eq!(conn.buffer_bytes(), 0, "nor scratch, nor event queue");
    // Written in part: what is left stays, and goes once written.
    conn.handle_reply(
        now,
        &Reply::RoomMessage {
            room: RoomId(*b"ABCDEF"),
            seq: 2,
            from: "x".into(),
            timestamp: 0,
            body: std::sync::Arc::from(&[0u8; 100][..]),
        },
    );
    let n = conn.pending_transmit().len();
    conn.advance_transmit(n - 1);
    assert_eq!(conn.pending_transmit().len(), 1);
    assert!(conn.transmit_capacity() >= 1);
    conn.advance_transmit(1);
    assert_eq!(conn.transmit_capacity(), 0);
    assert_eq!(conn.buffer_bytes(), 0);
}

/// Found by the simulator: during the handshake the client asked to be woken at its
/// keepalive time, which `handle_timeout` then ignored, so an adapter spun.
#[test]
fn a_client_stuck_in_the_handshake_never_asks_to_be_woken_for_nothing() {
    use cove_core::client::{Client, ClientConfig, ClientState};
    use cove_core::crypto::{Identity, RUST_CRYPTO, Suite};
    let mut config = ClientConfig::new(Suite::AesGcm, AuthMode::Register);
    config.ping_interval = Duration::from_secs(1);
    config.handshake_timeout = Duration::from_secs(10);
    let mut rng = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::from_seed([1; 32]);
    let id = Identity::generate(&mut rng);
    let start = cove_core::Instant(0);
    let mut client =
        Client::<4096>::new(start, config, &RUST_CRYPTO, &id, "nina", &mut rng).unwrap();
    let mut now = start;
    let mut wakeups = 0;
    while let Some(t) = client.poll_timeout() {
        assert!(
            t > now || wakeups == 0,
            "asked to wake at {t:?}, already {now:?}"
        );
        now = t;
        client.handle_timeout(now);
        wakeups += 1;
        assert!(wakeups < 10, "too many wake-ups");
    }
    assert_eq!(client.state(), ClientState::Closed);
    assert_eq!(client.close_code(), Some(ErrorCode::HandshakeTimeout));
    assert_eq!(now, cove_core::Instant(10_000_000));
}

#[test]
fn an_auth_response_for_the_other_mode_is_refused() {
    use cove_core::client::{Client, ClientConfig, ClientEvent};
    use cove_core::crypto::{Identity, RUST_CRYPTO, Suite, SuiteSet};
    use cove_core::handshake::ServerHandshake;
    use cove_core::session::Session;
    use cove_core::wire::{FrameType, HEADER_LEN, ServerMsg, decode_frame, encode_header};
    let mut rng = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::from_seed([2; 32]);
    let server_id = Identity::generate(&mut rng);
    let client_id = Identity::generate(&mut rng);
    let now = cove_core::Instant(0);
    let config = ClientConfig::new(Suite::AesGcm, AuthMode::Login);
    let mut client =
        Client::<4096>::new(now, config, &RUST_CRYPTO, &client_id, "omar", &mut rng).unwrap();
    let mut server = ServerHandshake::new(&RUST_CRYPTO, &server_id, SuiteSet::ALL, &mut rng);
    let syn = client.pending_transmit().to_vec();
    client.advance_transmit(syn.len());
    server.read_syn(&syn[HEADER_LEN..]).unwrap();
    let mut out = [0u8; 512];
    let n = server.write_syn_ack(&mut out).unwrap();
    let mut frame = encode_header(FrameType::SynAck, n as u32).to_vec();
    frame.extend_from_slice(&out[..n]);
    let input = client.handle_input(now, &mut frame);
    assert!(input.consumed > 0 && input.event.is_none());
    assert_eq!(client.server_key(), Some(server_id.public().ed25519));
    let mut ack = client.pending_transmit().to_vec();
    let (frame, _) = decode_frame(&ack, 65_536).unwrap().unwrap();
    let len = frame.payload.len();
    let (_, mut session): (_, Session) =
        server.read_ack(&ack[HEADER_LEN..HEADER_LEN + len]).unwrap();
    ack.clear();
    // The server answers a login as if it were a registration.
    let msg = ServerMsg::AuthResponse {
        mode: AuthMode::Register,
        result: Ok(0),
    };
    let mut plain = [0u8; 16];
    let m = msg.encode(&mut plain).unwrap();
    let mut record = [0u8; 128];
    let r = session.seal_record(now, &plain[..m], &mut record).unwrap();
    let input = client.handle_input(now, &mut record[..r]);
    assert!(matches!(
        input.event,
        Some(ClientEvent::Closed {
            code: ErrorCode::InvalidFormat,
            ..
        })
    ));
}
