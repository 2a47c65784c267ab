//! `cove bench`: a load generator that ships with the server, like `nats bench` and
//! `redis-benchmark`. It registers clients, fills rooms, sends timestamped messages and
//! reports throughput, end-to-end latency, loss, its own CPU and the server's. With
//! `--irc` it drives an IRC server with the same loop and workload, for comparison.
//!
//! Files: [`args`] the options, [`plan`] the workload's shape and message header,
//! [`worker`] one thread's epoll loop, [`cove_ep`] / [`irc_ep`] the two protocols,
//! [`stats`] histograms and sequence tracking, [`report`] the output, [`sys`] /proc.

pub mod args;
pub mod cove_ep;
pub mod endpoint;
pub mod irc_ep;
pub mod plan;
pub mod report;
pub mod shared;
pub mod stats;
pub mod sys;
pub mod worker;

use std::net::ToSocketAddrs;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

pub use args::{BenchArgs, Rate};
use cove_ep::CoveEp;
use endpoint::{Cx, Endpoint, Member};
use irc_ep::IrcEp;
use plan::Plan;
use report::Report;
use shared::{Phase, Shared};
use stats::{Counters, Histogram};
use worker::{MakeEndpoint, Outcome, Settings, Worker};

/// Runs `cove bench`; returns the exit code.
pub fn run(args: BenchArgs) -> Result<i32, String> {
    let plan = args.plan()?;
    let addr = args
        .server
        .to_socket_addrs()
        .map_err(|e| format!("bad --server {}: {e}", args.server))?
        .next()
        .ok_or_else(|| format!("--server {} resolves to nothing", args.server))?;
    let want_fds = u64::from(plan.clients) + 256;
    let fds = sys::raise_nofile(want_fds);
    if fds < want_fds {
        return Err(format!(
            "{} clients need about {want_fds} open files; the limit is {fds}: raise it \
             (`ulimit -n {want_fds}`)",
            plan.clients
        ));
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .clamp(1, plan.clients.max(1) as usize);
    let batch = args.connect_batch.unwrap_or(if args.irc { 10 } else { 64 });
    let settings = Settings {
        addr,
        rate: match args.rate {
            Rate::Max => None,
            Rate::PerSec(r) => Some(r),
        },
        size: args.size,
        quickack: args.quickack,
        connect_batch: batch.div_ceil(threads).max(1),
        setup_timeout: Duration::from_secs(args.setup_timeout),
    };
    let tag = run_tag();
    let shared = Shared::new(plan, threads);
    let report = if args.irc {
        let make =
            |_: &mut Cx<'_>, c: u32, me: &Member| Ok(IrcEp::new(&format!("b{tag}{c}"), &tag, me));
        drive(&args, &shared, &settings, &make, "irc")?
    } else {
        let ack_every = args.ack_every;
        let make = |cx: &mut Cx<'_>, c: u32, me: &Member| {
            CoveEp::new(cx, &format!("b{tag}{c}"), me.rooms.len(), ack_every)
        };
        drive(&args, &shared, &settings, &make, "cove")?
    };
    if args.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.text());
    }
    let k = &report.counters;
    let clean = report.complete
        && report.lost() == 0
        && k.duplicated + k.reordered + k.malformed + k.cut_off == 0;
    Ok(if clean { 0 } else { 2 })
}

/// Three random characters that keep names and channels of different runs apart.
fn run_tag() -> String {
    let x = cove_std::random_u64();
    let abc = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let first = abc[(x % 26) as usize] as char;
    let second = abc[((x >> 8) % 36) as usize] as char;
    let third = abc[((x >> 16) % 36) as usize] as char;
    format!("{first}{second}{third}")
}

/// The figures at one moment, to subtract.
struct Snapshot {
    at: Instant,
    gen_cpu: Option<Duration>,
    server_cpu: Option<Duration>,
}

fn snapshot(pid: Option<u32>) -> Snapshot {
    Snapshot {
        at: Instant::now(),
        gen_cpu: Some(sys::own_cpu_time()),
        server_cpu: pid.and_then(|p| sys::cpu_time(&p.to_string())),
    }
}

fn drive<E: Endpoint>(
    args: &BenchArgs,
    shared: &Shared,
    settings: &Settings,
    make: &MakeEndpoint<'_, E>,
    mode: &'static str,
) -> Result<Report, String> {
    if let Some(pid) = args.server_pid {
        if sys::cpu_time(&pid.to_string()).is_none() {
            return Err(format!(
                "--server-pid {pid}: no such process to read in /proc"
            ));
        }
    }
    let plan = &shared.plan;
    let echoes = mode == "cove";
    let expected = plan.total_msgs() * u64::from(plan.members - 1);
    let expected_received = expected + if echoes { plan.total_msgs() } else { 0 };
    let show = !args.json && !args.no_progress;
    let threads = shared.threads;
    let (measured, outcomes) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let clients: Vec<u32> = (0..plan.clients)
                    .filter(|c| *c as usize % threads == t)
                    .collect();
                s.spawn(move || match Worker::new(shared, settings, clients, make) {
                    Ok(w) => w.run(),
                    Err(e) => {
                        shared.fail(e);
                        Outcome::default()
                    }
                })
            })
            .collect();
        let measured = monitor(args, shared, expected_received, show);
        let outcomes: Vec<Outcome> = handles.into_iter().filter_map(|h| h.join().ok()).collect();
        (measured, outcomes)
    });
    let m = measured?;
    if outcomes.len() != threads {
        return Err("a generator thread panicked".into());
    }
    let mut counters = Counters::default();
    let mut latency = Histogram::default();
    let mut last_delivery = 0;
    let mut notes = (None, None);
    for o in &outcomes {
        counters.merge(&o.counters);
        latency.merge(&o.latency);
        last_delivery = last_delivery.max(o.last_delivery_ns);
        notes.0 = notes.0.or_else(|| o.notes.refusal.clone());
        notes.1 = notes.1.or_else(|| o.notes.cut_off.clone());
    }
    let secs = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
    let sub = |a: Option<Duration>, b: Option<Duration>| Some(a?.saturating_sub(b?));
    Ok(Report {
        mode,
        server: args.server.clone(),
        shape: (plan.clients, plan.rooms, plan.members, plan.msgs),
        rate: settings.rate,
        size: settings.size,
        threads,
        expected,
        counters,
        latency,
        echoes_expected: echoes,
        active_s: last_delivery.saturating_sub(m.run_start_ns) as f64 / 1e9,
        wall_s: m.end.at.duration_since(m.start.at).as_secs_f64(),
        complete: m.complete,
        gen_cpu_s: secs(sub(m.end.gen_cpu, m.start.gen_cpu)).unwrap_or(0.0),
        server_cpu_s: secs(sub(m.end.server_cpu, m.start.server_cpu)),
        server_rss_kib: args
            .server_pid
            .and_then(|p| sys::peak_rss_kib(&p.to_string())),
        notes,
    })
}

