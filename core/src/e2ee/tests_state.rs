//! Exported state, hostile bytes, safety numbers and key-package bounds.

use alloc::string::String;
use alloc::vec::Vec;

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use super::tests::{Log, Member, T0, message, round, three_members};
use super::*;

fn restored(m: &Member, state: &[u8], seed: u8) -> E2ee {
    E2ee::restore(&m.id, &m.name, MlsCrypto::from_seed([seed; 32]), state).unwrap()
}

#[test]
fn a_restored_member_carries_on_the_conversation() {
    let (mut log, mut alice, mut bob, mut carol) = three_members();
    let room = log.room;
    round(&mut log, &mut [&mut alice, &mut bob, &mut carol], "one");

    // alice has a Commit in flight and carol has unread messages when they stop.
    let out = alice.e.update(room, T0).unwrap();
    bob.say(&mut log, "while you were away");
    let alice_state = alice.e.export_state();
    let carol_state = carol.e.export_state();
    let bob_state = bob.e.export_state();
    assert_eq!(
        restored(&bob, &bob_state, 7).export_state(),
        bob_state,
        "round trip"
    );

    alice.e = restored(&alice, &alice_state, 70);
    carol.e = restored(&carol, &carol_state, 71);
    bob.e = restored(&bob, &bob_state, 72);
    log.commit("alice", &out).unwrap();
    assert_eq!(
        alice.deliver(&log),
        [message("bob", "while you were away"), Inbound::OwnCommit]
    );
    assert_eq!(carol.deliver(&log).len(), 2);
    assert_eq!(bob.deliver(&log).len(), 2);
    assert_eq!(carol.e.epoch(room), Some(3));
    assert_eq!(bob.e.pinned_key("carol"), Some(carol.key()));
    round(&mut log, &mut [&mut alice, &mut bob, &mut carol], "two");

    // Entries already handled before the state was written stay ignored after a restore.
    let state = bob.e.export_state();
    bob.e = restored(&bob, &state, 73);
    let en = &log.entries[log.entries.len() - 1];
    let r = bob
        .e
        .handle_room_message(room, en.seq, &en.from, &en.body, T0);
    assert_eq!(r.unwrap(), Inbound::Ignored);
}

#[test]
fn corrupt_or_foreign_state_is_refused_without_panicking() {
    let (mut log, mut alice, mut bob, mut carol) = three_members();
    round(&mut log, &mut [&mut alice, &mut bob, &mut carol], "one");
    alice.e.key_packages(3, T0).unwrap();
    let state = alice.e.export_state();
    let crypto = || MlsCrypto::from_seed([1; 32]);

    let wrong = E2ee::restore(&bob.id, "alice", crypto(), &state);
    assert!(matches!(
        wrong,
        Err(E2eeError::State(StateError::WrongAccount))
    ));
    let wrong = E2ee::restore(&alice.id, "alicia", crypto(), &state);
    assert!(matches!(
        wrong,
        Err(E2eeError::State(StateError::WrongAccount))
    ));

    let mut bad = state.clone();
    bad[0] ^= 1;
    assert!(matches!(
        E2ee::restore(&alice.id, "alice", crypto(), &bad),
        Err(E2eeError::State(StateError::BadMagic))
    ));
    let mut bad = state.clone();
    bad[8] = 3;
    assert!(matches!(
        E2ee::restore(&alice.id, "alice", crypto(), &bad),
        Err(E2eeError::State(StateError::UnsupportedVersion(3)))
    ));
    let mut bad = state.clone();
    bad.push(0);
    assert!(matches!(
        E2ee::restore(&alice.id, "alice", crypto(), &bad),
        Err(E2eeError::State(StateError::TrailingBytes))
    ));
    // Every truncation is an error.
    for len in (0..state.len()).step_by(7).chain([state.len() - 1]) {
        let r = E2ee::restore(&alice.id, "alice", crypto(), &state[..len]);
        assert!(r.is_err(), "truncated to {len}");
    }
    // Flipped bytes: an error or a state that loads; never a panic.
    let mut rng = ChaCha20Rng::from_seed([42; 32]);
    for _ in 0..300 {
        let mut bad = state.clone();
        let i = (rng.next_u32() as usize) % bad.len();
        bad[i] ^= 1 << (rng.next_u32() % 8);
        let _ = E2ee::restore(&alice.id, "alice", crypto(), &bad);
    }
    // A count past the limits.
    let mut huge = Vec::from(&b"COVEMLS1\x01"[..]);
    huge.push(5);
    huge.extend_from_slice(b"alice");
    huge.extend_from_slice(&alice.key());
    huge.extend_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        E2ee::restore(&alice.id, "alice", crypto(), &huge),
        Err(E2eeError::State(StateError::TooMany))
    ));
}

