//! `cove serve`: the server with its SQLite store.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use cove_std::server::{Server, ServerOptions};

use crate::config::Limits;
use crate::files::{self, ensure_private_dir, load_or_create_identity};
use crate::store::{SqliteStore, SyncMode};

/// The port `cove serve` listens on unless told otherwise, and `cove chat` connects to.
pub const DEFAULT_PORT: u16 = 7878;
/// The address `cove serve` listens on unless told otherwise: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7878";

/// Which adapter runs the server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum RuntimeKind {
    /// Blocking threads: a reader and a writer thread per connection (cove-std).
    #[default]
    Std,
    /// Async on smol (cove-smol): a task per connection on one thread per core.
    Smol,
}

/// `cove serve --sync`: the store's [`SyncMode`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum SyncArg {
    /// Every batch fsynced before its messages leave (SQLite `synchronous = FULL`).
    #[default]
    Full,
    /// Batches written to the operating system, fsynced at checkpoints (`NORMAL`).
    Normal,
}

impl From<SyncArg> for SyncMode {
    fn from(s: SyncArg) -> SyncMode {
        match s {
            SyncArg::Full => SyncMode::Full,
            SyncArg::Normal => SyncMode::Normal,
        }
    }
}

/// Arguments of `cove serve`.
#[derive(Args, Clone, Debug)]
pub struct ServeArgs {
    /// Address to listen on. Use 0.0.0.0:7878 to accept other machines, port 0 for any
    /// free port (the chosen address is printed as "listening on ADDR").
    #[arg(long, default_value = DEFAULT_LISTEN, value_name = "ADDR")]
    pub listen: String,
    /// Directory of the server's identity key (server.key) and database (cove.db).
    #[arg(long, default_value = "./cove-data", value_name = "DIR")]
    pub data: PathBuf,
    /// Which runtime adapter drives the connections. smol is the default: in the
    /// side-by-side benchmarks (docs/BENCHMARKS.md) it delivers more per second, spends
    /// less CPU and memory per delivery, and holds 10,000 connections, which std's two
    /// threads per connection cannot.
    #[arg(long, value_enum, default_value_t = RuntimeKind::Smol)]
    pub runtime: RuntimeKind,
    /// Executor threads of the smol runtime. Default: one per core less one, at least
    /// one; the server's store thread (which also writes to idle connections) takes the
    /// core left over (docs/BENCHMARKS.md measures the choice). Ignored by std, which runs
    /// two threads per connection.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
    /// How far the store commits before the messages it holds back are delivered. full:
    /// to the disk (an fsync per batch), so what was delivered survives a power loss.
    /// normal: to the operating system, synced to the disk at checkpoints, so what was
    /// delivered survives a crash of the server but a power loss may take the last
    /// moments back (the database stays consistent). normal costs less CPU and cuts the
    /// median latency by about 40 %, but its checkpoints lengthen the tail (see
    /// docs/BENCHMARKS.md).
    #[arg(long, value_enum, default_value_t = SyncArg::Full, value_name = "MODE")]
    pub sync: SyncArg,
    /// Config file with limits, one `key = value` per line (keys are the flag names
    /// below without the dashes). Default: DIR/cove.conf if it exists.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Limits.
    #[command(flatten)]
    pub limits: Limits,
}

/// Builds the server options from flags, then the config file, then defaults.
pub fn options(args: &ServeArgs) -> Result<ServerOptions, String> {
    let mut limits = args.limits.clone();
    let file = match &args.config {
        Some(p) => Some(p.clone()),
        None => Some(args.data.join("cove.conf")).filter(|p| p.exists()),
    };
    if let Some(path) = file {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        limits
            .merge_file(&text)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        tracing::info!(path = %path.display(), "config file read");
    }
    let mut options = ServerOptions::default();
    limits.apply(&mut options);
    Ok(options)
}

/// Runs `cove serve` until Ctrl-C (or SIGTERM).
pub fn run(args: ServeArgs) -> Result<(), String> {
    let options = options(&args)?;
    ensure_private_dir(&args.data).map_err(|e| e.to_string())?;
    let key_path = args.data.join("server.key");
    let (identity, created) = load_or_create_identity(&key_path).map_err(|e| e.to_string())?;
    let fingerprint = files::format_fingerprint(&identity.fingerprint());
    let db = args.data.join("cove.db");
    let store = SqliteStore::open_with(&db, args.sync.into())
        .map_err(|e| format!("{}: {e}", db.display()))?;
    if args.runtime == RuntimeKind::Smol {
        let banner = move |addr| print_banner(&key_path, created, &fingerprint, &db, addr);
        let threads = args.threads.map_or_else(default_threads, usize::from);
        let options = smol_options(options);
        return run_smol(&args.listen, threads, identity, store, options, banner);
    }
    let server = Server::bind(args.listen.as_str(), identity, store, options)
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let handle = server.handle();
    ctrlc::set_handler(move || handle.shutdown())
        .map_err(|e| format!("cannot install the Ctrl-C handler: {e}"))?;
    print_banner(&key_path, created, &fingerprint, &db, server.local_addr());
    server.run().map_err(|e| e.to_string())
}

/// The cove-smol options equal to cove-std's `options` (the CLI's limits apply to both).
pub fn smol_options(options: ServerOptions) -> cove_smol::server::ServerOptions {
    // Both adapters take the core's one limits struct.
    options
}

/// The smol runtime's executor threads unless `--threads` says: one per core less the
/// one the store thread uses, at least one.
fn default_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    cores.saturating_sub(1).max(1)
}

/// `cove serve --runtime smol`: the cove-smol server on a smol executor with `threads`
/// threads, until Ctrl-C (or SIGTERM).
fn run_smol(
    listen: &str,
    threads: usize,
    identity: cove_core::crypto::Identity,
    store: SqliteStore,
    options: cove_smol::server::ServerOptions,
    banner: impl FnOnce(std::net::SocketAddr),
) -> Result<(), String> {
    cove_smol::block_on_threads(threads, |ex| async move {
        let server = cove_smol::server::Server::bind(listen, identity, store, options, ex)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let handle = server.handle();
        let addr = server
            .local_addr()
            .ok_or_else(|| format!("cannot listen on {listen}"))?;
        ctrlc::set_handler(move || handle.shutdown())
            .map_err(|e| format!("cannot install the Ctrl-C handler: {e}"))?;
        banner(addr);
        server.run().await.map_err(|e| e.to_string())
    })
}

fn print_banner(
    key_path: &Path,
    created: bool,
    fingerprint: &str,
    db: &Path,
    addr: std::net::SocketAddr,
) {
    let mut out = std::io::stdout().lock();
    if created {
        let _ = writeln!(
            out,
            "generated a new server identity in {}",
            key_path.display()
        );
    }
    let _ = writeln!(out, "server fingerprint: {fingerprint}");
    let _ = writeln!(out, "database: {}", db.display());
    let _ = writeln!(out, "listening on {addr}");
    let _ = writeln!(out, "press Ctrl-C to stop");
    let _ = out.flush();
}
