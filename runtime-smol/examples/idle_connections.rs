//! Scale measurement (not a test): 10,000 concurrent idle connections, handshaken and
//! logged in, against `cove serve --runtime smol` in its own process. Reports the
//! server's resident memory per idle connection and how long the handshakes took.
//!
//! Run it with `runtime-smol/scripts/idle_connections.sh` (it raises `ulimit -n`, builds
//! in release mode, and passes the `cove` binary), or by hand:
//!
//! ```text
//! ulimit -n 20000
//! cargo build --release -p cove --bin cove -p cove-smol --example idle_connections
//! target/release/examples/idle_connections --cove target/release/cove --count 10000
//! ```
//!
//! The server is the real CLI (SQLite store, the default limits but `--max-connections`),
//! so its memory is what an operator would see. The clients are cove-smol clients, all
//! in this one process on a two-thread smol executor, at most `--concurrency` of them
//! handshaking at once. Memory is `VmRSS` of `/proc/<server pid>/status` before the
//! first connection and after the last login; CPU time is from `/proc/<pid>/stat`.
//! After the logins one DM crosses from the first to the last connection to show the
//! idle connections are live, then the server gets SIGINT and the time until it has
//! told every client goodbye and exited is reported too.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cove_core::crypto::Identity;
use cove_core::hub::Reply;
use cove_core::wire::AuthMode;
use cove_smol::client::{ClientOptions, Connection, Event, connect};

struct Args {
    cove: PathBuf,
    count: usize,
    concurrency: usize,
}

fn args() -> Result<Args, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    // target/release/examples/idle_connections -> target/release/cove
    let default_cove = exe
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("cove"))
        .unwrap_or_else(|| PathBuf::from("cove"));
    let mut a = Args {
        cove: default_cove,
        count: 10_000,
        concurrency: 200,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--cove" => a.cove = PathBuf::from(value),
            "--count" => a.count = value.parse().map_err(|e| format!("--count: {e}"))?,
            "--concurrency" => {
                a.concurrency = value.parse().map_err(|e| format!("--concurrency: {e}"))?
            }
            other => {
                return Err(format!(
                    "unknown flag {other} (--cove PATH, --count N, --concurrency N)"
                ));
            }
        }
    }
    Ok(a)
}

/// `VmRSS` of a process, in KiB.
fn rss_kib(pid: u32) -> Result<u64, String> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS".to_string())
}

/// User + system CPU time of a process.
fn cpu(pid: &str) -> Result<Duration, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| e.to_string())?;
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).ok_or("bad stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|u| u.parse().ok()).ok_or("utime")?;
    let sticks: u64 = f.get(12).and_then(|s| s.parse().ok()).ok_or("stime")?;
    // Linux reports in USER_HZ, 100 on every mainstream configuration.
    Ok(Duration::from_millis((ticks + sticks) * 10))
}

