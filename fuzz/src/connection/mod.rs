//! A `ServerConnection` wired to a real `Hub` through the core's `Driver`, fed by a fuzzed
//! client.
//!
//! The harness completes a real handshake (unless the input says not to), then applies a
//! sequence of operations: messages and raw plaintexts sealed with the client's own
//! session keys (so they pass the AEAD and reach the message parser and the hub), raw or
//! corrupted bytes, partial deliveries, timers, and a second user acting through the hub.
//! Everything the server writes is read back by the client side and must be valid. The
//! harness is an adapter: connection events go to the driver, each batch of store
//! operations is made durable at once, and released replies go back to the connection.
//!
//! Invariants checked after every step: no panic; the transmit queue stays within its
//! configured bound; the pending events stay within the connection's own cap; exactly one
//! `Closed` event, after which the connection is silent; the rate limit holds; every byte
//! the server sends is a valid frame within the client's real frame limit
//! ([`DEFAULT_MAX_FRAME`](cove_core::wire::DEFAULT_MAX_FRAME)), every record opens with the client's keys and parses; every
//! reply the hub builds encodes and fits that limit once sealed; and no room exceeds its
//! capacity.
//!
//! `spec` holds the owned, selector-based client messages (shared with the other stateful
//! targets), this module the rest of the input, and `harness` the adapter and checks.

mod harness;
mod spec;

use arbitrary::Arbitrary;
use cove_core::crypto::SuiteSet;
use cove_core::hub::ConnId;
use cove_core::server::ServerConfig;
use cove_core::session::SessionConfig;

use crate::arb::{ArbWriter, Bytes, ToArb};
use crate::handshake::CLIENT_NAME;

pub use harness::server_connection;
pub use spec::{ClientMsgSpec, MsgSel, NameSel, RoomSel, code_of, status_of, text_of};

/// Names the selectors pick from: the fuzzing client, the peer, and a stranger.
pub const NAMES: [&str; 3] = [CLIENT_NAME, "bob", "carol"];

/// Most events a connection holds before it stops reading (its `MAX_PENDING_EVENTS`).
const MAX_PENDING_EVENTS: usize = 64;
/// The fuzzing client's connection.
const CONN: ConnId = ConnId(1);
/// The peer's connection (it has no `ServerConnection`: its events go to the driver as
/// they are, and its replies are only looked at).
const PEER: ConnId = ConnId(2);

/// What the peer (`bob`, logged in on the hub directly) does.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum PeerOp {
    /// Sends a direct message to the fuzzing client.
    Dm(Bytes),
    /// Creates a room.
    CreateRoom,
    /// Joins a room.
    Join(RoomSel),
    /// Leaves a room.
    Leave(RoomSel),
    /// Says something in a room.
    Say(RoomSel, Bytes),
}

impl ToArb for PeerOp {
    fn write(&self, w: &mut ArbWriter) {
        match self {
            PeerOp::Dm(b) => {
                w.variant(0, 5);
                b.write(w);
            }
            PeerOp::CreateRoom => {
                w.variant(1, 5);
            }
            PeerOp::Join(r) => {
                w.variant(2, 5);
                r.write(w);
            }
            PeerOp::Leave(r) => {
                w.variant(3, 5);
                r.write(w);
            }
            PeerOp::Say(r, b) => {
                w.variant(4, 5);
                r.write(w);
                b.write(w);
            }
        }
    }
}

/// One step of the server-connection target.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum ConnOp {
    /// The client seals a message with its session keys.
    Send(ClientMsgSpec),
    /// The client seals raw plaintext (one starting with the `KeyUpdate` type byte asks
    /// for a key update instead: only the session may send those).
    Plain(Bytes),
    /// The client rotates its key with its next record and asks the server to.
    KeyUpdate,
    /// Raw bytes on the wire.
    Raw(Bytes),
    /// Flips bit `bit % 8` of the undelivered byte `at` (modulo how many there are).
    Flip {
        /// Which byte.
        at: u16,
        /// Which bit.
        bit: u8,
    },
    /// Delivers at most this many bytes (0 = all) to the server in one call.
    Deliver(u16),
    /// The client reads at most `max` bytes (0 = all) of what the server wrote.
    Read(u16),
    /// The clock moves `n` × 250 ms and due timers fire.
    Advance(u16),
    /// The peer acts through the hub.
    Peer(PeerOp),
    /// The TCP connection drops.
    Eof,
}

