//! Runs the ops on alice's session and bare layer, and checks what comes out.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use cove_core::e2ee::session::{Action, EntryKind, SecureEvent, SecureSession};
use cove_core::e2ee::{CommitOut, E2ee, Inbound, MlsCrypto};
use cove_core::hub::Reply;
use cove_core::server::request_from;
use cove_core::wire::mls::{
    ContentType, WireFormat, group_info_header, key_package_header, message_header, wire_format,
};
use cove_core::wire::{ErrorCode, MAX_BODY_LEN, RoomId};

use super::world::{ALICE, NAMES, ROOMS, SECS, Scripted, World, entry_reply, identity, world};
use super::{Body, Command, E2eeOp, LayerOp, ReplySpec, Seq, Src};

/// The codes the Delivery Service (and the room requests around it) answer with.
const CODES: [ErrorCode; 16] = [
    ErrorCode::StaleEpoch,
    ErrorCode::NotMls,
    ErrorCode::NoKeyPackage,
    ErrorCode::DirectExists,
    ErrorCode::KeyPackageRefused,
    ErrorCode::NoGroup,
    ErrorCode::GroupExists,
    ErrorCode::RoomFull,
    ErrorCode::NotInRoom,
    ErrorCode::NotInvited,
    ErrorCode::NotRoomAdmin,
    ErrorCode::UserNotFound,
    ErrorCode::LimitReached,
    ErrorCode::InvalidFormat,
    ErrorCode::RoomNotFound,
    ErrorCode::BodyTooLarge,
];

/// Most bodies alice sent that are kept to echo back.
const OUTBOX: usize = 64;

pub(super) struct Harness {
    world: &'static World,
    session: SecureSession,
    layer: E2ee,
    /// Request IDs the session was given, in order.
    ids: Vec<u32>,
    next_req: u32,
    /// What alice sent, newest first.
    outbox: VecDeque<Vec<u8>>,
    /// What alice encrypted: she may read only these and the script's.
    own_texts: BTreeSet<Vec<u8>>,
    /// The last sequence number delivered per room, to the session and to the layer.
    session_seq: [u64; 4],
    layer_seq: [u64; 4],
    restarts: u8,
    /// Every message decrypted (by the session, then the layer), for the tests.
    pub(super) read: Vec<(String, Vec<u8>)>,
}

fn room(sel: u8) -> RoomId {
    ROOMS[usize::from(sel) % ROOMS.len()]
}

fn name(sel: u8) -> &'static str {
    NAMES[usize::from(sel) % NAMES.len()]
}

fn text(sel: u8) -> Vec<u8> {
    format!("alice says {sel}").into_bytes()
}

fn crypto(tag: u8, restarts: u8) -> MlsCrypto {
    let mut seed = [tag; 32];
    seed[0] = restarts;
    MlsCrypto::from_seed(seed)
}

impl Harness {
    pub(super) fn new() -> Harness {
        let world = world();
        let session =
            SecureSession::restore(&identity(0), ALICE, crypto(0xa2, 0), &world.alice_state)
                .expect("alice's session restores");
        let layer = E2ee::restore(
            &identity(0),
            ALICE,
            crypto(0xa3, 0),
            &world.alice_state[5..],
        )
        .expect("alice's layer restores");
        Harness {
            world,
            session,
            layer,
            ids: Vec::new(),
            next_req: 1,
            outbox: VecDeque::new(),
            own_texts: BTreeSet::new(),
            session_seq: [0; 4],
            layer_seq: [0; 4],
            restarts: 0,
            read: Vec::new(),
        }
    }

    pub(super) fn apply(&mut self, op: &E2eeOp) {
        match op {
            E2eeOp::Reply(spec) => {
                let reply = self.reply(spec);
                self.session.handle_reply(&reply, SECS);
            }
            E2eeOp::Command(c) => self.command(c),
            E2eeOp::Layer(l) => self.layer_op(l),
            E2eeOp::Restart => self.restart(),
        }
        self.drain();
    }

    /// Both states round-trip at the end.
    pub(super) fn finish(&mut self) {
        self.restart();
    }

    fn src(&self, src: &Src) -> Vec<u8> {
        let pick = |v: &[Vec<u8>], i: u8| {
            if v.is_empty() {
                Vec::new()
            } else {
                v[usize::from(i) % v.len()].clone()
            }
        };
        match src {
            Src::Entry(i) => {
                let e = &self.world.entries;
                e[usize::from(*i) % e.len()].body.clone()
            }
            Src::GroupInfo(i) => pick(&self.world.group_infos, *i),
            Src::KeyPackage(i) => pick(&self.world.key_packages, *i),
            Src::Outbox(i) => match self.outbox.len() {
                0 => Vec::new(),
                n => self.outbox[usize::from(*i) % n].clone(),
            },
        }
    }

