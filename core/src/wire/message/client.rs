//! [`ClientMsg`]: what a client sends, and its parse and emit.

use super::*;
use crate::wire::codec::{Reader, Sink, encode_with, len_with};
use crate::wire::error::WireError;
use crate::wire::types::{ErrorCode, RoomId, Status};

/// Messages a client sends to the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientMsg<'a> {
    /// 0x03 `[req][name]`: ask for a user's Ed25519 identity key.
    GetPublicKey {
        /// Request ID echoed in the reply.
        req: u32,
        /// Whose key.
        name: &'a str,
    },
    /// 0x04 `[req][to: name][body]`: a direct message queued by the server; `body` is opaque
    /// to it but not end-to-end encrypted by anything in cove (its clients send direct
    /// messages in direct rooms, [`ClientMsg::OpenDirect`]).
    SendDm {
        /// Request ID echoed in the [`ServerMsg::MessageAck`].
        req: u32,
        /// The recipient.
        to: &'a str,
        /// Opaque payload, at most [`MAX_BODY_LEN`](crate::wire::MAX_BODY_LEN) bytes.
        body: &'a [u8],
    },
    /// 0x05 `[req]`: deliver every queued direct message now.
    FetchPending {
        /// Request ID echoed in the [`ServerMsg::PendingDone`].
        req: u32,
    },
    /// 0x06 `[req][u8 status]`: set presence (online or away).
    SetStatus {
        /// Request ID echoed in the reply.
        req: u32,
        /// The new presence.
        status: Status,
    },
    /// 0x07 `[req]`: list users and their status.
    ListUsers {
        /// Request ID echoed in the [`ServerMsg::UserList`].
        req: u32,
    },
    /// 0x08 (empty): log out and close.
    Logout,
    /// 0x09 `[u64 msg_id]`: the client has the direct message; the server may delete it.
    AckDm {
        /// The `msg_id` of the [`ServerMsg::IncomingDm`].
        msg_id: u64,
    },
    /// 0x10 `[req][u8 flags][title]`: create a room and join it as its admin.
    CreateRoom {
        /// Request ID echoed in the [`ServerMsg::RoomJoined`].
        req: u32,
        /// Private: not listed, joined by invitation only (flags bit 0).
        private: bool,
        /// The room's title, at most 64 bytes.
        title: &'a str,
    },
    /// 0x11 `[req][room]`: join a room.
    JoinRoom {
        /// Request ID echoed in the reply.
        req: u32,
        /// Which room.
        room: RoomId,
    },
    /// 0x12 `[req][room]`: leave a room.
    LeaveRoom {
        /// Request ID echoed in the reply.
        req: u32,
        /// Which room.
        room: RoomId,
    },
    /// 0x13 `[req]`: list rooms.
    ListRooms {
        /// Request ID echoed in the [`ServerMsg::RoomList`].
        req: u32,
    },
    /// 0x14 `[req][room][body]`: a message to every member of a room.
    RoomMessage {
        /// Request ID echoed in the reply.
        req: u32,
        /// Which room.
        room: RoomId,
        /// In a room with an MLS group, one `MLSMessage` (a PrivateMessage of application
        /// data of that group); otherwise opaque. At most `MAX_BODY_LEN` bytes.
        body: &'a [u8],
    },
    /// 0x15 `[req][blob]`: store an opaque blob for this user that others may fetch (kept
    /// from protocol version 1; end-to-end encryption uses KeyPackages, 0x30).
    UploadPrekeys {
        /// Request ID echoed in the reply.
        req: u32,
        /// The bundle, at most 65535 bytes.
        bundle: &'a [u8],
    },
    /// 0x16 `[req][name]`: fetch a user's prekey bundle.
    FetchPrekeys {
        /// Request ID echoed in the [`ServerMsg::PrekeyBundle`].
        req: u32,
        /// Whose bundle.
        name: &'a str,
    },
    /// 0x17 `[req][room][name]`: invite a user to a room (admin only); answered with
    /// [`ServerMsg::Ok`], and the invitee gets [`ServerMsg::RoomInvited`].
    InviteMember {
        /// Request ID echoed in the reply.
        req: u32,
        /// Which room.
        room: RoomId,
        /// Whom to invite.
        name: &'a str,
    },
    /// 0x18 `[req][room][name]`: remove a member from a room (admin only); answered with
    /// [`ServerMsg::Ok`], and the member gets [`ServerMsg::RoomRemoved`].
    RemoveMember {
        /// Request ID echoed in the reply.
        req: u32,
        /// Which room.
        room: RoomId,
        /// Whom to remove.
        name: &'a str,
    },
    /// 0x19 `[req][room][title]`: change a room's title (admin only); answered with
    /// [`ServerMsg::Ok`], and every member gets [`ServerMsg::RoomTitle`].
    SetRoomTitle {
        /// Request ID echoed in the reply.
        req: u32,
        /// Which room.
        room: RoomId,
        /// The new title, at most 64 bytes.
        title: &'a str,
    },
    /// 0x1A `[room][u64 seq]`: the client has the room's messages up to `seq`; the server
    /// moves the user's cursor and may push more (flow control, like `AckDm`; no reply).
    AckRoom {
        /// Which room.
        room: RoomId,
        /// The `seq` of the last [`ServerMsg::RoomMessage`] the client holds.
        seq: u64,
    },
    /// 0x1B `[req][room][u64 before][u8 limit]`: retained messages with `seq < before`,
    /// oldest first; answered with [`ServerMsg::HistoryMessage`]s, then
    /// [`ServerMsg::HistoryDone`].
    FetchHistory {
        /// Request ID echoed in every reply.
        req: u32,
        /// Which room.
        room: RoomId,
        /// Only messages with a smaller `seq` (`u64::MAX` for the newest).
        before: u64,
        /// At most this many (the server may send fewer).
        limit: u8,
    },
    /// 0x30 `[req][u8 last_resort][blob]`: store KeyPackages for others to add this user
    /// to groups; the blob is a list of `[u16 len][MLSMessage(KeyPackage)]`. A last-resort
    /// package replaces any earlier one and is handed out only when the others are gone.
    UploadKeyPackages {
        /// Request ID echoed in the [`ServerMsg::Ok`].
        req: u32,
        /// The packages are last-resort ones (at most one is kept).
        last_resort: bool,
        /// The packages, each `[u16 len][bytes]`.
        packages: KeyPackageList<'a>,
    },
    /// 0x31 `[req][name]`: take one of a user's KeyPackages (each is handed out once).
    FetchKeyPackage {
        /// Request ID echoed in the [`ServerMsg::KeyPackage`].
        req: u32,
        /// Whose.
        name: &'a str,
    },
    /// 0x32 `[req][room][group_info]`: the room's admin publishes the room's new MLS group
    /// (its `GroupInfo`, once, before any commit).
    InitGroup {
        /// Request ID echoed in the [`ServerMsg::Ok`].
        req: u32,
        /// Which room.
        room: RoomId,
        /// `MLSMessage(GroupInfo)` of the group's first epoch.
        group_info: &'a [u8],
    },
    /// 0x33 `[req][room][commit][group_info][add: opt name][welcome]`: a Commit for the
    /// room's current epoch, the `GroupInfo` of the epoch it starts, and when it adds a
    /// member, who and their `Welcome` (empty name and blob when it adds nobody). From a
    /// non-member, an external commit that joins.
    GroupCommit {
        /// Request ID echoed in the reply.
        req: u32,
        /// Which room.
        room: RoomId,
        /// `MLSMessage` holding the Commit.
        commit: &'a [u8],
        /// `MLSMessage(GroupInfo)` after the Commit.
        group_info: &'a [u8],
        /// The member it adds, if any.
        add: Option<&'a str>,
        /// `MLSMessage(Welcome)` for `add` (empty when nobody is added).
        welcome: &'a [u8],
    },
    /// 0x34 `[req][room]`: the room's latest `GroupInfo`, to join by external commit.
    GetGroupInfo {
        /// Request ID echoed in the [`ServerMsg::GroupInfo`].
        req: u32,
        /// Which room.
        room: RoomId,
    },
    /// 0x35 `[req][peer: name][group_info][welcome]`: open the direct conversation with
    /// `peer`: a two-member group made from one of the peer's KeyPackages.
    OpenDirect {
        /// Request ID echoed in the [`ServerMsg::RoomJoined`].
        req: u32,
        /// The other member.
        peer: &'a str,
        /// `MLSMessage(GroupInfo)` of the group with both members.
        group_info: &'a [u8],
        /// `MLSMessage(Welcome)` for the peer.
        welcome: &'a [u8],
    },
    /// 0x20 `[u64 nonce]`: keepalive; answered with `Pong`.
    Ping {
        /// Echoed in the `Pong`.
        nonce: u64,
    },
    /// 0x21 `[u64 nonce]`: answer to the server's `Ping`.
    Pong {
        /// The `Ping`'s nonce.
        nonce: u64,
    },
    /// 0x22 `[u8 request_update]`: the sender's next records use the next key.
    KeyUpdate {
        /// The peer is asked to update its own sending key too.
        request_update: bool,
    },
    /// 0x23 `[u8 code][text]`: the sender closes the connection.
    Close {
        /// Why.
        code: ErrorCode,
        /// Human-readable detail, at most 256 bytes.
        text: &'a str,
    },
}