impl ToArb for ConnOp {
    fn write(&self, w: &mut ArbWriter) {
        const N: u32 = 10;
        match self {
            ConnOp::Send(m) => {
                w.variant(0, N);
                m.write(w);
            }
            ConnOp::Plain(b) => {
                w.variant(1, N);
                b.write(w);
            }
            ConnOp::KeyUpdate => {
                w.variant(2, N);
            }
            ConnOp::Raw(b) => {
                w.variant(3, N);
                b.write(w);
            }
            ConnOp::Flip { at, bit } => {
                w.variant(4, N).u16(*at).u8(*bit);
            }
            ConnOp::Deliver(max) => {
                w.variant(5, N).u16(*max);
            }
            ConnOp::Read(n) => {
                w.variant(6, N).u16(*n);
            }
            ConnOp::Advance(n) => {
                w.variant(7, N).u16(*n);
            }
            ConnOp::Peer(p) => {
                w.variant(8, N);
                p.write(w);
            }
            ConnOp::Eof => {
                w.variant(9, N);
            }
        }
    }
}

/// How the connection is set up.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct ConnSetup {
    /// ChaCha20-Poly1305 instead of AES-256-GCM.
    pub chacha: bool,
    /// Leave the handshake to the operations (raw bytes to a fresh connection).
    pub no_handshake: bool,
    /// Log in (as a user that does not exist) instead of registering.
    pub login: bool,
    /// Server key rotation after this many records (0 = default).
    pub rotate_after: u8,
    /// Send queue of 256 + 64 × this many bytes (0 = default 4 MiB).
    pub send_queue: u8,
    /// Rate limit burst (0 = default).
    pub rate_burst: u8,
    /// Largest frame 256 + 64 × this (0 = default 64 KiB).
    pub max_frame: u8,
}

impl ToArb for ConnSetup {
    fn write(&self, w: &mut ArbWriter) {
        w.bool(self.chacha)
            .bool(self.no_handshake)
            .bool(self.login)
            .u8(self.rotate_after)
            .u8(self.send_queue)
            .u8(self.rate_burst)
            .u8(self.max_frame);
    }
}

/// The whole input of the server-connection target.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub struct ConnInput {
    /// Setup.
    pub setup: ConnSetup,
    /// Operations, in order.
    pub ops: Vec<ConnOp>,
}

impl ToArb for ConnInput {
    fn write(&self, w: &mut ArbWriter) {
        self.setup.write(w);
        self.ops.write(w);
    }
}

/// The server configuration a setup asks for.
pub fn server_config(s: &ConnSetup) -> ServerConfig {
    let mut c = ServerConfig::default();
    if s.rotate_after != 0 {
        c.session = SessionConfig {
            rotate_after_records: u64::from(s.rotate_after),
            ..SessionConfig::default()
        };
    }
    if s.send_queue != 0 {
        c.send_queue_bytes = 256 + 64 * usize::from(s.send_queue);
    }
    if s.rate_burst != 0 {
        c.rate_burst = u32::from(s.rate_burst);
        c.rate_per_sec = u32::from(s.rate_burst % 8);
        c.rate_strikes = u32::from(s.rate_burst % 5) + 1;
    }
    if s.max_frame != 0 {
        c.max_frame = 256 + 64 * u32::from(s.max_frame);
    }
    c.suites = SuiteSet::ALL;
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arb::decode;

    #[test]
    fn input_writer_round_trips() {
        let input = ConnInput {
            setup: ConnSetup {
                chacha: true,
                no_handshake: false,
                login: false,
                rotate_after: 3,
                send_queue: 9,
                rate_burst: 0,
                max_frame: 2,
            },
            ops: vec![
                ConnOp::Send(ClientMsgSpec::CreateRoom {
                    req: 7,
                    title: Bytes(b"hi".to_vec()),
                }),
                ConnOp::Send(ClientMsgSpec::AckDm {
                    msg: MsgSel::Raw(99),
                }),
                ConnOp::Send(ClientMsgSpec::Close {
                    code: 5,
                    text: Bytes(vec![]),
                }),
                ConnOp::Peer(PeerOp::Say(RoomSel::Raw([1; 6]), Bytes(vec![3]))),
                ConnOp::Flip { at: 3, bit: 4 },
                ConnOp::Deliver(9),
                ConnOp::Eof,
            ],
        };
        assert_eq!(decode::<ConnInput>(&input.to_arb_bytes()), Some(input));
    }
}
