//! Tests of the Delivery Service target: the input format, that the seeds reach the paths
//! they are named for, and that the oracles catch the core's injected two-Commits bug.

use super::*;
use crate::seeds::hub_mls_seeds;

#[test]
fn input_writer_round_trips() {
    let input = DsInput {
        limits: DsLimits {
            room_capacity: 1,
            max_rooms_per_user: 2,
            key_packages_per_user: 3,
            key_package_bytes: 4,
            key_packages_low: 5,
            epoch_window: 6,
            max_group_info_len: 7,
            max_directs_per_user: 8,
        },
        ops: vec![
            DsOp::Request {
                user: 1,
                req: DsReq::GroupCommit {
                    room: RoomSel::Raw([1, 2, 3, 4, 5, 6]),
                    commit: MessageSpec::Header {
                        public: true,
                        sender: 4,
                        content: 3,
                        gid: GidSpec::Raw(Bytes(vec![9, 9])),
                        epoch: EpochSpec::Top(2),
                        tail: Bytes(vec![1]),
                    },
                    info: InfoSpec::Header {
                        gid: GidSpec::Other(3),
                        epoch: EpochSpec::Raw(u64::MAX - 7),
                        tail: Bytes(vec![]),
                    },
                    add: Some(2),
                    welcome: WelcomeSpec::Welcome(Bytes(vec![7])),
                },
            },
            DsOp::Request {
                user: 2,
                req: DsReq::Upload {
                    last_resort: true,
                    packages: vec![
                        PackageSpec::Own { pad: 3 },
                        PackageSpec::OtherKey(1),
                        PackageSpec::OtherName(2),
                        PackageSpec::Again(4),
                        PackageSpec::Raw(Bytes(vec![5; 3])),
                    ],
                },
            },
            DsOp::Request {
                user: 3,
                req: DsReq::OpenDirect {
                    peer: 1,
                    info: InfoSpec::Sized(4),
                    welcome: WelcomeSpec::Raw(Bytes(vec![1, 2])),
                },
            },
            DsOp::Request {
                user: 0,
                req: DsReq::RoomMessage {
                    room: RoomSel::Known(3),
                    body: MessageSpec::Raw(Bytes(vec![0; 4])),
                },
            },
            DsOp::Request {
                user: 0,
                req: DsReq::Remove {
                    room: RoomSel::Known(0),
                    who: 4,
                },
            },
            DsOp::Disconnect { user: 2 },
            DsOp::Restart,
            DsOp::Request {
                user: 1,
                req: DsReq::Fetch { who: 0 },
            },
        ],
    };
    assert_eq!(decode::<DsInput>(&input.to_arb_bytes()), Some(input));
}

/// Runs a seed by name and returns the harness after it.
fn run_seed(name: &str) -> Harness {
    let (_, data) = hub_mls_seeds()
        .into_iter()
        .find(|(n, _)| n == name)
        .expect("a seed of that name");
    let input = decode::<DsInput>(&data).expect("the seed decodes");
    let mut h = Harness::new(&input.limits);
    for op in &input.ops {
        h.apply(op);
    }
    h
}

#[test]
fn the_group_seed_moves_the_epoch_and_refuses_a_stale_commit() {
    let h = run_seed("group_lifecycle");
    // InitGroup (epoch 0), the external join, ann's Commit, cat's join, ann's Commit,
    // cat's Commit after the restart: five Commits accepted, one per epoch.
    let g = h.model.groups.values().next().expect("the room's group");
    assert_eq!(g.epoch, 5);
    assert_eq!(h.model.accepted.len(), 5);
}

#[test]
fn the_key_package_seed_hands_out_every_package_once() {
    let h = run_seed("key_packages");
    // ben's three one-time packages went out, the last-resort one twice (it stays), and
    // the one ben uploaded again went to ben himself.
    assert_eq!(h.model.stock.get("ben").map_or(0, |s| s.len()), 0);
    assert!(h.model.last_resort.contains_key("ben"));
    assert_eq!(h.driver.hub().key_packages_of("ben"), 0);
    // dan's 1,600-byte package fit the budget of 4,096 bytes; two more of 1,900 did not.
    assert_eq!(h.model.stock.get("dan").map_or(0, |s| s.len()), 1);
}