impl<'a> ClientMsg<'a> {
    /// The message's type byte.
    pub fn msg_type(&self) -> u8 {
        use ClientMsg::*;
        match self {
            GetPublicKey { .. } => MSG_GET_PUBLIC_KEY,
            SendDm { .. } => MSG_SEND_DM,
            FetchPending { .. } => MSG_FETCH_PENDING,
            SetStatus { .. } => MSG_SET_STATUS,
            ListUsers { .. } => MSG_LIST_USERS,
            Logout => MSG_LOGOUT,
            AckDm { .. } => MSG_ACK_DM,
            CreateRoom { .. } => MSG_CREATE_ROOM,
            JoinRoom { .. } => MSG_JOIN_ROOM,
            LeaveRoom { .. } => MSG_LEAVE_ROOM,
            ListRooms { .. } => MSG_LIST_ROOMS,
            RoomMessage { .. } => MSG_ROOM_MESSAGE,
            UploadPrekeys { .. } => MSG_UPLOAD_PREKEYS,
            FetchPrekeys { .. } => MSG_FETCH_PREKEYS,
            InviteMember { .. } => MSG_INVITE_MEMBER,
            RemoveMember { .. } => MSG_REMOVE_MEMBER,
            SetRoomTitle { .. } => MSG_SET_ROOM_TITLE,
            AckRoom { .. } => MSG_ACK_ROOM,
            FetchHistory { .. } => MSG_FETCH_HISTORY,
            UploadKeyPackages { .. } => MSG_UPLOAD_KEY_PACKAGES,
            FetchKeyPackage { .. } => MSG_FETCH_KEY_PACKAGE,
            InitGroup { .. } => MSG_INIT_GROUP,
            GroupCommit { .. } => MSG_GROUP_COMMIT,
            GetGroupInfo { .. } => MSG_GET_GROUP_INFO,
            OpenDirect { .. } => MSG_OPEN_DIRECT,
            Ping { .. } => MSG_PING,
            Pong { .. } => MSG_PONG,
            KeyUpdate { .. } => MSG_KEY_UPDATE,
            Close { .. } => MSG_CLOSE,
        }
    }

