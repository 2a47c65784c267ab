//! The chat client's connection on either runtime adapter (`cove chat --runtime`): one
//! command surface and one stream of events, whichever adapter drives the socket.
//!
//! Everything about rooms and direct messages (creating, joining, inviting, removing,
//! sending) is a request of the end-to-end layer, sent with [`Link::send_action`]: this
//! surface has no way to send a message's text unencrypted.

use cove_core::client::{ClientError, ClientState};
use cove_core::e2ee::session::Action;
use cove_core::wire::{RoomId, Status};
use cove_smol::smol::block_on;
use cove_std::client::{ClientOptions, ConnectError, Event, Welcome};

use crate::serve::RuntimeKind;

/// The events of a connection, in order, blocking until the next one; ends after
/// `Event::Closed`.
pub type EventIter = Box<dyn Iterator<Item = Event> + Send>;

/// Commands of one connection, on the adapter it was opened with. Cheap to clone.
#[derive(Clone, Debug)]
pub enum Link {
    /// cove-std's blocking client.
    Std(cove_std::client::ClientHandle),
    /// cove-smol's async client, its driver on smol's global executor; commands block
    /// this thread until queued.
    Smol(cove_smol::client::ClientHandle),
}

macro_rules! commands {
    ($( $(#[doc = $doc:literal])* $name:ident($($arg:ident: $ty:ty),*); )*) => {
        impl Link {
            $(
                $(#[doc = $doc])*
                pub fn $name(&self, $($arg: $ty),*) -> Result<u32, ClientError> {
                    match self {
                        Link::Std(h) => h.$name($($arg),*),
                        Link::Smol(h) => block_on(h.$name($($arg),*)),
                    }
                }
            )*
        }
    };
}

commands! {
    /// Changes `room`'s title (its admin only); every member is told.
    set_room_title(room: RoomId, title: &str);
    /// Asks for up to `limit` retained messages of `room` before sequence number
    /// `before`, oldest first, then the end of the page.
    fetch_history(room: RoomId, before: u64, limit: u8);
    /// Lists rooms.
    list_rooms();
    /// Sets presence.
    set_status(status: Status);
    /// Lists users.
    list_users();
    /// Asks the server to re-send every unacknowledged DM.
    fetch_pending();
    /// Asks for a user's public key (also a cheap round trip with no side effects).
    get_public_key(name: &str);
}

impl Link {
    /// Sends a request of the end-to-end layer (`SecureSession::poll_action`); returns
    /// the request ID to report with `SecureSession::sent`.
    pub fn send_action(&self, action: &Action) -> Result<u32, ClientError> {
        match self {
            Link::Std(h) => h.run(|c, now| action.send(c, now)),
            Link::Smol(h) => block_on(h.run(|c, now| action.send(c, now))),
        }
    }

    /// Logs out; the server closes the connection.
    pub fn logout(&self) -> Result<(), ClientError> {
        match self {
            Link::Std(h) => h.logout(),
            Link::Smol(h) => block_on(h.logout()),
        }
    }

    /// Acknowledges direct message `msg_id` (from a `Reply::IncomingDm`) once it has been
    /// shown or stored: the server then deletes it, and [`Link::last_dm_id`] advances.
    pub fn ack_dm(&self, msg_id: u64) -> Result<(), ClientError> {
        match self {
            Link::Std(h) => h.ack_dm(msg_id),
            Link::Smol(h) => block_on(h.ack_dm(msg_id)),
        }
    }

    /// Acknowledges `room`'s messages up to `seq` once they have been shown: the server
    /// advances this member's durable cursor and sends more, and [`Link::room_cursor`]
    /// advances.
    pub fn ack_room(&self, room: RoomId, seq: u64) -> Result<(), ClientError> {
        match self {
            Link::Std(h) => h.ack_room(room, seq),
            Link::Smol(h) => block_on(h.ack_room(room, seq)),
        }
    }

    /// The highest sequence number of `room` acknowledged so far (restored from the saved
    /// room cursors at login; 0 if none).
    pub fn room_cursor(&self, room: RoomId) -> u64 {
        match self {
            Link::Std(h) => h.room_cursor(room),
            Link::Smol(h) => h.room_cursor(room),
        }
    }

    /// Closes from this side at once.
    pub fn close(&self) {
        match self {
            Link::Std(h) => h.close(),
            Link::Smol(h) => h.close(),
        }
    }

    /// Where the connection is.
    pub fn state(&self) -> ClientState {
        match self {
            Link::Std(h) => h.state(),
            Link::Smol(h) => h.state(),
        }
    }

    /// Rooms the user is in.
    pub fn rooms(&self) -> Vec<RoomId> {
        match self {
            Link::Std(h) => h.rooms(),
            Link::Smol(h) => h.rooms(),
        }
    }

    /// The highest DM ID acknowledged so far (restored from the read marker at login).
    pub fn last_dm_id(&self) -> u64 {
        match self {
            Link::Std(h) => h.last_dm_id(),
            Link::Smol(h) => h.last_dm_id(),
        }
    }
}

/// Connects to `addr` with `runtime`'s client, runs the handshake and the login.
pub fn connect(
    runtime: RuntimeKind,
    addr: &str,
    options: ClientOptions,
) -> Result<(Link, EventIter, Welcome), ConnectError> {
    match runtime {
        RuntimeKind::Std => {
            let conn = cove_std::client::connect(addr, options)?;
            let welcome = conn.welcome();
            let (handle, events) = conn.split();
            Ok((Link::Std(handle), Box::new(events), welcome))
        }
        RuntimeKind::Smol => {
            let conn = block_on(cove_smol::client::connect(addr.to_string(), options))
                .map_err(connect_error)?;
            let w = conn.welcome();
            let welcome = Welcome {
                server_key: w.server_key,
                mode: w.mode,
                pending: w.pending,
            };
            let (handle, mut events) = conn.split();
            let iter = std::iter::from_fn(move || {
                loop {
                    // Events this client does not know (the enum is non-exhaustive) are skipped.
                    if let Some(e) = event(block_on(events.recv())?) {
                        return Some(e);
                    }
                }
            });
            Ok((Link::Smol(handle), Box::new(iter), welcome))
        }
    }
}

fn event(e: cove_smol::client::Event) -> Option<Event> {
    use cove_smol::client::Event as E;
    Some(match e {
        E::LoggedIn(welcome) => Event::LoggedIn(welcome),
        E::Message(reply) => Event::Message(reply),
        E::Closed { code, by_peer } => Event::Closed { code, by_peer },
        _ => return None,
    })
}

fn connect_error(e: cove_smol::client::ConnectError) -> ConnectError {
    use cove_smol::client::ConnectError as E;
    match e {
        E::Io(e) => ConnectError::Io(e),
        E::Handshake(e) => ConnectError::Handshake(e),
        E::Closed {
            code,
            by_peer,
            server_key,
        } => ConnectError::Closed {
            code,
            by_peer,
            server_key,
        },
        E::TimedOut => ConnectError::TimedOut,
        _ => ConnectError::TimedOut,
    }
}
