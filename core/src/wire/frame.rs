//! Frames: `[u32 big-endian payload length][u8 type][payload]`.
//!
//! The length counts the payload only (not the type byte or itself). The decoder judges a
//! frame from its 5-byte header alone: a length over the configured maximum or an unknown
//! type is refused before any payload byte needs to be buffered.

use core::fmt;

use super::codec::{Reader, encode_with, len_with};
use super::error::WireError;
use super::types::ErrorCode;

/// Bytes in a frame header: the length and the type.
pub const HEADER_LEN: usize = 5;
/// Frame type of the handshake's first message (client → server).
pub const FRAME_SYN: u8 = 0x01;
/// Frame type of the handshake's second message (server → client).
pub const FRAME_SYN_ACK: u8 = 0x02;
/// Frame type of the handshake's third message (client → server).
pub const FRAME_ACK: u8 = 0x03;
/// Frame type of a cleartext alert: `[u8 code][u16 len][text]`, sent before session keys exist.
pub const FRAME_ALERT: u8 = 0x15;
/// Frame type of an encrypted record: `[ciphertext][16-byte tag]`.
pub const FRAME_RECORD: u8 = 0x17;

/// The kinds of frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameType {
    /// [`FRAME_SYN`]: handshake message 1.
    Syn = FRAME_SYN,
    /// [`FRAME_SYN_ACK`]: handshake message 2.
    SynAck = FRAME_SYN_ACK,
    /// [`FRAME_ACK`]: handshake message 3.
    Ack = FRAME_ACK,
    /// [`FRAME_ALERT`]: cleartext alert, see [`Alert`].
    Alert = FRAME_ALERT,
    /// [`FRAME_RECORD`]: encrypted record.
    Record = FRAME_RECORD,
}

impl FrameType {
    /// Decodes a frame type byte.
    pub fn from_u8(b: u8) -> Option<FrameType> {
        match b {
            FRAME_SYN => Some(FrameType::Syn),
            FRAME_SYN_ACK => Some(FrameType::SynAck),
            FRAME_ACK => Some(FrameType::Ack),
            FRAME_ALERT => Some(FrameType::Alert),
            FRAME_RECORD => Some(FrameType::Record),
            _ => None,
        }
    }

    /// The type byte.
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

/// One frame, borrowing its payload from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// What the payload is.
    pub typ: FrameType,
    /// The payload (without the header).
    pub payload: &'a [u8],
}

impl Frame<'_> {
    /// Header plus payload bytes.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN.saturating_add(self.payload.len())
    }

    /// Writes the frame at the start of `out`; see [`encode_frame`].
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        encode_frame(self.typ, self.payload, out)
    }
}

/// Why the input cannot be a frame; the connection should send an alert and close.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FrameError {
    /// The header announces a payload longer than allowed.
    TooLarge {
        /// The announced payload length.
        len: u32,
        /// The configured maximum.
        max: u32,
    },
    /// The header's type byte is not a known frame type.
    UnknownType(u8),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLarge { len, max } => {
                write!(
                    f,
                    "frame payload of {len} bytes exceeds the maximum of {max}"
                )
            }
            FrameError::UnknownType(t) => write!(f, "unknown frame type 0x{t:02x}"),
        }
    }
}

impl core::error::Error for FrameError {}

impl FrameError {
    /// The code to report this error with in an [`Alert`] or `Close`.
    pub fn code(&self) -> ErrorCode {
        match self {
            FrameError::TooLarge { .. } => ErrorCode::FrameTooLarge,
            FrameError::UnknownType(_) => ErrorCode::InvalidFormat,
        }
    }
}

/// The output buffer cannot hold the frame; nothing was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BufferTooSmall {
    /// Bytes needed; `usize::MAX` when no buffer can do (a payload over `u32::MAX` bytes).
    pub needed: usize,
}

impl fmt::Display for BufferTooSmall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "output buffer too small: {} bytes needed", self.needed)
    }
}

impl core::error::Error for BufferTooSmall {}

