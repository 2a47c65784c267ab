//! [`SqliteStore`]: the server's durable store on SQLite (bundled, WAL mode).
//!
//! One call to [`Store::apply`] is one transaction, committed before it returns: the
//! adapter batches the operations of many hub steps into one call under load (group
//! commit), and transmits those steps' replies only afterwards. How far "committed" goes
//! is the store's [`SyncMode`]: to the disk (`synchronous = FULL`, the default) or to the
//! operating system (`synchronous = NORMAL`).
//!
//! Each op means exactly what `cove_core::store::MemoryStore::apply_to` says it means;
//! the tests compare the two on random histories. The one difference: a batch that would
//! store a duplicate key (a direct message's ID, a room message's sequence number, both
//! unique by construction in the hub) fails as a whole here, where `MemoryStore` would
//! keep both copies; so does a number above `i64::MAX` (an ID, sequence number, time or
//! epoch), which SQLite's integers cannot hold.
//!
//! # Schema versions and migration
//!
//! The `schema_version` table holds one row per version applied; the highest is the
//! database's version ([`SqliteStore::schema_version`]). [`SqliteStore::open`] migrates an
//! older database forward in one transaction, and refuses a newer one
//! ([`StoreError::SchemaTooNew`]) rather than guess at its meaning.
//!
//! - **1**: accounts, offline direct messages, prekey bundles, counters.
//! - **2** (durable rooms, protocol v2): adds `rooms`, `room_members`, `room_invites` and
//!   `room_log`. Migrating 1 → 2 only creates these (empty) tables: accounts, queued DMs,
//!   prekeys and the message-ID reservation are kept as they are. Rooms were not durable
//!   in version 1, so there is nothing to carry over; a downgrade is not supported (an
//!   older cove refuses the file as too new).
//! - **3** (end-to-end encryption, MLS): adds the `rooms.direct` column, `room_groups`
//!   (each room's MLS epoch and latest GroupInfo) and `key_packages` (the KeyPackage
//!   directory). Migrating 2 → 3 keeps every row: existing rooms become non-direct rooms
//!   without a group (neither existed before), and the directory starts empty.
//!
//! The DDL of every version is in `store/schema.rs`; the room ops (groups included) in
//! `store/rooms.rs`, the KeyPackage ops in `store/key_packages.rs`.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use cove_core::store::{LogLoad, LogMemory, LoggedMessage, QueuedDm, Records, Store, StoreOp};
use rusqlite::{Connection, OptionalExtension, params};

mod key_packages;
mod rooms;
mod schema;
#[cfg(test)]
mod tests;

pub use schema::SCHEMA_VERSION;

/// Why the store failed.
#[derive(Debug)]
pub enum StoreError {
    /// SQLite reported an error.
    Sqlite(rusqlite::Error),
    /// The database was written by a newer cove (its schema version is given).
    SchemaTooNew(i64),
    /// A row does not hold what cove wrote (for example a key of the wrong length).
    Corrupt(String),
    /// A number does not fit SQLite's signed 64-bit integers.
    OutOfRange(u64),
    /// The hub asked for a kind of change this store does not know (the op's kind is
    /// given): a newer cove-core than this store was written for.
    UnknownOp(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Sqlite(e) => write!(f, "sqlite: {e}"),
            StoreError::SchemaTooNew(v) => write!(
                f,
                "database schema version {v} is newer than this cove understands ({SCHEMA_VERSION})"
            ),
            StoreError::Corrupt(what) => write!(f, "corrupt database: {what}"),
            StoreError::OutOfRange(n) => write!(f, "number {n} does not fit the database"),
            StoreError::UnknownOp(kind) => write!(f, "cannot store a {kind} operation"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Sqlite(e) => Some(e),
            _ => None,
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Sqlite(e)
    }
}

/// How far a committed batch has gone when [`Store::apply`] returns, and so when the
/// replies it holds back may leave (SQLite's `synchronous` setting, in WAL mode).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SyncMode {
    /// Every commit waits for the disk (fsync): what was delivered survives a power loss
    /// or a crash of the machine. The default.
    #[default]
    Full,
    /// A commit is written to the operating system and the disk is synced at checkpoints:
    /// what was delivered survives a crash of the server process, but a power loss or a
    /// crash of the machine may take the last commits back (the database stays
    /// consistent). Each commit costs no fsync, which is most of a commit's time.
    Normal,
}

impl SyncMode {
    /// The `PRAGMA synchronous` value.
    fn pragma(self) -> &'static str {
        match self {
            SyncMode::Full => "FULL",
            SyncMode::Normal => "NORMAL",
        }
    }
}

/// The server's store: accounts, offline direct messages, prekey bundles, the
/// message-ID reservation, durable rooms (members, invitations, cursors, logs, MLS
/// groups) and the MLS KeyPackage directory, in one SQLite file.
pub struct SqliteStore {
    conn: Connection,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.conn.path())
            .finish()
    }
}

pub(crate) fn to_i64(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::OutOfRange(n))
}

pub(crate) fn to_u64(n: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("negative {what}: {n}")))
}

