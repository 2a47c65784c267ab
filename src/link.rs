//! The chat client's connection on either runtime adapter (`cove chat --runtime`): one
//! command surface and one stream of events, whichever adapter drives the socket.

use cove_core::client::{ClientError, ClientState};
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
    /// Creates a room and joins it.
    create_room(title: &str);
    /// Joins a room.
    join_room(room: RoomId);
    /// Leaves a room.
    leave_room(room: RoomId);
    /// Lists rooms.
    list_rooms();
    /// Sends a message to a room.
    send_room(room: RoomId, body: &[u8]);
    /// Sends a direct message.
    send_dm(to: &str, body: &[u8]);
    /// Sets presence.
    set_status(status: Status);
    /// Lists users.
    list_users();
    /// Asks the server to re-send every unacknowledged DM.
    fetch_pending();
}

impl Link {
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
