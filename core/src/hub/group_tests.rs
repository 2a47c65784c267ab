//! The hub as MLS Delivery Service: one Commit per epoch, application messages bound to
//! the group's epoch window, external joins, adds with Welcomes, direct conversations —
//! each across a restart (the KeyPackage directory's are in `key_package_tests`). MLS
//! bytes are built by hand here: the hub reads only their cleartext headers.

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use super::test_server::{Server, mine};
use super::*;

pub(super) const G: &[u8] = b"group-one";

fn group_info(gid: &[u8], epoch: u64) -> Arc<[u8]> {
    let mut b = vec![0, 1, 0, 4, 0, 1, 0, 1, gid.len() as u8];
    b.extend_from_slice(gid);
    b.extend_from_slice(&epoch.to_be_bytes());
    b.extend_from_slice(b"rest of the group info");
    b.into()
}

/// A PublicMessage Commit; `sender` 1 = a member, 4 = a joiner's external commit.
fn commit(gid: &[u8], epoch: u64, sender: u8) -> Arc<[u8]> {
    let mut b = vec![0, 1, 0, 1, gid.len() as u8];
    b.extend_from_slice(gid);
    b.extend_from_slice(&epoch.to_be_bytes());
    b.push(sender);
    if sender == 1 {
        b.extend_from_slice(&[0, 0, 0, 0]);
    }
    b.extend_from_slice(&[0, 3]);
    b.extend_from_slice(b"signed commit");
    b.into()
}

pub(super) fn application(gid: &[u8], epoch: u64) -> Arc<[u8]> {
    let mut b = vec![0, 1, 0, 2, gid.len() as u8];
    b.extend_from_slice(gid);
    b.extend_from_slice(&epoch.to_be_bytes());
    b.push(1);
    b.extend_from_slice(b"ciphertext");
    b.into()
}

fn welcome() -> Arc<[u8]> {
    Arc::from(&[0, 1, 0, 3, 0xEE, 0xEE][..])
}

pub(super) fn codes(out: &[(ConnId, Reply)]) -> Vec<ErrorCode> {
    out.iter()
        .filter_map(|(_, r)| match r {
            Reply::Error { code, .. } => Some(*code),
            _ => None,
        })
        .collect()
}

pub(super) fn oks(out: &[(ConnId, Reply)], c: ConnId) -> usize {
    mine(out, c)
        .iter()
        .filter(|r| matches!(r, Reply::Ok { .. }))
        .count()
}

/// Room messages `c` received: (seq, from, body).
fn entries(out: &[(ConnId, Reply)], c: ConnId) -> Vec<(u64, Arc<str>, Arc<[u8]>)> {
    mine(out, c)
        .into_iter()
        .filter_map(|r| match r {
            Reply::RoomMessage {
                seq, from, body, ..
            } => Some((seq, from, body)),
            _ => None,
        })
        .collect()
}

fn joined(out: &[(ConnId, Reply)], c: ConnId) -> Option<(RoomId, bool)> {
    mine(out, c).into_iter().find_map(|r| match r {
        Reply::RoomJoined { room, direct, .. } => Some((room, direct)),
        _ => None,
    })
}

fn group_commit(
    s: &mut Server,
    c: ConnId,
    room: RoomId,
    epoch: u64,
    sender: u8,
    add: Option<&str>,
) -> Vec<(ConnId, Reply)> {
    s.request(
        c,
        Request::GroupCommit {
            req: 4,
            room,
            commit: commit(G, epoch, sender),
            group_info: group_info(G, epoch + 1),
            add: add.map(Arc::from),
            welcome: if add.is_some() {
                welcome()
            } else {
                Arc::from(&[][..])
            },
        },
    )
}

/// alice's room with a published group at epoch 0.
fn alice_group(private: bool) -> (Server, ConnId, RoomId) {
    let mut s = Server::new(HubConfig::default());
    let (alice, _) = s.connect("alice", AuthMode::Register);
    let room = s.create(alice, private);
    let out = s.request(
        alice,
        Request::InitGroup {
            req: 3,
            room,
            group_info: group_info(G, 0),
        },
    );
    assert_eq!(oks(&out, alice), 1);
    (s, alice, room)
}

