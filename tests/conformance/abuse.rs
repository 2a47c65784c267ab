//! Fair shares: one address cannot keep another out with idle sockets, registrations are
//! budgeted per address, and an account's request budget survives its reconnects.

use std::io::Read;
use std::net::{Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

use cove::config::Limits;
use cove_core::crypto::Identity;
use cove_core::hub::Reply;
use cove_core::wire::{Alert, AuthMode, ErrorCode, FrameType, decode_frame};
use cove_std::client::ConnectError;

use super::{CliServer, Runtime, TempDir, TestServer, cli_connect, reply};

/// The code of the alert a refused raw connection gets within `wait`, or `None` when the
/// server keeps it open (it was admitted).
fn refused_with(s: &mut TcpStream, wait: Duration) -> Option<ErrorCode> {
    s.set_read_timeout(Some(wait)).expect("timeout");
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).ok()?;
    let (frame, _) = decode_frame(&buf[..n], u32::MAX).ok()??;
    (frame.typ == FrameType::Alert).then(|| Alert::decode(frame.payload).ok().map(|a| a.code))?
}

/// 30 idle sockets from 127.0.0.1 hold only that address's share of the handshake slots;
/// a user connecting over IPv6 (`::1`, another address) logs in at once, while another
/// login from the flooding address is refused with a reason.
pub fn idle_sockets_from_one_address_do_not_keep_others_out<R: Runtime>() {
    let dir = TempDir::new("abuse-idle");
    let data = dir.path().join("server");
    let extra = ["--max-unauthenticated-per-address", "4"];
    let server = CliServer::start_with(&data, R::CLI_RUNTIME, "[::]:0", &extra);
    let port = server.addr.port();
    let v4: SocketAddr = ([127, 0, 0, 1], port).into();
    let v6: SocketAddr = (Ipv6Addr::LOCALHOST, port).into();
    let mut idle: Vec<TcpStream> = (0..30)
        .map(|_| TcpStream::connect(v4).expect("connect"))
        .collect();
    let codes: Vec<Option<ErrorCode>> = idle
        .iter_mut()
        .map(|s| refused_with(s, Duration::from_millis(500)))
        .collect();
    let held = codes.iter().filter(|c| c.is_none()).count();
    assert_eq!(held, 4, "{codes:?}");
    assert!(
        codes
            .iter()
            .flatten()
            .all(|c| *c == ErrorCode::LimitReached),
        "{codes:?}"
    );
    let carol_id = Identity::generate(&mut cove_std::os_rng());
    let carol = cli_connect(v6, "carol", AuthMode::Register, &carol_id, None);
    assert_eq!(carol.welcome().mode, AuthMode::Register);
    let key = Some(carol.welcome().server_key);
    let dave_id = Identity::generate(&mut cove_std::os_rng());
    let mut options =
        cove_std::client::ClientOptions::new("dave", AuthMode::Register, dave_id.clone());
    options.config.server_key = key;
    options.connect_timeout = super::T;
    match cove_std::client::connect(v4, options) {
        Err(ConnectError::Closed { code, .. }) => assert_eq!(code, ErrorCode::LimitReached),
        other => panic!("the flooding address got another slot: {:?}", other.err()),
    }
    drop(idle);
}

/// Registrations are budgeted per source address: past the burst they are refused with
/// `RateLimited`, while logins from the same address still work.
pub fn registration_from_one_address_is_throttled<R: Runtime>() {
    let limits = Limits {
        registration_burst: Some(2),
        registration_interval_secs: Some(3600),
        ..Limits::default()
    };
    let s = TestServer::start::<R>(limits);
    let (_a, a_id) = s.register("ann");
    let (_b, _) = s.register("ben");
    let id = Identity::generate(&mut cove_std::os_rng());
    match s.try_connect("cat", AuthMode::Register, &id) {
        Err(ConnectError::Closed { code, .. }) => assert_eq!(code, ErrorCode::RateLimited),
        other => panic!("a third registration went through: {:?}", other.err()),
    }
    drop(_a);
    let again = s.login("ann", &a_id);
    assert_eq!(again.welcome().mode, AuthMode::Login);
}

