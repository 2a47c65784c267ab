//! What connections ask of the hub, and what the hub sends back: owned mirrors of the
//! wire messages, so one room message fanned out to 20 members shares one payload.

use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::wire::{AckStatus, AuthMode, ErrorCode, RoomId, Status};

/// Identifies one connection to the hub; chosen by the adapter, unique while it lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// A request from an authenticated connection.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // Fields are named after the wire fields documented on `ClientMsg`.
pub enum Request {
    /// Ask for a user's Ed25519 identity key.
    GetPublicKey { req: u32, name: Arc<str> },
    /// A direct message.
    SendDm {
        req: u32,
        to: Arc<str>,
        body: Arc<[u8]>,
    },
    /// Re-send every unacknowledged direct message.
    FetchPending { req: u32 },
    /// Set presence.
    SetStatus { req: u32, status: Status },
    /// List users.
    ListUsers { req: u32 },
    /// Log out: the hub answers with [`Reply::Close`].
    Logout,
    /// The client has this direct message.
    AckDm { msg_id: u64 },
    /// Create a room (public, or private: joined by invitation only) and join it as admin.
    CreateRoom {
        req: u32,
        title: Arc<str>,
        private: bool,
    },
    /// Invite a user to a room (admin only).
    InviteMember {
        req: u32,
        room: RoomId,
        name: Arc<str>,
    },
    /// Remove a member from a room (admin only).
    RemoveMember {
        req: u32,
        room: RoomId,
        name: Arc<str>,
    },
    /// Change a room's title (admin only).
    SetRoomTitle {
        req: u32,
        room: RoomId,
        title: Arc<str>,
    },
    /// The client has shown or stored the room's messages up to `seq`.
    AckRoom { room: RoomId, seq: u64 },
    /// Retained room messages before `before`, oldest first, at most `limit`.
    FetchHistory {
        req: u32,
        room: RoomId,
        before: u64,
        limit: u8,
    },
    /// Join a room.
    JoinRoom { req: u32, room: RoomId },
    /// Leave a room.
    LeaveRoom { req: u32, room: RoomId },
    /// List rooms.
    ListRooms { req: u32 },
    /// A message to every member of a room.
    RoomMessage {
        req: u32,
        room: RoomId,
        body: Arc<[u8]>,
    },
    /// Store the user's prekey bundle.
    UploadPrekeys { req: u32, bundle: Arc<[u8]> },
    /// Fetch a user's prekey bundle.
    FetchPrekeys { req: u32, name: Arc<str> },
    /// Store KeyPackages (or one last-resort package).
    UploadKeyPackages {
        req: u32,
        last_resort: bool,
        packages: Vec<Arc<[u8]>>,
    },
    /// Take one of a user's KeyPackages.
    FetchKeyPackage { req: u32, name: Arc<str> },
    /// Publish a room's new MLS group (admin, once).
    InitGroup {
        req: u32,
        room: RoomId,
        group_info: Arc<[u8]>,
    },
    /// A Commit for the room's current epoch (an external commit from a non-member).
    GroupCommit {
        req: u32,
        room: RoomId,
        commit: Arc<[u8]>,
        group_info: Arc<[u8]>,
        add: Option<Arc<str>>,
        welcome: Arc<[u8]>,
    },
    /// The room's latest GroupInfo.
    GetGroupInfo { req: u32, room: RoomId },
    /// Open the direct conversation with `peer`.
    OpenDirect {
        req: u32,
        peer: Arc<str>,
        group_info: Arc<[u8]>,
        welcome: Arc<[u8]>,
    },
}

impl Request {
    /// The request's kind, for logs: never its (private) payload.
    pub fn kind(&self) -> &'static str {
        match self {
            Request::GetPublicKey { .. } => "GetPublicKey",
            Request::SendDm { .. } => "SendDm",
            Request::FetchPending { .. } => "FetchPending",
            Request::SetStatus { .. } => "SetStatus",
            Request::ListUsers { .. } => "ListUsers",
            Request::Logout => "Logout",
            Request::AckDm { .. } => "AckDm",
            Request::CreateRoom { .. } => "CreateRoom",
            Request::InviteMember { .. } => "InviteMember",
            Request::RemoveMember { .. } => "RemoveMember",
            Request::SetRoomTitle { .. } => "SetRoomTitle",
            Request::AckRoom { .. } => "AckRoom",
            Request::FetchHistory { .. } => "FetchHistory",
            Request::JoinRoom { .. } => "JoinRoom",
            Request::LeaveRoom { .. } => "LeaveRoom",
            Request::ListRooms { .. } => "ListRooms",
            Request::RoomMessage { .. } => "RoomMessage",
            Request::UploadPrekeys { .. } => "UploadPrekeys",
            Request::FetchPrekeys { .. } => "FetchPrekeys",
            Request::UploadKeyPackages { .. } => "UploadKeyPackages",
            Request::FetchKeyPackage { .. } => "FetchKeyPackage",
            Request::InitGroup { .. } => "InitGroup",
            Request::GroupCommit { .. } => "GroupCommit",
            Request::GetGroupInfo { .. } => "GetGroupInfo",
            Request::OpenDirect { .. } => "OpenDirect",
        }
    }
}

