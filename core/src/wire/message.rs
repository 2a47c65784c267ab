//! Application messages carried inside encrypted records: `[u8 type][fields]`.
//!
//! Field encodings: integers big-endian; `name` and `title` are `[u8 len][bytes]`
//! (UTF-8, checked with [`valid_name`](super::valid_name) / [`valid_text`](super::valid_text));
//! `text`, `body` and `blob` are `[u16 len][bytes]`; `room` is 6 bytes from the room alphabet
//! (upper case only on the wire); `req` is a `u32` request ID chosen by the client and echoed
//! in the reply (0 = none); flags (`found`, `ok`, `request_update`) are exactly 0 or 1.
//!
//! Decoding checks every field and requires the message to fill the whole slice. Encoding
//! checks the same rules, so [`ClientMsg::encode`] / [`ServerMsg::encode`] never emit bytes
//! the other side would refuse, and writes nothing when it fails.

use super::codec::{Reader, Sink, encode_with, len_with};
use super::error::WireError;
use super::types::{AckStatus, AuthMode, ErrorCode, RoomId, Status};

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
    /// 0x04 `[req][to: name][body]`: a direct message; `body` is opaque (end-to-end encrypted).
    SendDm {
        /// Request ID echoed in the [`ServerMsg::MessageAck`].
        req: u32,
        /// The recipient.
        to: &'a str,
        /// End-to-end encrypted payload, at most 65535 bytes.
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
    /// 0x10 `[req][title]`: create a room and join it.
    CreateRoom {
        /// Request ID echoed in the [`ServerMsg::RoomJoined`].
        req: u32,
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
        /// End-to-end encrypted payload, at most 65535 bytes.
        body: &'a [u8],
    },
    /// 0x15 `[req][blob]`: store this user's signed prekey bundle (opaque to the server).
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
        /// End-to-end encrypted payload.
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
    /// 0x89 `[req][room][title][u8 count][count × name]`: you are in the room; its members.
    RoomJoined {
        /// The `CreateRoom` or `JoinRoom` request's ID.
        req: u32,
        /// The room.
        room: RoomId,
        /// Its title.
        title: &'a str,
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
        /// End-to-end encrypted payload.
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
            GetPublicKey { req, name } | FetchPrekeys { req, name } => {
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
            CreateRoom { req, title } => {
                s.u32(req)?;
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
            Ping { nonce } | Pong { nonce } => s.u64(nonce),
            KeyUpdate { request_update } => s.flag(request_update),
            Close { code, text } => {
                s.u8(code as u8)?;
                s.text(text)
            }
        }
    }
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
            Ping { .. } => MSG_PING,
            Pong { .. } => MSG_PONG,
            KeyUpdate { .. } => MSG_KEY_UPDATE,
            Close { .. } => MSG_CLOSE,
        }
    }

    /// Parses one message that fills all of `buf` (the plaintext of one record).
    pub fn decode(buf: &'a [u8]) -> Result<Self, WireError> {
        use ServerMsg::*;
        let mut r = Reader::new(buf);
        let typ = r.u8()?;
        // Struct expressions evaluate their fields in source order, which is wire order.
        let msg = match typ {
            MSG_REGISTER_RESPONSE | MSG_LOGIN_RESPONSE => {
                let mode = if typ == MSG_REGISTER_RESPONSE {
                    AuthMode::Register
                } else {
                    AuthMode::Login
                };
                let ok = r.flag()?;
                let code = r.u8()?;
                let pending = r.u32()?;
                let result = match (ok, code, pending) {
                    (true, 0, pending) => Result::Ok(pending),
                    (false, code, 0) => {
                        Result::Err(ErrorCode::from_u8(code).ok_or(WireError::BadValue)?)
                    }
                    _ => return Err(WireError::BadValue),
                };
                AuthResponse { mode, result }
            }
            MSG_PUBLIC_KEY => PublicKey {
                req: r.u32()?,
                name: r.name()?,
                key: if r.flag()? { Some(r.key()?) } else { None },
            },
            MSG_MESSAGE_ACK => MessageAck {
                req: r.u32()?,
                msg_id: r.u64()?,
                status: r.ack()?,
            },
            MSG_INCOMING_DM => IncomingDm {
                msg_id: r.u64()?,
                from: r.name()?,
                timestamp: r.u64()?,
                body: r.blob()?,
            },
            MSG_USER_LIST => UserList {
                req: r.u32()?,
                users: {
                    let count = r.u16()?;
                    UserEntries {
                        count,
                        raw: scan(&mut r, count.into(), user_entry)?,
                    }
                },
            },
            MSG_STATUS_UPDATE => StatusUpdate {
                name: r.name()?,
                status: r.status()?,
            },
            MSG_ERROR => Error {
                req: r.u32()?,
                code: r.code()?,
                text: r.text()?,
            },
            MSG_ROOM_JOINED => RoomJoined {
                req: r.u32()?,
                room: r.room()?,
                title: r.title()?,
                members: {
                    let count = r.u8()?;
                    NameEntries {
                        count,
                        raw: scan(&mut r, count.into(), name_entry)?,
                    }
                },
            },
            MSG_ROOM_LEFT => RoomLeft {
                req: r.u32()?,
                room: r.room()?,
            },
            MSG_ROOM_LIST => RoomList {
                req: r.u32()?,
                rooms: {
                    let count = r.u16()?;
                    RoomEntries {
                        count,
                        raw: scan(&mut r, count.into(), room_entry)?,
                    }
                },
            },
            MSG_INCOMING_ROOM_MESSAGE => RoomMessage {
                room: r.room()?,
                seq: r.u64()?,
                from: r.name()?,
                timestamp: r.u64()?,
                body: r.blob()?,
            },
            MSG_MEMBER_JOINED => MemberJoined {
                room: r.room()?,
                name: r.name()?,
            },
            MSG_MEMBER_LEFT => MemberLeft {
                room: r.room()?,
                name: r.name()?,
            },
            MSG_PREKEY_BUNDLE => PrekeyBundle {
                req: r.u32()?,
                name: r.name()?,
                bundle: if r.flag()? { Some(r.blob()?) } else { None },
            },
            MSG_OK => Ok { req: r.u32()? },
            MSG_PENDING_DONE => PendingDone {
                req: r.u32()?,
                count: r.u32()?,
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
        Result::Ok(msg)
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
        use ServerMsg::*;
        s.u8(self.msg_type())?;
        match *self {
            AuthResponse { result, .. } => match result {
                Result::Ok(pending) => {
                    s.u8(1)?;
                    s.u8(0)?;
                    s.u32(pending)
                }
                Result::Err(code) => {
                    s.u8(0)?;
                    s.u8(code as u8)?;
                    s.u32(0)
                }
            },
            PublicKey { req, name, key } => {
                s.u32(req)?;
                s.name(name)?;
                s.flag(key.is_some())?;
                match key {
                    Some(key) => s.put(&key),
                    None => Result::Ok(()),
                }
            }
            MessageAck {
                req,
                msg_id,
                status,
            } => {
                s.u32(req)?;
                s.u64(msg_id)?;
                s.u8(status as u8)
            }
            IncomingDm {
                msg_id,
                from,
                timestamp,
                body,
            } => {
                s.u64(msg_id)?;
                s.name(from)?;
                s.u64(timestamp)?;
                s.blob(body)
            }
            UserList { req, users } => {
                s.u32(req)?;
                if s.strict() {
                    UserEntries::new(users.count, users.raw)?;
                }
                s.u16(users.count)?;
                s.put(users.raw)
            }
            StatusUpdate { name, status } => {
                s.name(name)?;
                s.u8(status as u8)
            }
            Error { req, code, text } => {
                s.u32(req)?;
                s.u8(code as u8)?;
                s.text(text)
            }
            RoomJoined {
                req,
                room,
                title,
                members,
            } => {
                s.u32(req)?;
                s.room(&room)?;
                s.title(title)?;
                if s.strict() {
                    NameEntries::new(members.count, members.raw)?;
                }
                s.u8(members.count)?;
                s.put(members.raw)
            }
            RoomLeft { req, room } => {
                s.u32(req)?;
                s.room(&room)
            }
            RoomList { req, rooms } => {
                s.u32(req)?;
                if s.strict() {
                    RoomEntries::new(rooms.count, rooms.raw)?;
                }
                s.u16(rooms.count)?;
                s.put(rooms.raw)
            }
            RoomMessage {
                room,
                seq,
                from,
                timestamp,
                body,
            } => {
                s.room(&room)?;
                s.u64(seq)?;
                s.name(from)?;
                s.u64(timestamp)?;
                s.blob(body)
            }
            MemberJoined { room, name } | MemberLeft { room, name } => {
                s.room(&room)?;
                s.name(name)
            }
            PrekeyBundle { req, name, bundle } => {
                s.u32(req)?;
                s.name(name)?;
                s.flag(bundle.is_some())?;
                match bundle {
                    Some(bundle) => s.blob(bundle),
                    None => Result::Ok(()),
                }
            }
            Ok { req } => s.u32(req),
            PendingDone { req, count } => {
                s.u32(req)?;
                s.u32(count)
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

// ---------------------------------------------------------------------------------------
// Lists
// ---------------------------------------------------------------------------------------

/// Reads `count` entries with `entry` and returns the bytes they span.
fn scan<'a, T>(
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

fn user_entry<'a>(r: &mut Reader<'a>) -> Result<(&'a str, Status), WireError> {
    Result::Ok((r.name()?, r.status()?))
}

fn name_entry<'a>(r: &mut Reader<'a>) -> Result<&'a str, WireError> {
    r.name()
}

fn room_entry<'a>(r: &mut Reader<'a>) -> Result<RoomEntry<'a>, WireError> {
    Result::Ok(RoomEntry {
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
            Result::Ok(item) => {
                self.left -= 1;
                Some(item)
            }
            Result::Err(_) => {
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
/// is only trusted after [`UserEntries::new`]; [`ServerMsg::encode`] checks it again.
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
        Result::Ok(UserEntries { count, raw })
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
        Result::Ok(NameEntries { count, raw })
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
        Result::Ok(RoomEntries { count, raw })
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

fn emit_room_entry(s: &mut dyn Sink, e: &RoomEntry<'_>) -> Result<(), WireError> {
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

#[cfg(feature = "alloc")]
pub use builders::*;

#[cfg(feature = "alloc")]
mod builders {
    use alloc::vec::Vec;

    use super::super::codec::{Counter, Sink};
    use super::{NameEntries, RoomEntries, RoomEntry, UserEntries, emit_room_entry};
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

    fn append(
        raw: &mut Vec<u8>,
        emit: impl Fn(&mut dyn Sink) -> Result<(), WireError>,
    ) -> Result<(), WireError> {
        emit(&mut Counter {
            len: 0,
            strict: true,
        })?;
        emit(&mut VecSink(raw))
    }

    /// Accumulates the entries of a [`UserEntries`] list.
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    pub struct UserListBuilder {
        count: u16,
        raw: Vec<u8>,
    }

    impl UserListBuilder {
        /// An empty list.
        pub fn new() -> Self {
            Self::default()
        }

        /// Checks and appends an entry; refuses a 65536th with [`WireError::TooLong`].
        pub fn push(&mut self, name: &str, status: Status) -> Result<(), WireError> {
            let count = self.count.checked_add(1).ok_or(WireError::TooLong)?;
            append(&mut self.raw, |s| {
                s.name(name)?;
                s.u8(status as u8)
            })?;
            self.count = count;
            Ok(())
        }

        /// Number of entries.
        pub fn len(&self) -> usize {
            self.count.into()
        }

        /// Whether there are no entries.
        pub fn is_empty(&self) -> bool {
            self.count == 0
        }

        /// Bytes of the entries (the message adds 7 for type, `req` and count).
        pub fn raw_len(&self) -> usize {
            self.raw.len()
        }

        /// Empties the list, keeping its memory.
        pub fn clear(&mut self) {
            self.count = 0;
            self.raw.clear();
        }

        /// The list, ready for [`ServerMsg::UserList`](super::ServerMsg::UserList).
        pub fn entries(&self) -> UserEntries<'_> {
            UserEntries {
                count: self.count,
                raw: &self.raw,
            }
        }
    }

    /// Accumulates the entries of a [`NameEntries`] list.
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    pub struct NameListBuilder {
        count: u8,
        raw: Vec<u8>,
    }

    impl NameListBuilder {
        /// An empty list.
        pub fn new() -> Self {
            Self::default()
        }

        /// Checks and appends an entry; refuses a 256th with [`WireError::TooLong`].
        pub fn push(&mut self, name: &str) -> Result<(), WireError> {
            let count = self.count.checked_add(1).ok_or(WireError::TooLong)?;
            append(&mut self.raw, |s| s.name(name))?;
            self.count = count;
            Ok(())
        }

        /// Number of entries.
        pub fn len(&self) -> usize {
            self.count.into()
        }

        /// Whether there are no entries.
        pub fn is_empty(&self) -> bool {
            self.count == 0
        }

        /// Bytes of the entries.
        pub fn raw_len(&self) -> usize {
            self.raw.len()
        }

        /// Empties the list, keeping its memory.
        pub fn clear(&mut self) {
            self.count = 0;
            self.raw.clear();
        }

        /// The list, ready for [`ServerMsg::RoomJoined`](super::ServerMsg::RoomJoined).
        pub fn entries(&self) -> NameEntries<'_> {
            NameEntries {
                count: self.count,
                raw: &self.raw,
            }
        }
    }

    /// Accumulates the entries of a [`RoomEntries`] list.
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    pub struct RoomListBuilder {
        count: u16,
        raw: Vec<u8>,
    }

    impl RoomListBuilder {
        /// An empty list.
        pub fn new() -> Self {
            Self::default()
        }

        /// Checks and appends an entry; refuses a 65536th with [`WireError::TooLong`].
        pub fn push(&mut self, entry: &RoomEntry<'_>) -> Result<(), WireError> {
            let count = self.count.checked_add(1).ok_or(WireError::TooLong)?;
            append(&mut self.raw, |s| emit_room_entry(s, entry))?;
            self.count = count;
            Ok(())
        }

        /// Number of entries.
        pub fn len(&self) -> usize {
            self.count.into()
        }

        /// Whether there are no entries.
        pub fn is_empty(&self) -> bool {
            self.count == 0
        }

        /// Bytes of the entries (the message adds 7 for type, `req` and count).
        pub fn raw_len(&self) -> usize {
            self.raw.len()
        }

        /// Empties the list, keeping its memory.
        pub fn clear(&mut self) {
            self.count = 0;
            self.raw.clear();
        }

        /// The list, ready for [`ServerMsg::RoomList`](super::ServerMsg::RoomList).
        pub fn entries(&self) -> RoomEntries<'_> {
            RoomEntries {
                count: self.count,
                raw: &self.raw,
            }
        }
    }
}
