//! Removal, competing Commits, direct groups to offline peers, the update policy and
//! changed contact keys.

use alloc::string::String;
use alloc::vec::Vec;

use mls_rs::MlsMessage;

use super::tests::{Log, Member, T0, message, names, round, three_members};
use super::*;

#[test]
fn a_removed_member_cannot_read_what_follows() {
    let (mut log, mut alice, mut bob, mut carol) = three_members();
    let room = log.room;
    round(&mut log, &mut [&mut alice, &mut bob, &mut carol], "before");

    // The hub says bob left: the next sender commits his removal first.
    assert_eq!(
        alice.e.stale_members(room, &["alice", "carol"]),
        names(&["bob"])
    );
    let bob_before = bob.e.export_state();
    let out = alice.e.remove_members(room, &["bob"], T0).unwrap();
    assert!(out.welcome.is_none());
    log.commit("alice", &out).unwrap();
    alice.e.commit_accepted(room).unwrap();
    alice.say(&mut log, "bob is gone");

    assert_eq!(
        alice.deliver(&log),
        [Inbound::OwnCommit, Inbound::OwnMessage]
    );
    assert_eq!(
        carol.deliver(&log),
        [
            Inbound::Commit {
                epoch: 3,
                added: Vec::new(),
                removed: names(&["bob"])
            },
            message("alice", "bob is gone")
        ]
    );
    // bob, still relayed the log, learns he is out, and reads nothing more.
    assert_eq!(bob.deliver(&log), [Inbound::Removed, Inbound::Ignored]);
    assert!(!bob.e.has_group(room));
    assert!(alice.e.stale_members(room, &["alice", "carol"]).is_empty());

    // bob's state from before the removal cannot decrypt the message sent after it,
    // whether or not it sees the Commit first.
    let mut old =
        E2ee::restore(&bob.id, "bob", MlsCrypto::from_seed([9; 32]), &bob_before).unwrap();
    let msg = &log.entries[log.entries.len() - 1];
    let r = old.handle_room_message(room, msg.seq, &msg.from, &msg.body, T0);
    assert!(
        matches!(
            r,
            Err(E2eeError::FutureEpoch {
                epoch: 3,
                current: 2
            })
        ),
        "{r:?}"
    );
    let mut old =
        E2ee::restore(&bob.id, "bob", MlsCrypto::from_seed([9; 32]), &bob_before).unwrap();
    for en in &log.entries[log.entries.len() - 2..] {
        let r = old.handle_room_message(room, en.seq, &en.from, &en.body, T0);
        assert!(!matches!(r, Ok(Inbound::Message { .. })), "{r:?}");
    }
    round(&mut log, &mut [&mut alice, &mut carol], "after");
}

#[test]
fn the_loser_of_two_commits_for_one_epoch_processes_the_winner_and_retries() {
    let (mut log, mut alice, mut bob, mut carol) = three_members();
    let room = log.room;
    let mut dave = Member::new("dave", 4);
    let dave_kp = dave.e.key_packages(1, T0).unwrap();

    // alice and bob both commit for epoch 2; the hub takes alice's.
    let a = alice.e.update(room, T0).unwrap();
    let b = bob.e.add_member(room, &dave_kp[0], T0).unwrap();
    log.commit("alice", &a).unwrap();
    assert_eq!(log.commit("bob", &b), Err(()));
    bob.e.commit_refused(room).unwrap();
    assert_eq!(
        bob.e.epoch(room),
        Some(2),
        "the refused commit is not applied"
    );
    alice.e.commit_accepted(room).unwrap();

    let winner = Inbound::Commit {
        epoch: 3,
        added: Vec::new(),
        removed: Vec::new(),
    };
    assert_eq!(bob.deliver(&log), core::slice::from_ref(&winner));
    assert_eq!(carol.deliver(&log), [winner]);
    assert_eq!(alice.deliver(&log), [Inbound::OwnCommit]);

    // bob retries with a fresh key package of dave's; this time it wins.
    let dave_kp = dave.e.key_packages(1, T0).unwrap();
    let b = bob.e.add_member(room, &dave_kp[0], T0).unwrap();
    let at = log.commit("bob", &b).unwrap();
    bob.e.commit_accepted(room).unwrap();
    dave.cursor = at + 1;
    assert_eq!(dave.deliver(&log), [Inbound::Joined]);
    for m in [&mut alice, &mut carol] {
        let got = m.deliver(&log);
        assert_eq!(
            got,
            [
                Inbound::Commit {
                    epoch: 4,
                    added: names(&["dave"]),
                    removed: Vec::new()
                },
                Inbound::Ignored
            ]
        );
    }
    assert_eq!(bob.deliver(&log), [Inbound::OwnCommit, Inbound::Ignored]);
    round(
        &mut log,
        &mut [&mut alice, &mut bob, &mut carol, &mut dave],
        "four",
    );
}

