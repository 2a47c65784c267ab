//! Sessions of several accounts talking through a real [`Hub`]: rooms, joins, direct
//! messages to an offline peer, removal — and no plaintext anywhere the server can see.

use alloc::string::String;
use alloc::vec::Vec;

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;

use super::{EntryKind, SecureEvent, SecureSession};
use crate::crypto::Identity;
use crate::e2ee::MlsCrypto;
use crate::hub::{ConnId, Hub, HubConfig, Reply, Request};
use crate::server::request_from;
use crate::store::StoreOp;
use crate::time::Instant;
use crate::wire::{AuthMode, RoomId};

const T: Instant = Instant(1_000_000);
const SECS: u64 = 1_800_000_000;
const CANARY: &[u8] = b"CANARY-7f3a";

struct Account {
    name: String,
    identity: Identity,
    session: SecureSession,
    conn: Option<ConnId>,
    events: Vec<SecureEvent>,
}

/// A hub and the accounts around it; every byte the server handles is kept for the
/// canary check.
struct World {
    hub: Hub,
    accounts: Vec<Account>,
    next_conn: u64,
    next_req: u32,
    seen_by_server: Vec<Vec<u8>>,
    /// Deliveries to this account wait in `held` (a slow client) until it is cleared.
    hold: Option<usize>,
    held: Vec<(ConnId, Reply)>,
}

impl World {
    fn new(names: &[&str]) -> World {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let accounts = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let identity = Identity::generate(&mut rng);
                let crypto = MlsCrypto::from_seed([i as u8 + 1; 32]);
                let session = SecureSession::new(&identity, n, crypto).expect("session");
                Account {
                    name: String::from(*n),
                    identity,
                    session,
                    conn: None,
                    events: Vec::new(),
                }
            })
            .collect();
        let mut w = World {
            hub: Hub::new(HubConfig::default(), 1),
            accounts,
            next_conn: 1,
            next_req: 1,
            seen_by_server: Vec::new(),
            hold: None,
            held: Vec::new(),
        };
        for i in 0..names.len() {
            w.login(i, AuthMode::Register);
        }
        w
    }

    fn login(&mut self, i: usize, mode: AuthMode) {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        let a = &mut self.accounts[i];
        a.conn = Some(conn);
        let key = a.identity.public().ed25519;
        self.hub.handle_connect(T, conn, &a.name.clone(), key, mode);
        a.session.login(SECS);
        self.settle();
    }

    fn logout(&mut self, i: usize) {
        if let Some(c) = self.accounts[i].conn.take() {
            self.hub.handle_disconnect(T, c);
        }
        self.settle();
    }

    /// Runs every account's actions and the hub's replies until nothing moves.
    fn settle(&mut self) {
        let held = if self.hold.is_none() {
            core::mem::take(&mut self.held)
        } else {
            Vec::new()
        };
        for (conn, reply) in held {
            self.deliver(conn, &reply);
        }
        for _ in 0..1000 {
            let mut moved = false;
            for i in 0..self.accounts.len() {
                let Some(conn) = self.accounts[i].conn else {
                    continue;
                };
                while let Some(action) = self.accounts[i].session.poll_action() {
                    moved = true;
                    let req = self.next_req;
                    self.next_req += 1;
                    let request = action.with_msg(req, |m| request_from(m.expect("encodes")));
                    let request = request.expect("a hub request");
                    self.hub
                        .handle_event(T, conn, crate::server::ServerEvent::Request(request));
                    self.accounts[i].session.sent(req);
                }
            }
            while let Some(op) = self.hub.poll_store_op() {
                if let StoreOp::RoomMessageLogged(m) = &op {
                    self.seen_by_server.push(m.body.to_vec());
                }
                if let StoreOp::GroupSet { group_info, .. } = &op {
                    self.seen_by_server.push(group_info.to_vec());
                }
            }
            while let Some((conn, reply)) = self.hub.poll_delivery() {
                moved = true;
                let held = self.hold.and_then(|h| self.accounts[h].conn) == Some(conn);
                if held {
                    self.held.push((conn, reply));
                } else {
                    self.deliver(conn, &reply);
                }
            }
            if !moved {
                return;
            }
        }
        panic!("the world did not settle");
    }

    /// Hands one reply to its account and acknowledges the entries it shows.
    fn deliver(&mut self, conn: ConnId, reply: &Reply) {
        let Some(i) = self.accounts.iter().position(|a| a.conn == Some(conn)) else {
            return;
        };
        if let Reply::RoomMessage { body, .. } = reply {
            self.seen_by_server.push(body.to_vec());
        }
        self.accounts[i].session.handle_reply(reply, SECS);
        while let Some(e) = self.accounts[i].session.poll_event() {
            if let SecureEvent::Entry { room, seq, .. } = &e {
                let ack = Request::AckRoom {
                    room: *room,
                    seq: *seq,
                };
                self.hub
                    .handle_event(T, conn, crate::server::ServerEvent::Request(ack));
            }
            self.accounts[i].events.push(e);
        }
    }

    fn texts(&self, i: usize) -> Vec<(RoomId, String, Vec<u8>)> {
        self.accounts[i]
            .events
            .iter()
            .filter_map(|e| match e {
                SecureEvent::Entry {
                    room,
                    from,
                    kind: EntryKind::Text(t),
                    ..
                } => Some((*room, from.clone(), t.clone())),
                _ => None,
            })
            .collect()
    }

    fn ready_rooms(&self, i: usize) -> Vec<RoomId> {
        self.accounts[i]
            .events
            .iter()
            .filter_map(|e| match e {
                SecureEvent::Ready { room, .. } => Some(*room),
                _ => None,
            })
            .collect()
    }

    fn no_plaintext_reached_the_server(&self) {
        for bytes in &self.seen_by_server {
            assert!(
                !bytes.windows(CANARY.len()).any(|w| w == CANARY),
                "the server saw plaintext"
            );
        }
        assert!(!self.seen_by_server.is_empty());
    }
}

