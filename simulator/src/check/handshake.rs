//! Handshake identity: each side ends up talking to whom it should.

use crate::model::{Checked, Violation, user_of_name};

/// The server authenticated the connection user `user` opened as `name` with `key`:
/// that must be the user's own name and key (the simulated clients never lie).
pub(crate) fn authenticated_as_own_user(
    user: usize,
    name: &str,
    key: &[u8; 32],
    own_key: &[u8; 32],
) -> Checked {
    if user_of_name(name) != Some(user) || key != own_key {
        return Err(Violation::new(
            "handshake identity",
            format!("connection of u{user} authenticated as {name}"),
        ));
    }
    Ok(())
}

/// User `u`'s client saw the server's key `key`: it must be the one server's.
pub(crate) fn server_identity(u: usize, key: &[u8; 32], server_key: &[u8; 32]) -> Checked {
    if key != server_key {
        return Err(Violation::new(
            "server identity",
            format!("u{u} saw another server key"),
        ));
    }
    Ok(())
}