#[test]
fn a_refused_commit_after_the_winner_was_processed_changes_nothing() {
    let (mut log, mut alice, mut bob, mut carol) = three_members();
    let room = log.room;
    let a = alice.e.update(room, T0).unwrap();
    let b = bob.e.update(room, T0).unwrap();
    log.commit("alice", &a).unwrap();
    assert_eq!(log.commit("bob", &b), Err(()));
    // bob sees the winner before the refusal.
    assert_eq!(bob.deliver(&log).len(), 1);
    bob.e.commit_refused(room).unwrap();
    assert_eq!(bob.e.epoch(room), Some(3));
    alice.e.commit_accepted(room).unwrap();
    alice.deliver(&log);
    carol.deliver(&log);
    round(&mut log, &mut [&mut alice, &mut bob, &mut carol], "agreed");
}

#[test]
fn a_direct_group_reaches_an_offline_peer_later() {
    let mut alice = Member::new("alice", 1);
    let mut dave = Member::new("dave", 4);
    let kp = dave.e.key_packages(3, T0).unwrap();
    // dave goes offline; alice opens a direct group from one of his packages.
    let open = alice.e.open_direct("dave", &kp[1], T0).unwrap();
    assert!(matches!(
        alice.e.open_direct("dave", &kp[2], T0),
        Err(E2eeError::DirectPending(_))
    ));
    let mut log = Log::new(b"DM2345");
    log.epoch = MlsMessage::from_bytes(&open.group_info).unwrap().epoch();
    assert_eq!(log.epoch, Some(1));
    log.group_info = open.group_info.clone();
    log.push("alice", open.welcome.clone());
    alice.e.bind_direct("dave", log.room).unwrap();
    assert!(alice.e.has_group(log.room));
    alice.say(&mut log, "hi dave");
    alice.say(&mut log, "are you there?");
    assert_eq!(
        alice.deliver(&log),
        [Inbound::Ignored, Inbound::OwnMessage, Inbound::OwnMessage]
    );

    // Later dave restarts from the state he wrote after uploading his packages, connects
    // and catches up from the Welcome.
    let state = dave.e.export_state();
    dave.e = E2ee::restore(&dave.id, "dave", MlsCrypto::from_seed([44; 32]), &state).unwrap();
    assert_eq!(
        dave.deliver(&log),
        [
            Inbound::Joined,
            message("alice", "hi dave"),
            message("alice", "are you there?")
        ]
    );
    assert_eq!(dave.e.pinned_key("alice"), Some(alice.key()));
    dave.say(&mut log, "here now");
    assert_eq!(alice.deliver(&log), [message("dave", "here now")]);

    // The used package's secret is gone; the others still work.
    let again = dave
        .e
        .handle_room_message(log.room, 1, "alice", &open.welcome, T0);
    assert_eq!(again.unwrap(), Inbound::Ignored);
    let mut erin = Member::new("erin", 5);
    assert!(erin.e.open_direct("dave", &kp[2], T0).is_ok());
}

