//! The `cove` command-line program: server, client and key generation.
#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use cove::bench::{self, BenchArgs};
use cove::chat::{self, ChatArgs};
use cove::files;
use cove::serve::{self, ServeArgs};
use tracing_subscriber::EnvFilter;

const ABOUT: &str = "cove: a secure multi-room chat server and client";

const LONG_ABOUT: &str = "\
cove: a secure multi-room chat server and client.

Every connection is encrypted and authenticated (Noise XX handshake, AES-256-GCM or
ChaCha20-Poly1305, key rotation). Accounts are Ed25519 identity keys: there are no
passwords. Direct messages to offline users are stored durably and delivered exactly once.";

const EXAMPLES: &str = "\
Try it (three terminals):
  cove serve                                   # listens on 127.0.0.1:7878, data in ./cove-data
  cove chat --name alice --register            # first time: creates alice's key and account
  cove chat --name bob --register
Then in alice's window:  /create lobby   (prints a room ID such as K7QX2M)
      in bob's window:    /join K7QX2M   and type away;  /msg alice hi  sends a direct message.
Next time, log in without --register. Scripts can pipe commands into `cove chat`.

Logs go to stderr; set RUST_LOG (e.g. RUST_LOG=debug or RUST_LOG=cove_std=trace).";

#[derive(Parser, Debug)]
#[command(name = "cove", version, about = ABOUT, long_about = LONG_ABOUT, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once per run; boxing would buy nothing
enum Command {
    /// Run a server: listen, keep accounts and offline messages in DIR/cove.db.
    #[command(after_help = "The first start generates the server's identity key \
        (DIR/server.key, mode 0600) and prints its fingerprint: give it to your users so \
        they can check the key their client pins. Ctrl-C (or SIGTERM) stops gracefully: \
        no new connections, pending writes committed, every client told \"server shutting down\".")]
    Serve(ServeArgs),
    /// Chat: an interactive line-mode client (type /help once connected).
    #[command(
        after_help = "Commands once connected: /create [--private] [title], /join ID, \
        /leave [ID], /switch ID, /rooms, /invite NICK [ID], /remove NICK [ID], /title TEXT, \
        /history [N], /users, /msg NICK text, /verify NICK, /accept-key NICK, \
        /status online|away, /help, /quit. \
        Plain text goes to the current room. Rooms are kept until you /leave them: at login \
        you see what was said in them while you were away, each message once.\n\n\
        Rooms and direct messages are end-to-end encrypted (MLS): the server relays them \
        without being able to read them. Your group keys live in DIR/mls/ (see --data): \
        keep that directory as carefully as your identity key. /verify NICK shows the \
        safety number to compare with NICK in person.\n\n\
        Input may come from a pipe: at its end the client waits (--linger) for the server \
        to answer what was sent, then logs out. Example:\n  \
        printf '/msg bob see you at 5\\n' | cove chat --name alice"
    )]
    Chat(ChatArgs),
    /// Generate an identity key (Ed25519 + X25519) and print its fingerprint.
    Keygen(KeygenArgs),
    /// Load generator: many clients in rooms send timestamped messages to a cove (or IRC)
    /// server; reports deliveries/s, latency percentiles, loss, and CPU.
    #[command(after_help = bench::args::AFTER_HELP)]
    Bench(BenchArgs),
}

#[derive(Args, Debug)]
struct KeygenArgs {
    /// Write the key to FILE (created with mode 0600; never overwritten).
    #[arg(long, value_name = "FILE", conflicts_with = "name")]
    out: Option<PathBuf>,
    /// Write the key for nickname NICK into the client data directory (as `cove chat`
    /// expects it).
    #[arg(long, value_name = "NICK")]
    name: Option<String>,
    /// Client data directory for --name. Default: $COVE_HOME, else ~/.cove.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
}

fn keygen(args: KeygenArgs) -> Result<(), String> {
    let path = match (args.out, args.name) {
        (Some(p), _) => p,
        (None, Some(n)) => {
            if !cove_core::wire::valid_name(&n) {
                return Err(format!("invalid nickname {n:?}"));
            }
            files::identity_path(&args.data.unwrap_or_else(chat::default_data_dir), &n)
        }
        (None, None) => {
            return Err("say where the key goes: --out FILE, or --name NICK".into());
        }
    };
    let identity = files::generate_identity();
    files::save_identity(&path, &identity).map_err(|e| match e {
        files::FileError::Io(p, e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            format!(
                "{} exists already; cove never overwrites a key",
                p.display()
            )
        }
        other => other.to_string(),
    })?;
    println!("wrote {}", path.display());
    println!(
        "fingerprint: {}",
        files::format_fingerprint(&identity.fingerprint())
    );
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Serve(_) => "info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let result = match cli.command {
        Command::Serve(a) => serve::run(a).map(|()| 0),
        Command::Chat(a) => chat::run(a),
        Command::Keygen(a) => keygen(a).map(|()| 0),
        Command::Bench(a) => bench::run(a),
    };
    match result {
        Ok(0) => ExitCode::SUCCESS,
        Ok(n) => ExitCode::from(u8::try_from(n).unwrap_or(1)),
        Err(e) => {
            eprintln!("cove: {e}");
            ExitCode::FAILURE
        }
    }
}
