//! A small in-test "server" (one room log that stamps sequence numbers and relays every
//! entry to every member, Welcomes included) and the three-member conversation.

use alloc::string::String;
use alloc::vec::Vec;

use mls_rs::MlsMessage;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;
use crate::crypto::Identity;
use crate::wire::RoomId;

/// A fixed "now" for the tests (2027).
pub(super) const T0: u64 = 1_800_000_000;

/// One log entry, as the hub stores and relays it.
pub(super) struct Entry {
    pub(super) seq: u64,
    pub(super) from: String,
    pub(super) body: Vec<u8>,
}

/// One room's log, with the hub's group rules: one Commit per epoch, application messages
/// within four epochs of the current one.
pub(super) struct Log {
    pub(super) room: RoomId,
    pub(super) entries: Vec<Entry>,
    pub(super) epoch: Option<u64>,
    pub(super) group_info: Vec<u8>,
    /// Added to the sequence numbers of new entries.
    pub(super) seq_offset: u64,
}

impl Log {
    pub(super) fn new(room: &[u8; 6]) -> Log {
        Log {
            room: RoomId::parse(room).unwrap(),
            entries: Vec::new(),
            epoch: None,
            group_info: Vec::new(),
            seq_offset: 0,
        }
    }

    /// `InitGroup`.
    pub(super) fn init(&mut self, group_info: Vec<u8>) {
        let epoch = MlsMessage::from_bytes(&group_info).unwrap().epoch();
        assert_eq!(epoch, Some(0));
        self.epoch = epoch;
        self.group_info = group_info;
    }

    /// Appends an entry; returns its index (its sequence number is index + 100, so tests
    /// do not confuse the two).
    pub(super) fn push(&mut self, from: &str, body: Vec<u8>) -> usize {
        let i = self.entries.len();
        self.entries.push(Entry {
            seq: i as u64 + 100 + self.seq_offset,
            from: String::from(from),
            body,
        });
        i
    }

    /// `GroupCommit`: `Ok(index of the commit)` (the Welcome, if any, follows it), or
    /// `Err(())` for `StaleEpoch`.
    pub(super) fn commit(&mut self, from: &str, out: &CommitOut) -> Result<usize, ()> {
        let msg = MlsMessage::from_bytes(&out.commit).unwrap();
        let epoch = msg.epoch().unwrap();
        if Some(epoch) != self.epoch {
            return Err(());
        }
        let info = MlsMessage::from_bytes(&out.group_info).unwrap();
        assert_eq!(
            info.epoch(),
            Some(epoch + 1),
            "group info of the next epoch"
        );
        let i = self.push(from, out.commit.clone());
        self.epoch = Some(epoch + 1);
        self.group_info = out.group_info.clone();
        if let Some(w) = &out.welcome {
            self.push(from, w.clone());
        }
        Ok(i)
    }

    /// `RoomMessage` with the hub's epoch window.
    pub(super) fn send(&mut self, from: &str, body: Vec<u8>) -> usize {
        let epoch = MlsMessage::from_bytes(&body).unwrap().epoch().unwrap();
        let current = self.epoch.unwrap();
        assert!(epoch <= current && epoch + 4 >= current, "hub epoch window");
        self.push(from, body)
    }
}

/// A test account and its cursor in one log.
pub(super) struct Member {
    pub(super) e: E2ee,
    pub(super) id: Identity,
    pub(super) name: String,
    pub(super) cursor: usize,
}

impl Member {
    pub(super) fn new(name: &str, seed: u8) -> Member {
        let id = Identity::generate(&mut ChaCha20Rng::from_seed([seed; 32]));
        let e = E2ee::new(&id, name, MlsCrypto::from_seed([seed ^ 0x5a; 32])).unwrap();
        Member {
            e,
            id,
            name: String::from(name),
            cursor: 0,
        }
    }

    /// The MLS signature key.
    pub(super) fn key(&self) -> [u8; 32] {
        self.e.key
    }

    /// Handles every entry past the cursor; panics on an error.
    pub(super) fn deliver(&mut self, log: &Log) -> Vec<Inbound> {
        let mut out = Vec::new();
        while self.cursor < log.entries.len() {
            let en = &log.entries[self.cursor];
            self.cursor += 1;
            let r = self
                .e
                .handle_room_message(log.room, en.seq, &en.from, &en.body, T0)
                .unwrap_or_else(|e| panic!("{} at entry {}: {e}", self.name, self.cursor - 1));
            out.push(r);
        }
        out
    }

    /// Plays the server's key directory, honestly: every member's key in the group is
    /// confirmed where it is the one pinned.
    pub(super) fn confirm_members(&mut self, room: RoomId) {
        for (n, k) in self.e.members(room) {
            self.e.confirm_key(&n, k);
        }
    }

    /// Encrypts and sends a text.
    pub(super) fn say(&mut self, log: &mut Log, text: &str) {
        self.confirm_members(log.room);
        let body = self.e.encrypt(log.room, text.as_bytes()).unwrap();
        log.send(&self.name, body);
    }
}

pub(super) fn message(from: &str, text: &str) -> Inbound {
    Inbound::Message {
        from: String::from(from),
        plaintext: text.as_bytes().to_vec(),
    }
}

pub(super) fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| String::from(*s)).collect()
}

