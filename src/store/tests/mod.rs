use std::path::PathBuf;

use super::*;

mod batches;
mod migrations;
use cove_core::store::{
    KeyPackageRecord, LogLoad, LogMemory, LoggedMessage, MemberRecord, MemoryStore, RoomRecord,
};
use cove_core::wire::RoomId;

/// A tiny deterministic generator so the tests need no RNG crate.
pub(super) struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const NAMES: [&str; 4] = ["alice", "bob", "carol", "dave"];

/// A fresh directory for one test's database files.
pub(super) fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cove-store-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    dir
}

fn random_dm_op(rng: &mut XorShift, next_id: &mut u64, live: &mut Vec<(String, u64)>) -> StoreOp {
    let name = NAMES[rng.below(4) as usize];
    match rng.below(6) {
        0 => StoreOp::AccountCreated {
            name: name.into(),
            key: [rng.below(256) as u8; 32],
        },
        1 | 2 => {
            *next_id += 1 + rng.below(3);
            live.push((name.to_string(), *next_id));
            StoreOp::DmQueued(QueuedDm {
                msg_id: *next_id,
                to: name.into(),
                from: NAMES[rng.below(4) as usize].into(),
                timestamp: rng.next() >> 2,
                body: Arc::from(vec![rng.below(256) as u8; rng.below(40) as usize]),
            })
        }
        3 if !live.is_empty() => {
            let (to, msg_id) = live.swap_remove(rng.below(live.len() as u64) as usize);
            StoreOp::DmAcked {
                to: to.into(),
                msg_id,
            }
        }
        3 | 4 => StoreOp::PrekeysStored {
            name: name.into(),
            bundle: Arc::from(vec![rng.below(256) as u8; 1 + rng.below(20) as usize]),
        },
        _ => StoreOp::IdsReserved {
            upto: rng.below(1 << 40),
        },
    }
}

/// A room op on one of three room IDs, drawn with the rooms' current state in view so
/// that a message's sequence number is never one the log holds (SQLite refuses that, see
/// the module docs); usually it is the next one, sometimes after a gap (as retention and
/// the injected bugs make), rarely an old one (so `next_seq` must not go back). Everything
/// else is drawn blindly: ops on rooms that do not exist, members joining twice, cursors
/// of non-members, trims past the end.
fn random_room_op(rng: &mut XorShift, now: &Records) -> StoreOp {
    let room = RoomId([b'A' + rng.below(3) as u8; 6]);
    let name: Arc<str> = NAMES[rng.below(4) as usize].into();
    let record = now.rooms.iter().find(|r| r.room == room);
    let next_seq = record.map_or(1, |r| r.next_seq);
    let mut seq = next_seq + rng.below(4) / 3;
    if rng.below(8) == 0 {
        let old = 1 + rng.below(next_seq);
        if record.is_some_and(|r| r.log.iter().all(|m| m.seq != old)) {
            seq = old;
        }
    }
    match rng.below(14) {
        0 => StoreOp::RoomCreated {
            room,
            title: format!("title {}", rng.below(100)).into(),
            private: rng.below(2) == 1,
            admin: name,
        },
        // Rarely, so that logs and memberships build up between deletions.
        1 if rng.below(3) == 0 => StoreOp::RoomDeleted { room },
        2 | 3 => StoreOp::MemberAdded {
            room,
            name,
            since: next_seq - 1,
        },
        4 => StoreOp::MemberRemoved { room, name },
        5 => StoreOp::Invited { room, name },
        6 => StoreOp::RoomTitleSet {
            room,
            title: format!("retitled {}", rng.below(100)).into(),
        },
        7 => StoreOp::RoomAdminSet { room, admin: name },
        8 => StoreOp::LogTrimmed {
            room,
            below: rng.below(next_seq + 2),
        },
        9 | 10 => StoreOp::CursorAdvanced {
            room,
            name,
            seq: rng.below(next_seq + 2),
        },
        _ => StoreOp::RoomMessageLogged(LoggedMessage {
            room,
            seq,
            from: name,
            timestamp: rng.next() >> 2,
            body: Arc::from(vec![rng.below(256) as u8; rng.below(60) as usize]),
        }),
    }
}