struct Server {
    child: Child,
    addr: SocketAddr,
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn start_server(cove: &PathBuf, max: usize) -> Result<Server, String> {
    let dir = std::env::temp_dir().join(format!("cove-idle-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let dir = TempDir(dir);
    let mut child = Command::new(cove)
        .args(["serve", "--runtime", "smol", "--listen", "127.0.0.1:0"])
        .arg("--data")
        .arg(&dir.0)
        .args(["--max-connections", &max.to_string()])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", cove.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(a) = line.strip_prefix("listening on ") {
                let _ = tx.send(a.trim().to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .map_err(|_| "the server did not print its address".to_string())?
        .parse()
        .map_err(|e| format!("address: {e}"))?;
    Ok(Server {
        child,
        addr,
        _dir: dir,
    })
}

fn main() -> Result<(), String> {
    let args = args()?;
    let server = start_server(&args.cove, args.count + 100)?;
    let pid = server.child.id();
    // Let the server finish starting (threads, SQLite) before the baseline.
    std::thread::sleep(Duration::from_millis(500));
    let rss_before = rss_kib(pid)?;
    let cpu_before = cpu(&pid.to_string())?;
    let self_cpu_before = cpu("self")?;
    println!(
        "server pid {pid} on {}: {rss_before} KiB resident before any connection",
        server.addr
    );

    let addr = server.addr;
    let count = args.count;
    let concurrency = args.concurrency.max(1);
    let started = Instant::now();
    let done = Arc::new(AtomicUsize::new(0));
    let result: Result<Vec<Connection>, String> = cove_smol::block_on_threads(2, |ex| async move {
        // `concurrency` workers, each logging in its share one after another.
        let next = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..concurrency)
            .map(|_| {
                let next = next.clone();
                let done = done.clone();
                ex.spawn(async move {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= count {
                            return Ok::<_, String>(mine);
                        }
                        let id = Identity::generate(&mut cove_smol::os_rng());
                        let mut o = ClientOptions::new(&format!("idle{i}"), AuthMode::Register, id);
                        o.event_queue = 16;
                        o.connect_timeout = Duration::from_secs(60);
                        let c = connect(addr, o)
                            .await
                            .map_err(|e| format!("idle{i}: {e}"))?;
                        mine.push((i, c));
                        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                        if n.checked_rem(1000) == Some(0) {
                            eprintln!("  {n} logged in, {:.1} s", started.elapsed().as_secs_f64());
                        }
                    }
                })
            })
            .collect();
        let mut all = Vec::with_capacity(count);
        for w in workers {
            all.extend(w.await?);
        }
        all.sort_by_key(|(i, _)| *i);
        Ok(all.into_iter().map(|(_, c)| c).collect())
    });
    let mut conns = result?;
    let took = started.elapsed();
    let server_cpu = cpu(&pid.to_string())?.saturating_sub(cpu_before);
    let client_cpu = cpu("self")?.saturating_sub(self_cpu_before);
    let rss_after = rss_kib(pid)?;
    std::thread::sleep(Duration::from_secs(2));
    let rss_settled = rss_kib(pid)?;
    let n = conns.len() as f64;
    println!(
        "{} connections handshaken and logged in in {:.2} s ({:.0}/s)",
        conns.len(),
        took.as_secs_f64(),
        n / took.as_secs_f64()
    );
    println!(
        "  CPU: server {:.2} s ({:.3} ms per handshake+login), clients {:.2} s ({:.3} ms each)",
        server_cpu.as_secs_f64(),
        server_cpu.as_secs_f64() * 1000.0 / n,
        client_cpu.as_secs_f64(),
        client_cpu.as_secs_f64() * 1000.0 / n
    );
    println!(
        "server RSS: {rss_before} KiB -> {rss_after} KiB right after the last login, {rss_settled} KiB 2 s later"
    );
    println!(
        "  = {:.2} KiB per idle connection (target <= 16 KiB)",
        (rss_settled.saturating_sub(rss_before)) as f64 / n
    );

    // The idle connections are live: a DM from the first reaches the last.
    let last = conns.len() - 1;
    let to = format!("idle{last}");
    let live = cove_smol::smol::block_on(async {
        conns[0]
            .send_dm(&to, b"still there?")
            .await
            .map_err(|e| e.to_string())?;
        conns[last]
            .events()
            .wait_for(Duration::from_secs(10), |e| match e {
                Event::Message(Reply::IncomingDm { body, .. }) => Some(body.to_vec()),
                _ => None,
            })
            .await
            .ok_or("the DM did not arrive".to_string())
    })?;
    println!(
        "a DM from idle0 reached {to}: {:?}",
        String::from_utf8_lossy(&live)
    );

    // Graceful shutdown of all of them.
    let stop = Instant::now();
    let _ = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
    let mut server = server;
    let status = server.child.wait().map_err(|e| e.to_string())?;
    let told = cove_smol::smol::block_on(async {
        let mut told = 0usize;
        for c in conns.iter_mut() {
            if let Some(Event::Closed { .. }) = c
                .events()
                .wait_for(Duration::from_secs(10), |e| {
                    matches!(e, Event::Closed { .. }).then(|| e.clone())
                })
                .await
            {
                told += 1;
            }
        }
        told
    });
    println!(
        "SIGINT: server exited ({status}) in {:.2} s; {told} of {} clients saw the close",
        stop.elapsed().as_secs_f64(),
        conns.len()
    );
    Ok(())
}
