//! Application messages carried inside encrypted records: `[u8 type][fields]`.
//!
//! Field encodings: integers big-endian; `name` and `title` are `[u8 len][bytes]`
//! (UTF-8, checked with [`valid_name`](super::valid_name) / [`valid_text`](super::valid_text));
//! `text`, `body` and `blob` are `[u16 len][bytes]`; `room` is 6 bytes from the room alphabet
//! (upper case only on the wire); `req` is a `u32` request ID chosen by the client and echoed
//! in the reply (0 = none); flags (`found`, `ok`, `request_update`) are exactly 0 or 1;
//! a room's `flags` byte has [`ROOM_FLAG_PRIVATE`](super::ROOM_FLAG_PRIVATE) and, from the
//! server only, [`ROOM_FLAG_DIRECT`](super::ROOM_FLAG_DIRECT); every other bit must be 0.
//!
//! Decoding checks every field and requires the message to fill the whole slice. Encoding
//! checks the same rules, so [`ClientMsg::encode`] / [`ServerMsg::encode`] never emit bytes
//! the other side would refuse, and writes nothing when it fails.
//!
//! [`ClientMsg`] lives in `client`; [`ServerMsg`] in `server`, with its parse and emit in
//! `server_codec`; the checked list views they carry ([`UserEntries`], [`NameEntries`],
//! [`RoomEntries`]) in `lists`, with their builders (feature `alloc`) in `builders`. The
//! type bytes below are shared by both directions, so they stay here.

mod client;
mod lists;
mod server;
mod server_codec;

#[cfg(feature = "alloc")]
mod builders;

#[cfg(feature = "alloc")]
pub use builders::*;
pub use client::ClientMsg;
pub use lists::{
    EntryIter, KeyPackageList, MAX_KEY_PACKAGE_LEN, NameEntries, RoomEntries, RoomEntry,
    UserEntries,
};
pub use server::ServerMsg;

/// Type byte of [`ClientMsg::UploadKeyPackages`].
pub const MSG_UPLOAD_KEY_PACKAGES: u8 = 0x30;
/// Type byte of [`ClientMsg::FetchKeyPackage`].
pub const MSG_FETCH_KEY_PACKAGE: u8 = 0x31;
/// Type byte of [`ClientMsg::InitGroup`].
pub const MSG_INIT_GROUP: u8 = 0x32;
/// Type byte of [`ClientMsg::GroupCommit`].
pub const MSG_GROUP_COMMIT: u8 = 0x33;
/// Type byte of [`ClientMsg::GetGroupInfo`].
pub const MSG_GET_GROUP_INFO: u8 = 0x34;
/// Type byte of [`ClientMsg::OpenDirect`].
pub const MSG_OPEN_DIRECT: u8 = 0x35;
/// Type byte of [`ServerMsg::KeyPackage`].
pub const MSG_KEY_PACKAGE: u8 = 0x98;
/// Type byte of [`ServerMsg::GroupInfo`].
pub const MSG_GROUP_INFO: u8 = 0x99;
/// Type byte of [`ServerMsg::KeyPackagesLow`].
pub const MSG_KEY_PACKAGES_LOW: u8 = 0x9A;
/// Type byte of [`ClientMsg::GetPublicKey`].
pub const MSG_GET_PUBLIC_KEY: u8 = 0x03;
/// Type byte of [`ClientMsg::SendDm`].
pub const MSG_SEND_DM: u8 = 0x04;
/// Type byte of [`ClientMsg::FetchPending`].
pub const MSG_FETCH_PENDING: u8 = 0x05;
/// Type byte of [`ClientMsg::SetStatus`].
pub const MSG_SET_STATUS: u8 = 0x06;
/// Type byte of [`ClientMsg::ListUsers`].
pub const MSG_LIST_USERS: u8 = 0x07;
/// Type byte of [`ClientMsg::Logout`].
pub const MSG_LOGOUT: u8 = 0x08;
/// Type byte of [`ClientMsg::AckDm`].
pub const MSG_ACK_DM: u8 = 0x09;
/// Type byte of [`ClientMsg::CreateRoom`].
pub const MSG_CREATE_ROOM: u8 = 0x10;
/// Type byte of [`ClientMsg::JoinRoom`].
pub const MSG_JOIN_ROOM: u8 = 0x11;
/// Type byte of [`ClientMsg::LeaveRoom`].
pub const MSG_LEAVE_ROOM: u8 = 0x12;
/// Type byte of [`ClientMsg::ListRooms`].
pub const MSG_LIST_ROOMS: u8 = 0x13;
/// Type byte of [`ClientMsg::RoomMessage`] (the server's delivery is [`MSG_INCOMING_ROOM_MESSAGE`]).
pub const MSG_ROOM_MESSAGE: u8 = 0x14;
/// Type byte of [`ClientMsg::UploadPrekeys`].
pub const MSG_UPLOAD_PREKEYS: u8 = 0x15;
/// Type byte of [`ClientMsg::FetchPrekeys`].
pub const MSG_FETCH_PREKEYS: u8 = 0x16;
/// Type byte of [`ClientMsg::InviteMember`] (protocol version 2).
pub const MSG_INVITE_MEMBER: u8 = 0x17;
/// Type byte of [`ClientMsg::RemoveMember`] (protocol version 2).
pub const MSG_REMOVE_MEMBER: u8 = 0x18;
/// Type byte of [`ClientMsg::SetRoomTitle`] (protocol version 2).
pub const MSG_SET_ROOM_TITLE: u8 = 0x19;
/// Type byte of [`ClientMsg::AckRoom`] (protocol version 2).
pub const MSG_ACK_ROOM: u8 = 0x1A;
/// Type byte of [`ClientMsg::FetchHistory`] (protocol version 2).
pub const MSG_FETCH_HISTORY: u8 = 0x1B;