fn canary(text: &str) -> Vec<u8> {
    let mut v = Vec::from(text.as_bytes());
    v.extend_from_slice(CANARY);
    v
}

#[test]
fn a_room_is_created_joined_and_chatted_in_without_the_server_reading_it() {
    let mut w = World::new(&["alice", "bob"]);
    w.accounts[0].session.create_room("lobby", false);
    w.settle();
    let room = w.ready_rooms(0)[0];
    w.accounts[1].session.join_room(room);
    w.settle();
    assert_eq!(w.ready_rooms(1), [room]);
    w.accounts[0].session.send_text(room, &canary("hi "), SECS);
    w.settle();
    w.accounts[1]
        .session
        .send_text(room, &canary("hello "), SECS);
    w.settle();
    assert_eq!(
        w.texts(1),
        [(room, String::from("alice"), canary("hi "))],
        "{:?}",
        w.accounts[1].events
    );
    assert_eq!(w.texts(0), [(room, String::from("bob"), canary("hello "))]);
    w.no_plaintext_reached_the_server();
}

#[test]
fn a_direct_message_to_an_offline_peer_is_read_once_after_login_and_restore() {
    let mut w = World::new(&["alice", "bob"]);
    w.logout(1);
    w.accounts[0]
        .session
        .send_direct("bob", &canary("psst "), SECS);
    w.settle();
    let room = w.accounts[0].session.direct_room("bob").expect("opened");
    // bob restarts from his persisted state, then logs in.
    let state = w.accounts[1].session.export_state();
    let b = &w.accounts[1];
    let crypto = MlsCrypto::from_seed([42; 32]);
    w.accounts[1].session =
        SecureSession::restore(&b.identity.clone(), "bob", crypto, &state).expect("restores");
    w.login(1, AuthMode::Login);
    assert_eq!(
        w.texts(1),
        [(room, String::from("alice"), canary("psst "))],
        "{:?}",
        w.accounts[1].events
    );
    assert_eq!(w.accounts[1].session.direct_room("alice"), Some(room));
    w.accounts[1]
        .session
        .send_direct("alice", &canary("ok "), SECS);
    w.settle();
    assert_eq!(w.texts(0), [(room, String::from("bob"), canary("ok "))]);
    let (a, b) = (&w.accounts[0].session, &w.accounts[1].session);
    assert_eq!(a.safety_number("bob"), b.safety_number("alice"));
    assert!(a.safety_number("bob").is_some());
    w.no_plaintext_reached_the_server();
}

