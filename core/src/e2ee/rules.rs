//! cove's MLS rules: what a Commit may contain and how messages are framed.

use alloc::collections::BTreeSet;
use alloc::string::String;
use core::fmt;

use mls_rs::MlsRules;
use mls_rs::client_builder::PaddingMode;
use mls_rs::group::{GroupContext, Roster};
use mls_rs::mls_rules::{
    CommitDirection, CommitOptions, CommitSource, EncryptionOptions, ProposalBundle,
};
use mls_rs_core::error::IntoAnyError;

use super::identity::name_and_key;

/// A Commit cove does not accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RuleError {
    /// Two members would have the same name.
    DuplicateName,
    /// A member whose credential is not a cove name.
    BadCredential,
    /// A proposal type cove groups do not use (ReInit, group context extensions; PSK and
    /// custom proposals are not built in).
    Unsupported,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleError::DuplicateName => f.write_str("two members with the same name"),
            RuleError::BadCredential => f.write_str("a member without a cove name"),
            RuleError::Unsupported => f.write_str("proposal type not used by cove"),
        }
    }
}

impl IntoAnyError for RuleError {}

/// The rules every cove client applies, to the Commits it makes and to those it receives
/// (members must agree, or the group forks):
///
/// - names stay unique in a group: a Commit may not add a name already present unless it
///   removes that member too (how a member who lost its state rejoins);
/// - only Add, Remove and ExternalInit proposals (and empty Commits);
/// - every Commit carries an update path (post-compromise security for each change), the
///   Welcome carries the ratchet tree, and each Commit yields a GroupInfo with the tree and
///   the external public key, so anyone allowed in can join by external commit;
/// - Commits and application messages from members are PrivateMessages (the hub reads only
///   their cleartext header), padded with Padmé (at most 1/9 larger).
#[derive(Clone, Copy, Debug, Default)]
pub struct CoveRules;

impl MlsRules for CoveRules {
    type Error = RuleError;

    fn filter_proposals(
        &self,
        _direction: CommitDirection,
        source: CommitSource,
        current_roster: &Roster,
        _current_context: &GroupContext,
        proposals: ProposalBundle,
    ) -> Result<ProposalBundle, Self::Error> {
        if !proposals.reinit_proposals().is_empty()
            || !proposals.group_context_ext_proposals().is_empty()
        {
            return Err(RuleError::Unsupported);
        }
        let removed: BTreeSet<u32> = proposals
            .remove_proposals()
            .iter()
            .map(|r| r.proposal.to_remove())
            .collect();
        let mut names: BTreeSet<String> = BTreeSet::new();
        for m in current_roster.members_iter() {
            if removed.contains(&m.index) {
                continue;
            }
            let (name, _) = name_and_key(&m.signing_identity).ok_or(RuleError::BadCredential)?;
            if !names.insert(name) {
                return Err(RuleError::DuplicateName);
            }
        }
        let added = proposals
            .add_proposals()
            .iter()
            .map(|a| a.proposal.key_package().signing_identity());
        let joiner = match &source {
            CommitSource::NewMember(id) => Some(id),
            CommitSource::ExistingMember(_) => None,
        };
        for id in added.chain(joiner) {
            let (name, _) = name_and_key(id).ok_or(RuleError::BadCredential)?;
            if !names.insert(name) {
                return Err(RuleError::DuplicateName);
            }
        }
        Ok(proposals)
    }

    fn commit_options(
        &self,
        _new_roster: &Roster,
        _new_context: &GroupContext,
        _proposals: &ProposalBundle,
    ) -> Result<CommitOptions, Self::Error> {
        Ok(CommitOptions::new()
            .with_path_required(true)
            .with_ratchet_tree_extension(true)
            .with_single_welcome_message(true)
            .with_allow_external_commit(true))
    }

    fn encryption_options(
        &self,
        _current_roster: &Roster,
        _current_context: &GroupContext,
    ) -> Result<EncryptionOptions, Self::Error> {
        Ok(EncryptionOptions::new(true, PaddingMode::Padme))
    }
}
