//! The end-to-end canary, checked in every run: 16 seeded ASCII bytes that start every
//! plaintext an end-to-end encrypted user sends (room messages and direct messages). The
//! server must never hold them: not in any request it decrypts out of the transport, any
//! reply (frame) it sends, any store op it writes, nor any line it logs. Nor may they
//! cross the wire.
//!
//! Log lines are the ones the runtime adapters write for the same events (a handshake, a
//! request by its kind, a close, a committed batch), rendered here the same way. A store
//! op of a kind this checker does not know is scanned through its debug rendering, where a
//! byte string shows as a list of decimal numbers: the canary is looked for in that form
//! too.

use cove_core::hub::{Reply, Request};
use cove_core::server::ServerEvent;
use cove_core::store::StoreOp;
use memchr::memmem;

use crate::model::{Checked, Violation};

/// The invariant's name.
pub(crate) const CHECK: &str = "e2ee plaintext at the server";

/// The canary and its searchers.
pub(crate) struct SecretCanary {
    bytes: [u8; 16],
    raw: memmem::Finder<'static>,
    /// The canary as a debug rendering of a byte string shows it: `69, 50, 69, …`.
    decimal: memmem::Finder<'static>,
    /// Requests, replies, store ops and log lines scanned.
    pub(crate) scanned: u64,
}

impl SecretCanary {
    /// A canary of 16 letters and digits drawn from `seed`, starting `E2E~`.
    pub(crate) fn new(seed: u64) -> SecretCanary {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut rng = crate::rng::Prng::new(seed);
        let mut bytes = *b"E2E~............";
        for b in &mut bytes[4..] {
            *b = ALPHABET[rng.index(ALPHABET.len())];
        }
        let decimal: Vec<String> = bytes.iter().map(|b| b.to_string()).collect();
        SecretCanary {
            bytes,
            raw: memmem::Finder::new(&bytes).into_owned(),
            decimal: memmem::Finder::new(decimal.join(", ").as_bytes()).into_owned(),
            scanned: 0,
        }
    }

    /// The canary, for encrypted users to put in their plaintexts.
    pub(crate) fn bytes(&self) -> &[u8; 16] {
        &self.bytes
    }

    fn scan(&self, parts: &[&[u8]], what: impl FnOnce() -> String) -> Checked {
        if parts.iter().any(|p| self.raw.find(p).is_some()) {
            return Err(Violation::new(
                CHECK,
                format!("{} holds an end-to-end plaintext canary", what()),
            ));
        }
        Ok(())
    }

    /// A segment of connection `conn` on the wire.
    pub(crate) fn check_wire(&self, conn: u64, data: &[u8]) -> Checked {
        if self.raw.find(data).is_some() {
            return Err(Violation::new(
                "plaintext on the wire",
                format!("an end-to-end canary crossed connection {conn} in the clear"),
            ));
        }
        Ok(())
    }

    /// An event the server's connection decrypted and hands to the driver; and the log
    /// line an adapter writes for it.
    pub(crate) fn check_event(&mut self, conn: u64, event: &ServerEvent) -> Checked {
        self.scanned += 2;
        let line = match event {
            ServerEvent::Authenticate { name, mode, .. } => {
                format!("conn={conn} name={name} mode={mode:?} handshake complete")
            }
            ServerEvent::Request(r) => {
                self.check_request(r)?;
                format!("conn={conn} request={} request", r.kind())
            }
            ServerEvent::Closed { code, by_peer } => {
                format!("conn={conn} code={code} by_peer={by_peer} connection closed")
            }
        };
        self.check_log_line(&line)
    }

    /// A line the server logs.
    pub(crate) fn check_log_line(&self, line: &str) -> Checked {
        let b = line.as_bytes();
        if self.raw.find(b).is_some() || self.decimal.find(b).is_some() {
            return Err(Violation::new(
                CHECK,
                format!("the server logged an end-to-end plaintext canary: {line}"),
            ));
        }
        Ok(())
    }