/// One entry of a room list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomInfo {
    /// The room.
    pub room: RoomId,
    /// Its title.
    pub title: Arc<str>,
    /// Members now.
    pub members: u8,
    /// Most members allowed.
    pub capacity: u8,
}

/// What the hub sends to a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // Fields are named after the wire fields documented on `ServerMsg`.
pub enum Reply {
    /// Result of register-or-login; on failure the connection closes after sending it.
    Auth {
        mode: AuthMode,
        result: Result<u32, ErrorCode>,
    },
    /// A user's identity key.
    PublicKey {
        req: u32,
        name: Arc<str>,
        key: Option<[u8; 32]>,
    },
    /// What became of a direct message.
    MessageAck {
        req: u32,
        msg_id: u64,
        status: AckStatus,
    },
    /// A direct message.
    IncomingDm {
        msg_id: u64,
        from: Arc<str>,
        timestamp: u64,
        body: Arc<[u8]>,
    },
    /// Users and their status.
    UserList {
        req: u32,
        users: Arc<[(Arc<str>, Status)]>,
    },
    /// A user who shares a room changed status.
    StatusUpdate { name: Arc<str>, status: Status },
    /// A request failed.
    Error {
        req: u32,
        code: ErrorCode,
        text: &'static str,
    },
    /// The user is a member of the room: after a create or join (with its `req`), and at
    /// login for every room (with `req` 0).
    RoomJoined {
        req: u32,
        room: RoomId,
        title: Arc<str>,
        members: Vec<Arc<str>>,
        private: bool,
        direct: bool,
        admin: Arc<str>,
    },
    /// Messages of the room before `first_available` are no longer retained.
    RoomGap { room: RoomId, first_available: u64 },
    /// The user was invited to a private room.
    RoomInvited {
        room: RoomId,
        title: Arc<str>,
        by: Arc<str>,
    },
    /// The user was removed from a room by its admin.
    RoomRemoved { room: RoomId, by: Arc<str> },
    /// A room's title changed.
    RoomTitle { room: RoomId, title: Arc<str> },
    /// One retained message, answering `FetchHistory`.
    HistoryMessage {
        req: u32,
        room: RoomId,
        seq: u64,
        from: Arc<str>,
        timestamp: u64,
        body: Arc<[u8]>,
    },
    /// The end of a `FetchHistory` answer.
    HistoryDone {
        req: u32,
        room: RoomId,
        first_available: u64,
        count: u16,
    },
    /// The connection left the room.
    RoomLeft { req: u32, room: RoomId },
    /// Rooms.
    RoomList { req: u32, rooms: Vec<RoomInfo> },
    /// A room message with its per-room sequence number.
    RoomMessage {
        room: RoomId,
        seq: u64,
        from: Arc<str>,
        timestamp: u64,
        body: Arc<[u8]>,
    },
    /// Someone joined a room the connection is in.
    MemberJoined { room: RoomId, name: Arc<str> },
    /// Someone left a room the connection is in.
    MemberLeft { room: RoomId, name: Arc<str> },
    /// A user's prekey bundle.
    PrekeyBundle {
        req: u32,
        name: Arc<str>,
        bundle: Option<Arc<[u8]>>,
    },
    /// One of a user's KeyPackages.
    KeyPackage {
        req: u32,
        name: Arc<str>,
        package: Arc<[u8]>,
    },
    /// A room's latest GroupInfo.
    GroupInfo {
        req: u32,
        room: RoomId,
        epoch: u64,
        group_info: Arc<[u8]>,
    },
    /// The user's stock of KeyPackages is low.
    KeyPackagesLow { remaining: u16 },
    /// The request succeeded.
    Ok { req: u32 },
    /// Every unacknowledged direct message has been (re)sent.
    PendingDone { req: u32, count: u32 },
    /// Close the connection after sending what is queued before this.
    Close { code: ErrorCode },
}

