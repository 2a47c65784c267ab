//! What a [`SecureSession`](super::SecureSession) asks the client to send: owned requests,
//! turned into wire messages by [`Action::with_msg`] and sent by [`Action::send`].

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::client::{Client, ClientError};
use crate::time::Instant;
use crate::wire::{ClientMsg, KeyPackageList, RoomId, WireError};

/// One request the session needs sent. Execute it with [`Action::send`] and report the
/// request ID with [`SecureSession::sent`](super::SecureSession::sent).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Create a room (public or private); its group follows once the server made it.
    CreateRoom {
        /// The title.
        title: String,
        /// Joined by invitation only.
        private: bool,
    },
    /// Leave a room.
    LeaveRoom {
        /// Which room.
        room: RoomId,
    },
    /// Remove a member (the room's admin); the MLS Remove follows once the server agrees.
    RemoveMember {
        /// Which room.
        room: RoomId,
        /// Whom.
        name: String,
    },
    /// Store KeyPackages at the server.
    UploadKeyPackages {
        /// A last-resort package (exactly one).
        last_resort: bool,
        /// `MLSMessage(KeyPackage)` each.
        packages: Vec<Vec<u8>>,
    },
    /// Take one of a user's KeyPackages.
    FetchKeyPackage {
        /// Whose.
        name: String,
    },
    /// Publish a new room's group.
    InitGroup {
        /// Which room.
        room: RoomId,
        /// Its GroupInfo.
        group_info: Vec<u8>,
    },
    /// A Commit (or an external commit that joins).
    GroupCommit {
        /// Which room.
        room: RoomId,
        /// The Commit.
        commit: Vec<u8>,
        /// The GroupInfo of the epoch it makes.
        group_info: Vec<u8>,
        /// The member it adds and their Welcome.
        add: Option<(String, Vec<u8>)>,
    },
    /// Ask for a room's GroupInfo.
    GetGroupInfo {
        /// Which room.
        room: RoomId,
    },
    /// Open the direct conversation with `peer`.
    OpenDirect {
        /// The peer.
        peer: String,
        /// The group's GroupInfo.
        group_info: Vec<u8>,
        /// The peer's Welcome.
        welcome: Vec<u8>,
    },
    /// Ask the server's key directory for a user's identity key.
    GetPublicKey {
        /// Whose.
        name: String,
    },
    /// An encrypted application message.
    RoomMessage {
        /// Which room.
        room: RoomId,
        /// `MLSMessage(PrivateMessage)`.
        body: Vec<u8>,
    },
}

impl Action {
    /// Calls `f` with the wire message this action sends under request ID `req`.
    pub fn with_msg<R>(
        &self,
        req: u32,
        f: impl FnOnce(Result<&ClientMsg<'_>, WireError>) -> R,
    ) -> R {
        match self {
            Action::CreateRoom { title, private } => f(Ok(&ClientMsg::CreateRoom {
                req,
                private: *private,
                title,
            })),
            Action::LeaveRoom { room } => f(Ok(&ClientMsg::LeaveRoom { req, room: *room })),
            Action::RemoveMember { room, name } => f(Ok(&ClientMsg::RemoveMember {
                req,
                room: *room,
                name,
            })),
            Action::UploadKeyPackages {
                last_resort,
                packages,
            } => {
                let mut buf = vec![0u8; packages.iter().map(|p| p.len() + 2).sum()];
                let list = KeyPackageList::encode(&mut buf, packages.iter().map(|p| &p[..]))
                    .and_then(|n| KeyPackageList::parse(&buf[..n]));
                match list {
                    Ok(packages) => f(Ok(&ClientMsg::UploadKeyPackages {
                        req,
                        last_resort: *last_resort,
                        packages,
                    })),
                    Err(e) => f(Err(e)),
                }
            }
            Action::FetchKeyPackage { name } => f(Ok(&ClientMsg::FetchKeyPackage { req, name })),
            Action::InitGroup { room, group_info } => f(Ok(&ClientMsg::InitGroup {
                req,
                room: *room,
                group_info,
            })),
            Action::GroupCommit {
                room,
                commit,
                group_info,
                add,
            } => f(Ok(&ClientMsg::GroupCommit {
                req,
                room: *room,
                commit,
                group_info,
                add: add.as_ref().map(|(n, _)| &n[..]),
                welcome: add.as_ref().map_or(&[][..], |(_, w)| &w[..]),
            })),
            Action::GetGroupInfo { room } => f(Ok(&ClientMsg::GetGroupInfo { req, room: *room })),
            Action::OpenDirect {
                peer,
                group_info,
                welcome,
            } => f(Ok(&ClientMsg::OpenDirect {
                req,
                peer,
                group_info,
                welcome,
            })),
            Action::GetPublicKey { name } => f(Ok(&ClientMsg::GetPublicKey { req, name })),
            Action::RoomMessage { room, body } => f(Ok(&ClientMsg::RoomMessage {
                req,
                room: *room,
                body,
            })),
        }
    }

    /// Sends the action through `client`; returns the request ID its answer will carry.
    pub fn send<const TX: usize, const MSG: usize>(
        &self,
        client: &mut Client<TX, MSG>,
        now: Instant,
    ) -> Result<u32, ClientError> {
        match self {
            Action::CreateRoom {
                title,
                private: false,
            } => client.create_room(now, title),
            Action::CreateRoom {
                title,
                private: true,
            } => client.create_private_room(now, title),
            Action::LeaveRoom { room } => client.leave_room(now, *room),
            Action::RemoveMember { room, name } => client.remove_member(now, *room, name),
            Action::UploadKeyPackages {
                last_resort,
                packages,
            } => {
                let mut buf = vec![0u8; packages.iter().map(|p| p.len() + 2).sum()];
                let list = KeyPackageList::encode(&mut buf, packages.iter().map(|p| &p[..]))
                    .and_then(|n| KeyPackageList::parse(&buf[..n]))
                    .map_err(ClientError::Wire)?;
                client.upload_key_packages(now, *last_resort, list)
            }
            Action::FetchKeyPackage { name } => client.fetch_key_package(now, name),
            Action::InitGroup { room, group_info } => client.init_group(now, *room, group_info),
            Action::GroupCommit {
                room,
                commit,
                group_info,
                add,
            } => {
                let add = add.as_ref().map(|(n, w)| (&n[..], &w[..]));
                client.group_commit(now, *room, commit, group_info, add)
            }
            Action::GetGroupInfo { room } => client.get_group_info(now, *room),
            Action::OpenDirect {
                peer,
                group_info,
                welcome,
            } => client.open_direct(now, peer, group_info, welcome),
            Action::GetPublicKey { name } => client.get_public_key(now, name),
            Action::RoomMessage { room, body } => client.send_room(now, *room, body),
        }
    }
}
