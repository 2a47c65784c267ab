//! The encrypted side of the server's disk: each batch made durable feeds invariant (c)
//! (entries of encrypted rooms reach the removed members' old states; a removal starts
//! watching one), and a restart rebuilds what the simulator knows of encrypted rooms and
//! their epochs from the disk.

use cove_core::e2ee::MlsCrypto;
use cove_core::e2ee::session::SecureSession;
use cove_core::store::StoreOp;

use super::super::Sim;
use super::is_secure;
use crate::model::{Checked, user_of_name};

impl Sim {
    /// A batch with `ops` is durable.
    pub(crate) fn secure_durable(&mut self, ops: &[StoreOp]) -> Checked {
        let every = self.secure.every;
        if every == 0 {
            return Ok(());
        }
        let unix = self.unix_secs();
        for op in ops {
            match op {
                StoreOp::RoomMessageLogged(m)
                    if user_of_name(&m.from).is_some_and(|u| is_secure(u, every)) =>
                {
                    self.secure.removed.logged(
                        m.room,
                        m.seq,
                        &m.from,
                        m.timestamp,
                        &m.body,
                        unix,
                    )?;
                }
                StoreOp::MemberRemoved { room, name } => {
                    let Some(x) = user_of_name(name).filter(|x| is_secure(*x, every)) else {
                        continue;
                    };
                    let Some(saved) = self.users[x]
                        .secure
                        .as_mut()
                        .map(|s| s.persisted().to_vec())
                        .filter(|s| !s.is_empty())
                    else {
                        continue;
                    };
                    // The copy an attacker keeps: the user's state as persisted now.
                    let n = (1 << 40) | self.secure.removed.states;
                    let crypto = MlsCrypto::from_seed(self.secure.session_seed(x, n));
                    let user = &self.users[x];
                    let Ok(old) =
                        SecureSession::restore(&user.identity, &user.name, crypto, &saved)
                    else {
                        continue;
                    };
                    self.secure.removed.watch(x, *room, old, unix)?;
                }
                StoreOp::RoomDeleted { room } => self.secure.removed.room_gone(*room),
                _ => {}
            }
        }
        Ok(())
    }

    /// The server restarted from its disk.
    pub(crate) fn secure_restart(&mut self) {
        let every = self.secure.every;
        let records = &self.server.durable;
        self.secure.rooms.rebuild(records, |u| is_secure(u, every));
        self.secure.epochs.restart(records);
    }
}
