//! Seeds of the client E2EE target: alice reads bob's group room from her Welcome through
//! an add, an update, a late message and a removal; the direct room bob opened, and one she
//! opens; joining by external commit (and a refused join); creating, inviting, removing and
//! leaving; the bare layer through the same log and its own Commits; and garbage.

use super::Seed;
use crate::arb::{Bytes, ToArb};
use crate::e2ee::{Body, Command, E2eeInput, E2eeOp, LayerOp, ReplySpec, Seq, Src};

/// Name selectors.
const ALICE: u8 = 0;
const BOB: u8 = 1;
const CAROL: u8 = 2;
const DAVE: u8 = 3;
/// Room selectors: bob's group, bob's direct room, the joinable room, a new room.
const GROUP: u8 = 0;
const DIRECT: u8 = 1;
const JOINABLE: u8 = 2;
const NEW: u8 = 3;
/// Error code selectors.
const STALE_EPOCH: u8 = 0;
const NO_KEY_PACKAGE: u8 = 2;
const DIRECT_EXISTS: u8 = 3;

fn reply(r: ReplySpec) -> E2eeOp {
    E2eeOp::Reply(r)
}

fn cmd(c: Command) -> E2eeOp {
    E2eeOp::Command(c)
}

fn layer(l: LayerOp) -> E2eeOp {
    E2eeOp::Layer(l)
}

fn scripted(range: std::ops::Range<u8>) -> Vec<E2eeOp> {
    range.map(|i| reply(ReplySpec::Scripted(i))).collect()
}

/// The server's answer to the newest request.
fn ok() -> E2eeOp {
    reply(ReplySpec::Ok { req: 0 })
}

fn joined(room: u8, members: &[u8], direct: bool, answer: bool) -> E2eeOp {
    reply(ReplySpec::Joined {
        req: if answer { 0 } else { 255 },
        room,
        members: members.iter().fold(0u8, |m, i| m | (1u8 << i)),
        direct,
    })
}

/// An entry echoing what alice sent `back` bodies ago.
fn echo(room: u8, back: u8) -> E2eeOp {
    reply(ReplySpec::Entry {
        room,
        seq: Seq::Next,
        from: ALICE,
        body: Body::Take(Src::Outbox(back)),
    })
}

fn seed(name: &str, ops: Vec<E2eeOp>) -> Seed {
    (name.to_owned(), E2eeInput { ops }.to_arb_bytes())
}

