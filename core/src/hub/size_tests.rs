//! Body limits: every body the hub accepts still fits a client's frame once relayed.

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::crypto::TAG_LEN;
use crate::server::{ListScratch, encode_reply};
use crate::wire::{AckStatus, DEFAULT_MAX_FRAME, MAX_BODY_LEN, MAX_NAME_LEN};

const T: Instant = Instant(1_000);

/// The longest name there is, so relayed headers are as long as they get.
fn long_name(c: char) -> String {
    core::iter::repeat_n(c, MAX_NAME_LEN).collect()
}

use alloc::string::String;

fn body(len: usize) -> Arc<[u8]> {
    Arc::from(vec![0x5a; len])
}

fn drain(hub: &mut Hub) -> Vec<(ConnId, Reply)> {
    core::iter::from_fn(|| hub.poll_delivery()).collect()
}

fn login(hub: &mut Hub, conn: u64, name: &str) -> ConnId {
    hub.handle_connect(T, ConnId(conn), name, [conn as u8; 32], AuthMode::Register);
    drain(hub);
    ConnId(conn)
}

/// Two users with the longest names, in one room.
fn setup() -> (Hub, ConnId, ConnId, RoomId) {
    let mut hub = Hub::new(HubConfig::default(), 3);
    let a = login(&mut hub, 1, &long_name('a'));
    let b = login(&mut hub, 2, &long_name('b'));
    let title = "t".into();
    let create = Request::CreateRoom {
        req: 1,
        title,
        private: false,
    };
    hub.handle_request(T, a, create);
    let room = drain(&mut hub)
        .into_iter()
        .find_map(|(_, r)| match r {
            Reply::RoomJoined { room, .. } => Some(room),
            _ => None,
        })
        .unwrap();
    hub.handle_request(T, b, Request::JoinRoom { req: 2, room });
    drain(&mut hub);
    (hub, a, b, room)
}

/// The size of the record a reply becomes: its encoding plus the AEAD tag.
fn record_len(reply: &Reply) -> usize {
    let mut out = Vec::new();
    encode_reply(reply, &mut ListScratch::default(), &mut out).unwrap();
    out.len() + TAG_LEN
}

fn codes(out: &[(ConnId, Reply)]) -> Vec<ErrorCode> {
    out.iter()
        .filter_map(|(_, r)| match r {
            Reply::Error { code, .. } => Some(*code),
            _ => None,
        })
        .collect()
}

#[test]
fn room_messages_up_to_the_limit_are_relayed_and_fit_a_frame() {
    let (mut hub, a, b, room) = setup();
    for len in [MAX_BODY_LEN - 1, MAX_BODY_LEN] {
        let msg = Request::RoomMessage {
            req: 3,
            room,
            body: body(len),
        };
        hub.handle_request(T, a, msg);
        let out = drain(&mut hub);
        let to_b = out.iter().find(|(c, _)| *c == b).expect("relayed to bob");
        assert!(
            record_len(&to_b.1) <= DEFAULT_MAX_FRAME as usize,
            "len {len}"
        );
    }
    let msg = Request::RoomMessage {
        req: 4,
        room,
        body: body(MAX_BODY_LEN + 1),
    };
    hub.handle_request(T, a, msg);
    let out = drain(&mut hub);
    assert_eq!(codes(&out), [ErrorCode::BodyTooLarge]);
    assert_eq!(out.len(), 1, "relayed anyway: {out:?}");
}

#[test]
fn direct_messages_up_to_the_limit_are_queued_and_fit_a_frame() {
    let (mut hub, a, b, _) = setup();
    let bob: Arc<str> = long_name('b').into();
    for len in [MAX_BODY_LEN - 1, MAX_BODY_LEN] {
        let dm = Request::SendDm {
            req: 5,
            to: bob.clone(),
            body: body(len),
        };
        hub.handle_request(T, a, dm);
        let out = drain(&mut hub);
        let to_b = out.iter().find(|(c, _)| *c == b).expect("pushed to bob");
        assert!(
            record_len(&to_b.1) <= DEFAULT_MAX_FRAME as usize,
            "len {len}"
        );
    }
    assert!(hub.poll_store_op().is_some());
    while hub.poll_store_op().is_some() {}
    let dm = Request::SendDm {
        req: 6,
        to: bob,
        body: body(MAX_BODY_LEN + 1),
    };
    hub.handle_request(T, a, dm);
    let out = drain(&mut hub);
    assert_eq!(codes(&out), [ErrorCode::BodyTooLarge]);
    assert!(out.iter().any(|(c, r)| *c == a
        && matches!(
            r,
            Reply::MessageAck {
                req: 6,
                status: AckStatus::Failed,
                ..
            }
        )));
    assert!(!out.iter().any(|(c, _)| *c == b), "pushed anyway");
    assert_eq!(hub.poll_store_op(), None, "stored anyway");
    assert_eq!(hub.queued_for(&long_name('b')), 2);
}

#[test]
fn prekey_bundles_up_to_the_limit_are_stored_and_fit_a_frame() {
    let (mut hub, a, b, _) = setup();
    for len in [MAX_BODY_LEN - 1, MAX_BODY_LEN] {
        hub.handle_request(
            T,
            a,
            Request::UploadPrekeys {
                req: 7,
                bundle: body(len),
            },
        );
        assert!(matches!(drain(&mut hub)[..], [(_, Reply::Ok { req: 7 })]));
        let fetch = Request::FetchPrekeys {
            req: 8,
            name: long_name('a').into(),
        };
        hub.handle_request(T, b, fetch);
        let out = drain(&mut hub);
        assert!(
            record_len(&out[0].1) <= DEFAULT_MAX_FRAME as usize,
            "len {len}"
        );
    }
    while hub.poll_store_op().is_some() {}
    let upload = Request::UploadPrekeys {
        req: 9,
        bundle: body(MAX_BODY_LEN + 1),
    };
    hub.handle_request(T, a, upload);
    assert_eq!(codes(&drain(&mut hub)), [ErrorCode::BodyTooLarge]);
    assert_eq!(hub.poll_store_op(), None, "stored anyway");
}
