//! Rate limits one connection cannot dodge: control records and acknowledgements have
//! budgets of their own, and a client that stays over its request rate is closed however
//! it paces itself.

mod common;

use common::World;
use cove_core::hub::HubConfig;
use cove_core::server::ServerConfig;
use cove_core::time::Duration;
use cove_core::wire::{AuthMode, ClientMsg, ErrorCode};

fn world(config: ServerConfig) -> (World, usize) {
    let mut w = World::new(config, HubConfig::default());
    let p = w.add_peer("mallory");
    w.connect(p, AuthMode::Register);
    (w, p)
}

#[test]
fn a_ping_flood_is_closed() {
    let (mut w, p) = world(ServerConfig::default());
    let now = w.now;
    for nonce in 0..60 {
        let _ = w.client(p).send(now, &ClientMsg::Ping { nonce });
    }
    w.run();
    assert_eq!(w.closed(p), Some(ErrorCode::RateLimited));
}

#[test]
fn pings_at_a_sane_pace_are_fine() {
    let (mut w, p) = world(ServerConfig::default());
    for nonce in 0..200 {
        let now = w.now;
        w.client(p).send(now, &ClientMsg::Ping { nonce }).unwrap();
        w.advance(Duration::from_millis(200));
    }
    assert_eq!(w.closed(p), None);
}

#[test]
fn an_ack_flood_is_closed() {
    let (mut w, p) = world(ServerConfig {
        ack_rate_per_sec: 10,
        ack_burst: 20,
        ..ServerConfig::default()
    });
    let now = w.now;
    for msg_id in 0..40 {
        let _ = w.client(p).ack_dm(now, msg_id);
    }
    w.run();
    assert_eq!(w.closed(p), Some(ErrorCode::RateLimited));
}

#[test]
fn a_paced_flooder_over_its_rate_is_closed_in_the_end() {
    // Twice the allowed rate, spread evenly: half refused, forever.
    let (mut w, p) = world(ServerConfig {
        rate_per_sec: 1,
        rate_burst: 1,
        rate_strikes: 5,
        ..ServerConfig::default()
    });
    for _ in 0..200 {
        let now = w.now;
        if w.client(p).list_users(now).is_err() {
            break;
        }
        w.advance(Duration::from_millis(500));
    }
    assert_eq!(w.closed(p), Some(ErrorCode::RateLimited));
}
