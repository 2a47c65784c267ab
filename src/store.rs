//! [`SqliteStore`]: the server's durable store on SQLite (bundled, WAL mode).
//!
//! One call to [`Store::apply`] is one transaction, committed with `synchronous = FULL`
//! before it returns: the adapter batches the operations of many hub steps into one call
//! under load (group commit), and transmits those steps' replies only afterwards.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use cove_core::store::{QueuedDm, Records, Store, StoreOp};
use rusqlite::{Connection, OptionalExtension, params};

/// The schema this code writes. A database with a newer version is refused.
pub const SCHEMA_VERSION: i64 = 1;

const SCHEMA_V1: &str = "
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

/// The server's store: accounts, offline direct messages, prekey bundles and the
/// message-ID reservation, in one SQLite file.
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

fn to_i64(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::OutOfRange(n))
}

fn to_u64(n: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("negative {what}: {n}")))
}

fn to_key(blob: Vec<u8>, who: &str) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(blob.as_slice())
        .map_err(|_| StoreError::Corrupt(format!("key of {who} is {} bytes", blob.len())))
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, in WAL mode with full sync,
    /// and brings its schema up to date.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let conn = Connection::open(path)?;
        Self::init(conn)
    }

    /// A store in memory, for tests: gone when dropped.
    pub fn in_memory() -> Result<SqliteStore, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<SqliteStore, StoreError> {
        // WAL: readers never block the writer, and a commit is one append plus fsync.
        // In memory the journal mode stays "memory", which is fine for tests.
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        conn.execute_batch(
            "PRAGMA synchronous = FULL;
             PRAGMA foreign_keys = ON;
             PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);",
        )?;
        let mut store = SqliteStore { conn };
        store.migrate()?;
        Ok(store)
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        let v: Option<i64> = self
            .conn
            .query_row("SELECT max(version) FROM schema_version", [], |r| r.get(0))
            .optional()?
            .flatten();
        Ok(v.unwrap_or(0))
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let version = self.schema_version()?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew(version));
        }
        if version < 1 {
            let tx = self.conn.transaction()?;
            tx.execute_batch(SCHEMA_V1)?;
            tx.execute("INSERT INTO schema_version (version) VALUES (1)", [])?;
            tx.commit()?;
        }
        Ok(())
    }
}

impl Store for SqliteStore {
    type Error = StoreError;

    fn apply(&mut self, ops: &[StoreOp]) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        let tx = self.conn.transaction()?;
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
                // TODO(rooms): the durable-rooms ops are not stored yet.
                _ => {}
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn load(&mut self) -> Result<Records, StoreError> {
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
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cove_core::store::MemoryStore;

    /// A tiny deterministic generator so the tests need no RNG crate.
    struct XorShift(u64);
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

    fn random_op(rng: &mut XorShift, next_id: &mut u64, live: &mut Vec<(String, u64)>) -> StoreOp {
        let names = ["alice", "bob", "carol", "dave"];
        let name = names[rng.below(4) as usize];
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
                    from: names[rng.below(4) as usize].into(),
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

    fn normalized(mut r: Records) -> Records {
        r.accounts.sort();
        r.queued.sort_by_key(|q| q.msg_id);
        r.prekeys.sort();
        r
    }

    #[test]
    fn agrees_with_the_memory_store_on_random_histories() {
        for seed in 1..=20u64 {
            let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let mut sql = SqliteStore::in_memory().expect("open");
            let mut mem = MemoryStore::new();
            let mut next_id = 0;
            let mut live = Vec::new();
            for _batch in 0..30 {
                let n = rng.below(6) as usize;
                let ops: Vec<StoreOp> = (0..n)
                    .map(|_| random_op(&mut rng, &mut next_id, &mut live))
                    .collect();
                sql.apply(&ops).expect("apply");
                mem.apply(&ops).expect("apply");
            }
            let a = normalized(sql.load().expect("load"));
            let b = normalized(mem.load().expect("load"));
            assert_eq!(a, b, "seed {seed}");
        }
    }

    #[test]
    fn survives_reopening_and_records_the_schema_version() {
        let dir = std::env::temp_dir().join(format!("cove-store-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("cove.db");
        let _ = std::fs::remove_file(&path);
        {
            let mut s = SqliteStore::open(&path).expect("open");
            assert_eq!(s.schema_version().expect("version"), SCHEMA_VERSION);
            s.apply(&[
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
            ])
            .expect("apply");
        }
        let mut s = SqliteStore::open(&path).expect("reopen");
        let r = s.load().expect("load");
        assert_eq!(r.accounts, [(Arc::from("bob"), [7; 32])]);
        assert_eq!(r.queued.len(), 1);
        assert_eq!(&*r.queued[0].body, b"hello");
        assert_eq!(r.ids_reserved_upto, 65_536);
        let mode: String = s
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .expect("pragma");
        assert_eq!(mode, "wal");
        drop(s);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = std::env::temp_dir().join(format!("cove-store-new-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("cove.db");
        let _ = std::fs::remove_file(&path);
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
        s.apply(&[dm(1)]).expect("first");
        // The duplicate ID makes the batch fail; the account before it must roll back.
        let err = s.apply(&[
            StoreOp::AccountCreated {
                name: "carol".into(),
                key: [1; 32],
            },
            dm(1),
        ]);
        assert!(err.is_err());
        let r = s.load().expect("load");
        assert!(r.accounts.is_empty());
        assert_eq!(r.queued.len(), 1);
    }
}
