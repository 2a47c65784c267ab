//! Settings of the E2EE layer and the limits it keeps to.

use mls_rs::CipherSuite;

/// Most groups one account keeps: active rooms, external joins waiting for the server and
/// direct groups waiting for their room.
pub const MAX_GROUPS: usize = 256;
/// Most direct groups waiting for the server to name their room.
pub const MAX_PENDING_DIRECT: usize = 16;
/// Most key-package secrets kept (the server holds at most 16 packages and one last-resort
/// package per account; the rest covers packages handed out whose Welcome has not arrived).
pub const MAX_KEY_PACKAGE_SECRETS: usize = 64;
/// Most last-resort key-package secrets kept: the current one and the one it replaced.
pub const MAX_LAST_RESORT: usize = 2;
/// Most pinned contact keys. Past this, new names are not pinned (and not checked).
pub const MAX_PINS: usize = 4096;
/// Prior epochs whose secrets are kept per group, so application messages sent just before
/// a Commit still decrypt after it: the hub accepts messages up to 4 epochs old.
pub const PRIOR_EPOCHS: usize = 4;
/// Clock skew allowed for key packages: their lifetime starts this many seconds before the
/// time they are made.
pub const KEY_PACKAGE_SKEW_SECS: u64 = 3600;
/// Latest time accepted (9999-12-31): later inputs are clamped, so lifetimes cannot overflow.
pub const MAX_UNIX_SECS: u64 = 253_402_300_799;
/// Length of a group ID (random bytes from the injected crypto provider).
pub const GROUP_ID_LEN: usize = 16;
/// Largest plaintext [`super::E2ee::encrypt`] takes: with MLS framing, signature and padding
/// (at most 1/9 more) it stays under the room body limit ([`crate::wire::MAX_BODY_LEN`]).
pub const MAX_PLAINTEXT: usize = 56_000;

/// When a member refreshes its keys with an empty Commit (post-compromise security): after
/// `max_messages` messages sent, or `max_secs` seconds, since its last Commit in the group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpdatePolicy {
    /// Messages sent since one's last Commit that call for an update. Default 100.
    pub max_messages: u32,
    /// Seconds since one's last Commit (or joining) that call for an update. Default one
    /// week (604,800).
    pub max_secs: u64,
}

impl Default for UpdatePolicy {
    fn default() -> Self {
        UpdatePolicy {
            max_messages: 100,
            max_secs: 7 * 24 * 3600,
        }
    }
}

/// Settings of an [`super::E2ee`]. They are not part of the exported state: the app passes
/// them again after a restart ([`super::E2ee::configure`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct E2eeConfig {
    /// When to refresh keys ([`super::E2ee::needs_update`]).
    pub update: UpdatePolicy,
    /// Cipher suite of the groups and key packages this account makes (groups made by
    /// others use theirs). Default `MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519` (0x0001);
    /// 0x0003 (ChaCha20-Poly1305) suits boards without AES instructions. A key package
    /// can only join a group of its own suite: a deployment picks one.
    pub cipher_suite: CipherSuite,
    /// Lifetime of the key packages made, in seconds. Default 90 days.
    pub key_package_lifetime_secs: u64,
}

impl Default for E2eeConfig {
    fn default() -> Self {
        E2eeConfig {
            update: UpdatePolicy::default(),
            cipher_suite: CipherSuite::CURVE25519_AES128,
            key_package_lifetime_secs: 90 * 24 * 3600,
        }
    }
}
