//! An in-memory world for tests: one server (connections + hub + memory store) and any
//! number of clients, wired by byte buffers and driven on the virtual clock.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use cove_core::Instant;
use cove_core::client::{Client, ClientConfig, ClientEvent};
use cove_core::crypto::{Identity, RUST_CRYPTO, Suite};
use cove_core::hub::{ConnId, Hub, HubConfig, Reply};
use cove_core::server::{Driver, DriverConfig, ServerConfig, ServerConnection, reply_from};
use cove_core::store::{MemoryStore, Store};
use cove_core::time::Duration;
use cove_core::wire::{AuthMode, ErrorCode, RoomId};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// What a client saw, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    LoggedIn {
        server_key: [u8; 32],
        mode: AuthMode,
        pending: u32,
    },
    Msg(Reply),
    Closed {
        code: ErrorCode,
        by_peer: bool,
    },
}

pub struct Peer {
    pub name: String,
    pub identity: Identity,
    pub client: Option<Box<Client>>,
    pub conn: Option<ConnId>,
    pub to_server: Vec<u8>,
    pub to_client: Vec<u8>,
    pub seen: Vec<Seen>,
    pub last_dm_id: u64,
    /// What the application persisted of each room's acknowledged messages.
    pub room_cursors: Vec<(RoomId, u64)>,
}

pub struct World {
    pub now: Instant,
    pub driver: Driver,
    pub store: MemoryStore,
    pub server_config: Arc<ServerConfig>,
    pub client_config: ClientConfig,
    pub server_identity: Identity,
    pub rng: ChaCha20Rng,
    pub conns: BTreeMap<ConnId, ServerConnection>,
    pub peers: Vec<Peer>,
    next_conn: u64,
}

impl World {
    pub fn new(server_config: ServerConfig, hub_config: HubConfig) -> World {
        let mut rng = ChaCha20Rng::from_seed([42; 32]);
        let server_identity = Identity::generate(&mut rng);
        let mut client_config = ClientConfig::new(Suite::AesGcm, AuthMode::Register);
        client_config.session = server_config.session;
        // The world's peers acknowledge every DM and room message on receipt unless a test
        // says otherwise.
        client_config.auto_ack_dms = true;
        client_config.auto_ack_rooms = true;
        World {
            now: Instant(1_000_000),
            driver: Driver::new(Hub::new(hub_config, 7), DriverConfig::default()),
            store: MemoryStore::new(),
            server_config: Arc::new(server_config),
            client_config,
            server_identity,
            rng,
            conns: BTreeMap::new(),
            peers: Vec::new(),
            next_conn: 1,
        }
    }

    /// Adds a peer with a fresh identity; returns its index.
    pub fn add_peer(&mut self, name: &str) -> usize {
        let identity = Identity::generate(&mut self.rng);
        self.peers.push(Peer {
            name: name.into(),
            identity,
            client: None,
            conn: None,
            to_server: Vec::new(),
            to_client: Vec::new(),
            seen: Vec::new(),
            last_dm_id: 0,
            room_cursors: Vec::new(),
        });
        self.peers.len() - 1
    }

    /// Opens a connection for peer `p` and runs until quiet.
    pub fn connect(&mut self, p: usize, mode: AuthMode) {
        let mut config = self.client_config.clone();
        config.mode = mode;
        let conn_id = ConnId(self.next_conn);
        self.next_conn += 1;
        let conn = ServerConnection::new(
            self.now,
            self.server_config.clone(),
            &RUST_CRYPTO,
            &self.server_identity,
            &mut self.rng,
        );
        self.conns.insert(conn_id, conn);
        let peer = &mut self.peers[p];
        let mut client = Box::new(
            Client::new(
                self.now,
                config,
                &RUST_CRYPTO,
                &peer.identity,
                &peer.name,
                &mut self.rng,
            )
            .expect("client starts"),
        );
        client.set_last_dm_id(peer.last_dm_id);
        for (room, seq) in &peer.room_cursors {
            client.set_room_cursor(*room, *seq);
        }
        peer.client = Some(client);
        peer.conn = Some(conn_id);
        peer.to_server.clear();
        peer.to_client.clear();
        self.run();
    }

    /// The server's hub (read-only: it changes only through the driver).
    pub fn hub(&self) -> &Hub {
        self.driver.hub()
    }

    /// The peer's client, which must be connected.
    pub fn client(&mut self, p: usize) -> &mut Client {
        self.peers[p].client.as_mut().expect("connected")
    }

    /// Moves bytes and events until nothing changes.
    pub fn run(&mut self) {
        for _ in 0..10_000 {
            if !self.step() {
                return;
            }
        }
        panic!("the world did not settle");
    }

