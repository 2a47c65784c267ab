//! Session broken: no connection ends with a code that only a broken protocol, key
//! schedule or hub produces.

use cove_core::wire::ErrorCode;

use crate::model::{Checked, Violation};

/// Close codes that only a broken protocol, key schedule or hub produces here: the
/// simulated network never corrupts bytes, and the clients only send valid requests.
fn broken_close(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::DecryptFailed
            | ErrorCode::InvalidFormat
            | ErrorCode::ServerError
            | ErrorCode::FrameTooLarge
            | ErrorCode::UnsupportedVersion
            | ErrorCode::UnsupportedSuite
            | ErrorCode::AuthFailed
            | ErrorCode::InvalidUsername
            | ErrorCode::NotAuthenticated
    )
}

/// The server closed user `user`'s connection `conn` with `code`.
pub(crate) fn server_close(user: usize, conn: u64, code: ErrorCode) -> Checked {
    if broken_close(code) {
        return Err(Violation::new(
            "session broken",
            format!("server closed u{user}'s connection {conn} with {code:?}"),
        ));
    }
    Ok(())
}

/// User `u`'s client closed its connection `conn` with `code`.
pub(crate) fn client_close(u: usize, conn: u64, code: ErrorCode) -> Checked {
    if broken_close(code) {
        return Err(Violation::new(
            "session broken",
            format!("u{u}'s connection {conn} closed with {code:?}"),
        ));
    }
    Ok(())
}
