//! The client a simulated user runs: most users run a small client (8 KiB of transmit
//! queue, bodies of a few KiB, as on a board), and one user in [`EDGE_EVERY`] runs a
//! [`LargeClient`], which sends bodies up to the protocol's largest and one byte more.
//! Those "edge users" are the ones whose bodies are sometimes drawn at exactly
//! `MAX_BODY_LEN - 1`, `MAX_BODY_LEN` and `MAX_BODY_LEN + 1` bytes; keeping them few keeps
//! a run of 10,000 clients within memory. End-to-end encrypted users run a
//! [`LargeClient`] too: Commits, GroupInfos and Welcomes of a full room take several KiB.

use cove_core::client::{Client, ClientConfig, ClientError, ClientEvent, Input, LargeClient};
use cove_core::crypto::{CryptoProvider, Identity};
use cove_core::e2ee::session::Action;
use cove_core::handshake::HandshakeError;
use cove_core::session::Session;
use cove_core::time::Instant;
use cove_core::wire::{ErrorCode, RoomId, Status};
use rand_core::CryptoRng;

/// The small client's transmit queue size: enough for what one step produces, since the
/// simulator writes it out after every step.
const CLIENT_TX: usize = 8 * 1024;

/// One user in this many is an edge user (user 0, then every `EDGE_EVERY`th).
pub(crate) const EDGE_EVERY: usize = 16;

/// Whether user `u` runs a [`LargeClient`] and draws edge body sizes.
pub(crate) fn is_edge_user(u: usize) -> bool {
    u.is_multiple_of(EDGE_EVERY)
}

/// A small client or a large one; either way the same calls.
pub(crate) enum SimClient {
    Small(Box<Client<CLIENT_TX>>),
    Large(Box<LargeClient>),
}

macro_rules! forward {
    (
        mut: $( fn $m:ident($( $ma:ident : $mt:ty ),*) $( -> $mr:ty )?; )*
        ref: $( fn $r:ident($( $ra:ident : $rt:ty ),*) $( -> $rr:ty )?; )*
    ) => {
        $(
            pub(crate) fn $m(&mut self $(, $ma: $mt)*) $( -> $mr )? {
                match self {
                    SimClient::Small(c) => c.$m($($ma),*),
                    SimClient::Large(c) => c.$m($($ma),*),
                }
            }
        )*
        $(
            pub(crate) fn $r(&self $(, $ra: $rt)*) $( -> $rr )? {
                match self {
                    SimClient::Small(c) => c.$r($($ra),*),
                    SimClient::Large(c) => c.$r($($ra),*),
                }
            }
        )*
    };
}

type Req = Result<u32, ClientError>;

impl SimClient {
    /// A large client, or a small one.
    pub(crate) fn new(
        large: bool,
        now: Instant,
        config: ClientConfig,
        provider: &'static dyn CryptoProvider,
        identity: &Identity,
        name: &str,
        rng: &mut impl CryptoRng,
    ) -> Result<SimClient, HandshakeError> {
        Ok(if large {
            SimClient::Large(Box::new(LargeClient::new(
                now, config, provider, identity, name, rng,
            )?))
        } else {
            SimClient::Small(Box::new(Client::new(
                now, config, provider, identity, name, rng,
            )?))
        })
    }

    /// See [`Client::handle_input`].
    pub(crate) fn handle_input<'a>(&mut self, now: Instant, input: &'a mut [u8]) -> Input<'a> {
        match self {
            SimClient::Small(c) => c.handle_input(now, input),
            SimClient::Large(c) => c.handle_input(now, input),
        }
    }

    /// Sends an end-to-end session's request ([`Action::send`]).
    pub(crate) fn send_action(&mut self, action: &Action, now: Instant) -> Req {
        match self {
            SimClient::Small(c) => action.send(c, now),
            SimClient::Large(c) => action.send(c, now),
        }
    }

    forward! {
        mut:
        fn create_room(now: Instant, title: &str) -> Req;
        fn create_private_room(now: Instant, title: &str) -> Req;
        fn invite(now: Instant, room: RoomId, name: &str) -> Req;
        fn remove_member(now: Instant, room: RoomId, name: &str) -> Req;
        fn set_room_title(now: Instant, room: RoomId, title: &str) -> Req;
        fn fetch_history(now: Instant, room: RoomId, before: u64, limit: u8) -> Req;
        fn ack_room(now: Instant, room: RoomId, seq: u64) -> Result<(), ClientError>;
        fn join_room(now: Instant, room: RoomId) -> Req;
        fn leave_room(now: Instant, room: RoomId) -> Req;
        fn list_rooms(now: Instant) -> Req;
        fn send_room(now: Instant, room: RoomId, body: &[u8]) -> Req;
        fn send_dm(now: Instant, to: &str, body: &[u8]) -> Req;
        fn set_status(now: Instant, status: Status) -> Req;
        fn list_users(now: Instant) -> Req;
        fn ack_dm(now: Instant, msg_id: u64) -> Result<(), ClientError>;
        fn request_key_update();
        fn logout(now: Instant) -> Result<(), ClientError>;
        fn set_last_dm_id(id: u64);
        fn set_room_cursor(room: RoomId, seq: u64) -> bool;
        fn poll_event() -> Option<ClientEvent<'static>>;
        fn handle_eof(now: Instant);
        fn advance_transmit(n: usize);
        fn handle_timeout(now: Instant);
        ref:
        fn state() -> cove_core::client::ClientState;
        fn close_code() -> Option<ErrorCode>;
        fn session() -> Option<&Session>;
        fn last_dm_id() -> u64;
        fn pending_transmit() -> &[u8];
        fn poll_timeout() -> Option<Instant>;
    }
}
