//! Helpers shared by the end-to-end test binaries: temporary directories, a `cove serve`
//! child process, and the one timeout every wait uses.
#![allow(dead_code)] // each test binary uses the part it needs

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long any single expected thing may take. Generous: CI machines are small and
/// shared, and a passing run never waits this long.
pub const T: Duration = Duration::from_secs(20);

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh, empty directory.
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "cove-conf-{tag}-{}-{n}-{}",
            std::process::id(),
            cove_std::random_u64() % 1_000_000
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `cove serve` process.
pub struct CliServer {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl CliServer {
    /// Starts `cove serve --listen 127.0.0.1:0 --data DIR --runtime RUNTIME` and waits
    /// for its "listening on" line.
    pub fn start(data: &Path, runtime: &str) -> CliServer {
        CliServer::start_with(data, runtime, "127.0.0.1:0", &[])
    }

    /// Starts `cove serve --listen LISTEN --data DIR --runtime RUNTIME EXTRA...` and waits
    /// for its "listening on" line.
    pub fn start_with(data: &Path, runtime: &str, listen: &str, extra: &[&str]) -> CliServer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cove"))
            .args(["serve", "--listen", listen, "--runtime", runtime])
            .args(extra)
            .arg("--data")
            .arg(data)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn cove serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
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
        CliServer { child, addr }
    }

    /// SIGKILL: no shutdown, no flush, no goodbye.
    pub fn kill_9(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }

    /// SIGTERM (what Ctrl-C's handler also does), then waits at most `T` for the exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        let deadline = std::time::Instant::now() + T;
        loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                return st;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "cove serve did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for CliServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
