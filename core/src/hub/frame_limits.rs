//! Frame limits: each client announces the largest frame it accepts (the handshake's ACK;
//! 64 KiB when it says nothing), and the hub never relays a body that would not fit.
//!
//! A user's limit is the one its latest connection announced, kept while the server runs
//! (a user not seen since the start has the default). A room message is refused to its
//! sender with [`ErrorCode::TooLargeForRecipient`] when it would not fit one member's
//! limit, a direct message when it would not fit the recipient's. What was accepted
//! before a member came back with a smaller limit (or before a restart) is skipped for
//! that member rather than sent: a room message becomes a `RoomGap` past it, a history
//! message is left out of the page, and a direct message stays queued for a connection
//! that can take it, with one `TooLargeForRecipient` notice per connection.

use alloc::sync::Arc;

use super::{Hub, RoomId};
use crate::crypto::TAG_LEN;
use crate::wire::{DEFAULT_MAX_FRAME, ErrorCode, ServerMsg};

/// Bytes of the record a room body of `body` bytes from `from` becomes, in its larger
/// relayed form (a `HistoryMessage`; a live `RoomMessage` is 4 bytes shorter).
pub(super) fn room_record_len(from: &str, body: usize) -> usize {
    let header = ServerMsg::HistoryMessage {
        req: 0,
        room: RoomId([b'A'; 6]),
        seq: 0,
        from,
        timestamp: 0,
        body: &[],
    };
    header.encoded_len() + body + TAG_LEN
}

/// Bytes of the record a direct message of `body` bytes from `from` becomes.
pub(super) fn dm_record_len(from: &str, body: usize) -> usize {
    let header = ServerMsg::IncomingDm {
        msg_id: 0,
        from,
        timestamp: 0,
        body: &[],
    };
    header.encoded_len() + body + TAG_LEN
}

/// Whether a record of `len` bytes fits a frame limit.
pub(super) fn fits(len: usize, limit: u32) -> bool {
    len <= limit as usize
}

impl Hub {
    /// The frame limit of `name`: what its latest connection announced.
    pub(super) fn frame_limit_of(&self, name: &str) -> u32 {
        self.users
            .get(name)
            .map_or(DEFAULT_MAX_FRAME, |u| u.max_frame)
    }

    /// `Err(TooLargeForRecipient)` when a body of `body` bytes from `from` would not fit
    /// the frame limit of every member of `room`.
    pub(super) fn check_room_body(
        &self,
        room: RoomId,
        from: &Arc<str>,
        body: usize,
    ) -> Result<(), ErrorCode> {
        let len = room_record_len(from, body);
        let Some(r) = self.rooms.get(&room) else {
            return Ok(());
        };
        if r.members.iter().all(|m| fits(len, m.max_frame)) {
            Ok(())
        } else {
            Err(ErrorCode::TooLargeForRecipient)
        }
    }
}
