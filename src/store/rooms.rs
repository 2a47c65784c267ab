//! Durable rooms in the store (schema versions 2 and 3): the room ops, including the
//! rooms' MLS groups and the direct flag, and loading rooms back.
//!
//! Each op does exactly what `MemoryStore::apply_to` does with it; in particular an op
//! naming a room that does not exist changes nothing (the inserts select the room's row,
//! so they insert nothing rather than break the foreign key), and deleting a room deletes
//! its members, invitations, log and group.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use cove_core::store::{
    LogLoad, LogMemory, LoggedMessage, MemberRecord, OlderMessage, RoomRecord, StoreOp,
};
use cove_core::wire::{ROOM_ID_LEN, RoomId};
use rusqlite::{Connection, params};

use super::{StoreError, to_i64, to_u64};

/// The room ops of a batch whose effect is a maximum, held back to be written once per
/// room (or member) rather than once per op: under load a batch carries many messages
/// for a few rooms, and each raised the room's `next_seq`, trimmed its log and advanced
/// cursors one statement at a time. The batch's effect is the same (one transaction);
/// an op that could observe a held-back write has it written first.
#[derive(Default)]
pub(super) struct Deferred {
    /// Each room's `next_seq` is raised to at least this.
    next_seq: BTreeMap<RoomId, u64>,
    /// Each room's log rows below this are deleted.
    trims: BTreeMap<RoomId, u64>,
    /// Each member's cursor is raised to at least this.
    cursors: BTreeMap<(RoomId, Arc<str>), u64>,
}

impl Deferred {
    /// Writes everything held back; call before the batch commits.
    pub(super) fn flush(&mut self, tx: &Connection) -> Result<(), StoreError> {
        for (room, next) in std::mem::take(&mut self.next_seq) {
            tx.prepare_cached("UPDATE rooms SET next_seq = max(next_seq, ?2) WHERE id = ?1")?
                .execute(params![&room.0[..], to_i64(next)?])?;
        }
        for room in self.trims.keys().copied().collect::<Vec<_>>() {
            self.flush_trim(tx, room)?;
        }
        for ((room, name), seq) in std::mem::take(&mut self.cursors) {
            tx.prepare_cached(
                "UPDATE room_members SET cursor = max(cursor, ?3) WHERE room = ?1 AND name = ?2",
            )?
            .execute(params![&room.0[..], &*name, to_i64(seq)?])?;
        }
        Ok(())
    }

    fn flush_trim(&mut self, tx: &Connection, room: RoomId) -> Result<(), StoreError> {
        if let Some(below) = self.trims.remove(&room) {
            tx.prepare_cached("DELETE FROM room_log WHERE room = ?1 AND seq < ?2")?
                .execute(params![&room.0[..], to_i64(below)?])?;
        }
        Ok(())
    }

    fn raise(map: &mut BTreeMap<RoomId, u64>, room: RoomId, to: u64) {
        let v = map.entry(room).or_insert(to);
        *v = (*v).max(to);
    }
}

