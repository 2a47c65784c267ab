//! One cipher suite's operations: the `CipherSuiteProvider` mls-rs asks for.

use super::aead::Aead;
use super::dh::X25519;
use super::error::ProviderError;
use super::hash::{hmac_sha256, sha256};
use super::kdf::HkdfSha256;
use super::rng::SharedRng;
use super::sign;
use super::sign::SignerCache;
use alloc::vec::Vec;
use mls_rs_core::crypto::{
    CipherSuite, CipherSuiteProvider, HpkeCiphertext, HpkePsk, HpkePublicKey, HpkeSecretKey,
    SignaturePublicKey, SignatureSecretKey,
};
use mls_rs_crypto_hpke::context::{ContextR, ContextS};
use mls_rs_crypto_hpke::dhkem::DhKem;
use mls_rs_crypto_hpke::hpke::Hpke;
use mls_rs_crypto_traits::{AeadType, DhType, KdfType, KemId};
use zeroize::Zeroizing;

/// DHKEM(X25519, HKDF-SHA256).
type Kem = DhKem<X25519, HkdfSha256>;

/// The operations of one of cove's two MLS cipher suites, handed out by
/// [`MlsCrypto::cipher_suite_provider`](mls_rs_core::crypto::CryptoProvider::cipher_suite_provider).
///
/// Both suites share X25519, HKDF-SHA256, SHA-256, HMAC-SHA256 and Ed25519; they differ
/// in the AEAD (AES-128-GCM for 0x0001, ChaCha20-Poly1305 for 0x0003). HPKE (RFC 9180,
/// base and PSK modes) is `mls-rs-crypto-hpke` over these primitives. Clones share the
/// provider's random stream.
#[derive(Clone)]
pub struct MlsCipherSuite {
    suite: CipherSuite,
    aead: Aead,
    kdf: HkdfSha256,
    dh: X25519,
    hpke: Hpke<Kem, HkdfSha256, Aead>,
    rng: SharedRng,
    signer: SignerCache,
}

impl core::fmt::Debug for MlsCipherSuite {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MlsCipherSuite")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

impl MlsCipherSuite {
    /// The provider for `suite`, or `None` when cove does not support it.
    pub(super) fn new(
        suite: CipherSuite,
        rng: &SharedRng,
        signer: &SignerCache,
    ) -> Option<MlsCipherSuite> {
        let aead = match suite {
            CipherSuite::CURVE25519_AES128 => Aead::Aes128Gcm,
            CipherSuite::CURVE25519_CHACHA => Aead::ChaCha20Poly1305,
            _ => return None,
        };
        let kem_id = KemId::DhKemX25519Sha256;
        let dh = X25519::new(rng.clone());
        let kem = DhKem::new(dh.clone(), HkdfSha256, kem_id as u16, kem_id.n_secret());
        Some(MlsCipherSuite {
            suite,
            aead,
            kdf: HkdfSha256,
            dh,
            hpke: Hpke::new(kem, HkdfSha256, Some(aead)),
            rng: rng.clone(),
            signer: signer.clone(),
        })
    }
}

impl CipherSuiteProvider for MlsCipherSuite {
    type Error = ProviderError;
    type HpkeContextS = ContextS<HkdfSha256, Aead>;
    type HpkeContextR = ContextR<HkdfSha256, Aead>;

    fn cipher_suite(&self) -> CipherSuite {
        self.suite
    }

    fn hash(&self, data: &[u8]) -> Result<Vec<u8>, ProviderError> {
        Ok(sha256(data))
    }

    fn mac(&self, key: &[u8], data: &[u8]) -> Result<Vec<u8>, ProviderError> {
        hmac_sha256(key, data)
    }

    fn aead_seal(
        &self,
        key: &[u8],
        data: &[u8],
        aad: Option<&[u8]>,
        nonce: &[u8],
    ) -> Result<Vec<u8>, ProviderError> {
        self.aead.seal(key, data, aad, nonce)
    }