#[test]
fn a_cancelled_direct_group_is_dropped() {
    let mut alice = Member::new("alice", 1);
    let mut carol = Member::new("carol", 3);
    let kp = carol.e.key_packages(1, T0).unwrap();
    alice.e.open_direct("carol", &kp[0], T0).unwrap();
    let with_pending = alice.e.export_state();
    alice.e.cancel_direct("carol");
    assert!(alice.e.export_state().len() < with_pending.len());
    let room = crate::wire::RoomId::parse(b"DM2345").unwrap();
    assert!(matches!(
        alice.e.bind_direct("carol", room),
        Err(E2eeError::NoDirect(_))
    ));
    // A key package for someone else is refused.
    assert!(matches!(
        alice.e.open_direct("dave", &kp[0], T0),
        Err(E2eeError::KeyPackageMismatch { .. })
    ));
}

#[test]
fn the_update_policy_asks_for_an_update_after_messages_or_time() {
    let (mut log, mut alice, mut bob, mut carol) = three_members();
    let room = log.room;
    let policy = UpdatePolicy {
        max_messages: 3,
        max_secs: 100,
    };
    alice.e.configure(E2eeConfig {
        update: policy,
        ..E2eeConfig::default()
    });
    assert!(!alice.e.needs_update(room, T0 + 10));
    for i in 0..3 {
        assert!(!alice.e.needs_update(room, T0 + 10), "after {i} messages");
        alice.say(&mut log, "tick");
    }
    assert!(alice.e.needs_update(room, T0 + 10));
    let out = alice.e.update(room, T0 + 20).unwrap();
    assert!(
        !alice.e.needs_update(room, T0 + 20),
        "not while the commit waits"
    );
    log.commit("alice", &out).unwrap();
    alice.e.commit_accepted(room).unwrap();
    assert!(
        !alice.e.needs_update(room, T0 + 20),
        "counter and clock restart"
    );
    assert!(!alice.e.needs_update(room, T0 + 119));
    assert!(
        alice.e.needs_update(room, T0 + 120),
        "time since the last commit"
    );
    // bob, on the default policy, does not need one yet.
    assert!(!bob.e.needs_update(room, T0 + 120));
    assert!(
        bob.e
            .needs_update(room, T0 + UpdatePolicy::default().max_secs)
    );
    bob.deliver(&log);
    carol.deliver(&log);
    alice.deliver(&log);
    round(&mut log, &mut [&mut alice, &mut bob, &mut carol], "updated");
}

#[test]
fn a_changed_key_blocks_sending_until_accepted() {
    let (mut log, mut alice, mut bob, mut carol) = three_members();
    let room = log.room;
    let old_carol = carol.key();
    // carol loses her device: a new identity under the same name rejoins by external
    // commit, which removes her old leaf.
    let mut carol2 = Member::new("carol", 33);
    assert_ne!(carol2.key(), old_carol);
    let out = carol2.e.join_external(room, &log.group_info, T0).unwrap();
    log.commit("carol", &out).unwrap();
    carol2.e.commit_accepted(room).unwrap();
    carol2.cursor = log.entries.len();
    let rejoin = Inbound::Commit {
        epoch: 3,
        added: Vec::new(),
        removed: Vec::new(),
    };
    assert_eq!(alice.deliver(&log), core::slice::from_ref(&rejoin));
    assert_eq!(bob.deliver(&log), [rejoin]);
    assert_eq!(carol.deliver(&log), [Inbound::Removed]);

    let roster: Vec<String> = bob.e.members(room).into_iter().map(|(n, _)| n).collect();
    assert_eq!(roster, names(&["alice", "bob", "carol"]));
    assert_eq!(
        bob.e.key_changes(room),
        [(String::from("carol"), carol2.key())]
    );
    assert_eq!(bob.e.pinned_key("carol"), Some(old_carol));
    bob.confirm_members(room);
    assert!(matches!(
        bob.e.encrypt(room, b"hello?"),
        Err(E2eeError::KeyChanged { name }) if name == "carol"
    ));
    // Adding or opening a direct group with the new key is refused too.
    let kp = carol2.e.key_packages(1, T0).unwrap();
    assert!(matches!(
        bob.e.open_direct("carol", &kp[0], T0),
        Err(E2eeError::KeyChanged { .. })
    ));
    // bob compares safety numbers with carol, then accepts.
    bob.e.accept_key("carol", carol2.key());
    assert!(bob.e.key_changes(room).is_empty());
    bob.say(&mut log, "welcome back");
    assert_eq!(carol2.deliver(&log), [message("bob", "welcome back")]);
    assert_eq!(bob.deliver(&log), [Inbound::OwnMessage]);
    // alice has not accepted yet.
    assert!(alice.e.encrypt(room, b"x").is_err());
    alice.e.accept_key("carol", carol2.key());
    alice.deliver(&log);
    round(
        &mut log,
        &mut [&mut alice, &mut bob, &mut carol2],
        "trusted",
    );
}