/// An account that reconnects does not get a fresh request budget: with 1 request a
/// second and a burst of 5, a flood served 5; right after a reconnect at most a couple
/// more are served, not another 5.
pub fn a_reconnecting_flooder_stays_at_the_accounts_rate<R: Runtime>() {
    let limits = Limits {
        rate: Some(1),
        rate_burst: Some(5),
        rate_strikes: Some(1000),
        ..Limits::default()
    };
    let s = TestServer::start::<R>(limits);
    let (mut f, id) = s.register("flood");
    let served = |c: &mut cove_std::client::Connection| {
        let reqs: Vec<u32> = (0..10)
            .map(|_| c.handle().list_users().expect("send"))
            .collect();
        reqs.into_iter()
            .filter(|r| matches!(reply(c, *r), Reply::UserList { .. }))
            .count()
    };
    let first = served(&mut f);
    assert!((5..=6).contains(&first), "{first} served of the first 10");
    drop(f);
    let mut f = s.login("flood", &id);
    let second = served(&mut f);
    assert!(second <= 2, "{second} served right after a reconnect");
}

/// The largest body the protocol allows reaches a default client as a room message and
/// as a queued DM — which its recipient can then receive and acknowledge, so no message
/// can lock an account out — and one byte more is refused with `BodyTooLarge`.
pub fn maximum_size_bodies_are_delivered_and_one_byte_more_is_refused<R: Runtime>() {
    use cove_core::wire::{AckStatus, MAX_BODY_LEN, MAX_NAME_LEN};
    use cove_std::client::Event;
    let s = TestServer::start::<R>(Limits::default());
    // The longest names make the relayed headers as long as they get.
    let (a_name, b_name) = ("a".repeat(MAX_NAME_LEN), "b".repeat(MAX_NAME_LEN));
    let (mut alice, _) = s.register(&a_name);
    let (mut bob, bob_id) = s.register(&b_name);
    let room = super::create_room(&mut alice, "big");
    super::join(&mut bob, room);
    let max = vec![0x42u8; MAX_BODY_LEN];
    let over = vec![0x42u8; MAX_BODY_LEN + 1];

    alice
        .handle()
        .send_room(room, &max)
        .expect("send the largest");
    let got = super::wait(&mut bob, "the largest room message", |e| match e {
        Event::Message(Reply::RoomMessage { body, .. }) => Some(body.len()),
        _ => None,
    });
    assert_eq!(got, MAX_BODY_LEN);
    let req = alice
        .handle()
        .send_room(room, &over)
        .expect("send one byte more");
    assert_eq!(
        super::error_code(&reply(&mut alice, req)),
        Some(ErrorCode::BodyTooLarge)
    );

    super::logout(bob);
    let req = alice.handle().send_dm(&b_name, &max).expect("dm");
    assert!(matches!(
        reply(&mut alice, req),
        Reply::MessageAck {
            status: AckStatus::Queued,
            ..
        }
    ));
    let req = alice.handle().send_dm(&b_name, &over).expect("dm");
    assert_eq!(
        super::error_code(&reply(&mut alice, req)),
        Some(ErrorCode::BodyTooLarge)
    );
    let mut bob = s.login(&b_name, &bob_id);
    assert_eq!(bob.welcome().pending, 1, "the oversize DM was queued");
    let (msg_id, len) = super::wait(&mut bob, "the largest DM", |e| match e {
        Event::Message(Reply::IncomingDm { msg_id, body, .. }) => Some((*msg_id, body.len())),
        _ => None,
    });
    assert_eq!(len, MAX_BODY_LEN);
    bob.ack_dm(msg_id).expect("ack");
    super::logout(bob);
    let bob = s.login(&b_name, &bob_id);
    assert_eq!(bob.welcome().pending, 0, "the ack did not delete it");
}