    fn aead_open(
        &self,
        key: &[u8],
        ciphertext: &[u8],
        aad: Option<&[u8]>,
        nonce: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, ProviderError> {
        self.aead
            .open(key, ciphertext, aad, nonce)
            .map(Zeroizing::new)
    }

    fn aead_key_size(&self) -> usize {
        self.aead.key_size()
    }

    fn aead_nonce_size(&self) -> usize {
        self.aead.nonce_size()
    }

    fn kdf_extract(&self, salt: &[u8], ikm: &[u8]) -> Result<Zeroizing<Vec<u8>>, ProviderError> {
        self.kdf.extract(salt, ikm).map(Zeroizing::new)
    }

    fn kdf_expand(
        &self,
        prk: &[u8],
        info: &[u8],
        len: usize,
    ) -> Result<Zeroizing<Vec<u8>>, ProviderError> {
        self.kdf.expand(prk, info, len).map(Zeroizing::new)
    }

    fn kdf_extract_size(&self) -> usize {
        self.kdf.extract_size()
    }

    fn hpke_seal(
        &self,
        remote_key: &HpkePublicKey,
        info: &[u8],
        aad: Option<&[u8]>,
        pt: &[u8],
    ) -> Result<HpkeCiphertext, ProviderError> {
        Ok(self.hpke.seal(remote_key, info, None, aad, pt)?)
    }

    fn hpke_seal_psk(
        &self,
        remote_key: &HpkePublicKey,
        info: &[u8],
        aad: Option<&[u8]>,
        pt: &[u8],
        psk: HpkePsk<'_>,
    ) -> Result<HpkeCiphertext, ProviderError> {
        Ok(self.hpke.seal(remote_key, info, Some(psk), aad, pt)?)
    }

    fn hpke_open(
        &self,
        ciphertext: &HpkeCiphertext,
        local_secret: &HpkeSecretKey,
        local_public: &HpkePublicKey,
        info: &[u8],
        aad: Option<&[u8]>,
    ) -> Result<Zeroizing<Vec<u8>>, ProviderError> {
        Ok(self
            .hpke
            .open(ciphertext, local_secret, local_public, info, None, aad)?)
    }

    fn hpke_open_psk(
        &self,
        ciphertext: &HpkeCiphertext,
        local_secret: &HpkeSecretKey,
        local_public: &HpkePublicKey,
        info: &[u8],
        aad: Option<&[u8]>,
        psk: HpkePsk<'_>,
    ) -> Result<Zeroizing<Vec<u8>>, ProviderError> {
        Ok(self
            .hpke
            .open(ciphertext, local_secret, local_public, info, Some(psk), aad)?)
    }

    fn hpke_setup_s(
        &self,
        remote_key: &HpkePublicKey,
        info: &[u8],
    ) -> Result<(Vec<u8>, Self::HpkeContextS), ProviderError> {
        Ok(self.hpke.setup_sender(remote_key, info, None)?)
    }

    fn hpke_setup_r(
        &self,
        kem_output: &[u8],
        local_secret: &HpkeSecretKey,
        local_public: &HpkePublicKey,
        info: &[u8],
    ) -> Result<Self::HpkeContextR, ProviderError> {
        Ok(self
            .hpke
            .setup_receiver(kem_output, local_secret, local_public, info, None)?)
    }

    fn kem_derive(&self, ikm: &[u8]) -> Result<(HpkeSecretKey, HpkePublicKey), ProviderError> {
        Ok(self.hpke.derive(ikm)?)
    }

    fn kem_generate(&self) -> Result<(HpkeSecretKey, HpkePublicKey), ProviderError> {
        Ok(self.hpke.generate()?)
    }

    /// The same check DHKEM makes, called directly so the error stays typed.
    fn kem_public_key_validate(&self, key: &HpkePublicKey) -> Result<(), ProviderError> {
        self.dh.public_key_validate(key)
    }

    fn random_bytes(&self, out: &mut [u8]) -> Result<(), ProviderError> {
        self.rng.fill(out);
        Ok(())
    }

    fn signature_key_generate(
        &self,
    ) -> Result<(SignatureSecretKey, SignaturePublicKey), ProviderError> {
        Ok(sign::generate(&self.rng))
    }

    fn signature_key_derive_public(
        &self,
        secret_key: &SignatureSecretKey,
    ) -> Result<SignaturePublicKey, ProviderError> {
        sign::derive_public(secret_key)
    }

    fn sign(&self, secret_key: &SignatureSecretKey, data: &[u8]) -> Result<Vec<u8>, ProviderError> {
        sign::sign(&self.signer, secret_key, data)
    }

    fn verify(
        &self,
        public_key: &SignaturePublicKey,
        signature: &[u8],
        data: &[u8],
    ) -> Result<(), ProviderError> {
        sign::verify(public_key, signature, data)
    }
}