#[test]
fn a_removed_member_cannot_read_what_is_sent_after_the_removal() {
    let mut w = World::new(&["alice", "bob", "carol"]);
    w.accounts[0].session.create_room("team", true);
    w.settle();
    let room = w.ready_rooms(0)[0];
    w.accounts[0].session.invite(room, "bob");
    w.settle();
    w.accounts[0].session.invite(room, "carol");
    w.settle();
    w.accounts[0].session.send_text(room, b"before", SECS);
    w.settle();
    assert_eq!(w.texts(1).len(), 1);
    assert_eq!(w.texts(2).len(), 1);
    // bob keeps a copy of his state, as a removed member who wants to keep reading would.
    let bob_state = w.accounts[1].session.export_state();
    let bob_identity = w.accounts[1].identity.clone();
    w.accounts[0].session.remove(room, "bob");
    w.settle();
    let before = w.seen_by_server.len();
    w.accounts[0]
        .session
        .send_text(room, &canary("after "), SECS);
    w.settle();
    assert_eq!(w.texts(2).last().map(|t| &t.2), Some(&canary("after ")));
    let mut old_bob = SecureSession::restore(
        &bob_identity,
        "bob",
        MlsCrypto::from_seed([9; 32]),
        &bob_state,
    )
    .expect("restores");
    let mut readable = 0;
    for (seq, body) in w.seen_by_server[before..].iter().enumerate() {
        let reply = Reply::RoomMessage {
            room,
            seq: 1000 + seq as u64,
            from: "alice".into(),
            timestamp: 0,
            body: body.as_slice().into(),
        };
        old_bob.handle_reply(&reply, SECS);
        while let Some(e) = old_bob.poll_event() {
            if let SecureEvent::Entry {
                kind: EntryKind::Text(t),
                ..
            } = e
            {
                assert_ne!(t, canary("after "));
                readable += 1;
            }
        }
    }
    assert_eq!(readable, 0);
    w.no_plaintext_reached_the_server();
}

#[test]
fn a_direct_conversation_the_peer_left_is_opened_anew() {
    let mut w = World::new(&["alice", "bob"]);
    w.accounts[0].session.send_direct("bob", b"one", SECS);
    w.settle();
    let first = w.accounts[0].session.direct_room("bob").expect("opened");
    w.accounts[1].session.leave_room(first);
    w.settle();
    assert_eq!(w.accounts[1].session.direct_room("alice"), None);
    assert_eq!(w.accounts[0].session.direct_room("bob"), None);
    w.accounts[0].session.send_direct("bob", b"two", SECS);
    w.settle();
    let second = w.accounts[0]
        .session
        .direct_room("bob")
        .expect("opened again");
    assert_ne!(first, second);
    assert_eq!(
        w.texts(1),
        [
            (first, String::from("alice"), b"one".to_vec()),
            (second, String::from("alice"), b"two".to_vec())
        ]
    );
}