/// Bytes allowed for everything of an encoded reply that is not a body, bundle or name:
/// the message type, request id, room id, sequence number, timestamp, length prefixes,
/// codes and flags (under 48 bytes), plus the most sealing adds (two records' framing and
/// tags and a key update: `Session::seal_max_overhead`, 44 bytes), with room to spare.
const REPLY_HEADER_ALLOWANCE: usize = 128;
/// Bytes allowed per entry of a list (a user's status or a room's id, size and capacity,
/// with their length prefixes), on top of the entry's name or title.
const REPLY_ENTRY_ALLOWANCE: usize = 16;

impl Reply {
    /// A cheap upper estimate of the bytes this reply takes once encoded and sealed:
    /// the lengths of its bodies, bundles, names and titles, plus a fixed allowance for
    /// the header and per list entry. It never encodes anything, so adapters can count
    /// the bytes of replies queued for a connection before they are sealed, and bound
    /// them with the same `send_queue_bytes` that bounds the sealed ones.
    pub fn encoded_len_hint(&self) -> usize {
        let names = |v: &[Arc<str>]| {
            v.iter()
                .map(|n| n.len() + REPLY_ENTRY_ALLOWANCE)
                .sum::<usize>()
        };
        let variable = match self {
            Reply::Auth { .. }
            | Reply::MessageAck { .. }
            | Reply::Error { .. }
            | Reply::RoomGap { .. }
            | Reply::HistoryDone { .. }
            | Reply::RoomLeft { .. }
            | Reply::Ok { .. }
            | Reply::PendingDone { .. }
            | Reply::KeyPackagesLow { .. }
            | Reply::Close { .. } => 0,
            Reply::KeyPackage { name, package, .. } => name.len() + package.len(),
            Reply::GroupInfo { group_info, .. } => group_info.len(),
            Reply::PublicKey { name, .. } => name.len() + 32,
            Reply::IncomingDm { from, body, .. } => from.len() + body.len(),
            Reply::UserList { users, .. } => users
                .iter()
                .map(|(n, _)| n.len() + REPLY_ENTRY_ALLOWANCE)
                .sum(),
            Reply::StatusUpdate { name, .. } => name.len(),
            Reply::RoomJoined {
                title,
                members,
                admin,
                ..
            } => title.len() + names(members) + admin.len(),
            Reply::RoomInvited { title, by, .. } => title.len() + by.len(),
            Reply::RoomRemoved { by, .. } => by.len(),
            Reply::RoomTitle { title, .. } => title.len(),
            Reply::HistoryMessage { from, body, .. } | Reply::RoomMessage { from, body, .. } => {
                from.len() + body.len()
            }
            Reply::RoomList { rooms, .. } => rooms
                .iter()
                .map(|r| r.title.len() + REPLY_ENTRY_ALLOWANCE)
                .sum(),
            Reply::MemberJoined { name, .. } | Reply::MemberLeft { name, .. } => name.len(),
            Reply::PrekeyBundle { name, bundle, .. } => {
                name.len() + bundle.as_ref().map_or(0, |b| b.len())
            }
        };
        REPLY_HEADER_ALLOWANCE + variable
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::{ListScratch, encode_reply};
    use crate::session::Session;

    #[test]
    fn the_hint_covers_the_encoded_and_sealed_size() {
        let name: Arc<str> = Arc::from("a-rather-long-user-name");
        let replies = [
            Reply::RoomMessage {
                room: RoomId::from_indices([7; 6]),
                seq: u64::MAX,
                from: name.clone(),
                timestamp: u64::MAX,
                body: Arc::from(alloc::vec![0u8; 60_000]),
            },
            Reply::IncomingDm {
                msg_id: u64::MAX,
                from: name.clone(),
                timestamp: u64::MAX,
                body: Arc::from(alloc::vec![0u8; 1000]),
            },
            Reply::RoomJoined {
                req: u32::MAX,
                room: RoomId::from_indices([1; 6]),
                title: name.clone(),
                members: alloc::vec![name.clone(); 20],
                private: true,
                direct: true,
                admin: name.clone(),
            },
            Reply::Ok { req: u32::MAX },
        ];
        let mut scratch = ListScratch::default();
        let mut out = Vec::new();
        for r in &replies {
            encode_reply(r, &mut scratch, &mut out).expect("encodes");
            let sealed = out.len() + Session::seal_max_overhead();
            assert!(
                r.encoded_len_hint() >= sealed,
                "{}: {sealed}",
                r.encoded_len_hint()
            );
        }
    }
}
