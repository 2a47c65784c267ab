//! Between borrowed wire messages and the hub's owned requests and replies.
//!
//! [`Reply`] doubles as the owned form of a server message, so client adapters turn the
//! borrowed events of a `Client` into owned values with [`reply_from`].

use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::hub::{Reply, Request, RoomInfo};
use crate::wire::{
    ClientMsg, NameListBuilder, RoomEntry, RoomListBuilder, ServerMsg, UserListBuilder, WireError,
};

/// The hub request a client message asks for; `None` for control messages (ping, pong,
/// key update, close) that the connection handles itself.
pub fn request_from(msg: &ClientMsg<'_>) -> Option<Request> {
    Some(match *msg {
        ClientMsg::GetPublicKey { req, name } => Request::GetPublicKey {
            req,
            name: name.into(),
        },
        ClientMsg::SendDm { req, to, body } => Request::SendDm {
            req,
            to: to.into(),
            body: Arc::from(body),
        },
        ClientMsg::FetchPending { req } => Request::FetchPending { req },
        ClientMsg::SetStatus { req, status } => Request::SetStatus { req, status },
        ClientMsg::ListUsers { req } => Request::ListUsers { req },
        ClientMsg::Logout => Request::Logout,
        ClientMsg::AckDm { msg_id } => Request::AckDm { msg_id },
        ClientMsg::CreateRoom {
            req,
            private,
            title,
        } => Request::CreateRoom {
            req,
            title: title.into(),
            private,
        },
        ClientMsg::InviteMember { req, room, name } => Request::InviteMember {
            req,
            room,
            name: name.into(),
        },
        ClientMsg::RemoveMember { req, room, name } => Request::RemoveMember {
            req,
            room,
            name: name.into(),
        },
        ClientMsg::SetRoomTitle { req, room, title } => Request::SetRoomTitle {
            req,
            room,
            title: title.into(),
        },
        ClientMsg::AckRoom { room, seq } => Request::AckRoom { room, seq },
        ClientMsg::FetchHistory {
            req,
            room,
            before,
            limit,
        } => Request::FetchHistory {
            req,
            room,
            before,
            limit,
        },
        ClientMsg::JoinRoom { req, room } => Request::JoinRoom { req, room },
        ClientMsg::LeaveRoom { req, room } => Request::LeaveRoom { req, room },
        ClientMsg::ListRooms { req } => Request::ListRooms { req },
        ClientMsg::RoomMessage { req, room, body } => Request::RoomMessage {
            req,
            room,
            body: Arc::from(body),
        },
        ClientMsg::UploadPrekeys { req, bundle } => Request::UploadPrekeys {
            req,
            bundle: Arc::from(bundle),
        },
        ClientMsg::FetchPrekeys { req, name } => Request::FetchPrekeys {
            req,
            name: name.into(),
        },
        ClientMsg::UploadKeyPackages {
            req,
            last_resort,
            packages,
        } => Request::UploadKeyPackages {
            req,
            last_resort,
            packages: packages.iter().map(Arc::from).collect(),
        },
        ClientMsg::FetchKeyPackage { req, name } => Request::FetchKeyPackage {
            req,
            name: name.into(),
        },
        ClientMsg::InitGroup {
            req,
            room,
            group_info,
        } => Request::InitGroup {
            req,
            room,
            group_info: Arc::from(group_info),
        },
        ClientMsg::GroupCommit {
            req,
            room,
            commit,
            group_info,
            add,
            welcome,
        } => Request::GroupCommit {
            req,
            room,
            commit: Arc::from(commit),
            group_info: Arc::from(group_info),
            add: add.map(Arc::from),
            welcome: Arc::from(welcome),
        },
        ClientMsg::GetGroupInfo { req, room } => Request::GetGroupInfo { req, room },
        ClientMsg::OpenDirect {
            req,
            peer,
            group_info,
            welcome,
        } => Request::OpenDirect {
            req,
            peer: peer.into(),
            group_info: Arc::from(group_info),
            welcome: Arc::from(welcome),
        },
        ClientMsg::Ping { .. }
        | ClientMsg::Pong { .. }
        | ClientMsg::KeyUpdate { .. }
        | ClientMsg::Close { .. } => return None,
    })
}

/// Reusable list builders, so encoding replies does not allocate in steady state.
#[derive(Debug, Default)]
pub struct ListScratch {
    users: UserListBuilder,
    names: NameListBuilder,
    rooms: RoomListBuilder,
}