    /// Parses one message that fills all of `buf` (the plaintext of one record).
    pub fn decode(buf: &'a [u8]) -> Result<Self, WireError> {
        use ClientMsg::*;
        let mut r = Reader::new(buf);
        let typ = r.u8()?;
        // Struct expressions evaluate their fields in source order, which is wire order.
        let msg = match typ {
            MSG_GET_PUBLIC_KEY => GetPublicKey {
                req: r.u32()?,
                name: r.name()?,
            },
            MSG_SEND_DM => SendDm {
                req: r.u32()?,
                to: r.name()?,
                body: r.blob()?,
            },
            MSG_FETCH_PENDING => FetchPending { req: r.u32()? },
            MSG_SET_STATUS => SetStatus {
                req: r.u32()?,
                status: r.status()?,
            },
            MSG_LIST_USERS => ListUsers { req: r.u32()? },
            MSG_LOGOUT => Logout,
            MSG_ACK_DM => AckDm { msg_id: r.u64()? },
            MSG_CREATE_ROOM => CreateRoom {
                req: r.u32()?,
                private: r.room_flags()?,
                title: r.title()?,
            },
            MSG_JOIN_ROOM => JoinRoom {
                req: r.u32()?,
                room: r.room()?,
            },
            MSG_LEAVE_ROOM => LeaveRoom {
                req: r.u32()?,
                room: r.room()?,
            },
            MSG_LIST_ROOMS => ListRooms { req: r.u32()? },
            MSG_ROOM_MESSAGE => RoomMessage {
                req: r.u32()?,
                room: r.room()?,
                body: r.blob()?,
            },
            MSG_UPLOAD_PREKEYS => UploadPrekeys {
                req: r.u32()?,
                bundle: r.blob()?,
            },
            MSG_FETCH_PREKEYS => FetchPrekeys {
                req: r.u32()?,
                name: r.name()?,
            },
            MSG_INVITE_MEMBER => InviteMember {
                req: r.u32()?,
                room: r.room()?,
                name: r.name()?,
            },
            MSG_REMOVE_MEMBER => RemoveMember {
                req: r.u32()?,
                room: r.room()?,
                name: r.name()?,
            },
            MSG_SET_ROOM_TITLE => SetRoomTitle {
                req: r.u32()?,
                room: r.room()?,
                title: r.title()?,
            },
            MSG_ACK_ROOM => AckRoom {
                room: r.room()?,
                seq: r.u64()?,
            },
            MSG_FETCH_HISTORY => FetchHistory {
                req: r.u32()?,
                room: r.room()?,
                before: r.u64()?,
                limit: r.u8()?,
            },
            MSG_UPLOAD_KEY_PACKAGES => UploadKeyPackages {
                req: r.u32()?,
                last_resort: r.flag()?,
                packages: KeyPackageList::parse(r.blob()?)?,
            },
            MSG_FETCH_KEY_PACKAGE => FetchKeyPackage {
                req: r.u32()?,
                name: r.name()?,
            },
            MSG_INIT_GROUP => InitGroup {
                req: r.u32()?,
                room: r.room()?,
                group_info: r.blob()?,
            },
            MSG_GROUP_COMMIT => GroupCommit {
                req: r.u32()?,
                room: r.room()?,
                commit: r.blob()?,
                group_info: r.blob()?,
                add: r.opt_name()?,
                welcome: r.blob()?,
            },
            MSG_GET_GROUP_INFO => GetGroupInfo {
                req: r.u32()?,
                room: r.room()?,
            },
            MSG_OPEN_DIRECT => OpenDirect {
                req: r.u32()?,
                peer: r.name()?,
                group_info: r.blob()?,
                welcome: r.blob()?,
            },
            MSG_PING => Ping { nonce: r.u64()? },
            MSG_PONG => Pong { nonce: r.u64()? },
            MSG_KEY_UPDATE => KeyUpdate {
                request_update: r.flag()?,
            },
            MSG_CLOSE => Close {
                code: r.code()?,
                text: r.text()?,
            },
            other => return Err(WireError::UnknownType(other)),
        };
        r.finish()?;
        Ok(msg)
    }