    fn check_request(&self, r: &Request) -> Checked {
        let what = || format!("a {} request the server decrypted", r.kind());
        match r {
            Request::GetPublicKey { name, .. }
            | Request::FetchPrekeys { name, .. }
            | Request::FetchKeyPackage { name, .. } => self.scan(&[name.as_bytes()], what),
            Request::SendDm { to, body, .. } => self.scan(&[to.as_bytes(), body], what),
            Request::CreateRoom { title, .. } | Request::SetRoomTitle { title, .. } => {
                self.scan(&[title.as_bytes()], what)
            }
            Request::InviteMember { name, .. } | Request::RemoveMember { name, .. } => {
                self.scan(&[name.as_bytes()], what)
            }
            Request::RoomMessage { body, .. } => self.scan(&[body], what),
            Request::UploadPrekeys { bundle, .. } => self.scan(&[bundle], what),
            Request::UploadKeyPackages { packages, .. } => {
                let parts: Vec<&[u8]> = packages.iter().map(|p| &p[..]).collect();
                self.scan(&parts, what)
            }
            Request::InitGroup { group_info, .. } => self.scan(&[group_info], what),
            Request::GroupCommit {
                commit,
                group_info,
                add,
                welcome,
                ..
            } => {
                let add = add.as_deref().unwrap_or("");
                self.scan(&[commit, group_info, add.as_bytes(), welcome], what)
            }
            Request::OpenDirect {
                peer,
                group_info,
                welcome,
                ..
            } => self.scan(&[peer.as_bytes(), group_info, welcome], what),
            Request::FetchPending { .. }
            | Request::SetStatus { .. }
            | Request::ListUsers { .. }
            | Request::Logout
            | Request::AckDm { .. }
            | Request::AckRoom { .. }
            | Request::FetchHistory { .. }
            | Request::JoinRoom { .. }
            | Request::LeaveRoom { .. }
            | Request::ListRooms { .. }
            | Request::GetGroupInfo { .. } => Ok(()),
        }
    }

    /// A reply the server sends (the frame's content before transport encryption).
    pub(crate) fn check_reply(&mut self, r: &Reply) -> Checked {
        self.scanned += 1;
        let what = || "a frame the server sent".to_string();
        match r {
            Reply::PublicKey { name, .. }
            | Reply::StatusUpdate { name, .. }
            | Reply::MemberJoined { name, .. }
            | Reply::MemberLeft { name, .. } => self.scan(&[name.as_bytes()], what),
            Reply::IncomingDm { from, body, .. }
            | Reply::RoomMessage { from, body, .. }
            | Reply::HistoryMessage { from, body, .. } => self.scan(&[from.as_bytes(), body], what),
            Reply::UserList { users, .. } => {
                let parts: Vec<&[u8]> = users.iter().map(|(n, _)| n.as_bytes()).collect();
                self.scan(&parts, what)
            }
            Reply::RoomJoined {
                title,
                members,
                admin,
                ..
            } => {
                let mut parts: Vec<&[u8]> = members.iter().map(|m| m.as_bytes()).collect();
                parts.push(title.as_bytes());
                parts.push(admin.as_bytes());
                self.scan(&parts, what)
            }
            Reply::RoomInvited { title, by, .. } => {
                self.scan(&[title.as_bytes(), by.as_bytes()], what)
            }
            Reply::RoomRemoved { by, .. } => self.scan(&[by.as_bytes()], what),
            Reply::RoomTitle { title, .. } => self.scan(&[title.as_bytes()], what),
            Reply::RoomList { rooms, .. } => {
                let parts: Vec<&[u8]> = rooms.iter().map(|r| r.title.as_bytes()).collect();
                self.scan(&parts, what)
            }
            Reply::PrekeyBundle { name, bundle, .. } => {
                let bundle = bundle.as_deref().unwrap_or(&[]);
                self.scan(&[name.as_bytes(), bundle], what)
            }
            Reply::KeyPackage { name, package, .. } => self.scan(&[name.as_bytes(), package], what),
            Reply::GroupInfo { group_info, .. } => self.scan(&[group_info], what),
            Reply::Error { text, .. } => self.scan(&[text.as_bytes()], what),
            Reply::Auth { .. }
            | Reply::MessageAck { .. }
            | Reply::RoomGap { .. }
            | Reply::HistoryDone { .. }
            | Reply::RoomLeft { .. }
            | Reply::KeyPackagesLow { .. }
            | Reply::Ok { .. }
            | Reply::PendingDone { .. }
            | Reply::Close { .. } => Ok(()),
        }
    }

