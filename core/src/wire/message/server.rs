//! [`ServerMsg`]: what the server sends (its parse and emit are in `server_codec`).

use super::lists::{NameEntries, RoomEntries, UserEntries};
use super::*;
use crate::wire::types::{AckStatus, AuthMode, ErrorCode, RoomId, Status};

/// Messages the server sends to a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerMsg<'a> {
    /// 0x81 (register) / 0x82 (login) `[u8 ok][u8 code][u32 pending]`: result of the
    /// handshake's register-or-login; `pending` counts queued direct messages; `code` is 0 on
    /// success; on failure `pending` is 0.
    AuthResponse {
        /// Which request this answers; selects the type byte.
        mode: AuthMode,
        /// `Ok(pending)` or the reason for refusal.
        result: Result<u32, ErrorCode>,
    },
    /// 0x83 `[req][name][u8 found][32 key if found]`.
    PublicKey {
        /// The request's ID.
        req: u32,
        /// Whose key.
        name: &'a str,
        /// The Ed25519 identity key, or `None` when there is no such user.
        key: Option<[u8; 32]>,
    },
    /// 0x84 `[req][u64 msg_id][u8 status]`: what became of a direct message.
    MessageAck {
        /// The `SendDm`'s request ID.
        req: u32,
        /// The ID the server gave the message.
        msg_id: u64,
        /// Delivered, queued or failed.
        status: AckStatus,
    },
    /// 0x85 `[u64 msg_id][from: name][u64 timestamp][body]`: a direct message.
    IncomingDm {
        /// Server-assigned ID, to be acknowledged with [`ClientMsg::AckDm`].
        msg_id: u64,
        /// The sender.
        from: &'a str,
        /// When the server accepted it: microseconds on the server's clock (the `now` it was given).
        timestamp: u64,
        /// The body as sent (for a room with an MLS group, an `MLSMessage`).
        body: &'a [u8],
    },
    /// 0x86 `[req][u16 count][count × (name, u8 status)]`.
    UserList {
        /// The request's ID.
        req: u32,
        /// The users.
        users: UserEntries<'a>,
    },
    /// 0x87 `[name][u8 status]`: a user who shares a room with you changed status.
    StatusUpdate {
        /// Who.
        name: &'a str,
        /// Their new presence.
        status: Status,
    },
    /// 0x88 `[req][u8 code][text]`: a request failed (`req` 0 when not tied to one).
    Error {
        /// The failed request's ID, or 0.
        req: u32,
        /// Why.
        code: ErrorCode,
        /// Human-readable detail, at most 256 bytes.
        text: &'a str,
    },
    /// 0x89 `[req][room][u8 flags][title][admin: name][u8 count][count × name]`: you are a
    /// member of the room; its members. Also sent with `req` 0 at login for every room
    /// you are a member of, before that room's catch-up.
    RoomJoined {
        /// The `CreateRoom` or `JoinRoom` request's ID; 0 at login.
        req: u32,
        /// The room.
        room: RoomId,
        /// Private: not listed, joined by invitation only (flags bit 0).
        private: bool,
        /// A direct conversation of two, made by `OpenDirect` (flags bit 1).
        direct: bool,
        /// Its title.
        title: &'a str,
        /// The member who may invite, remove and retitle.
        admin: &'a str,
        /// Its members, you included.
        members: NameEntries<'a>,
    },
    /// 0x8A `[req][room]`: you left the room.
    RoomLeft {
        /// The `LeaveRoom` request's ID (0 when the server removed you).
        req: u32,
        /// The room.
        room: RoomId,
    },
    /// 0x8B `[req][u16 count][count × (room, title, u8 members, u8 capacity)]`.
    RoomList {
        /// The request's ID.
        req: u32,
        /// The rooms.
        rooms: RoomEntries<'a>,
    },
    /// 0x8C `[room][u64 seq][from: name][u64 timestamp][body]`: a room message with the
    /// server's per-room sequence number.
    RoomMessage {
        /// The room.
        room: RoomId,
        /// Strictly increasing per room: every member sees the same order.
        seq: u64,
        /// The sender.
        from: &'a str,
        /// When the server accepted it: microseconds on the server's clock (the `now` it was given).
        timestamp: u64,
        /// The body as sent (for a room with an MLS group, an `MLSMessage`).
        body: &'a [u8],
    },
    /// 0x8D `[room][name]`: someone joined a room you are in.
    MemberJoined {
        /// The room.
        room: RoomId,
        /// Who joined.
        name: &'a str,
    },
    /// 0x8E `[room][name]`: someone left a room you are in.
    MemberLeft {
        /// The room.
        room: RoomId,
        /// Who left.
        name: &'a str,
    },
    /// 0x8F `[req][name][u8 found][blob if found]`.
    PrekeyBundle {
        /// The request's ID.
        req: u32,
        /// Whose bundle.
        name: &'a str,
        /// The bundle, or `None` when the user has none.
        bundle: Option<&'a [u8]>,
    },
    /// 0x90 `[req]`: the request succeeded and has nothing else to say.
    Ok {
        /// The request's ID.
        req: u32,
    },
    /// 0x91 `[req][u32 count]`: every queued direct message has been sent.
    PendingDone {
        /// The `FetchPending` request's ID.
        req: u32,
        /// How many were sent.
        count: u32,
    },
    /// 0x92 `[room][u64 first_available]`: the room's messages before `first_available`
    /// are no longer retained; sent before the catch-up replays from `first_available`.
    RoomGap {
        /// The room.
        room: RoomId,
        /// The oldest `seq` the server still has.
        first_available: u64,
    },
    /// 0x93 `[room][title][by: name]`: you were invited to a private room; join it with
    /// [`ClientMsg::JoinRoom`].
    RoomInvited {
        /// The room.
        room: RoomId,
        /// Its title.
        title: &'a str,
        /// The admin who invited you.
        by: &'a str,
    },
    /// 0x94 `[room][by: name]`: the room's admin removed you from the room.
    RoomRemoved {
        /// The room.
        room: RoomId,
        /// The admin who removed you.
        by: &'a str,
    },
    /// 0x95 `[room][title]`: a room you are a member of has a new title.
    RoomTitle {
        /// The room.
        room: RoomId,
        /// The new title.
        title: &'a str,
    },
    /// 0x96 `[req][room][u64 seq][from: name][u64 timestamp][body]`: one retained room
    /// message, answering [`ClientMsg::FetchHistory`].
    HistoryMessage {
        /// The `FetchHistory` request's ID.
        req: u32,
        /// The room.
        room: RoomId,
        /// The message's sequence number in the room.
        seq: u64,
        /// The sender.
        from: &'a str,
        /// When the server accepted it: microseconds on the server's clock.
        timestamp: u64,
        /// The body as sent (for a room with an MLS group, an `MLSMessage`).
        body: &'a [u8],
    },
    /// 0x97 `[req][room][u64 first_available][u16 count]`: the end of a `FetchHistory`
    /// answer.
    HistoryDone {
        /// The `FetchHistory` request's ID.
        req: u32,
        /// The room.
        room: RoomId,
        /// The oldest `seq` the server still has (nothing older can be fetched).
        first_available: u64,
        /// How many [`ServerMsg::HistoryMessage`]s were sent.
        count: u16,
    },
    /// 0x98 `[req][name][blob]`: one of the user's KeyPackages (`MLSMessage`), handed out
    /// to this requester only (or the user's last-resort package, which stays).
    KeyPackage {
        /// The `FetchKeyPackage` request's ID.
        req: u32,
        /// Whose.
        name: &'a str,
        /// The package.
        package: &'a [u8],
    },
    /// 0x99 `[req][room][u64 epoch][blob]`: the room's latest `GroupInfo` (`MLSMessage`).
    GroupInfo {
        /// The `GetGroupInfo` request's ID.
        req: u32,
        /// The room.
        room: RoomId,
        /// The epoch it describes: an external commit must name this epoch.
        epoch: u64,
        /// The `GroupInfo`.
        group_info: &'a [u8],
    },
    /// 0x9A `[u16 remaining]`: your stock of KeyPackages is low; upload more.
    KeyPackagesLow {
        /// How many one-time packages the server still holds for you.
        remaining: u16,
    },
    /// 0x20 `[u64 nonce]`.
    Ping {
        /// Echoed in the `Pong`.
        nonce: u64,
    },
    /// 0x21 `[u64 nonce]`.
    Pong {
        /// The `Ping`'s nonce.
        nonce: u64,
    },
    /// 0x22 `[u8 request_update]`.
    KeyUpdate {
        /// The peer is asked to update its own sending key too.
        request_update: bool,
    },
    /// 0x23 `[u8 code][text]`.
    Close {
        /// Why.
        code: ErrorCode,
        /// Human-readable detail, at most 256 bytes.
        text: &'a str,
    },
}

