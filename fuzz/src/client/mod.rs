//! The client state machine fed fuzzed server messages.
//!
//! The harness plays the server: it answers the client's SYN with a real `ServerHandshake`
//! (unless the input says not to), keeps the server's session, and seals whatever the
//! input asks for — structured server messages, raw plaintexts, key updates — so that the
//! bytes pass the AEAD and reach the client's message handling. Raw and corrupted bytes,
//! partial deliveries, timers and the application's commands are mixed in.
//!
//! Invariants checked after every step: no panic; the transmit queue never exceeds its
//! size; every byte the client writes is a valid frame whose records open with the
//! server's keys and parse as client messages; each message event is exactly the message
//! the server sealed; one `Closed` event at most, after which nothing happens; at most one
//! `LoggedIn`, carrying the server's proven key; a direct message the application (or the
//! client's auto-ack) acknowledged is never shown again, and `last_dm_id` is exactly the
//! highest acknowledged ID; the room list matches the joins and leaves the client was told
//! of and never holds a room twice.
//!
//! `spec` holds the owned, selector-based server messages, this module the rest of the
//! input, and `harness` the server side and the checks.

mod harness;
mod spec;

use arbitrary::Arbitrary;

use crate::arb::{ArbWriter, Bytes, ToArb};
use crate::connection::{MsgSel, NameSel, RoomSel};

pub use harness::client_state_machine;
pub use spec::ServerMsgSpec;

/// The client's transmit queue size in this target: small, so it fills.
pub const TX: usize = 2048;

/// What the application asks of the client.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Command {
    CreateRoom(Bytes),
    JoinRoom(RoomSel),
    LeaveRoom(RoomSel),
    ListRooms,
    SendRoom(RoomSel, Bytes),
    SendDm(NameSel, Bytes),
    SetStatus(u8),
    ListUsers,
    GetPublicKey(NameSel),
    FetchPending,
    UploadPrekeys(Bytes),
    FetchPrekeys(NameSel),
    KeyUpdate,
    Logout,
    Close(u8),
    /// Acknowledges a direct message: one shown (by index), or any ID. Last, so that the
    /// committed inputs keep their commands.
    AckDm(MsgSel),
}

impl ToArb for Command {
    fn write(&self, w: &mut ArbWriter) {
        const N: u32 = 16;
        match self {
            Command::CreateRoom(b) => {
                w.variant(0, N);
                b.write(w);
            }
            Command::JoinRoom(r) => {
                w.variant(1, N);
                r.write(w);
            }
            Command::LeaveRoom(r) => {
                w.variant(2, N);
                r.write(w);
            }
            Command::ListRooms => {
                w.variant(3, N);
            }
            Command::SendRoom(r, b) => {
                w.variant(4, N);
                r.write(w);
                b.write(w);
            }
            Command::SendDm(n, b) => {
                w.variant(5, N);
                n.write(w);
                b.write(w);
            }
            Command::SetStatus(s) => {
                w.variant(6, N).u8(*s);
            }
            Command::ListUsers => {
                w.variant(7, N);
            }
            Command::GetPublicKey(n) => {
                w.variant(8, N);
                n.write(w);
            }
            Command::FetchPending => {
                w.variant(9, N);
            }
            Command::UploadPrekeys(b) => {
                w.variant(10, N);
                b.write(w);
            }
            Command::FetchPrekeys(n) => {
                w.variant(11, N);
                n.write(w);
            }
            Command::KeyUpdate => {
                w.variant(12, N);
            }
            Command::Logout => {
                w.variant(13, N);
            }
            Command::Close(c) => {
                w.variant(14, N).u8(*c);
            }
            Command::AckDm(m) => {
                w.variant(15, N);
                m.write(w);
            }
        }
    }
}

/// One step of the client target.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum ClientOp {
    /// The server seals a message.
    Send(ServerMsgSpec),
    /// The server seals raw plaintext (one starting with the `KeyUpdate` type byte asks for
    /// a key update instead).
    Plain(Bytes),
    /// The server rotates its key with its next record and asks the client to.
    KeyUpdate,
    /// Raw bytes to the client.
    Raw(Bytes),
    /// Flips bit `bit % 8` of undelivered byte `at` (modulo how many there are).
    Flip {
        /// Which byte.
        at: u16,
        /// Which bit.
        bit: u8,
    },
    /// Delivers at most this many bytes (0 = all) to the client.
    Deliver(u16),
    /// The application calls a command.
    Command(Command),
    /// The server reads at most this many bytes (0 = all) of the client's output.
    Read(u16),
    /// The clock moves `n` × 250 ms and due timers fire.
    Advance(u16),
    /// The TCP connection drops.
    Eof,
}

