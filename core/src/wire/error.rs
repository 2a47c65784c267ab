//! The error of parsing or emitting a message.

use core::fmt;

/// Why a message (or an alert payload) could not be decoded or encoded.
///
/// Every variant is a peer's (or caller's) mistake, never a reason to panic: the connection
/// layer turns a decode error into [`ErrorCode::InvalidFormat`](super::ErrorCode::InvalidFormat).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WireError {
    /// The input ended in the middle of a field.
    Truncated,
    /// The message was complete but bytes were left over.
    TrailingBytes,
    /// The message type byte is not one this direction may send.
    UnknownType(u8),
    /// A nickname is empty, longer than [`MAX_NAME_LEN`](super::MAX_NAME_LEN), not UTF-8,
    /// or has a character outside `A–Z a–z 0–9 _ - .`.
    BadName,
    /// A title or text is not UTF-8 or contains a control character.
    BadText,
    /// A room ID is not six characters of [`ROOM_ALPHABET`](super::ROOM_ALPHABET).
    BadRoomId,
    /// A status, ack status, error code or flag byte has a value that is not defined.
    BadValue,
    /// A title, text, body or list is longer than its field or limit allows.
    TooLong,
    /// The output buffer is too small; nothing was written.
    BufferTooSmall {
        /// Bytes the encoding needs.
        needed: usize,
    },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated => f.write_str("message truncated"),
            WireError::TrailingBytes => f.write_str("trailing bytes after message"),
            WireError::UnknownType(t) => write!(f, "unknown message type 0x{t:02x}"),
            WireError::BadName => f.write_str("invalid nickname"),
            WireError::BadText => f.write_str("invalid text"),
            WireError::BadRoomId => f.write_str("invalid room ID"),
            WireError::BadValue => f.write_str("undefined field value"),
            WireError::TooLong => f.write_str("field too long"),
            WireError::BufferTooSmall { needed } => {
                write!(f, "output buffer too small: {needed} bytes needed")
            }
        }
    }
}

impl core::error::Error for WireError {}