#[test]
fn garbage_and_tampered_entries_are_errors_and_change_nothing() {
    let (mut log, mut alice, mut bob, mut carol) = three_members();
    let room = log.room;
    let mut lonely = Member::new("erin", 5);
    let mut rng = ChaCha20Rng::from_seed([7; 32]);
    let mut seq = 10_000;
    for len in (0..700).step_by(3) {
        let mut junk = alloc::vec![0u8; len];
        rng.fill_bytes(&mut junk);
        if len > 2 && len % 2 == 0 {
            // Half of them look like MLS 1.0 messages of each wire format.
            junk[0] = 0;
            junk[1] = 1;
            junk[2] = 0;
            junk[3 % len] = (len % 6) as u8;
        }
        seq += 1;
        let r = alice.e.handle_room_message(room, seq, "bob", &junk, T0);
        assert!(matches!(r, Err(_) | Ok(Inbound::Ignored)), "{len}: {r:?}");
        let r = lonely.e.handle_room_message(room, seq, "bob", &junk, T0);
        assert!(matches!(r, Err(_) | Ok(Inbound::Ignored)), "{len}: {r:?}");
        assert!(alice.e.add_member(room, &junk, T0).is_err());
        assert!(lonely.e.join_external(room, &junk, T0).is_err());
        assert!(lonely.e.open_direct("bob", &junk, T0).is_err());
    }
    // A real message with one byte changed anywhere does not decrypt.
    bob.confirm_members(room);
    let body = bob.e.encrypt(room, b"genuine").unwrap();
    for i in (0..body.len()).step_by(5) {
        let mut t = body.clone();
        t[i] ^= 0x20;
        seq += 1;
        let r = alice.e.handle_room_message(room, seq, "bob", &t, T0);
        assert!(!matches!(r, Ok(Inbound::Message { .. })), "byte {i}: {r:?}");
    }
    // The server naming the wrong sender is caught.
    seq += 1;
    let r = carol.e.handle_room_message(room, seq, "alice", &body, T0);
    assert!(matches!(r, Err(E2eeError::SenderMismatch { .. })), "{r:?}");
    // The group still works for everyone (alice's log cursor never moved).
    assert_eq!(alice.e.epoch(room), Some(2));
    log.send("bob", body);
    alice.cursor = log.entries.len() - 1;
    carol.cursor = log.entries.len() - 1;
    bob.cursor = log.entries.len();
    // Their last handled sequence numbers are past the log's: restart the log above them.
    log.seq_offset = 1_000_000;
    for en in log.entries.iter_mut() {
        en.seq += log.seq_offset;
    }
    assert_eq!(alice.deliver(&log), [message("bob", "genuine")]);
    assert_eq!(carol.deliver(&log), [message("bob", "genuine")]);
    round(
        &mut log,
        &mut [&mut alice, &mut bob, &mut carol],
        "still fine",
    );
}

#[test]
fn safety_numbers_are_symmetric_and_depend_on_names_and_keys() {
    let ka = [1u8; 32];
    let kb = [2u8; 32];
    let ab = safety_number(("alice", &ka), ("bob", &kb));
    assert_eq!(ab, safety_number(("bob", &kb), ("alice", &ka)));
    let groups: Vec<&str> = ab.split(' ').collect();
    assert_eq!(groups.len(), 12);
    assert!(
        groups
            .iter()
            .all(|g| g.len() == 5 && g.bytes().all(|b| b.is_ascii_digit()))
    );
    let mut kc = kb;
    kc[31] ^= 1;
    assert_ne!(ab, safety_number(("alice", &ka), ("bob", &kc)));
    assert_ne!(ab, safety_number(("alice", &ka), ("bobby", &kb)));
    assert_ne!(
        ab,
        safety_number(("alice", &kb), ("bob", &ka)),
        "keys swapped"
    );
    // Both sides of a real pair compute the same number from their own view.
    let alice = Member::new("alice", 1);
    let bob = Member::new("bob", 2);
    let seen_by_alice = safety_number(("alice", &alice.key()), ("bob", &bob.key()));
    let seen_by_bob = safety_number(("bob", &bob.key()), ("alice", &alice.key()));
    assert_eq!(seen_by_alice, seen_by_bob);
    assert_ne!(seen_by_alice, ab);
}

#[test]
fn key_package_secrets_are_bounded_and_expire() {
    let mut dave = Member::new("dave", 4);
    assert!(matches!(
        dave.e.key_packages(MAX_KEY_PACKAGE_SECRETS, T0),
        Err(E2eeError::TooManyKeyPackages)
    ));
    let first = dave.e.key_packages(40, T0).unwrap();
    dave.e.key_packages(40, T0).unwrap();
    assert_eq!(
        dave.e.key_packages.snapshot().len(),
        MAX_KEY_PACKAGE_SECRETS
    );
    for _ in 0..3 {
        dave.e.last_resort_key_package(T0).unwrap();
    }
    let kept = dave.e.key_packages.snapshot();
    assert!(kept.len() <= MAX_KEY_PACKAGE_SECRETS);
    assert_eq!(
        kept.iter().filter(|(_, k)| k.last_resort).count(),
        MAX_LAST_RESORT
    );
    // The oldest ordinary packages made room: a Welcome from one is not for dave any more.
    let mut alice = Member::new("alice", 1);
    let open = alice.e.open_direct("dave", &first[0], T0).unwrap();
    let room = crate::wire::RoomId::parse(b"DM2345").unwrap();
    let r = dave
        .e
        .handle_room_message(room, 1, "alice", &open.welcome, T0);
    assert_eq!(r.unwrap(), Inbound::Ignored);
    // Past their lifetime, the secrets are dropped when new packages are made.
    let later = T0 + E2eeConfig::default().key_package_lifetime_secs + 1;
    dave.e.key_packages(1, later).unwrap();
    assert_eq!(dave.e.key_packages.snapshot().len(), 1);
}