/// A member whose group credential carries another key than the server's directory has
/// for their account: nothing is encrypted to them until the user accepts that key.
#[test]
fn a_member_the_directory_disagrees_with_is_not_sent_to_until_accepted() {
    let mut w = World::new(&["alice", "carol"]);
    // carol's account key (registered at the hub) is not the key her session signs with.
    let other = Identity::generate(&mut ChaCha20Rng::seed_from_u64(99));
    let crypto = MlsCrypto::from_seed([77; 32]);
    w.accounts[1].session = SecureSession::new(&other, "carol", crypto).expect("session");
    w.accounts[1].session.login(SECS);
    w.settle();
    w.accounts[0].session.create_room("lobby", false);
    w.settle();
    let room = w.ready_rooms(0)[0];
    w.accounts[1].session.join_room(room);
    w.settle();
    assert_eq!(w.ready_rooms(1), [room], "{:?}", w.accounts[1].events);
    w.accounts[0].session.send_text(room, b"for carol?", SECS);
    w.settle();
    let registered = w.accounts[1].identity.public().ed25519;
    let disputed = w.accounts[0].events.iter().any(|e| {
        matches!(e, SecureEvent::KeyDisputed { name, directory }
            if name == "carol" && *directory == Some(registered))
    });
    assert!(disputed, "{:?}", w.accounts[0].events);
    assert!(w.texts(1).is_empty(), "nothing was encrypted to carol");
    let pinned = w.accounts[0].session.disputed_key("carol").expect("pinned");
    assert_ne!(pinned, registered);
    w.accounts[0].session.accept_key("carol", pinned, SECS);
    w.settle();
    assert_eq!(w.accounts[0].session.disputed_key("carol"), None);
    assert_eq!(
        w.texts(1),
        [(room, String::from("alice"), b"for carol?".to_vec())]
    );
}

/// A member the directory agrees with is confirmed by one `GetPublicKey`, once; a peer
/// whose KeyPackage the server handed out needs none.
#[test]
fn the_directory_confirms_a_new_member_once() {
    let mut w = World::new(&["alice", "bob", "carol"]);
    w.accounts[0].session.create_room("lobby", false);
    w.settle();
    let room = w.ready_rooms(0)[0];
    w.accounts[1].session.join_room(room);
    w.settle();
    assert!(!w.accounts[0].session.e2ee().is_confirmed("bob"));
    for text in [&b"one"[..], b"two"] {
        w.accounts[0].session.send_text(room, text, SECS);
        w.settle();
    }
    assert!(w.accounts[0].session.e2ee().is_confirmed("bob"));
    assert_eq!(w.texts(1).len(), 2);
    // Confirmed pins survive a restart.
    let state = w.accounts[0].session.export_state();
    let id = w.accounts[0].identity.clone();
    let restored =
        SecureSession::restore(&id, "alice", MlsCrypto::from_seed([5; 32]), &state).expect("ok");
    assert!(restored.e2ee().is_confirmed("bob"));
    // carol's KeyPackage comes from the directory itself: no question asked.
    w.accounts[0].session.send_direct("carol", b"hi", SECS);
    assert!(w.accounts[0].session.e2ee().pinned_key("carol").is_none());
    w.settle();
    assert!(w.accounts[0].session.e2ee().is_confirmed("carol"));
    assert_eq!(w.texts(2).len(), 1);
}

