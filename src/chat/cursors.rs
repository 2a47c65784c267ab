//! The room read markers: per server, nickname and room, the highest message sequence
//! number shown (and so acknowledged). A sibling of the DM read marker (`last_dm`):
//!
//! ```text
//! last_room          one line per account and room: "ADDRESS NICK ROOM-ID LAST-SEQ"
//! ```
//!
//! Restored into `ClientOptions::room_cursors` at login, so a room message shown in an
//! earlier run is never shown again, even when its acknowledgement never reached the
//! server (a crash, or a server restarted before committing it).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use cove_core::wire::RoomId;

use crate::files::{FileError, replace_file};

/// One saved marker.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    server: String,
    nick: String,
    room: RoomId,
    seq: u64,
}

/// The room read markers file.
#[derive(Debug)]
pub(super) struct RoomCursors {
    path: PathBuf,
}

impl RoomCursors {
    /// The markers file at `path` (a missing file holds no markers).
    pub(super) fn new(path: &Path) -> RoomCursors {
        RoomCursors {
            path: path.to_path_buf(),
        }
    }

    /// Reads every line; lines cove did not write are skipped (and dropped on the next
    /// write), so a damaged file costs at most a repeat, never the login.
    fn read(&self) -> Result<Vec<Entry>, FileError> {
        let text = match fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(FileError::Io(self.path.clone(), e)),
        };
        let mut out = Vec::new();
        for line in text.lines() {
            let mut parts = line.split_whitespace();
            let (Some(server), Some(nick), Some(room), Some(seq), None) = (
                parts.next(),
                parts.next(),
                parts.next(),
                parts.next(),
                parts.next(),
            ) else {
                continue;
            };
            let (Some(room), Ok(seq)) = (RoomId::parse(room.as_bytes()), seq.parse()) else {
                continue;
            };
            out.push(Entry {
                server: server.to_string(),
                nick: nick.to_string(),
                room,
                seq,
            });
        }
        Ok(out)
    }

    fn write(&self, all: &[Entry]) -> Result<(), FileError> {
        let mut text = String::new();
        for e in all {
            text.push_str(&format!("{} {} {} {}\n", e.server, e.nick, e.room, e.seq));
        }
        replace_file(&self.path, text.as_bytes(), 0o600)
    }

    /// Every room marker of `nick` on `server`.
    pub(super) fn all(&self, server: &str, nick: &str) -> Result<Vec<(RoomId, u64)>, FileError> {
        Ok(self
            .read()?
            .into_iter()
            .filter(|e| e.server == server && e.nick == nick)
            .map(|e| (e.room, e.seq))
            .collect())
    }

    /// Records that `nick` was shown `room` up to `seq` on `server`, if that is further
    /// than what is saved.
    pub(super) fn set(
        &self,
        server: &str,
        nick: &str,
        room: RoomId,
        seq: u64,
    ) -> Result<(), FileError> {
        let mut all = self.read()?;
        let mine = |e: &&mut Entry| e.server == server && e.nick == nick && e.room == room;
        match all.iter_mut().find(mine) {
            Some(e) if e.seq >= seq => return Ok(()),
            Some(e) => e.seq = seq,
            None => all.push(Entry {
                server: server.to_string(),
                nick: nick.to_string(),
                room,
                seq,
            }),
        }
        self.write(&all)
    }

    /// Forgets `nick`'s markers on `server` for the rooms `drop` says to: rooms it left or
    /// was removed from. A room ID is reused once a room is deleted, and a stale marker
    /// would hide the new room's first messages.
    pub(super) fn forget(
        &self,
        server: &str,
        nick: &str,
        mut drop: impl FnMut(RoomId) -> bool,
    ) -> Result<(), FileError> {
        let mut all = self.read()?;
        let before = all.len();
        all.retain(|e| !(e.server == server && e.nick == nick && drop(e.room)));
        if all.len() == before {
            return Ok(());
        }
        self.write(&all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cove-rooms-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn id(s: &str) -> RoomId {
        RoomId::parse(s.as_bytes()).expect("a valid room ID")
    }

    #[test]
    fn markers_only_move_forward_per_account_and_room() {
        let dir = temp_dir("forward");
        let c = RoomCursors::new(&dir.join("last_room"));
        assert_eq!(c.all("s", "bob").expect("empty"), vec![]);
        c.set("s", "bob", id("K7QX2M"), 7).expect("set");
        c.set("s", "bob", id("K7QX2M"), 3)
            .expect("lower is ignored");
        c.set("s", "bob", id("ABCDEF"), 2).expect("set");
        c.set("s", "alice", id("K7QX2M"), 9).expect("set");
        c.set("t", "bob", id("K7QX2M"), 1).expect("set");
        assert_eq!(
            c.all("s", "bob").expect("all"),
            vec![(id("K7QX2M"), 7), (id("ABCDEF"), 2)]
        );
        assert_eq!(c.all("s", "alice").expect("all"), vec![(id("K7QX2M"), 9)]);
        assert_eq!(c.all("t", "bob").expect("all"), vec![(id("K7QX2M"), 1)]);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn forgetting_touches_only_that_account() {
        let dir = temp_dir("forget");
        let c = RoomCursors::new(&dir.join("last_room"));
        c.set("s", "bob", id("K7QX2M"), 7).expect("set");
        c.set("s", "bob", id("ABCDEF"), 2).expect("set");
        c.set("s", "alice", id("K7QX2M"), 9).expect("set");
        c.forget("s", "bob", |r| r == id("K7QX2M")).expect("forget");
        assert_eq!(c.all("s", "bob").expect("all"), vec![(id("ABCDEF"), 2)]);
        assert_eq!(c.all("s", "alice").expect("all"), vec![(id("K7QX2M"), 9)]);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn damaged_lines_are_skipped() {
        let dir = temp_dir("damaged");
        fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("last_room");
        fs::write(
            &path,
            "s bob K7QX2M 4\ngarbage\ns bob O0O0O0 1\ns bob ABCDEF x\ns bob ABCDEF 1 extra\n",
        )
        .expect("write");
        let c = RoomCursors::new(&path);
        assert_eq!(c.all("s", "bob").expect("all"), vec![(id("K7QX2M"), 4)]);
        let _ = fs::remove_dir_all(&dir);
    }
}
