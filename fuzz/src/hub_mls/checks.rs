//! What each step must have produced, given the model before it.

use std::sync::Arc;

use cove_core::crypto::TAG_LEN;
use cove_core::hub::{ConnId, Reply, Request};
use cove_core::server::{Step, encode_reply};
use cove_core::store::StoreOp;
use cove_core::wire::mls::{
    ContentType, MessageHeader, SenderType, WireFormat, group_info_header, message_header,
    wire_format,
};
use cove_core::wire::{DEFAULT_MAX_FRAME, ErrorCode, MAX_BODY_LEN, RoomId};

use super::USERS;
use super::harness::Harness;

/// What the model says of a request before it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Not judged.
    Any,
    /// An application message: accepted, or refused with this code.
    App(Result<(), ErrorCode>),
    /// A Commit: whether it names the room's current epoch, and whether it is one a
    /// member's valid Commit (no add) that must be accepted.
    Commit { current: bool, sure: bool },
}

/// The request ID a reply answers, if it is the answer to a request.
fn answer_id(reply: &Reply) -> Option<u32> {
    match reply {
        Reply::Ok { req }
        | Reply::Error { req, .. }
        | Reply::RoomLeft { req, .. }
        | Reply::GroupInfo { req, .. }
        | Reply::KeyPackage { req, .. } => Some(*req),
        Reply::RoomJoined { req, .. } if *req != 0 => Some(*req),
        _ => None,
    }
}

impl Harness {
    fn is_member(&self, room: RoomId, name: &str) -> bool {
        self.model
            .members
            .get(&room)
            .is_some_and(|m| m.iter().any(|n| &**n == name))
    }

    /// An application message in a room with a group: the model's own verdict.
    fn app_verdict(&self, room: RoomId, body: &[u8]) -> Result<(), ErrorCode> {
        let Some(g) = self.model.groups.get(&room) else {
            return Ok(());
        };
        let h = message_header(body).map_err(|_| ErrorCode::NotMls)?;
        if h.wire_format != WireFormat::PrivateMessage
            || h.content_type != ContentType::Application
            || h.group_id != &g.gid[..]
        {
            return Err(ErrorCode::NotMls);
        }
        let window = self.config.mls.epoch_window;
        let too_old = h.epoch.checked_add(window).is_some_and(|e| e < g.epoch);
        if h.epoch > g.epoch || too_old || h.epoch < g.joined_at {
            return Err(ErrorCode::StaleEpoch);
        }
        Ok(())
    }

