//! How many durable room messages per second `SqliteStore` takes, beside direct messages.
//!
//! ```text
//! cargo run -p cove --example store_throughput -- [COUNT] [DIR] [RUNS]
//! ```
//!
//! For each batch size (1, 16, 256 ops per `Store::apply`, i.e. per transaction and fsync)
//! it stores COUNT (default 10000) messages of 256 bytes into a fresh database in DIR
//! (default: the system's temporary directory; put it on the disk you care about, since
//! `synchronous = FULL` makes every commit wait for the disk), three ways:
//!
//! - `dm`: `DmQueued`, the offline direct message;
//! - `room`: `RoomMessageLogged` into one room;
//! - `room+trim`: the same followed by the `LogTrimmed` the hub emits in steady state once
//!   the log is full (1000 messages, the hub's default `log_max_messages`).
//!
//! It prints messages per second by the wall clock and the ratio to `dm`, then the CPU
//! time per message (Linux: the thread's on-CPU time from `/proc/thread-self/schedstat`,
//! which excludes waiting for the disk and for other processes; `-` elsewhere). Each
//! figure is the best of RUNS (default 3) runs, setup excluded, since on a shared
//! machine noise only ever slows a run down. Wall-clock figures on a real disk measure
//! fsyncs; with DIR on a tmpfs (`/dev/shm`) fsyncs cost nothing and the wall clock
//! measures the store's own work too.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cove::store::SqliteStore;
use cove_core::store::{LoggedMessage, QueuedDm, Store, StoreOp};
use cove_core::wire::RoomId;

/// The hub's default `log_max_messages`.
const RETAINED: u64 = 1_000;
const BODY_LEN: usize = 256;

#[derive(Clone, Copy)]
enum Kind {
    Dm,
    Room,
    RoomTrimmed,
}

fn room() -> RoomId {
    RoomId(*b"BENCH0")
}

/// The ops that store message number `i` (from 1).
fn ops_for(kind: Kind, i: u64, body: &Arc<[u8]>) -> Vec<StoreOp> {
    match kind {
        Kind::Dm => vec![StoreOp::DmQueued(QueuedDm {
            msg_id: i,
            to: "bob".into(),
            from: "alice".into(),
            timestamp: i,
            body: body.clone(),
        })],
        Kind::Room | Kind::RoomTrimmed => {
            let mut ops = vec![StoreOp::RoomMessageLogged(LoggedMessage {
                room: room(),
                seq: i,
                from: "alice".into(),
                timestamp: i,
                body: body.clone(),
            })];
            if matches!(kind, Kind::RoomTrimmed) && i > RETAINED {
                ops.push(StoreOp::LogTrimmed {
                    room: room(),
                    below: i + 1 - RETAINED,
                });
            }
            ops
        }
    }
}

/// Removes the database and its WAL files, if any.
fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

/// This thread's time on a CPU so far, in nanoseconds, where Linux tells it.
fn cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

/// What one run took.
#[derive(Clone, Copy)]
struct Took {
    wall: Duration,
    cpu_ns: Option<u64>,
}

/// Stores `count` messages in batches of `batch` messages.
fn run(dir: &Path, count: u64, batch: u64, kind: Kind) -> Result<Took, Box<dyn std::error::Error>> {
    let path = dir.join("cove-store-throughput.db");
    remove_db(&path);
    let mut store = SqliteStore::open(&path)?;
    store.apply(&[
        StoreOp::AccountCreated {
            name: "alice".into(),
            key: [1; 32],
        },
        StoreOp::AccountCreated {
            name: "bob".into(),
            key: [2; 32],
        },
        StoreOp::RoomCreated {
            room: room(),
            title: "bench".into(),
            private: false,
            admin: "alice".into(),
        },
        StoreOp::MemberAdded {
            room: room(),
            name: "alice".into(),
            since: 0,
        },
    ])?;
    let body: Arc<[u8]> = Arc::from(vec![0xa5; BODY_LEN]);
    // Built beforehand so that only the store is timed.
    let batches: Vec<Vec<StoreOp>> = (0..count.div_ceil(batch))
        .map(|b| {
            (b * batch + 1..=((b + 1) * batch).min(count))
                .flat_map(|i| ops_for(kind, i, &body))
                .collect()
        })
        .collect();
    let (start, cpu_start) = (Instant::now(), cpu_ns());
    for ops in &batches {
        store.apply(ops)?;
    }
    let took = Took {
        wall: start.elapsed(),
        cpu_ns: cpu_start.zip(cpu_ns()).map(|(a, b)| b.saturating_sub(a)),
    };
    let loaded = store.load(cove_core::store::LogMemory::ALL)?;
    let stored = match kind {
        Kind::Dm => loaded.queued.len() as u64,
        _ => loaded.rooms[0].log.len() as u64,
    };
    let expected = match kind {
        Kind::RoomTrimmed => count.min(RETAINED),
        _ => count,
    };
    if stored != expected {
        return Err(format!("stored {stored} messages, expected {expected}").into());
    }
    drop(store);
    remove_db(&path);
    Ok(took)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let count: u64 = match args.next() {
        Some(a) => a.parse()?,
        None => 10_000,
    };
    let dir = args.next().map_or_else(std::env::temp_dir, PathBuf::from);
    let runs: u32 = match args.next() {
        Some(a) => a.parse()?,
        None => 3,
    };
    println!(
        "{count} messages of {BODY_LEN} bytes per run, best of {runs}; WAL, synchronous = FULL; in {}",
        dir.display()
    );
    println!(
        "{:>5}  {:>9}  {:>9} {:>5}  {:>9} {:>5}  | CPU µs/msg: {:>5} {:>5} {:>9}",
        "batch", "dm msg/s", "room", "ratio", "room+trim", "ratio", "dm", "room", "room+trim"
    );
    let kinds = [Kind::Dm, Kind::Room, Kind::RoomTrimmed];
    let show = |cpu: Option<f64>| cpu.map_or_else(|| "-".to_string(), |c| format!("{c:.1}"));
    for batch in [1, 16, 256] {
        // Per kind: the fastest wall-clock run and the least CPU time. The kinds take
        // turns within each round, so a slow spell of the disk or the machine hits them
        // alike rather than whichever happened to run then.
        let mut wall = [Duration::MAX; 3];
        let mut cpu: [Option<u64>; 3] = [None; 3];
        for _ in 0..runs.max(1) {
            for (k, &kind) in kinds.iter().enumerate() {
                let took = run(&dir, count, batch, kind)?;
                wall[k] = wall[k].min(took.wall);
                cpu[k] = match (cpu[k], took.cpu_ns) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
        let rate = wall.map(|w| count as f64 / w.as_secs_f64());
        let per_msg = cpu.map(|c| c.map(|ns| ns as f64 / 1_000.0 / count as f64));
        println!(
            "{batch:>5}  {:>9.0}  {:>9.0} {:>5.2}  {:>9.0} {:>5.2}  |             {:>5} {:>5} {:>9}",
            rate[0],
            rate[1],
            rate[1] / rate[0],
            rate[2],
            rate[2] / rate[0],
            show(per_msg[0]),
            show(per_msg[1]),
            show(per_msg[2]),
        );
    }
    Ok(())
}
