//! Seeds of the Delivery Service target: a group's life (create, external join, Commits,
//! a stale Commit, messages inside and outside the epoch window, a restart), adds with
//! Welcomes in a private room, direct conversations, the KeyPackage directory, and the
//! main refusals. The limits are small: a GroupInfo of at most 528 bytes, 4 one-time
//! packages per user and 4,096 package bytes in all, an epoch window of 2.

use super::{Seed, bytes};
use crate::arb::{Bytes, ToArb};
use crate::connection::RoomSel;
use crate::hub_mls::{
    DsInput, DsLimits, DsOp, DsReq, EpochSpec, GidSpec, InfoSpec, MessageSpec, PackageSpec,
    WelcomeSpec,
};

/// Users by selector.
const ANN: u8 = 0;
const BEN: u8 = 1;
const CAT: u8 = 2;
const DAN: u8 = 3;
/// The stranger's selector.
const ZED: u8 = 4;

fn limits() -> DsLimits {
    DsLimits {
        room_capacity: 3,
        max_rooms_per_user: 3,
        key_packages_per_user: 4,
        key_package_bytes: 31,
        key_packages_low: 3,
        epoch_window: 2,
        max_group_info_len: 8,
        max_directs_per_user: 2,
    }
}

fn req(user: u8, req: DsReq) -> DsOp {
    DsOp::Request { user, req }
}

fn room(i: u8) -> RoomSel {
    RoomSel::Known(i)
}

/// The GroupInfo the request should carry.
fn info() -> InfoSpec {
    InfoSpec::Header {
        gid: GidSpec::Room,
        epoch: EpochSpec::Expected,
        tail: bytes(b"tree"),
    }
}

/// A Commit: public (an external one, sender new_member_commit) or private (a member's).
fn commit(external: bool, epoch: EpochSpec) -> MessageSpec {
    MessageSpec::Header {
        public: external,
        sender: if external { 4 } else { 1 },
        content: 3,
        gid: GidSpec::Room,
        epoch,
        tail: bytes(b"commit"),
    }
}

fn group_commit(r: u8, external: bool, epoch: EpochSpec) -> DsReq {
    DsReq::GroupCommit {
        room: room(r),
        commit: commit(external, epoch),
        info: info(),
        add: None,
        welcome: WelcomeSpec::Empty,
    }
}

fn add(r: u8, who: u8) -> DsReq {
    DsReq::GroupCommit {
        room: room(r),
        commit: commit(false, EpochSpec::Expected),
        info: info(),
        add: Some(who),
        welcome: WelcomeSpec::Welcome(bytes(b"welcome")),
    }
}

fn app(r: u8, epoch: EpochSpec) -> DsReq {
    DsReq::RoomMessage {
        room: room(r),
        body: MessageSpec::Header {
            public: false,
            sender: 0,
            content: 1,
            gid: GidSpec::Room,
            epoch,
            tail: bytes(b"ciphertext"),
        },
    }
}

fn init(r: u8) -> DsReq {
    DsReq::InitGroup {
        room: room(r),
        info: info(),
    }
}

fn direct(peer: u8) -> DsReq {
    DsReq::OpenDirect {
        peer,
        info: info(),
        welcome: WelcomeSpec::Welcome(bytes(b"welcome")),
    }
}

/// Every user logs in first (an add or a fetch needs its target registered), then `ops`.
fn seed(name: &str, ops: Vec<DsOp>) -> Seed {
    let mut all: Vec<DsOp> = [ANN, BEN, CAT, DAN]
        .into_iter()
        .map(|user| DsOp::Login { user })
        .collect();
    all.extend(ops);
    let input = DsInput {
        limits: limits(),
        ops: all,
    };
    (name.to_owned(), input.to_arb_bytes())
}