/// Applies `op` inside the batch's transaction if it is a room op; `Ok(false)` if not.
/// Some writes are held back in `deferred`, which the caller flushes before committing.
pub(super) fn apply(
    tx: &Connection,
    op: &StoreOp,
    deferred: &mut Deferred,
) -> Result<bool, StoreError> {
    match op {
        // These delete rows a held-back write may name, and a room or member created
        // again later in the batch must not receive it: those writes go first. (Creating
        // a room or member that exists changes nothing, so creations need no flush.)
        StoreOp::RoomDeleted { .. } | StoreOp::MemberRemoved { .. } => deferred.flush(tx)?,
        _ => {}
    }
    match op {
        StoreOp::RoomCreated {
            room,
            title,
            private,
            admin,
        } => {
            tx.prepare_cached(
                "INSERT INTO rooms (id, title, private, admin, next_seq)
                 VALUES (?1, ?2, ?3, ?4, 1) ON CONFLICT (id) DO NOTHING",
            )?
            .execute(params![&room.0[..], &**title, private, &**admin])?;
        }
        StoreOp::RoomDeleted { room } => {
            // Children first: correct with or without `foreign_keys = ON`.
            for sql in [
                "DELETE FROM room_log WHERE room = ?1",
                "DELETE FROM room_groups WHERE room = ?1",
                "DELETE FROM room_members WHERE room = ?1",
                "DELETE FROM room_invites WHERE room = ?1",
                "DELETE FROM rooms WHERE id = ?1",
            ] {
                tx.prepare_cached(sql)?.execute([&room.0[..]])?;
            }
        }
        StoreOp::MemberAdded { room, name, since } => {
            // Joining uses up the invitation, even for someone already a member.
            tx.prepare_cached("DELETE FROM room_invites WHERE room = ?1 AND name = ?2")?
                .execute(params![&room.0[..], &**name])?;
            // A member joining twice keeps its first `since` and its place in join order.
            tx.prepare_cached(
                "INSERT INTO room_members (room, name, since, cursor)
                 SELECT id, ?2, ?3, ?3 FROM rooms WHERE id = ?1
                 ON CONFLICT (room, name) DO NOTHING",
            )?
            .execute(params![&room.0[..], &**name, to_i64(*since)?])?;
        }
        StoreOp::MemberRemoved { room, name } => {
            tx.prepare_cached("DELETE FROM room_members WHERE room = ?1 AND name = ?2")?
                .execute(params![&room.0[..], &**name])?;
        }
        StoreOp::Invited { room, name } => {
            tx.prepare_cached(
                "INSERT INTO room_invites (room, name)
                 SELECT id, ?2 FROM rooms WHERE id = ?1
                 ON CONFLICT (room, name) DO NOTHING",
            )?
            .execute(params![&room.0[..], &**name])?;
        }
        StoreOp::RoomTitleSet { room, title } => {
            tx.prepare_cached("UPDATE rooms SET title = ?2 WHERE id = ?1")?
                .execute(params![&room.0[..], &**title])?;
        }
        StoreOp::RoomAdminSet { room, admin } => {
            tx.prepare_cached("UPDATE rooms SET admin = ?2 WHERE id = ?1")?
                .execute(params![&room.0[..], &**admin])?;
        }
        StoreOp::RoomMessageLogged(m) => {
            // A held-back trim that reaches this message deletes it in op order.
            if deferred
                .trims
                .get(&m.room)
                .is_some_and(|&below| m.seq < below)
            {
                deferred.flush_trim(tx, m.room)?;
            }
            if log_message(tx, m)? {
                let next = m.seq.checked_add(1).ok_or(StoreError::OutOfRange(m.seq))?;
                Deferred::raise(&mut deferred.next_seq, m.room, next);
            }
        }
        StoreOp::LogTrimmed { room, below } => Deferred::raise(&mut deferred.trims, *room, *below),
        StoreOp::CursorAdvanced { room, name, seq } => {
            let v = deferred
                .cursors
                .entry((*room, name.clone()))
                .or_insert(*seq);
            *v = (*v).max(*seq);
        }
        StoreOp::GroupSet {
            room,
            epoch,
            group_info,
        } => {
            tx.prepare_cached(
                "INSERT INTO room_groups (room, epoch, group_info)
                 SELECT id, ?2, ?3 FROM rooms WHERE id = ?1
                 ON CONFLICT (room) DO UPDATE
                 SET epoch = excluded.epoch, group_info = excluded.group_info",
            )?
            .execute(params![&room.0[..], to_i64(*epoch)?, &group_info[..]])?;
        }
        StoreOp::DirectCreated { room } => {
            tx.prepare_cached("UPDATE rooms SET direct = 1 WHERE id = ?1")?
                .execute([&room.0[..]])?;
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Logs a message; whether it was logged (a message for a room that does not exist is
/// dropped, as in `MemoryStore`). Raising the room's `next_seq` past it is the caller's.
///
/// A sequence number the room's log already holds breaks the `(room, seq)` index and
/// fails the batch (`MemoryStore` would keep both; the hub never logs a number twice).
fn log_message(tx: &Connection, m: &LoggedMessage) -> Result<bool, StoreError> {
    let logged = tx
        .prepare_cached(
            "INSERT INTO room_log (room, seq, sender, timestamp, body)
             SELECT id, ?2, ?3, ?4, ?5 FROM rooms WHERE id = ?1",
        )?
        .execute(params![
            &m.room.0[..],
            to_i64(m.seq)?,
            &*m.from,
            to_i64(m.timestamp)?,
            &m.body[..]
        ])?;
    Ok(logged == 1)
}

fn to_room(blob: Vec<u8>) -> Result<RoomId, StoreError> {
    <[u8; ROOM_ID_LEN]>::try_from(blob.as_slice())
        .map(RoomId)
        .map_err(|_| StoreError::Corrupt(format!("room id of {} bytes", blob.len())))
}

/// The record of `room` among those loaded; a row of a room that does not exist is corrupt
/// (the foreign keys forbid it).
fn room_mut<'a>(
    rooms: &'a mut [RoomRecord],
    index: &HashMap<RoomId, usize>,
    room: RoomId,
    table: &str,
) -> Result<&'a mut RoomRecord, StoreError> {
    index.get(&room).map(|&i| &mut rooms[i]).ok_or_else(|| {
        StoreError::Corrupt(format!(
            "{table} row of unknown room {}",
            String::from_utf8_lossy(&room.0)
        ))
    })
}

/// The log rows `load` asks for, by sequence number.
pub(super) fn read_log(
    conn: &Connection,
    load: &LogLoad,
) -> Result<Vec<LoggedMessage>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, sender, timestamp, body FROM room_log
         WHERE room = ?1 AND seq >= ?2 AND seq < ?3 ORDER BY seq",
    )?;
    let mut rows = stmt.query(params![
        &load.room.0[..],
        to_i64(load.from)?,
        to_i64(load.to)?
    ])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let from: String = row.get(1)?;
        let body: Vec<u8> = row.get(3)?;
        out.push(LoggedMessage {
            room: load.room,
            seq: to_u64(row.get(0)?, "sequence number")?,
            from: Arc::from(from),
            timestamp: to_u64(row.get(2)?, "timestamp")?,
            body: Arc::from(body),
        });
    }
    Ok(out)
}

