//! The schema's versions and the migrations between them.
//!
//! A version's DDL is never edited once released: a database created by that version holds
//! exactly those tables, and the next version's migration starts from them. A new version
//! adds a `SCHEMA_Vn` constant and one step to [`migrate`].

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::StoreError;

/// The schema this code writes. A database with a newer version is refused.
pub const SCHEMA_VERSION: i64 = 3;

/// Version 1: accounts, offline direct messages, prekey bundles and counters.
pub(super) const SCHEMA_V1: &str = "
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
";

/// Version 2 (durable rooms, protocol v2) adds rooms, their members, invitations and logs;
/// the version 1 tables are untouched.
///
/// - `rooms`: a rowid table, so `ORDER BY rowid` is creation order (a new row gets one
///   more than the largest rowid), the order `MemoryStore` keeps.
/// - `room_members` / `room_invites`: an `AUTOINCREMENT` key records join (invitation)
///   order, never reused even after the newest row is deleted: the admin succession
///   ("the longest-standing member") depends on it. `UNIQUE (room, name)` is the lookup
///   index of every membership op and of deleting a room.
/// - `room_log`: one row per retained message. A rowid table (bodies can be kilobytes,
///   which suits the rowid table's leaves better than a `WITHOUT ROWID` key) with a
///   unique `(room, seq)` index serving the three access patterns: append, trim a prefix
///   (`seq < below`), delete a room; and loading in `(room, seq)` order.
///
/// Room IDs are stored as their six bytes. Every child table references `rooms`, so with
/// `foreign_keys = ON` no row outlives its room; the store still deletes children first
/// itself so that a connection without the pragma (the `sqlite3` shell) cannot orphan them.
pub(super) const SCHEMA_V2: &str = "
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
";

/// Version 3 (end-to-end encryption, MLS) adds the rooms' MLS groups, the direct flag and
/// the KeyPackage directory; the earlier tables keep their rows.
///
/// - `rooms.direct`: a new column, 0 for every room of an older database (direct rooms did
///   not exist before).
/// - `room_groups`: a room's epoch and latest `MLSMessage(GroupInfo)`, at most one row per
///   room (its key), none before the group is published. A table of its own rather than
///   columns of `rooms`: the GroupInfo carries the ratchet tree and can run to kilobytes,
///   and every logged message rewrites its room's `rooms` row (`next_seq`), which should
///   stay a few bytes. It references `rooms`, and deleting a room deletes it.
/// - `key_packages`: one row per stored `MLSMessage(KeyPackage)`. The rowid is upload
///   order (a new row gets one more than the largest, so the order holds even when the
///   newest row was taken), the order `MemoryStore` keeps and the hub hands packages out
///   in (first uploaded, first taken). The same one-time package may be stored twice, as
///   in `MemoryStore`, so the bytes are not a key. `key_packages_by_owner` serves taking a
///   package (the hub keeps a few one-time packages per user, 16 by default, so comparing
///   their bytes after the name lookup is cheap, and the index does not copy kilobyte
///   blobs); the partial unique index `key_packages_last_resort` holds each user to one
///   last-resort package, the one a new upload replaces. Owners are not foreign keys:
///   accounts are never deleted, and `MemoryStore` does not ask for one.
pub(super) const SCHEMA_V3: &str = "
ALTER TABLE rooms ADD COLUMN direct INTEGER NOT NULL DEFAULT 0 CHECK (direct IN (0, 1));
CREATE TABLE room_groups (
    room       BLOB PRIMARY KEY NOT NULL REFERENCES rooms (id),
    epoch      INTEGER NOT NULL CHECK (epoch >= 0),
    group_info BLOB NOT NULL
);
CREATE TABLE key_packages (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    package     BLOB NOT NULL,
    last_resort INTEGER NOT NULL CHECK (last_resort IN (0, 1))
);
CREATE INDEX key_packages_by_owner ON key_packages (name);
CREATE UNIQUE INDEX key_packages_last_resort ON key_packages (name) WHERE last_resort = 1;
";

/// The steps from each version to the next: `STEPS[i]` takes version `i` to `i + 1`.
const STEPS: [&str; SCHEMA_VERSION as usize] = [SCHEMA_V1, SCHEMA_V2, SCHEMA_V3];

/// The schema version of the database, 0 if it is new.
pub(super) fn current(conn: &Connection) -> Result<i64, StoreError> {
    let v: Option<i64> = conn
        .query_row("SELECT max(version) FROM schema_version", [], |r| r.get(0))
        .optional()?
        .flatten();
    Ok(v.unwrap_or(0))
}

/// Brings the database up to [`SCHEMA_VERSION`], all steps in one transaction: a crash
/// mid-migration leaves the old version intact, and the next open starts over.
///
/// The transaction is taken `IMMEDIATE` (the write lock first) and the version read inside
/// it, so two processes opening the same file cannot both run a step.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let from = current(&tx)?;
    if from > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew(from));
    }
    if from == SCHEMA_VERSION {
        return Ok(());
    }
    let start = usize::try_from(from)
        .map_err(|_| StoreError::Corrupt(format!("negative schema version {from}")))?;
    for (i, ddl) in STEPS.iter().enumerate().skip(start) {
        tx.execute_batch(ddl)?;
        // One row per step applied: the table is also a record of the database's history.
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [i as i64 + 1],
        )?;
    }
    tx.commit()?;
    Ok(())
}
