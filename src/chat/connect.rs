//! Opening `cove chat`'s connection: the identity key, the pinned server key (trust on
//! first use, like ssh's `known_hosts`), the read markers, and readable errors when
//! the server or the account says no.

use std::path::{Path, PathBuf};

use cove_core::crypto::Identity;
use cove_core::wire::{AuthMode, ErrorCode};
use cove_std::client::{ClientOptions, ConnectError, Welcome};

use super::cursors::RoomCursors;
use super::render::say;
use super::{ChatArgs, default_data_dir};
use crate::files::{self, DmCursors, KnownServers, identity_path, key_fingerprint};
use crate::link::{EventIter, Link};

/// A logged-in connection and what the chat loop keeps using from its setup.
pub(super) struct Session {
    /// Commands to the server.
    pub(super) handle: Link,
    /// Everything the server sends, in order.
    pub(super) events: EventIter,
    /// What the server said on login.
    pub(super) welcome: Welcome,
    /// Where the DM read marker is saved.
    pub(super) dm_cursors: DmCursors,
    /// Where the room read markers are saved.
    pub(super) room_cursors: RoomCursors,
    /// The account's identity (its MLS signature key too).
    pub(super) identity: Identity,
    /// The client data directory.
    pub(super) data: PathBuf,
}

/// Loads (or, with `--register`, creates) the identity, connects and logs in, and pins
/// the server's key the first time (or when told to accept a new one).
pub(super) fn open(args: &ChatArgs) -> Result<Session, String> {
    let data = args.data.clone().unwrap_or_else(default_data_dir);
    let key_path = identity_path(&data, &args.name);
    let identity = if args.register {
        let (id, created) = files::load_or_create_identity(&key_path).map_err(|e| e.to_string())?;
        if created {
            say(&format!(
                "* created an identity key for {} in {} (fingerprint {})",
                args.name,
                key_path.display(),
                files::format_fingerprint(&id.fingerprint())
            ));
        }
        id
    } else if key_path.exists() {
        files::load_identity(&key_path).map_err(|e| e.to_string())?
    } else {
        return Err(format!(
            "no identity key for {} in {}. To create the account run:\n  cove chat --server {} --name {} --register",
            args.name,
            key_path.display(),
            args.server,
            args.name
        ));
    };

    let known_path = data.join("known_servers");
    let mut known = KnownServers::load(&known_path).map_err(|e| e.to_string())?;
    let pinned = known.get(&args.server);
    let dm_cursors = DmCursors::new(&data.join("last_dm"));
    let last_dm = dm_cursors
        .get(&args.server, &args.name)
        .map_err(|e| e.to_string())?;
    let room_cursors = RoomCursors::new(&data.join("last_room"));
    let shown_in_rooms = room_cursors
        .all(&args.server, &args.name)
        .map_err(|e| e.to_string())?;

    let mode = if args.register {
        AuthMode::Register
    } else {
        AuthMode::Login
    };
    let mut options = ClientOptions::new(&args.name, mode, identity.clone());
    options.last_dm_id = last_dm;
    options.room_cursors = shown_in_rooms;
    // The chat acknowledges each DM and room message itself, once it has printed it and
    // saved the read marker (see `render::show`, `secure::pump`): acknowledged on receipt,
    // a message would be counted as seen even if this process died before showing it.
    options.config.auto_ack_dms = false;
    options.config.auto_ack_rooms = false;
    if let (Some(key), false) = (pinned, args.accept_new_server_key) {
        options = options.pin_server_key(key);
    }
    let (handle, events, welcome) =
        match crate::link::connect(args.runtime, args.server.as_str(), options) {
            Ok(c) => c,
            Err(e) => return Err(explain_connect_error(&e, args, pinned, &known_path)),
        };
    if pinned != Some(welcome.server_key) {
        known
            .pin(&args.server, welcome.server_key)
            .map_err(|e| e.to_string())?;
        let what = if pinned.is_some() {
            "replaced the pinned key"
        } else {
            "first connection: pinned the server's key"
        };
        say(&format!(
            "* {what} for {} (fingerprint {}); compare it with the one `cove serve` printed",
            args.server,
            key_fingerprint(&welcome.server_key)
        ));
    }
    Ok(Session {
        handle,
        events,
        welcome,
        dm_cursors,
        room_cursors,
        identity,
        data,
    })
}

fn explain_connect_error(
    e: &ConnectError,
    args: &ChatArgs,
    pinned: Option<[u8; 32]>,
    known_path: &Path,
) -> String {
    let nick = &args.name;
    match e {
        ConnectError::Closed {
            code: ErrorCode::AuthFailed,
            by_peer: false,
            server_key: None,
        } if pinned.is_some() => format!(
            "REFUSED: the server at {} did not prove the key pinned for it in {} \
             (fingerprint {}).\n\
             Someone may be intercepting the connection, or the operator replaced the server's key.\n\
             Ask the operator for the server's fingerprint (`cove serve` prints it). If the key was \
             changed on purpose, connect once with --accept-new-server-key to pin the new one.",
            args.server,
            known_path.display(),
            pinned.map(|k| key_fingerprint(&k)).unwrap_or_default()
        ),
        ConnectError::Closed {
            code: ErrorCode::UserExists,
            ..
        } => format!("the name {nick} is already registered on this server; pick another one"),
        ConnectError::Closed {
            code: ErrorCode::UserNotFound,
            ..
        } => format!(
            "there is no account {nick} on {}; create it with --register",
            args.server
        ),
        ConnectError::Closed {
            code: ErrorCode::AuthFailed,
            by_peer: true,
            ..
        } => format!(
            "the server refused the login: the account {nick} belongs to a different key than {}",
            identity_path(&args.data.clone().unwrap_or_else(default_data_dir), nick).display()
        ),
        ConnectError::Closed {
            code: ErrorCode::AlreadyConnected,
            ..
        } => format!("{nick} is already connected elsewhere"),
        other => format!("cannot connect to {}: {other}", args.server),
    }
}