/// An MLS op drawn blindly against the three room IDs (so groups are set and rooms made
/// direct whether the room exists, was deleted or never was) and the KeyPackage
/// directory. Packages come from a pool of eight per user, so the same one-time package is
/// uploaded twice, last-resort uploads repeat (replacing the earlier one) and a take may
/// name a package that is stored once, twice, only as a last-resort one, or not at all.
fn random_mls_op(rng: &mut XorShift, now: &Records) -> StoreOp {
    let room = RoomId([b'A' + rng.below(3) as u8; 6]);
    let name: Arc<str> = NAMES[rng.below(4) as usize].into();
    let package: Arc<[u8]> = Arc::from(vec![rng.below(4) as u8; 1 + rng.below(2) as usize]);
    let epoch = now
        .rooms
        .iter()
        .find(|r| r.room == room)
        .and_then(|r| r.group.as_ref())
        .map_or(0, |(e, _)| e + 1);
    match rng.below(10) {
        0..=2 => StoreOp::GroupSet {
            room,
            epoch: if rng.below(4) == 0 {
                rng.below(1 << 40)
            } else {
                epoch
            },
            group_info: Arc::from(vec![rng.below(256) as u8; 1 + rng.below(80) as usize]),
        },
        3 => StoreOp::DirectCreated { room },
        4..=6 => StoreOp::KeyPackageAdded(KeyPackageRecord {
            name,
            package,
            last_resort: rng.below(3) == 0,
        }),
        // A stored package, one-time or last-resort.
        7 | 8 if !now.key_packages.is_empty() => {
            let k = &now.key_packages[rng.below(now.key_packages.len() as u64) as usize];
            StoreOp::KeyPackageTaken {
                name: k.name.clone(),
                package: k.package.clone(),
            }
        }
        _ => StoreOp::KeyPackageTaken { name, package },
    }
}

/// Orders what the two stores may order differently: accounts and DMs come back in
/// insertion / ID order from SQLite, prekeys by name, a room's log by sequence number
/// (`MemoryStore` keeps the order of logging, the same for the hub, but not for the old
/// sequence numbers drawn above). Rooms, members, invitations and KeyPackages are NOT
/// normalised: SQLite gives them in creation, join, invitation and upload order, as
/// `MemoryStore` keeps them.
pub(super) fn normalized(mut r: Records) -> Records {
    r.accounts.sort();
    r.queued.sort_by_key(|q| q.msg_id);
    r.prekeys.sort();
    for room in &mut r.rooms {
        room.log.sort_by_key(|m| m.seq);
    }
    r
}

/// How often the random histories met the MLS ops' edge cases.
#[derive(Debug, Default)]
struct MlsEdges {
    /// `GroupSet` on a room that does not exist (never created, or deleted).
    group_on_missing_room: usize,
    /// `GroupSet` replacing an existing group.
    group_replaced: usize,
    /// A last-resort upload replacing the user's earlier one.
    last_resort_replaced: usize,
    /// A one-time upload of a package the user already has stored.
    duplicate_upload: usize,
    /// A take that deleted a package.
    taken: usize,
    /// A take that matched nothing (including a last-resort package's bytes).
    take_missed: usize,
    /// A take naming a last-resort package's owner and bytes.
    take_of_last_resort: usize,
}