#[test]
fn exactly_one_commit_is_accepted_per_epoch_across_a_restart() {
    let (mut s, alice, room) = alice_group(false);
    let out = group_commit(&mut s, alice, room, 0, 1, None);
    assert_eq!(oks(&out, alice), 1);
    let echo = entries(&out, alice);
    assert_eq!(echo.len(), 1, "the commit is logged like a message");
    assert_eq!(&*echo[0].2, &*commit(G, 0, 1));
    assert_eq!(
        codes(&group_commit(&mut s, alice, room, 0, 1, None)),
        [ErrorCode::StaleEpoch]
    );
    assert_eq!(
        codes(&group_commit(&mut s, alice, room, 2, 1, None)),
        [ErrorCode::StaleEpoch],
        "a commit for a future epoch"
    );
    s.restart();
    let (alice, _) = s.connect("alice", AuthMode::Login);
    assert_eq!(
        codes(&group_commit(&mut s, alice, room, 0, 1, None)),
        [ErrorCode::StaleEpoch]
    );
    assert_eq!(
        oks(&group_commit(&mut s, alice, room, 1, 1, None), alice),
        1
    );
    let info = s.request(alice, Request::GetGroupInfo { req: 8, room });
    let Some(Reply::GroupInfo {
        epoch,
        group_info: gi,
        ..
    }) = mine(&info, alice).pop()
    else {
        panic!("no group info: {info:?}");
    };
    assert_eq!((epoch, &*gi), (2, &*group_info(G, 2)));
}

#[test]
fn a_commit_must_bring_the_next_epochs_group_info_of_the_same_group() {
    let (mut s, alice, room) = alice_group(false);
    let cases = [
        (commit(G, 0, 1), group_info(G, 2)),
        (commit(G, 0, 1), group_info(b"other", 1)),
        (commit(b"other", 0, 1), group_info(G, 1)),
        (application(G, 0), group_info(G, 1)),
        (Arc::from(&b"plaintext"[..]), group_info(G, 1)),
    ];
    for (c, gi) in cases {
        let out = s.request(
            alice,
            Request::GroupCommit {
                req: 4,
                room,
                commit: c,
                group_info: gi,
                add: None,
                welcome: Arc::from(&[][..]),
            },
        );
        assert_eq!(codes(&out), [ErrorCode::NotMls]);
    }
    let too_big = HubConfig::default().mls.max_group_info_len + 1;
    let fresh = s.create(alice, false);
    let out = s.request(
        alice,
        Request::InitGroup {
            req: 3,
            room: fresh,
            group_info: vec![0u8; too_big].into(),
        },
    );
    assert_eq!(codes(&out), [ErrorCode::BodyTooLarge]);
    let out = s.request(
        alice,
        Request::InitGroup {
            req: 3,
            room,
            group_info: group_info(G, 0),
        },
    );
    assert_eq!(codes(&out), [ErrorCode::GroupExists]);
}

#[test]
fn application_messages_must_be_mls_of_the_group_within_the_epoch_window() {
    let (mut s, alice, room) = alice_group(false);
    for e in 0..6 {
        assert_eq!(
            oks(&group_commit(&mut s, alice, room, e, 1, None), alice),
            1
        );
    }
    let window = HubConfig::default().mls.epoch_window;
    let say = |s: &mut Server, body: Arc<[u8]>| {
        codes(&s.request(alice, Request::RoomMessage { req: 9, room, body }))
    };
    assert_eq!(say(&mut s, application(G, 6)), []);
    assert_eq!(say(&mut s, application(G, 6 - window)), []);
    assert_eq!(
        say(&mut s, application(G, 6 - window - 1)),
        [ErrorCode::StaleEpoch]
    );
    assert_eq!(say(&mut s, application(G, 7)), [ErrorCode::StaleEpoch]);
    assert_eq!(say(&mut s, application(b"other", 6)), [ErrorCode::NotMls]);
    assert_eq!(say(&mut s, commit(G, 6, 1)), [ErrorCode::NotMls]);
    assert_eq!(say(&mut s, welcome()), [ErrorCode::NotMls]);
    assert_eq!(say(&mut s, Arc::from(&b"hello"[..])), [ErrorCode::NotMls]);
}

#[test]
fn a_joiner_enters_by_external_commit_and_reads_from_after_it() {
    let (mut s, alice, room) = alice_group(false);
    let (bob, _) = s.connect("bob", AuthMode::Register);
    let out = s.request(bob, Request::JoinRoom { req: 2, room });
    assert_eq!(
        codes(&out),
        [ErrorCode::NotMls],
        "no plain join of an encrypted room"
    );
    assert_eq!(
        codes(&group_commit(&mut s, bob, room, 0, 1, None)),
        [ErrorCode::NotInRoom],
        "a member's commit from a non-member"
    );
    let out = group_commit(&mut s, bob, room, 0, 4, None);
    assert_eq!(joined(&out, bob), Some((room, false)));
    assert!(entries(&out, bob).is_empty(), "not its own commit");
    assert_eq!(entries(&out, alice).len(), 1);
    assert!(
        mine(&out, alice)
            .iter()
            .any(|r| matches!(r, Reply::MemberJoined { name, .. } if &**name == "bob"))
    );
    let out = s.request(
        alice,
        Request::RoomMessage {
            req: 9,
            room,
            body: application(G, 1),
        },
    );
    assert_eq!(entries(&out, bob).len(), 1);
}