#[test]
fn the_direct_seed_opens_two_rooms_for_one_pair() {
    let h = run_seed("direct_rooms");
    // The first, left by ben (and kept by ann), and the one ann opened after.
    assert_eq!(h.model.direct.len(), 2);
}

#[cfg(feature = "inject-bugs")]
#[test]
fn the_oracle_catches_two_commits_in_one_epoch() {
    let (_, data) = hub_mls_seeds()
        .into_iter()
        .find(|(n, _)| n == "group_lifecycle")
        .expect("seed");
    let input = decode::<DsInput>(&data).expect("decodes");
    let caught = std::panic::catch_unwind(|| {
        let mut h = Harness::new(&input.limits);
        h.config.bugs.accept_two_commits = true;
        h.driver = cove_core::server::Driver::new(
            cove_core::hub::Hub::new(h.config.clone(), 7),
            h.driver.config().clone(),
        );
        for op in &input.ops {
            h.apply(op);
        }
    });
    let message = caught
        .err()
        .and_then(|e| e.downcast::<String>().ok())
        .expect("the two-Commits bug is caught");
    assert!(message.contains("Commit"), "{message}");
}
/// Small limits (those of the seeds).
fn small() -> DsLimits {
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

fn upload(user: u8, last_resort: bool, packages: Vec<PackageSpec>) -> DsOp {
    DsOp::Request {
        user,
        req: DsReq::Upload {
            last_resort,
            packages,
        },
    }
}

fn fetch(user: u8, who: u8) -> DsOp {
    DsOp::Request {
        user,
        req: DsReq::Fetch { who },
    }
}

fn header(epoch: EpochSpec) -> InfoSpec {
    InfoSpec::Header {
        gid: GidSpec::Room,
        epoch,
        tail: Bytes::default(),
    }
}

/// A room admin publishes a group at epoch `u64::MAX`, then commits to it: the hub
/// computes the next epoch as `epoch + 1`.
#[test]
fn a_group_at_the_last_epoch_does_not_overflow() {
    let commit = MessageSpec::Header {
        public: false,
        sender: 1,
        content: 3,
        gid: GidSpec::Room,
        epoch: EpochSpec::Expected,
        tail: Bytes::default(),
    };
    let input = DsInput {
        limits: small(),
        ops: vec![
            DsOp::Request {
                user: 0,
                req: DsReq::CreateRoom { private: false },
            },
            DsOp::Request {
                user: 0,
                req: DsReq::InitGroup {
                    room: RoomSel::Known(0),
                    info: header(EpochSpec::Top(0)),
                },
            },
            DsOp::Request {
                user: 0,
                req: DsReq::GroupCommit {
                    room: RoomSel::Known(0),
                    commit,
                    info: header(EpochSpec::Expected),
                    add: None,
                    welcome: WelcomeSpec::Empty,
                },
            },
        ],
    };
    hub_mls(&input.to_arb_bytes());
}

/// A last-resort upload of a package the user holds as a one-time one is skipped but
/// still subtracts the old last-resort package's bytes from the directory's total; a
/// later upload then takes the total below zero.
#[test]
fn the_key_package_byte_count_never_goes_below_zero() {
    let input = DsInput {
        limits: small(),
        ops: vec![
            upload(1, true, vec![PackageSpec::Own { pad: 5 }]),
            upload(1, false, vec![PackageSpec::Own { pad: 0 }]),
            upload(1, true, vec![PackageSpec::Again(1)]),
            fetch(0, 1),
            upload(1, true, vec![PackageSpec::Again(1)]),
        ],
    };
    hub_mls(&input.to_arb_bytes());
}

/// The same package twice in one upload is stored twice (the hub skips only packages it
/// already held before the upload), so it would be handed out twice; a restart then keeps
/// one copy while the store keeps both.
#[test]
fn one_upload_cannot_store_a_package_twice() {
    let input = DsInput {
        limits: small(),
        ops: vec![upload(
            1,
            false,
            vec![PackageSpec::Own { pad: 0 }, PackageSpec::Again(0)],
        )],
    };
    hub_mls(&input.to_arb_bytes());
}
