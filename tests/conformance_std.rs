//! The conformance suite against cove-std, the blocking threads adapter.

mod common;
mod conformance;

use std::net::SocketAddr;
use std::thread::JoinHandle;

use conformance::{RunningServer, Runtime, Setup};
use cove::store::SqliteStore;
use cove_std::server::{Server, ServerError, ServerHandle, ServerOptions};

struct Std;

struct StdServer {
    handle: ServerHandle,
    thread: JoinHandle<Result<(), ServerError>>,
}

impl RunningServer for StdServer {
    fn addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    fn peak_outbound_bytes(&self) -> usize {
        self.handle.peak_outbound_bytes()
    }

    fn stop(self: Box<Self>) {
        self.handle.shutdown();
        self.thread
            .join()
            .expect("server thread")
            .expect("server stopped cleanly");
    }
}

impl Runtime for Std {
    const NAME: &'static str = "std";
    const CLI_RUNTIME: &'static str = "std";

    fn start(setup: Setup) -> Box<dyn RunningServer> {
        let mut options = ServerOptions::default();
        setup.limits.apply(&mut options);
        let store = SqliteStore::open(&setup.db).expect("open store");
        let server =
            Server::bind("127.0.0.1:0", setup.identity, store, options).expect("bind server");
        let handle = server.handle();
        let thread = server.spawn().expect("spawn server");
        Box::new(StdServer { handle, thread })
    }
}

conformance::suite!(Std);
