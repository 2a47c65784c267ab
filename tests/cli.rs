//! The `cove` program as a person (or a script) uses it: `cove serve` in the background,
//! `cove chat` with its input from a pipe.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
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

/// A `cove chat` left running: the test types into its input as it goes and reads its
/// lines (stdout, and stderr marked as such) as they come.
struct Live {
    child: Child,
    input: Option<ChildStdin>,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Live {
    fn start(addr: &str, name: &str, extra: &[&str], data: &Path) -> Live {
        let mut child = Command::new(COVE)
            .args(["chat", "--server", addr, "--name", name])
            .args(extra)
            .arg("--data")
            .arg(data)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cove chat");
        let (tx, lines) = channel::<String>();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
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
        let input = child.stdin.take();
        Live {
            child,
            input,
            lines,
            seen: Vec::new(),
        }
    }

    fn type_lines(&mut self, text: &str) {
        let input = self.input.as_mut().expect("input still open");
        input.write_all(text.as_bytes()).expect("type");
    }

    /// Waits for a line containing `needle` and returns it.
    fn until(&mut self, needle: &str) -> String {
        loop {
            let Ok(line) = self.lines.recv_timeout(T) else {
                panic!(
                    "no line with {needle:?} in time; printed so far: {:#?}",
                    self.seen
                );
            };
            self.seen.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// Waits for the exit, its input left open.
    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + T;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "cove chat did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Types /quit, waits for the exit and returns everything it printed.
    fn quit(mut self) -> String {
        self.type_lines("/quit\n");
        drop(self.input.take());
        self.wait_exit();
        while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(1)) {
            self.seen.push(l);
        }
        let out = self.seen.join("\n");
        eprintln!("--- live\n{out}");
        out
    }
}

/// The room ID printed right after `marker` in `out`.
fn room_after(out: &str, marker: &str) -> String {
    out.split(marker)
        .nth(1)
        .and_then(|rest| rest.get(..6))
        .unwrap_or_else(|| panic!("no {marker:?} in {out}"))
        .to_string()
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
/// runs); typos and bad input get readable errors. Bob logging out only takes him
/// offline: he stays in the room.
#[test]
fn scripted_clients_chat_in_a_room_and_bad_input_is_explained() {
    let dir = TempDir::new("cli-room");
    let clients = dir.path().join("clients");
    let server = CliServer::start(&dir.path().join("server"), "std");
    let addr = server.addr.to_string();

    let mut alice = Live::start(&addr, "alice", &["--register"], &clients);
    alice.type_lines("/create lobby\nhello room\n");
    let room = room_after(&alice.until("you created room "), "you created room ");
    alice.until("alice: hello room");

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

    alice.until("[dm from bob] psst");
    alice.until("* bob went offline");
    let alice_out = alice.quit();
    for expected in [
        format!("* bob joined {room}"),
        format!("[{room}] bob: hi from bob"),
        "[dm from bob] psst".to_string(),
        "* bob went offline".to_string(),
        "* logged out".to_string(),
    ] {
        assert!(alice_out.contains(&expected), "alice saw {expected:?}");
    }
    assert!(!alice_out.contains("bob left"), "offline is not gone");
}

/// Issue 11's script: bob is in alice's room and quits; alice sends m1, m2, m3; the server
/// is killed with SIGKILL and restarted; bob logs in and sees the three once, dated, in
/// order, and is still a member; his next login shows none of them again.
#[test]
fn missed_room_messages_survive_kill_9_and_are_shown_exactly_once() {
    let dir = TempDir::new("cli-room-kill9");
    let server_data = dir.path().join("server");
    let clients = dir.path().join("clients");
    let server = CliServer::start(&server_data, "std");
    let addr = server.addr.to_string();

    let alice = chat(&addr, "alice", &["--register"], &clients, "/create lobby\n");
    let room = room_after(&alice.stdout, "you created room ");
    let bob = chat(
        &addr,
        "bob",
        &["--register"],
        &clients,
        &format!("/join {room}\n"),
    );
    assert_eq!(bob.count(&format!("you joined room {room}")), 1);

    let alice = chat(&addr, "alice", &[], &clients, "m1\nm2\nm3\n");
    let catching_up = format!("* room {room} \"lobby\": catching up");
    assert_eq!(
        alice.count(&catching_up),
        1,
        "still a member after logging out"
    );
    for m in ["m1", "m2", "m3"] {
        assert_eq!(alice.count(&format!("[{room}] alice: {m}\n")), 1);
    }

    server.kill_9();
    let server = CliServer::start(&server_data, "std");
    let addr = server.addr.to_string();

    let bob = chat(&addr, "bob", &[], &clients, "/rooms\nback again\n");
    assert!(bob.ok);
    assert_eq!(bob.count(&catching_up), 1, "membership survived the crash");
    let at: Vec<usize> = ["m1", "m2", "m3"]
        .iter()
        .map(|m| {
            let line = format!(" UTC [{room}] alice: {m}\n");
            assert_eq!(bob.count(&line), 1, "{line:?} printed once, dated");
            bob.stdout.find(&line).unwrap_or_default()
        })
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "in order: {at:?}");
    assert!(
        bob.stdout.contains(&format!("{room} \"lobby\" 2/")),
        "2 members"
    );
    assert_eq!(bob.count(&format!("[{room}] bob: back again\n")), 1);
    let markers = std::fs::read_to_string(clients.join("last_room")).expect("room markers");
    assert!(
        markers.contains(&format!("{addr} bob {room} ")),
        "{markers}"
    );

    // Nothing is shown again (his own message was acknowledged too), but what he saw
    // last time is there to page back to.
    let bob = chat(&addr, "bob", &[], &clients, "/history 2\n");
    assert!(bob.ok);
    assert_eq!(bob.count(&catching_up), 1);
    let history: Vec<&str> = bob
        .stdout
        .lines()
        .filter(|l| l.starts_with("(history) "))
        .collect();
    assert_eq!(history.len(), 2, "{history:?}");
    assert!(history[0].ends_with(&format!(" UTC [{room}] alice: m3")));
    assert!(history[1].ends_with(&format!(" UTC [{room}] bob: back again")));
    assert_eq!(bob.count("] alice: m"), 1, "only m3, and only as history");
    assert_eq!(bob.count("back again"), 1);

    // Alice, offline meanwhile, gets bob's message once, and her own never again.
    let alice = chat(&addr, "alice", &[], &clients, "");
    assert_eq!(alice.count(&format!("[{room}] bob: back again\n")), 1);
    assert_eq!(alice.count("] alice: m"), 0);
}

/// A private room: not listed, refused without an invitation; an invitation reaches an
/// offline invitee at login; the admin renames it, pages back through its history and
/// removes a member, who is told at once. The invitee runs the smol client.
#[test]
fn private_rooms_invitations_history_and_removal() {
    let dir = TempDir::new("cli-private");
    let clients = dir.path().join("clients");
    let server = CliServer::start(&dir.path().join("server"), "std");
    let addr = server.addr.to_string();
    let smol = ["--runtime", "smol"];
    assert!(
        chat(
            &addr,
            "bob",
            &["--register", "--runtime", "smol"],
            &clients,
            ""
        )
        .ok
    );
    assert!(chat(&addr, "carol", &["--register"], &clients, "").ok);

    let script = "/create --private secret plans\nh1\nh2\nh3\nh4\nh5\n/invite bob\n/invite nobody\n/title war room\n";
    let alice = chat(&addr, "alice", &["--register"], &clients, script);
    let room = room_after(&alice.stdout, "you created private room ");
    assert_eq!(alice.count(&format!("* invited bob to {room}")), 1);
    assert_eq!(
        alice.count(&format!("/invite nobody {room}: user not found")),
        1
    );
    assert_eq!(
        alice.count(&format!("* room {room} is now called \"war room\"")),
        1
    );

    let carol = chat(
        &addr,
        "carol",
        &[],
        &clients,
        &format!("/rooms\n/join {room}\n"),
    );
    assert_eq!(
        carol.count("no rooms yet"),
        1,
        "private rooms are not listed"
    );
    assert_eq!(
        carol.count(&format!(
            "/join {room}: that room is private: ask for an invitation"
        )),
        1
    );

    let mut bob = Live::start(&addr, "bob", &smol, &clients);
    bob.until(&format!(
        "* alice invited you to private room {room} \"war room\"; /join {room}"
    ));
    bob.type_lines(&format!("/join {room}\nhello from bob\n"));
    bob.until(&format!("you joined private room {room} \"war room\""));
    bob.until(&format!("[{room}] bob: hello from bob"));

    let script = "/history 2\n/history 2\n/history 2\n/history\n/remove bob\n/remove alice\n";
    let alice = chat(&addr, "alice", &[], &clients, script);
    assert_eq!(
        alice.count(&format!(" UTC [{room}] bob: hello from bob\n")),
        1
    );
    let at: Vec<usize> = ["h4", "h5", "h2", "h3", "h1"]
        .iter()
        .map(|h| {
            let line = format!(" UTC [{room}] alice: {h}\n");
            assert_eq!(alice.count(&line), 1, "{line:?} once");
            alice.stdout.find(&line).unwrap_or_default()
        })
        .collect();
    assert!(
        at.windows(2).all(|w| w[0] < w[1]),
        "newest page first: {at:?}"
    );
    assert_eq!(
        alice.count("(history) "),
        5,
        "nothing else from the history"
    );
    assert_eq!(alice.count("2 earlier message(s)"), 2);
    assert_eq!(
        alice.count("no more history (messages before seq 1 are gone)"),
        2,
        "after the last page, and when asked again"
    );
    assert_eq!(alice.count(&format!("* bob left {room}")), 1);
    assert_eq!(alice.count(&format!("* removed bob from {room}")), 1);
    assert_eq!(alice.count("/remove: you cannot remove yourself"), 1);

    bob.until(&format!(
        "* alice removed you from room {room} \"war room\""
    ));
    let bob_out = bob.quit();
    assert!(
        !bob_out.contains("] alice: h"),
        "no history from before he joined"
    );
    let markers = std::fs::read_to_string(clients.join("last_room")).expect("room markers");
    assert!(
        !markers.contains(&format!("bob {room}")),
        "forgotten: {markers}"
    );
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
    for word in [
        "/msg",
        "/join",
        "/invite",
        "/history",
        "--accept-new-server-key",
        "pipe",
    ] {
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
    let dir = TempDir::new("cli-term");
    let clients = dir.path().join("clients");
    let server = CliServer::start(&dir.path().join("server"), "std");
    let addr = server.addr.to_string();
    let mut alice = Live::start(&addr, "alice", &["--register"], &clients);
    alice.until("logged in as alice");
    let status = server.terminate();
    assert!(
        status.success(),
        "cove serve exits 0 after SIGTERM: {status:?}"
    );
    alice.until("server shutting down");
    let exit = alice.wait_exit();
    assert!(!exit.success(), "a lost connection is an error exit");
}