impl ToArb for ClientOp {
    fn write(&self, w: &mut ArbWriter) {
        const N: u32 = 10;
        match self {
            ClientOp::Send(m) => {
                w.variant(0, N);
                m.write(w);
            }
            ClientOp::Plain(b) => {
                w.variant(1, N);
                b.write(w);
            }
            ClientOp::KeyUpdate => {
                w.variant(2, N);
            }
            ClientOp::Raw(b) => {
                w.variant(3, N);
                b.write(w);
            }
            ClientOp::Flip { at, bit } => {
                w.variant(4, N).u16(*at).u8(*bit);
            }
            ClientOp::Deliver(n) => {
                w.variant(5, N).u16(*n);
            }
            ClientOp::Command(c) => {
                w.variant(6, N);
                c.write(w);
            }
            ClientOp::Read(n) => {
                w.variant(7, N).u16(*n);
            }
            ClientOp::Advance(n) => {
                w.variant(8, N).u16(*n);
            }
            ClientOp::Eof => {
                w.variant(9, N);
            }
        }
    }
}

/// How the client is set up.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct ClientSetup {
    /// ChaCha20-Poly1305 instead of AES-256-GCM.
    pub chacha: bool,
    /// Leave the handshake to the operations (raw bytes to a client awaiting its SYN-ACK).
    pub no_handshake: bool,
    /// Pin a server key that is not the server's.
    pub pin_wrong_key: bool,
    /// Key rotation after `rotate_after & 0x7f` records on both sides (0 = default); the
    /// top bit turns on the client's `auto_ack_dms`. One byte carries both so that the
    /// committed inputs keep their meaning (a new field would shift every later byte).
    pub rotate_after: u8,
}

impl ToArb for ClientSetup {
    fn write(&self, w: &mut ArbWriter) {
        w.bool(self.chacha)
            .bool(self.no_handshake)
            .bool(self.pin_wrong_key)
            .u8(self.rotate_after);
    }
}

/// The whole input of the client target.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct ClientInput {
    /// Setup.
    pub setup: ClientSetup,
    /// Operations, in order.
    pub ops: Vec<ClientOp>,
}

impl ToArb for ClientInput {
    fn write(&self, w: &mut ArbWriter) {
        self.setup.write(w);
        self.ops.write(w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arb::decode;

    #[test]
    fn input_writer_round_trips() {
        let input = ClientInput {
            setup: ClientSetup {
                chacha: false,
                no_handshake: false,
                pin_wrong_key: false,
                rotate_after: 2,
            },
            ops: vec![
                ClientOp::Send(ServerMsgSpec::Auth {
                    login: false,
                    ok: true,
                    code: 0,
                    pending: 3,
                }),
                ClientOp::Send(ServerMsgSpec::UserList {
                    req: 1,
                    users: vec![
                        (NameSel::Known(1), 1),
                        (NameSel::Raw(Bytes(b"x".to_vec())), 2),
                    ],
                }),
                ClientOp::Send(ServerMsgSpec::RoomList {
                    req: 1,
                    rooms: vec![(RoomSel::Known(0), Bytes(vec![b'a']), 1, 20)],
                }),
                ClientOp::Send(ServerMsgSpec::PublicKey {
                    req: 2,
                    name: NameSel::Known(0),
                    key: Some([9; 32]),
                }),
                ClientOp::Send(ServerMsgSpec::PrekeyBundle {
                    req: 2,
                    name: NameSel::Known(0),
                    bundle: Some(Bytes(vec![1, 2])),
                }),
                ClientOp::Command(Command::SendRoom(RoomSel::Raw([3; 6]), Bytes(vec![]))),
                ClientOp::Command(Command::AckDm(MsgSel::Known(2))),
                ClientOp::Command(Command::Close(4)),
                ClientOp::Read(0),
                ClientOp::Eof,
            ],
        };
        assert_eq!(decode::<ClientInput>(&input.to_arb_bytes()), Some(input));
    }
}
