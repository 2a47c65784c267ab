//! The client's settings, states, errors and events.

use core::fmt;

use crate::crypto::Suite;
use crate::session::SessionConfig;
use crate::time::Duration;
use crate::wire::{AuthMode, ErrorCode, ServerMsg, WireError};

/// Most rooms a client tracks membership of at once.
pub const MAX_ROOMS: usize = 32;

/// Settings of a client.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Cipher suite to propose: AES-GCM where the CPU has AES instructions, else ChaCha.
    pub suite: Suite,
    /// Register a new account or log in.
    pub mode: AuthMode,
    /// Largest frame payload accepted from the server. Default 64 KiB. Any other value
    /// is announced in the handshake, and the server never sends this client a larger
    /// record; at least [`MIN_FRAME_LIMIT`](crate::wire::MIN_FRAME_LIMIT), or
    /// [`Client::new`](super::Client::new) fails with
    /// [`HandshakeError::FrameLimitTooSmall`](crate::handshake::HandshakeError).
    pub max_frame: u32,
    /// The server's Ed25519 key, if pinned: any other key fails the handshake.
    pub server_key: Option<[u8; 32]>,
    /// The handshake must finish within this long. Default 10 s.
    pub handshake_timeout: Duration,
    /// Ping a server heard nothing from for this long. Default 30 s.
    pub ping_interval: Duration,
    /// Give up on a server heard nothing from for this long. Default 90 s.
    pub idle_timeout: Duration,
    /// Key rotation thresholds.
    pub session: SessionConfig,
    /// Acknowledge each direct message as soon as it is decrypted. Off by default: the
    /// application calls [`Client::ack_dm`] once it has shown or stored the message, so a
    /// crash in between cannot lose it (the server re-sends what was not acknowledged).
    pub auto_ack_dms: bool,
    /// Acknowledge each room message as soon as it is decrypted. Off by default: the
    /// application calls [`Client::ack_room`] once it has shown or stored the messages,
    /// and the server replays what was not acknowledged at the next login.
    pub auto_ack_rooms: bool,
}

impl ClientConfig {
    /// Defaults for `suite` and `mode`.
    pub fn new(suite: Suite, mode: AuthMode) -> ClientConfig {
        ClientConfig {
            suite,
            mode,
            max_frame: 64 * 1024,
            server_key: None,
            handshake_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(90),
            session: SessionConfig::default(),
            auto_ack_dms: false,
            auto_ack_rooms: false,
        }
    }
}

/// Where the client is, as people and seed 000 name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientState {
    /// SYN sent, waiting for the server's SYN-ACK.
    Handshaking,
    /// ACK sent, waiting for the server to accept the register or login.
    Authenticating,
    /// Logged in, in no room.
    InLobby,
    /// Logged in and in at least one room.
    InRoom,
    /// Closed: nothing more will happen.
    Closed,
}

/// Why a client command was refused. The connection is unchanged unless it says otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientError {
    /// The command needs a logged-in session.
    NotReady,
    /// The connection is closed.
    Closed,
    /// The transmit queue has no room for this record: write out pending bytes first.
    SendQueueFull {
        /// Bytes the record needs.
        needed: usize,
    },
    /// The message is larger than this client can encode.
    TooLarge,
    /// The message does not encode (bad name, text or length).
    Wire(WireError),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::NotReady => f.write_str("not logged in yet"),
            ClientError::Closed => f.write_str("connection closed"),
            ClientError::SendQueueFull { needed } => {
                write!(f, "send queue full ({needed} bytes needed)")
            }
            ClientError::TooLarge => f.write_str("message too large"),
            ClientError::Wire(e) => write!(f, "cannot encode: {e}"),
        }
    }
}

impl core::error::Error for ClientError {}

/// Something the server said or did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientEvent<'a> {
    /// The server proved its identity and accepted the register or login: the one event
    /// that says the session is usable. `pending` direct messages follow.
    LoggedIn {
        /// The server's proven Ed25519 key: pin it (the first time) or compare it.
        server_key: [u8; 32],
        /// Register or login.
        mode: AuthMode,
        /// Direct messages queued while offline.
        pending: u32,
    },
    /// A message from the server (room messages, DMs, replies, notices). Acknowledge a
    /// direct message with [`Client::ack_dm`] and a room message with
    /// [`Client::ack_room`] once it is shown or stored (unless
    /// [`ClientConfig::auto_ack_dms`] / [`ClientConfig::auto_ack_rooms`]); repeats of one
    /// already acknowledged are not shown.
    Message(ServerMsg<'a>),
    /// The connection closed; nothing follows.
    Closed {
        /// Why.
        code: ErrorCode,
        /// Whether the server closed it (or vanished), rather than this side.
        by_peer: bool,
    },
}

/// What one call to [`Client::handle_input`] did.
#[derive(Debug)]
pub struct Input<'a> {
    /// Bytes of the input used; keep the rest.
    pub consumed: usize,
    /// The event this frame produced, if any.
    pub event: Option<ClientEvent<'a>>,
}
