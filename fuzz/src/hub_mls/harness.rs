//! The adapter around the driver (every batch durable at once) and the model it keeps from
//! the store operations the hub emits: rooms, members, groups, KeyPackages.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use cove_core::Instant;
use cove_core::hub::{ConnId, Hub, HubConfig, Request};
use cove_core::server::{Driver, DriverConfig, ListScratch, ServerEvent};
use cove_core::store::{MemoryStore, Store, StoreOp};
use cove_core::wire::mls::group_info_header;
use cove_core::wire::{AuthMode, ErrorCode, MAX_KEY_PACKAGE_LEN, RoomId};

use super::bytes::{group_info, key_package, private_message, public_message, welcome};
use super::{
    DsLimits, DsOp, DsReq, GidSpec, InfoSpec, MessageSpec, PackageSpec, USERS, WelcomeSpec, name_of,
};
use crate::util::T0;

/// The Ed25519 key each user registers with.
pub(super) fn key_of(user: usize) -> [u8; 32] {
    [0x40 + user as u8; 32]
}

/// A blob as the wire carries it: at most 65,535 bytes.
fn blob(mut b: Vec<u8>) -> Arc<[u8]> {
    b.truncate(usize::from(u16::MAX));
    b.into()
}

/// A room's group as the model knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Group {
    pub(super) gid: Vec<u8>,
    pub(super) epoch: u64,
    pub(super) info: Vec<u8>,
    /// The newest member's first epoch: application messages from before it are refused.
    /// A Commit bringing someone in sets it; after a restart it is the current epoch.
    pub(super) joined_at: u64,
}

/// The model, built from the store operations the hub emitted.
#[derive(Debug, Default)]
pub(super) struct Model {
    /// Members of each existing room.
    pub(super) members: BTreeMap<RoomId, BTreeSet<Arc<str>>>,
    /// Direct rooms.
    pub(super) direct: BTreeSet<RoomId>,
    /// Each room's group.
    pub(super) groups: BTreeMap<RoomId, Group>,
    /// How many times each room ID was created (IDs of deleted rooms may come back).
    pub(super) generation: BTreeMap<RoomId, u64>,
    /// Commits accepted: (room, generation, epoch the Commit named).
    pub(super) accepted: BTreeSet<(RoomId, u64, u64)>,
    /// Each user's one-time KeyPackages, oldest first, and last-resort one.
    pub(super) stock: BTreeMap<Arc<str>, VecDeque<Vec<u8>>>,
    pub(super) last_resort: BTreeMap<Arc<str>, Vec<u8>>,
}

/// The harness: the driver, its store, the connections and the model.
pub(super) struct Harness {
    pub(super) config: HubConfig,
    pub(super) driver: Driver,
    pub(super) store: MemoryStore,
    pub(super) scratch: ListScratch,
    pub(super) now: Instant,
    next_conn: u64,
    next_req: u32,
    pub(super) conns: [Option<ConnId>; 4],
    pub(super) registered: [bool; 4],
    /// Rooms heard of, in order, for `RoomSel`.
    pub(super) rooms: Vec<RoomId>,
    /// Every package each user uploaded, for `PackageSpec::Again`.
    uploaded: BTreeMap<usize, Vec<Vec<u8>>>,
    unique: u32,
    pub(super) model: Model,
}

fn driver_config() -> DriverConfig {
    DriverConfig {
        observe_steps: true,
        // The account budget is not what is under test here.
        account_rate_per_sec: 1_000_000,
        account_burst: 1_000_000,
        ..DriverConfig::default()
    }
}

impl Harness {
    pub(super) fn new(limits: &DsLimits) -> Harness {
        let config = limits.config();
        let driver = Driver::new(Hub::new(config.clone(), 7), driver_config());
        Harness {
            config,
            driver,
            store: MemoryStore::new(),
            scratch: ListScratch::default(),
            now: T0,
            next_conn: 1,
            next_req: 1,
            conns: [None; 4],
            registered: [false; 4],
            rooms: Vec::new(),
            uploaded: BTreeMap::new(),
            unique: 0,
            model: Model::default(),
        }
    }

