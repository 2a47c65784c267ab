//! The scripted world every input starts from, made once: alice's session after her first
//! login (a last-resort KeyPackage and 16 one-time ones at the server), and real MLS bytes
//! from bob and carol — a room's log in which bob adds alice then carol, refreshes his
//! keys and removes carol, with messages in every epoch (one sent in an epoch that had
//! already ended); a direct conversation bob opened with alice; GroupInfos to join by
//! external commit; bob's and carol's KeyPackages.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use cove_core::crypto::{IDENTITY_LEN, Identity};
use cove_core::e2ee::session::{Action, SecureSession};
use cove_core::e2ee::{E2ee, MlsCrypto};
use cove_core::hub::Reply;
use cove_core::wire::RoomId;

/// The fuzzed account.
pub const ALICE: &str = "alice";
/// Names a selector picks from (`dave` has no account).
pub const NAMES: [&str; 4] = ["alice", "bob", "carol", "dave"];
/// "now" for every MLS operation (2027).
pub const SECS: u64 = 1_800_000_000;

/// The rooms a selector picks from: bob's group room, bob and alice's direct room, a room
/// alice may join by external commit, and a room alice may create.
pub const ROOMS: [RoomId; 4] = [
    RoomId(*b"GRP222"),
    RoomId(*b"DRCT33"),
    RoomId(*b"JN4444"),
    RoomId(*b"NEW555"),
];

const fn secret(tag: u8) -> [u8; IDENTITY_LEN] {
    let mut b = [0u8; IDENTITY_LEN];
    let mut i = 0;
    while i < IDENTITY_LEN {
        b[i] = tag ^ (i as u8).wrapping_mul(29);
        i += 1;
    }
    b
}

/// An account's identity, by name index.
pub fn identity(i: usize) -> Identity {
    Identity::from_bytes(&secret(0xa0 + i as u8))
}

/// One entry of a room's log as the server delivers it.
#[derive(Clone, Debug)]
pub struct Scripted {
    /// Index into [`ROOMS`].
    pub room: usize,
    /// Its sequence number.
    pub seq: u64,
    /// Who the server says sent it.
    pub from: &'static str,
    /// The MLSMessage.
    pub body: Vec<u8>,
}

/// What every input starts from. See the module docs.
#[derive(Debug)]
pub struct World {
    /// alice's exported session.
    pub alice_state: Vec<u8>,
    /// Room log entries, in each room's order: [`ENTRY_GROUP`] and [`ENTRY_DIRECT`] say
    /// where each room's start.
    pub entries: Vec<Scripted>,
    /// GroupInfos: room 2 at epoch 0, room 0 at its last epoch.
    pub group_infos: Vec<Vec<u8>>,
    /// KeyPackages: bob's two, carol's one, then alice's own last-resort one.
    pub key_packages: Vec<Vec<u8>>,
    /// Every (sender, plaintext) the script encrypted: nothing else may ever decrypt.
    pub known: BTreeSet<(String, Vec<u8>)>,
}

/// Where room 0's entries for alice start in [`World::entries`] (her Welcome).
pub const ENTRY_GROUP: usize = 0;
/// Where the direct room's entries start.
pub const ENTRY_DIRECT: usize = 10;

/// The world, made on first use.
pub fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(make)
}

fn ok<T, E: std::fmt::Debug>(r: Result<T, E>, what: &str) -> T {
    r.unwrap_or_else(|e| panic!("world: {what}: {e:?}"))
}

/// alice's session after her first login, and the KeyPackages she uploaded.
fn alice() -> (Vec<u8>, Vec<Vec<u8>>) {
    let id = identity(0);
    let mut s = ok(
        SecureSession::new(&id, ALICE, MlsCrypto::from_seed([0xa1; 32])),
        "alice",
    );
    s.login(SECS);
    let mut packages = Vec::new();
    for (req, reply) in [(1, None), (2, Some(Reply::KeyPackagesLow { remaining: 0 }))] {
        if let Some(r) = reply {
            s.handle_reply(&r, SECS);
        }
        let Some(Action::UploadKeyPackages { packages: p, .. }) = s.poll_action() else {
            panic!("world: alice uploads KeyPackages");
        };
        s.sent(req);
        packages.extend(p);
        s.handle_reply(&Reply::Ok { req }, SECS);
    }
    (s.export_state(), packages)
}

