//! End-to-end encryption as `cove chat` users get it: the server relays and stores room
//! and direct messages without ever holding their text (checked byte by byte in its data
//! directory and its most verbose log), an offline recipient reads a direct message once,
//! and a member removed from a room cannot decrypt what is sent after the removal.

#[path = "common/cli.rs"]
mod cli;
mod common;

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use cli::{
    Live, LoggedServer, Scan, canary, chat, count_bytes, occurrences, room_after, state_file,
};
use common::{CliServer, TempDir};
use cove_core::e2ee::MlsCrypto;
use cove_core::e2ee::session::{EntryKind, SecureEvent, SecureSession};
use cove_core::hub::Reply;
use cove_core::wire::RoomId;
use cove_core::wire::mls::{ContentType, message_header};

/// Asserts that `needle` is nowhere in what the server wrote: every file under its data
/// directory (database, WAL, shared memory, key, anything) and its log and stdout. The
/// scan must have read the database and found what the server does know (the room's
/// title), or finding nothing would prove nothing.
fn server_never_held(needle: &str, scan: &Scan, server: (&Path, &Path), known: &str) {
    assert!(
        scan.files.iter().any(|f| f.ends_with("cove.db")),
        "the database was scanned: {:?}",
        scan.files
    );
    assert!(scan.bytes > 0);
    assert!(
        scan.hits.is_empty(),
        "{needle} found on the server: {:?}",
        scan.hits
    );
    let data = server.0;
    let known_hits = occurrences(data, known.as_bytes());
    assert!(
        !known_hits.hits.is_empty(),
        "the scan finds the metadata the server keeps ({known:?})"
    );
    let log = std::fs::read(server.1).expect("server log");
    assert!(
        count_bytes(&log, b"DEBUG") > 0 && count_bytes(&log, b"request") > 0,
        "the log was verbose: {} bytes",
        log.len()
    );
    assert_eq!(
        count_bytes(&log, needle.as_bytes()),
        0,
        "{needle} in the log"
    );
}

/// Alice and bob talk in a room and in a direct conversation, every message carrying a
/// fresh canary; bob reads each once. Then the canary is counted in every file of the
/// server's data directory and in its trace-level log, while it runs and after it stops:
/// zero. The clients do not keep the text at rest either.
#[test]
fn the_server_never_holds_the_text_of_room_or_direct_messages() {
    let dir = TempDir::new("e2ee-canary");
    let server_data = dir.path().join("server");
    let logs = dir.path().join("logs");
    let clients = dir.path().join("clients");
    let server = LoggedServer::start(&server_data, &logs, &[]);
    let addr = server.addr.to_string();
    let (log, out) = (server.log.clone(), server.out.clone());
    let canary = canary();

    let mut alice = Live::start(&addr, "alice", &["--register"], &clients);
    alice.type_lines("/create canary lobby\n");
    let room = room_after(&alice.until("you created room "), "you created room ");
    alice.until(&format!("* {room}: end-to-end encryption is set up"));
    let mut bob = Live::start(&addr, "bob", &["--register"], &clients);
    bob.until("logged in as bob");
    bob.type_lines(&format!("/join {room}\n"));
    bob.until(&format!("* {room}: end-to-end encryption is set up"));
    alice.until(&format!("* [{room}] bob joined the encrypted group"));

    alice.type_lines(&format!("in the room: {canary}\n"));
    bob.until(&format!("[{room}] alice: in the room: {canary}"));
    alice.type_lines(&format!("/msg bob in private: {canary}\n"));
    bob.until(&format!("[dm from alice] in private: {canary}"));
    bob.type_lines(&format!("/msg alice back: {canary}\n"));
    alice.until(&format!("[dm from bob] back: {canary}"));
    bob.type_lines(&format!("in the room too: {canary}\n"));
    alice.until(&format!("[{room}] bob: in the room too: {canary}"));

    let bob_out = bob.quit();
    let alice_out = alice.quit();
    for (out, line) in [
        (&bob_out, format!("[{room}] alice: in the room: {canary}")),
        (&bob_out, format!("[dm from alice] in private: {canary}")),
        (&bob_out, format!("[dm to alice] back: {canary}")),
        (&bob_out, format!("[{room}] bob: in the room too: {canary}")),
        (&alice_out, format!("[dm from bob] back: {canary}")),
        (&alice_out, format!("[dm to bob] in private: {canary}")),
    ] {
        assert_eq!(out.matches(&line).count(), 1, "{line:?} once");
    }
    assert_eq!(
        bob_out.matches(&canary).count(),
        4,
        "nothing else, nothing twice"
    );

    let running = occurrences(&server_data, canary.as_bytes());
    server_never_held(&canary, &running, (&server_data, &log), "canary lobby");
    server.terminate();
    let stopped = occurrences(&server_data, canary.as_bytes());
    server_never_held(&canary, &stopped, (&server_data, &log), "canary lobby");
    let stdout = std::fs::read(&out).expect("server stdout");
    assert!(count_bytes(&stdout, b"listening on") > 0);
    assert_eq!(count_bytes(&stdout, canary.as_bytes()), 0);

    // Nor do the clients write it down: keys, markers and MLS state only.
    let at_rest = occurrences(&clients, canary.as_bytes());
    assert!(at_rest.files.iter().any(|f| f.ends_with("bob.state")));
    assert!(at_rest.hits.is_empty(), "{:?}", at_rest.hits);
}