    pub(super) fn apply(&mut self, op: &DsOp) {
        self.now = Instant(self.now.0 + 1_000);
        match op {
            DsOp::Request { user, req } => {
                let u = usize::from(*user) % USERS.len();
                let conn = self.connect(u);
                let id = self.next_req;
                self.next_req += 1;
                let request = self.build(u, req, id);
                let verdict = self.expect(u, &request);
                self.step(conn, ServerEvent::Request(request.clone()));
                self.check_request(u, conn, id, &request, verdict);
            }
            DsOp::Login { user } => {
                self.connect(usize::from(*user) % USERS.len());
            }
            DsOp::Disconnect { user } => {
                let u = usize::from(*user) % USERS.len();
                if let Some(conn) = self.conns[u].take() {
                    let closed = ServerEvent::Closed {
                        code: ErrorCode::ConnectionTerminated,
                        by_peer: true,
                    };
                    self.step(conn, closed);
                    self.check_common(None);
                }
            }
            DsOp::Restart => self.restart(),
        }
    }

    /// The user's connection, logging in (or registering) first if it has none.
    fn connect(&mut self, u: usize) -> ConnId {
        if let Some(c) = self.conns[u] {
            return c;
        }
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        let mode = if self.registered[u] {
            AuthMode::Login
        } else {
            AuthMode::Register
        };
        let auth = ServerEvent::Authenticate {
            name: Arc::from(USERS[u]),
            key: key_of(u),
            mode,
            max_frame: cove_core::wire::DEFAULT_MAX_FRAME,
        };
        self.step(conn, auth);
        self.conns[u] = Some(conn);
        self.registered[u] = true;
        self.check_login(u, conn);
        conn
    }

    /// One event through the driver; every batch it hands out becomes durable at once.
    pub(super) fn step(&mut self, conn: ConnId, event: ServerEvent) {
        self.driver.handle_event(self.now, conn, event);
        while let Some(batch) = self.driver.poll_batch() {
            let Ok(()) = self.store.apply(&batch.ops);
            self.driver
                .handle_durable(batch.id)
                .expect("the batch just handed out is in flight");
        }
        while self.driver.poll_reply().is_some() {}
    }

    /// The server restarts: every connection drops, and a new hub is restored from the
    /// store, which holds everything (every batch was durable at once).
    fn restart(&mut self) {
        let mut hub = Hub::new(self.config.clone(), 7);
        let Ok(records) = self.store.load(self.config.log_memory());
        hub.restore(records);
        self.driver = Driver::new(hub, driver_config());
        self.conns = [None; 4];
        for g in self.model.groups.values_mut() {
            g.joined_at = g.epoch;
        }
    }

    /// The group ID `GidSpec::Room` stands for: the room's group's, or a fixed one.
    fn gid(&self, spec: &GidSpec, room: Option<RoomId>) -> Vec<u8> {
        match spec {
            GidSpec::Room => match room.and_then(|r| self.model.groups.get(&r)) {
                Some(g) => g.gid.clone(),
                None => match room {
                    Some(r) => format!("group-{}", r.as_str()).into_bytes(),
                    None => b"direct-group".to_vec(),
                },
            },
            GidSpec::Other(b) => vec![*b; 1 + usize::from(*b % 20)],
            GidSpec::Raw(b) => b.0.clone(),
        }
    }

    fn room_epoch(&self, room: RoomId) -> u64 {
        self.model.groups.get(&room).map_or(0, |g| g.epoch)
    }

    fn info(&self, spec: &InfoSpec, room: Option<RoomId>, expected: u64) -> Vec<u8> {
        match spec {
            InfoSpec::Header { gid, epoch, tail } => {
                group_info(&self.gid(gid, room), epoch.resolve(expected), &tail.0)
            }
            InfoSpec::Sized(n) => {
                let gid = self.gid(&GidSpec::Room, room);
                let mut b = group_info(&gid, expected, &[]);
                b.resize(b.len().max(64 * usize::from(*n)), 0x11);
                b
            }
            InfoSpec::Raw(b) => b.0.clone(),
        }
    }

    fn message(&self, spec: &MessageSpec, room: RoomId, expected: u64) -> Vec<u8> {
        match spec {
            MessageSpec::Header {
                public,
                sender,
                content,
                gid,
                epoch,
                tail,
            } => {
                let gid = self.gid(gid, Some(room));
                let epoch = epoch.resolve(expected);
                if *public {
                    public_message(&gid, epoch, sender % 5, content % 4, &tail.0)
                } else {
                    private_message(&gid, epoch, content % 4, &tail.0)
                }
            }
            MessageSpec::Raw(b) => b.0.clone(),
        }
    }

