//! Tests of the client E2EE target: the input format, and that the seeds read what they
//! are meant to read (so the oracles have real plaintexts to guard).

use super::*;
use crate::seeds::e2ee_seeds;

#[test]
fn input_writer_round_trips() {
    let input = E2eeInput {
        ops: vec![
            E2eeOp::Reply(ReplySpec::Entry {
                room: 1,
                seq: Seq::Raw(9),
                from: 2,
                body: Body::Flip {
                    src: Src::Outbox(3),
                    at: 300,
                    xor: 7,
                },
            }),
            E2eeOp::Reply(ReplySpec::Joined {
                req: 4,
                room: 2,
                members: 5,
                direct: true,
            }),
            E2eeOp::Reply(ReplySpec::Low { remaining: 6 }),
            E2eeOp::Command(Command::AcceptKey { who: 1, real: true }),
            E2eeOp::Command(Command::Login),
            E2eeOp::Layer(LayerOp::Add {
                room: 3,
                package: Body::Cut {
                    src: Src::KeyPackage(1),
                    len: 10,
                },
            }),
            E2eeOp::Layer(LayerOp::Create { room: 0 }),
            E2eeOp::Restart,
            E2eeOp::Reply(ReplySpec::GroupInfo {
                req: 1,
                room: 2,
                body: Body::Raw(Bytes(vec![1, 2, 3])),
            }),
        ],
    };
    assert_eq!(decode::<E2eeInput>(&input.to_arb_bytes()), Some(input));
}

fn run(name: &str) -> harness::Harness {
    let (_, data) = e2ee_seeds()
        .into_iter()
        .find(|(n, _)| n == name)
        .expect("a seed of that name");
    let input = decode::<E2eeInput>(&data).expect("the seed decodes");
    let mut h = harness::Harness::new();
    for op in &input.ops {
        h.apply(op);
    }
    h.finish();
    h
}

fn texts(read: &[(String, Vec<u8>)]) -> Vec<(&str, &str)> {
    read.iter()
        .map(|(f, t)| (f.as_str(), std::str::from_utf8(t).expect("utf-8")))
        .collect()
}

#[test]
fn the_group_seed_reads_every_message_of_the_log_once() {
    let h = run("group_room");
    assert_eq!(
        texts(&h.read),
        [
            ("bob", "hello alice"),
            ("carol", "hi from carol"),
            ("bob", "after the update"),
            ("carol", "late from carol"),
            ("bob", "carol is gone"),
        ]
    );
}

#[test]
fn the_bare_layer_reads_the_same_log() {
    let h = run("bare_layer");
    let read = texts(&h.read);
    assert_eq!(read.len(), 6, "{read:?}");
    assert_eq!(read[4], ("bob", "carol is gone"));
    assert_eq!(read[5], ("bob", "a direct hello"));
}

#[test]
fn the_direct_seed_reads_bobs_hello() {
    let h = run("direct_rooms");
    assert_eq!(texts(&h.read), [("bob", "a direct hello")]);
}

#[test]
fn garbage_reads_nothing() {
    assert!(run("garbage").read.is_empty());
}