/// Bob is offline when alice writes to him for the first time: she opens the conversation
/// from one of his KeyPackages. He reads it at his next login, exactly once; the login
/// after that shows the conversation but not the message again. The server held only
/// ciphertext meanwhile.
#[test]
fn a_direct_message_to_an_offline_user_is_read_once_at_login() {
    let dir = TempDir::new("e2ee-offline");
    let server_data = dir.path().join("server");
    let logs = dir.path().join("logs");
    let clients = dir.path().join("clients");
    let server = LoggedServer::start(&server_data, &logs, &[]);
    let addr = server.addr.to_string();
    let canary = canary();

    let bob = chat(&addr, "bob", &["--register"], &clients, "");
    assert!(bob.ok);
    let alice = chat(
        &addr,
        "alice",
        &["--register"],
        &clients,
        &format!("/msg bob while you were out: {canary}\n"),
    );
    assert!(alice.ok);
    assert_eq!(
        alice.count(&format!("[dm to bob] while you were out: {canary}")),
        1
    );

    let stored = occurrences(&server_data, canary.as_bytes());
    server_never_held(&canary, &stored, (&server_data, &server.log), "alice");

    let bob = chat(&addr, "bob", &[], &clients, "");
    assert!(bob.ok);
    assert_eq!(
        bob.count("* direct conversation with alice: catching up"),
        1
    );
    assert_eq!(
        bob.count(&format!("[dm from alice] while you were out: {canary}")),
        1
    );
    assert_eq!(bob.count(&canary), 1, "exactly once");

    let bob = chat(&addr, "bob", &[], &clients, "");
    assert!(bob.ok);
    assert_eq!(
        bob.count("* direct conversation with alice: catching up"),
        1
    );
    assert_eq!(bob.count(&canary), 0, "not again at the next login");
    assert_eq!(bob.count("could not be decrypted"), 0);

    let after = occurrences(&server_data, canary.as_bytes());
    server_never_held(&canary, &after, (&server_data, &server.log), "alice");
}

/// One room log entry as the server stored it.
struct Stored {
    seq: u64,
    from: String,
    body: Vec<u8>,
}

/// Every entry of `room`'s log in the server's database, in order.
fn room_log(server_data: &Path, room: &str) -> Vec<Stored> {
    let db = rusqlite::Connection::open(server_data.join("cove.db")).expect("open the database");
    let mut q = db
        .prepare("SELECT seq, sender, body FROM room_log WHERE room = ?1 ORDER BY seq")
        .expect("query");
    q.query_map([room.as_bytes()], |row| {
        Ok(Stored {
            seq: u64::try_from(row.get::<_, i64>(0)?).unwrap_or_default(),
            from: row.get(1)?,
            body: row.get(2)?,
        })
    })
    .expect("rows")
    .map(|r| r.expect("row"))
    .collect()
}

/// Hands `entries` to a session restored from `state` (bob's, with his identity) as the
/// server would deliver them, and returns what each became.
fn replay(clients: &Path, state: &[u8], room: RoomId, entries: &[&Stored]) -> Vec<EntryKind> {
    let identity =
        cove::files::load_identity(&clients.join("keys").join("bob.key")).expect("bob's identity");
    let crypto = MlsCrypto::from_seed([7; 32]);
    let mut bob = SecureSession::restore(&identity, "bob", crypto, state).expect("restores");
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let mut kinds = Vec::new();
    for e in entries {
        let reply = Reply::RoomMessage {
            room,
            seq: e.seq,
            from: e.from.as_str().into(),
            timestamp: 0,
            body: e.body.as_slice().into(),
        };
        bob.handle_reply(&reply, secs);
        while let Some(event) = bob.poll_event() {
            if let SecureEvent::Entry { kind, .. } = event {
                kinds.push(kind);
            }
        }
    }
    kinds
}