impl MlsEdges {
    /// Counts the edge case `op` is, given the state it applies to.
    fn count(&mut self, op: &StoreOp, before: &Records) {
        match op {
            StoreOp::GroupSet { room, .. } => match before.rooms.iter().find(|r| r.room == *room) {
                None => self.group_on_missing_room += 1,
                Some(r) if r.group.is_some() => self.group_replaced += 1,
                Some(_) => {}
            },
            StoreOp::KeyPackageAdded(kp) => {
                let mine = |k: &&KeyPackageRecord| k.name == kp.name;
                if kp.last_resort
                    && before
                        .key_packages
                        .iter()
                        .filter(mine)
                        .any(|k| k.last_resort)
                {
                    self.last_resort_replaced += 1;
                }
                if !kp.last_resort && before.key_packages.iter().filter(mine).any(|k| k == kp) {
                    self.duplicate_upload += 1;
                }
            }
            StoreOp::KeyPackageTaken { name, package } => {
                let matching = |last_resort| {
                    before.key_packages.iter().any(|k| {
                        k.last_resort == last_resort && k.name == *name && k.package == *package
                    })
                };
                if matching(false) {
                    self.taken += 1;
                } else {
                    self.take_missed += 1;
                }
                if matching(true) {
                    self.take_of_last_resort += 1;
                }
            }
            _ => {}
        }
    }
}

/// Reads a random range of every room's log from both stores and compares them; returns
/// how many found messages.
fn same_reads(
    sql: &mut SqliteStore,
    mem: &mut MemoryStore,
    now: &Records,
    rng: &mut XorShift,
) -> usize {
    let mut found = 0;
    for r in &now.rooms {
        let from = rng.below(r.next_seq + 1);
        let load = LogLoad {
            id: 1,
            room: r.room,
            from,
            to: from + 1 + rng.below(8),
        };
        let want = mem.read_log(&load).expect("read");
        assert_eq!(sql.read_log(&load).expect("read"), want, "{load:?}");
        found += usize::from(!want.is_empty());
    }
    found
}

#[test]
fn agrees_with_the_memory_store_on_random_histories() {
    // Rooms, members, invitations, log entries, groups, direct rooms, one-time and
    // last-resort KeyPackages, at checkpoints.
    let mut saw = [0usize; 8];
    let (mut reads, mut older) = (0, 0);
    let mut edges = MlsEdges::default();
    for seed in 1..=24u64 {
        let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut sql = SqliteStore::in_memory().expect("open");
        let mut mem = MemoryStore::new();
        let mut next_id = 0;
        let mut live = Vec::new();
        // Its own generator, so that the reads change nothing of the histories.
        let mut read_rng = XorShift(seed.wrapping_mul(0xD1B5_4A32_D192_ED03) | 1);
        for batch in 0..80 {
            let n = rng.below(9) as usize;
            let mut ops = Vec::with_capacity(n);
            for _ in 0..n {
                // Drawn against the memory store's state as of this op, then applied to
                // it at once; SQLite gets the whole batch in one transaction afterwards.
                let op = match rng.below(9) {
                    0..=2 => random_dm_op(&mut rng, &mut next_id, &mut live),
                    3 | 4 => random_mls_op(&mut rng, mem.records()),
                    _ => random_room_op(&mut rng, mem.records()),
                };
                edges.count(&op, mem.records());
                mem.apply(std::slice::from_ref(&op)).expect("apply");
                ops.push(op);
            }
            sql.apply(&ops).expect("apply");
            if batch % 10 == 9 {
                let a = normalized(sql.load(LogMemory::ALL).expect("load"));
                let b = normalized(mem.load(LogMemory::ALL).expect("load"));
                assert_eq!(a, b, "seed {seed}, batch {batch}");
                // And older messages without bodies, split the same way.
                let (messages, bytes) = (read_rng.below(4) as usize, read_rng.below(40) as usize);
                let whole = LogMemory { messages, bytes };
                let split = normalized(sql.load(whole).expect("load"));
                assert_eq!(
                    split,
                    normalized(mem.load(whole).expect("load")),
                    "{whole:?}"
                );
                older += split.rooms.iter().map(|r| r.older.len()).sum::<usize>();
                reads += same_reads(&mut sql, &mut mem, &b, &mut read_rng);
                saw[0] += b.rooms.len();
                for r in &b.rooms {
                    saw[1] += r.members.len();
                    saw[2] += r.invited.len();
                    saw[3] += r.log.len();
                    saw[4] += usize::from(r.group.is_some());
                    saw[5] += usize::from(r.direct);
                }
                for k in &b.key_packages {
                    saw[6 + usize::from(k.last_resort)] += 1;
                }
            }
        }
    }
    // The comparison means something only if the histories reached interesting states
    // and met every edge case often.
    assert!(saw.iter().all(|&n| n > 50), "too little state: {saw:?}");
    assert!(reads > 50, "too few reads found messages: {reads}");
    assert!(
        older > 50,
        "too few messages came back without bodies: {older}"
    );
    let MlsEdges {
        group_on_missing_room,
        group_replaced,
        last_resort_replaced,
        duplicate_upload,
        taken,
        take_missed,
        take_of_last_resort,
    } = edges;
    assert!(
        [
            group_on_missing_room,
            group_replaced,
            last_resort_replaced,
            duplicate_upload,
            taken,
            take_missed,
            take_of_last_resort,
        ]
        .iter()
        .all(|&n| n > 20),
        "edge cases too rare: {edges:?}"
    );
}

