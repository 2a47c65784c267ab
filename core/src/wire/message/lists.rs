//! The lists a [`ServerMsg`](super::ServerMsg) carries, as checked views over their encoded
//! entries: parsing checks every entry once, so iterating never fails.

use crate::wire::codec::{Reader, Sink, encode_with};
use crate::wire::error::WireError;
use crate::wire::types::{RoomId, Status};

/// Reads `count` entries with `entry` and returns the bytes they span.
pub(super) fn scan<'a, T>(
    r: &mut Reader<'a>,
    count: usize,
    entry: fn(&mut Reader<'a>) -> Result<T, WireError>,
) -> Result<&'a [u8], WireError> {
    let start = r.rest();
    for _ in 0..count {
        entry(r)?;
    }
    let used = start.len().saturating_sub(r.rest().len());
    start.get(..used).ok_or(WireError::Truncated)
}

/// Checks that `raw` is exactly `count` entries.
fn check_list<'a, T>(
    raw: &'a [u8],
    count: usize,
    entry: fn(&mut Reader<'a>) -> Result<T, WireError>,
) -> Result<(), WireError> {
    let mut r = Reader::new(raw);
    scan(&mut r, count, entry)?;
    r.finish()
}

pub(super) fn user_entry<'a>(r: &mut Reader<'a>) -> Result<(&'a str, Status), WireError> {
    Ok((r.name()?, r.status()?))
}

pub(super) fn name_entry<'a>(r: &mut Reader<'a>) -> Result<&'a str, WireError> {
    r.name()
}

pub(super) fn room_entry<'a>(r: &mut Reader<'a>) -> Result<RoomEntry<'a>, WireError> {
    Ok(RoomEntry {
        room: r.room()?,
        title: r.title()?,
        members: r.u8()?,
        capacity: r.u8()?,
    })
}

/// Yields entries of a list that was checked when built; stops at the first malformed
/// entry of a list built by hand without [`UserEntries::new`] and friends.
#[derive(Clone, Debug)]
pub struct EntryIter<'a, T> {
    r: Reader<'a>,
    left: usize,
    entry: fn(&mut Reader<'a>) -> Result<T, WireError>,
}

impl<T> Iterator for EntryIter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        if self.left == 0 {
            return None;
        }
        match (self.entry)(&mut self.r) {
            Ok(item) => {
                self.left -= 1;
                Some(item)
            }
            Err(_) => {
                self.left = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left))
    }
}

/// The encoded entries of a user list, checked when parsed; iterate with `iter()`.
///
/// The fields are public so a list can be taken apart and rebuilt, but a hand-made value
/// is only trusted after [`UserEntries::new`]; [`ServerMsg::encode`](super::ServerMsg::encode) checks it again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserEntries<'a> {
    /// Number of entries.
    pub count: u16,
    /// `count × ([u8 len][name][u8 status])`.
    pub raw: &'a [u8],
}

impl<'a> UserEntries<'a> {
    /// The empty list.
    pub const EMPTY: UserEntries<'static> = UserEntries { count: 0, raw: &[] };

    /// Checks that `raw` is exactly `count` valid entries.
    pub fn new(count: u16, raw: &'a [u8]) -> Result<Self, WireError> {
        check_list(raw, count.into(), user_entry)?;
        Ok(UserEntries { count, raw })
    }

    /// The entries: `(name, status)`.
    pub fn iter(&self) -> EntryIter<'a, (&'a str, Status)> {
        EntryIter {
            r: Reader::new(self.raw),
            left: self.count.into(),
            entry: user_entry,
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.count.into()
    }

    /// Whether the list has no entries.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes one entry takes.
    pub fn entry_len(name: &str) -> usize {
        2 + name.len()
    }

    /// Checks and writes one entry at the start of `out`; nothing is written on error.
    pub fn encode_entry(out: &mut [u8], name: &str, status: Status) -> Result<usize, WireError> {
        encode_with(out, |s| {
            s.name(name)?;
            s.u8(status as u8)
        })
    }
}

impl<'a> IntoIterator for UserEntries<'a> {
    type Item = (&'a str, Status);
    type IntoIter = EntryIter<'a, (&'a str, Status)>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// The encoded entries of a name list (room members), checked when parsed.
///
/// Trusted only when parsed or made with [`NameEntries::new`]; encoding checks it again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameEntries<'a> {
    /// Number of entries.
    pub count: u8,
    /// `count × ([u8 len][name])`.
    pub raw: &'a [u8],
}

impl<'a> NameEntries<'a> {
    /// The empty list.
    pub const EMPTY: NameEntries<'static> = NameEntries { count: 0, raw: &[] };

    /// Checks that `raw` is exactly `count` valid entries.
    pub fn new(count: u8, raw: &'a [u8]) -> Result<Self, WireError> {
        check_list(raw, count.into(), name_entry)?;
        Ok(NameEntries { count, raw })
    }