#[test]
fn a_private_rooms_admin_adds_an_offline_user_who_reads_the_welcome_first() {
    let (mut s, alice, room) = alice_group(true);
    let (carol, _) = s.connect("carol", AuthMode::Register);
    assert_eq!(
        codes(&group_commit(&mut s, carol, room, 0, 4, None)),
        [ErrorCode::NotInvited]
    );
    s.hub.handle_disconnect(T_LATER, carol);
    s.settle();
    let out = group_commit(&mut s, alice, room, 0, 1, Some("carol"));
    assert_eq!(oks(&out, alice), 1);
    let seen: Vec<u64> = entries(&out, alice).iter().map(|e| e.0).collect();
    assert_eq!(seen, [1, 2], "the commit, then the welcome");
    s.restart();
    let (carol, replies) = s.connect("carol", AuthMode::Login);
    assert!(
        replies
            .iter()
            .any(|r| matches!(r, Reply::RoomJoined { .. }))
    );
    let got: Vec<(u64, Arc<[u8]>)> = replies
        .into_iter()
        .filter_map(|r| match r {
            Reply::RoomMessage { seq, body, .. } => Some((seq, body)),
            _ => None,
        })
        .collect();
    assert_eq!(got, [(2, welcome())]);
    let out = group_commit(&mut s, carol, room, 1, 1, Some("dave"));
    assert_eq!(codes(&out), [ErrorCode::NotRoomAdmin]);
}

const T_LATER: Instant = Instant(2_000_000);

fn open_direct(s: &mut Server, c: ConnId, peer: &str) -> Vec<(ConnId, Reply)> {
    s.request(
        c,
        Request::OpenDirect {
            req: 5,
            peer: peer.into(),
            group_info: group_info(b"dm", 1),
            welcome: welcome(),
        },
    )
}

#[test]
fn a_direct_conversation_reaches_an_offline_peer_and_the_first_opener_wins() {
    let mut s = Server::new(HubConfig::default());
    let (alice, _) = s.connect("alice", AuthMode::Register);
    let (bob, _) = s.connect("bob", AuthMode::Register);
    s.hub.handle_disconnect(T_LATER, bob);
    s.settle();
    assert_eq!(
        codes(&open_direct(&mut s, alice, "alice")),
        [ErrorCode::InvalidFormat]
    );
    assert_eq!(
        codes(&open_direct(&mut s, alice, "nobody")),
        [ErrorCode::UserNotFound]
    );
    let out = open_direct(&mut s, alice, "bob");
    let (room, direct) = joined(&out, alice).expect("opened");
    assert!(direct);
    let listed = s.request(alice, Request::ListRooms { req: 1 });
    assert!(
        matches!(&mine(&listed, alice)[..], [Reply::RoomList { rooms, .. }] if rooms.is_empty())
    );
    s.restart();
    let (bob, replies) = s.connect("bob", AuthMode::Login);
    assert!(
        replies
            .iter()
            .any(|r| matches!(r, Reply::RoomJoined { room: r2, direct: true, .. } if *r2 == room))
    );
    assert!(
        replies
            .iter()
            .any(|r| matches!(r, Reply::RoomMessage { seq: 1, body, .. } if **body == *welcome()))
    );
    assert_eq!(
        codes(&open_direct(&mut s, bob, "alice")),
        [ErrorCode::DirectExists]
    );
    // A conversation one of them left may be opened again.
    s.request(bob, Request::LeaveRoom { req: 6, room });
    let out = open_direct(&mut s, bob, "alice");
    assert!(joined(&out, bob).is_some_and(|(r, _)| r != room));
}