    fn welcome(spec: &WelcomeSpec) -> Vec<u8> {
        match spec {
            WelcomeSpec::Empty => Vec::new(),
            WelcomeSpec::Welcome(b) => welcome(&b.0),
            WelcomeSpec::Raw(b) => b.0.clone(),
        }
    }

    fn package(&mut self, u: usize, spec: &PackageSpec) -> Vec<u8> {
        let name = USERS[u].as_bytes();
        self.unique += 1;
        let tag = self.unique as u8;
        let kp = match spec {
            PackageSpec::Own { pad } => {
                let mut kp = key_package(&key_of(u), name, tag, 16 * usize::from(*pad));
                // Unique: the counter's high bytes too.
                kp.extend_from_slice(&self.unique.to_be_bytes());
                kp
            }
            PackageSpec::OtherKey(o) => key_package(&key_of(usize::from(*o) % 4), name, tag, 0),
            PackageSpec::OtherName(o) => key_package(&key_of(u), name_of(*o).as_bytes(), tag, 0),
            PackageSpec::Again(i) => {
                let earlier = self.uploaded.get(&u).map(Vec::as_slice).unwrap_or(&[]);
                match earlier.len() {
                    0 => key_package(&key_of(u), name, tag, 0),
                    n => earlier[usize::from(*i) % n].clone(),
                }
            }
            PackageSpec::Raw(b) => b.0.clone(),
        };
        self.uploaded.entry(u).or_default().push(kp.clone());
        kp
    }

    /// The hub request an input request stands for.
    fn build(&mut self, u: usize, req: &DsReq, id: u32) -> Request {
        let room = |sel: &crate::connection::RoomSel| sel.resolve(&self.rooms);
        match req {
            DsReq::CreateRoom { private } => Request::CreateRoom {
                req: id,
                title: Arc::from("t"),
                private: *private,
            },
            DsReq::Invite { room: r, who } => Request::InviteMember {
                req: id,
                room: room(r),
                name: Arc::from(name_of(*who)),
            },
            DsReq::JoinRoom(r) => Request::JoinRoom {
                req: id,
                room: room(r),
            },
            DsReq::LeaveRoom(r) => Request::LeaveRoom {
                req: id,
                room: room(r),
            },
            DsReq::Remove { room: r, who } => Request::RemoveMember {
                req: id,
                room: room(r),
                name: Arc::from(name_of(*who)),
            },
            DsReq::InitGroup { room: r, info } => {
                let room = room(r);
                Request::InitGroup {
                    req: id,
                    room,
                    group_info: blob(self.info(info, Some(room), 0)),
                }
            }
            DsReq::GroupCommit {
                room: r,
                commit,
                info,
                add,
                welcome,
            } => {
                let room = room(r);
                let commit = self.message(commit, room, self.room_epoch(room));
                let next = cove_core::wire::mls::message_header(&commit)
                    .map_or(self.room_epoch(room), |h| h.epoch)
                    .wrapping_add(1);
                Request::GroupCommit {
                    req: id,
                    room,
                    commit: blob(commit),
                    group_info: blob(self.info(info, Some(room), next)),
                    add: add.map(|a| Arc::from(name_of(a))),
                    welcome: blob(Self::welcome(welcome)),
                }
            }
            DsReq::GetGroupInfo(r) => Request::GetGroupInfo {
                req: id,
                room: room(r),
            },
            DsReq::OpenDirect {
                peer,
                info,
                welcome,
            } => Request::OpenDirect {
                req: id,
                peer: Arc::from(name_of(*peer)),
                group_info: blob(self.info(info, None, 1)),
                welcome: blob(Self::welcome(welcome)),
            },
            DsReq::Upload {
                last_resort,
                packages,
            } => Request::UploadKeyPackages {
                req: id,
                last_resort: *last_resort,
                // The wire refuses (and closes the connection for) an empty package or one
                // over its limit: those never reach the hub.
                packages: packages
                    .iter()
                    .take(24)
                    .map(|p| self.package(u, p))
                    .filter(|kp| !kp.is_empty() && kp.len() <= MAX_KEY_PACKAGE_LEN)
                    .map(Arc::from)
                    .collect(),
            },
            DsReq::Fetch { who } => Request::FetchKeyPackage {
                req: id,
                name: Arc::from(name_of(*who)),
            },
            DsReq::RoomMessage { room: r, body } => {
                let room = room(r);
                Request::RoomMessage {
                    req: id,
                    room,
                    body: blob(self.message(body, room, self.room_epoch(room))),
                }
            }
        }
    }