#[test]
fn a_last_resort_package_serves_several_welcomes() {
    let mut dave = Member::new("dave", 4);
    let kp = dave.e.last_resort_key_package(T0).unwrap();
    let mut joined = 0;
    for (i, (name, seed)) in [("alice", 1u8), ("bob", 2u8)].into_iter().enumerate() {
        let mut m = Member::new(name, seed);
        let open = m.e.open_direct("dave", &kp, T0).unwrap();
        let room = crate::wire::RoomId::from_indices([i as u8, 1, 2, 3, 4, 5]);
        let mut log = Log::new(&room.0);
        log.epoch = Some(1);
        log.push(name, open.welcome);
        m.e.bind_direct("dave", room).unwrap();
        m.say(&mut log, "hello");
        let got = dave.deliver(&log);
        dave.cursor = 0;
        assert_eq!(got, [Inbound::Joined, message(name, "hello")]);
        joined += 1;
    }
    assert_eq!(joined, 2);
    assert_eq!(
        dave.e
            .members(crate::wire::RoomId::from_indices([1, 1, 2, 3, 4, 5])),
        [
            (String::from("bob"), Member::new("bob", 2).key()),
            (String::from("dave"), dave.key())
        ]
    );
}

#[test]
fn groups_per_account_are_bounded() {
    let mut alice = Member::new("alice", 1);
    let mut rooms = Vec::new();
    for i in 0..MAX_GROUPS {
        let room = crate::wire::RoomId::from_indices([
            (i / 31 / 31) as u8,
            (i / 31 % 31) as u8,
            (i % 31) as u8,
            0,
            0,
            0,
        ]);
        alice.e.create_group(room, T0).unwrap();
        rooms.push(room);
    }
    let one_more = crate::wire::RoomId::parse(b"ZZZZZZ").unwrap();
    assert!(matches!(
        alice.e.create_group(one_more, T0),
        Err(E2eeError::TooManyGroups)
    ));
    let mut bob = Member::new("bob", 2);
    let kp = bob.e.key_packages(1, T0).unwrap();
    assert!(matches!(
        alice.e.open_direct("bob", &kp[0], T0),
        Err(E2eeError::TooManyGroups)
    ));
    assert!(matches!(
        alice.e.create_group(rooms[0], T0),
        Err(E2eeError::GroupExists(_))
    ));
    alice.e.forget(rooms[0]);
    assert!(!alice.e.has_group(rooms[0]));
    alice.e.create_group(one_more, T0).unwrap();
}

/// Version 1 of the state had no `confirmed` byte per pin: it still loads, every pin but
/// the account's own unconfirmed; version 2 keeps what the directory confirmed.
#[test]
fn version_1_state_loads_with_its_pins_unconfirmed() {
    let (mut log, mut alice, bob, _carol) = three_members();
    alice.say(&mut log, "hi");
    assert!(alice.e.is_confirmed("bob"));
    let v2 = alice.e.export_state();
    assert!(restored(&alice, &v2, 1).is_confirmed("bob"));
    // Rewrite as version 1: drop each pin's last byte. The pins follow the header
    // (magic, version, name, key) and their count.
    let mut at = 9 + 1 + usize::from(v2[9]) + 32;
    let count = u32::from_be_bytes(v2[at..at + 4].try_into().unwrap()) as usize;
    at += 4;
    let first_flag = at + 1 + usize::from(v2[at]) + 32;
    let mut v1 = v2[..at].to_vec();
    v1[8] = 1;
    for _ in 0..count {
        let len = 1 + usize::from(v2[at]) + 32;
        assert!(v2[at + len] <= 1, "a confirmed flag");
        v1.extend_from_slice(&v2[at..at + len]);
        at += len + 1;
    }
    v1.extend_from_slice(&v2[at..]);
    let mut old = restored(&alice, &v1, 2);
    assert!(!old.is_confirmed("bob"));
    assert!(old.is_confirmed("alice"));
    assert_eq!(old.pinned_key("bob"), Some(bob.key()));
    // A KeyPackage under bob's name with another key is refused, and confirms nothing.
    let forged = Member::new("bob", 99).e.key_packages(1, T0).unwrap();
    assert!(matches!(
        old.open_direct("bob", &forged[0], T0),
        Err(E2eeError::KeyChanged { .. })
    ));
    assert!(!old.is_confirmed("bob"));
    // A flag other than 0 or 1 is refused.
    let mut bad = v2.clone();
    bad[first_flag] = 2;
    assert!(matches!(
        E2ee::restore(&alice.id, "alice", MlsCrypto::from_seed([3; 32]), &bad),
        Err(E2eeError::State(StateError::Invalid))
    ));
}
