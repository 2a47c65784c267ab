//! The commands a client sends: one method per request, each returning its request ID.

use super::{Client, ClientError, Phase};
use crate::time::Instant;
use crate::wire::{ClientMsg, KeyPackageList, RoomId, Status};

impl<const TX: usize, const MSG: usize> Client<TX, MSG> {
    fn next_req(&mut self) -> u32 {
        let req = self.next_req;
        self.next_req = self.next_req.wrapping_add(1).max(1);
        req
    }

    fn request(
        &mut self,
        now: Instant,
        build: impl FnOnce(u32) -> ClientMsg<'static>,
    ) -> Result<u32, ClientError> {
        let req = self.next_req();
        self.send(now, &build(req))?;
        Ok(req)
    }

    /// Creates a room (and joins it). Returns the request ID.
    pub fn create_room(&mut self, now: Instant, title: &str) -> Result<u32, ClientError> {
        let req = self.next_req();
        self.send(
            now,
            &ClientMsg::CreateRoom {
                req,
                title,
                private: false,
            },
        )?;
        Ok(req)
    }

    /// Creates a private room (joined by invitation only, not listed) and joins it as
    /// its admin. Returns the request ID.
    pub fn create_private_room(&mut self, now: Instant, title: &str) -> Result<u32, ClientError> {
        let req = self.next_req();
        let msg = ClientMsg::CreateRoom {
            req,
            title,
            private: true,
        };
        self.send(now, &msg)?;
        Ok(req)
    }

    /// Invites `name` to `room` (its admin only).
    pub fn invite(&mut self, now: Instant, room: RoomId, name: &str) -> Result<u32, ClientError> {
        let req = self.next_req();
        self.send(now, &ClientMsg::InviteMember { req, room, name })?;
        Ok(req)
    }

    /// Removes `name` from `room` (its admin only).
    pub fn remove_member(
        &mut self,
        now: Instant,
        room: RoomId,
        name: &str,
    ) -> Result<u32, ClientError> {
        let req = self.next_req();
        self.send(now, &ClientMsg::RemoveMember { req, room, name })?;
        Ok(req)
    }

    /// Changes `room`'s title (its admin only).
    pub fn set_room_title(
        &mut self,
        now: Instant,
        room: RoomId,
        title: &str,
    ) -> Result<u32, ClientError> {
        let req = self.next_req();
        self.send(now, &ClientMsg::SetRoomTitle { req, room, title })?;
        Ok(req)
    }

    /// Asks for up to `limit` retained messages of `room` before sequence number
    /// `before` (`u64::MAX` for the newest), oldest first.
    pub fn fetch_history(
        &mut self,
        now: Instant,
        room: RoomId,
        before: u64,
        limit: u8,
    ) -> Result<u32, ClientError> {
        self.request(now, |req| ClientMsg::FetchHistory {
            req,
            room,
            before,
            limit,
        })
    }

    /// Acknowledges `room`'s messages up to `seq` once the application has shown or
    /// stored them: the server advances this member's cursor and sends more, and this
    /// client will not show them again (see [`Client::room_cursor`]).
    pub fn ack_room(&mut self, now: Instant, room: RoomId, seq: u64) -> Result<(), ClientError> {
        self.send(now, &ClientMsg::AckRoom { room, seq })?;
        self.set_room_cursor(room, seq);
        Ok(())
    }

    /// Uploads KeyPackages (`MLSMessage` each) so that others can add this user to groups
    /// while it is offline; `last_resort`: one package handed out when the others are gone.
    pub fn upload_key_packages(
        &mut self,
        now: Instant,
        last_resort: bool,
        packages: KeyPackageList<'_>,
    ) -> Result<u32, ClientError> {
        let req = self.next_req();
        let msg = ClientMsg::UploadKeyPackages {
            req,
            last_resort,
            packages,
        };
        self.send(now, &msg)?;
        Ok(req)
    }

    /// Takes one of `name`'s KeyPackages (answered with a `KeyPackage` message).
    pub fn fetch_key_package(&mut self, now: Instant, name: &str) -> Result<u32, ClientError> {
        let req = self.next_req();
        self.send(now, &ClientMsg::FetchKeyPackage { req, name })?;
        Ok(req)
    }

    /// Publishes `room`'s new MLS group (its admin, once).
    pub fn init_group(
        &mut self,
        now: Instant,
        room: RoomId,
        group_info: &[u8],
    ) -> Result<u32, ClientError> {
        let req = self.next_req();
        let msg = ClientMsg::InitGroup {
            req,
            room,
            group_info,
        };
        self.send(now, &msg)?;
        Ok(req)
    }

