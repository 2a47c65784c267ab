//! Builders that accumulate the entries of a list message on the heap (feature `alloc`).
//!
//! The three lists differ only in the width of their count and in what one entry holds, so
//! one generic [`ListBuilder`] does the counting, checking and storage; a [`ListKind`]
//! names the list, and each kind adds its own `push`.

use alloc::vec::Vec;
use core::fmt::Debug;

use super::lists::{NameEntries, RoomEntries, RoomEntry, UserEntries, emit_room_entry};
use crate::wire::codec::{Counter, Sink};
use crate::wire::{Status, WireError};

/// Appends to the vector; only used after a strict [`Counter`] pass.
struct VecSink<'v>(&'v mut Vec<u8>);

impl Sink for VecSink<'_> {
    fn put(&mut self, b: &[u8]) -> Result<(), WireError> {
        self.0.extend_from_slice(b);
        Ok(())
    }

    fn strict(&self) -> bool {
        false
    }
}

mod sealed {
    /// Keeps [`ListKind`](super::ListKind) to the three lists the protocol has.
    pub trait Sealed {}
}

/// Which list a [`ListBuilder`] builds: the width of its count and the view it hands out.
///
/// Sealed: the kinds are [`UserListKind`], [`NameListKind`] and [`RoomListKind`].
pub trait ListKind: sealed::Sealed {
    /// The count's type on the wire; its maximum bounds the number of entries.
    type Count: Copy + Default + Debug + Eq + Into<usize> + TryFrom<usize>;
    /// The checked view of a finished list.
    type Entries<'a>;
    /// Wraps `count` entries in `raw`, which the builder checked one by one.
    fn entries(count: Self::Count, raw: &[u8]) -> Self::Entries<'_>;
}

/// The user list of [`ServerMsg::UserList`](super::ServerMsg::UserList): a `u16` count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserListKind {}

/// The member list of [`ServerMsg::RoomJoined`](super::ServerMsg::RoomJoined): a `u8` count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameListKind {}

/// The room list of [`ServerMsg::RoomList`](super::ServerMsg::RoomList): a `u16` count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoomListKind {}

impl sealed::Sealed for UserListKind {}
impl sealed::Sealed for NameListKind {}
impl sealed::Sealed for RoomListKind {}

impl ListKind for UserListKind {
    type Count = u16;
    type Entries<'a> = UserEntries<'a>;
    fn entries(count: u16, raw: &[u8]) -> UserEntries<'_> {
        UserEntries { count, raw }
    }
}

impl ListKind for NameListKind {
    type Count = u8;
    type Entries<'a> = NameEntries<'a>;
    fn entries(count: u8, raw: &[u8]) -> NameEntries<'_> {
        NameEntries { count, raw }
    }
}

impl ListKind for RoomListKind {
    type Count = u16;
    type Entries<'a> = RoomEntries<'a>;
    fn entries(count: u16, raw: &[u8]) -> RoomEntries<'_> {
        RoomEntries { count, raw }
    }
}

/// Accumulates the entries of a [`UserEntries`] list.
pub type UserListBuilder = ListBuilder<UserListKind>;
/// Accumulates the entries of a [`NameEntries`] list.
pub type NameListBuilder = ListBuilder<NameListKind>;
/// Accumulates the entries of a [`RoomEntries`] list.
pub type RoomListBuilder = ListBuilder<RoomListKind>;

/// Accumulates the checked entries of one list message; see [`UserListBuilder`],
/// [`NameListBuilder`] and [`RoomListBuilder`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListBuilder<L: ListKind> {
    count: L::Count,
    raw: Vec<u8>,
}

impl<L: ListKind> Default for ListBuilder<L> {
    fn default() -> Self {
        ListBuilder {
            count: L::Count::default(),
            raw: Vec::new(),
        }
    }
}

impl<L: ListKind> ListBuilder<L> {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.count.into()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of the entries, without the message's own fields (type, `req`, count, and for
    /// a member list the room, flags, title and admin).
    pub fn raw_len(&self) -> usize {
        self.raw.len()
    }

    /// Empties the list, keeping its memory.
    pub fn clear(&mut self) {
        self.count = L::Count::default();
        self.raw.clear();
    }

    /// The list, ready for the message that carries it.
    pub fn entries(&self) -> L::Entries<'_> {
        L::entries(self.count, &self.raw)
    }

    /// Checks one entry with a strict [`Counter`] pass, then appends it; refuses an entry
    /// past the count's maximum with [`WireError::TooLong`]. Nothing changes on error.
    fn append(
        &mut self,
        emit: impl Fn(&mut dyn Sink) -> Result<(), WireError>,
    ) -> Result<(), WireError> {
        let count = L::Count::try_from(self.len() + 1).map_err(|_| WireError::TooLong)?;
        emit(&mut Counter {
            len: 0,
            strict: true,
        })?;
        emit(&mut VecSink(&mut self.raw))?;
        self.count = count;
        Ok(())
    }
}

impl ListBuilder<UserListKind> {
    /// Checks and appends an entry; refuses a 65536th with [`WireError::TooLong`].
    pub fn push(&mut self, name: &str, status: Status) -> Result<(), WireError> {
        self.append(|s| {
            s.name(name)?;
            s.u8(status as u8)
        })
    }
}

impl ListBuilder<NameListKind> {
    /// Checks and appends an entry; refuses a 256th with [`WireError::TooLong`].
    pub fn push(&mut self, name: &str) -> Result<(), WireError> {
        self.append(|s| s.name(name))
    }
}

impl ListBuilder<RoomListKind> {
    /// Checks and appends an entry; refuses a 65536th with [`WireError::TooLong`].
    pub fn push(&mut self, entry: &RoomEntry<'_>) -> Result<(), WireError> {
        self.append(|s| emit_room_entry(s, entry))
    }
}