fn to_key(blob: Vec<u8>, who: &str) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(blob.as_slice())
        .map_err(|_| StoreError::Corrupt(format!("key of {who} is {} bytes", blob.len())))
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, in WAL mode with full sync,
    /// and brings its schema up to date (see the module docs for the migrations).
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        Self::open_with(path, SyncMode::Full)
    }

    /// [`open`](Self::open), committing as far as `sync` says.
    pub fn open_with(path: impl AsRef<Path>, sync: SyncMode) -> Result<SqliteStore, StoreError> {
        let conn = Connection::open(path)?;
        Self::init(conn, sync)
    }

    /// A store in memory, for tests: gone when dropped.
    pub fn in_memory() -> Result<SqliteStore, StoreError> {
        Self::init(Connection::open_in_memory()?, SyncMode::Full)
    }

    fn init(conn: Connection, sync: SyncMode) -> Result<SqliteStore, StoreError> {
        // WAL: readers never block the writer, and a commit is one append (plus an fsync
        // with `SyncMode::Full`). In memory the journal mode stays "memory", which is fine
        // for tests.
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        conn.execute_batch(&format!(
            "PRAGMA synchronous = {};
             PRAGMA foreign_keys = ON;
             PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);",
            sync.pragma()
        ))?;
        let mut store = SqliteStore { conn };
        store.migrate()?;
        Ok(store)
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        schema::current(&self.conn)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        schema::migrate(&mut self.conn)
    }
}

/// The name of an op's kind, for [`StoreError::UnknownOp`]: its `Debug` form up to the
/// fields, so no message body ends up in an error or a log.
fn op_kind(op: &StoreOp) -> String {
    let debug = format!("{op:?}");
    let end = debug.find([' ', '(', '{']).unwrap_or(debug.len());
    debug[..end].to_string()
}

impl Store for SqliteStore {
    type Error = StoreError;

    fn apply(&mut self, ops: &[StoreOp]) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        let tx = self.conn.transaction()?;
        let mut deferred = rooms::Deferred::default();
        for op in ops {
            match op {
                StoreOp::AccountCreated { name, key } => {
                    tx.prepare_cached(
                        "INSERT OR IGNORE INTO accounts (name, key) VALUES (?1, ?2)",
                    )?
                    .execute(params![&**name, &key[..]])?;
                }
                StoreOp::DmQueued(dm) => {
                    tx.prepare_cached(
                        "INSERT INTO queued_dms (msg_id, recipient, sender, timestamp, body)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?
                    .execute(params![
                        to_i64(dm.msg_id)?,
                        &*dm.to,
                        &*dm.from,
                        to_i64(dm.timestamp)?,
                        &dm.body[..]
                    ])?;
                }
                StoreOp::DmAcked { to, msg_id } => {
                    tx.prepare_cached(
                        "DELETE FROM queued_dms WHERE msg_id = ?1 AND recipient = ?2",
                    )?
                    .execute(params![to_i64(*msg_id)?, &**to])?;
                }
                StoreOp::PrekeysStored { name, bundle } => {
                    tx.prepare_cached(
                        "INSERT INTO prekeys (name, bundle) VALUES (?1, ?2)
                         ON CONFLICT (name) DO UPDATE SET bundle = excluded.bundle",
                    )?
                    .execute(params![&**name, &bundle[..]])?;
                }
                StoreOp::IdsReserved { upto } => {
                    tx.prepare_cached(
                        "INSERT INTO counters (name, value) VALUES ('ids_reserved_upto', ?1)
                         ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)",
                    )?
                    .execute(params![to_i64(*upto)?])?;
                }
                // The room and KeyPackage ops; anything else is an op added to the core
                // after this store was written. Dropping it would break the promise the hub
                // makes to its clients once a batch is durable, so the batch fails instead
                // (and the server stops accepting work).
                other => {
                    if !rooms::apply(&tx, other, &mut deferred)?
                        && !key_packages::apply(&tx, other)?
                    {
                        return Err(StoreError::UnknownOp(op_kind(other)));
                    }
                }
            }
        }
        deferred.flush(&tx)?;
        tx.commit()?;
        Ok(())
    }

    fn read_log(&mut self, load: &LogLoad) -> Result<Vec<LoggedMessage>, StoreError> {
        rooms::read_log(&self.conn, load)
    }

    fn load(&mut self, whole: LogMemory) -> Result<Records, StoreError> {
        let mut records = Records::default();
        let mut stmt = self
            .conn
            .prepare("SELECT name, key FROM accounts ORDER BY rowid")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let name: String = row.get(0)?;
            let key = to_key(row.get(1)?, &name)?;
            records.accounts.push((Arc::from(name), key));
        }
        drop(rows);
        drop(stmt);

        let mut stmt = self.conn.prepare(
            "SELECT msg_id, recipient, sender, timestamp, body FROM queued_dms ORDER BY msg_id",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let to: String = row.get(1)?;
            let from: String = row.get(2)?;
            let body: Vec<u8> = row.get(4)?;
            records.queued.push(QueuedDm {
                msg_id: to_u64(row.get(0)?, "message id")?,
                to: Arc::from(to),
                from: Arc::from(from),
                timestamp: to_u64(row.get(3)?, "timestamp")?,
                body: Arc::from(body),
            });
        }
        drop(rows);
        drop(stmt);

        let mut stmt = self
            .conn
            .prepare("SELECT name, bundle FROM prekeys ORDER BY name")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let name: String = row.get(0)?;
            let bundle: Vec<u8> = row.get(1)?;
            records.prekeys.push((Arc::from(name), Arc::from(bundle)));
        }
        drop(rows);
        drop(stmt);

        let upto: Option<i64> = self
            .conn
            .query_row(
                "SELECT value FROM counters WHERE name = 'ids_reserved_upto'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        records.ids_reserved_upto = match upto {
            Some(v) => to_u64(v, "id reservation")?,
            None => 0,
        };
        records.rooms = rooms::load(&self.conn, whole)?;
        records.key_packages = key_packages::load(&self.conn)?;
        Ok(records)
    }
}
