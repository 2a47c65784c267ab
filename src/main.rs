//! The `cove` command-line program: server, client and key generation.

fn main() {
    println!("cove {}", env!("CARGO_PKG_VERSION"));
}