/// Encodes a reply as an inner message into `out` (replacing its contents).
/// `Reply::Close` is encoded as a `Close` message.
pub fn encode_reply(
    reply: &Reply,
    scratch: &mut ListScratch,
    out: &mut Vec<u8>,
) -> Result<(), WireError> {
    let msg = match reply {
        Reply::Auth { mode, result } => ServerMsg::AuthResponse {
            mode: *mode,
            result: *result,
        },
        Reply::PublicKey { req, name, key } => ServerMsg::PublicKey {
            req: *req,
            name,
            key: *key,
        },
        Reply::MessageAck {
            req,
            msg_id,
            status,
        } => ServerMsg::MessageAck {
            req: *req,
            msg_id: *msg_id,
            status: *status,
        },
        Reply::IncomingDm {
            msg_id,
            from,
            timestamp,
            body,
        } => ServerMsg::IncomingDm {
            msg_id: *msg_id,
            from,
            timestamp: *timestamp,
            body,
        },
        Reply::UserList { req, users } => {
            scratch.users.clear();
            for (name, status) in users.iter() {
                scratch.users.push(name, *status)?;
            }
            ServerMsg::UserList {
                req: *req,
                users: scratch.users.entries(),
            }
        }
        Reply::StatusUpdate { name, status } => ServerMsg::StatusUpdate {
            name,
            status: *status,
        },
        Reply::Error { req, code, text } => ServerMsg::Error {
            req: *req,
            code: *code,
            text,
        },
        Reply::RoomJoined {
            req,
            room,
            title,
            members,
            private,
            direct,
            admin,
        } => {
            scratch.names.clear();
            for name in members {
                scratch.names.push(name)?;
            }
            ServerMsg::RoomJoined {
                req: *req,
                room: *room,
                private: *private,
                direct: *direct,
                title,
                admin,
                members: scratch.names.entries(),
            }
        }
        Reply::RoomGap {
            room,
            first_available,
        } => ServerMsg::RoomGap {
            room: *room,
            first_available: *first_available,
        },
        Reply::RoomInvited { room, title, by } => ServerMsg::RoomInvited {
            room: *room,
            title,
            by,
        },
        Reply::RoomRemoved { room, by } => ServerMsg::RoomRemoved { room: *room, by },
        Reply::RoomTitle { room, title } => ServerMsg::RoomTitle { room: *room, title },
        Reply::HistoryMessage {
            req,
            room,
            seq,
            from,
            timestamp,
            body,
        } => ServerMsg::HistoryMessage {
            req: *req,
            room: *room,
            seq: *seq,
            from,
            timestamp: *timestamp,
            body,
        },
        Reply::HistoryDone {
            req,
            room,
            first_available,
            count,
        } => ServerMsg::HistoryDone {
            req: *req,
            room: *room,
            first_available: *first_available,
            count: *count,
        },
        Reply::RoomLeft { req, room } => ServerMsg::RoomLeft {
            req: *req,
            room: *room,
        },
        Reply::RoomList { req, rooms } => {
            scratch.rooms.clear();
            for r in rooms {
                scratch.rooms.push(&RoomEntry {
                    room: r.room,
                    title: &r.title,
                    members: r.members,
                    capacity: r.capacity,
                })?;
            }
            ServerMsg::RoomList {
                req: *req,
                rooms: scratch.rooms.entries(),
            }
        }
        Reply::RoomMessage {
            room,
            seq,
            from,
            timestamp,
            body,
        } => ServerMsg::RoomMessage {
            room: *room,
            seq: *seq,
            from,
            timestamp: *timestamp,
            body,
        },
        Reply::MemberJoined { room, name } => ServerMsg::MemberJoined { room: *room, name },
        Reply::MemberLeft { room, name } => ServerMsg::MemberLeft { room: *room, name },
        Reply::PrekeyBundle { req, name, bundle } => ServerMsg::PrekeyBundle {
            req: *req,
            name,
            bundle: bundle.as_deref(),
        },
        Reply::Ok { req } => ServerMsg::Ok { req: *req },
        Reply::KeyPackage { req, name, package } => ServerMsg::KeyPackage {
            req: *req,
            name,
            package,
        },
        Reply::GroupInfo {
            req,
            room,
            epoch,
            group_info,
        } => ServerMsg::GroupInfo {
            req: *req,
            room: *room,
            epoch: *epoch,
            group_info,
        },
        Reply::KeyPackagesLow { remaining } => ServerMsg::KeyPackagesLow {
            remaining: *remaining,
        },
        Reply::PendingDone { req, count } => ServerMsg::PendingDone {
            req: *req,
            count: *count,
        },
        Reply::Close { code } => ServerMsg::Close {
            code: *code,
            text: code.description(),
        },
    };
    out.clear();
    out.resize(msg.encoded_len(), 0);
    let n = msg.encode(out)?;
    out.truncate(n);
    Ok(())
}

