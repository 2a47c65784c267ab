//! cove-std holds at most `MAX_THREADED_CONNECTIONS` connections, whatever the options
//! ask: past about 8,000 (two threads each) Linux refuses new threads' memory and the
//! process aborts, so a larger cap is lowered, with a warning, instead.

use cove_core::crypto::Identity;
use cove_core::store::MemoryStore;
use cove_std::server::{MAX_THREADED_CONNECTIONS, Server, ServerOptions};

fn cap_after_bind(asked: usize) -> usize {
    let mut options = ServerOptions::default();
    options.driver.admission.max_connections = asked;
    let id = Identity::from_bytes(&[7; 64]);
    let server = Server::bind("127.0.0.1:0", id, MemoryStore::default(), options).expect("bind");
    server.handle().max_connections()
}

#[test]
fn a_cap_above_what_threads_allow_is_lowered_and_one_below_is_kept() {
    assert_eq!(cap_after_bind(100_000), MAX_THREADED_CONNECTIONS);
    assert_eq!(
        cap_after_bind(MAX_THREADED_CONNECTIONS + 1),
        MAX_THREADED_CONNECTIONS
    );
    assert_eq!(
        cap_after_bind(MAX_THREADED_CONNECTIONS),
        MAX_THREADED_CONNECTIONS
    );
    assert_eq!(cap_after_bind(10), 10);
}
