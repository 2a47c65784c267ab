//! The MLS KeyPackage directory in the store (schema version 3): uploading and taking
//! packages, and loading them back.
//!
//! Each op does exactly what `MemoryStore::apply_to` does with it: a last-resort upload
//! replaces the owner's earlier last-resort package; taking deletes the oldest one-time
//! package with the owner and bytes given, and nothing if there is none (a last-resort
//! package is never taken).

use std::sync::Arc;

use cove_core::store::{KeyPackageRecord, StoreOp};
use rusqlite::{Connection, params};

use super::StoreError;

/// Applies `op` inside the batch's transaction if it is a KeyPackage op; `Ok(false)` if not.
pub(super) fn apply(tx: &Connection, op: &StoreOp) -> Result<bool, StoreError> {
    match op {
        StoreOp::KeyPackageAdded(kp) => {
            if kp.last_resort {
                tx.prepare_cached("DELETE FROM key_packages WHERE name = ?1 AND last_resort = 1")?
                    .execute([&*kp.name])?;
            }
            tx.prepare_cached(
                "INSERT INTO key_packages (name, package, last_resort) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![&*kp.name, &kp.package[..], kp.last_resort])?;
        }
        StoreOp::KeyPackageTaken { name, package } => {
            // The oldest match, as `MemoryStore` removes the first: with the same package
            // stored twice, which copy goes decides the order of the rest.
            tx.prepare_cached(
                "DELETE FROM key_packages WHERE id = (
                     SELECT id FROM key_packages
                     WHERE name = ?1 AND package = ?2 AND last_resort = 0
                     ORDER BY id LIMIT 1)",
            )?
            .execute(params![&**name, &package[..]])?;
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Loads every stored package in upload order.
pub(super) fn load(conn: &Connection) -> Result<Vec<KeyPackageRecord>, StoreError> {
    let mut packages = Vec::new();
    let mut stmt =
        conn.prepare("SELECT name, package, last_resort FROM key_packages ORDER BY id")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let name: String = row.get(0)?;
        let package: Vec<u8> = row.get(1)?;
        packages.push(KeyPackageRecord {
            name: Arc::from(name),
            package: Arc::from(package),
            last_resort: row.get(2)?,
        });
    }
    Ok(packages)
}