/// The seeds, also used by the target's tests.
pub fn hub_mls_seeds() -> Vec<Seed> {
    use DsReq::*;
    use EpochSpec::*;
    let lifecycle = vec![
        req(ANN, CreateRoom { private: false }),
        req(ANN, init(0)),
        req(ANN, app(0, Expected)),
        req(BEN, JoinRoom(room(0))),
        req(BEN, GetGroupInfo(room(0))),
        req(BEN, group_commit(0, true, Expected)),
        req(BEN, app(0, Expected)),
        req(ANN, group_commit(0, false, Expected)),
        req(CAT, group_commit(0, true, Minus(1))),
        req(CAT, group_commit(0, true, Expected)),
        req(ANN, group_commit(0, false, Expected)),
        req(BEN, app(0, Minus(2))),
        req(BEN, app(0, Minus(3))),
        req(BEN, app(0, Plus(1))),
        DsOp::Restart,
        req(CAT, group_commit(0, false, Minus(1))),
        req(CAT, group_commit(0, false, Expected)),
        req(DAN, GetGroupInfo(room(0))),
        req(CAT, LeaveRoom(room(0))),
        req(ANN, app(0, Expected)),
    ];
    let adds = vec![
        req(ANN, CreateRoom { private: true }),
        req(ANN, init(0)),
        req(ANN, add(0, BEN)),
        req(BEN, app(0, Expected)),
        req(BEN, add(0, CAT)),
        req(CAT, GetGroupInfo(room(0))),
        req(CAT, group_commit(0, true, Expected)),
        req(
            ANN,
            Invite {
                room: room(0),
                who: CAT,
            },
        ),
        req(CAT, GetGroupInfo(room(0))),
        req(CAT, group_commit(0, true, Expected)),
        req(ANN, add(0, DAN)),
        req(ANN, add(0, ZED)),
        req(
            ANN,
            Remove {
                room: room(0),
                who: BEN,
            },
        ),
        req(ANN, group_commit(0, false, Expected)),
        DsOp::Disconnect { user: DAN },
        req(CAT, app(0, Expected)),
    ];
    let directs = vec![
        req(
            ANN,
            Upload {
                last_resort: false,
                packages: vec![PackageSpec::Own { pad: 0 }],
            },
        ),
        req(BEN, direct(ANN)),
        req(ANN, direct(BEN)),
        req(ANN, app(0, Expected)),
        req(BEN, app(0, Expected)),
        req(ANN, group_commit(0, false, Expected)),
        req(ANN, add(0, CAT)),
        req(CAT, group_commit(0, true, Expected)),
        req(
            ANN,
            InitGroup {
                room: room(0),
                info: info(),
            },
        ),
        req(CAT, direct(CAT)),
        req(CAT, direct(ZED)),
        req(BEN, LeaveRoom(room(0))),
        req(ANN, direct(BEN)),
        DsOp::Restart,
        req(BEN, app(1, Expected)),
    ];
    let packages = vec![
        req(
            BEN,
            Upload {
                last_resort: true,
                packages: vec![PackageSpec::Own { pad: 1 }],
            },
        ),
        req(
            BEN,
            Upload {
                last_resort: false,
                packages: vec![
                    PackageSpec::Own { pad: 0 },
                    PackageSpec::Own { pad: 2 },
                    PackageSpec::Own { pad: 0 },
                ],
            },
        ),
        req(ANN, Fetch { who: BEN }),
        req(CAT, Fetch { who: BEN }),
        DsOp::Restart,
        req(ANN, Fetch { who: BEN }),
        req(ANN, Fetch { who: BEN }),
        req(ANN, Fetch { who: BEN }),
        req(ANN, Fetch { who: DAN }),
        req(ANN, Fetch { who: ZED }),
        req(
            DAN,
            Upload {
                last_resort: false,
                packages: vec![PackageSpec::OtherKey(ANN)],
            },
        ),
        req(
            DAN,
            Upload {
                last_resort: false,
                packages: vec![PackageSpec::OtherName(ANN)],
            },
        ),
        req(
            DAN,
            Upload {
                last_resort: false,
                packages: vec![PackageSpec::Raw(bytes(b"not a key package"))],
            },
        ),
        req(
            DAN,
            Upload {
                last_resort: true,
                packages: vec![PackageSpec::Own { pad: 0 }, PackageSpec::Own { pad: 0 }],
            },
        ),
        req(
            DAN,
            Upload {
                last_resort: false,
                packages: (0..5).map(|_| PackageSpec::Own { pad: 0 }).collect(),
            },
        ),
        req(
            DAN,
            Upload {
                last_resort: false,
                packages: vec![PackageSpec::Own { pad: 100 }],
            },
        ),
        req(
            DAN,
            Upload {
                last_resort: false,
                packages: vec![PackageSpec::Own { pad: 120 }, PackageSpec::Own { pad: 120 }],
            },
        ),
        req(
            DAN,
            Upload {
                last_resort: false,
                packages: vec![PackageSpec::Own { pad: 200 }],
            },
        ),
        req(
            BEN,
            Upload {
                last_resort: false,
                packages: vec![PackageSpec::Again(1)],
            },
        ),
        DsOp::Disconnect { user: BEN },
        req(BEN, Fetch { who: BEN }),
    ];
    let refusals = vec![
        req(ANN, CreateRoom { private: false }),
        req(
            ANN,
            GroupCommit {
                room: room(0),
                commit: commit(false, Expected),
                info: info(),
                add: None,
                welcome: WelcomeSpec::Empty,
            },
        ),
        req(BEN, JoinRoom(room(0))),
        req(BEN, init(0)),
        req(
            ANN,
            InitGroup {
                room: room(0),
                info: InfoSpec::Raw(bytes(b"junk")),
            },
        ),
        req(
            ANN,
            InitGroup {
                room: room(0),
                info: InfoSpec::Sized(255),
            },
        ),
        req(ANN, init(0)),
        req(ANN, init(0)),
        req(CAT, JoinRoom(room(0))),
        req(CAT, group_commit(0, false, Expected)),
        req(
            BEN,
            GroupCommit {
                room: room(0),
                commit: MessageSpec::Raw(bytes(b"junk")),
                info: info(),
                add: None,
                welcome: WelcomeSpec::Empty,
            },
        ),
        req(
            BEN,
            GroupCommit {
                room: room(0),
                commit: commit(false, Expected),
                info: InfoSpec::Header {
                    gid: GidSpec::Other(9),
                    epoch: Expected,
                    tail: Bytes::default(),
                },
                add: None,
                welcome: WelcomeSpec::Empty,
            },
        ),
        req(
            ANN,
            GroupCommit {
                room: room(0),
                commit: commit(false, Expected),
                info: info(),
                add: Some(BEN),
                welcome: WelcomeSpec::Raw(bytes(b"no welcome")),
            },
        ),
        req(
            ANN,
            GroupCommit {
                room: room(0),
                commit: commit(false, Expected),
                info: info(),
                add: None,
                welcome: WelcomeSpec::Welcome(Bytes::default()),
            },
        ),
        req(
            ANN,
            RoomMessage {
                room: room(0),
                body: MessageSpec::Header {
                    public: true,
                    sender: 1,
                    content: 1,
                    gid: GidSpec::Room,
                    epoch: Expected,
                    tail: Bytes::default(),
                },
            },
        ),
        req(
            ANN,
            RoomMessage {
                room: room(0),
                body: MessageSpec::Header {
                    public: false,
                    sender: 0,
                    content: 1,
                    gid: GidSpec::Other(3),
                    epoch: Expected,
                    tail: Bytes::default(),
                },
            },
        ),
        req(
            ANN,
            RoomMessage {
                room: room(0),
                body: MessageSpec::Raw(bytes(b"plaintext")),
            },
        ),
        req(DAN, GetGroupInfo(RoomSel::Raw([1; 6]))),
        req(DAN, group_commit(9, true, Expected)),
    ];
    vec![
        seed("group_lifecycle", lifecycle),
        seed("adds_and_invitations", adds),
        seed("direct_rooms", directs),
        seed("key_packages", packages),
        seed("refusals", refusals),
    ]
}