fn is_application(body: &[u8]) -> bool {
    message_header(body).is_ok_and(|h| h.content_type == ContentType::Application)
}

/// Bob keeps a copy of his state from before alice removes him. Through the CLI: his own
/// next login learns he is out and deletes the room's keys, and a login from a fresh data
/// directory with the old copy prints nothing of what followed (the server no longer
/// sends it). Cryptographically: every ciphertext the server stored for the room is
/// handed to a session restored from that copy; it decrypts what was sent before the
/// removal (so the replay works) but not the message after it, whether it applies the
/// Commit that removed him or skips it.
#[test]
fn a_removed_member_cannot_decrypt_what_is_sent_after_the_removal() {
    let dir = TempDir::new("e2ee-removed");
    let server_data = dir.path().join("server");
    let clients = dir.path().join("clients");
    let server = CliServer::start(&server_data, "std");
    let addr = server.addr.to_string();
    let (before, canary) = (format!("between-{}", canary()), canary());

    assert!(chat(&addr, "bob", &["--register"], &clients, "").ok);
    assert!(chat(&addr, "carol", &["--register"], &clients, "").ok);
    let mut alice = Live::start(&addr, "alice", &["--register"], &clients);
    alice.type_lines("/create team\n");
    let room = room_after(&alice.until("you created room "), "you created room ");
    alice.until(&format!("* {room}: end-to-end encryption is set up"));
    let bob = chat(&addr, "bob", &[], &clients, &format!("/join {room}\n"));
    assert_eq!(
        bob.count(&format!("* {room}: end-to-end encryption is set up")),
        1
    );
    let mut carol = Live::start(&addr, "carol", &[], &clients);
    carol.until("logged in as carol");
    carol.type_lines(&format!("/join {room}\n"));
    carol.until(&format!("* {room}: end-to-end encryption is set up"));
    alice.until(&format!("* [{room}] carol joined the encrypted group"));
    alice.type_lines("hello team\n");
    carol.until(&format!("[{room}] alice: hello team"));
    let bob = chat(&addr, "bob", &[], &clients, "");
    assert_eq!(bob.count(&format!(" UTC [{room}] alice: hello team")), 1);

    // Bob is offline from here on; his state as of now is kept.
    let bob_state_path = state_file(&clients, &addr, "bob");
    let old_state = std::fs::read(&bob_state_path).expect("bob's state");
    alice.type_lines(&format!("{before}\n"));
    carol.until(&format!("[{room}] alice: {before}"));
    alice.type_lines("/remove bob\n");
    alice.until(&format!("* removed bob from {room}"));
    carol.until(&format!(
        "* [{room}] alice removed bob from the encrypted group"
    ));
    alice.type_lines(&format!("after: {canary}\n"));
    carol.until(&format!("[{room}] alice: after: {canary}"));
    alice.quit();
    carol.quit();

    // His own login: he is out, and the room's keys go.
    let bob = chat(&addr, "bob", &[], &clients, "");
    assert!(bob.ok);
    assert_eq!(
        bob.count(&format!(
            "* you are no longer in room {room}: its keys are deleted from this device"
        )),
        1
    );
    assert_eq!(bob.count(&canary), 0);
    assert_eq!(bob.count(&before), 0, "offline during it, removed since");

    // A login with the copy of the old state, from a fresh data directory.
    let old = dir.path().join("old-bob");
    std::fs::create_dir_all(old.join("keys")).expect("mkdir");
    std::fs::copy(clients.join("keys/bob.key"), old.join("keys/bob.key")).expect("key");
    std::fs::copy(clients.join("known_servers"), old.join("known_servers")).expect("pin");
    let old_state_path = state_file(&old, &addr, "bob");
    std::fs::create_dir_all(old_state_path.parent().expect("dir")).expect("mkdir");
    std::fs::write(&old_state_path, &old_state).expect("old state");
    let private = std::os::unix::fs::PermissionsExt::from_mode(0o600);
    std::fs::set_permissions(&old_state_path, private).expect("chmod");
    let old_bob = chat(&addr, "bob", &[], &old, "");
    assert!(old_bob.ok);
    assert_eq!(old_bob.count(&canary), 0);
    assert_eq!(old_bob.count(&before), 0);
    drop(server);

    // The server's own ciphertexts, replayed into the old state.
    let room_id = RoomId::parse(room.as_bytes()).expect("room ID");
    let log = room_log(&server_data, &room);
    let apps: Vec<usize> = (0..log.len())
        .filter(|&i| is_application(&log[i].body))
        .collect();
    // hello team, the one before the removal, the one after.
    assert_eq!(apps.len(), 3, "{} entries", log.len());
    let (between, last) = (apps[1], apps[2]);
    assert!(
        log[between + 1..last]
            .iter()
            .any(|e| !is_application(&e.body)),
        "the removal Commit lies between the two"
    );
    assert!(log[last].from == "alice" && log[between].from == "alice");
    for e in &log {
        assert_eq!(count_bytes(&e.body, canary.as_bytes()), 0);
    }

    let all: Vec<&Stored> = log.iter().collect();
    let kinds = replay(&clients, &old_state, room_id, &all);
    let texts: Vec<String> = kinds
        .iter()
        .filter_map(|k| match k {
            EntryKind::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(
        texts,
        [before.as_str()],
        "reads up to the removal, not after"
    );
    assert!(
        kinds.iter().any(
            |k| matches!(k, EntryKind::Change { removed, .. } if removed.iter().any(|n| n == "bob"))
        ),
        "the Commit removed him: {kinds:?}"
    );

    // Skipping the Commit does not help: the new epoch's keys were never his.
    let skipping: Vec<&Stored> = log[..=between].iter().chain([&log[last]]).collect();
    let kinds = replay(&clients, &old_state, room_id, &skipping);
    assert!(
        matches!(kinds.last(), Some(EntryKind::Unreadable(_))),
        "{kinds:?}"
    );
    assert!(
        !kinds
            .iter()
            .any(|k| matches!(k, EntryKind::Text(t) if count_bytes(t, canary.as_bytes()) > 0))
    );
}

/// Bob's end-to-end state is lost (deleted, as on a new device). At his next login `cove
/// chat` says so and rejoins his room and his direct conversation with new keys; what
/// alice sends afterwards he reads, in the room and by DM, and he can write back.
#[test]
fn a_user_whose_state_was_lost_rejoins_and_reads_what_follows() {
    let dir = TempDir::new("e2ee-lost-state");
    let server_data = dir.path().join("server");
    let logs = dir.path().join("logs");
    let clients = dir.path().join("clients");
    let server = LoggedServer::start(&server_data, &logs, &[]);
    let addr = server.addr.to_string();

    let mut alice = Live::start(&addr, "alice", &["--register"], &clients);
    alice.type_lines("/create den\n");
    let room = room_after(&alice.until("you created room "), "you created room ");
    alice.until(&format!("* {room}: end-to-end encryption is set up"));
    let mut bob = Live::start(&addr, "bob", &["--register"], &clients);
    bob.until("logged in as bob");
    bob.type_lines(&format!("/join {room}\n"));
    bob.until(&format!("* {room}: end-to-end encryption is set up"));
    alice.type_lines("/msg bob hello\n");
    bob.until("[dm from alice] hello");
    bob.quit();

    let state = state_file(&clients, &addr, "bob");
    assert!(state.exists(), "{}", state.display());
    std::fs::remove_file(&state).expect("lose the state");

    let mut bob = Live::start(&addr, "bob", &[], &clients);
    bob.until("* caught up");
    // The room and the conversation, in either order: said, rejoined, ready again.
    let printed = bob.printed();
    for label in [&room[..], "dm with alice"] {
        assert_eq!(
            printed
                .matches(&format!("* [{label}] rejoining it with new keys now"))
                .count(),
            1,
            "{printed}"
        );
    }
    let room_ready = format!("* {room}: end-to-end encryption is set up");
    let dm_ready = "* direct conversation with alice: end-to-end encrypted";
    let first = bob.until("end-to-end encrypt");
    let second = if first.contains(&room_ready) {
        dm_ready
    } else {
        &room_ready[..]
    };
    bob.until(second);
    alice.type_lines("in the den again\n/msg bob are you back?\n");
    bob.until(&format!("[{room}] alice: in the den again"));
    bob.until("[dm from alice] are you back?");
    bob.type_lines("/msg alice yes\n");
    alice.until("[dm from bob] yes");
    let bob_out = bob.quit();
    alice.quit();
    assert_eq!(bob_out.matches("hello").count(), 0, "{bob_out}");
    assert_eq!(bob_out.matches("could not be decrypted").count(), 0);
}
