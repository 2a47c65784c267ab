//! Application messages carried inside encrypted records: `[u8 type][fields]`.
//!
//! Field encodings: integers big-endian; `name` and `title` are `[u8 len][bytes]`
//! (UTF-8, checked with [`valid_name`](super::valid_name) / [`valid_text`](super::valid_text));
//! `text`, `body` and `blob` are `[u16 len][bytes]`; `room` is 6 bytes from the room alphabet;
//! `req` is a `u32` request ID chosen by the client and echoed in the reply (0 = none).

/// Inner type byte of [`ClientMsg::KeyUpdate`] and [`ServerMsg::KeyUpdate`]; the session layer acts on it.
pub const MSG_KEY_UPDATE: u8 = 0x22;

use super::types::{AckStatus, AuthMode, ErrorCode, RoomId, Status};

/// Messages a client sends to the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientMsg<'a> {
    /// 0x03 `[req][name]`: ask for a user's Ed25519 identity key.
    GetPublicKey { req: u32, name: &'a str },
    /// 0x04 `[req][to: name][body]`: a direct message; `body` is opaque (end-to-end encrypted).
    SendDm { req: u32, to: &'a str, body: &'a [u8] },
    /// 0x05 `[req]`: deliver every queued direct message now.
    FetchPending { req: u32 },
    /// 0x06 `[req][u8 status]`: set presence (online or away).
    SetStatus { req: u32, status: Status },
    /// 0x07 `[req]`: list users and their status.
    ListUsers { req: u32 },
    /// 0x08 (empty): log out and close.
    Logout,
    /// 0x09 `[u64 msg_id]`: the client has the direct message; the server may delete it.
    AckDm { msg_id: u64 },
    /// 0x10 `[req][title]`: create a room and join it.
    CreateRoom { req: u32, title: &'a str },
    /// 0x11 `[req][room]`: join a room.
    JoinRoom { req: u32, room: RoomId },
    /// 0x12 `[req][room]`: leave a room.
    LeaveRoom { req: u32, room: RoomId },
    /// 0x13 `[req]`: list rooms.
    ListRooms { req: u32 },
    /// 0x14 `[req][room][body]`: a message to every member of a room.
    RoomMessage { req: u32, room: RoomId, body: &'a [u8] },
    /// 0x15 `[req][blob]`: store this user's signed prekey bundle (opaque to the server).
    UploadPrekeys { req: u32, bundle: &'a [u8] },
    /// 0x16 `[req][name]`: fetch a user's prekey bundle.
    FetchPrekeys { req: u32, name: &'a str },
    /// 0x20 `[u64 nonce]`: keepalive; answered with `Pong`.
    Ping { nonce: u64 },
    /// 0x21 `[u64 nonce]`: answer to the server's `Ping`.
    Pong { nonce: u64 },
    /// 0x22 `[u8 request_update]`: the sender's next records use the next key.
    KeyUpdate { request_update: bool },
    /// 0x23 `[u8 code][text]`: the sender closes the connection.
    Close { code: ErrorCode, text: &'a str },
}

/// Messages the server sends to a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerMsg<'a> {
    /// 0x81 (register) / 0x82 (login) `[u8 ok][u8 code][u32 pending]`: result of the
    /// handshake's register-or-login; `pending` counts queued direct messages; `code` is 0 on success.
    AuthResponse { mode: AuthMode, result: Result<u32, ErrorCode> },
    /// 0x83 `[req][name][u8 found][32 key if found]`.
    PublicKey { req: u32, name: &'a str, key: Option<[u8; 32]> },
    /// 0x84 `[req][u64 msg_id][u8 status]`: what became of a direct message.
    MessageAck { req: u32, msg_id: u64, status: AckStatus },
    /// 0x85 `[u64 msg_id][from: name][u64 timestamp][body]`: a direct message.
    IncomingDm { msg_id: u64, from: &'a str, timestamp: u64, body: &'a [u8] },
    /// 0x86 `[req][u16 count][count × (name, u8 status)]`.
    UserList { req: u32, users: UserEntries<'a> },
    /// 0x87 `[name][u8 status]`: a user who shares a room with you changed status.
    StatusUpdate { name: &'a str, status: Status },
    /// 0x88 `[req][u8 code][text]`: a request failed (`req` 0 when not tied to one).
    Error { req: u32, code: ErrorCode, text: &'a str },
    /// 0x89 `[req][room][title][u8 count][count × name]`: you are in the room; its members.
    RoomJoined { req: u32, room: RoomId, title: &'a str, members: NameEntries<'a> },
    /// 0x8A `[req][room]`: you left the room.
    RoomLeft { req: u32, room: RoomId },
    /// 0x8B `[req][u16 count][count × (room, title, u8 members, u8 capacity)]`.
    RoomList { req: u32, rooms: RoomEntries<'a> },
    /// 0x8C `[room][u64 seq][from: name][u64 timestamp][body]`: a room message with the
    /// server's per-room sequence number.
    RoomMessage { room: RoomId, seq: u64, from: &'a str, timestamp: u64, body: &'a [u8] },
    /// 0x8D `[room][name]`: someone joined a room you are in.
    MemberJoined { room: RoomId, name: &'a str },
    /// 0x8E `[room][name]`: someone left a room you are in.
    MemberLeft { room: RoomId, name: &'a str },
    /// 0x8F `[req][name][u8 found][blob if found]`.
    PrekeyBundle { req: u32, name: &'a str, bundle: Option<&'a [u8]> },
    /// 0x90 `[req]`: the request succeeded and has nothing else to say.
    Ok { req: u32 },
    /// 0x91 `[req][u32 count]`: every queued direct message has been sent.
    PendingDone { req: u32, count: u32 },
    /// 0x20 `[u64 nonce]`.
    Ping { nonce: u64 },
    /// 0x21 `[u64 nonce]`.
    Pong { nonce: u64 },
    /// 0x22 `[u8 request_update]`.
    KeyUpdate { request_update: bool },
    /// 0x23 `[u8 code][text]`.
    Close { code: ErrorCode, text: &'a str },
}

/// The encoded entries of a user list, checked when parsed; iterate with `iter()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserEntries<'a> {
    /// Number of entries.
    pub count: u16,
    /// `count × ([u8 len][name][u8 status])`.
    pub raw: &'a [u8],
}

/// The encoded entries of a name list (room members), checked when parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameEntries<'a> {
    /// Number of entries.
    pub count: u8,
    /// `count × ([u8 len][name])`.
    pub raw: &'a [u8],
}

/// The encoded entries of a room list, checked when parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoomEntries<'a> {
    /// Number of entries.
    pub count: u16,
    /// `count × ([6 room][u8 len][title][u8 members][u8 capacity])`.
    pub raw: &'a [u8],
}
