//! Server messages in owned form, with selectors that pick names and rooms the run has
//! heard of.

use arbitrary::Arbitrary;
use cove_core::wire::{
    AckStatus, AuthMode, NameListBuilder, RoomEntry, RoomId, RoomListBuilder, ServerMsg,
    UserListBuilder,
};

use crate::arb::{ArbWriter, Bytes, ToArb};
use crate::connection::{NameSel, RoomSel, code_of, status_of, text_of};
use crate::handshake::CLIENT_NAME;

/// A server message, in owned form with selectors.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum ServerMsgSpec {
    Auth {
        login: bool,
        ok: bool,
        code: u8,
        pending: u32,
    },
    PublicKey {
        req: u32,
        name: NameSel,
        key: Option<[u8; 32]>,
    },
    MessageAck {
        req: u32,
        msg_id: u64,
        status: u8,
    },
    IncomingDm {
        msg_id: u64,
        from: NameSel,
        timestamp: u64,
        body: Bytes,
    },
    UserList {
        req: u32,
        users: Vec<(NameSel, u8)>,
    },
    StatusUpdate {
        name: NameSel,
        status: u8,
    },
    Error {
        req: u32,
        code: u8,
        text: Bytes,
    },
    RoomJoined {
        req: u32,
        room: RoomSel,
        title: Bytes,
        members: Vec<NameSel>,
    },
    RoomLeft {
        req: u32,
        room: RoomSel,
    },
    RoomList {
        req: u32,
        rooms: Vec<(RoomSel, Bytes, u8, u8)>,
    },
    RoomMessage {
        room: RoomSel,
        seq: u64,
        from: NameSel,
        timestamp: u64,
        body: Bytes,
    },
    MemberJoined {
        room: RoomSel,
        name: NameSel,
    },
    MemberLeft {
        room: RoomSel,
        name: NameSel,
    },
    PrekeyBundle {
        req: u32,
        name: NameSel,
        bundle: Option<Bytes>,
    },
    Ok {
        req: u32,
    },
    PendingDone {
        req: u32,
        count: u32,
    },
    Ping {
        nonce: u64,
    },
    Pong {
        nonce: u64,
    },
    Close {
        code: u8,
        text: Bytes,
    },
}

impl ToArb for ServerMsgSpec {
    fn write(&self, w: &mut ArbWriter) {
        use ServerMsgSpec as S;
        const N: u32 = 19;
        match self {
            S::Auth {
                login,
                ok,
                code,
                pending,
            } => {
                w.variant(0, N)
                    .bool(*login)
                    .bool(*ok)
                    .u8(*code)
                    .u32(*pending);
            }
            S::PublicKey { req, name, key } => {
                w.variant(1, N).u32(*req);
                name.write(w);
                w.bool(key.is_some());
                if let Some(k) = key {
                    k.write(w);
                }
            }
            S::MessageAck {
                req,
                msg_id,
                status,
            } => {
                w.variant(2, N).u32(*req).u64(*msg_id).u8(*status);
            }
            S::IncomingDm {
                msg_id,
                from,
                timestamp,
                body,
            } => {
                w.variant(3, N).u64(*msg_id);
                from.write(w);
                w.u64(*timestamp);
                body.write(w);
            }
            S::UserList { req, users } => {
                w.variant(4, N).u32(*req);
                w.vec(users, |w, (n, s)| {
                    n.write(w);
                    w.u8(*s);
                });
            }
            S::StatusUpdate { name, status } => {
                w.variant(5, N);
                name.write(w);
                w.u8(*status);
            }
            S::Error { req, code, text } => {
                w.variant(6, N).u32(*req).u8(*code);
                text.write(w);
            }
            S::RoomJoined {
                req,
                room,
                title,
                members,
            } => {
                w.variant(7, N).u32(*req);
                room.write(w);
                title.write(w);
                members.write(w);
            }
            S::RoomLeft { req, room } => {
                w.variant(8, N).u32(*req);
                room.write(w);
            }
            S::RoomList { req, rooms } => {
                w.variant(9, N).u32(*req);
                w.vec(rooms, |w, (r, t, m, c)| {
                    r.write(w);
                    t.write(w);
                    w.u8(*m).u8(*c);
                });
            }
            S::RoomMessage {
                room,
                seq,
                from,
                timestamp,
                body,
            } => {
                w.variant(10, N);
                room.write(w);
                w.u64(*seq);
                from.write(w);
                w.u64(*timestamp);
                body.write(w);
            }
            S::MemberJoined { room, name } => {
                w.variant(11, N);
                room.write(w);
                name.write(w);
            }
            S::MemberLeft { room, name } => {
                w.variant(12, N);
                room.write(w);
                name.write(w);
            }
            S::PrekeyBundle { req, name, bundle } => {
                w.variant(13, N).u32(*req);
                name.write(w);
                w.bool(bundle.is_some());
                if let Some(b) = bundle {
                    b.write(w);
                }
            }
            S::Ok { req } => {
                w.variant(14, N).u32(*req);
            }
            S::PendingDone { req, count } => {
                w.variant(15, N).u32(*req).u32(*count);
            }
            S::Ping { nonce } => {
                w.variant(16, N).u64(*nonce);
            }
            S::Pong { nonce } => {
                w.variant(17, N).u64(*nonce);
            }
            S::Close { code, text } => {
                w.variant(18, N).u8(*code);
                text.write(w);
            }
        }
    }
}