    /// One round of moving bytes; true if anything moved.
    fn step(&mut self) -> bool {
        let now = self.now;
        let mut moved = false;
        // Clients → server connections.
        for peer in &mut self.peers {
            if let Some(client) = peer.client.as_mut() {
                let out = client.pending_transmit();
                if !out.is_empty() {
                    moved = true;
                    peer.to_server.extend_from_slice(out);
                    let n = out.len();
                    client.advance_transmit(n);
                }
            }
            let Some(id) = peer.conn else { continue };
            let Some(conn) = self.conns.get_mut(&id) else {
                continue;
            };
            if !peer.to_server.is_empty() {
                let used = conn.handle_input(now, &mut peer.to_server);
                if used > 0 {
                    moved = true;
                }
                peer.to_server.drain(..used);
            }
        }
        // Connection events → driver (hub), its batches → store, then its replies.
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for id in &ids {
            while let Some(ev) = self.conns.get_mut(id).and_then(|c| c.poll_event()) {
                moved = true;
                self.driver.handle_event(now, *id, ev);
            }
        }
        while let Some(batch) = self.driver.poll_batch() {
            self.store.apply(&batch.ops).expect("memory store");
            self.driver
                .handle_durable(batch.id)
                .expect("the batch in flight");
        }
        // As the runtimes do: a room message is encoded once for all its recipients.
        while let Some((id, out)) = self.driver.poll_outgoing() {
            moved = true;
            if let Some(conn) = self.conns.get_mut(&id) {
                conn.handle_outgoing(now, &out);
            }
        }
        // Server connections → clients.
        for peer in &mut self.peers {
            let Some(id) = peer.conn else { continue };
            if let Some(conn) = self.conns.get_mut(&id) {
                let out = conn.pending_transmit();
                if !out.is_empty() {
                    moved = true;
                    peer.to_client.extend_from_slice(out);
                    let n = out.len();
                    conn.advance_transmit(n);
                }
                if conn.is_closed() && conn.pending_transmit().is_empty() {
                    self.conns.remove(&id);
                }
            }
            let Some(client) = peer.client.as_mut() else {
                continue;
            };
            loop {
                let input = client.handle_input(now, &mut peer.to_client);
                let used = input.consumed;
                if let Some(ev) = input.event {
                    peer.seen.push(own(ev));
                }
                if used == 0 {
                    break;
                }
                moved = true;
                peer.to_client.drain(..used);
            }
            while let Some(ev) = client.poll_event() {
                moved = true;
                peer.seen.push(own(ev));
            }
            peer.last_dm_id = client.last_dm_id();
        }
        moved
    }

    /// Advances the clock by `d`, firing every due timer, and runs until quiet.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let next = self
                .conns
                .values()
                .filter_map(|c| c.poll_timeout())
                .chain(
                    self.peers
                        .iter()
                        .filter_map(|p| p.client.as_ref()?.poll_timeout()),
                )
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    let now = self.now;
                    for c in self.conns.values_mut() {
                        if c.poll_timeout().is_some_and(|t| t <= now) {
                            c.handle_timeout(now);
                        }
                    }
                    for p in &mut self.peers {
                        if let Some(c) = p.client.as_mut()
                            && c.poll_timeout().is_some_and(|t| t <= now)
                        {
                            c.handle_timeout(now);
                        }
                    }
                    self.run();
                }
                _ => break,
            }
        }
        self.now = end;
        self.run();
    }

    /// The peer's TCP connection drops (both sides see EOF).
    pub fn drop_connection(&mut self, p: usize) {
        if let Some(id) = self.peers[p].conn.take()
            && let Some(conn) = self.conns.get_mut(&id)
        {
            conn.handle_eof(self.now);
        }
        if let Some(c) = self.peers[p].client.as_mut() {
            c.handle_eof(self.now);
        }
        self.run();
        // The application persists what it acknowledged, as a real one would.
        if let Some(c) = self.peers[p].client.take() {
            self.peers[p].last_dm_id = c.last_dm_id();
            let cursors = c.rooms().iter().map(|r| (*r, c.room_cursor(*r))).collect();
            self.peers[p].room_cursors = cursors;
        }
    }

    /// Everything peer `p` saw, then forgets it.
    pub fn take_seen(&mut self, p: usize) -> Vec<Seen> {
        std::mem::take(&mut self.peers[p].seen)
    }

    /// The replies among what peer `p` saw.
    pub fn replies(&self, p: usize) -> Vec<Reply> {
        self.peers[p]
            .seen
            .iter()
            .filter_map(|s| match s {
                Seen::Msg(r) => Some(r.clone()),
                _ => None,
            })
            .collect()
    }

    /// Error codes peer `p` received.
    pub fn errors(&self, p: usize) -> Vec<ErrorCode> {
        self.replies(p)
            .into_iter()
            .filter_map(|r| match r {
                Reply::Error { code, .. } => Some(code),
                _ => None,
            })
            .collect()
    }

    /// How peer `p`'s connection closed, if it did.
    pub fn closed(&self, p: usize) -> Option<ErrorCode> {
        self.peers[p].seen.iter().find_map(|s| match s {
            Seen::Closed { code, .. } => Some(*code),
            _ => None,
        })
    }
}

fn own(ev: ClientEvent<'_>) -> Seen {
    match ev {
        ClientEvent::LoggedIn {
            server_key,
            mode,
            pending,
        } => Seen::LoggedIn {
            server_key,
            mode,
            pending,
        },
        ClientEvent::Message(m) => {
            Seen::Msg(reply_from(&m).expect("control messages are not events"))
        }
        ClientEvent::Closed { code, by_peer } => Seen::Closed { code, by_peer },
    }
}
