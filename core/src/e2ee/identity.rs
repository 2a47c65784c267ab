//! Who a member is: a Basic credential holding a cove name, and an Ed25519 signature key.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use mls_rs_core::error::IntoAnyError;
use mls_rs_core::extension::ExtensionList;
use mls_rs_core::identity::{
    CredentialType, IdentityProvider, MemberValidationContext, SigningIdentity,
};
use mls_rs_core::time::MlsTime;

use crate::wire::valid_name;

/// Length of an Ed25519 public key.
pub const ED25519_KEY_LEN: usize = 32;

/// The cove name and Ed25519 key of a signing identity, if it is one cove accepts: a Basic
/// credential whose identity is a valid cove name, and a 32-byte signature key.
pub(crate) fn name_and_key(id: &SigningIdentity) -> Option<(String, [u8; ED25519_KEY_LEN])> {
    let basic = id.credential.as_basic()?;
    let name = core::str::from_utf8(basic.identifier()).ok()?;
    if !valid_name(name) {
        return None;
    }
    let key: [u8; ED25519_KEY_LEN] = id.signature_key.as_bytes().try_into().ok()?;
    Some((String::from(name), key))
}

/// A credential cove does not accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadCredential;

impl fmt::Display for BadCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("credential is not a cove name with an Ed25519 key")
    }
}

impl IntoAnyError for BadCredential {}

/// cove's mls-rs identity provider: a member's identity is its name. Whether the key
/// behind a name is the one the user trusts is checked by the layer's pins, after each
/// processed message, not here.
#[derive(Clone, Copy, Debug, Default)]
pub struct CoveIdentity;

impl CoveIdentity {
    fn check(id: &SigningIdentity) -> Result<String, BadCredential> {
        name_and_key(id).map(|(n, _)| n).ok_or(BadCredential)
    }
}

impl IdentityProvider for CoveIdentity {
    type Error = BadCredential;

    fn validate_member(
        &self,
        signing_identity: &SigningIdentity,
        _timestamp: Option<MlsTime>,
        _context: MemberValidationContext<'_>,
    ) -> Result<(), Self::Error> {
        Self::check(signing_identity).map(|_| ())
    }

    fn validate_external_sender(
        &self,
        _signing_identity: &SigningIdentity,
        _timestamp: Option<MlsTime>,
        _extensions: Option<&ExtensionList>,
    ) -> Result<(), Self::Error> {
        // cove groups have no external senders.
        Err(BadCredential)
    }

    fn identity(
        &self,
        signing_identity: &SigningIdentity,
        _extensions: &ExtensionList,
    ) -> Result<Vec<u8>, Self::Error> {
        Self::check(signing_identity).map(String::into_bytes)
    }

    fn valid_successor(
        &self,
        predecessor: &SigningIdentity,
        successor: &SigningIdentity,
        _extensions: &ExtensionList,
    ) -> Result<bool, Self::Error> {
        Ok(Self::check(predecessor)? == Self::check(successor)?)
    }

    fn supported_types(&self) -> Vec<CredentialType> {
        alloc::vec![CredentialType::BASIC]
    }
}