/// Checks the header at the start of `buf` (if all 5 bytes are there) and returns the
/// total bytes (header + payload) the first frame occupies, or [`HEADER_LEN`] when the
/// header is incomplete. A reader reads until `buf.len()` reaches it.
pub fn needed_len(buf: &[u8], max_payload: u32) -> Result<usize, FrameError> {
    let Some(header) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(HEADER_LEN);
    };
    let [l0, l1, l2, l3, typ] = *header;
    let len = u32::from_be_bytes([l0, l1, l2, l3]);
    if len > max_payload {
        return Err(FrameError::TooLarge {
            len,
            max: max_payload,
        });
    }
    if FrameType::from_u8(typ).is_none() {
        return Err(FrameError::UnknownType(typ));
    }
    // A u32 fits in usize on every target cove supports (16-bit targets are not one).
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    Ok(HEADER_LEN.saturating_add(len))
}

/// Decodes the frame at the start of `buf`.
///
/// `Ok(None)` means more bytes are needed ([`needed_len`] says how many in total);
/// `Ok(Some((frame, consumed)))` gives the frame and the bytes it took from `buf`. An
/// oversize length or unknown type is an error as soon as the 5 header bytes are present.
pub fn decode_frame(
    buf: &[u8],
    max_payload: u32,
) -> Result<Option<(Frame<'_>, usize)>, FrameError> {
    let total = needed_len(buf, max_payload)?;
    let (Some(&typ), Some(payload)) = (buf.get(HEADER_LEN - 1), buf.get(HEADER_LEN..total)) else {
        return Ok(None);
    };
    let typ = FrameType::from_u8(typ).ok_or(FrameError::UnknownType(typ))?;
    Ok(Some((Frame { typ, payload }, total)))
}

/// The 5-byte header of a frame with a `payload_len`-byte payload.
pub fn encode_header(typ: FrameType, payload_len: u32) -> [u8; HEADER_LEN] {
    let [l0, l1, l2, l3] = payload_len.to_be_bytes();
    [l0, l1, l2, l3, typ.as_u8()]
}

/// Writes header and payload at the start of `out` and returns the bytes written.
///
/// On error nothing is written. (It does not check a maximum: that is the receiver's limit.)
pub fn encode_frame(
    typ: FrameType,
    payload: &[u8],
    out: &mut [u8],
) -> Result<usize, BufferTooSmall> {
    let too_big = BufferTooSmall { needed: usize::MAX };
    let len = u32::try_from(payload.len()).map_err(|_| too_big)?;
    let needed = HEADER_LEN.checked_add(payload.len()).ok_or(too_big)?;
    let dst = out.get_mut(..needed).ok_or(BufferTooSmall { needed })?;
    let (head, body) = dst.split_at_mut(HEADER_LEN);
    head.copy_from_slice(&encode_header(typ, len));
    body.copy_from_slice(payload);
    Ok(needed)
}

/// A cleartext alert (frame type [`FRAME_ALERT`]): `[u8 code][u16 len][text]`.
///
/// Sent instead of a handshake message, or when a peer is dropped before session keys
/// exist; after the handshake the encrypted `Close` message is used instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Alert<'a> {
    /// Why.
    pub code: ErrorCode,
    /// Human-readable detail, at most [`MAX_TEXT_LEN`](super::MAX_TEXT_LEN) bytes.
    pub text: &'a str,
}

impl<'a> Alert<'a> {
    /// Parses an alert frame's payload; all of it must be used.
    pub fn decode(payload: &'a [u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(payload);
        let alert = Alert {
            code: r.code()?,
            text: r.text()?,
        };
        r.finish()?;
        Ok(alert)
    }

    /// Payload bytes [`encode`](Self::encode) writes.
    pub fn encoded_len(&self) -> usize {
        len_with(|s| {
            s.u8(self.code as u8)?;
            s.text(self.text)
        })
    }

    /// Checks and writes the payload (no frame header); nothing is written on error.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, WireError> {
        encode_with(out, |s| {
            s.u8(self.code as u8)?;
            s.text(self.text)
        })
    }

    /// Checks and writes a whole alert frame, header included; nothing is written on error.
    pub fn encode_frame(&self, out: &mut [u8]) -> Result<usize, WireError> {
        encode_with(out, |s| {
            let len = self.text.len().saturating_add(3);
            s.put(&encode_header(
                FrameType::Alert,
                u32::try_from(len).unwrap_or(u32::MAX),
            ))?;
            s.u8(self.code as u8)?;
            s.text(self.text)
        })
    }
}
