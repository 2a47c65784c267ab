//! Rebuilding the hub from what a store loaded.

use super::rooms::{Member, Room};
use super::{Hub, User};
use alloc::vec::Vec;

use crate::store::{LoggedMessage, OlderMessage, Records, RoomRecord};

/// A retained message as a store handed it back.
enum Entry {
    Whole(LoggedMessage),
    Older(OlderMessage),
}

impl Entry {
    fn seq(&self) -> u64 {
        match self {
            Entry::Whole(m) => m.seq,
            Entry::Older(m) => m.seq,
        }
    }
}

impl Hub {
    /// Rebuilds accounts, queues, prekeys and rooms (members, invitations, cursors, logs)
    /// from a store. Call before any connection.
    pub fn restore(&mut self, records: Records) {
        for (name, key) in records.accounts {
            self.users.entry(name).or_insert_with(|| User::new(key));
        }
        let mut queued = records.queued;
        queued.sort_by_key(|q| q.msg_id);
        let mut max_id = 0;
        for dm in queued {
            max_id = max_id.max(dm.msg_id);
            if let Some(user) = self.users.get_mut(&dm.to) {
                user.queue.push_back(dm);
            }
        }
        #[cfg(feature = "inject-bugs")]
        if self.config.bugs.drop_queued_on_restore {
            for user in self.users.values_mut() {
                user.queue.pop_back();
            }
        }
        for (name, bundle) in records.prekeys {
            if let Some(user) = self.users.get_mut(&name) {
                user.prekeys = Some(bundle);
            }
        }
        self.next_msg_id = self
            .next_msg_id
            .max(records.ids_reserved_upto)
            .max(max_id + 1);
        self.ids_reserved_upto = self.next_msg_id;
        for record in records.rooms {
            self.restore_room(record);
        }
        for record in records.key_packages {
            self.restore_key_package(record);
        }
    }

    fn restore_room(&mut self, record: RoomRecord) {
        let mut room = Room::new(record.title, record.private, record.admin);
        room.direct = record.direct;
        room.group = record
            .group
            .and_then(|(_, gi)| super::group::GroupState::from_group_info(gi));
        let mut log: Vec<Entry> = record.older.into_iter().map(Entry::Older).collect();
        log.extend(record.log.into_iter().map(Entry::Whole));
        // By sequence number, a message handed back both ways first whole (kept).
        log.sort_by_key(|e| (e.seq(), matches!(e, Entry::Older(_))));
        log.dedup_by_key(|e| e.seq());
        // The log holds consecutive sequence numbers: keep the newest consecutive run.
        let keep_from = log
            .windows(2)
            .rposition(|w| w[1].seq() != w[0].seq() + 1)
            .map_or(0, |i| i + 1);
        room.next_seq = record.next_seq.max(log.last().map_or(1, |e| e.seq() + 1));
        // Whole are the messages after the newest one without a body; whole ones before
        // it keep only what retention needs, as the tail is the newest.
        let whole_from = log
            .iter()
            .rposition(|e| matches!(e, Entry::Older(_)))
            .map_or(keep_from, |i| (i + 1).max(keep_from));
        for (i, entry) in log.into_iter().enumerate().skip(keep_from) {
            match entry {
                Entry::Whole(msg) if i >= whole_from => room.log.push(msg),
                Entry::Whole(msg) => room.log.push_older(OlderMessage::from(&msg)),
                Entry::Older(msg) => room.log.push_older(msg),
            }
        }
        // Nobody is connected yet: only the bound keeps messages whole.
        room.log.evict(self.config.log_memory(), u64::MAX);
        self.log_bytes_total += room.log.bytes();
        for m in record.members {
            let Some(user) = self.users.get_mut(&m.name) else {
                continue;
            };
            user.rooms.insert(record.room);
            let cursor = m.cursor.max(m.since);
            room.members.push(Member {
                name: m.name,
                since: m.since,
                cursor,
                pushed: cursor,
                conn: user.conn,
                max_frame: user.max_frame,
            });
        }
        for name in record.invited {
            if let Some(user) = self.users.get_mut(&name) {
                user.invites.insert(record.room);
                room.invited.push(name);
            }
        }
        if room.members.is_empty() {
            return;
        }
        let direct = room.direct;
        self.rooms.insert(record.room, room);
        if direct {
            self.restore_direct(record.room);
        }
    }
}
