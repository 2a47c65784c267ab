//! What the E2EE layer hands back: bytes to send and events to show.

use alloc::string::String;
use alloc::vec::Vec;

/// A Commit to send with `GroupCommit` (0x33), and what goes with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitOut {
    /// The serialized MLSMessage carrying the Commit.
    pub commit: Vec<u8>,
    /// The GroupInfo of the epoch the Commit makes (with the ratchet tree and the external
    /// public key, so later joiners can join by external commit).
    pub group_info: Vec<u8>,
    /// The Welcome for the member the Commit adds, if it adds one.
    pub welcome: Option<Vec<u8>>,
}

/// A direct group of two, made by [`super::E2ee::open_direct`], to send with
/// `OpenDirect` (0x35).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectOpen {
    /// The group's GroupInfo (epoch 1, both members in it).
    pub group_info: Vec<u8>,
    /// The Welcome that lets the peer join.
    pub welcome: Vec<u8>,
}

/// What one room log entry meant, from [`super::E2ee::handle_room_message`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Inbound {
    /// An application message, decrypted and authenticated.
    Message {
        /// The authenticated sender (equal to the name the server gave).
        from: String,
        /// The decrypted bytes.
        plaintext: Vec<u8>,
    },
    /// One of our own application messages, relayed back to us in the room's order (MLS
    /// cannot decrypt one's own messages: the app shows its own copy).
    OwnMessage,
    /// A Welcome for us: we are now a member of the room's group.
    Joined,
    /// Another member's Commit moved the group to `epoch`.
    Commit {
        /// The epoch the Commit made.
        epoch: u64,
        /// Names the Commit added (including an external joiner).
        added: Vec<String>,
        /// Names the Commit removed.
        removed: Vec<String>,
    },
    /// Our own Commit came back in the room's order: it is applied (if the server's `Ok`
    /// had not applied it already).
    OwnCommit,
    /// A Commit removed us: the room's group is gone from this account.
    Removed,
    /// Nothing for us: a Welcome for someone else, a message of a group we are not in, or
    /// an entry already processed (its sequence number is not past the last one seen).
    Ignored,
}