/// Loads every room in creation order, with its members in join order, its invitations in
/// the order given, its log by sequence number and its group if it has one.
///
/// Of each log only the newest messages that `whole` holds come back whole; the older
/// ones come back in `older`, without their bodies.
pub(super) fn load(conn: &Connection, whole: LogMemory) -> Result<Vec<RoomRecord>, StoreError> {
    let mut rooms = Vec::new();
    let mut index = HashMap::new();
    let mut stmt = conn
        .prepare("SELECT id, title, private, admin, next_seq, direct FROM rooms ORDER BY rowid")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let room = to_room(row.get(0)?)?;
        let title: String = row.get(1)?;
        let admin: String = row.get(3)?;
        index.insert(room, rooms.len());
        rooms.push(RoomRecord {
            room,
            title: Arc::from(title),
            private: row.get(2)?,
            direct: row.get(5)?,
            admin: Arc::from(admin),
            next_seq: to_u64(row.get(4)?, "next sequence number")?,
            members: Vec::new(),
            invited: Vec::new(),
            older: Vec::new(),
            log: Vec::new(),
            group: None,
        });
    }
    drop(rows);
    drop(stmt);

    let mut stmt =
        conn.prepare("SELECT room, name, since, cursor FROM room_members ORDER BY join_order")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let r = room_mut(&mut rooms, &index, to_room(row.get(0)?)?, "member")?;
        let name: String = row.get(1)?;
        r.members.push(MemberRecord {
            name: Arc::from(name),
            since: to_u64(row.get(2)?, "member since")?,
            cursor: to_u64(row.get(3)?, "member cursor")?,
        });
    }
    drop(rows);
    drop(stmt);

    let mut stmt = conn.prepare("SELECT room, name FROM room_invites ORDER BY invite_order")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let r = room_mut(&mut rooms, &index, to_room(row.get(0)?)?, "invitation")?;
        let name: String = row.get(1)?;
        r.invited.push(Arc::from(name));
    }
    drop(rows);
    drop(stmt);

    // What retention needs of every retained message (`length` reads a blob's size from
    // its row header, not the blob), then the bodies of only those `whole` holds: a
    // restart holds no more history in memory than the hub keeps.
    let mut stmt =
        conn.prepare("SELECT room, seq, timestamp, length(body) FROM room_log ORDER BY room, seq")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let r = room_mut(&mut rooms, &index, to_room(row.get(0)?)?, "log")?;
        r.older.push(OlderMessage {
            seq: to_u64(row.get(1)?, "sequence number")?,
            timestamp: to_u64(row.get(2)?, "timestamp")?,
            len: usize::try_from(row.get::<_, i64>(3)?)
                .map_err(|_| StoreError::Corrupt("negative body length".into()))?,
        });
    }
    drop(rows);
    drop(stmt);
    for r in &mut rooms {
        let split = r.older.len() - whole.whole_suffix(r.older.iter().map(|m| m.len));
        let (Some(first), Some(last)) = (r.older.get(split), r.older.last()) else {
            continue; // nothing retained
        };
        let newest = LogLoad {
            id: 0,
            room: r.room,
            from: first.seq,
            to: last.seq + 1,
        };
        r.log = read_log(conn, &newest)?;
        r.older.truncate(split);
    }

    let mut stmt = conn.prepare("SELECT room, epoch, group_info FROM room_groups")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let r = room_mut(&mut rooms, &index, to_room(row.get(0)?)?, "group")?;
        let group_info: Vec<u8> = row.get(2)?;
        r.group = Some((to_u64(row.get(1)?, "epoch")?, Arc::from(group_info)));
    }
    Ok(rooms)
}