    /// Applies one store operation to the model, checking what it claims.
    pub(super) fn absorb(&mut self, op: &StoreOp) {
        let m = &mut self.model;
        match op {
            StoreOp::RoomCreated { room, .. } => {
                m.members.insert(*room, BTreeSet::new());
                m.groups.remove(room);
                m.direct.remove(room);
                *m.generation.entry(*room).or_default() += 1;
                if !self.rooms.contains(room) {
                    self.rooms.push(*room);
                }
            }
            StoreOp::RoomDeleted { room } => {
                m.members.remove(room);
                m.groups.remove(room);
                m.direct.remove(room);
            }
            StoreOp::DirectCreated { room } => {
                m.direct.insert(*room);
            }
            StoreOp::MemberAdded { room, name, .. } => {
                m.members.entry(*room).or_default().insert(name.clone());
            }
            StoreOp::MemberRemoved { room, name } => {
                if let Some(s) = m.members.get_mut(room) {
                    s.remove(name);
                }
            }
            StoreOp::GroupSet {
                room,
                epoch,
                group_info,
            } => {
                let h = group_info_header(group_info).unwrap_or_else(|e| {
                    panic!("{room}: stored a GroupInfo that does not parse: {e}")
                });
                assert_eq!(
                    h.epoch, *epoch,
                    "{room}: GroupSet's epoch is not its GroupInfo's"
                );
                let generation = m.generation.get(room).copied().unwrap_or(0);
                if let Some(g) = m.groups.get(room) {
                    assert_eq!(h.group_id, &g.gid[..], "{room}: the group changed its ID");
                    assert_eq!(
                        g.epoch.checked_add(1),
                        Some(*epoch),
                        "{room}: a Commit moved the group from epoch {} to {epoch}",
                        g.epoch
                    );
                    assert!(
                        m.accepted.insert((*room, generation, g.epoch)),
                        "{room}: a second Commit accepted for epoch {}",
                        g.epoch
                    );
                }
                let joined_at = m.groups.get(room).map_or(*epoch, |g| g.joined_at);
                m.groups.insert(
                    *room,
                    Group {
                        gid: h.group_id.to_vec(),
                        epoch: *epoch,
                        info: group_info.to_vec(),
                        joined_at,
                    },
                );
            }
            StoreOp::KeyPackageAdded(kp) => {
                let u = USERS
                    .iter()
                    .position(|n| **n == *kp.name)
                    .unwrap_or_else(|| panic!("a KeyPackage stored for {}", kp.name));
                let h = cove_core::wire::mls::key_package_header(&kp.package)
                    .unwrap_or_else(|e| panic!("a KeyPackage that does not parse stored: {e}"));
                assert_eq!(
                    h.signature_key,
                    key_of(u),
                    "a KeyPackage with another's key"
                );
                assert_eq!(
                    h.identity,
                    kp.name.as_bytes(),
                    "a KeyPackage with another name"
                );
                if kp.last_resort {
                    m.last_resort.insert(kp.name.clone(), kp.package.to_vec());
                } else {
                    let stock = m.stock.entry(kp.name.clone()).or_default();
                    assert!(
                        !stock.iter().any(|held| **held == *kp.package),
                        "{}'s KeyPackage stored twice: it would be handed out twice",
                        kp.name
                    );
                    stock.push_back(kp.package.to_vec());
                }
            }
            StoreOp::KeyPackageTaken { name, package } => {
                let stock = m.stock.entry(name.clone()).or_default();
                assert!(
                    !stock.is_empty(),
                    "{name}'s KeyPackage handed out twice (none was left)"
                );
                assert!(
                    stock.front().is_some_and(|kp| **kp == **package),
                    "{name}'s KeyPackage handed out is not the oldest one held (or was handed out before)"
                );
                stock.pop_front();
            }
            _ => {}
        }
    }
}
