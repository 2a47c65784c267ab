//! The `cove` program as a person (or a script) uses it: `cove serve` in the background,
//! `cove chat` with its input from a pipe.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{CliServer, T, TempDir};

const COVE: &str = env!("CARGO_BIN_EXE_cove");

/// What one `cove` run printed.
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Run {
    fn count(&self, needle: &str) -> usize {
        self.stdout.matches(needle).count()
    }
}

/// Runs `cove ARGS` with `input` on stdin, waiting at most `T`.
fn cove(args: &[&str], data: Option<&Path>, input: &str) -> Run {
    let mut cmd = Command::new(COVE);
    cmd.args(args);
    if let Some(d) = data {
        cmd.arg("--data").arg(d);
    }
    let mut child = cmd
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cove");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_string();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + T;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("cove {args:?} did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = writer.join();
    Run {
        ok: status.success(),
        stdout: out_t.join().expect("stdout"),
        stderr: err_t.join().expect("stderr"),
    }
}

fn chat(addr: &str, name: &str, extra: &[&str], data: &Path, input: &str) -> Run {
    let mut args = vec!["chat", "--server", addr, "--name", name];
    args.extend_from_slice(extra);
    let r = cove(&args, Some(data), input);
    eprintln!("--- {name} {extra:?}\n{}{}", r.stdout, r.stderr);
    r
}

/// The script: bob registers and quits; alice sends bob a DM, acked as queued;
/// the server is killed with SIGKILL and restarted; bob logs in and gets the DM once.
#[test]
fn offline_dm_survives_kill_9_and_is_shown_exactly_once() {
    let dir = TempDir::new("cli-kill9");
    let server_data = dir.path().join("server");
    let clients = dir.path().join("clients");
    let server = CliServer::start(&server_data, "std");
    let addr = server.addr.to_string();

    let bob = chat(&addr, "bob", &["--register"], &clients, "");
    assert!(bob.ok);
    assert_eq!(bob.count("registered and logged in as bob"), 1);
    assert_eq!(bob.count("pinned the server's key"), 1);

    let alice = chat(
        &addr,
        "alice",
        &["--register"],
        &clients,
        "/msg bob meet me after the crash\n",
    );
    assert!(alice.ok);
    assert_eq!(alice.count("[dm to bob] queued"), 1, "acked as queued");

    server.kill_9();
    let server = CliServer::start(&server_data, "std");
    let addr = server.addr.to_string();

    let bob = chat(&addr, "bob", &[], &clients, "");
    assert!(bob.ok);
    assert_eq!(bob.count("1 direct message(s) waiting"), 1);
    assert_eq!(bob.count("[dm from alice] meet me after the crash"), 1);

    let bob = chat(&addr, "bob", &[], &clients, "");
    assert!(bob.ok);
    assert_eq!(
        bob.count("0 direct message(s) waiting"),
        1,
        "acknowledged and deleted"
    );
    assert_eq!(bob.count("[dm from alice]"), 0);
}

/// Bob is sent DMs while offline; his next login (on `runtime`'s client) prints each once,
/// in order, and acknowledges it after printing; the login after that is told nothing is
/// waiting: the server deleted them on the acks.
fn queued_dms_are_acknowledged_after_printing(runtime: &str) {
    let dir = TempDir::new(&format!("cli-dm-ack-{runtime}"));
    let clients = dir.path().join("clients");
    let server = CliServer::start(&dir.path().join("server"), "std");
    let addr = server.addr.to_string();
    let bob_args = ["--runtime", runtime];

    let bob = chat(
        &addr,
        "bob",
        &["--register", "--runtime", runtime],
        &clients,
        "",
    );
    assert!(bob.ok);
    let alice = chat(
        &addr,
        "alice",
        &["--register"],
        &clients,
        "/msg bob one\n/msg bob two\n/msg bob three\n",
    );
    assert!(alice.ok);
    assert_eq!(alice.count("[dm to bob] queued"), 3);

    let bob = chat(&addr, "bob", &bob_args, &clients, "");
    assert!(bob.ok);
    assert_eq!(bob.count("3 direct message(s) waiting"), 1);
    // Printed once each although the chat asks for unacknowledged DMs again before
    // logging out (the server re-sends what it has no ack for yet).
    let at: Vec<usize> = ["one", "two", "three"]
        .iter()
        .map(|body| {
            let line = format!("[dm from alice] {body}\n");
            assert_eq!(bob.count(&line), 1, "{line:?} printed once");
            bob.stdout.find(&line).unwrap_or_default()
        })
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "in order: {at:?}");
    let marker = std::fs::read_to_string(clients.join("last_dm")).expect("read marker saved");
    assert!(marker.contains(&format!("{addr} bob ")), "{marker}");

    let bob = chat(&addr, "bob", &bob_args, &clients, "");
    assert!(bob.ok);
    assert_eq!(
        bob.count("0 direct message(s) waiting"),
        1,
        "acknowledged, so deleted by the server"
    );
    assert_eq!(bob.count("[dm from alice]"), 0);
}

