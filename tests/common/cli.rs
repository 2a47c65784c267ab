//! Driving the `cove` program from the end-to-end tests as a person (or a script) does:
//! one-shot runs with piped input, a `cove chat` left running and typed into, and a
//! `cove serve` whose log is kept. Included by the CLI test binaries with
//! `#[path = "common/cli.rs"] mod cli;` next to `mod common;`.
#![allow(dead_code)] // each test binary uses the part it needs

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use crate::common::T;

pub const COVE: &str = env!("CARGO_BIN_EXE_cove");

/// What one `cove` run printed.
pub struct Run {
    /// Exit status 0.
    pub ok: bool,
    /// Everything printed on stdout.
    pub stdout: String,
    /// Everything printed on stderr.
    pub stderr: String,
}

impl Run {
    /// How often `needle` occurs in stdout.
    pub fn count(&self, needle: &str) -> usize {
        self.stdout.matches(needle).count()
    }
}

/// Runs `cove ARGS` with `input` on stdin, waiting at most `T`.
pub fn cove(args: &[&str], data: Option<&Path>, input: &str) -> Run {
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

/// Runs `cove chat --server ADDR --name NAME EXTRA... --data DATA` with `input` piped in.
pub fn chat(addr: &str, name: &str, extra: &[&str], data: &Path, input: &str) -> Run {
    let mut args = vec!["chat", "--server", addr, "--name", name];
    args.extend_from_slice(extra);
    let r = cove(&args, Some(data), input);
    eprintln!("--- {name} {extra:?}\n{}{}", r.stdout, r.stderr);
    r
}

/// A `cove chat` left running: the test types into its input as it goes and reads its
/// lines (stdout, and stderr marked as such) as they come.
pub struct Live {
    child: Child,
    input: Option<ChildStdin>,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Live {
    /// Starts `cove chat --server ADDR --name NAME EXTRA... --data DATA`.
    pub fn start(addr: &str, name: &str, extra: &[&str], data: &Path) -> Live {
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

    /// Types `text` (lines ending in newlines).
    pub fn type_lines(&mut self, text: &str) {
        let input = self.input.as_mut().expect("input still open");
        input.write_all(text.as_bytes()).expect("type");
    }

    /// Waits for a line containing `needle` and returns it.
    pub fn until(&mut self, needle: &str) -> String {
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
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
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
    pub fn quit(mut self) -> String {
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
pub fn room_after(out: &str, marker: &str) -> String {
    out.split(marker)
        .nth(1)
        .and_then(|rest| rest.get(..6))
        .unwrap_or_else(|| panic!("no {marker:?} in {out}"))
        .to_string()
}

impl Live {
    /// Every line printed so far (read by [`Live::until`]).
    pub fn printed(&self) -> String {
        self.seen.join("\n")
    }
}

/// A `cove serve` run with `RUST_LOG=trace`, everything it prints kept in files: its log
/// (stderr) and its stdout.
pub struct LoggedServer {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its stderr (the log).
    pub log: PathBuf,
    /// Its stdout.
    pub out: PathBuf,
}

impl LoggedServer {
    /// Starts `cove serve --listen 127.0.0.1:0 --runtime std --data DATA EXTRA...` with
    /// `RUST_LOG=trace`, its output in `logs/serve.log` and `logs/serve.out`.
    pub fn start(data: &Path, logs: &Path, extra: &[&str]) -> LoggedServer {
        std::fs::create_dir_all(logs).expect("log dir");
        let log = logs.join("serve.log");
        let out = logs.join("serve.out");
        let stderr = File::create(&log).expect("log file");
        let mut child = Command::new(COVE)
            .args(["serve", "--listen", "127.0.0.1:0", "--runtime", "std"])
            .args(extra)
            .arg("--data")
            .arg(data)
            .env("RUST_LOG", "trace")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("spawn cove serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut copy = File::create(&out).expect("stdout file");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(copy, "{line}");
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        let addr = match rx.recv_timeout(T) {
            Ok(a) => a.parse().expect("address"),
            Err(_) => {
                let _ = child.kill();
                panic!("cove serve did not print its address")
            }
        };
        LoggedServer {
            child,
            addr,
            log,
            out,
        }
    }

    /// SIGTERM, then waits at most `T` for the exit (its store is closed cleanly).
    pub fn terminate(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + T;
        while self.child.try_wait().expect("wait").is_none() {
            assert!(Instant::now() < deadline, "cove serve did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for LoggedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A string no test prints by accident: `CANARY-` and 16 random hex digits.
pub fn canary() -> String {
    format!(
        "CANARY-{:016x}",
        cove_std::random_u64() ^ u64::from(std::process::id())
    )
}

/// What [`occurrences`] looked at and found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Files read.
    pub files: Vec<PathBuf>,
    /// Their bytes together.
    pub bytes: u64,
    /// The files `needle` occurs in, and how often.
    pub hits: Vec<(PathBuf, usize)>,
}

/// Counts `needle` in every file under `dir` (every byte of each, whatever it holds).
pub fn occurrences(dir: &Path, needle: &[u8]) -> Scan {
    let mut scan = Scan::default();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                todo.push(path);
                continue;
            }
            // A file may go away meanwhile (SQLite's shared memory, a temporary file).
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let n = count_bytes(&bytes, needle);
            scan.bytes += bytes.len() as u64;
            if n > 0 {
                scan.hits.push((path.clone(), n));
            }
            scan.files.push(path);
        }
    }
    scan
}

/// How often `needle` occurs in `hay`.
pub fn count_bytes(hay: &[u8], needle: &[u8]) -> usize {
    if needle.is_empty() {
        return 0;
    }
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

/// The client data directory's state file of `nick` on `addr` (see `cove chat`'s
/// mls_state: ':' becomes "%3A").
pub fn state_file(clients: &Path, addr: &str, nick: &str) -> PathBuf {
    clients
        .join("mls")
        .join(addr.replace(':', "%3A"))
        .join(format!("{nick}.state"))
}
