//! The body canary: 16 seeded bytes at the start of every body a client sends. It must
//! never cross the wire in the clear, and — once bodies are end-to-end encrypted, behind
//! `--check-e2e-canary` — never reach the server's decrypted requests or its store.

use cove_core::hub::Request;
use cove_core::store::StoreOp;
use memchr::memmem;

use crate::model::{Checked, Violation};

/// The canary and its searcher.
pub(crate) struct Canary {
    bytes: [u8; 16],
    finder: memmem::Finder<'static>,
    /// Also check what the server decrypts and stores (`--check-e2e-canary`).
    at_server: bool,
}

impl Canary {
    /// A canary of `bytes`; `at_server` also checks the server's requests and store.
    pub(crate) fn new(bytes: [u8; 16], at_server: bool) -> Canary {
        Canary {
            bytes,
            finder: memmem::Finder::new(&bytes).into_owned(),
            at_server,
        }
    }

    /// The canary bytes, for the workload to put in bodies.
    pub(crate) fn bytes(&self) -> &[u8; 16] {
        &self.bytes
    }

    /// A segment of connection `conn` on the wire.
    pub(crate) fn check_wire(&self, conn: u64, data: &[u8]) -> Checked {
        if self.finder.find(data).is_some() {
            return Err(Violation::new(
                "plaintext on the wire",
                format!("a body canary crossed connection {conn} in the clear"),
            ));
        }
        Ok(())
    }

    /// A request the server decrypted.
    pub(crate) fn check_request(&self, request: &Request) -> Checked {
        if !self.at_server {
            return Ok(());
        }
        let body = match request {
            Request::RoomMessage { body, .. } | Request::SendDm { body, .. } => body,
            _ => return Ok(()),
        };
        if self.finder.find(body).is_some() {
            return Err(Violation::new(
                "plaintext at the server",
                "the server decrypted a request whose body holds the plaintext canary \
                 (bodies are not end-to-end encrypted yet)",
            ));
        }
        Ok(())
    }

    /// A store op the hub emitted.
    pub(crate) fn check_store_op(&self, op: &StoreOp) -> Checked {
        if self.at_server
            && let StoreOp::DmQueued(dm) = op
            && self.finder.find(&dm.body).is_some()
        {
            return Err(Violation::new(
                "plaintext at the server",
                format!(
                    "DM {} from {} stored with a readable body canary",
                    dm.msg_id, dm.from
                ),
            ));
        }
        Ok(())
    }
}
