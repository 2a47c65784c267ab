//! The application acknowledges direct messages itself, and a cleartext alert is not
//! believed once the session keys are confirmed.

mod common;

use common::{Seen, World};
use cove_core::hub::{HubConfig, Reply};
use cove_core::server::ServerConfig;
use cove_core::time::Duration;
use cove_core::wire::{Alert, AuthMode, ErrorCode, FrameType, encode_header};

fn dm_ids(w: &World, p: usize) -> Vec<u64> {
    w.replies(p)
        .into_iter()
        .filter_map(|r| match r {
            Reply::IncomingDm { msg_id, .. } => Some(msg_id),
            _ => None,
        })
        .collect()
}

/// alice queues a DM for bob while he is offline; bob then logs in without auto-ack.
fn bob_gets_a_dm_without_auto_ack() -> (World, usize, usize) {
    let mut w = World::new(ServerConfig::default(), HubConfig::default());
    let (alice, bob) = (w.add_peer("alice"), w.add_peer("bob"));
    w.connect(alice, AuthMode::Register);
    w.connect(bob, AuthMode::Register);
    w.drop_connection(bob);
    let now = w.now;
    w.client(alice).send_dm(now, "bob", b"hi").unwrap();
    w.run();
    assert_eq!(w.hub().queued_for("bob"), 1);
    w.client_config.auto_ack_dms = false;
    w.take_seen(bob);
    w.connect(bob, AuthMode::Login);
    (w, alice, bob)
}

#[test]
fn a_dm_stays_queued_until_the_application_acknowledges_it() {
    let (mut w, _, bob) = bob_gets_a_dm_without_auto_ack();
    let ids = dm_ids(&w, bob);
    assert_eq!(ids.len(), 1, "bob was shown the DM");
    assert_eq!(
        w.hub().queued_for("bob"),
        1,
        "acknowledged before the app had it"
    );
    assert_eq!(w.client(bob).last_dm_id(), 0);

    // The app crashes before acknowledging: the DM comes again on the next login.
    w.drop_connection(bob);
    w.take_seen(bob);
    w.connect(bob, AuthMode::Login);
    assert_eq!(
        dm_ids(&w, bob),
        ids,
        "the unacknowledged DM was not re-sent"
    );

    // Now the app has shown it and acknowledges.
    let now = w.now;
    w.client(bob).ack_dm(now, ids[0]).unwrap();
    w.run();
    assert_eq!(w.hub().queued_for("bob"), 0);
    assert!(w.store.records().queued.is_empty(), "the store kept it");
    assert_eq!(w.client(bob).last_dm_id(), ids[0]);
}

#[test]
fn an_acknowledged_dm_is_never_shown_again() {
    let (mut w, _, bob) = bob_gets_a_dm_without_auto_ack();
    let id = dm_ids(&w, bob)[0];
    let now = w.now;
    w.client(bob).ack_dm(now, id).unwrap();
    // The ack is lost with the connection before the server reads it.
    w.peers[bob].to_server.clear();
    let c = w.client(bob);
    let n = c.pending_transmit().len();
    c.advance_transmit(n);
    w.drop_connection(bob);
    assert_eq!(w.hub().queued_for("bob"), 1);
    w.take_seen(bob);
    w.connect(bob, AuthMode::Login);
    w.advance(Duration::from_secs(1));
    assert!(dm_ids(&w, bob).is_empty(), "shown twice");
    assert_eq!(
        w.hub().queued_for("bob"),
        0,
        "the repeat was not re-acknowledged"
    );
}

fn alert_frame(code: ErrorCode) -> Vec<u8> {
    let mut payload = [0u8; 64];
    let n = Alert {
        code,
        text: "forged",
    }
    .encode(&mut payload)
    .unwrap();
    let mut frame = encode_header(FrameType::Alert, n as u32).to_vec();
    frame.extend_from_slice(&payload[..n]);
    frame
}

#[test]
fn a_forged_alert_after_login_is_a_violation_on_both_sides() {
    let mut w = World::new(ServerConfig::default(), HubConfig::default());
    let (alice, bob) = (w.add_peer("alice"), w.add_peer("bob"));
    w.connect(alice, AuthMode::Register);
    w.connect(bob, AuthMode::Register);
    // To the client: an on-path attacker injects "shutting down".
    w.peers[alice]
        .to_client
        .extend_from_slice(&alert_frame(ErrorCode::ShuttingDown));
    w.run();
    assert_eq!(w.closed(alice), Some(ErrorCode::InvalidFormat));
    assert!(
        w.peers[alice]
            .seen
            .iter()
            .any(|s| matches!(s, Seen::Closed { by_peer: false, .. })),
        "the forged code was trusted as the server's"
    );
    // To the server: the same.
    let id = w.peers[bob].conn.unwrap();
    let mut frame = alert_frame(ErrorCode::ConnectionTerminated);
    let conn = w.conns.get_mut(&id).unwrap();
    conn.handle_input(w.now, &mut frame);
    assert_eq!(conn.close_code(), Some(ErrorCode::InvalidFormat));
}
