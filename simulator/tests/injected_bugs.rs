//! Proof that the simulator catches bugs: each deliberate hub or driver bug (cove-core's
//! `inject-bugs` switches, enabled for tests through a dev-dependency on this crate with
//! its `inject-bugs` feature), and each deliberate fault of the simulated end-to-end
//! clients, must be reported, as a correctness failure of the right invariant, within a
//! fixed small set of seeds — and the same seeds must pass without the bug, and replay to
//! the same failure.

use cove_sim::{Bugs, FailureKind, Report, SimConfig, enable_bug, failure_report, run};

const SEEDS: [u64; 6] = [1, 2, 3, 4, 5, 6];
/// The write-ahead bug needs a crash at the right moment for one of its two tests; the
/// durable-room bugs are held to the same ten seeds.
const TEN_SEEDS: [u64; 10] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

/// A small run of `seed`. The hub's and driver's bugs are about the plaintext rooms and
/// queues: their runs have no end-to-end encrypted users (`e2ee_every=0`, which MLS would
/// make several times slower) unless `overrides` set them.
fn config(seed: u64, overrides: &[(&str, &str)]) -> SimConfig {
    let mut cfg = SimConfig::new(seed);
    cfg.clients = 40;
    cfg.safety_secs = 60;
    cfg.cheap_crypto = true;
    cfg.max_events = 5_000_000;
    let plaintext = [("e2ee_every", "0")];
    let default = if overrides.iter().any(|(k, _)| *k == "e2ee_every") {
        &[][..]
    } else {
        &plaintext[..]
    };
    cfg.overrides = default
        .iter()
        .chain(overrides)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    cfg
}

/// Runs `seeds` with `bug` on until one fails; checks the failure and its report, and
/// returns the clean run of that seed.
fn caught_in(seeds: &[u64], bug: &str, check: &str, overrides: &[(&str, &str)]) -> Report {
    for &seed in seeds {
        let mut cfg = config(seed, overrides);
        let clean = run(cfg.clone(), &mut |_| {}).expect("valid config");
        assert!(
            clean.failure.is_none(),
            "seed {seed} fails without the bug: {:?}",
            clean.failure
        );
        cfg.bugs = Bugs::default();
        enable_bug(&mut cfg.bugs, bug).expect("known bug");
        let report = run(cfg.clone(), &mut |_| {}).expect("valid config");
        let Some(failure) = &report.failure else {
            continue;
        };
        assert_eq!(failure.kind, FailureKind::Correctness, "{bug}: {failure:?}");
        assert_eq!(failure.kind.exit_code(), 129);
        assert_eq!(
            failure.check, check,
            "{bug} reported as {}: {}",
            failure.check, failure.detail
        );
        let text = failure_report(&cfg, &report, failure);
        let replay = format!("--features inject-bugs -- --seed {seed} ");
        assert!(text.contains(&replay), "no replay line in:\n{text}");
        assert!(text.contains(&format!("--inject-bug {bug}")), "{text}");
        assert!(text.contains("knobs: latency_min_us="), "{text}");
        // The replay reproduces the same failure at the same point.
        let again = run(cfg.clone(), &mut |_| {}).expect("valid config");
        let f2 = again.failure.expect("replay fails too");
        assert_eq!(
            (f2.check, &f2.detail, f2.event),
            (failure.check, &failure.detail, failure.event)
        );
        assert_eq!(again.summary.trace_hash, report.summary.trace_hash);
        println!("{bug} caught:\n{text}");
        return clean;
    }
    panic!("{bug} was not caught by any of seeds {seeds:?}");
}

fn caught(bug: &str, check: &str, overrides: &[(&str, &str)]) {
    caught_in(&SEEDS, bug, check, overrides);
}

#[test]
fn skipped_sequence_number_is_caught() {
    caught("skip_sequence", "room order", &[("w_room_msg", "300")]);
}

#[test]
fn admission_past_the_cap_is_caught() {
    caught(
        "admit_over_capacity",
        "room cap",
        &[("room_capacity", "4"), ("w_join", "100")],
    );
}

#[test]
fn queued_dm_dropped_on_restart_is_caught() {
    caught(
        "drop_queued_on_restore",
        "durable queue",
        &[
            ("server_crash_rate", "4"),
            ("w_dm", "150"),
            ("w_logout", "20"),
            ("max_queue", "1000"),
        ],
    );
}