/// The owned form of a server message, for client adapters that pass events between
/// threads. `None` for ping, pong and key update, which the client handles itself.
/// Error texts become the code's standard description.
pub fn reply_from(msg: &ServerMsg<'_>) -> Option<Reply> {
    Some(match *msg {
        ServerMsg::AuthResponse { mode, result } => Reply::Auth { mode, result },
        ServerMsg::PublicKey { req, name, key } => Reply::PublicKey {
            req,
            name: name.into(),
            key,
        },
        ServerMsg::MessageAck {
            req,
            msg_id,
            status,
        } => Reply::MessageAck {
            req,
            msg_id,
            status,
        },
        ServerMsg::IncomingDm {
            msg_id,
            from,
            timestamp,
            body,
        } => Reply::IncomingDm {
            msg_id,
            from: from.into(),
            timestamp,
            body: body.into(),
        },
        ServerMsg::UserList { req, users } => Reply::UserList {
            req,
            users: users.iter().map(|(n, s)| (Arc::from(n), s)).collect(),
        },
        ServerMsg::StatusUpdate { name, status } => Reply::StatusUpdate {
            name: name.into(),
            status,
        },
        ServerMsg::Error { req, code, .. } => Reply::Error {
            req,
            code,
            text: code.description(),
        },
        ServerMsg::RoomJoined {
            req,
            room,
            private,
            direct,
            title,
            admin,
            members,
        } => Reply::RoomJoined {
            req,
            room,
            title: title.into(),
            members: members.iter().map(Arc::from).collect(),
            private,
            direct,
            admin: admin.into(),
        },
        ServerMsg::RoomGap {
            room,
            first_available,
        } => Reply::RoomGap {
            room,
            first_available,
        },
        ServerMsg::RoomInvited { room, title, by } => Reply::RoomInvited {
            room,
            title: title.into(),
            by: by.into(),
        },
        ServerMsg::RoomRemoved { room, by } => Reply::RoomRemoved {
            room,
            by: by.into(),
        },
        ServerMsg::RoomTitle { room, title } => Reply::RoomTitle {
            room,
            title: title.into(),
        },
        ServerMsg::HistoryMessage {
            req,
            room,
            seq,
            from,
            timestamp,
            body,
        } => Reply::HistoryMessage {
            req,
            room,
            seq,
            from: from.into(),
            timestamp,
            body: body.into(),
        },
        ServerMsg::HistoryDone {
            req,
            room,
            first_available,
            count,
        } => Reply::HistoryDone {
            req,
            room,
            first_available,
            count,
        },
        ServerMsg::RoomLeft { req, room } => Reply::RoomLeft { req, room },
        ServerMsg::RoomList { req, rooms } => Reply::RoomList {
            req,
            rooms: rooms
                .iter()
                .map(|e| RoomInfo {
                    room: e.room,
                    title: e.title.into(),
                    members: e.members,
                    capacity: e.capacity,
                })
                .collect(),
        },
        ServerMsg::RoomMessage {
            room,
            seq,
            from,
            timestamp,
            body,
        } => Reply::RoomMessage {
            room,
            seq,
            from: from.into(),
            timestamp,
            body: body.into(),
        },
        ServerMsg::MemberJoined { room, name } => Reply::MemberJoined {
            room,
            name: name.into(),
        },
        ServerMsg::MemberLeft { room, name } => Reply::MemberLeft {
            room,
            name: name.into(),
        },
        ServerMsg::PrekeyBundle { req, name, bundle } => Reply::PrekeyBundle {
            req,
            name: name.into(),
            bundle: bundle.map(Arc::from),
        },
        ServerMsg::Ok { req } => Reply::Ok { req },
        ServerMsg::KeyPackage { req, name, package } => Reply::KeyPackage {
            req,
            name: name.into(),
            package: package.into(),
        },
        ServerMsg::GroupInfo {
            req,
            room,
            epoch,
            group_info,
        } => Reply::GroupInfo {
            req,
            room,
            epoch,
            group_info: group_info.into(),
        },
        ServerMsg::KeyPackagesLow { remaining } => Reply::KeyPackagesLow { remaining },
        ServerMsg::PendingDone { req, count } => Reply::PendingDone { req, count },
        ServerMsg::Close { code, .. } => Reply::Close { code },
        ServerMsg::Ping { .. } | ServerMsg::Pong { .. } | ServerMsg::KeyUpdate { .. } => {
            return None;
        }
    })
}

#[cfg(test)]
mod tests;
