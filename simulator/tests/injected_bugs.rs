//! Proof that the simulator catches bugs: each deliberate hub bug (cove-core's
//! `inject-bugs` switches, enabled for tests through a dev-dependency on this crate with
//! its `inject-bugs` feature) must be reported, as a correctness failure of the right
//! invariant, within a fixed small set of seeds — and the same seeds must pass without
//! the bug, and replay to the same failure.

use cove_core::hub::InjectedBugs;
use cove_sim::{FailureKind, SimConfig, enable_bug, failure_report, run};

const SEEDS: [u64; 6] = [1, 2, 3, 4, 5, 6];

fn config(seed: u64, overrides: &[(&str, &str)]) -> SimConfig {
    let mut cfg = SimConfig::new(seed);
    cfg.clients = 40;
    cfg.safety_secs = 60;
    cfg.cheap_crypto = true;
    cfg.tolerate_busy_timers = true;
    cfg.max_events = 5_000_000;
    cfg.overrides = overrides
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    cfg
}

/// Runs the seeds with `bug` on until one fails; checks the failure and its report.
fn caught(bug: &str, check: &str, overrides: &[(&str, &str)]) {
    for seed in SEEDS {
        let mut cfg = config(seed, overrides);
        let clean = run(cfg.clone(), &mut |_| {}).expect("valid config");
        assert!(
            clean.failure.is_none(),
            "seed {seed} fails without the bug: {:?}",
            clean.failure
        );
        cfg.bugs = InjectedBugs::default();
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
        return;
    }
    panic!("{bug} was not caught by any of seeds {SEEDS:?}");
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
