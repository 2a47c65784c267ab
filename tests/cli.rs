//! The `cove` program as a person (or a script) uses it: `cove serve` in the background,
//! `cove chat` with its input from a pipe. Rooms and direct messages are end-to-end
//! encrypted (tests/cli_e2ee.rs checks that the server never sees their text).

#[path = "common/cli.rs"]
mod cli;
mod common;

use cli::{Live, chat, cove, room_after};
use common::{CliServer, TempDir};

/// The script: bob registers and quits; alice sends bob a direct message while he
/// is offline; the server is killed with SIGKILL and restarted; bob logs in and gets the
/// message once.
#[test]
fn offline_dm_survives_kill_9_and_is_shown_exactly_once() {
    offline_dm_survives_kill_9("std", &[]);
}

/// `--sync normal` commits to the operating system, not the disk: a crash of the server
/// process (SIGKILL) still loses nothing it delivered.
#[test]
fn with_sync_normal_an_offline_dm_survives_kill_9() {
    offline_dm_survives_kill_9("smol", &["--sync", "normal"]);
}

fn offline_dm_survives_kill_9(runtime: &str, extra: &[&str]) {
    let dir = TempDir::new(&format!("cli-kill9-{runtime}"));
    let server_data = dir.path().join("server");
    let clients = dir.path().join("clients");
    let server = CliServer::start_with(&server_data, runtime, "127.0.0.1:0", extra);
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
    assert_eq!(
        alice.count("* direct conversation with bob: end-to-end encrypted"),
        1
    );
    assert_eq!(
        alice.count("[dm to bob] meet me after the crash"),
        1,
        "stored by the server: its echo came back"
    );

    server.kill_9();
    // Back on the same address: the client keeps its keys per server address.
    let server = CliServer::start_with(&server_data, runtime, &addr, extra);
    assert_eq!(server.addr.to_string(), addr);

    let bob = chat(&addr, "bob", &[], &clients, "");
    assert!(bob.ok);
    assert_eq!(
        bob.count("* direct conversation with alice: catching up"),
        1
    );
    assert_eq!(bob.count("[dm from alice] meet me after the crash"), 1);

    let bob = chat(&addr, "bob", &[], &clients, "");
    assert!(bob.ok);
    assert_eq!(
        bob.count("* direct conversation with alice: catching up"),
        1,
        "the conversation persists"
    );
    assert_eq!(bob.count("[dm from alice]"), 0, "acknowledged: not again");
}

/// Bob is sent direct messages while offline; his next login (on `runtime`'s client)
/// prints each once, in order, and acknowledges it after printing; the login after that
/// shows none again. Then he answers in the same conversation.
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
    for body in ["one", "two", "three"] {
        assert_eq!(alice.count(&format!("[dm to bob] {body}\n")), 1);
    }

    let bob = chat(&addr, "bob", &bob_args, &clients, "");
    assert!(bob.ok);
    let at: Vec<usize> = ["one", "two", "three"]
        .iter()
        .map(|body| {
            let line = format!("[dm from alice] {body}\n");
            assert_eq!(bob.count(&line), 1, "{line:?} printed once");
            bob.stdout.find(&line).unwrap_or_default()
        })
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "in order: {at:?}");
    let marker = std::fs::read_to_string(clients.join("last_room")).expect("read marker saved");
    assert!(marker.contains(&format!("{addr} bob ")), "{marker}");

    let bob = chat(&addr, "bob", &bob_args, &clients, "/msg alice got them\n");
    assert!(bob.ok);
    assert_eq!(bob.count("[dm from alice]"), 0, "acknowledged: not again");
    assert_eq!(bob.count("[dm to alice] got them"), 1);
    let alice = chat(&addr, "alice", &[], &clients, "");
    assert_eq!(alice.count("[dm from bob] got them"), 1, "one conversation");
    assert_eq!(alice.count("[dm to bob]"), 0, "her own not again");
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
    alice.until("end-to-end encryption is set up");
    alice.until("alice: hello room");

    let script = format!(
        "/join {room}\nhi from bob\n/frobnicate\n/join O0O0O0\n/join ZZZZZZ\n/msg\n/status sleepy\n/users\n/msg carol are you there\n/msg alice psst\n/msg bob me\n/verify nobody\n/verify alice\n/accept-key alice\n"
    );
    let bob = chat(&addr, "bob", &["--register"], &clients, &script);
    assert!(bob.ok);
    assert_eq!(bob.count(&format!("you joined room {room}")), 1);
    assert_eq!(
        bob.count(&format!("* {room}: end-to-end encryption is set up")),
        1
    );
    assert_eq!(bob.count(&format!("[{room}] bob: hi from bob")), 1);
    assert_eq!(bob.count("unknown command /frobnicate"), 1);
    assert_eq!(bob.count("is not a room ID"), 1);
    assert_eq!(bob.count("/join ZZZZZZ: room not found"), 1);
    assert_eq!(bob.count("usage: /msg NICK text"), 1);
    assert_eq!(bob.count("usage: /status online|away"), 1);
    assert_eq!(bob.count("/msg carol: user not found"), 1);
    assert_eq!(bob.count("[dm to alice] psst"), 1);
    assert_eq!(bob.count("/msg: that is you"), 1);
    assert_eq!(bob.count("no key of nobody known yet"), 1);
    assert_eq!(bob.count("* safety number of you (bob) and alice:"), 1);
    assert_eq!(bob.count("the key of alice has not changed"), 1);
    assert!(bob.stdout.contains("alice (online)") && bob.stdout.contains("bob (online)"));
    assert_eq!(bob.count("* logged out"), 1);

    alice.until("[dm from bob] psst");
    alice.until("* bob went offline");
    alice.type_lines("/verify bob\n");
    alice.until("* safety number of you (alice) and bob:");
    let alice_number = [alice.until("    "), alice.until("    ")];
    let alice_out = alice.quit();
    for expected in [
        format!("* bob joined {room}"),
        format!("* [{room}] bob joined the encrypted group"),
        format!("[{room}] bob: hi from bob"),
        "[dm from bob] psst".to_string(),
        "* bob went offline".to_string(),
        "* logged out".to_string(),
    ] {
        assert!(alice_out.contains(&expected), "alice saw {expected:?}");
    }
    assert!(!alice_out.contains("bob left"), "offline is not gone");
    // The same safety number on both sides: twelve groups of five digits.
    let bob_lines: Vec<&str> = bob.stdout.lines().collect();
    let at = bob_lines
        .iter()
        .position(|l| l.starts_with("* safety number of you (bob) and alice:"))
        .expect("bob's number");
    assert_eq!(bob_lines[at + 1], alice_number[0]);
    assert_eq!(bob_lines[at + 2], alice_number[1]);
    let digits: Vec<&str> = alice_number
        .iter()
        .flat_map(|l| l.split_whitespace())
        .collect();
    assert_eq!(digits.len(), 12, "{digits:?}");
    assert!(
        digits
            .iter()
            .all(|g| g.len() == 5 && g.bytes().all(|b| b.is_ascii_digit()))
    );
}

