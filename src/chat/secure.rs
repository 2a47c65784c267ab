//! The account's end-to-end layer in `cove chat`: a `SecureSession` loaded from (or
//! created in) the data directory, fed every reply, and drained after every change by
//! [`pump`]: its events are shown, its state is saved, its requests are sent, and only
//! then are the room log entries it handled acknowledged.
//!
//! Write-ahead rule: the state is written (temporary file, fsync, rename) before the read
//! marker of an entry is saved and before the entry is acknowledged, and before any
//! request made from the new state goes out. A crash before the write shows the entries
//! again at the next login (the old state handles them once more); after it, the restored
//! state has them already. Were an entry acknowledged first, a Commit in it could be lost
//! and with it every later message of the room.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use cove_core::client::ClientError;
use cove_core::crypto::Identity;
use cove_core::e2ee::MlsCrypto;
use cove_core::e2ee::session::{Action, SecureSession};
use cove_core::hub::Reply;
use cove_core::wire::{ErrorCode, RoomId};
use rand_core::UnwrapErr;

use super::entries::{self, Shown};
use super::mls_state;
use super::render::say;
use super::{Pending, Shared};
use crate::link::Link;

/// The session and where its state is saved.
pub(super) struct Secure {
    /// The account's end-to-end session.
    pub(super) session: SecureSession,
    path: PathBuf,
    /// The state changed and could not be saved: nothing is sent or acknowledged until
    /// it is.
    unsaved: bool,
    /// Entries shown while the state could not be saved, acknowledged once it is; and
    /// the rooms of own messages among them. Bounded by the server, which sends a room's
    /// entries only a window ahead of the acknowledgements.
    backlog: Vec<(RoomId, u64)>,
    echoes: Vec<RoomId>,
}

impl Secure {
    /// Hands one reply to the session.
    pub(super) fn handle_reply(&mut self, reply: &Reply) {
        self.session.handle_reply(reply, unix_secs());
    }

    /// Where the state is saved.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }
}

/// Seconds since the Unix epoch, the session's clock (key package lifetimes, key
/// refreshes).
pub(super) fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Loads the state of `nick` on `server` from `data`, or starts a new one. A new account
/// (`registered`) starts afresh and keeps an older state file aside. A state that does not
/// load stops the login: starting over would silently drop the keys of every room.
pub(super) fn open(
    identity: &Identity,
    data: &Path,
    server: &str,
    nick: &str,
    registered: bool,
) -> Result<Secure, String> {
    let path = mls_state::state_path(data, server, nick);
    // The OS's entropy: a failure there is not recoverable (`UnwrapErr` panics with it).
    let crypto = MlsCrypto::from_rng(&mut UnwrapErr(getrandom::SysRng));
    let saved = mls_state::load(&path).map_err(|e| e.to_string())?;
    let session = match saved {
        Some(_) if registered => {
            let old = mls_state::set_aside(&path).map_err(|e| e.to_string())?;
            say(&format!(
                "* a new account: the older encryption state was moved to {}",
                old.display()
            ));
            SecureSession::new(identity, nick, crypto)
        }
        Some((bytes, exposed)) => {
            if exposed {
                say(&format!(
                    "! {} is readable by other users; it holds your message keys: chmod 600 {}",
                    path.display(),
                    path.display()
                ));
            }
            let restored = SecureSession::restore(identity, nick, crypto, &bytes);
            return match restored {
                Ok(session) => finish(session, path),
                Err(e) => Err(format!(
                    "cannot use the end-to-end encryption state in {}: {e}.\n\
                     It holds the keys of your rooms and direct conversations. Move it away to \
                     start with a new one; rooms you are in then have to be joined again.",
                    path.display()
                )),
            };
        }
        None => {
            if !registered {
                say(&format!(
                    "* no end-to-end encryption state in {}: starting a new one \
                     (rooms and conversations you are already in cannot be read from here)",
                    path.display()
                ));
            }
            SecureSession::new(identity, nick, crypto)
        }
    }
    .map_err(|e| format!("cannot set up end-to-end encryption: {e}"))?;
    finish(session, path)
}