    /// A store op the hub emitted.
    pub(crate) fn check_store_op(&mut self, op: &StoreOp) -> Checked {
        self.scanned += 1;
        let what = || format!("a store op the hub wrote ({})", op_name(op));
        match op {
            StoreOp::AccountCreated { name, .. }
            | StoreOp::MemberAdded { name, .. }
            | StoreOp::MemberRemoved { name, .. }
            | StoreOp::Invited { name, .. }
            | StoreOp::CursorAdvanced { name, .. } => self.scan(&[name.as_bytes()], what),
            StoreOp::DmQueued(dm) => self.scan(&[dm.from.as_bytes(), &dm.body], what),
            StoreOp::DmAcked { to, .. } => self.scan(&[to.as_bytes()], what),
            StoreOp::PrekeysStored { name, bundle } => self.scan(&[name.as_bytes(), bundle], what),
            StoreOp::RoomCreated { title, admin, .. } => {
                self.scan(&[title.as_bytes(), admin.as_bytes()], what)
            }
            StoreOp::RoomTitleSet { title, .. } => self.scan(&[title.as_bytes()], what),
            StoreOp::RoomAdminSet { admin, .. } => self.scan(&[admin.as_bytes()], what),
            StoreOp::RoomMessageLogged(m) => self.scan(&[m.from.as_bytes(), &m.body], what),
            StoreOp::GroupSet { group_info, .. } => self.scan(&[group_info], what),
            StoreOp::KeyPackageAdded(kp) => self.scan(&[kp.name.as_bytes(), &kp.package], what),
            StoreOp::KeyPackageTaken { name, package } => {
                self.scan(&[name.as_bytes(), package], what)
            }
            StoreOp::IdsReserved { .. }
            | StoreOp::RoomDeleted { .. }
            | StoreOp::LogTrimmed { .. }
            | StoreOp::DirectCreated { .. } => Ok(()),
            // A kind added since: its debug rendering (names in the clear, bytes as
            // decimal lists) is scanned as a log line would be.
            _ => self.check_log_line(&format!("{op:?}")),
        }
    }
}

/// A store op's kind, for reports.
fn op_name(op: &StoreOp) -> String {
    let s = format!("{op:?}");
    s.split(['(', ' ', '{']).next().unwrap_or("").to_string()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use cove_core::store::LoggedMessage;
    use cove_core::wire::RoomId;

    use super::*;

    #[test]
    fn the_canary_is_found_raw_and_in_a_debug_rendering() {
        let mut c = SecretCanary::new(7);
        assert!(c.bytes().starts_with(b"E2E~"));
        assert!(c.bytes().iter().all(|b| b.is_ascii_graphic()));
        let mut body = b"hello ".to_vec();
        body.extend_from_slice(c.bytes());
        let logged = |body: Vec<u8>| {
            StoreOp::RoomMessageLogged(LoggedMessage {
                room: RoomId([1; 6]),
                seq: 1,
                from: Arc::from("u1"),
                timestamp: 0,
                body: Arc::from(body),
            })
        };
        let err = c.check_store_op(&logged(body.clone())).unwrap_err();
        assert_eq!(err.check, CHECK);
        c.check_store_op(&logged(b"ciphertext".to_vec())).unwrap();
        let reply = Reply::RoomMessage {
            room: RoomId([1; 6]),
            seq: 1,
            from: Arc::from("u1"),
            timestamp: 0,
            body: Arc::from(body.clone()),
        };
        assert!(c.check_reply(&reply).is_err());
        assert!(c.check_wire(1, &body).is_err());
        assert!(c.check_log_line(&format!("{:?}", &body[..])).is_err());
        assert!(
            c.check_log_line("conn=1 request=RoomMessage request")
                .is_ok()
        );
        assert_eq!(c.scanned, 3);
    }
}
