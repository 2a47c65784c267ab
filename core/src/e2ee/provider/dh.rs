//! X25519 as the Diffie-Hellman group of DHKEM(X25519, HKDF-SHA256) (RFC 9180 §4.1, §7.1).

use super::error::ProviderError;
use super::rng::SharedRng;
use alloc::vec::Vec;
use mls_rs_core::crypto::{HpkePublicKey, HpkeSecretKey};
use mls_rs_crypto_traits::{DhType, SamplingMethod};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

/// Length of an X25519 secret key, public key and shared secret.
const KEY_LEN: usize = 32;

/// X25519 on x25519-dalek, with key generation drawn from the provider's stream.
///
/// Secret keys are the 32 raw bytes (RFC 7748 clamping is applied when they are used),
/// public keys the 32-byte u-coordinate, as RFC 9180 §7.1.1 and §7.1.2 serialize them.
#[derive(Clone, Debug)]
pub(super) struct X25519 {
    rng: SharedRng,
}

impl X25519 {
    pub(super) fn new(rng: SharedRng) -> X25519 {
        X25519 { rng }
    }
}

fn secret(key: &HpkeSecretKey) -> Result<StaticSecret, ProviderError> {
    let bytes: Zeroizing<[u8; KEY_LEN]> = Zeroizing::new(
        key.as_ref()
            .try_into()
            .map_err(|_| ProviderError::InvalidKemSecretKey)?,
    );
    Ok(StaticSecret::from(*bytes))
}

fn public(key: &HpkePublicKey) -> Result<PublicKey, ProviderError> {
    let bytes: [u8; KEY_LEN] = key
        .as_ref()
        .try_into()
        .map_err(|_| ProviderError::InvalidKemPublicKey)?;
    Ok(PublicKey::from(bytes))
}

/// The shared secret of `secret` and `public`, refusing an all-zero (non-contributory)
/// result as RFC 9180 §7.1.4 requires.
fn agree(
    secret: &StaticSecret,
    public: &PublicKey,
) -> Result<Zeroizing<[u8; KEY_LEN]>, ProviderError> {
    let shared = secret.diffie_hellman(public);
    if !shared.was_contributory() {
        return Err(ProviderError::NonContributory);
    }
    Ok(Zeroizing::new(shared.to_bytes()))
}

impl DhType for X25519 {
    type Error = ProviderError;

    fn dh(
        &self,
        secret_key: &HpkeSecretKey,
        public_key: &HpkePublicKey,
    ) -> Result<Vec<u8>, ProviderError> {
        let shared = agree(&secret(secret_key)?, &public(public_key)?)?;
        // The caller (DHKEM) holds the returned vector in a zeroizing wrapper.
        Ok(shared.to_vec())
    }

    fn generate(&self) -> Result<(HpkeSecretKey, HpkePublicKey), ProviderError> {
        let sk = self.rng.bytes32();
        let pk = PublicKey::from(&StaticSecret::from(*sk));
        Ok((sk.to_vec().into(), pk.to_bytes().to_vec().into()))
    }

    fn to_public(&self, secret_key: &HpkeSecretKey) -> Result<HpkePublicKey, ProviderError> {
        let pk = PublicKey::from(&secret(secret_key)?);
        Ok(pk.to_bytes().to_vec().into())
    }

    fn bitmask_for_rejection_sampling(&self) -> SamplingMethod {
        // Every 32-byte string is an X25519 secret key: no rejection sampling (RFC 9180 §7.1.3).
        SamplingMethod::HpkeWithoutBitmask
    }

    fn secret_key_size(&self) -> usize {
        KEY_LEN
    }

    fn public_key_size(&self) -> usize {
        KEY_LEN
    }

    /// Accepts 32-byte keys that are not low-order points. A clamped scalar is a multiple
    /// of the cofactor 8, so it sends exactly the points of order dividing 8 to zero:
    /// one fixed-scalar multiplication tells them apart. mls-rs asks this of a received
    /// KeyPackage's init key, so such a package is refused before anyone encrypts to it
    /// (every other use of a low-order key fails in [`DhType::dh`]).
    fn public_key_validate(&self, key: &HpkePublicKey) -> Result<(), ProviderError> {
        let probe = StaticSecret::from([0x5a; KEY_LEN]);
        agree(&probe, &public(key)?)
            .map(|_| ())
            .map_err(|_| ProviderError::InvalidKemPublicKey)
    }
}
