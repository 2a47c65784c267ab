//! `cove bench` end to end: a short flat-out run against a real `cove serve` (both
//! runtimes) delivers every message once, in order, and cuts nobody off; its help
//! documents every option.

mod common;

use std::process::Command;

use common::{CliServer, T, TempDir};

const COVE: &str = env!("CARGO_BIN_EXE_cove");

/// Runs a flat-out burst against a `cove serve --runtime RUNTIME` with the limits
/// `cove bench --help` recommends, and returns the JSON report.
fn burst(runtime: &str) -> serde_json::Value {
    let dir = TempDir::new("bench");
    let flags: Vec<&str> = cove::bench::args::SERVE_FLAGS.split_whitespace().collect();
    let server = CliServer::start_with(dir.path(), runtime, "127.0.0.1:0", &flags);
    let addr = server.addr.to_string();
    let setup = T.as_secs().to_string();
    let out = Command::new(COVE)
        .args([
            "bench",
            "--server",
            &addr,
            "--clients",
            "20",
            "--rooms",
            "2",
        ])
        .args(["--members", "10", "--msgs", "20", "--rate", "max", "--json"])
        .args([
            "--threads",
            "2",
            "--drain-timeout",
            "10",
            "--setup-timeout",
            &setup,
        ])
        .output()
        .expect("run cove bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "cove bench failed: {stdout}{stderr}");
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

fn check(report: &serde_json::Value) {
    let n = |k: &str| {
        report[k]
            .as_u64()
            .unwrap_or_else(|| panic!("{k} missing in {report}"))
    };
    // 20 clients in 2 rooms of 10 each send 20 messages to 9 others.
    assert_eq!(n("sent"), 20 * 20, "{report}");
    assert_eq!(n("deliveries"), 20 * 20 * 9, "{report}");
    assert_eq!(n("expected"), 20 * 20 * 9, "{report}");
    assert_eq!(n("echoes"), 20 * 20, "{report}");
    for k in [
        "lost",
        "duplicated",
        "reordered",
        "malformed",
        "refused",
        "cut_off",
    ] {
        assert_eq!(n(k), 0, "{k} in {report}");
    }
    assert_eq!(
        report["complete"],
        serde_json::Value::Bool(true),
        "{report}"
    );
    assert!(
        report["p99_ms"].as_f64().is_some_and(|p| p > 0.0),
        "{report}"
    );
}

#[test]
fn a_flat_out_burst_on_the_smol_runtime_delivers_everything_once() {
    check(&burst("smol"));
}

#[test]
fn a_flat_out_burst_on_the_std_runtime_delivers_everything_once() {
    check(&burst("std"));
}

#[test]
fn the_help_documents_every_option_and_the_server_flags() {
    let out = Command::new(COVE)
        .args(["bench", "--help"])
        .output()
        .expect("run cove bench --help");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for opt in [
        "--server",
        "--clients",
        "--rooms",
        "--members",
        "--msgs",
        "--rate",
        "--size",
        "--threads",
        "--json",
        "--irc",
        "--quickack",
        "--server-pid",
        "--no-progress",
        "--connect-batch",
        "--ack-every",
        "--drain-timeout",
        "--setup-timeout",
    ] {
        assert!(help.contains(opt), "{opt} missing from:\n{help}");
    }
    // The after-help shows the exact server flags the test above uses.
    for flag in cove::bench::args::SERVE_FLAGS.split(" --") {
        let flag = flag.trim_start_matches("--");
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}
