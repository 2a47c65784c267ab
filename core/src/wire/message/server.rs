//! [`ServerMsg`]: what the server sends, and its parse and emit.

use super::lists::{
    NameEntries, RoomEntries, UserEntries, name_entry, room_entry, scan, user_entry,
};
use super::*;
use crate::wire::codec::{Reader, Sink, encode_with, len_with};
use crate::wire::error::WireError;
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