/// The session with its state file, written at once: a data directory that cannot take
/// it stops the login here rather than after messages were read.
fn finish(session: SecureSession, path: PathBuf) -> Result<Secure, String> {
    let mut secure = Secure {
        session,
        path,
        unsaved: false,
        backlog: Vec::new(),
        echoes: Vec::new(),
    };
    save(&mut secure, true);
    if secure.unsaved {
        return Err(format!(
            "cannot write the end-to-end encryption state to {}",
            secure.path.display()
        ));
    }
    Ok(secure)
}

/// Logged in: the session publishes its KeyPackages (the first time).
pub(super) fn login(shared: &Shared, handle: &Link) {
    let mut secure = shared.secure();
    secure.session.login(unix_secs());
    pump(&mut secure, shared, handle, None, None);
}

/// The user is no longer in these rooms (found at login): the keys of their groups are
/// deleted, as when a removal is seen live.
pub(super) fn forget_rooms(shared: &Shared, handle: &Link, rooms: &[RoomId]) {
    let mut secure = shared.secure();
    let mut any = false;
    for room in rooms {
        if secure.session.e2ee().has_group(*room) {
            any = true;
            let gone = Reply::RoomRemoved {
                room: *room,
                by: "".into(),
            };
            secure.handle_reply(&gone);
            say(&format!(
                "* you are no longer in room {room}: its keys are deleted from this device"
            ));
        }
    }
    if any {
        pump(&mut secure, shared, handle, None, None);
    }
}

/// The login's catch-up is done: a room the user is in whose group is not here (the
/// state was lost, or is older than the room's) is pointed out now, and its group is
/// rejoined with new keys (an external commit, which also takes this member's old leaf
/// out): what is sent from then on is readable again.
pub(super) fn check_groups<'a>(
    shared: &Shared,
    handle: &Link,
    rooms: impl IntoIterator<Item = &'a RoomId>,
) {
    let mut secure = shared.secure();
    for room in rooms {
        if secure.session.e2ee().has_group(*room) {
            continue;
        }
        entries::no_group(&secure, shared, handle, *room, true);
        secure.session.join_room(*room);
        pump(
            &mut secure,
            shared,
            handle,
            Some(&Pending::Join(*room)),
            None,
        );
    }
}

/// Writes the state if it changed (or an earlier write failed). Sets `unsaved` on failure.
fn save(secure: &mut Secure, changed: bool) {
    if !changed && !secure.unsaved {
        return;
    }
    match mls_state::save(&secure.path, &secure.session.export_state()) {
        Ok(()) => secure.unsaved = false,
        Err(e) => {
            secure.unsaved = true;
            say(&format!(
                "! cannot save the end-to-end encryption state: {e}; nothing is sent or \
                 acknowledged until it can be"
            ));
        }
    }
}

/// Drains the session after a change: shows its events, saves its state, sends its
/// requests (recorded as pending, as what `cause` led to), then acknowledges the room
/// log entries it handled. `shown_error`: the error reply just shown, whose `Failed`
/// event would say the same again.
pub(super) fn pump(
    secure: &mut Secure,
    shared: &Shared,
    handle: &Link,
    cause: Option<&Pending>,
    shown_error: Option<ErrorCode>,
) {
    let mut shown = Shown::new(shown_error);
    while let Some(event) = secure.session.poll_event() {
        entries::show(event, secure, shared, handle, &mut shown);
    }
    secure.backlog.append(&mut shown.entries);
    secure.echoes.append(&mut shown.echoes);
    let changed = secure.session.take_dirty();
    save(secure, changed);
    if secure.unsaved {
        return;
    }
    while let Some(action) = secure.session.poll_action() {
        // The pending entry is made before the request can be answered: the answer is
        // handled by the event thread, which needs `secure` (held here) first.
        match handle.send_action(&action) {
            Ok(req) => {
                secure.session.sent(req);
                shared.ui().pending.insert(req, pending_for(&action, cause));
            }
            Err(ClientError::Closed) => break,
            Err(e) => say(&format!("! not sent: {e}")),
        }
    }
    for (room, seq) in std::mem::take(&mut secure.backlog) {
        acknowledge(shared, handle, room, seq);
    }
    // Our own messages came back in the rooms' order: delivered. Only now (shown and
    // acknowledged) are the lines that sent them done.
    entries::echoes_done(shared, &std::mem::take(&mut secure.echoes));
}

