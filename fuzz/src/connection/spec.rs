//! Client messages in owned form, with selectors that pick names, rooms and message IDs
//! the run has heard of.

use arbitrary::Arbitrary;
use cove_core::wire::{ClientMsg, ErrorCode, RoomId, Status};

use super::NAMES;
use crate::arb::{ArbWriter, Bytes, ToArb};

/// A user name: one of [`NAMES`] or any bytes.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum NameSel {
    /// `NAMES[i % 3]`.
    Known(u8),
    /// Lossy UTF-8 of the bytes (may well be invalid on the wire).
    Raw(Bytes),
}

impl NameSel {
    /// The name.
    pub fn resolve(&self) -> String {
        match self {
            NameSel::Known(i) => NAMES[usize::from(*i) % NAMES.len()].to_owned(),
            NameSel::Raw(b) => String::from_utf8_lossy(&b.0).into_owned(),
        }
    }
}

impl ToArb for NameSel {
    fn write(&self, w: &mut ArbWriter) {
        match self {
            NameSel::Known(i) => {
                w.variant(0, 2).u8(*i);
            }
            NameSel::Raw(b) => {
                w.variant(1, 2);
                b.write(w);
            }
        }
    }
}

/// A room: one the client has heard of, or any six alphabet indices.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum RoomSel {
    /// The `i`-th room heard of (modulo how many); a fixed ID when none.
    Known(u8),
    /// `RoomId::from_indices`.
    Raw([u8; 6]),
}

impl RoomSel {
    /// The room ID, given the rooms heard of so far.
    pub fn resolve(&self, known: &[RoomId]) -> RoomId {
        match self {
            RoomSel::Known(i) if !known.is_empty() => known[usize::from(*i) % known.len()],
            RoomSel::Known(i) => RoomId::from_indices([*i; 6]),
            RoomSel::Raw(ix) => RoomId::from_indices(*ix),
        }
    }
}

impl ToArb for RoomSel {
    fn write(&self, w: &mut ArbWriter) {
        match self {
            RoomSel::Known(i) => {
                w.variant(0, 2).u8(*i);
            }
            RoomSel::Raw(ix) => {
                w.variant(1, 2);
                ix.write(w);
            }
        }
    }
}

/// A direct-message ID: one the client received, or any.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum MsgSel {
    /// The `i`-th ID received (modulo how many); 1 when none.
    Known(u8),
    /// Any ID.
    Raw(u64),
}

impl ToArb for MsgSel {
    fn write(&self, w: &mut ArbWriter) {
        match self {
            MsgSel::Known(i) => {
                w.variant(0, 2).u8(*i);
            }
            MsgSel::Raw(id) => {
                w.variant(1, 2).u64(*id);
            }
        }
    }
}