/// What the main thread measured around the run.
struct Measured {
    start: Snapshot,
    end: Snapshot,
    run_start_ns: u64,
    complete: bool,
}

/// Watches the setup, starts the run, shows progress and ends the run when everything
/// arrived or nothing more comes.
fn monitor(
    args: &BenchArgs,
    shared: &Shared,
    expected: u64,
    show: bool,
) -> Result<Measured, String> {
    let tick = Duration::from_millis(2);
    let bar = if show {
        ProgressBar::new_spinner()
    } else {
        ProgressBar::hidden()
    };
    bar.set_message("connecting and registering");
    while shared.finished(Phase::Join) < shared.threads {
        if shared.aborted() {
            bar.finish_and_clear();
            return Err(shared.failure().unwrap_or_else(|| "setup failed".into()));
        }
        let phase = if shared.finished(Phase::Create) == shared.threads {
            "joining the rooms"
        } else if shared.finished(Phase::Connect) == shared.threads {
            "creating the rooms"
        } else {
            "connecting and registering"
        };
        bar.set_message(format!(
            "{phase} ({} of {} clients logged in)",
            shared.setup_progress.load(Ordering::Relaxed),
            shared.plan.clients
        ));
        bar.tick();
        std::thread::sleep(tick);
    }
    bar.finish_and_clear();
    let start = snapshot(args.server_pid);
    let run_start_ns = shared.now_ns().max(1);
    shared.run_start_ns.store(run_start_ns, Ordering::SeqCst);
    let bar = if show && expected > 0 {
        let b = ProgressBar::new(expected);
        b.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:40}] {human_pos}/{human_len} received ({per_sec}) {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let senders = u64::from(shared.plan.senders());
    let drain = Duration::from_secs_f64(args.drain_timeout);
    let patience = drain.max(Duration::from_secs(60)) + args.rate.interval().saturating_mul(2);
    let mut last = (0u64, 0u64);
    let mut last_change = Instant::now();
    let complete = loop {
        std::thread::sleep(Duration::from_millis(20));
        if shared.aborted() {
            break false;
        }
        let received = shared.received.load(Ordering::Relaxed);
        let sent = shared.sent.load(Ordering::Relaxed);
        bar.set_position(received);
        if received >= expected {
            break true;
        }
        if (received, sent) != last {
            last = (received, sent);
            last_change = Instant::now();
        }
        let idle = last_change.elapsed();
        let all_sent = shared.senders_done.load(Ordering::Relaxed) >= senders;
        if (all_sent && idle >= drain) || idle >= patience {
            break false;
        }
    };
    let end = snapshot(args.server_pid);
    shared.stop.store(true, Ordering::SeqCst);
    bar.finish_and_clear();
    if let Some(why) = shared.failure() {
        return Err(why);
    }
    Ok(Measured {
        start,
        end,
        run_start_ns,
        complete,
    })
}

impl Rate {
    /// Time between two messages of a client (zero flat out).
    pub fn interval(&self) -> Duration {
        match self {
            Rate::Max => Duration::ZERO,
            Rate::PerSec(r) => Duration::from_secs_f64((1.0 / r).min(1e6)),
        }
    }
}

impl BenchArgs {
    /// The workload's shape, checked.
    pub fn plan(&self) -> Result<Plan, String> {
        let p = Plan {
            clients: self.clients,
            rooms: self.rooms,
            members: self.members,
            msgs: self.msgs,
        };
        if p.clients == 0 || p.rooms == 0 || p.members < 2 {
            return Err("need at least one client, one room and two members per room".into());
        }
        if p.members > p.clients {
            return Err(format!(
                "--members {} is more than --clients {}: a room's members are distinct clients",
                p.members, p.clients
            ));
        }
        let per_client = (u64::from(p.rooms) * u64::from(p.members)).div_ceil(u64::from(p.clients));
        if per_client > cove_core::client::MAX_ROOMS as u64 {
            return Err(format!(
                "each client would be in {per_client} rooms; at most {} (fewer --rooms or \
                 --members, or more --clients)",
                cove_core::client::MAX_ROOMS
            ));
        }
        let max = if self.irc { 400 } else { cove_ep::MAX_BODY };
        if self.size < plan::HEADER_LEN || self.size > max {
            return Err(format!(
                "--size must be between {} (the header) and {max} bytes",
                plan::HEADER_LEN
            ));
        }
        Ok(p)
    }
}
