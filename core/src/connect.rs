//! What every std runtime adapter's client API shares: how to connect
//! ([`ClientOptions`]), the owned form of the client's events ([`Event`]), what a
//! successful connect learned ([`Welcome`]) and why one failed ([`ConnectError`]).
//! Adapters re-export these, so `cove_std::client::Event` and `cove_smol::client::Event`
//! are one type.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use std::io;
use std::time::Duration;

use crate::client::{ClientConfig, ClientEvent};
use crate::crypto::{Identity, preferred_suite};
use crate::handshake::HandshakeError;
use crate::hub::Reply;
use crate::server::reply_from;
use crate::wire::{AuthMode, ErrorCode, RoomId};

/// How to connect.
#[derive(Clone)]
pub struct ClientOptions {
    /// The nickname.
    pub name: String,
    /// The account's identity key.
    pub identity: Identity,
    /// The core's client settings: register or login, suite, the pinned server key,
    /// timers and key rotation thresholds.
    pub config: ClientConfig,
    /// The highest direct-message ID already shown to this account (persist
    /// `last_dm_id()` of the adapter's handle between runs), so no DM is shown twice.
    pub last_dm_id: u64,
    /// The highest sequence number acknowledged per room (persist each room's
    /// `room_cursor()` of the adapter's handle between runs), so no room message is
    /// shown twice.
    pub room_cursors: Vec<(RoomId, u64)>,
    /// Most events waiting to be read; when full, the adapter stops reading the socket
    /// until the program catches up. Default 4096.
    pub event_queue: usize,
    /// Limit for the TCP connect and the handshake together. Default 10 s.
    pub connect_timeout: Duration,
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOptions")
            .field("name", &self.name)
            .field("config", &self.config)
            .field("last_dm_id", &self.last_dm_id)
            .finish_non_exhaustive()
    }
}

impl ClientOptions {
    /// Defaults for `name`, `mode` and `identity`, proposing the suite this CPU is fastest
    /// at ([`preferred_suite`]).
    pub fn new(name: &str, mode: AuthMode, identity: Identity) -> ClientOptions {
        ClientOptions {
            name: name.to_string(),
            identity,
            config: ClientConfig::new(preferred_suite(), mode),
            last_dm_id: 0,
            room_cursors: Vec::new(),
            event_queue: 4096,
            connect_timeout: Duration::from_secs(10),
        }
    }

    /// Refuse any server whose identity key is not `key`.
    pub fn pin_server_key(mut self, key: [u8; 32]) -> ClientOptions {
        self.config.server_key = Some(key);
        self
    }
}

/// Something that happened on a connection, owned so it can cross threads and tasks.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The server proved its key and accepted the login (the adapter's `connect`
    /// consumes it and returns it as its [`Welcome`]).
    LoggedIn(Welcome),
    /// A message from the server: replies, room messages, DMs, notices. Acknowledge a
    /// [`Reply::IncomingDm`] with the adapter's `ack_dm` once it is shown or stored
    /// (unless `config.auto_ack_dms`).
    Message(Reply),
    /// The connection closed; nothing follows.
    Closed {
        /// Why.
        code: ErrorCode,
        /// Whether the server closed it (or vanished), rather than this side.
        by_peer: bool,
    },
}

/// What the adapter's `connect` learned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Welcome {
    /// The server's proven Ed25519 identity key: pin it.
    pub server_key: [u8; 32],
    /// Register or login.
    pub mode: AuthMode,
    /// Direct messages that were queued while offline.
    pub pending: u32,
}

/// Why the adapter's `connect` failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectError {
    /// The TCP connection failed.
    Io(io::Error),
    /// The handshake could not start (for example an invalid nickname).
    Handshake(HandshakeError),
    /// The connection closed before the login completed.
    Closed {
        /// Why.
        code: ErrorCode,
        /// Whether the server closed it, rather than this side (a local `AuthFailed`
        /// before `server_key` is known means the server's key did not match the pin or
        /// its signature was bad).
        by_peer: bool,
        /// The server's key, if the handshake got that far.
        server_key: Option<[u8; 32]>,
    },
    /// The server did not complete the handshake and login in time.
    TimedOut,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Io(e) => write!(f, "cannot connect: {e}"),
            ConnectError::Handshake(e) => write!(f, "cannot start the handshake: {e}"),
            ConnectError::Closed { code, by_peer, .. } => {
                let who = if *by_peer { "server" } else { "client" };
                write!(f, "connection closed by the {who}: {code}")
            }
            ConnectError::TimedOut => f.write_str("the server did not answer in time"),
        }
    }
}

impl std::error::Error for ConnectError {}

impl From<io::Error> for ConnectError {
    fn from(e: io::Error) -> Self {
        ConnectError::Io(e)
    }
}

/// Converts a client event (borrowing the read buffer) into an owned one; `None` for
/// the control messages the client handles itself.
pub fn owned(ev: ClientEvent<'_>) -> Option<Event> {
    Some(match ev {
        ClientEvent::LoggedIn {
            server_key,
            mode,
            pending,
        } => Event::LoggedIn(Welcome {
            server_key,
            mode,
            pending,
        }),
        ClientEvent::Message(m) => Event::Message(reply_from(&m)?),
        ClientEvent::Closed { code, by_peer } => Event::Closed { code, by_peer },
    })
}