fn make() -> World {
    let (alice_state, alice_packages) = alice();
    let mut bob = ok(
        E2ee::new(&identity(1), "bob", MlsCrypto::from_seed([0xb1; 32])),
        "bob",
    );
    let mut carol = ok(
        E2ee::new(&identity(2), "carol", MlsCrypto::from_seed([0xc1; 32])),
        "carol",
    );
    let mut known = BTreeSet::new();
    let mut entries = Vec::new();
    let mut say = |e: &mut E2ee, from: &'static str, room: usize, seq: u64, text: &str| {
        // The script plays the server's key directory: every member's key is confirmed.
        for (name, key) in e.members(ROOMS[room]) {
            e.confirm_key(&name, key);
        }
        let body = ok(e.encrypt(ROOMS[room], text.as_bytes()), "encrypt");
        known.insert((from.to_owned(), text.as_bytes().to_vec()));
        Scripted {
            room,
            seq,
            from,
            body,
        }
    };
    let g = ROOMS[0];
    // Room 0: bob's group; alice's cursor starts after the Commit that adds her (seq 1).
    ok(bob.create_group(g, SECS), "create");
    let add_alice = ok(bob.add_member(g, &alice_packages[1], SECS), "add alice");
    ok(bob.commit_accepted(g), "accepted");
    let welcome = add_alice.welcome.expect("a Welcome for alice");
    entries.push(Scripted {
        room: 0,
        seq: 2,
        from: "bob",
        body: welcome,
    });
    entries.push(say(&mut bob, "bob", 0, 3, "hello alice"));
    let carol_kp = ok(carol.key_packages(2, SECS), "carol's packages");
    let add_carol = ok(bob.add_member(g, &carol_kp[0], SECS), "add carol");
    ok(bob.commit_accepted(g), "accepted");
    let w = add_carol.welcome.clone().expect("a Welcome for carol");
    entries.push(Scripted {
        room: 0,
        seq: 4,
        from: "bob",
        body: add_carol.commit,
    });
    entries.push(Scripted {
        room: 0,
        seq: 5,
        from: "bob",
        body: w.clone(),
    });
    ok(
        carol.handle_room_message(g, 5, "bob", &w, SECS),
        "carol joins",
    );
    entries.push(say(&mut carol, "carol", 0, 6, "hi from carol"));
    let update = ok(bob.update(g, SECS + 10), "update");
    ok(bob.commit_accepted(g), "accepted");
    entries.push(Scripted {
        room: 0,
        seq: 7,
        from: "bob",
        body: update.commit.clone(),
    });
    entries.push(say(&mut bob, "bob", 0, 8, "after the update"));
    // carol has not seen the update yet: her message names the epoch before it.
    entries.push(say(&mut carol, "carol", 0, 9, "late from carol"));
    let remove = ok(bob.remove_members(g, &["carol"], SECS + 20), "remove");
    ok(bob.commit_accepted(g), "accepted");
    entries.push(Scripted {
        room: 0,
        seq: 10,
        from: "bob",
        body: remove.commit,
    });
    entries.push(say(&mut bob, "bob", 0, 11, "carol is gone"));
    assert_eq!(entries.len(), ENTRY_DIRECT);
    // Room 1: the direct conversation bob opened with alice.
    let d = ROOMS[1];
    let open = ok(
        bob.open_direct(ALICE, &alice_packages[2], SECS),
        "open direct",
    );
    ok(bob.bind_direct(ALICE, d), "bind");
    entries.push(Scripted {
        room: 1,
        seq: 1,
        from: "bob",
        body: open.welcome,
    });
    entries.push(say(&mut bob, "bob", 1, 2, "a direct hello"));
    // Room 2: a group alice can join from its GroupInfo.
    let joinable = ok(bob.create_group(ROOMS[2], SECS), "create");
    let bob_kp = ok(bob.key_packages(2, SECS), "bob's packages");
    let mut key_packages = bob_kp;
    key_packages.push(carol_kp[1].clone());
    key_packages.push(alice_packages[0].clone());
    World {
        alice_state,
        entries,
        group_infos: vec![joinable, remove.group_info],
        key_packages,
        known,
    }
}

/// A reply's room-message form of a scripted entry.
pub fn entry_reply(e: &Scripted) -> Reply {
    Reply::RoomMessage {
        room: ROOMS[e.room],
        seq: e.seq,
        from: Arc::from(e.from),
        timestamp: e.seq,
        body: Arc::from(&e.body[..]),
    }
}
