//! Files the `cove` program keeps: identity keys (mode 0600), the pinned server keys
//! (`known_servers`, like SSH's `known_hosts`) and, per account, the last direct-message
//! ID shown (so a reconnect never shows a message twice).
//!
//! Layout of a client data directory:
//!
//! ```text
//! keys/NICK.key      the identity of nickname NICK (mode 0600)
//! known_servers      one line per server: "ADDRESS HEX-ED25519-KEY"
//! last_dm            one line per account: "ADDRESS NICK LAST-DM-ID"
//! ```
//!
//! A server data directory holds `server.key` (its identity, mode 0600) and `cove.db`.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use cove_core::crypto::{FINGERPRINT_LEN, IDENTITY_LEN, Identity, fingerprint_of};
use rand_core::UnwrapErr;

/// First line of an identity file; the second is the 64-byte secret in hex.
const IDENTITY_HEADER: &str = "cove-identity-v1";

/// Why a file could not be used.
#[derive(Debug)]
pub enum FileError {
    /// Reading or writing failed.
    Io(PathBuf, io::Error),
    /// The file exists but does not hold what cove writes.
    Malformed(PathBuf, String),
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            FileError::Malformed(p, why) => write!(f, "{}: {why}", p.display()),
        }
    }
}

impl std::error::Error for FileError {}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> FileError + '_ {
    move |e| FileError::Io(path.to_path_buf(), e)
}

/// Creates `dir` (and parents) with mode 0700 if missing.
pub fn ensure_private_dir(dir: &Path) -> Result<(), FileError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_err(dir))
}

/// Writes `contents` to a new file at `path` with mode 0600 and syncs it. Refuses to
/// overwrite an existing file.
pub fn write_secret_file(path: &Path, contents: &[u8]) -> Result<(), FileError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        ensure_private_dir(parent)?;
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err(path))?;
    f.write_all(contents).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

/// Replaces the file at `path` atomically (write a temporary file, sync, rename, sync
/// the directory so the rename itself survives a crash).
pub fn replace_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), FileError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        ensure_private_dir(parent)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .map_err(io_err(&tmp))?;
        f.write_all(contents).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
    }
    fs::rename(&tmp, path).map_err(io_err(path))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// A fingerprint as people compare it: hex in groups of four, e.g. `3f2a 9c01 ...`.
pub fn format_fingerprint(fp: &[u8; FINGERPRINT_LEN]) -> String {
    let hex = hex::encode(fp);
    hex.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The fingerprint of an Ed25519 public key, formatted.
pub fn key_fingerprint(key: &[u8; 32]) -> String {
    format_fingerprint(&fingerprint_of(key))
}

/// Generates a fresh identity from the OS's entropy.
pub fn generate_identity() -> Identity {
    // The OS CSPRNG failing is not recoverable; `UnwrapErr` panics with its error.
    Identity::generate(&mut UnwrapErr(getrandom::SysRng))
}

/// Writes `identity` to a new file at `path` (mode 0600).
pub fn save_identity(path: &Path, identity: &Identity) -> Result<(), FileError> {
    let secret = identity.to_bytes();
    let text = format!("{IDENTITY_HEADER}\n{}\n", hex::encode(&secret[..]));
    write_secret_file(path, text.as_bytes())
}

/// Reads an identity written by [`save_identity`]. Logs a warning when the file is
/// readable by others.
pub fn load_identity(path: &Path) -> Result<Identity, FileError> {
    let meta = fs::metadata(path).map_err(io_err(path))?;
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            "identity key file is readable by other users; run: chmod 600 {}",
            path.display()
        );
    }
    let text = fs::read_to_string(path).map_err(io_err(path))?;
    let mut lines = text.lines();
    if lines.next() != Some(IDENTITY_HEADER) {
        return Err(FileError::Malformed(
            path.to_path_buf(),
            format!("not a cove identity file (first line must be {IDENTITY_HEADER})"),
        ));
    }
    let hex_line = lines.next().unwrap_or("").trim();
    let bytes = hex::decode(hex_line)
        .map_err(|e| FileError::Malformed(path.to_path_buf(), format!("bad hex: {e}")))?;
    let secret: [u8; IDENTITY_LEN] = bytes.as_slice().try_into().map_err(|_| {
        FileError::Malformed(
            path.to_path_buf(),
            format!("key is {} bytes, expected {IDENTITY_LEN}", bytes.len()),
        )
    })?;
    Ok(Identity::from_bytes(&secret))
}

/// Loads the identity at `path`, or generates and saves one if there is none.
/// Returns whether it was created.
pub fn load_or_create_identity(path: &Path) -> Result<(Identity, bool), FileError> {
    if path.exists() {
        return Ok((load_identity(path)?, false));
    }
    let identity = generate_identity();
    save_identity(path, &identity)?;
    Ok((identity, true))
}

/// Where the identity of nickname `nick` lives in a client data directory.
pub fn identity_path(data: &Path, nick: &str) -> PathBuf {
    data.join("keys").join(format!("{nick}.key"))
}

/// Pinned server keys, like SSH's `known_hosts`: one `ADDRESS HEX-KEY` line per server.
#[derive(Debug)]
pub struct KnownServers {
    path: PathBuf,
    entries: Vec<(String, [u8; 32])>,
}