pub(super) fn room(c: u8) -> RoomId {
    RoomId([c; 6])
}

pub(super) fn message(r: RoomId, seq: u64, body: &[u8]) -> StoreOp {
    StoreOp::RoomMessageLogged(LoggedMessage {
        room: r,
        seq,
        from: "alice".into(),
        timestamp: 1_000 + seq,
        body: Arc::from(body),
    })
}

pub(super) fn count(s: &SqliteStore, table: &str) -> i64 {
    s.conn
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .expect("count")
}

#[test]
fn a_deleted_room_leaves_nothing_behind_and_can_be_created_afresh() {
    let mut s = SqliteStore::in_memory().expect("open");
    let (a, b) = (room(b'A'), room(b'B'));
    let created = |r, admin: &str| StoreOp::RoomCreated {
        room: r,
        title: "t".into(),
        private: true,
        admin: admin.into(),
    };
    let joined = |r, name: &str, since| StoreOp::MemberAdded {
        room: r,
        name: name.into(),
        since,
    };
    s.apply(&[
        created(a, "alice"),
        joined(a, "alice", 0),
        StoreOp::Invited {
            room: a,
            name: "bob".into(),
        },
        message(a, 1, b"one"),
        message(a, 2, b"two"),
        group_set(a, 0, b"info a0"),
        group_set(a, 1, b"info a1"),
        StoreOp::DirectCreated { room: a },
        created(b, "carol"),
        joined(b, "carol", 0),
        message(b, 1, b"kept"),
        group_set(b, 3, b"info b3"),
    ])
    .expect("apply");
    assert_eq!(count(&s, "room_groups"), 2, "one group row per room");
    // The group ops of a deleted room (the hub never emits them, but a store must not
    // revive the room or orphan a row) change nothing.
    s.apply(&[
        StoreOp::RoomDeleted { room: a },
        group_set(a, 2, b"too late"),
        StoreOp::DirectCreated { room: a },
    ])
    .expect("delete");
    for table in [
        "rooms",
        "room_members",
        "room_invites",
        "room_log",
        "room_groups",
    ] {
        let n: i64 = s
            .conn
            .query_row(
                &format!("SELECT count(*) FROM {table} WHERE {} = ?1", {
                    if table == "rooms" { "id" } else { "room" }
                }),
                [&a.0[..]],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(n, 0, "{table} still holds rows of the deleted room");
    }
    // Room B is untouched, and A starts again from sequence number 1.
    assert_eq!(count(&s, "room_log"), 1);
    assert_eq!(count(&s, "room_groups"), 1);
    s.apply(&[
        created(a, "dave"),
        joined(a, "dave", 0),
        message(a, 1, b"new"),
    ])
    .expect("recreate");
    let r = s.load(LogMemory::ALL).expect("load");
    let ids: Vec<RoomId> = r.rooms.iter().map(|r| r.room).collect();
    assert!(ids == [b, a], "rooms in creation order");
    let new_a = &r.rooms[1];
    assert_eq!(&*new_a.admin, "dave");
    assert_eq!(new_a.next_seq, 2);
    assert_eq!(new_a.log.len(), 1);
    assert_eq!(&*new_a.log[0].body, b"new");
    assert!(new_a.invited.is_empty());
    assert!(
        !new_a.direct && new_a.group.is_none(),
        "the old room's group is gone"
    );
    assert!(!r.rooms[0].direct);
    assert_eq!(r.rooms[0].group, Some((3, Arc::from(&b"info b3"[..]))));
}

pub(super) fn group_set(r: RoomId, epoch: u64, info: &[u8]) -> StoreOp {
    StoreOp::GroupSet {
        room: r,
        epoch,
        group_info: Arc::from(info),
    }
}

pub(super) fn key_package(name: &str, package: &[u8], last_resort: bool) -> KeyPackageRecord {
    KeyPackageRecord {
        name: name.into(),
        package: Arc::from(package),
        last_resort,
    }
}

pub(super) fn taken(name: &str, package: &[u8]) -> StoreOp {
    StoreOp::KeyPackageTaken {
        name: name.into(),
        package: Arc::from(package),
    }
}

#[test]
fn key_packages_are_replaced_and_taken_as_in_the_memory_store() {
    let mut s = SqliteStore::in_memory().expect("open");
    let mut mem = MemoryStore::new();
    let added = |name, package: &[u8], last_resort| {
        StoreOp::KeyPackageAdded(key_package(name, package, last_resort))
    };
    let ops = [
        added("bob", b"x", false),
        added("bob", b"y", false),
        added("bob", b"x", false), // the same package twice
        added("bob", b"last 1", true),
        added("carol", b"x", false), // the same bytes, another owner
        added("carol", b"last c", true),
        added("bob", b"last 2", true), // replaces "last 1"
        taken("bob", b"x"),            // the older copy
        taken("bob", b"z"),            // nothing stored: nothing happens
        taken("bob", b"last 2"),       // last-resort: never taken
        taken("dave", b"x"),           // nobody's
    ];
    s.apply(&ops).expect("apply");
    mem.apply(&ops).expect("apply");
    let got = s.load(LogMemory::ALL).expect("load").key_packages;
    assert_eq!(got, mem.load(LogMemory::ALL).expect("load").key_packages);
    assert_eq!(
        got,
        [
            key_package("bob", b"y", false),
            key_package("bob", b"x", false),
            key_package("carol", b"x", false),
            key_package("carol", b"last c", true),
            key_package("bob", b"last 2", true),
        ]
    );
    // The schema itself holds a user to one last-resort package.
    let err = s.conn.execute(
        "INSERT INTO key_packages (name, package, last_resort) VALUES ('bob', x'00', 1)",
        [],
    );
    assert!(err.is_err(), "a second last-resort package was stored");
}

#[test]
fn survives_reopening_and_records_the_schema_version() {
    let dir = temp_dir("reopen");
    let path = dir.join("cove.db");
    let mut mem = MemoryStore::new();
    {
        let mut s = SqliteStore::open(&path).expect("open");
        assert_eq!(s.schema_version().expect("version"), SCHEMA_VERSION);
        let ops = [
            StoreOp::AccountCreated {
                name: "bob".into(),
                key: [7; 32],
            },
            StoreOp::DmQueued(QueuedDm {
                msg_id: 5,
                to: "bob".into(),
                from: "alice".into(),
                timestamp: 123,
                body: Arc::from(&b"hello"[..]),
            }),
            StoreOp::IdsReserved { upto: 65_536 },
            StoreOp::RoomCreated {
                room: room(b'R'),
                title: "lobby".into(),
                private: false,
                admin: "bob".into(),
            },
            StoreOp::MemberAdded {
                room: room(b'R'),
                name: "bob".into(),
                since: 0,
            },
            message(room(b'R'), 1, b"hi all"),
            StoreOp::CursorAdvanced {
                room: room(b'R'),
                name: "bob".into(),
                seq: 1,
            },
            StoreOp::DirectCreated { room: room(b'R') },
            group_set(room(b'R'), 0, b"info 0"),
            group_set(room(b'R'), 1, b"info 1"),
            StoreOp::KeyPackageAdded(key_package("bob", b"kp 1", false)),
            StoreOp::KeyPackageAdded(key_package("bob", b"kp 2", false)),
            StoreOp::KeyPackageAdded(key_package("bob", b"last", true)),
            taken("bob", b"kp 1"),
        ];
        s.apply(&ops).expect("apply");
        mem.apply(&ops).expect("apply");
    }
    let mut s = SqliteStore::open(&path).expect("reopen");
    let r = s.load(LogMemory::ALL).expect("load");
    assert_eq!(r, mem.load(LogMemory::ALL).expect("load"));
    assert!(r.rooms[0].direct);
    assert_eq!(r.rooms[0].group, Some((1, Arc::from(&b"info 1"[..]))));
    assert_eq!(
        r.key_packages,
        [
            key_package("bob", b"kp 2", false),
            key_package("bob", b"last", true)
        ]
    );
    assert_eq!(r.accounts, [(Arc::from("bob"), [7; 32])]);
    assert_eq!(r.queued.len(), 1);
    assert_eq!(&*r.queued[0].body, b"hello");
    assert_eq!(r.ids_reserved_upto, 65_536);
    assert_eq!(r.rooms.len(), 1);
    assert_eq!(&*r.rooms[0].title, "lobby");
    assert_eq!(r.rooms[0].next_seq, 2);
    assert_eq!(r.rooms[0].members[0].cursor, 1);
    assert_eq!(&*r.rooms[0].log[0].body, b"hi all");
    let mode: String = s
        .conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("pragma");
    assert_eq!(mode, "wal");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_failed_batch_changes_nothing() {
    let mut s = SqliteStore::in_memory().expect("open");
    let dm = |id| {
        StoreOp::DmQueued(QueuedDm {
            msg_id: id,
            to: "bob".into(),
            from: "alice".into(),
            timestamp: 1,
            body: Arc::from(&b"x"[..]),
        })
    };
    let r = room(b'F');
    s.apply(&[
        dm(1),
        StoreOp::RoomCreated {
            room: r,
            title: "t".into(),
            private: false,
            admin: "alice".into(),
        },
        message(r, 1, b"one"),
    ])
    .expect("first");
    // A duplicate DM ID, or a room message's duplicate sequence number, fails the batch;
    // everything before it in the batch must roll back.
    for duplicate in [dm(1), message(r, 1, b"again")] {
        let err = s.apply(&[
            StoreOp::AccountCreated {
                name: "carol".into(),
                key: [1; 32],
            },
            StoreOp::RoomTitleSet {
                room: r,
                title: "changed".into(),
            },
            message(r, 2, b"two"),
            group_set(r, 0, b"info"),
            StoreOp::DirectCreated { room: r },
            StoreOp::KeyPackageAdded(key_package("alice", b"kp", false)),
            duplicate,
        ]);
        assert!(err.is_err());
        let loaded = s.load(LogMemory::ALL).expect("load");
        assert!(loaded.accounts.is_empty());
        assert_eq!(loaded.queued.len(), 1);
        assert_eq!(&*loaded.rooms[0].title, "t");
        assert_eq!(loaded.rooms[0].next_seq, 2);
        assert_eq!(loaded.rooms[0].log.len(), 1);
        assert!(loaded.rooms[0].group.is_none() && !loaded.rooms[0].direct);
        assert!(loaded.key_packages.is_empty());
    }
}

#[test]
fn op_kinds_name_the_variant_only() {
    assert_eq!(
        op_kind(&message(room(b'K'), 3, b"secret")),
        "RoomMessageLogged"
    );
    assert_eq!(op_kind(&StoreOp::IdsReserved { upto: 1 }), "IdsReserved");
}
