//! Migrations: databases made by earlier versions (frozen copies of their DDL, as cove
//! created them) open, migrate in place and keep their data; a newer schema is refused.

use super::*;

/// The version 1 schema exactly as cove created it before durable rooms (a frozen copy:
/// the point is to test against what is on disk out there, not against `SCHEMA_V1`).
const OLD_V1_DDL: &str = "
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE accounts (
    name TEXT PRIMARY KEY NOT NULL,
    key  BLOB NOT NULL CHECK (length(key) = 32)
);
CREATE TABLE queued_dms (
    msg_id    INTEGER PRIMARY KEY NOT NULL,
    recipient TEXT NOT NULL,
    sender    TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    body      BLOB NOT NULL
);
CREATE INDEX queued_dms_by_recipient ON queued_dms (recipient, msg_id);
CREATE TABLE prekeys (
    name   TEXT PRIMARY KEY NOT NULL,
    bundle BLOB NOT NULL
);
CREATE TABLE counters (
    name  TEXT PRIMARY KEY NOT NULL,
    value INTEGER NOT NULL
);
INSERT INTO schema_version (version) VALUES (1);
";

fn schema_of(path: &std::path::Path) -> Vec<(String, String, Option<String>)> {
    let conn = Connection::open(path).expect("open");
    let mut stmt = conn
        .prepare("SELECT type, name, sql FROM sqlite_master ORDER BY type, name")
        .expect("prepare");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

#[test]
fn a_version_1_database_migrates_and_keeps_its_data() {
    let dir = temp_dir("migrate");
    let old = dir.join("old.db");
    {
        let conn = Connection::open(&old).expect("create");
        let _: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .expect("wal");
        conn.execute_batch(OLD_V1_DDL).expect("old schema");
        conn.execute_batch(
            "INSERT INTO accounts (name, key) VALUES ('alice', zeroblob(32));
             INSERT INTO accounts (name, key) VALUES ('bob', randomblob(32));
             INSERT INTO queued_dms VALUES (7, 'bob', 'alice', 42, x'c0ffee');
             INSERT INTO prekeys VALUES ('bob', x'0102');
             INSERT INTO counters VALUES ('ids_reserved_upto', 4096);",
        )
        .expect("old data");
    }
    let mut s = SqliteStore::open(&old).expect("open and migrate");
    assert_eq!(s.schema_version().expect("version"), SCHEMA_VERSION);
    let r = s.load(LogMemory::ALL).expect("load");
    let names: Vec<&str> = r.accounts.iter().map(|(n, _)| &**n).collect();
    assert_eq!(names, ["alice", "bob"]);
    assert_eq!(r.accounts[0].1, [0; 32]);
    assert_eq!(
        r.queued,
        [QueuedDm {
            msg_id: 7,
            to: "bob".into(),
            from: "alice".into(),
            timestamp: 42,
            body: Arc::from(&[0xc0, 0xff, 0xee][..]),
        }]
    );
    assert_eq!(r.prekeys, [(Arc::from("bob"), Arc::from(&[1u8, 2][..]))]);
    assert_eq!(r.ids_reserved_upto, 4096);
    assert!(r.rooms.is_empty());
    assert!(r.key_packages.is_empty());

    // The migrated database takes room ops, and keeps them across a reopen.
    s.apply(&[
        StoreOp::RoomCreated {
            room: room(b'M'),
            title: "after".into(),
            private: false,
            admin: "alice".into(),
        },
        StoreOp::MemberAdded {
            room: room(b'M'),
            name: "alice".into(),
            since: 0,
        },
        message(room(b'M'), 1, b"first"),
    ])
    .expect("room ops");
    drop(s);
    let mut s = SqliteStore::open(&old).expect("reopen");
    let r = s.load(LogMemory::ALL).expect("load");
    assert_eq!(r.queued.len(), 1);
    assert_eq!(r.rooms.len(), 1);
    assert_eq!(r.rooms[0].log.len(), 1);
    let versions: Vec<i64> = s
        .conn
        .prepare("SELECT version FROM schema_version ORDER BY version")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(versions, [1, 2, 3]);
    drop(s);

    // A migrated database has exactly the schema of a new one.
    let fresh = dir.join("fresh.db");
    drop(SqliteStore::open(&fresh).expect("fresh"));
    assert_eq!(schema_of(&old), schema_of(&fresh));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The tables version 2 added, exactly as cove created them before end-to-end encryption
/// (a frozen copy, like [`OLD_V1_DDL`]).
const OLD_V2_DDL: &str = "
CREATE TABLE rooms (
    id       BLOB NOT NULL UNIQUE CHECK (length(id) = 6),
    title    TEXT NOT NULL,
    private  INTEGER NOT NULL CHECK (private IN (0, 1)),
    admin    TEXT NOT NULL,
    next_seq INTEGER NOT NULL
);
CREATE TABLE room_members (
    join_order INTEGER PRIMARY KEY AUTOINCREMENT,
    room       BLOB NOT NULL REFERENCES rooms (id),
    name       TEXT NOT NULL,
    since      INTEGER NOT NULL,
    cursor     INTEGER NOT NULL,
    UNIQUE (room, name)
);
CREATE TABLE room_invites (
    invite_order INTEGER PRIMARY KEY AUTOINCREMENT,
    room         BLOB NOT NULL REFERENCES rooms (id),
    name         TEXT NOT NULL,
    UNIQUE (room, name)
);
CREATE TABLE room_log (
    room      BLOB NOT NULL REFERENCES rooms (id),
    seq       INTEGER NOT NULL,
    sender    TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    body      BLOB NOT NULL
);
CREATE UNIQUE INDEX room_log_by_seq ON room_log (room, seq);
INSERT INTO schema_version (version) VALUES (2);
";

#[test]
fn a_version_2_database_migrates_and_keeps_its_rooms() {
    let dir = temp_dir("migrate-v2");
    let old = dir.join("old.db");
    {
        let conn = Connection::open(&old).expect("create");
        let _: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .expect("wal");
        conn.execute_batch(OLD_V1_DDL).expect("v1 schema");
        conn.execute_batch(OLD_V2_DDL).expect("v2 schema");
        // Room "OLDRM1" and "OLDRM2", as a version 2 cove wrote them.
        conn.execute_batch(
            "INSERT INTO accounts (name, key) VALUES ('alice', zeroblob(32));
             INSERT INTO rooms VALUES (x'4f4c44524d31', 'old room', 1, 'alice', 3);
             INSERT INTO rooms VALUES (x'4f4c44524d32', 'other', 0, 'bob', 1);
             INSERT INTO room_members (room, name, since, cursor)
                 VALUES (x'4f4c44524d31', 'alice', 0, 2);
             INSERT INTO room_members (room, name, since, cursor)
                 VALUES (x'4f4c44524d31', 'bob', 1, 1);
             INSERT INTO room_members (room, name, since, cursor)
                 VALUES (x'4f4c44524d32', 'bob', 0, 0);
             INSERT INTO room_invites (room, name) VALUES (x'4f4c44524d31', 'carol');
             INSERT INTO room_log VALUES (x'4f4c44524d31', 1, 'alice', 10, x'01');
             INSERT INTO room_log VALUES (x'4f4c44524d31', 2, 'bob', 20, x'0202');",
        )
        .expect("old data");
    }
    let (r1, r2) = (RoomId(*b"OLDRM1"), RoomId(*b"OLDRM2"));
    let member = |name: &str, since, cursor| MemberRecord {
        name: name.into(),
        since,
        cursor,
    };
    let logged = |seq, from: &str, timestamp, body: &[u8]| LoggedMessage {
        room: r1,
        seq,
        from: from.into(),
        timestamp,
        body: Arc::from(body),
    };
    let mut expected = vec![
        RoomRecord {
            room: r1,
            title: "old room".into(),
            private: true,
            admin: "alice".into(),
            next_seq: 3,
            members: vec![member("alice", 0, 2), member("bob", 1, 1)],
            invited: vec!["carol".into()],
            older: Vec::new(),
            log: vec![logged(1, "alice", 10, &[1]), logged(2, "bob", 20, &[2, 2])],
            direct: false,
            group: None,
        },
        RoomRecord {
            room: r2,
            title: "other".into(),
            private: false,
            admin: "bob".into(),
            next_seq: 1,
            members: vec![member("bob", 0, 0)],
            invited: Vec::new(),
            older: Vec::new(),
            log: Vec::new(),
            direct: false,
            group: None,
        },
    ];

    let mut s = SqliteStore::open(&old).expect("open and migrate");
    assert_eq!(s.schema_version().expect("version"), SCHEMA_VERSION);
    let r = s.load(LogMemory::ALL).expect("load");
    assert_eq!(r.accounts, [(Arc::from("alice"), [0; 32])]);
    assert_eq!(
        r.rooms, expected,
        "rooms kept, neither direct nor with a group"
    );
    assert!(r.key_packages.is_empty());

    // The migrated rooms take the new ops (and the old ones), and keep them across a
    // reopen.
    s.apply(&[
        group_set(r1, 0, b"group info"),
        StoreOp::DirectCreated { room: r2 },
        message(r1, 3, b"after"),
        StoreOp::KeyPackageAdded(key_package("alice", b"kp", false)),
        StoreOp::KeyPackageAdded(key_package("alice", b"last", true)),
    ])
    .expect("new ops");
    drop(s);
    expected[0].group = Some((0, Arc::from(&b"group info"[..])));
    expected[0].next_seq = 4;
    expected[0].log.push(LoggedMessage {
        room: r1,
        seq: 3,
        from: "alice".into(),
        timestamp: 1_003,
        body: Arc::from(&b"after"[..]),
    });
    expected[1].direct = true;
    let mut s = SqliteStore::open(&old).expect("reopen");
    let r = s.load(LogMemory::ALL).expect("load");
    assert_eq!(r.rooms, expected);
    assert_eq!(
        r.key_packages,
        [
            key_package("alice", b"kp", false),
            key_package("alice", b"last", true)
        ]
    );
    let versions: Vec<i64> = s
        .conn
        .prepare("SELECT version FROM schema_version ORDER BY version")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(versions, [1, 2, 3]);
    drop(s);

    // A migrated database has exactly the schema of a new one.
    let fresh = dir.join("fresh.db");
    drop(SqliteStore::open(&fresh).expect("fresh"));
    assert_eq!(schema_of(&old), schema_of(&fresh));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn refuses_a_newer_schema() {
    let dir = temp_dir("newer");
    let path = dir.join("cove.db");
    {
        let s = SqliteStore::open(&path).expect("open");
        s.conn
            .execute("INSERT INTO schema_version (version) VALUES (99)", [])
            .expect("insert");
    }
    assert!(matches!(
        SqliteStore::open(&path),
        Err(StoreError::SchemaTooNew(99))
    ));
    let _ = std::fs::remove_dir_all(&dir);
}
