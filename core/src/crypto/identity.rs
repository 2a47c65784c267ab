//! Long-term identities: an Ed25519 signing key plus an X25519 static key.

use super::{CryptoProvider, RUST_CRYPTO, sha256};
use rand_core::CryptoRng;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Serialized length of an [`Identity`]: Ed25519 secret ‖ X25519 secret.
pub const IDENTITY_LEN: usize = 64;
/// Length of a [`PublicIdentity::fingerprint`].
pub const FINGERPRINT_LEN: usize = 16;

/// A party's long-term secret keys: the Ed25519 signing key (its identity, which people
/// compare) and the X25519 static key used as the Noise `s`. Zeroized on drop.
///
/// The public keys are computed once, when the identity is made, with the provider it is
/// made for, so a handshake spends no time re-deriving them.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Identity {
    ed25519: [u8; 32],
    x25519: [u8; 32],
    #[zeroize(skip)]
    public: PublicIdentity,
}

impl core::fmt::Debug for Identity {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Identity")
            .field("public", &self.public())
            .finish_non_exhaustive()
    }
}

/// The public half of an [`Identity`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PublicIdentity {
    /// Ed25519 verifying key.
    pub ed25519: [u8; 32],
    /// X25519 public key (the Noise static key).
    pub x25519: [u8; 32],
}

impl PublicIdentity {
    /// A short digest for people to compare: the first 16 bytes of SHA-256 of the
    /// Ed25519 public key.
    pub fn fingerprint(&self) -> [u8; FINGERPRINT_LEN] {
        fingerprint_of(&self.ed25519)
    }
}

/// The fingerprint of an Ed25519 public key (see [`PublicIdentity::fingerprint`]).
pub fn fingerprint_of(ed25519: &[u8; 32]) -> [u8; FINGERPRINT_LEN] {
    let d = sha256(&[ed25519]);
    let mut out = [0u8; FINGERPRINT_LEN];
    out.copy_from_slice(&d[..FINGERPRINT_LEN]);
    out
}

impl Identity {
    /// A fresh identity: 64 bytes from `rng` (Ed25519 secret first, then X25519 secret).
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Identity {
        Identity::generate_with(rng, &RUST_CRYPTO)
    }

    /// A fresh identity whose public keys are computed with `provider` (the simulator's
    /// cheap provider needs its own notion of public keys).
    pub fn generate_with<R: CryptoRng + ?Sized>(
        rng: &mut R,
        provider: &dyn CryptoProvider,
    ) -> Identity {
        let mut b = Zeroizing::new([0u8; IDENTITY_LEN]);
        rng.fill_bytes(&mut b[..]);
        Identity::from_bytes_with(&b, provider)
    }

    /// Decodes `ed25519 secret ‖ x25519 secret`. Every 64-byte string is a valid identity.
    pub fn from_bytes(bytes: &[u8; IDENTITY_LEN]) -> Identity {
        Identity::from_bytes_with(bytes, &RUST_CRYPTO)
    }

    /// Like [`Identity::from_bytes`], with public keys computed by `provider`.
    pub fn from_bytes_with(bytes: &[u8; IDENTITY_LEN], provider: &dyn CryptoProvider) -> Identity {
        let mut ed25519 = [0u8; 32];
        let mut x25519 = [0u8; 32];
        ed25519.copy_from_slice(&bytes[..32]);
        x25519.copy_from_slice(&bytes[32..]);
        let public = PublicIdentity {
            ed25519: provider.ed25519_public(&ed25519),
            x25519: provider.x25519_public(&x25519),
        };
        Identity {
            ed25519,
            x25519,
            public,
        }
    }

    /// Encodes `ed25519 secret ‖ x25519 secret`, in a buffer zeroized on drop.
    pub fn to_bytes(&self) -> Zeroizing<[u8; IDENTITY_LEN]> {
        let mut b = Zeroizing::new([0u8; IDENTITY_LEN]);
        b[..32].copy_from_slice(&self.ed25519);
        b[32..].copy_from_slice(&self.x25519);
        b
    }

    /// The public keys (computed when the identity was made).
    pub fn public(&self) -> PublicIdentity {
        self.public
    }

    /// The fingerprint of the Ed25519 public key (see [`PublicIdentity::fingerprint`]).
    pub fn fingerprint(&self) -> [u8; FINGERPRINT_LEN] {
        self.public().fingerprint()
    }

    /// The Ed25519 secret key (crate-internal: used to sign the handshake).
    pub(crate) fn ed25519_secret(&self) -> &[u8; 32] {
        &self.ed25519
    }

    /// The X25519 static secret (crate-internal: the Noise `s`).
    pub(crate) fn x25519_secret(&self) -> &[u8; 32] {
        &self.x25519
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn round_trip_and_fingerprint() {
        let id = Identity::generate(&mut ChaCha20Rng::from_seed([1; 32]));
        let back = Identity::from_bytes(&id.to_bytes());
        assert_eq!(id.public(), back.public());
        assert_eq!(id.fingerprint(), fingerprint_of(&id.public().ed25519));
        assert_ne!(id.public().ed25519, id.public().x25519);
    }
}