/// Issue 11's script: bob is in alice's room and quits; alice sends m1, m2, m3; the server
/// is killed with SIGKILL and restarted; bob logs in and sees the three once, dated, in
/// order, and is still a member; his next login shows none of them again, and the history
/// lists them without their text (each message is decrypted once).
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
    assert_eq!(
        alice.count(&format!("* [{room}] bob joined the encrypted group")),
        1
    );
    for m in ["m1", "m2", "m3"] {
        assert_eq!(alice.count(&format!("[{room}] alice: {m}\n")), 1);
    }

    server.kill_9();
    // Back on the same address: the client keeps its keys per server address.
    let server = CliServer::start_with(&server_data, "std", &addr, &[]);
    assert_eq!(server.addr.to_string(), addr);

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

    // Nothing is shown again (his own message was acknowledged too); the history lists
    // what he saw last time, but its keys are gone: who and when, not what.
    let bob = chat(&addr, "bob", &[], &clients, "/history 2\n");
    assert!(bob.ok);
    assert_eq!(bob.count(&catching_up), 1);
    let history: Vec<&str> = bob
        .stdout
        .lines()
        .filter(|l| l.starts_with("(history) "))
        .collect();
    assert_eq!(history.len(), 2, "{history:?}");
    assert!(history[0].ends_with(&format!(" UTC [{room}] alice: [encrypted message]")));
    assert!(history[1].ends_with(&format!(" UTC [{room}] bob: [encrypted message]")));
    assert_eq!(bob.count("earlier messages cannot be decrypted again"), 1);
    assert_eq!(bob.count("] alice: m"), 0, "no text of m1..m3 again");
    assert_eq!(bob.count("back again"), 0);

    // Alice, offline meanwhile, gets bob's message once, and her own never again.
    let alice = chat(&addr, "alice", &[], &clients, "");
    assert_eq!(alice.count(&format!("[{room}] bob: back again\n")), 1);
    assert_eq!(alice.count("] alice: m"), 0);
}

/// A private room: not listed, refused without an invitation; an invitation adds an
/// offline invitee (with a Welcome for their keys) who reads what follows, not what came
/// before; the admin renames it, pages back through its history and removes a member, who
/// is told at once. The invitee runs the smol client.
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
    assert_eq!(alice.count(&format!("* added bob to {room}")), 1);
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
        "* room {room} \"war room\": catching up (private, admin alice; members: alice, bob)"
    ));
    bob.until(&format!("* {room}: end-to-end encryption is set up"));
    bob.type_lines("hello from bob\n");
    bob.until(&format!("[{room}] bob: hello from bob"));

    let script =
        "/history 2\n/history 2\n/history 2\n/history\n/history\n/remove bob\n/remove alice\n";
    let alice = chat(&addr, "alice", &[], &clients, script);
    assert_eq!(
        alice.count(&format!(" UTC [{room}] bob: hello from bob\n")),
        1
    );
    // The log: h1..h5, the Commit adding bob, his Welcome, his message (shown live).
    let pages: Vec<&str> = alice
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("(history) "))
        .collect();
    let expected = [
        "alice: [encrypted change of the group]",
        "alice: [encrypted invitation]",
        "alice: [encrypted message]",
        "alice: [encrypted message]",
        "alice: [encrypted message]",
        "alice: [encrypted message]",
        "alice: [encrypted message]",
    ];
    assert_eq!(pages.len(), expected.len(), "{pages:?}");
    for (line, end) in pages.iter().zip(expected) {
        assert!(line.ends_with(&format!(" UTC [{room}] {end}")), "{line}");
    }
    assert_eq!(alice.count("] alice: h"), 0, "no text from before this run");
    assert_eq!(alice.count("2 earlier message(s)"), 3);
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
        "nothing from before he was added"
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
        "--threads",
        "--sync",
        "fsync",
    ] {
        assert!(r.stdout.contains(word), "serve --help mentions {word}");
    }
}

/// `cove serve --threads 0` is refused before anything starts, naming the valid range.
#[test]
fn serve_refuses_zero_threads() {
    let dir = TempDir::new("cli-threads");
    let r = cove(&["serve", "--threads", "0"], Some(dir.path()), "");
    assert!(!r.ok, "refused: {}", r.stdout);
    assert!(
        r.stderr.contains("1..=1024"),
        "names the range: {}",
        r.stderr
    );
    assert!(
        !dir.path().join("server.key").exists(),
        "nothing was created"
    );
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