    /// The model's verdict on a request, before it runs.
    pub(super) fn expect(&self, u: usize, request: &Request) -> Verdict {
        let me = USERS[u];
        match request {
            Request::RoomMessage { room, body, .. } => Verdict::App(if body.len() > MAX_BODY_LEN {
                Err(ErrorCode::BodyTooLarge)
            } else if !self.model.members.contains_key(room) {
                Err(ErrorCode::RoomNotFound)
            } else if !self.is_member(*room, me) {
                Err(ErrorCode::NotInRoom)
            } else {
                self.app_verdict(*room, body)
            }),
            Request::GroupCommit {
                room,
                commit,
                group_info,
                add,
                welcome,
                ..
            } => {
                let Some(g) = self.model.groups.get(room) else {
                    return Verdict::Any;
                };
                let h = message_header(commit).ok();
                let current = h.is_some_and(|h| h.epoch == g.epoch);
                let gi = group_info_header(group_info).ok();
                let sure = current
                    && h.is_some_and(|h: MessageHeader<'_>| {
                        h.content_type == ContentType::Commit && h.group_id == &g.gid[..]
                    })
                    && gi.is_some_and(|gi| {
                        gi.group_id == &g.gid[..] && Some(gi.epoch) == g.epoch.checked_add(1)
                    })
                    && group_info.len() <= self.config.mls.max_group_info_len
                    && commit.len() <= MAX_BODY_LEN
                    && add.is_none()
                    && welcome.is_empty()
                    && self.is_member(*room, me);
                Verdict::Commit { current, sure }
            }
            _ => Verdict::Any,
        }
    }

    /// Every reply of the step encodes and fits a client's frame once sealed, and nothing
    /// closes a connection; the step's store operations go into the model.
    pub(super) fn check_common(&mut self, step: Option<&Step>) {
        let owned;
        let step = match step {
            Some(s) => s,
            None => {
                owned = self.driver.last_step().clone();
                for op in &owned.ops {
                    self.absorb(op);
                }
                &owned
            }
        };
        for (conn, reply) in &step.replies {
            let mut plain = Vec::new();
            encode_reply(reply, &mut self.scratch, &mut plain)
                .unwrap_or_else(|e| panic!("{reply:?} does not encode: {e:?}"));
            assert!(
                plain.len() + TAG_LEN <= DEFAULT_MAX_FRAME as usize,
                "a {}-byte reply exceeds a client's frame once sealed",
                plain.len()
            );
            assert!(
                !matches!(reply, Reply::Close { .. }),
                "{conn:?} closed with {reply:?}"
            );
            if let Reply::RoomJoined { room, .. } = reply
                && !self.rooms.contains(room)
            {
                self.rooms.push(*room);
            }
        }
    }

    /// The `KeyPackagesLow` the step must have sent `u`, if any: when `u` is online, keeps
    /// a last-resort package and holds fewer one-time ones than the mark.
    fn expected_low(&self, u: usize) -> Option<(ConnId, u16)> {
        let conn = self.conns[u]?;
        let name = USERS[u];
        self.model.last_resort.get(name)?;
        let n = self.model.stock.get(name).map_or(0, |s| s.len());
        (n < self.config.mls.key_packages_low).then_some((conn, n as u16))
    }

    fn check_low(&self, step: &Step, who: Option<usize>) {
        let sent: Vec<(ConnId, u16)> = step
            .replies
            .iter()
            .filter_map(|(c, r)| match r {
                Reply::KeyPackagesLow { remaining } => Some((*c, *remaining)),
                _ => None,
            })
            .collect();
        let want: Vec<(ConnId, u16)> = who.and_then(|u| self.expected_low(u)).into_iter().collect();
        assert_eq!(
            sent, want,
            "KeyPackagesLow sent {sent:?}, expected {want:?}"
        );
    }

    /// A login: accepted, told of a low stock exactly when it is.
    pub(super) fn check_login(&mut self, u: usize, conn: ConnId) {
        let step = self.driver.last_step().clone();
        self.check_common(Some(&step));
        for op in &step.ops {
            self.absorb(op);
        }
        let ok = step
            .replies
            .iter()
            .any(|(c, r)| *c == conn && matches!(r, Reply::Auth { result: Ok(_), .. }));
        assert!(ok, "{} could not log in: {:?}", USERS[u], step.replies);
        self.check_low(&step, Some(u));
    }

    /// Checks one request's step against the verdict and the model, then updates the model.
    pub(super) fn check_request(
        &mut self,
        u: usize,
        conn: ConnId,
        id: u32,
        request: &Request,
        verdict: Verdict,
    ) {
        let step = self.driver.last_step().clone();
        self.check_common(Some(&step));
        let answers: Vec<&Reply> = step
            .replies
            .iter()
            .filter(|(c, r)| *c == conn && answer_id(r) == Some(id))
            .map(|(_, r)| r)
            .collect();
        let kind = request.kind();
        let refused = answers.iter().find_map(|r| match r {
            Reply::Error { code, .. } => Some(*code),
            _ => None,
        });
        if let Request::RoomMessage { .. } = request {
            // Accepted room messages are answered by their echo, which carries no ID.
            assert!(answers.len() <= 1, "{kind} answered {answers:?}");
        } else {
            assert_eq!(answers.len(), 1, "{kind} answered {:?}", step.replies);
        }
        if refused.is_some() {
            assert!(
                step.ops.is_empty(),
                "a refused {kind} changed state: {:?}",
                step.ops
            );
        }
        let before = self.model.groups.get(&room_of(request)).cloned();
        let stock_before = self
            .model
            .stock
            .get(name_fetched(request))
            .map_or(0, |s| s.len());
        let was_member = self.is_member(room_of(request), USERS[u]);
        self.absorb_logged(&step, request);
        match (request, verdict) {
            (Request::RoomMessage { body, .. }, Verdict::App(want)) => {
                let logged = step
                    .ops
                    .iter()
                    .filter(|op| matches!(op, StoreOp::RoomMessageLogged(m) if *m.body == **body))
                    .count();
                let got = match refused {
                    Some(code) => Err(code),
                    None => Ok(()),
                };
                assert_eq!(got, want, "RoomMessage verdict (model {want:?})");
                assert_eq!(
                    logged,
                    usize::from(got.is_ok()),
                    "an accepted message logged once"
                );
            }
            (Request::GroupCommit { commit, .. }, Verdict::Commit { current, sure }) => {
                let accepted = step
                    .ops
                    .iter()
                    .any(|op| matches!(op, StoreOp::GroupSet { .. }));
                assert_eq!(
                    accepted,
                    refused.is_none(),
                    "GroupCommit answered {answers:?}"
                );
                if sure {
                    assert!(accepted, "a member's valid Commit refused: {refused:?}");
                }
                if refused == Some(ErrorCode::StaleEpoch) {
                    assert!(!current, "StaleEpoch for a Commit of the current epoch");
                }
                if accepted {
                    self.check_commit_effects(u, &step, request, commit, was_member, &answers);
                }
            }
            (Request::GroupCommit { .. }, Verdict::Any) => {
                assert!(
                    refused.is_some(),
                    "a Commit accepted in a room without a group"
                );
            }
            (Request::GetGroupInfo { .. }, _) => {
                if let Some(Reply::GroupInfo {
                    epoch, group_info, ..
                }) = answers.first()
                {
                    let g = before.expect("GroupInfo of a room without a group");
                    assert_eq!((*epoch, &**group_info), (g.epoch, &g.info[..]));
                }
            }
            (Request::FetchKeyPackage { name, .. }, _) => {
                self.check_fetch(&step, name, answers[0], stock_before);
            }
            _ => {}
        }
        let low_for = match (request, refused) {
            (Request::FetchKeyPackage { name, .. }, None) => {
                USERS.iter().position(|n| **n == **name)
            }
            (
                Request::UploadKeyPackages {
                    last_resort: true, ..
                },
                None,
            ) => Some(u),
            _ => None,
        };
        self.check_low(&step, low_for);
    }

    fn check_fetch(&self, step: &Step, name: &Arc<str>, answer: &Reply, stock_before: usize) {
        let taken = step.ops.iter().find_map(|op| match op {
            StoreOp::KeyPackageTaken { package, .. } => Some(package.clone()),
            _ => None,
        });
        match answer {
            Reply::KeyPackage { package, .. } => match taken {
                Some(t) => assert_eq!(t, *package, "the package sent is not the one taken"),
                None => {
                    assert_eq!(
                        stock_before, 0,
                        "the last-resort package while others are held"
                    );
                    let lr = self.model.last_resort.get(&**name);
                    assert_eq!(
                        lr.map(Vec::as_slice),
                        Some(&package[..]),
                        "not the last resort"
                    );
                }
            },
            Reply::Error {
                code: ErrorCode::NoKeyPackage,
                ..
            } => {
                assert_eq!(stock_before, 0, "NoKeyPackage while packages are held");
                assert!(!self.model.last_resort.contains_key(&**name));
            }
            Reply::Error {
                code: ErrorCode::UserNotFound,
                ..
            } => {
                let known = USERS.iter().position(|n| **n == **name);
                assert!(known.is_none_or(|u| !self.registered[u]), "{name} exists");
            }
            other => panic!("FetchKeyPackage answered {other:?}"),
        }
    }

    /// An accepted Commit: logged right after its GroupSet, a Welcome after it when it adds,
    /// and the newcomer's cursor after the Commit.
    fn check_commit_effects(
        &self,
        u: usize,
        step: &Step,
        request: &Request,
        commit: &Arc<[u8]>,
        was_member: bool,
        answers: &[&Reply],
    ) {
        let Request::GroupCommit { add, welcome, .. } = request else {
            return;
        };
        let logged: Vec<(u64, &Arc<[u8]>)> = step
            .ops
            .iter()
            .filter_map(|op| match op {
                StoreOp::RoomMessageLogged(m) => Some((m.seq, &m.body)),
                _ => None,
            })
            .collect();
        let seq = match logged.first() {
            Some((seq, body)) if *body == commit => *seq,
            other => panic!("the accepted Commit is not the entry logged: {other:?}"),
        };
        let added: Vec<(&Arc<str>, u64)> = step
            .ops
            .iter()
            .filter_map(|op| match op {
                StoreOp::MemberAdded { name, since, .. } => Some((name, *since)),
                _ => None,
            })
            .collect();
        if !was_member {
            assert!(
                matches!(answers, [Reply::RoomJoined { .. }]),
                "a joiner got {answers:?}"
            );
            assert_eq!(logged.len(), 1);
            assert_eq!(
                added,
                [(&Arc::<str>::from(USERS[u]), seq)],
                "the joiner's cursor"
            );
        } else if let Some(who) = add {
            assert!(matches!(answers, [Reply::Ok { .. }]));
            assert_eq!(logged.len(), 2, "an add logs its Commit and Welcome");
            assert_eq!((logged[1].0, logged[1].1), (seq + 1, welcome));
            assert_eq!(added, [(who, seq)], "the newcomer's cursor");
        } else {
            assert!(matches!(answers, [Reply::Ok { .. }]));
            assert_eq!(logged.len(), 1);
            assert!(added.is_empty());
        }
    }

    /// Applies the step's operations to the model, checking each entry logged in a room
    /// with a group and each membership change there.
    fn absorb_logged(&mut self, step: &Step, request: &Request) {
        let mut committed: Option<RoomId> = None;
        let mut welcome_ok: Option<RoomId> = None;
        let joins_ok = matches!(
            request,
            Request::GroupCommit { .. } | Request::OpenDirect { .. }
        );
        for op in &step.ops {
            match op {
                StoreOp::GroupSet { room, .. } if self.model.groups.contains_key(room) => {
                    committed = Some(*room);
                }
                StoreOp::DirectCreated { room } => welcome_ok = Some(*room),
                StoreOp::MemberAdded { room, name, .. } => {
                    assert!(
                        !self.model.groups.contains_key(room) || joins_ok,
                        "{name} joined {room}, which has a group, by {}",
                        request.kind()
                    );
                }
                StoreOp::RoomMessageLogged(m) if self.model.groups.contains_key(&m.room) => {
                    let g = &self.model.groups[&m.room];
                    if wire_format(&m.body) == Ok(WireFormat::Welcome) {
                        assert_eq!(
                            welcome_ok,
                            Some(m.room),
                            "a Welcome logged in {} outside an add or a new direct room",
                            m.room
                        );
                        welcome_ok = None;
                    } else if committed == Some(m.room) {
                        let h = message_header(&m.body).expect("a logged Commit parses");
                        assert_eq!(h.content_type, ContentType::Commit);
                        assert_eq!(
                            (h.group_id, h.epoch.checked_add(1)),
                            (&g.gid[..], Some(g.epoch))
                        );
                        committed = None;
                        welcome_ok = Some(m.room);
                    } else {
                        let verdict = self.app_verdict(m.room, &m.body);
                        assert_eq!(verdict, Ok(()), "{} logged a bad entry", m.room);
                    }
                }
                _ => {}
            }
            self.absorb(op);
            // A Commit that brings someone in (an add, an external commit) starts their
            // first epoch.
            if let (
                StoreOp::GroupSet { room, epoch, .. },
                Request::GroupCommit { commit, add, .. },
            ) = (op, request)
            {
                let external = message_header(commit)
                    .is_ok_and(|h| h.sender == Some(SenderType::NewMemberCommit));
                if (add.is_some() || external)
                    && let Some(g) = self.model.groups.get_mut(room)
                {
                    g.joined_at = *epoch;
                }
            }
        }
    }
}

/// The room a request names (a fixed one if none).
fn room_of(request: &Request) -> RoomId {
    match request {
        Request::RoomMessage { room, .. }
        | Request::GroupCommit { room, .. }
        | Request::InitGroup { room, .. }
        | Request::GetGroupInfo { room, .. }
        | Request::JoinRoom { room, .. }
        | Request::LeaveRoom { room, .. } => *room,
        _ => RoomId::from_indices([0; 6]),
    }
}

/// The user whose KeyPackage a request fetches ("" if none).
fn name_fetched(request: &Request) -> &str {
    match request {
        Request::FetchKeyPackage { name, .. } => name,
        _ => "",
    }
}
