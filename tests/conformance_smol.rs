//! The conformance suite against cove-smol, the async adapter, on a smol executor with
//! two threads per server (as `cove serve --runtime smol` runs it on this machine).

mod common;
mod conformance;

use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread::JoinHandle;

use conformance::{RunningServer, Runtime, Setup, T};
use cove::serve::smol_options;
use cove::store::SqliteStore;
use cove_smol::server::{Server, ServerError, ServerHandle};
use cove_std::server::ServerOptions;

struct Smol;

struct SmolServer {
    handle: ServerHandle,
    addr: SocketAddr,
    thread: JoinHandle<Result<(), ServerError>>,
}

impl RunningServer for SmolServer {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn peak_outbound_bytes(&self) -> usize {
        self.handle.peak_outbound_bytes()
    }

    fn stop(self: Box<Self>) {
        self.handle.shutdown();
        self.thread
            .join()
            .expect("server thread")
            .expect("server stopped cleanly");
    }
}

impl Runtime for Smol {
    const NAME: &'static str = "smol";
    const CLI_RUNTIME: &'static str = "smol";

    fn start(setup: Setup) -> Box<dyn RunningServer> {
        let mut options = ServerOptions::default();
        setup.limits.apply(&mut options);
        let options = smol_options(options);
        let store = SqliteStore::open(&setup.db).expect("open store");
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            cove_smol::block_on_threads(2, |ex| async move {
                let server = Server::bind("127.0.0.1:0", setup.identity, store, options, ex)
                    .await
                    .expect("bind server");
                let addr = server.local_addr().expect("bound address");
                let _ = tx.send((server.handle(), addr));
                server.run().await
            })
        });
        let (handle, addr) = rx.recv_timeout(T).expect("server started");
        Box::new(SmolServer {
            handle,
            addr,
            thread,
        })
    }
}

conformance::suite!(Smol);

/// Runs `cove chat --runtime smol ARGS` with `input` piped in; returns its stdout once it
/// exits (within `T`).
fn smol_chat(
    addr: &str,
    name: &str,
    extra: &[&str],
    data: &std::path::Path,
    input: &str,
) -> String {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_cove"))
        .args([
            "chat",
            "--runtime",
            "smol",
            "--server",
            addr,
            "--name",
            name,
        ])
        .args(extra)
        .arg("--data")
        .arg(data)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn cove chat");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).expect("input");
    drop(stdin);
    let mut out = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let deadline = std::time::Instant::now() + T;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "cove chat {name} failed");
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("cove chat {name} did not finish in time");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let stdout = reader.join().expect("stdout");
    eprintln!("--- {name}\n{stdout}");
    stdout
}

/// The tour with the smol adapter on both ends: `cove serve --runtime smol` and piped
/// `cove chat --runtime smol` clients; an offline DM survives `kill -9` and is shown
/// exactly once.
#[test]
fn cli_tour_with_smol_server_and_smol_clients() {
    let dir = conformance::TempDir::new("smol-tour");
    let server_data = dir.path().join("server");
    let clients = dir.path().join("clients");
    let server = conformance::CliServer::start(&server_data, "smol");
    let addr = server.addr.to_string();
    let bob = smol_chat(&addr, "bob", &["--register"], &clients, "");
    assert_eq!(bob.matches("registered and logged in as bob").count(), 1);
    let alice = smol_chat(
        &addr,
        "alice",
        &["--register"],
        &clients,
        "/create lobby\nhello room\n/msg bob see you after the crash\n",
    );
    assert!(alice.contains("you created room"), "{alice}");
    assert!(alice.contains("alice: hello room"), "{alice}");
    // The DM is end-to-end encrypted: it opens a direct conversation from one of bob's
    // KeyPackages and waits in its log while he is offline.
    assert_eq!(
        alice.matches("[dm to bob] see you after the crash").count(),
        1
    );
    server.kill_9();

    // Same address: clients keep their keys per server address.
    let server = conformance::CliServer::start_with(&server_data, "smol", &addr, &[]);
    let addr = server.addr.to_string();
    let bob = smol_chat(&addr, "bob", &[], &clients, "/users\n");
    assert_eq!(
        bob.matches("* direct conversation with alice: catching up")
            .count(),
        1
    );
    assert_eq!(
        bob.matches("[dm from alice] see you after the crash")
            .count(),
        1
    );
    assert!(bob.contains("users: "), "{bob}");
    let bob = smol_chat(&addr, "bob", &[], &clients, "");
    assert!(bob.contains("logged in as bob"), "{bob}");
    assert_eq!(bob.matches("[dm from alice]").count(), 0);
}