#[test]
fn delivery_to_a_departed_member_is_caught() {
    caught(
        "deliver_to_departed",
        "delivery to non-member",
        &[("w_leave", "30")],
    );
}

/// A driver that releases replies before their batch is durable: with the drawn disk and
/// network (the disk often slower than the network), a client is told of a change the
/// disk does not hold yet.
#[test]
fn replies_released_before_durable_are_caught() {
    caught_in(&TEN_SEEDS, "release_before_durable", "write-ahead", &[]);
}

/// The same bug where the disk is much faster than the network, so no reply can outrun
/// its batch: only a server crash between the batch being handed out and its being
/// durable shows it — the crash loses the batch, and its released replies still reach
/// their clients. Every crash here is armed to strike mid-commit.
#[test]
fn acks_lost_in_a_crash_mid_commit_are_caught() {
    let clean = caught_in(
        &TEN_SEEDS,
        "release_before_durable",
        "nothing acked lost",
        &[
            ("fsync_us", "100"),
            ("latency_min_us", "3000"),
            ("latency_max_us", "6000"),
            ("server_crash_rate", "6"),
            ("crash_mid_commit", "1"),
            ("w_dm", "150"),
        ],
    );
    let s = &clean.summary;
    assert!(
        s.server_crashes_mid_commit > 0,
        "the clean run crashed {} times, never mid-commit",
        s.server_crashes
    );
}

/// Catch-up that skips a message the member has not acknowledged: the member never sees
/// it. Absences (logouts, crashes) and busy rooms make catch-ups frequent.
#[test]
fn a_message_skipped_by_catch_up_is_caught() {
    caught_in(
        &TEN_SEEDS,
        "catchup_skips_one",
        "room exactly once",
        &[
            ("w_room_msg", "300"),
            ("w_logout", "10"),
            ("room_window", "4"),
        ],
    );
}

/// Catch-up that replays the member's last acknowledged message: the hub sends it again,
/// though the member's cursor says it has it.
#[test]
fn an_acknowledged_message_replayed_is_caught() {
    caught_in(
        &TEN_SEEDS,
        "catchup_replays_acked",
        "room exactly once",
        &[("w_room_msg", "300"), ("w_logout", "10")],
    );
}

/// A join that is never written: the member would be forgotten by the next restart. The
/// step's store ops already show it; server crashes would show it again.
#[test]
fn a_membership_that_is_not_durable_is_caught() {
    let clean = caught_in(
        &TEN_SEEDS,
        "membership_not_durable",
        "durable membership",
        &[("w_join", "100"), ("server_crash_rate", "2")],
    );
    assert!(clean.summary.joins > 0, "the clean run joined no room");
}

/// The Delivery Service accepts a second Commit for the epoch just closed (a forked group).
/// Every user encrypts end to end and joins and leaves often, so Commits (external joins,
/// and the Removes that follow a leave) contend for the same epochs.
#[test]
fn a_second_commit_for_an_epoch_is_caught() {
    let clean = caught_in(
        &TEN_SEEDS,
        "accept_two_commits",
        "one commit per epoch",
        &[("e2ee_every", "1"), ("w_join", "100"), ("w_leave", "30")],
    );
    let e = &clean.summary.e2ee;
    assert!(
        e.stale_epochs > 0,
        "no Commit contended in the clean run: {e:?}"
    );
}

/// A client takes a Commit of another member as handled without applying it: its group
/// falls behind, and the next Commit or message of the room is unreadable to it.
#[test]
fn a_client_that_skips_a_commit_is_caught() {
    let clean = caught_in(
        &TEN_SEEDS,
        "skip_commit",
        "e2ee decrypt",
        &[("e2ee_every", "2")],
    );
    assert!(clean.summary.e2ee.decrypted > 0);
}

/// Clients never commit the Remove of a member who left: the member's old state, kept,
/// reads what they send after they saw it leave.
#[test]
fn a_client_keeping_a_removed_members_keys_is_caught() {
    let clean = caught_in(
        &TEN_SEEDS,
        "keep_removed_keys",
        "removed member reads",
        &[("e2ee_every", "2"), ("w_leave", "30")],
    );
    assert!(
        clean.summary.e2ee.removed_states[0] > 0,
        "no removed member watched"
    );
}