    fn body(&self, body: &Body) -> Vec<u8> {
        match body {
            Body::Take(s) => self.src(s),
            Body::Flip { src, at, xor } => {
                let mut b = self.src(src);
                if !b.is_empty() {
                    let i = usize::from(*at) % b.len();
                    b[i] ^= *xor;
                }
                b
            }
            Body::Cut { src, len } => {
                let mut b = self.src(src);
                b.truncate(usize::from(*len) % (b.len() + 1));
                b
            }
            Body::Raw(b) => b.0.clone(),
        }
    }

    fn req(&self, sel: u8) -> u32 {
        match self.ids.len() {
            0 => u32::from(sel),
            n => self.ids[n - 1 - usize::from(sel) % n],
        }
    }

    fn scripted(&self, i: u8) -> &'static Scripted {
        let e = &self.world.entries;
        &e[usize::from(i) % e.len()]
    }

    fn seq(last: &mut [u64; 4], r: usize, seq: &Seq) -> u64 {
        let s = match seq {
            Seq::Next => last[r].saturating_add(1),
            Seq::Raw(s) => *s,
        };
        last[r] = last[r].max(s);
        s
    }

    fn reply(&mut self, spec: &ReplySpec) -> Reply {
        match spec {
            ReplySpec::Scripted(i) => {
                let e = self.scripted(*i);
                self.session_seq[e.room] = self.session_seq[e.room].max(e.seq);
                entry_reply(e)
            }
            ReplySpec::Entry {
                room: r,
                seq,
                from,
                body,
            } => {
                let ri = usize::from(*r) % ROOMS.len();
                Reply::RoomMessage {
                    room: ROOMS[ri],
                    seq: Self::seq(&mut self.session_seq, ri, seq),
                    from: Arc::from(name(*from)),
                    timestamp: 0,
                    body: Arc::from(self.body(body)),
                }
            }
            ReplySpec::Ok { req } => Reply::Ok {
                req: self.req(*req),
            },
            ReplySpec::Error { req, code } => {
                let code = CODES[usize::from(*code) % CODES.len()];
                Reply::Error {
                    req: self.req(*req),
                    code,
                    text: code.description(),
                }
            }
            ReplySpec::Joined {
                req,
                room: r,
                members,
                direct,
            } => {
                let members: Vec<Arc<str>> = (0..NAMES.len())
                    .filter(|i| members >> i & 1 == 1)
                    .map(|i| Arc::from(NAMES[i]))
                    .collect();
                Reply::RoomJoined {
                    req: if *req == 255 { 0 } else { self.req(*req) },
                    room: room(*r),
                    title: Arc::from(""),
                    admin: members.first().cloned().unwrap_or_else(|| Arc::from("bob")),
                    members,
                    private: *direct,
                    direct: *direct,
                }
            }
            ReplySpec::MemberJoined { room: r, who } => Reply::MemberJoined {
                room: room(*r),
                name: Arc::from(name(*who)),
            },
            ReplySpec::MemberLeft { room: r, who } => Reply::MemberLeft {
                room: room(*r),
                name: Arc::from(name(*who)),
            },
            ReplySpec::RoomLeft { req, room: r } => Reply::RoomLeft {
                req: self.req(*req),
                room: room(*r),
            },
            ReplySpec::Removed { room: r } => Reply::RoomRemoved {
                room: room(*r),
                by: Arc::from("bob"),
            },
            ReplySpec::KeyPackage { req, who, body } => Reply::KeyPackage {
                req: self.req(*req),
                name: Arc::from(name(*who)),
                package: Arc::from(self.body(body)),
            },
            ReplySpec::GroupInfo { req, room: r, body } => {
                let body = self.body(body);
                let epoch = group_info_header(&body).map_or(0, |h| h.epoch);
                Reply::GroupInfo {
                    req: self.req(*req),
                    room: room(*r),
                    epoch,
                    group_info: Arc::from(body),
                }
            }
            ReplySpec::Low { remaining } => Reply::KeyPackagesLow {
                remaining: u16::from(*remaining),
            },
        }
    }

    fn command(&mut self, c: &Command) {
        let s = &mut self.session;
        match c {
            Command::SendText { room: r, text: t } => {
                self.own_texts.insert(text(*t));
                s.send_text(room(*r), &text(*t), SECS);
            }
            Command::SendDirect { peer, text: t } => {
                self.own_texts.insert(text(*t));
                s.send_direct(name(*peer), &text(*t), SECS);
            }
            Command::Join { room: r } => s.join_room(room(*r)),
            Command::Leave { room: r } => s.leave_room(room(*r)),
            Command::Invite { room: r, who } => s.invite(room(*r), name(*who)),
            Command::Remove { room: r, who } => s.remove(room(*r), name(*who)),
            Command::Create { private } => s.create_room("t", *private),
            Command::AcceptKey { who, real } => {
                let i = usize::from(*who) % NAMES.len();
                let key = if *real {
                    identity(i).public().ed25519
                } else {
                    [0; 32]
                };
                s.accept_key(NAMES[i], key, SECS);
            }
            Command::Login => s.login(SECS),
        }
    }

    /// Sends every action the session asks for (giving it a request ID), then checks its
    /// events.
    fn drain(&mut self) {
        while let Some(action) = self.session.poll_action() {
            let req = self.next_req;
            self.next_req += 1;
            self.check_action(&action, req);
            self.session.sent(req);
            self.ids.push(req);
        }
        while let Some(event) = self.session.poll_event() {
            if let SecureEvent::Entry {
                from,
                kind: EntryKind::Text(plaintext),
                ..
            } = &event
            {
                self.check_plaintext(from, plaintext);
            }
        }
    }

    fn check_plaintext(&mut self, from: &str, plaintext: &[u8]) {
        self.read.push((from.to_owned(), plaintext.to_vec()));
        let known = self
            .world
            .known
            .contains(&(from.to_owned(), plaintext.to_vec()))
            || (from == ALICE && self.own_texts.contains(plaintext));
        assert!(
            known,
            "decrypted {:?} from {from}: never encrypted by {from}",
            String::from_utf8_lossy(plaintext)
        );
    }

    fn keep(&mut self, body: &[u8]) {
        if self.outbox.len() == OUTBOX {
            self.outbox.pop_back();
        }
        self.outbox.push_front(body.to_vec());
    }

    /// The action encodes as a client message the hub takes, with MLS headers the hub's
    /// checks accept; its MLS bytes go to the outbox.
    fn check_action(&mut self, action: &Action, req: u32) {
        let wire = action.with_msg(req, |m| {
            let m = m.unwrap_or_else(|e| panic!("{action:?} does not encode: {e:?}"));
            let mut buf = vec![0u8; m.encoded_len()];
            m.encode(&mut buf)
                .unwrap_or_else(|e| panic!("{action:?} does not encode: {e:?}"));
            request_from(m).is_some()
        });
        assert!(wire, "{action:?} is not a hub request");
        match action {
            Action::RoomMessage { body, .. } => {
                check_application(body);
                self.keep(body);
            }
            Action::GroupCommit {
                commit,
                group_info,
                add,
                ..
            } => {
                let welcome = add.as_ref().map(|(_, w)| w.clone());
                check_commit(commit, group_info, welcome.as_deref());
                self.keep(commit);
                self.keep(group_info);
                if let Some(w) = welcome {
                    self.keep(&w);
                }
            }
            Action::InitGroup { group_info, .. } => {
                let h = group_info_header(group_info).expect("InitGroup's GroupInfo parses");
                assert_eq!(h.epoch, 0, "a new group starts at epoch 0");
                self.keep(group_info);
            }
            Action::OpenDirect {
                group_info,
                welcome,
                ..
            } => {
                group_info_header(group_info).expect("OpenDirect's GroupInfo parses");
                assert_eq!(wire_format(welcome), Ok(WireFormat::Welcome));
                self.keep(group_info);
                self.keep(welcome);
            }
            Action::UploadKeyPackages {
                last_resort,
                packages,
            } => {
                assert!(!packages.is_empty() && (!last_resort || packages.len() == 1));
                let key = identity(0).public().ed25519;
                for kp in packages {
                    let h = key_package_header(kp).expect("an uploaded KeyPackage parses");
                    assert_eq!((h.signature_key, h.identity), (&key[..], ALICE.as_bytes()));
                }
            }
            _ => {}
        }
    }

    fn layer_op(&mut self, op: &LayerOp) {
        let l = &mut self.layer;
        let out: Option<CommitOut> = match op {
            LayerOp::Entry {
                room: r,
                seq,
                from,
                body,
            } => {
                let ri = usize::from(*r) % ROOMS.len();
                let seq = Self::seq(&mut self.layer_seq, ri, seq);
                let body = self.body(body);
                self.layer_entry(ROOMS[ri], seq, name(*from), &body);
                None
            }
            LayerOp::Scripted(i) => {
                let e = self.scripted(*i);
                self.layer_seq[e.room] = self.layer_seq[e.room].max(e.seq);
                self.layer_entry(ROOMS[e.room], e.seq, e.from, &e.body);
                None
            }
            LayerOp::Accepted { room: r } => {
                let _ = l.commit_accepted(room(*r));
                None
            }
            LayerOp::Refused { room: r } => {
                let _ = l.commit_refused(room(*r));
                None
            }
            LayerOp::Encrypt { room: r, text: t } => {
                self.own_texts.insert(text(*t));
                // The directory agrees with every key pinned (a disagreement only holds
                // sending, which the session tests cover).
                for (name, key) in l.members(room(*r)) {
                    l.confirm_key(&name, key);
                }
                if let Ok(body) = l.encrypt(room(*r), &text(*t)) {
                    check_application(&body);
                    self.keep(&body);
                }
                None
            }
            LayerOp::Update { room: r } => l.update(room(*r), SECS).ok(),
            LayerOp::Add { room: r, package } => {
                let kp = self.body(package);
                self.layer.add_member(room(*r), &kp, SECS).ok()
            }
            LayerOp::RemoveMember { room: r, who } => {
                l.remove_members(room(*r), &[name(*who)], SECS).ok()
            }
            LayerOp::JoinExternal { room: r, info } => {
                let gi = self.body(info);
                self.layer.join_external(room(*r), &gi, SECS).ok()
            }
            LayerOp::OpenDirect { peer, package } => {
                let kp = self.body(package);
                if let Ok(open) = self.layer.open_direct(name(*peer), &kp, SECS) {
                    group_info_header(&open.group_info).expect("a direct GroupInfo parses");
                    assert_eq!(wire_format(&open.welcome), Ok(WireFormat::Welcome));
                    self.keep(&open.group_info);
                    self.keep(&open.welcome);
                }
                None
            }
            LayerOp::Bind { peer, room: r } => {
                let _ = l.bind_direct(name(*peer), room(*r));
                None
            }
            LayerOp::Cancel { peer } => {
                l.cancel_direct(name(*peer));
                None
            }
            LayerOp::Forget { room: r } => {
                l.forget(room(*r));
                None
            }
            LayerOp::Create { room: r } => {
                if let Ok(gi) = l.create_group(room(*r), SECS) {
                    assert_eq!(group_info_header(&gi).map(|h| h.epoch), Ok(0));
                    self.keep(&gi);
                }
                None
            }
        };
        if let Some(out) = out {
            check_commit(&out.commit, &out.group_info, out.welcome.as_deref());
            self.keep(&out.commit);
            self.keep(&out.group_info);
            if let Some(w) = &out.welcome {
                self.keep(w);
            }
        }
    }

    fn layer_entry(&mut self, room: RoomId, seq: u64, from: &str, body: &[u8]) {
        if let Ok(Inbound::Message {
            from: sender,
            plaintext,
        }) = self.layer.handle_room_message(room, seq, from, body, SECS)
        {
            assert_eq!(sender, from, "the sender is not the one the server named");
            self.check_plaintext(&sender, &plaintext);
        }
    }

    /// Both states are exported, restored and exported again: the same bytes.
    fn restart(&mut self) {
        self.restarts = self.restarts.wrapping_add(1);
        let state = self.session.export_state();
        let session =
            SecureSession::restore(&identity(0), ALICE, crypto(0xa2, self.restarts), &state)
                .unwrap_or_else(|e| panic!("the session's exported state does not restore: {e}"));
        assert!(
            session.export_state() == state,
            "the session's state changed in a round trip"
        );
        self.session = session;
        let state = self.layer.export_state();
        let layer = E2ee::restore(&identity(0), ALICE, crypto(0xa3, self.restarts), &state)
            .unwrap_or_else(|e| panic!("the layer's exported state does not restore: {e}"));
        assert!(
            layer.export_state() == state,
            "the layer's state changed in a round trip"
        );
        self.layer = layer;
    }
}

/// What the hub requires of an application message.
fn check_application(body: &[u8]) {
    assert!(body.len() <= MAX_BODY_LEN, "a {}-byte message", body.len());
    let h = message_header(body).expect("an application message's header parses");
    assert_eq!(
        (h.wire_format, h.content_type),
        (WireFormat::PrivateMessage, ContentType::Application)
    );
}

/// What the hub requires of a Commit, its GroupInfo and its Welcome.
fn check_commit(commit: &[u8], group_info: &[u8], welcome: Option<&[u8]>) {
    let h = message_header(commit).expect("a Commit's header parses");
    assert_eq!(h.content_type, ContentType::Commit);
    let gi = group_info_header(group_info).expect("a Commit's GroupInfo parses");
    assert_eq!(
        (gi.group_id, Some(gi.epoch)),
        (h.group_id, h.epoch.checked_add(1)),
        "the GroupInfo is not of the epoch the Commit makes"
    );
    if let Some(w) = welcome {
        assert_eq!(wire_format(w), Ok(WireFormat::Welcome));
    }
}