impl ServerMsgSpec {
    /// Encodes the message; `None` when it does not pass the encoder's checks.
    pub fn encode(&self, rooms: &[RoomId]) -> Option<Vec<u8>> {
        use ServerMsgSpec as S;
        let (n1, t1, t2);
        let mut users = UserListBuilder::new();
        let mut names = NameListBuilder::new();
        let mut list = RoomListBuilder::new();
        let msg = match self {
            S::Auth {
                login,
                ok,
                code,
                pending,
            } => ServerMsg::AuthResponse {
                mode: if *login {
                    AuthMode::Login
                } else {
                    AuthMode::Register
                },
                result: if *ok {
                    Ok(*pending)
                } else {
                    Err(code_of(*code))
                },
            },
            S::PublicKey { req, name, key } => {
                n1 = name.resolve();
                ServerMsg::PublicKey {
                    req: *req,
                    name: &n1,
                    key: *key,
                }
            }
            S::MessageAck {
                req,
                msg_id,
                status,
            } => ServerMsg::MessageAck {
                req: *req,
                msg_id: *msg_id,
                status: AckStatus::from_u8(status % 3).unwrap_or(AckStatus::Failed),
            },
            S::IncomingDm {
                msg_id,
                from,
                timestamp,
                body,
            } => {
                n1 = from.resolve();
                ServerMsg::IncomingDm {
                    msg_id: *msg_id,
                    from: &n1,
                    timestamp: *timestamp,
                    body: &body.0,
                }
            }
            S::UserList { req, users: u } => {
                for (n, s) in u {
                    users.push(&n.resolve(), status_of(*s)).ok()?;
                }
                ServerMsg::UserList {
                    req: *req,
                    users: users.entries(),
                }
            }
            S::StatusUpdate { name, status } => {
                n1 = name.resolve();
                ServerMsg::StatusUpdate {
                    name: &n1,
                    status: status_of(*status),
                }
            }
            S::Error { req, code, text } => {
                t1 = text_of(text);
                ServerMsg::Error {
                    req: *req,
                    code: code_of(*code),
                    text: &t1,
                }
            }
            S::RoomJoined {
                req,
                room,
                title,
                members,
            } => {
                for m in members {
                    names.push(&m.resolve()).ok()?;
                }
                t1 = text_of(title);
                // The admin is a member; v2 fields that the input does not carry (so that
                // committed inputs keep their meaning) are fixed.
                t2 = members
                    .first()
                    .map_or(CLIENT_NAME.to_owned(), NameSel::resolve);
                ServerMsg::RoomJoined {
                    req: *req,
                    room: room.resolve(rooms),
                    private: false,
                    direct: false,
                    title: &t1,
                    admin: &t2,
                    members: names.entries(),
                }
            }
            S::RoomLeft { req, room } => ServerMsg::RoomLeft {
                req: *req,
                room: room.resolve(rooms),
            },
            S::RoomList { req, rooms: r } => {
                for (room, title, members, capacity) in r {
                    list.push(&RoomEntry {
                        room: room.resolve(rooms),
                        title: &text_of(title),
                        members: *members,
                        capacity: *capacity,
                    })
                    .ok()?;
                }
                ServerMsg::RoomList {
                    req: *req,
                    rooms: list.entries(),
                }
            }
            S::RoomMessage {
                room,
                seq,
                from,
                timestamp,
                body,
            } => {
                n1 = from.resolve();
                ServerMsg::RoomMessage {
                    room: room.resolve(rooms),
                    seq: *seq,
                    from: &n1,
                    timestamp: *timestamp,
                    body: &body.0,
                }
            }
            S::MemberJoined { room, name } => {
                n1 = name.resolve();
                ServerMsg::MemberJoined {
                    room: room.resolve(rooms),
                    name: &n1,
                }
            }
            S::MemberLeft { room, name } => {
                n1 = name.resolve();
                ServerMsg::MemberLeft {
                    room: room.resolve(rooms),
                    name: &n1,
                }
            }
            S::PrekeyBundle { req, name, bundle } => {
                n1 = name.resolve();
                ServerMsg::PrekeyBundle {
                    req: *req,
                    name: &n1,
                    bundle: bundle.as_ref().map(|b| b.0.as_slice()),
                }
            }
            S::Ok { req } => ServerMsg::Ok { req: *req },
            S::PendingDone { req, count } => ServerMsg::PendingDone {
                req: *req,
                count: *count,
            },
            S::Ping { nonce } => ServerMsg::Ping { nonce: *nonce },
            S::Pong { nonce } => ServerMsg::Pong { nonce: *nonce },
            S::Close { code, text } => {
                t1 = text_of(text);
                ServerMsg::Close {
                    code: code_of(*code),
                    text: &t1,
                }
            }
        };
        let mut out = vec![0u8; msg.encoded_len()];
        let n = msg.encode(&mut out).ok()?;
        out.truncate(n);
        Some(out)
    }
}
