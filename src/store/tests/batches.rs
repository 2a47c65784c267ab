//! How a batch is committed: the sync mode, and the writes a batch holds back until its
//! end.

use std::sync::Arc;

use cove_core::store::{LogMemory, MemoryStore, Store, StoreOp};

use super::{message, normalized, room, temp_dir};
use crate::store::{SqliteStore, SyncMode};

#[test]
fn the_sync_mode_sets_sqlites_synchronous_and_keeps_what_was_committed() {
    let dir = temp_dir("sync-mode");
    let path = dir.join("cove.db");
    let synchronous = |s: &SqliteStore| -> i64 {
        s.conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .expect("pragma")
    };
    {
        let mut s = SqliteStore::open_with(&path, SyncMode::Normal).expect("open");
        assert_eq!(synchronous(&s), 1, "NORMAL");
        s.apply(&[StoreOp::AccountCreated {
            name: "bob".into(),
            key: [7; 32],
        }])
        .expect("apply");
    }
    let mut s = SqliteStore::open(&path).expect("reopen");
    assert_eq!(synchronous(&s), 2, "FULL is the default");
    assert_eq!(SyncMode::default(), SyncMode::Full);
    let r = s.load(LogMemory::ALL).expect("load");
    assert_eq!(r.accounts, [(Arc::from("bob"), [7; 32])]);
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A batch's trims, cursors and `next_seq` raises are written once at its end; a room
/// deleted and created afresh, or a member removed and added again, in the same batch
/// must not receive what was held back for the old one.
#[test]
fn held_back_writes_never_reach_a_room_or_member_made_afresh_in_the_same_batch() {
    let create = StoreOp::RoomCreated {
        room: room(b'R'),
        title: "lobby".into(),
        private: false,
        admin: "bob".into(),
    };
    let add = |since| StoreOp::MemberAdded {
        room: room(b'R'),
        name: "bob".into(),
        since,
    };
    let cursor = |seq| StoreOp::CursorAdvanced {
        room: room(b'R'),
        name: "bob".into(),
        seq,
    };
    let trim = |below| StoreOp::LogTrimmed {
        room: room(b'R'),
        below,
    };
    // A room with bob in it and three messages, then what each case does.
    let start = [
        create.clone(),
        add(0),
        message(room(b'R'), 1, b"one"),
        message(room(b'R'), 2, b"two"),
        message(room(b'R'), 3, b"three"),
    ];
    let member_again = [
        cursor(3),
        StoreOp::MemberRemoved {
            room: room(b'R'),
            name: "bob".into(),
        },
        add(0),
        cursor(1),
    ];
    let room_again = [
        trim(3),
        cursor(2),
        StoreOp::RoomDeleted { room: room(b'R') },
        create,
        add(0),
        message(room(b'R'), 1, b"again"),
        message(room(b'R'), 2, b"and again"),
    ];
    // The cursor, log length and next sequence number each batch leaves.
    for (then, want) in [(&member_again[..], (1, 3, 4)), (&room_again[..], (0, 2, 3))] {
        let batch = [&start[..], then].concat();
        let batch = &batch[..];
        let mut sql = SqliteStore::in_memory().expect("open");
        let mut mem = MemoryStore::new();
        sql.apply(batch).expect("apply");
        mem.apply(batch).expect("apply");
        let (a, b) = (
            normalized(sql.load(LogMemory::ALL).expect("load")),
            normalized(mem.load(LogMemory::ALL).expect("load")),
        );
        assert_eq!(a, b);
        let r = &b.rooms[0];
        assert_eq!((r.members[0].cursor, r.log.len(), r.next_seq), want);
    }
}
