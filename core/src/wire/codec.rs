//! Field-level reading and writing shared by messages, list entries and alerts.
//!
//! Reading goes through [`Reader`], which only ever slices with checked operations.
//! Writing goes through a [`Sink`]: encoders run once over a [`Counter`] (which validates
//! every field and sums the size) and, when the caller's buffer is big enough, once over a
//! [`Writer`]. So a refused encode never writes a byte.

use super::error::WireError;
use super::types::{
    AckStatus, ErrorCode, MAX_NAME_LEN, MAX_TEXT_LEN, MAX_TITLE_LEN, ROOM_FLAG_DIRECT,
    ROOM_FLAG_PRIVATE, ROOM_ID_LEN, RoomId, Status, valid_name, valid_text,
};

/// A cursor over input bytes.
#[derive(Clone, Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// The bytes not read yet.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.buf
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let (head, rest) = self.buf.split_at_checked(n).ok_or(WireError::Truncated)?;
        self.buf = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        self.take(N)?.try_into().map_err(|_| WireError::Truncated)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, WireError> {
        let [b] = self.array::<1>()?;
        Ok(b)
    }

    pub(crate) fn u16(&mut self) -> Result<u16, WireError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    pub(crate) fn key(&mut self) -> Result<[u8; 32], WireError> {
        self.array()
    }

    /// A `0`/`1` byte.
    pub(crate) fn flag(&mut self) -> Result<bool, WireError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(WireError::BadValue),
        }
    }

    /// A room's flags byte as a client sends it: only [`ROOM_FLAG_PRIVATE`]; any other bit
    /// is refused.
    pub(crate) fn room_flags(&mut self) -> Result<bool, WireError> {
        let b = self.u8()?;
        if b & !ROOM_FLAG_PRIVATE != 0 {
            return Err(WireError::BadValue);
        }
        Ok(b & ROOM_FLAG_PRIVATE != 0)
    }

    /// `[u8 len][name]`, checked with [`valid_name`].
    pub(crate) fn name(&mut self) -> Result<&'a str, WireError> {
        let len = usize::from(self.u8()?);
        if len == 0 || len > MAX_NAME_LEN {
            return Err(WireError::BadName);
        }
        let s = core::str::from_utf8(self.take(len)?).map_err(|_| WireError::BadName)?;
        if valid_name(s) {
            Ok(s)
        } else {
            Err(WireError::BadName)
        }
    }

    /// `[u8 len][name]`, or a zero length for none.
    pub(crate) fn opt_name(&mut self) -> Result<Option<&'a str>, WireError> {
        if self.rest().first() == Some(&0) {
            self.u8()?;
            return Ok(None);
        }
        self.name().map(Some)
    }

    /// A room's flags byte with [`ROOM_FLAG_DIRECT`] allowed: `(private, direct)`.
    pub(crate) fn room_flags_any(&mut self) -> Result<(bool, bool), WireError> {
        let b = self.u8()?;
        if b & !(ROOM_FLAG_PRIVATE | ROOM_FLAG_DIRECT) != 0 {
            return Err(WireError::BadValue);
        }
        Ok((b & ROOM_FLAG_PRIVATE != 0, b & ROOM_FLAG_DIRECT != 0))
    }

    fn checked_text(&mut self, len: usize, max: usize) -> Result<&'a str, WireError> {
        if len > max {
            return Err(WireError::TooLong);
        }
        let s = core::str::from_utf8(self.take(len)?).map_err(|_| WireError::BadText)?;
        if valid_text(s, max) {
            Ok(s)
        } else {
            Err(WireError::BadText)
        }
    }

    /// `[u8 len][title]`, at most [`MAX_TITLE_LEN`] bytes of [`valid_text`].
    pub(crate) fn title(&mut self) -> Result<&'a str, WireError> {
        let len = usize::from(self.u8()?);
        self.checked_text(len, MAX_TITLE_LEN)
    }

    /// `[u16 len][text]`, at most [`MAX_TEXT_LEN`] bytes of [`valid_text`].
    pub(crate) fn text(&mut self) -> Result<&'a str, WireError> {
        let len = usize::from(self.u16()?);
        self.checked_text(len, MAX_TEXT_LEN)
    }

    /// `[u16 len][bytes]`, opaque.
    pub(crate) fn blob(&mut self) -> Result<&'a [u8], WireError> {
        let len = usize::from(self.u16()?);
        self.take(len)
    }

    /// Six bytes of the room alphabet, upper case only (the canonical form).
    pub(crate) fn room(&mut self) -> Result<RoomId, WireError> {
        let raw = self.take(ROOM_ID_LEN)?;
        match RoomId::parse(raw) {
            Some(id) if id.0 == raw => Ok(id),
            _ => Err(WireError::BadRoomId),
        }
    }

    pub(crate) fn status(&mut self) -> Result<Status, WireError> {
        Status::from_u8(self.u8()?).ok_or(WireError::BadValue)
    }

    pub(crate) fn ack(&mut self) -> Result<AckStatus, WireError> {
        AckStatus::from_u8(self.u8()?).ok_or(WireError::BadValue)
    }

    pub(crate) fn code(&mut self) -> Result<ErrorCode, WireError> {
        ErrorCode::from_u8(self.u8()?).ok_or(WireError::BadValue)
    }

    /// Succeeds only when every byte has been read.
    pub(crate) fn finish(&self) -> Result<(), WireError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(WireError::TrailingBytes)
        }
    }
}