/// The room log entry was shown and the state that handled it saved: its read marker is
/// saved, then it is acknowledged. A crash before the marker is saved hands it to the
/// session once more at the next login (which ignores it, having handled it); after it,
/// the restored cursor has the client skip and re-acknowledge it.
fn acknowledge(shared: &Shared, handle: &Link, room: RoomId, seq: u64) {
    if let Err(e) = shared
        .room_cursors
        .set(&shared.server, &shared.me, room, seq)
    {
        say(&format!("! cannot save the room read marker: {e}"));
    }
    match handle.ack_room(room, seq) {
        // Closed: the server replays it, and the saved marker has the next login skip it.
        Ok(()) | Err(ClientError::Closed) => {}
        Err(e) => say(&format!("! cannot acknowledge the room message: {e}")),
    }
}

/// What the answer to `action` means, given the request that led to it.
fn pending_for(action: &Action, cause: Option<&Pending>) -> Pending {
    match action {
        Action::CreateRoom { .. } => Pending::Create,
        Action::InitGroup { room, .. } => Pending::Setup(*room),
        Action::LeaveRoom { room } => Pending::Leave(*room),
        Action::RemoveMember { room, name } => Pending::Remove {
            room: *room,
            nick: name.clone(),
        },
        Action::UploadKeyPackages { .. } => Pending::Upload,
        Action::FetchKeyPackage { name } => match cause {
            Some(Pending::Invite { room, .. }) => Pending::Invite {
                room: *room,
                nick: name.clone(),
            },
            _ => Pending::Dm(name.clone()),
        },
        Action::GroupCommit {
            room,
            add: Some((name, _)),
            ..
        } => Pending::Invite {
            room: *room,
            nick: name.clone(),
        },
        Action::GroupCommit { room, .. } => match cause {
            Some(Pending::Join(r)) if r == room => Pending::Join(*room),
            _ => Pending::Commit(*room),
        },
        Action::GetGroupInfo { room } => Pending::Join(*room),
        Action::OpenDirect { peer, .. } => Pending::Dm(peer.clone()),
        Action::RoomMessage { room, .. } => Pending::RoomSend(*room),
        _ => Pending::Sync,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> RoomId {
        RoomId::parse(s.as_bytes()).expect("a valid room ID")
    }

    #[test]
    fn requests_keep_the_context_of_the_command_that_led_to_them() {
        let room = id("K7QX2M");
        let invite = Pending::Invite {
            room,
            nick: "bob".into(),
        };
        let fetch = Action::FetchKeyPackage { name: "bob".into() };
        assert_eq!(pending_for(&fetch, Some(&invite)), invite);
        assert_eq!(pending_for(&fetch, None), Pending::Dm("bob".into()));
        let commit = |add: Option<(String, Vec<u8>)>| Action::GroupCommit {
            room,
            commit: vec![1],
            group_info: vec![2],
            add,
        };
        assert_eq!(
            pending_for(&commit(Some(("bob".into(), vec![3]))), None),
            invite
        );
        assert_eq!(
            pending_for(&commit(None), Some(&Pending::Join(room))),
            Pending::Join(room)
        );
        assert_eq!(
            pending_for(
                &commit(None),
                Some(&Pending::Remove {
                    room,
                    nick: "bob".into()
                })
            ),
            Pending::Commit(room)
        );
        assert_eq!(
            pending_for(&Action::GetGroupInfo { room }, None),
            Pending::Join(room)
        );
        assert_eq!(
            pending_for(&Action::RoomMessage { room, body: vec![] }, None),
            Pending::RoomSend(room)
        );
    }
}
