#!/usr/bin/env bash
# Scale measurement: 10,000 idle, logged-in connections against `cove serve --runtime smol`.
# Prints the server's resident memory per connection and the handshake timings.
# Usage: runtime-smol/scripts/idle_connections.sh [COUNT]   (from anywhere in the repo)
set -euo pipefail
count="${1:-10000}"
cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
# Server and clients each hold COUNT sockets: raise the descriptor limit (the hard limit
# caps it; both processes inherit it).
need=$((count + 1000))
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$need" ]; then
    echo "the hard limit of open files ($hard) is below $need; raise it (as root: ulimit -Hn $need)" >&2
    exit 1
fi
ulimit -n "$need"
cargo build --release -q -p cove --bin cove -p cove-smol --example idle_connections
echo "cargo bench -p cove-core --bench core -- handshake/full gives the handshake's CPU cost (both sides) to compare."
exec target/release/examples/idle_connections --cove target/release/cove --count "$count"