#[test]
fn queued_dms_are_acknowledged_after_printing_std() {
    queued_dms_are_acknowledged_after_printing("std");
}

#[test]
fn queued_dms_are_acknowledged_after_printing_smol() {
    queued_dms_are_acknowledged_after_printing("smol");
}

/// Two clients share a room (alice stays connected, reading a pipe, while bob's script
/// runs); typos and bad input get readable errors.
#[test]
fn scripted_clients_chat_in_a_room_and_bad_input_is_explained() {
    use std::io::{BufRead, BufReader};
    let dir = TempDir::new("cli-room");
    let clients = dir.path().join("clients");
    let server = CliServer::start(&dir.path().join("server"), "std");
    let addr = server.addr.to_string();

    let mut alice = Command::new(COVE)
        .args([
            "chat",
            "--server",
            &addr,
            "--name",
            "alice",
            "--register",
            "--data",
        ])
        .arg(&clients)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn alice");
    let mut alice_in = alice.stdin.take().expect("stdin");
    let (tx, lines) = std::sync::mpsc::channel::<String>();
    let stdout = alice.stdout.take().expect("stdout");
    let stderr = alice.stderr.take().expect("stderr");
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx2.send(format!("stderr: {line}"));
        }
    });
    let mut alice_saw = Vec::new();
    let until = |pred: &dyn Fn(&str) -> bool, seen: &mut Vec<String>| loop {
        let Ok(line) = lines.recv_timeout(T) else {
            panic!("alice did not print what was expected in time; she printed {seen:#?}");
        };
        let hit = pred(&line);
        seen.push(line);
        if hit {
            return seen.last().cloned().unwrap_or_default();
        }
    };
    alice_in
        .write_all(b"/create lobby\nhello room\n")
        .expect("type");
    let created = until(&|l| l.contains("you created room "), &mut alice_saw);
    let room = created
        .split("you created room ")
        .nth(1)
        .and_then(|rest| rest.get(..6))
        .expect("room id")
        .to_string();
    until(&|l| l.contains("alice: hello room"), &mut alice_saw);

    let script = format!(
        "/join {room}\nhi from bob\n/frobnicate\n/join O0O0O0\n/join ZZZZZZ\n/msg\n/status sleepy\n/users\n/msg carol are you there\n/msg alice psst\n"
    );
    let bob = chat(&addr, "bob", &["--register"], &clients, &script);
    assert!(bob.ok);
    assert_eq!(bob.count(&format!("you joined room {room}")), 1);
    assert_eq!(bob.count(&format!("[{room}] bob: hi from bob")), 1);
    assert_eq!(bob.count("unknown command /frobnicate"), 1);
    assert_eq!(bob.count("is not a room ID"), 1);
    assert_eq!(bob.count("/join ZZZZZZ: room not found"), 1);
    assert_eq!(bob.count("usage: /msg NICK text"), 1);
    assert_eq!(bob.count("usage: /status online|away"), 1);
    assert_eq!(bob.count("/msg carol: user not found"), 1);
    assert_eq!(bob.count("[dm to alice] delivered"), 1);
    assert!(bob.stdout.contains("alice (online)") && bob.stdout.contains("bob (online)"));
    assert_eq!(bob.count("* logged out"), 1);

    until(
        &|l| l.contains("[dm from alice]") || l.contains("[dm from bob] psst"),
        &mut alice_saw,
    );
    alice_in.write_all(b"/quit\n").expect("quit");
    drop(alice_in);
    let deadline = Instant::now() + T;
    while alice.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "alice did not quit");
        std::thread::sleep(Duration::from_millis(20));
    }
    while let Ok(l) = lines.recv_timeout(Duration::from_secs(1)) {
        alice_saw.push(l);
    }
    let alice_out = alice_saw.join("\n");
    eprintln!("--- alice\n{alice_out}");
    for expected in [
        format!("* bob joined {room}"),
        format!("[{room}] bob: hi from bob"),
        "[dm from bob] psst".to_string(),
        format!("* bob left {room}"),
        "* logged out".to_string(),
    ] {
        assert!(alice_out.contains(&expected), "alice saw {expected:?}");
    }
}