/// Type byte of `Ping` in both directions.
pub const MSG_PING: u8 = 0x20;
/// Type byte of `Pong` in both directions.
pub const MSG_PONG: u8 = 0x21;
/// Inner type byte of [`ClientMsg::KeyUpdate`] and [`ServerMsg::KeyUpdate`]; the session layer acts on it.
pub const MSG_KEY_UPDATE: u8 = 0x22;
/// Type byte of `Close` in both directions.
pub const MSG_CLOSE: u8 = 0x23;

/// Type byte of [`ServerMsg::AuthResponse`] answering a registration.
pub const MSG_REGISTER_RESPONSE: u8 = 0x81;
/// Type byte of [`ServerMsg::AuthResponse`] answering a login.
pub const MSG_LOGIN_RESPONSE: u8 = 0x82;
/// Type byte of [`ServerMsg::PublicKey`].
pub const MSG_PUBLIC_KEY: u8 = 0x83;
/// Type byte of [`ServerMsg::MessageAck`].
pub const MSG_MESSAGE_ACK: u8 = 0x84;
/// Type byte of [`ServerMsg::IncomingDm`].
pub const MSG_INCOMING_DM: u8 = 0x85;
/// Type byte of [`ServerMsg::UserList`].
pub const MSG_USER_LIST: u8 = 0x86;
/// Type byte of [`ServerMsg::StatusUpdate`].
pub const MSG_STATUS_UPDATE: u8 = 0x87;
/// Type byte of [`ServerMsg::Error`].
pub const MSG_ERROR: u8 = 0x88;
/// Type byte of [`ServerMsg::RoomJoined`].
pub const MSG_ROOM_JOINED: u8 = 0x89;
/// Type byte of [`ServerMsg::RoomLeft`].
pub const MSG_ROOM_LEFT: u8 = 0x8A;
/// Type byte of [`ServerMsg::RoomList`].
pub const MSG_ROOM_LIST: u8 = 0x8B;
/// Type byte of [`ServerMsg::RoomMessage`].
pub const MSG_INCOMING_ROOM_MESSAGE: u8 = 0x8C;
/// Type byte of [`ServerMsg::MemberJoined`].
pub const MSG_MEMBER_JOINED: u8 = 0x8D;
/// Type byte of [`ServerMsg::MemberLeft`].
pub const MSG_MEMBER_LEFT: u8 = 0x8E;
/// Type byte of [`ServerMsg::PrekeyBundle`].
pub const MSG_PREKEY_BUNDLE: u8 = 0x8F;
/// Type byte of [`ServerMsg::Ok`].
pub const MSG_OK: u8 = 0x90;
/// Type byte of [`ServerMsg::PendingDone`].
pub const MSG_PENDING_DONE: u8 = 0x91;
/// Type byte of [`ServerMsg::RoomGap`] (protocol version 2).
pub const MSG_ROOM_GAP: u8 = 0x92;
/// Type byte of [`ServerMsg::RoomInvited`] (protocol version 2).
pub const MSG_ROOM_INVITED: u8 = 0x93;
/// Type byte of [`ServerMsg::RoomRemoved`] (protocol version 2).
pub const MSG_ROOM_REMOVED: u8 = 0x94;
/// Type byte of [`ServerMsg::RoomTitle`] (protocol version 2).
pub const MSG_ROOM_TITLE: u8 = 0x95;
/// Type byte of [`ServerMsg::HistoryMessage`] (protocol version 2).
pub const MSG_HISTORY_MESSAGE: u8 = 0x96;
/// Type byte of [`ServerMsg::HistoryDone`] (protocol version 2).
pub const MSG_HISTORY_DONE: u8 = 0x97;
