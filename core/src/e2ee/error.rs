//! The E2EE layer's typed errors.

use alloc::string::String;
use core::fmt;

use mls_rs::error::MlsError;

use crate::wire::RoomId;

/// Why an E2EE operation failed. Nothing is changed when an operation fails: the group state
/// the layer keeps (and exports) is the one before the call.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum E2eeError {
    /// The account name is not a valid cove name.
    InvalidName,
    /// No active group for that room.
    NoGroup(RoomId),
    /// The room already has a group here (active, or an external join waiting for the server).
    GroupExists(RoomId),
    /// As many groups (rooms, pending joins, pending direct groups) as the layer keeps.
    TooManyGroups,
    /// An entry of the epoch our external join makes arrived before the server's answer to
    /// the join: call [`super::E2ee::commit_accepted`] (on `RoomJoined`) first, then hand
    /// the entry in again (it was not counted as handled).
    JoinPending(RoomId),
    /// A commit of ours for this room waits for the server's answer
    /// ([`super::E2ee::commit_accepted`] / [`super::E2ee::commit_refused`]).
    CommitPending(RoomId),
    /// A member's (or the key package's) Ed25519 key differs from the one pinned for that
    /// name; sending is refused until [`super::E2ee::accept_key`].
    KeyChanged {
        /// The contact whose key changed.
        name: String,
    },
    /// A member's key is pinned on first sight but the server's key directory has not
    /// confirmed it yet (`GetPublicKey`): sending waits for [`super::E2ee::confirm_key`].
    Unconfirmed {
        /// The member whose key waits for the directory.
        name: String,
    },
    /// No member of that name in the group.
    NotMember(String),
    /// A member of that name is already in the group.
    AlreadyMember(String),
    /// The key package names someone other than the peer it was fetched for.
    KeyPackageMismatch {
        /// The name the caller expected.
        expected: String,
        /// The name in the key package's credential.
        found: String,
    },
    /// Bytes that are not a serialized MLS message of the expected kind.
    Malformed,
    /// A message of an epoch this member has not reached: a Commit was missed, so the group
    /// can no longer be followed (rejoin with an external commit).
    FutureEpoch {
        /// The message's epoch.
        epoch: u64,
        /// This member's epoch.
        current: u64,
    },
    /// The server's sender name is not the MLS sender of the message.
    SenderMismatch {
        /// The name the server gave.
        claimed: String,
        /// The authenticated MLS sender.
        actual: String,
    },
    /// The encrypted message would not fit a room message body.
    TooLarge,
    /// More key packages asked for than the layer keeps secrets for.
    TooManyKeyPackages,
    /// No pending direct group for that peer.
    NoDirect(String),
    /// A direct group for that peer already waits for the server.
    DirectPending(String),
    /// The crypto provider failed, or gave a random group ID already in use.
    Crypto,
    /// Exported state that does not decode.
    State(StateError),
    /// mls-rs refused the operation or the message.
    Mls(MlsFailure),
}

/// An mls-rs error, kept as its description (mls-rs errors can be neither cloned nor
/// compared, and carry no more detail without `std`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MlsFailure(String);

impl MlsFailure {
    /// The description (the mls-rs error's variant, with its fields).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for E2eeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            E2eeError::InvalidName => f.write_str("invalid account name"),
            E2eeError::NoGroup(r) => write!(f, "no encrypted group for room {r}"),
            E2eeError::GroupExists(r) => write!(f, "room {r} already has an encrypted group"),
            E2eeError::TooManyGroups => f.write_str("too many encrypted groups"),
            E2eeError::JoinPending(r) => {
                write!(f, "the join of room {r} waits for the server's answer")
            }
            E2eeError::CommitPending(r) => {
                write!(f, "a commit for room {r} waits for the server")
            }
            E2eeError::KeyChanged { name } => {
                write!(
                    f,
                    "the key of {name} changed: compare safety numbers, then accept it"
                )
            }
            E2eeError::Unconfirmed { name } => {
                write!(f, "the key of {name} waits for the server's directory")
            }
            E2eeError::NotMember(n) => write!(f, "{n} is not a member of the group"),
            E2eeError::AlreadyMember(n) => write!(f, "{n} is already a member of the group"),
            E2eeError::KeyPackageMismatch { expected, found } => {
                write!(f, "key package of {found}, expected {expected}")
            }
            E2eeError::Malformed => f.write_str("not an MLS message of the expected kind"),
            E2eeError::FutureEpoch { epoch, current } => {
                write!(
                    f,
                    "message of epoch {epoch}, group at {current}: a commit was missed"
                )
            }
            E2eeError::SenderMismatch { claimed, actual } => {
                write!(f, "message from {actual} relayed as from {claimed}")
            }
            E2eeError::TooLarge => f.write_str("message too large"),
            E2eeError::TooManyKeyPackages => f.write_str("too many key packages"),
            E2eeError::NoDirect(p) => write!(f, "no direct group pending for {p}"),
            E2eeError::DirectPending(p) => write!(f, "a direct group for {p} is already pending"),
            E2eeError::Crypto => f.write_str("crypto provider failure"),
            E2eeError::State(e) => write!(f, "E2EE state: {e}"),
            E2eeError::Mls(e) => write!(f, "MLS: {e}"),
        }
    }
}

impl core::error::Error for E2eeError {}

impl From<MlsError> for E2eeError {
    fn from(e: MlsError) -> Self {
        E2eeError::Mls(MlsFailure(alloc::format!("{e:?}")))
    }
}

impl From<StateError> for E2eeError {
    fn from(e: StateError) -> Self {
        E2eeError::State(e)
    }
}

/// Why exported state did not restore.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StateError {
    /// The bytes do not start with the state's magic.
    BadMagic,
    /// A format version this build does not read.
    UnsupportedVersion(u8),
    /// The bytes end inside a field.
    Truncated,
    /// Bytes left over after the last field.
    TrailingBytes,
    /// A count above the layer's limits.
    TooMany,
    /// A field with a value it may not have (a bad name, room ID, flag or duplicate).
    Invalid,
    /// The state belongs to another account (name or identity key).
    WrongAccount,
    /// A stored group does not load.
    Group,
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::BadMagic => f.write_str("not cove E2EE state"),
            StateError::UnsupportedVersion(v) => write!(f, "unsupported state version {v}"),
            StateError::Truncated => f.write_str("truncated"),
            StateError::TrailingBytes => f.write_str("trailing bytes"),
            StateError::TooMany => f.write_str("more entries than allowed"),
            StateError::Invalid => f.write_str("invalid field"),
            StateError::WrongAccount => f.write_str("state of another account"),
            StateError::Group => f.write_str("a stored group does not load"),
        }
    }
}

impl core::error::Error for StateError {}