/// A server whose key changed is refused with a message that says how to accept it.
#[test]
fn a_changed_server_key_is_refused_until_accepted_deliberately() {
    let dir = TempDir::new("cli-pin");
    let clients = dir.path().join("clients");
    let server = CliServer::start(&dir.path().join("server"), "std");
    let addr = server.addr.to_string();
    std::fs::create_dir_all(&clients).expect("mkdir");
    // The client remembers another key for this address.
    std::fs::write(
        clients.join("known_servers"),
        format!("{addr} {}\n", "ab".repeat(32)),
    )
    .expect("write known_servers");

    let refused = chat(&addr, "alice", &["--register"], &clients, "");
    assert!(!refused.ok);
    assert!(refused.stderr.contains("REFUSED"), "{}", refused.stderr);
    assert!(refused.stderr.contains("--accept-new-server-key"));

    let accepted = chat(
        &addr,
        "alice",
        &["--register", "--accept-new-server-key"],
        &clients,
        "",
    );
    assert!(accepted.ok);
    assert_eq!(accepted.count("replaced the pinned key"), 1);
    let again = chat(&addr, "alice", &[], &clients, "");
    assert!(again.ok, "the new key is pinned now");
}

/// Logging in without a key, or with a name that is taken, says what to do.
#[test]
fn login_mistakes_are_explained() {
    let dir = TempDir::new("cli-login");
    let clients = dir.path().join("clients");
    let other = dir.path().join("other");
    let server = CliServer::start(&dir.path().join("server"), "std");
    let addr = server.addr.to_string();

    let r = chat(&addr, "dave", &[], &clients, "");
    assert!(!r.ok);
    assert!(r.stderr.contains("--register"), "{}", r.stderr);

    assert!(chat(&addr, "dave", &["--register"], &clients, "").ok);
    let r = chat(&addr, "dave", &["--register"], &other, "");
    assert!(!r.ok);
    assert!(r.stderr.contains("already registered"), "{}", r.stderr);

    let r = chat(&addr, &"x".repeat(10_000), &["--register"], &clients, "");
    assert!(!r.ok);
    assert!(r.stderr.contains("invalid nickname"), "{}", r.stderr);
}

#[test]
fn keygen_writes_a_private_key_once() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("cli-keygen");
    let path = dir.path().join("k.key");
    let p = path.to_str().expect("utf-8 path");
    let r = cove(&["keygen", "--out", p], None, "");
    assert!(r.ok, "{}", r.stderr);
    assert!(r.stdout.contains("fingerprint: "));
    let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let r = cove(&["keygen", "--out", p], None, "");
    assert!(!r.ok);
    assert!(r.stderr.contains("never overwrites"), "{}", r.stderr);
}

#[test]
fn help_teaches_the_commands() {
    let r = cove(&["--help"], None, "");
    assert!(r.ok);
    for word in [
        "serve",
        "chat",
        "keygen",
        "--register",
        "/create",
        "RUST_LOG",
    ] {
        assert!(r.stdout.contains(word), "--help mentions {word}");
    }
    let r = cove(&["chat", "--help"], None, "");
    for word in ["/msg", "/join", "--accept-new-server-key", "pipe"] {
        assert!(r.stdout.contains(word), "chat --help mentions {word}");
    }
    let r = cove(&["serve", "--help"], None, "");
    for word in [
        "127.0.0.1:7878",
        "./cove-data",
        "--room-capacity",
        "--send-queue",
    ] {
        assert!(r.stdout.contains(word), "serve --help mentions {word}");
    }
}

/// SIGTERM (like Ctrl-C) stops the server gracefully: a connected `cove chat` is told
/// why, and exits on its own although its input is still open.
#[test]
fn sigterm_stops_the_server_and_clients_are_told_why() {
    use std::io::{BufRead, BufReader};
    let dir = TempDir::new("cli-term");
    let clients = dir.path().join("clients");
    let server = CliServer::start(&dir.path().join("server"), "std");
    let addr = server.addr.to_string();
    let mut alice = Command::new(COVE)
        .args([
            "chat",
            "--server",
            &addr,
            "--name",
            "alice",
            "--register",
            "--data",
        ])
        .arg(&clients)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn alice");
    let _keep_input_open = alice.stdin.take();
    let (tx, lines) = std::sync::mpsc::channel::<String>();
    let stdout = alice.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    loop {
        let line = lines.recv_timeout(T).expect("alice logs in");
        if line.contains("logged in as alice") {
            break;
        }
    }
    let status = server.terminate();
    assert!(
        status.success(),
        "cove serve exits 0 after SIGTERM: {status:?}"
    );
    let said = lines.recv_timeout(T).expect("alice is told");
    assert!(said.contains("server shutting down"), "{said}");
    let deadline = Instant::now() + T;
    let exit = loop {
        if let Some(st) = alice.try_wait().expect("wait") {
            break st;
        }
        assert!(Instant::now() < deadline, "alice did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!exit.success(), "a lost connection is an error exit");
}