    /// The names.
    pub fn iter(&self) -> EntryIter<'a, &'a str> {
        EntryIter {
            r: Reader::new(self.raw),
            left: self.count.into(),
            entry: name_entry,
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.count.into()
    }

    /// Whether the list has no entries.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes one entry takes.
    pub fn entry_len(name: &str) -> usize {
        1 + name.len()
    }

    /// Checks and writes one entry at the start of `out`; nothing is written on error.
    pub fn encode_entry(out: &mut [u8], name: &str) -> Result<usize, WireError> {
        encode_with(out, |s| s.name(name))
    }
}

impl<'a> IntoIterator for NameEntries<'a> {
    type Item = &'a str;
    type IntoIter = EntryIter<'a, &'a str>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// One room of a [`RoomEntries`] list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoomEntry<'a> {
    /// The room's ID.
    pub room: RoomId,
    /// Its title, at most 64 bytes.
    pub title: &'a str,
    /// How many members it has now.
    pub members: u8,
    /// How many members it may have.
    pub capacity: u8,
}

/// The encoded entries of a room list, checked when parsed.
///
/// Trusted only when parsed or made with [`RoomEntries::new`]; encoding checks it again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoomEntries<'a> {
    /// Number of entries.
    pub count: u16,
    /// `count × ([6 room][u8 len][title][u8 members][u8 capacity])`.
    pub raw: &'a [u8],
}

impl<'a> RoomEntries<'a> {
    /// The empty list.
    pub const EMPTY: RoomEntries<'static> = RoomEntries { count: 0, raw: &[] };

    /// Checks that `raw` is exactly `count` valid entries.
    pub fn new(count: u16, raw: &'a [u8]) -> Result<Self, WireError> {
        check_list(raw, count.into(), room_entry)?;
        Ok(RoomEntries { count, raw })
    }

    /// The rooms.
    pub fn iter(&self) -> EntryIter<'a, RoomEntry<'a>> {
        EntryIter {
            r: Reader::new(self.raw),
            left: self.count.into(),
            entry: room_entry,
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.count.into()
    }

    /// Whether the list has no entries.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes one entry takes.
    pub fn entry_len(entry: &RoomEntry<'_>) -> usize {
        9 + entry.title.len()
    }

    /// Checks and writes one entry at the start of `out`; nothing is written on error.
    pub fn encode_entry(out: &mut [u8], entry: &RoomEntry<'_>) -> Result<usize, WireError> {
        encode_with(out, |s| emit_room_entry(s, entry))
    }
}

pub(super) fn emit_room_entry(s: &mut dyn Sink, e: &RoomEntry<'_>) -> Result<(), WireError> {
    s.room(&e.room)?;
    s.title(e.title)?;
    s.u8(e.members)?;
    s.u8(e.capacity)
}

impl<'a> IntoIterator for RoomEntries<'a> {
    type Item = RoomEntry<'a>;
    type IntoIter = EntryIter<'a, RoomEntry<'a>>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// The largest KeyPackage a client may upload, in bytes (an X25519 + Ed25519 package with
/// a basic credential is about 300).
pub const MAX_KEY_PACKAGE_LEN: usize = 2048;

fn key_package_entry<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], WireError> {
    let kp = r.blob()?;
    if kp.is_empty() || kp.len() > MAX_KEY_PACKAGE_LEN {
        return Err(WireError::TooLong);
    }
    Ok(kp)
}

/// A list of KeyPackages, `[u16 len][bytes]` each, every one non-empty and at most
/// [`MAX_KEY_PACKAGE_LEN`] bytes; checked when parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyPackageList<'a> {
    raw: &'a [u8],
}

impl<'a> KeyPackageList<'a> {
    /// Checks that `raw` is a whole number of valid entries.
    pub fn parse(raw: &'a [u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(raw);
        while !r.rest().is_empty() {
            key_package_entry(&mut r)?;
        }
        Ok(KeyPackageList { raw })
    }

    /// The encoded entries.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The packages.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        let mut r = Reader::new(self.raw);
        core::iter::from_fn(move || {
            if r.rest().is_empty() {
                None
            } else {
                key_package_entry(&mut r).ok()
            }
        })
    }

    /// Number of packages.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether the list has no packages.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Writes `packages` as a list into `out`, returning its length; nothing on error.
    pub fn encode<'p>(
        out: &mut [u8],
        packages: impl IntoIterator<Item = &'p [u8]> + Clone,
    ) -> Result<usize, WireError> {
        encode_with(out, |s| {
            for kp in packages.clone() {
                if kp.is_empty() || kp.len() > MAX_KEY_PACKAGE_LEN {
                    return Err(WireError::TooLong);
                }
                s.blob(kp)?;
            }
            Ok(())
        })
    }
}