    /// Sends a Commit for `room`'s current epoch with the next epoch's GroupInfo, and the
    /// Welcome of the member it adds, if any. A non-member's external commit joins the room.
    pub fn group_commit(
        &mut self,
        now: Instant,
        room: RoomId,
        commit: &[u8],
        group_info: &[u8],
        add: Option<(&str, &[u8])>,
    ) -> Result<u32, ClientError> {
        let req = self.next_req();
        let msg = ClientMsg::GroupCommit {
            req,
            room,
            commit,
            group_info,
            add: add.map(|(name, _)| name),
            welcome: add.map_or(&[][..], |(_, welcome)| welcome),
        };
        self.send(now, &msg)?;
        Ok(req)
    }

    /// Asks for `room`'s latest GroupInfo (to join it by external commit).
    pub fn get_group_info(&mut self, now: Instant, room: RoomId) -> Result<u32, ClientError> {
        self.request(now, |req| ClientMsg::GetGroupInfo { req, room })
    }

    /// Opens the direct conversation with `peer`: a group of two made from one of the
    /// peer's KeyPackages, its GroupInfo and the peer's Welcome.
    pub fn open_direct(
        &mut self,
        now: Instant,
        peer: &str,
        group_info: &[u8],
        welcome: &[u8],
    ) -> Result<u32, ClientError> {
        let req = self.next_req();
        let msg = ClientMsg::OpenDirect {
            req,
            peer,
            group_info,
            welcome,
        };
        self.send(now, &msg)?;
        Ok(req)
    }

    /// Joins a room.
    pub fn join_room(&mut self, now: Instant, room: RoomId) -> Result<u32, ClientError> {
        self.request(now, |req| ClientMsg::JoinRoom { req, room })
    }

    /// Leaves a room.
    pub fn leave_room(&mut self, now: Instant, room: RoomId) -> Result<u32, ClientError> {
        self.request(now, |req| ClientMsg::LeaveRoom { req, room })
    }

    /// Lists rooms.
    pub fn list_rooms(&mut self, now: Instant) -> Result<u32, ClientError> {
        self.request(now, |req| ClientMsg::ListRooms { req })
    }

    /// Sends a message to a room.
    pub fn send_room(
        &mut self,
        now: Instant,
        room: RoomId,
        body: &[u8],
    ) -> Result<u32, ClientError> {
        let req = self.next_req();
        self.send(now, &ClientMsg::RoomMessage { req, room, body })?;
        Ok(req)
    }

    /// Sends a direct message.
    pub fn send_dm(&mut self, now: Instant, to: &str, body: &[u8]) -> Result<u32, ClientError> {
        let req = self.next_req();
        self.send(now, &ClientMsg::SendDm { req, to, body })?;
        Ok(req)
    }

    /// Sets presence (online or away).
    pub fn set_status(&mut self, now: Instant, status: Status) -> Result<u32, ClientError> {
        self.request(now, |req| ClientMsg::SetStatus { req, status })
    }

    /// Lists users.
    pub fn list_users(&mut self, now: Instant) -> Result<u32, ClientError> {
        self.request(now, |req| ClientMsg::ListUsers { req })
    }

    /// Asks for a user's identity key.
    pub fn get_public_key(&mut self, now: Instant, name: &str) -> Result<u32, ClientError> {
        let req = self.next_req();
        self.send(now, &ClientMsg::GetPublicKey { req, name })?;
        Ok(req)
    }

    /// Asks the server to re-send every unacknowledged direct message.
    pub fn fetch_pending(&mut self, now: Instant) -> Result<u32, ClientError> {
        self.request(now, |req| ClientMsg::FetchPending { req })
    }

    /// Stores this user's prekey bundle on the server.
    pub fn upload_prekeys(&mut self, now: Instant, bundle: &[u8]) -> Result<u32, ClientError> {
        let req = self.next_req();
        self.send(now, &ClientMsg::UploadPrekeys { req, bundle })?;
        Ok(req)
    }

    /// Fetches a user's prekey bundle.
    pub fn fetch_prekeys(&mut self, now: Instant, name: &str) -> Result<u32, ClientError> {
        let req = self.next_req();
        self.send(now, &ClientMsg::FetchPrekeys { req, name })?;
        Ok(req)
    }

    /// Acknowledges direct message `msg_id` once the application has shown or stored it:
    /// the server deletes it, and this client will not show it again (see
    /// [`Client::last_dm_id`]).
    pub fn ack_dm(&mut self, now: Instant, msg_id: u64) -> Result<(), ClientError> {
        self.send(now, &ClientMsg::AckDm { msg_id })?;
        self.last_dm_id = self.last_dm_id.max(msg_id);
        Ok(())
    }

    /// Rotates this side's sending key with the next record, and asks the server to rotate too.
    pub fn request_key_update(&mut self) {
        if let Phase::Ready(s) | Phase::AwaitAuth(s) = &mut self.phase {
            s.request_key_update();
        }
    }

    /// Logs out: the server closes the connection after it.
    pub fn logout(&mut self, now: Instant) -> Result<(), ClientError> {
        self.send(now, &ClientMsg::Logout)
    }
}
