//! A hub whose every store op is applied at once, restartable from that store: the
//! test bench of the hub's room and group tests. Unless a test sets its own, the hub
//! keeps only each room's newest two messages in memory, so catch-up and history read
//! the older ones back from the store (loads answered at once, like the store ops).

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::*;
use crate::store::{MemoryStore, Store};

pub(super) const T: Instant = Instant(1_000_000);

/// A hub whose every store op is applied at once, restartable from that store.
pub(super) struct Server {
    pub(super) hub: Hub,
    pub(super) store: MemoryStore,
    pub(super) config: HubConfig,
    /// Loads answered so far.
    pub(super) loads: usize,
    next_conn: u64,
}

/// Messages per room kept whole in memory unless a test says otherwise.
pub(super) const TAIL: usize = 2;

impl Server {
    pub(super) fn new(mut config: HubConfig) -> Server {
        if config.log_memory_messages == usize::MAX {
            config.log_memory_messages = TAIL;
        }
        Server {
            hub: Hub::new(config.clone(), 5),
            store: MemoryStore::new(),
            config,
            loads: 0,
            next_conn: 1,
        }
    }

    pub(super) fn settle(&mut self) -> Vec<(ConnId, Reply)> {
        let mut out = Vec::new();
        loop {
            let ops: Vec<StoreOp> = core::iter::from_fn(|| self.hub.poll_store_op()).collect();
            self.store.apply(&ops).unwrap();
            out.extend(core::iter::from_fn(|| self.hub.poll_delivery()));
            let Some(load) = self.hub.poll_load() else {
                return out;
            };
            self.loads += 1;
            let msgs = self.store.read_log(&load).unwrap();
            self.hub.handle_loaded(T, load, msgs);
        }
    }

    pub(super) fn connect(&mut self, name: &str, mode: AuthMode) -> (ConnId, Vec<Reply>) {
        let c = ConnId(self.next_conn);
        self.next_conn += 1;
        let key = [name.as_bytes()[0]; 32];
        self.hub.handle_connect(T, c, name, key, mode);
        let out = self.settle();
        (c, mine(&out, c))
    }

    pub(super) fn request(&mut self, c: ConnId, r: Request) -> Vec<(ConnId, Reply)> {
        self.hub.handle_request(T, c, r);
        self.settle()
    }

    pub(super) fn restart(&mut self) {
        self.hub = Hub::new(self.config.clone(), 6);
        self.hub
            .restore(self.store.load(self.config.log_memory()).unwrap());
    }

    pub(super) fn create(&mut self, c: ConnId, private: bool) -> RoomId {
        let title = "t".into();
        let out = self.request(
            c,
            Request::CreateRoom {
                req: 1,
                title,
                private,
            },
        );
        out.iter()
            .find_map(|(_, r)| match r {
                Reply::RoomJoined { room, .. } => Some(*room),
                _ => None,
            })
            .expect("created")
    }

    pub(super) fn say(&mut self, c: ConnId, room: RoomId, text: &str) -> Vec<(ConnId, Reply)> {
        let body = Arc::from(text.as_bytes());
        self.request(c, Request::RoomMessage { req: 9, room, body })
    }
}

/// alice and bob logged in, bob a member of alice's public room.
pub(super) fn alice_and_bob(config: HubConfig) -> (Server, ConnId, ConnId, RoomId) {
    let mut s = Server::new(config);
    let (a, _) = s.connect("alice", AuthMode::Register);
    let (b, _) = s.connect("bob", AuthMode::Register);
    let room = s.create(a, false);
    s.request(b, Request::JoinRoom { req: 2, room });
    (s, a, b, room)
}

pub(super) fn mine(out: &[(ConnId, Reply)], c: ConnId) -> Vec<Reply> {
    out.iter()
        .filter(|(x, _)| *x == c)
        .map(|(_, r)| r.clone())
        .collect()
}