    /// Bytes [`encode`](Self::encode) writes (for a message that passes its checks).
    pub fn encoded_len(&self) -> usize {
        len_with(|s| self.emit(s))
    }

    /// Checks and writes the message at the start of `out`, returning its length.
    ///
    /// A too-small `out` gives [`WireError::BufferTooSmall`] with the size needed; on any
    /// error nothing is written.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, WireError> {
        encode_with(out, |s| self.emit(s))
    }

    fn emit(&self, s: &mut dyn Sink) -> Result<(), WireError> {
        use ClientMsg::*;
        s.u8(self.msg_type())?;
        match *self {
            GetPublicKey { req, name }
            | FetchPrekeys { req, name }
            | FetchKeyPackage { req, name } => {
                s.u32(req)?;
                s.name(name)
            }
            SendDm { req, to, body } => {
                s.u32(req)?;
                s.name(to)?;
                s.blob(body)
            }
            FetchPending { req } | ListUsers { req } | ListRooms { req } => s.u32(req),
            SetStatus { req, status } => {
                s.u32(req)?;
                s.u8(status as u8)
            }
            Logout => Ok(()),
            AckDm { msg_id } => s.u64(msg_id),
            CreateRoom {
                req,
                private,
                title,
            } => {
                s.u32(req)?;
                s.room_flags(private)?;
                s.title(title)
            }
            JoinRoom { req, room } | LeaveRoom { req, room } => {
                s.u32(req)?;
                s.room(&room)
            }
            RoomMessage { req, room, body } => {
                s.u32(req)?;
                s.room(&room)?;
                s.blob(body)
            }
            UploadPrekeys { req, bundle } => {
                s.u32(req)?;
                s.blob(bundle)
            }
            InviteMember { req, room, name } | RemoveMember { req, room, name } => {
                s.u32(req)?;
                s.room(&room)?;
                s.name(name)
            }
            SetRoomTitle { req, room, title } => {
                s.u32(req)?;
                s.room(&room)?;
                s.title(title)
            }
            AckRoom { room, seq } => {
                s.room(&room)?;
                s.u64(seq)
            }
            FetchHistory {
                req,
                room,
                before,
                limit,
            } => {
                s.u32(req)?;
                s.room(&room)?;
                s.u64(before)?;
                s.u8(limit)
            }
            UploadKeyPackages {
                req,
                last_resort,
                packages,
            } => {
                s.u32(req)?;
                s.flag(last_resort)?;
                s.blob(packages.raw())
            }
            InitGroup {
                req,
                room,
                group_info,
            } => {
                s.u32(req)?;
                s.room(&room)?;
                s.blob(group_info)
            }
            GroupCommit {
                req,
                room,
                commit,
                group_info,
                add,
                welcome,
            } => {
                s.u32(req)?;
                s.room(&room)?;
                s.blob(commit)?;
                s.blob(group_info)?;
                s.opt_name(add)?;
                s.blob(welcome)
            }
            GetGroupInfo { req, room } => {
                s.u32(req)?;
                s.room(&room)
            }
            OpenDirect {
                req,
                peer,
                group_info,
                welcome,
            } => {
                s.u32(req)?;
                s.name(peer)?;
                s.blob(group_info)?;
                s.blob(welcome)
            }
            Ping { nonce } | Pong { nonce } => s.u64(nonce),
            KeyUpdate { request_update } => s.flag(request_update),
            Close { code, text } => {
                s.u8(code as u8)?;
                s.text(text)
            }
        }
    }
}