#[test]
fn only_private_application_messages_pass_and_the_window_is_exact() {
    let mut config = HubConfig::default();
    config.mls.epoch_window = 1;
    let mut s = Server::new(config);
    let (alice, _) = s.connect("alice", AuthMode::Register);
    let room = s.create(alice, false);
    let out = s.request(
        alice,
        Request::InitGroup {
            req: 3,
            room,
            group_info: group_info(G, 0),
        },
    );
    assert_eq!(oks(&out, alice), 1);
    for e in 0..6 {
        assert_eq!(
            oks(&group_commit(&mut s, alice, room, e, 1, None), alice),
            1
        );
    }
    let say = |s: &mut Server, body: Arc<[u8]>| {
        codes(&s.request(alice, Request::RoomMessage { req: 9, room, body }))
    };
    assert_eq!(say(&mut s, application(G, 5)), [], "one epoch back");
    assert_eq!(say(&mut s, application(G, 4)), [ErrorCode::StaleEpoch]);
    // Application data in a PublicMessage would be readable by the server: refused.
    let mut public = vec![0, 1, 0, 1, G.len() as u8];
    public.extend_from_slice(G);
    public.extend_from_slice(&6u64.to_be_bytes());
    public.extend_from_slice(&[1, 0, 0, 0, 0, 0, 1]);
    assert_eq!(say(&mut s, public.into()), [ErrorCode::NotMls]);
}

#[test]
fn group_info_is_for_members_and_those_who_may_join() {
    let (mut s, alice, room) = alice_group(true);
    let (bob, _) = s.connect("bob", AuthMode::Register);
    let (carol, _) = s.connect("carol", AuthMode::Register);
    let ask = |s: &mut Server, c: ConnId| {
        let out = s.request(c, Request::GetGroupInfo { req: 8, room });
        (
            codes(&out),
            mine(&out, c)
                .iter()
                .any(|r| matches!(r, Reply::GroupInfo { .. })),
        )
    };
    assert_eq!(ask(&mut s, bob), (vec![ErrorCode::NotInvited], false));
    s.request(
        alice,
        Request::InviteMember {
            req: 2,
            room,
            name: "bob".into(),
        },
    );
    assert_eq!(ask(&mut s, bob), (vec![], true), "invited");
    assert_eq!(ask(&mut s, alice), (vec![], true), "a member");
    assert_eq!(ask(&mut s, carol), (vec![ErrorCode::NotInvited], false));
    let (mut p, palice, proom) = alice_group(false);
    let (dave, _) = p.connect("dave", AuthMode::Register);
    let out = p.request(
        dave,
        Request::GetGroupInfo {
            req: 8,
            room: proom,
        },
    );
    assert!(
        mine(&out, dave)
            .iter()
            .any(|r| matches!(r, Reply::GroupInfo { .. }))
    );
    let _ = palice;
}

#[test]
fn a_group_info_of_exactly_the_largest_size_is_kept() {
    let max = HubConfig::default().mls.max_group_info_len;
    let mut s = Server::new(HubConfig::default());
    let (alice, _) = s.connect("alice", AuthMode::Register);
    let room = s.create(alice, false);
    let mut gi = group_info(G, 0).to_vec();
    gi.resize(max, 0);
    let out = s.request(
        alice,
        Request::InitGroup {
            req: 3,
            room,
            group_info: gi.into(),
        },
    );
    assert_eq!(oks(&out, alice), 1);
}

#[test]
fn a_message_from_before_the_newest_members_first_epoch_is_refused() {
    let (mut s, alice, room) = alice_group(false);
    let (bob, _) = s.connect("bob", AuthMode::Register);
    let (carol, _) = s.connect("carol", AuthMode::Register);
    let say = |s: &mut Server, epoch: u64| {
        let body = application(G, epoch);
        codes(&s.request(alice, Request::RoomMessage { req: 9, room, body }))
    };
    // bob joins: epoch 1 is his first.
    assert_eq!(
        joined(&group_commit(&mut s, bob, room, 0, 4, None), bob),
        Some((room, false))
    );
    assert_eq!(
        say(&mut s, 0),
        [ErrorCode::StaleEpoch],
        "bob could not read it"
    );
    assert_eq!(say(&mut s, 1), []);
    // A Commit that brings no one in keeps the window back to bob's first epoch.
    assert_eq!(
        oks(&group_commit(&mut s, alice, room, 1, 1, None), alice),
        1
    );
    assert_eq!(say(&mut s, 1), [], "sent just before alice's update");
    // bob rejoins (his state lost): an external commit from a member.
    assert_eq!(oks(&group_commit(&mut s, bob, room, 2, 4, None), bob), 1);
    assert_eq!(say(&mut s, 2), [ErrorCode::StaleEpoch]);
    assert_eq!(say(&mut s, 3), []);
    // carol is added with a Welcome.
    assert_eq!(
        oks(
            &group_commit(&mut s, alice, room, 3, 1, Some("carol")),
            alice
        ),
        1
    );
    assert_eq!(say(&mut s, 3), [ErrorCode::StaleEpoch]);
    let out = s.request(
        alice,
        Request::RoomMessage {
            req: 9,
            room,
            body: application(G, 4),
        },
    );
    assert_eq!(entries(&out, carol).len(), 1);
}