/// Where encoders put bytes.
pub(crate) trait Sink {
    /// Appends bytes.
    fn put(&mut self, b: &[u8]) -> Result<(), WireError>;
    /// Whether field values must be validated in this pass.
    fn strict(&self) -> bool;

    fn u8(&mut self, v: u8) -> Result<(), WireError> {
        self.put(&[v])
    }

    fn u16(&mut self, v: u16) -> Result<(), WireError> {
        self.put(&v.to_be_bytes())
    }

    fn u32(&mut self, v: u32) -> Result<(), WireError> {
        self.put(&v.to_be_bytes())
    }

    fn u64(&mut self, v: u64) -> Result<(), WireError> {
        self.put(&v.to_be_bytes())
    }

    fn flag(&mut self, v: bool) -> Result<(), WireError> {
        self.u8(u8::from(v))
    }

    /// A client's room flags byte from its one bit (so no other bit is ever set).
    fn room_flags(&mut self, private: bool) -> Result<(), WireError> {
        self.u8(if private { ROOM_FLAG_PRIVATE } else { 0 })
    }

    fn opt_name(&mut self, name: Option<&str>) -> Result<(), WireError> {
        match name {
            Some(n) => self.name(n),
            None => self.u8(0),
        }
    }

    /// A room's flags byte with the direct bit.
    fn room_flags_any(&mut self, private: bool, direct: bool) -> Result<(), WireError> {
        let d = if direct { ROOM_FLAG_DIRECT } else { 0 };
        self.u8(d | if private { ROOM_FLAG_PRIVATE } else { 0 })
    }

    fn name(&mut self, name: &str) -> Result<(), WireError> {
        if self.strict() && !valid_name(name) {
            return Err(WireError::BadName);
        }
        // Lossless once validated; in the sizing pass only the byte count matters.
        self.u8(name.len() as u8)?;
        self.put(name.as_bytes())
    }

    fn title(&mut self, title: &str) -> Result<(), WireError> {
        if self.strict() {
            check_text(title, MAX_TITLE_LEN)?;
        }
        self.u8(title.len() as u8)?;
        self.put(title.as_bytes())
    }

    fn text(&mut self, text: &str) -> Result<(), WireError> {
        if self.strict() {
            check_text(text, MAX_TEXT_LEN)?;
        }
        self.u16(text.len() as u16)?;
        self.put(text.as_bytes())
    }

    fn blob(&mut self, blob: &[u8]) -> Result<(), WireError> {
        let len = u16::try_from(blob.len());
        if self.strict() && len.is_err() {
            return Err(WireError::TooLong);
        }
        self.u16(len.unwrap_or(u16::MAX))?;
        self.put(blob)
    }

    fn room(&mut self, room: &RoomId) -> Result<(), WireError> {
        if self.strict() && RoomId::parse(&room.0).map(|r| r.0) != Some(room.0) {
            return Err(WireError::BadRoomId);
        }
        self.put(&room.0)
    }
}

fn check_text(text: &str, max: usize) -> Result<(), WireError> {
    if text.len() > max {
        Err(WireError::TooLong)
    } else if !valid_text(text, max) {
        Err(WireError::BadText)
    } else {
        Ok(())
    }
}

/// Sizes an encoding; when strict, also validates it.
pub(crate) struct Counter {
    pub(crate) len: usize,
    pub(crate) strict: bool,
}

impl Sink for Counter {
    fn put(&mut self, b: &[u8]) -> Result<(), WireError> {
        self.len = self.len.saturating_add(b.len());
        Ok(())
    }

    fn strict(&self) -> bool {
        self.strict
    }
}

/// Writes into a caller's buffer (already known to be big enough).
pub(crate) struct Writer<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl Sink for Writer<'_> {
    fn put(&mut self, b: &[u8]) -> Result<(), WireError> {
        let end = self.pos.saturating_add(b.len());
        let dst = self
            .buf
            .get_mut(self.pos..end)
            .ok_or(WireError::BufferTooSmall { needed: end })?;
        dst.copy_from_slice(b);
        self.pos = end;
        Ok(())
    }

    fn strict(&self) -> bool {
        false
    }
}

/// Validates and sizes with `emit`, then writes with it only if `out` is big enough.
pub(crate) fn encode_with(
    out: &mut [u8],
    emit: impl Fn(&mut dyn Sink) -> Result<(), WireError>,
) -> Result<usize, WireError> {
    let mut counter = Counter {
        len: 0,
        strict: true,
    };
    emit(&mut counter)?;
    let needed = counter.len;
    let dst = out
        .get_mut(..needed)
        .ok_or(WireError::BufferTooSmall { needed })?;
    let mut writer = Writer { buf: dst, pos: 0 };
    emit(&mut writer)?;
    Ok(writer.pos)
}

/// The size `emit` would write, without validating.
pub(crate) fn len_with(emit: impl Fn(&mut dyn Sink) -> Result<(), WireError>) -> usize {
    let mut counter = Counter {
        len: 0,
        strict: false,
    };
    // A non-strict counter never fails.
    let _ = emit(&mut counter);
    counter.len
}