#[test]
fn a_message_sent_just_before_a_commit_still_decrypts_after_it() {
    let (mut log, mut alice, mut bob, mut carol) = three_members();
    let room = log.room;
    // carol encrypts at epoch 2; alice's Commit is logged first.
    carol.confirm_members(room);
    let late = carol.e.encrypt(room, b"sent at epoch 2").unwrap();
    let out = alice.e.update(room, T0).unwrap();
    log.commit("alice", &out).unwrap();
    alice.e.commit_accepted(room).unwrap();
    log.send("carol", late);
    let commit = Inbound::Commit {
        epoch: 3,
        added: Vec::new(),
        removed: Vec::new(),
    };
    assert_eq!(
        bob.deliver(&log),
        [commit.clone(), message("carol", "sent at epoch 2")]
    );
    assert_eq!(
        alice.deliver(&log),
        [Inbound::OwnCommit, message("carol", "sent at epoch 2")]
    );
    assert_eq!(carol.deliver(&log), [commit, Inbound::OwnMessage]);
    round(&mut log, &mut [&mut alice, &mut bob, &mut carol], "epoch 3");
}

#[test]
fn a_member_who_lost_its_state_rejoins_and_recognizes_its_commit() {
    let (mut log, mut alice, mut bob, mut carol) = three_members();
    let room = log.room;
    alice.say(&mut log, "lost on bob");
    // bob's device loses its state: the same account, a fresh E2ee, still a room member.
    let fresh = E2ee::new(&bob.id, "bob", MlsCrypto::from_seed([77; 32])).unwrap();
    bob.e = fresh;
    let out = bob.e.join_external(room, &log.group_info, T0).unwrap();
    let at = log.commit("bob", &out).unwrap();
    for m in [&mut alice, &mut carol] {
        let got = m.deliver(&log);
        assert_eq!(
            got.last(),
            Some(&Inbound::Commit {
                epoch: 3,
                added: Vec::new(),
                removed: Vec::new()
            })
        );
    }
    alice.say(&mut log, "hi new bob");
    // Before the echo, an entry of the new epoch waits for the join's answer (not
    // counted as handled); older entries are ignored.
    let hi = &log.entries[at + 1];
    let r = bob
        .e
        .handle_room_message(room, hi.seq, &hi.from, &hi.body, T0);
    assert!(matches!(r, Err(E2eeError::JoinPending(_))), "{r:?}");
    assert_eq!(
        bob.deliver(&log),
        [
            Inbound::Ignored,
            Inbound::OwnCommit,
            message("alice", "hi new bob")
        ]
    );
    assert!(bob.e.has_group(room));
    bob.e.commit_accepted(room).unwrap();
    assert_eq!(bob.e.epoch(room), Some(3));
    let roster: Vec<String> = alice.e.members(room).into_iter().map(|(n, _)| n).collect();
    assert_eq!(roster, names(&["alice", "bob", "carol"]));
    assert_eq!(carol.deliver(&log), [message("alice", "hi new bob")]);
    assert_eq!(alice.deliver(&log), [Inbound::OwnMessage]);
    round(
        &mut log,
        &mut [&mut alice, &mut bob, &mut carol],
        "rejoined",
    );
}