/// A client message, in owned form with selectors.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum ClientMsgSpec {
    GetPublicKey {
        req: u32,
        name: NameSel,
    },
    SendDm {
        req: u32,
        to: NameSel,
        body: Bytes,
    },
    FetchPending {
        req: u32,
    },
    SetStatus {
        req: u32,
        status: u8,
    },
    ListUsers {
        req: u32,
    },
    Logout,
    AckDm {
        msg: MsgSel,
    },
    CreateRoom {
        req: u32,
        title: Bytes,
    },
    JoinRoom {
        req: u32,
        room: RoomSel,
    },
    LeaveRoom {
        req: u32,
        room: RoomSel,
    },
    ListRooms {
        req: u32,
    },
    RoomMessage {
        req: u32,
        room: RoomSel,
        body: Bytes,
    },
    UploadPrekeys {
        req: u32,
        bundle: Bytes,
    },
    FetchPrekeys {
        req: u32,
        name: NameSel,
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

const CLIENT_MSG_VARIANTS: u32 = 17;

impl ToArb for ClientMsgSpec {
    fn write(&self, w: &mut ArbWriter) {
        use ClientMsgSpec::*;
        let v = |w: &mut ArbWriter, i| {
            w.variant(i, CLIENT_MSG_VARIANTS);
        };
        match self {
            GetPublicKey { req, name } => {
                v(w, 0);
                req.write(w);
                name.write(w);
            }
            SendDm { req, to, body } => {
                v(w, 1);
                req.write(w);
                to.write(w);
                body.write(w);
            }
            FetchPending { req } => {
                v(w, 2);
                req.write(w);
            }
            SetStatus { req, status } => {
                v(w, 3);
                req.write(w);
                status.write(w);
            }
            ListUsers { req } => {
                v(w, 4);
                req.write(w);
            }
            Logout => v(w, 5),
            AckDm { msg } => {
                v(w, 6);
                msg.write(w);
            }
            CreateRoom { req, title } => {
                v(w, 7);
                req.write(w);
                title.write(w);
            }
            JoinRoom { req, room } => {
                v(w, 8);
                req.write(w);
                room.write(w);
            }
            LeaveRoom { req, room } => {
                v(w, 9);
                req.write(w);
                room.write(w);
            }
            ListRooms { req } => {
                v(w, 10);
                req.write(w);
            }
            RoomMessage { req, room, body } => {
                v(w, 11);
                req.write(w);
                room.write(w);
                body.write(w);
            }
            UploadPrekeys { req, bundle } => {
                v(w, 12);
                req.write(w);
                bundle.write(w);
            }
            FetchPrekeys { req, name } => {
                v(w, 13);
                req.write(w);
                name.write(w);
            }
            Ping { nonce } => {
                v(w, 14);
                nonce.write(w);
            }
            Pong { nonce } => {
                v(w, 15);
                nonce.write(w);
            }
            Close { code, text } => {
                v(w, 16);
                code.write(w);
                text.write(w);
            }
        }
    }
}

/// An error code from a byte (unknown bytes become `InvalidFormat`).
pub fn code_of(b: u8) -> ErrorCode {
    ErrorCode::from_u8(b).unwrap_or(ErrorCode::InvalidFormat)
}

/// A status from a byte.
pub fn status_of(b: u8) -> Status {
    Status::from_u8(b % 3).unwrap_or(Status::Online)
}

/// Lossy UTF-8 text from bytes.
pub fn text_of(b: &Bytes) -> String {
    String::from_utf8_lossy(&b.0).into_owned()
}

impl ClientMsgSpec {
    /// Encodes the message; `None` when it does not pass the encoder's checks.
    pub fn encode(&self, rooms: &[RoomId], dms: &[u64]) -> Option<Vec<u8>> {
        use ClientMsgSpec as S;
        let name;
        let text;
        let msg = match self {
            S::GetPublicKey { req, name: n } => {
                name = n.resolve();
                ClientMsg::GetPublicKey {
                    req: *req,
                    name: &name,
                }
            }
            S::SendDm { req, to, body } => {
                name = to.resolve();
                ClientMsg::SendDm {
                    req: *req,
                    to: &name,
                    body: &body.0,
                }
            }
            S::FetchPending { req } => ClientMsg::FetchPending { req: *req },
            S::SetStatus { req, status } => ClientMsg::SetStatus {
                req: *req,
                status: status_of(*status),
            },
            S::ListUsers { req } => ClientMsg::ListUsers { req: *req },
            S::Logout => ClientMsg::Logout,
            S::AckDm { msg } => ClientMsg::AckDm {
                msg_id: match msg {
                    MsgSel::Known(i) if !dms.is_empty() => dms[usize::from(*i) % dms.len()],
                    MsgSel::Known(_) => 1,
                    MsgSel::Raw(id) => *id,
                },
            },
            S::CreateRoom { req, title } => {
                text = text_of(title);
                ClientMsg::CreateRoom {
                    req: *req,
                    private: false,
                    title: &text,
                }
            }
            S::JoinRoom { req, room } => ClientMsg::JoinRoom {
                req: *req,
                room: room.resolve(rooms),
            },
            S::LeaveRoom { req, room } => ClientMsg::LeaveRoom {
                req: *req,
                room: room.resolve(rooms),
            },
            S::ListRooms { req } => ClientMsg::ListRooms { req: *req },
            S::RoomMessage { req, room, body } => ClientMsg::RoomMessage {
                req: *req,
                room: room.resolve(rooms),
                body: &body.0,
            },
            S::UploadPrekeys { req, bundle } => ClientMsg::UploadPrekeys {
                req: *req,
                bundle: &bundle.0,
            },
            S::FetchPrekeys { req, name: n } => {
                name = n.resolve();
                ClientMsg::FetchPrekeys {
                    req: *req,
                    name: &name,
                }
            }
            S::Ping { nonce } => ClientMsg::Ping { nonce: *nonce },
            S::Pong { nonce } => ClientMsg::Pong { nonce: *nonce },
            S::Close { code, text: t } => {
                text = text_of(t);
                ClientMsg::Close {
                    code: code_of(*code),
                    text: &text,
                }
            }
        };
        let mut out = vec![0u8; msg.encoded_len()];
        let n = msg.encode(&mut out).ok()?;
        out.truncate(n);
        Some(out)
    }
}