/// alice creates the room's group, bob joins by external commit, carol is added from a
/// key package (her cursor starts at the Welcome, as the hub does). Everyone is caught up.
pub(super) fn three_members() -> (Log, Member, Member, Member) {
    let mut log = Log::new(b"ABC234");
    let mut alice = Member::new("alice", 1);
    let mut bob = Member::new("bob", 2);
    let mut carol = Member::new("carol", 3);

    log.init(alice.e.create_group(log.room, T0).unwrap());
    assert!(alice.e.has_group(log.room));
    assert_eq!(alice.e.epoch(log.room), Some(0));

    let join = bob.e.join_external(log.room, &log.group_info, T0).unwrap();
    assert!(join.welcome.is_none());
    assert!(
        !bob.e.has_group(log.room),
        "not active before the server's answer"
    );
    log.commit("bob", &join).unwrap();
    bob.e.commit_accepted(log.room).unwrap();
    bob.cursor = log.entries.len();
    assert_eq!(bob.e.epoch(log.room), Some(1));

    assert_eq!(
        alice.deliver(&log),
        [Inbound::Commit {
            epoch: 1,
            added: names(&["bob"]),
            removed: Vec::new()
        }]
    );

    let kp = carol.e.key_packages(2, T0).unwrap();
    assert_eq!(kp.len(), 2);
    let add = alice.e.add_member(log.room, &kp[0], T0).unwrap();
    assert!(add.welcome.is_some());
    let at = log.commit("alice", &add).unwrap();
    alice.e.commit_accepted(log.room).unwrap();
    carol.cursor = at + 1;

    assert_eq!(alice.deliver(&log), [Inbound::OwnCommit, Inbound::Ignored]);
    assert_eq!(
        bob.deliver(&log),
        [
            Inbound::Commit {
                epoch: 2,
                added: names(&["carol"]),
                removed: Vec::new()
            },
            Inbound::Ignored
        ]
    );
    assert_eq!(carol.deliver(&log), [Inbound::Joined]);
    (log, alice, bob, carol)
}

/// Everyone says something; everyone else reads it, in order.
pub(super) fn round(log: &mut Log, members: &mut [&mut Member], tag: &str) {
    let start = log.entries.len();
    for m in members.iter_mut() {
        let text = alloc::format!("{tag} from {}", m.name);
        m.say(log, &text);
    }
    for m in members.iter_mut() {
        let got = m.deliver(log);
        assert_eq!(got.len(), log.entries.len() - start);
        for (i, sender) in log.entries[start..].iter().enumerate() {
            let expected = if sender.from == m.name {
                Inbound::OwnMessage
            } else {
                message(&sender.from, &alloc::format!("{tag} from {}", sender.from))
            };
            assert_eq!(got[i], expected, "{} reading entry {}", m.name, start + i);
        }
    }
}

#[test]
fn three_members_join_three_ways_and_talk_in_order() {
    let (mut log, mut alice, mut bob, mut carol) = three_members();
    let room = log.room;
    for m in [&alice, &bob, &carol] {
        assert_eq!(m.e.epoch(room), Some(2), "{}", m.name);
        let roster: Vec<String> = m.e.members(room).into_iter().map(|(n, _)| n).collect();
        assert_eq!(roster, names(&["alice", "bob", "carol"]));
    }
    // Rosters carry the MLS signature keys, and each account pinned the others'.
    assert_eq!(
        alice.e.members(room),
        [
            (String::from("alice"), alice.key()),
            (String::from("bob"), bob.key()),
            (String::from("carol"), carol.key())
        ]
    );
    assert_eq!(carol.e.pinned_key("alice"), Some(alice.key()));
    assert_eq!(bob.e.pinned_key("carol"), Some(carol.key()));
    round(&mut log, &mut [&mut alice, &mut bob, &mut carol], "one");
    round(&mut log, &mut [&mut carol, &mut alice, &mut bob], "two");
}

#[test]
fn echo_of_own_commit_may_come_before_the_servers_ok() {
    let (mut log, mut alice, mut bob, mut carol) = three_members();
    let room = log.room;
    let out = bob.e.update(room, T0 + 5).unwrap();
    assert!(matches!(
        bob.e.update(room, T0),
        Err(E2eeError::CommitPending(_))
    ));
    log.commit("bob", &out).unwrap();
    // The echo first: applied from the stream.
    assert_eq!(bob.deliver(&log), [Inbound::OwnCommit]);
    assert_eq!(bob.e.epoch(room), Some(3));
    // Then the Ok: nothing left to do.
    bob.e.commit_accepted(room).unwrap();
    assert_eq!(bob.e.epoch(room), Some(3));
    alice.deliver(&log);
    carol.deliver(&log);
    assert_eq!(alice.e.epoch(room), Some(3));
    round(&mut log, &mut [&mut alice, &mut bob, &mut carol], "after");
}

#[test]
fn entries_delivered_again_are_ignored() {
    let (mut log, mut alice, mut bob, _carol) = three_members();
    alice.say(&mut log, "once");
    assert_eq!(bob.deliver(&log), [message("alice", "once")]);
    let en = log.entries.last().unwrap();
    let again = bob
        .e
        .handle_room_message(log.room, en.seq, &en.from, &en.body, T0)
        .unwrap();
    assert_eq!(again, Inbound::Ignored);
}