/// The seeds, also used by the target's tests.
pub fn e2ee_seeds() -> Vec<Seed> {
    let mut group = vec![joined(GROUP, &[ALICE, BOB], false, false)];
    group.extend(scripted(0..2));
    group.push(reply(ReplySpec::MemberJoined {
        room: GROUP,
        who: CAROL,
    }));
    group.extend(scripted(2..8));
    group.push(reply(ReplySpec::MemberLeft {
        room: GROUP,
        who: CAROL,
    }));
    group.extend(scripted(8..10));
    group.extend([
        cmd(Command::SendText {
            room: GROUP,
            text: 1,
        }),
        echo(GROUP, 0),
        E2eeOp::Restart,
        reply(ReplySpec::Scripted(1)),
        reply(ReplySpec::Entry {
            room: GROUP,
            seq: Seq::Next,
            from: BOB,
            body: Body::Flip {
                src: Src::Entry(9),
                at: 40,
                xor: 1,
            },
        }),
        reply(ReplySpec::Entry {
            room: GROUP,
            seq: Seq::Next,
            from: BOB,
            body: Body::Cut {
                src: Src::Entry(9),
                len: 60,
            },
        }),
        reply(ReplySpec::Entry {
            room: GROUP,
            seq: Seq::Next,
            from: CAROL,
            body: Body::Take(Src::Entry(9)),
        }),
    ]);

    let mut direct = vec![joined(DIRECT, &[BOB, ALICE], true, false)];
    direct.extend(scripted(10..12));
    direct.extend([
        cmd(Command::SendDirect { peer: BOB, text: 2 }),
        cmd(Command::SendDirect {
            peer: CAROL,
            text: 3,
        }),
        reply(ReplySpec::KeyPackage {
            req: 0,
            who: CAROL,
            body: Body::Take(Src::KeyPackage(2)),
        }),
        joined(NEW, &[ALICE, CAROL], true, true),
        reply(ReplySpec::Error {
            req: 0,
            code: STALE_EPOCH,
        }),
        cmd(Command::SendDirect {
            peer: DAVE,
            text: 4,
        }),
        reply(ReplySpec::Error {
            req: 0,
            code: NO_KEY_PACKAGE,
        }),
        cmd(Command::SendDirect { peer: BOB, text: 5 }),
        E2eeOp::Restart,
        echo(NEW, 0),
    ]);

    let join = vec![
        cmd(Command::Join { room: JOINABLE }),
        reply(ReplySpec::GroupInfo {
            req: 0,
            room: JOINABLE,
            body: Body::Take(Src::GroupInfo(0)),
        }),
        joined(JOINABLE, &[ALICE, BOB], false, true),
        cmd(Command::SendText {
            room: JOINABLE,
            text: 6,
        }),
        echo(JOINABLE, 2),
        echo(JOINABLE, 0),
        // Rejoining bob's group (alice's old leaf is in its GroupInfo): refused, retried.
        cmd(Command::Join { room: GROUP }),
        reply(ReplySpec::GroupInfo {
            req: 0,
            room: GROUP,
            body: Body::Take(Src::GroupInfo(1)),
        }),
        reply(ReplySpec::Error {
            req: 0,
            code: STALE_EPOCH,
        }),
        reply(ReplySpec::GroupInfo {
            req: 0,
            room: GROUP,
            body: Body::Take(Src::GroupInfo(1)),
        }),
        joined(GROUP, &[ALICE, BOB], false, true),
        cmd(Command::SendText {
            room: GROUP,
            text: 7,
        }),
    ];

    let create = vec![
        cmd(Command::Login),
        reply(ReplySpec::Low { remaining: 3 }),
        ok(),
        cmd(Command::Create { private: false }),
        joined(NEW, &[ALICE], false, true),
        ok(),
        cmd(Command::SendText { room: NEW, text: 8 }),
        cmd(Command::Invite {
            room: NEW,
            who: BOB,
        }),
        reply(ReplySpec::KeyPackage {
            req: 0,
            who: BOB,
            body: Body::Take(Src::KeyPackage(0)),
        }),
        ok(),
        reply(ReplySpec::MemberJoined {
            room: NEW,
            who: BOB,
        }),
        cmd(Command::SendText { room: NEW, text: 9 }),
        cmd(Command::Remove {
            room: NEW,
            who: BOB,
        }),
        reply(ReplySpec::MemberLeft {
            room: NEW,
            who: BOB,
        }),
        ok(),
        reply(ReplySpec::Error {
            req: 0,
            code: STALE_EPOCH,
        }),
        cmd(Command::AcceptKey {
            who: BOB,
            real: false,
        }),
        cmd(Command::SendText {
            room: NEW,
            text: 10,
        }),
        cmd(Command::Leave { room: NEW }),
        reply(ReplySpec::RoomLeft { req: 0, room: NEW }),
        cmd(Command::SendDirect {
            peer: BOB,
            text: 11,
        }),
        reply(ReplySpec::KeyPackage {
            req: 0,
            who: BOB,
            body: Body::Take(Src::KeyPackage(1)),
        }),
        reply(ReplySpec::Error {
            req: 0,
            code: DIRECT_EXISTS,
        }),
    ];

    let mut bare: Vec<E2eeOp> = (0..10).map(|i| layer(LayerOp::Scripted(i))).collect();
    bare.extend([
        layer(LayerOp::Encrypt {
            room: GROUP,
            text: 12,
        }),
        layer(LayerOp::Update { room: GROUP }),
        layer(LayerOp::Accepted { room: GROUP }),
        layer(LayerOp::Entry {
            room: GROUP,
            seq: Seq::Raw(20),
            from: ALICE,
            body: Body::Take(Src::Outbox(1)),
        }),
        layer(LayerOp::Add {
            room: GROUP,
            package: Body::Take(Src::KeyPackage(2)),
        }),
        layer(LayerOp::Refused { room: GROUP }),
        layer(LayerOp::RemoveMember {
            room: GROUP,
            who: BOB,
        }),
        layer(LayerOp::Accepted { room: GROUP }),
        layer(LayerOp::Create { room: NEW }),
        layer(LayerOp::JoinExternal {
            room: JOINABLE,
            info: Body::Take(Src::GroupInfo(0)),
        }),
        layer(LayerOp::Entry {
            room: JOINABLE,
            seq: Seq::Next,
            from: ALICE,
            body: Body::Take(Src::Outbox(1)),
        }),
        layer(LayerOp::OpenDirect {
            peer: CAROL,
            package: Body::Take(Src::KeyPackage(2)),
        }),
        layer(LayerOp::Bind {
            peer: BOB,
            room: DIRECT,
        }),
        layer(LayerOp::Scripted(10)),
        layer(LayerOp::Scripted(11)),
        layer(LayerOp::Cancel { peer: CAROL }),
        E2eeOp::Restart,
        layer(LayerOp::Forget { room: GROUP }),
        layer(LayerOp::Scripted(9)),
    ]);

    let garbage = vec![
        reply(ReplySpec::Entry {
            room: GROUP,
            seq: Seq::Raw(u64::MAX),
            from: BOB,
            body: Body::Raw(Bytes(b"not mls at all".to_vec())),
        }),
        reply(ReplySpec::Entry {
            room: DIRECT,
            seq: Seq::Raw(1),
            from: BOB,
            body: Body::Flip {
                src: Src::Entry(10),
                at: 7,
                xor: 0x80,
            },
        }),
        reply(ReplySpec::Entry {
            room: DIRECT,
            seq: Seq::Raw(2),
            from: CAROL,
            body: Body::Take(Src::Entry(10)),
        }),
        reply(ReplySpec::KeyPackage {
            req: 9,
            who: BOB,
            body: Body::Raw(Bytes(vec![0, 1, 0, 5])),
        }),
        reply(ReplySpec::GroupInfo {
            req: 9,
            room: JOINABLE,
            body: Body::Cut {
                src: Src::GroupInfo(0),
                len: 30,
            },
        }),
        reply(ReplySpec::Error { req: 9, code: 5 }),
        reply(ReplySpec::Removed { room: GROUP }),
        reply(ReplySpec::Low { remaining: 0 }),
        layer(LayerOp::Entry {
            room: GROUP,
            seq: Seq::Raw(3),
            from: BOB,
            body: Body::Flip {
                src: Src::Entry(0),
                at: 100,
                xor: 4,
            },
        }),
        layer(LayerOp::JoinExternal {
            room: GROUP,
            info: Body::Flip {
                src: Src::GroupInfo(1),
                at: 200,
                xor: 1,
            },
        }),
        layer(LayerOp::OpenDirect {
            peer: CAROL,
            package: Body::Take(Src::KeyPackage(0)),
        }),
    ];

    vec![
        seed("group_room", group),
        seed("direct_rooms", direct),
        seed("external_join", join),
        seed("create_invite_remove", create),
        seed("bare_layer", bare),
        seed("garbage", garbage),
    ]
}