impl KnownServers {
    /// Reads the file (a missing file is an empty list).
    pub fn load(path: &Path) -> Result<KnownServers, FileError> {
        let mut entries = Vec::new();
        match fs::read_to_string(path) {
            Ok(text) => {
                for (i, line) in text.lines().enumerate() {
                    let line = line.trim();
                    if line.is_empty() || line.starts_with('#') {
                        continue;
                    }
                    let bad = || {
                        FileError::Malformed(
                            path.to_path_buf(),
                            format!("line {}: expected ADDRESS HEX-KEY", i + 1),
                        )
                    };
                    let (addr, key) = line.split_once(char::is_whitespace).ok_or_else(bad)?;
                    let key = hex::decode(key.trim()).map_err(|_| bad())?;
                    let key: [u8; 32] = key.as_slice().try_into().map_err(|_| bad())?;
                    entries.push((addr.to_string(), key));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(FileError::Io(path.to_path_buf(), e)),
        }
        Ok(KnownServers {
            path: path.to_path_buf(),
            entries,
        })
    }

    /// The key pinned for `addr`.
    pub fn get(&self, addr: &str) -> Option<[u8; 32]> {
        self.entries
            .iter()
            .find(|(a, _)| a == addr)
            .map(|(_, k)| *k)
    }

    /// Pins `key` for `addr` (replacing any earlier key) and saves the file.
    pub fn pin(&mut self, addr: &str, key: [u8; 32]) -> Result<(), FileError> {
        self.entries.retain(|(a, _)| a != addr);
        self.entries.push((addr.to_string(), key));
        let mut text = String::from("# cove known servers: ADDRESS ED25519-KEY (hex)\n");
        for (a, k) in &self.entries {
            text.push_str(&format!("{a} {}\n", hex::encode(k)));
        }
        replace_file(&self.path, text.as_bytes(), 0o600)
    }
}

/// The last direct-message ID shown, per server and nickname.
#[derive(Debug)]
pub struct DmCursors {
    path: PathBuf,
}

impl DmCursors {
    /// The cursors file at `path`.
    pub fn new(path: &Path) -> DmCursors {
        DmCursors {
            path: path.to_path_buf(),
        }
    }

    fn read(&self) -> Result<Vec<(String, String, u64)>, FileError> {
        let text = match fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(FileError::Io(self.path.clone(), e)),
        };
        let mut out = Vec::new();
        for line in text.lines() {
            let mut parts = line.split_whitespace();
            let (a, n, id) = (parts.next(), parts.next(), parts.next());
            if let (Some(a), Some(n), Some(Ok(id))) = (a, n, id.map(str::parse)) {
                out.push((a.to_string(), n.to_string(), id));
            }
        }
        Ok(out)
    }

    /// The last ID shown to `nick` on `server` (0 if none).
    pub fn get(&self, server: &str, nick: &str) -> Result<u64, FileError> {
        Ok(self
            .read()?
            .into_iter()
            .find(|(a, n, _)| a == server && n == nick)
            .map_or(0, |(_, _, id)| id))
    }

    /// Records `id` for `nick` on `server`, if higher than what is stored.
    pub fn set(&self, server: &str, nick: &str, id: u64) -> Result<(), FileError> {
        let mut all = self.read()?;
        match all.iter_mut().find(|(a, n, _)| a == server && n == nick) {
            Some(entry) if entry.2 >= id => return Ok(()),
            Some(entry) => entry.2 = id,
            None => all.push((server.to_string(), nick.to_string(), id)),
        }
        let mut text = String::new();
        for (a, n, i) in &all {
            text.push_str(&format!("{a} {n} {i}\n"));
        }
        replace_file(&self.path, text.as_bytes(), 0o600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cove-files-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn identity_round_trips_with_mode_0600_and_is_never_overwritten() {
        let dir = temp_dir("id");
        let path = identity_path(&dir, "alice");
        let (id, created) = load_or_create_identity(&path).expect("create");
        assert!(created);
        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (again, created) = load_or_create_identity(&path).expect("load");
        assert!(!created);
        assert_eq!(again.public(), id.public());
        assert!(save_identity(&path, &generate_identity()).is_err());
        fs::write(&path, "garbage\n").expect("write");
        assert!(matches!(
            load_identity(&path),
            Err(FileError::Malformed(..))
        ));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn known_servers_pin_and_replace() {
        let dir = temp_dir("known");
        let path = dir.join("known_servers");
        let mut k = KnownServers::load(&path).expect("empty");
        assert_eq!(k.get("127.0.0.1:7878"), None);
        k.pin("127.0.0.1:7878", [1; 32]).expect("pin");
        k.pin("example:1", [2; 32]).expect("pin");
        k.pin("127.0.0.1:7878", [3; 32]).expect("repin");
        let k = KnownServers::load(&path).expect("load");
        assert_eq!(k.get("127.0.0.1:7878"), Some([3; 32]));
        assert_eq!(k.get("example:1"), Some([2; 32]));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn dm_cursors_only_move_forward() {
        let dir = temp_dir("cursor");
        let c = DmCursors::new(&dir.join("last_dm"));
        assert_eq!(c.get("s", "bob").expect("get"), 0);
        c.set("s", "bob", 7).expect("set");
        c.set("s", "bob", 3).expect("set");
        c.set("s", "alice", 9).expect("set");
        assert_eq!(c.get("s", "bob").expect("get"), 7);
        assert_eq!(c.get("s", "alice").expect("get"), 9);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn fingerprints_are_grouped_hex() {
        let fp = [0xAB; FINGERPRINT_LEN];
        let s = format_fingerprint(&fp);
        assert!(s.starts_with("abab abab"));
        assert_eq!(s.split(' ').count(), FINGERPRINT_LEN / 2);
    }
}
