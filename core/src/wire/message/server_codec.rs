//! [`ServerMsg`]'s parse and emit: `decode` reads the fields in wire order, `emit` writes
//! them in the same order, and both check the same rules.

use super::lists::{
    NameEntries, RoomEntries, UserEntries, name_entry, room_entry, scan, user_entry,
};
use super::*;
use crate::wire::codec::{Reader, Sink, encode_with, len_with};
use crate::wire::error::WireError;
use crate::wire::types::{AuthMode, ErrorCode};

impl<'a> ServerMsg<'a> {
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
            MSG_ROOM_JOINED => {
                let req = r.u32()?;
                let room = r.room()?;
                let (private, direct) = r.room_flags_any()?;
                RoomJoined {
                    req,
                    room,
                    private,
                    direct,
                    title: r.title()?,
                    admin: r.name()?,
                    members: {
                        let count = r.u8()?;
                        NameEntries {
                            count,
                            raw: scan(&mut r, count.into(), name_entry)?,
                        }
                    },
                }
            }
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
            MSG_ROOM_GAP => RoomGap {
                room: r.room()?,
                first_available: r.u64()?,
            },
            MSG_ROOM_INVITED => RoomInvited {
                room: r.room()?,
                title: r.title()?,
                by: r.name()?,
            },
            MSG_ROOM_REMOVED => RoomRemoved {
                room: r.room()?,
                by: r.name()?,
            },
            MSG_ROOM_TITLE => RoomTitle {
                room: r.room()?,
                title: r.title()?,
            },
            MSG_HISTORY_MESSAGE => HistoryMessage {
                req: r.u32()?,
                room: r.room()?,
                seq: r.u64()?,
                from: r.name()?,
                timestamp: r.u64()?,
                body: r.blob()?,
            },
            MSG_HISTORY_DONE => HistoryDone {
                req: r.u32()?,
                room: r.room()?,
                first_available: r.u64()?,
                count: r.u16()?,
            },
            MSG_KEY_PACKAGE => KeyPackage {
                req: r.u32()?,
                name: r.name()?,
                package: r.blob()?,
            },
            MSG_GROUP_INFO => GroupInfo {
                req: r.u32()?,
                room: r.room()?,
                epoch: r.u64()?,
                group_info: r.blob()?,
            },
            MSG_KEY_PACKAGES_LOW => KeyPackagesLow {
                remaining: r.u16()?,
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
                private,
                direct,
                title,
                admin,
                members,
            } => {
                s.u32(req)?;
                s.room(&room)?;
                s.room_flags_any(private, direct)?;
                s.title(title)?;
                s.name(admin)?;
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
            RoomGap {
                room,
                first_available,
            } => {
                s.room(&room)?;
                s.u64(first_available)
            }
            RoomInvited { room, title, by } => {
                s.room(&room)?;
                s.title(title)?;
                s.name(by)
            }
            RoomRemoved { room, by } => {
                s.room(&room)?;
                s.name(by)
            }
            RoomTitle { room, title } => {
                s.room(&room)?;
                s.title(title)
            }
            HistoryMessage {
                req,
                room,
                seq,
                from,
                timestamp,
                body,
            } => {
                s.u32(req)?;
                s.room(&room)?;
                s.u64(seq)?;
                s.name(from)?;
                s.u64(timestamp)?;
                s.blob(body)
            }
            HistoryDone {
                req,
                room,
                first_available,
                count,
            } => {
                s.u32(req)?;
                s.room(&room)?;
                s.u64(first_available)?;
                s.u16(count)
            }
            KeyPackage { req, name, package } => {
                s.u32(req)?;
                s.name(name)?;
                s.blob(package)
            }
            GroupInfo {
                req,
                room,
                epoch,
                group_info,
            } => {
                s.u32(req)?;
                s.room(&room)?;
                s.u64(epoch)?;
                s.blob(group_info)
            }
            KeyPackagesLow { remaining } => s.u16(remaining),
            Ping { nonce } | Pong { nonce } => s.u64(nonce),
            KeyUpdate { request_update } => s.flag(request_update),
            Close { code, text } => {
                s.u8(code as u8)?;
                s.text(text)
            }
        }
    }
}
