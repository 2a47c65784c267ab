//! Deliberate bugs, for the tests that prove the simulator catches them: the core's hub
//! and driver switches (`cove_core::hub::InjectedBugs`, behind its `inject-bugs`
//! feature) and two faults of the simulated end-to-end clients, which need no core change:
//!
//! - `skip_commit`: a client takes some Commits of others (one in four) as handled without
//!   handing them to its session, and acknowledges them: its group falls behind the room;
//! - `keep_removed_keys`: clients' sessions never hear that a member left or was removed,
//!   so they never commit its Remove and keep encrypting to its keys.

use cove_core::hub::InjectedBugs;

/// Every deliberate bug a run can switch on.
#[derive(Clone, Debug, Default)]
pub struct Bugs {
    /// The hub's and driver's.
    pub hub: InjectedBugs,
    /// A client skips some Commits.
    pub skip_commit: bool,
    /// Clients keep removed members' keys.
    pub keep_removed_keys: bool,
}

/// The names `--inject-bug` accepts.
pub const BUG_NAMES: [&str; 11] = [
    "skip_sequence",
    "admit_over_capacity",
    "drop_queued_on_restore",
    "deliver_to_departed",
    "release_before_durable",
    "catchup_skips_one",
    "catchup_replays_acked",
    "membership_not_durable",
    "accept_two_commits",
    "skip_commit",
    "keep_removed_keys",
];

impl Bugs {
    /// The switch of bug `name`.
    fn switch(&mut self, name: &str) -> Option<&mut bool> {
        let h = &mut self.hub;
        Some(match name {
            "skip_sequence" => &mut h.skip_sequence,
            "admit_over_capacity" => &mut h.admit_over_capacity,
            "drop_queued_on_restore" => &mut h.drop_queued_on_restore,
            "deliver_to_departed" => &mut h.deliver_to_departed,
            "release_before_durable" => &mut h.release_before_durable,
            "catchup_skips_one" => &mut h.catchup_skips_one,
            "catchup_replays_acked" => &mut h.catchup_replays_acked,
            "membership_not_durable" => &mut h.membership_not_durable,
            "accept_two_commits" => &mut h.accept_two_commits,
            "skip_commit" => &mut self.skip_commit,
            "keep_removed_keys" => &mut self.keep_removed_keys,
            _ => return None,
        })
    }

    /// The names of the bugs switched on.
    pub fn names(&self) -> Vec<&'static str> {
        let mut probe = self.clone();
        BUG_NAMES
            .iter()
            .copied()
            .filter(|n| probe.switch(n).is_some_and(|on| *on))
            .collect()
    }
}

/// Switches on the injected bug `name`.
pub fn enable_bug(bugs: &mut Bugs, name: &str) -> Result<(), String> {
    match bugs.switch(name) {
        Some(on) => {
            *on = true;
            Ok(())
        }
        None => Err(format!("unknown bug {name:?}; one of {BUG_NAMES:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_switches_one_bug() {
        for name in BUG_NAMES {
            let mut b = Bugs::default();
            enable_bug(&mut b, name).unwrap();
            assert_eq!(b.names(), [name]);
        }
        assert!(enable_bug(&mut Bugs::default(), "nope").is_err());
    }
}
