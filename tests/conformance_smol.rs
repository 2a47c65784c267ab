//! The conformance suite against cove-smol, the async adapter, on a smol executor with
//! two threads per server (as `cove serve --runtime smol` runs it on this machine).

mod common;
mod conformance;

use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread::JoinHandle;

use conformance::{RunningServer, Runtime, Setup, T};
use cove::serve::smol_options;
use cove::store::SqliteStore;
use cove_smol::server::{Server, ServerError, ServerHandle};
use cove_std::server::ServerOptions;

struct Smol;

struct SmolServer {
    handle: ServerHandle,
    addr: SocketAddr,
    thread: JoinHandle<Result<(), ServerError>>,
}

impl RunningServer for SmolServer {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn stop(self: Box<Self>) {
        self.handle.shutdown();
        self.thread
            .join()
            .expect("server thread")
            .expect("server stopped cleanly");
    }
}

impl Runtime for Smol {
    const NAME: &'static str = "smol";
    const CLI_RUNTIME: &'static str = "smol";

    fn start(setup: Setup) -> Box<dyn RunningServer> {
        let mut options = ServerOptions::default();
        setup.limits.apply(&mut options);
        let options = smol_options(options);
        let store = SqliteStore::open(&setup.db).expect("open store");
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            cove_smol::block_on_threads(2, |ex| async move {
                let server = Server::bind("127.0.0.1:0", setup.identity, store, options, ex)
                    .await
                    .expect("bind server");
                let addr = server.local_addr().expect("bound address");
                let _ = tx.send((server.handle(), addr));
                server.run().await
            })
        });
        let (handle, addr) = rx.recv_timeout(T).expect("server started");
        Box::new(SmolServer {
            handle,
            addr,
            thread,
        })
    }
}

conformance::suite!(Smol);
