//! The account's end-to-end encryption state on disk: its MLS groups (one per room and
//! direct conversation), KeyPackage secrets and pinned contact keys, as
//! `SecureSession::export_state` gives them. Per server and account, like the read markers:
//!
//! ```text
//! mls/SERVER/NICK.state   mode 0600, in a 0700 directory; replaced atomically
//! ```
//!
//! `SERVER` is the address as given to `--server`, with every byte other than ASCII
//! letters, digits, `-`, `_` and `.` (and a leading `.`) written as `%XX`, so any address
//! is one safe file name. The state holds secret keys: keep it like the identity key.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::files::{FileError, replace_file};

/// Where the state of `nick` on `server` lives in the client data directory `data`.
pub(super) fn state_path(data: &Path, server: &str, nick: &str) -> PathBuf {
    data.join("mls")
        .join(server_dir(server))
        .join(format!("{nick}.state"))
}

/// The server address as one file name (see the module docs).
fn server_dir(server: &str) -> String {
    let mut out = String::with_capacity(server.len());
    for (i, b) in server.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (b == b'.' && i > 0);
        if plain {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() {
        out.push_str("%00");
    }
    out
}

/// The saved state, if there is one. Returns whether the file is readable by others too
/// (the caller warns).
pub(super) fn load(path: &Path) -> Result<Option<(Vec<u8>, bool)>, FileError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(FileError::Io(path.to_path_buf(), e)),
    };
    let exposed = fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o077 != 0)
        .unwrap_or(false);
    Ok(Some((bytes, exposed)))
}

/// Replaces the saved state: a temporary file, synced, renamed over the old one (mode 0600).
pub(super) fn save(path: &Path, state: &[u8]) -> Result<(), FileError> {
    replace_file(path, state, 0o600)
}

/// Moves a state that no longer belongs to the account aside (`NICK.state.old`), keeping
/// it rather than deleting keys. Returns where it went.
pub(super) fn set_aside(path: &Path) -> Result<PathBuf, FileError> {
    let mut old = path.as_os_str().to_os_string();
    old.push(".old");
    let old = PathBuf::from(old);
    fs::rename(path, &old).map_err(|e| FileError::Io(path.to_path_buf(), e))?;
    Ok(old)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cove-mls-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn every_address_is_one_safe_file_name() {
        assert_eq!(server_dir("127.0.0.1:7878"), "127.0.0.1%3A7878");
        assert_eq!(
            server_dir("chat.example.org:7878"),
            "chat.example.org%3A7878"
        );
        assert_eq!(server_dir("[::1]:7878"), "%5B%3A%3A1%5D%3A7878");
        assert_eq!(server_dir(".."), "%2E.");
        assert_eq!(server_dir("a/b"), "a%2Fb");
        assert_eq!(server_dir(""), "%00");
        assert_ne!(server_dir("a:b"), server_dir("a_b"));
        let p = state_path(Path::new("/d"), "host:1", "bob");
        assert_eq!(p, Path::new("/d/mls/host%3A1/bob.state"));
    }

    #[test]
    fn state_is_saved_private_replaced_and_set_aside() {
        let dir = temp_dir("save");
        let path = state_path(&dir, "127.0.0.1:1", "alice");
        assert!(load(&path).expect("missing is fine").is_none());
        save(&path, b"one").expect("save");
        save(&path, b"two").expect("replace");
        let (bytes, exposed) = load(&path).expect("load").expect("saved");
        assert_eq!(bytes, b"two");
        assert!(!exposed);
        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let parent = path.parent().expect("parent");
        let mode = fs::metadata(parent).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let leftovers: Vec<_> = fs::read_dir(parent)
            .expect("list")
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "no temporary files left: {leftovers:?}");
        let old = set_aside(&path).expect("aside");
        assert!(load(&path).expect("load").is_none());
        assert_eq!(fs::read(&old).expect("kept"), b"two");
        let _ = fs::remove_dir_all(&dir);
    }
}