/// A member who lost its whole state (a new device, a deleted file) rejoins its room and
/// its direct conversation by external commit, as a member: what is sent after is
/// readable to it, what came before is not.
#[test]
fn a_member_that_lost_its_state_rejoins_its_room_and_conversation() {
    let mut w = World::new(&["alice", "bob"]);
    w.accounts[0].session.create_room("lobby", false);
    w.settle();
    let room = w.ready_rooms(0)[0];
    w.accounts[1].session.join_room(room);
    w.settle();
    w.accounts[0].session.send_direct("bob", b"first", SECS);
    w.settle();
    let direct = w.accounts[0].session.direct_room("bob").expect("opened");
    w.logout(1);
    w.accounts[0].session.send_text(room, b"while away", SECS);
    w.settle();
    // bob's state is gone: a fresh session logs in.
    let id = w.accounts[1].identity.clone();
    w.accounts[1].session =
        SecureSession::new(&id, "bob", MlsCrypto::from_seed([55; 32])).expect("session");
    w.accounts[1].events.clear();
    w.login(1, AuthMode::Login);
    assert!(!w.accounts[1].session.e2ee().has_group(room));
    assert_eq!(w.accounts[1].session.direct_room("alice"), Some(direct));
    for r in [room, direct] {
        w.accounts[1].session.join_room(r);
        w.settle();
        assert!(w.accounts[1].session.e2ee().has_group(r), "{r:?}");
    }
    let readies: Vec<_> = w.accounts[1]
        .events
        .iter()
        .filter_map(|e| match e {
            SecureEvent::Ready { room, peer } => Some((*room, peer.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        readies,
        [(room, None), (direct, Some(String::from("alice")))]
    );
    assert!(w.texts(1).is_empty(), "nothing from before is readable");
    w.accounts[0].session.send_text(room, b"welcome back", SECS);
    w.accounts[0].session.send_direct("bob", b"again", SECS);
    w.settle();
    assert_eq!(
        w.texts(1),
        [
            (room, String::from("alice"), b"welcome back".to_vec()),
            (direct, String::from("alice"), b"again".to_vec())
        ]
    );
    w.accounts[1].session.send_direct("alice", b"thanks", SECS);
    w.settle();
    assert_eq!(
        w.texts(0).last(),
        Some(&(direct, String::from("bob"), b"thanks".to_vec()))
    );
}

/// alice writes right after bob rejoined by external commit, before her client processed
/// his Commit (a loaded machine): the message, encrypted at the epoch before bob's, is
/// refused by the server, and alice makes it again once she has processed the Commit; bob
/// reads it, and what alice wrote after it, in order.
#[test]
fn a_message_encrypted_before_a_rejoin_is_processed_is_made_again_after_it() {
    let mut w = World::new(&["alice", "bob"]);
    w.accounts[0].session.create_room("den", false);
    w.settle();
    let room = w.ready_rooms(0)[0];
    w.accounts[1].session.join_room(room);
    w.settle();
    // alice has written to bob before: his key is confirmed, nothing more is asked.
    w.accounts[0].session.send_text(room, b"hello", SECS);
    w.settle();
    w.logout(1);
    let id = w.accounts[1].identity.clone();
    w.accounts[1].session =
        SecureSession::new(&id, "bob", MlsCrypto::from_seed([55; 32])).expect("session");
    w.accounts[1].events.clear();
    w.login(1, AuthMode::Login);
    let before = w.accounts[0].session.e2ee().epoch(room);
    // alice's client is slow: bob's Commit waits in her connection.
    w.hold = Some(0);
    w.accounts[1].session.join_room(room);
    w.settle();
    assert!(w.accounts[1].session.e2ee().has_group(room));
    assert!(
        !w.held.is_empty(),
        "bob's Commit reached alice's connection"
    );
    assert_eq!(w.accounts[0].session.e2ee().epoch(room), before);
    w.accounts[0]
        .session
        .send_text(room, b"in the den again", SECS);
    w.accounts[0].session.send_text(room, b"and again", SECS);
    w.settle();
    w.hold = None;
    w.settle();
    w.accounts[0].session.send_text(room, b"third", SECS);
    w.settle();
    let texts: Vec<Vec<u8>> = w.texts(1).into_iter().map(|(_, _, t)| t).collect();
    assert_eq!(
        texts,
        [
            b"in the den again".to_vec(),
            b"and again".to_vec(),
            b"third".to_vec()
        ]
    );
    let unreadable = w.accounts[1].events.iter().any(|e| {
        matches!(
            e,
            SecureEvent::Entry {
                kind: EntryKind::Unreadable(_),
                ..
            }
        )
    });
    assert!(!unreadable, "{:?}", w.accounts[1].events);
    assert!(
        !w.accounts[0]
            .events
            .iter()
            .any(|e| matches!(e, SecureEvent::Failed { .. })),
        "{:?}",
        w.accounts[0].events
    );
}