impl<'a> ServerMsg<'a> {
    /// The message's type byte.
    pub fn msg_type(&self) -> u8 {
        use ServerMsg::*;
        match self {
            AuthResponse {
                mode: AuthMode::Register,
                ..
            } => MSG_REGISTER_RESPONSE,
            AuthResponse {
                mode: AuthMode::Login,
                ..
            } => MSG_LOGIN_RESPONSE,
            PublicKey { .. } => MSG_PUBLIC_KEY,
            MessageAck { .. } => MSG_MESSAGE_ACK,
            IncomingDm { .. } => MSG_INCOMING_DM,
            UserList { .. } => MSG_USER_LIST,
            StatusUpdate { .. } => MSG_STATUS_UPDATE,
            Error { .. } => MSG_ERROR,
            RoomJoined { .. } => MSG_ROOM_JOINED,
            RoomLeft { .. } => MSG_ROOM_LEFT,
            RoomList { .. } => MSG_ROOM_LIST,
            RoomMessage { .. } => MSG_INCOMING_ROOM_MESSAGE,
            MemberJoined { .. } => MSG_MEMBER_JOINED,
            MemberLeft { .. } => MSG_MEMBER_LEFT,
            PrekeyBundle { .. } => MSG_PREKEY_BUNDLE,
            Ok { .. } => MSG_OK,
            PendingDone { .. } => MSG_PENDING_DONE,
            RoomGap { .. } => MSG_ROOM_GAP,
            RoomInvited { .. } => MSG_ROOM_INVITED,
            RoomRemoved { .. } => MSG_ROOM_REMOVED,
            RoomTitle { .. } => MSG_ROOM_TITLE,
            HistoryMessage { .. } => MSG_HISTORY_MESSAGE,
            HistoryDone { .. } => MSG_HISTORY_DONE,
            KeyPackage { .. } => MSG_KEY_PACKAGE,
            GroupInfo { .. } => MSG_GROUP_INFO,
            KeyPackagesLow { .. } => MSG_KEY_PACKAGES_LOW,
            Ping { .. } => MSG_PING,
            Pong { .. } => MSG_PONG,
            KeyUpdate { .. } => MSG_KEY_UPDATE,
            Close { .. } => MSG_CLOSE,
        }
    }
}
