//! Announced frame limits: a client that reads at most 4 KiB frames (a small board)
//! shares a room with one that sends the largest bodies, and is never sent more than it
//! announced; the large sender is told why its messages went nowhere.

use super::*;
use cove_core::wire::{AckStatus, MAX_BODY_LEN};

/// The frame limit a small board announces.
const BOARD_FRAME: u32 = 4096;

pub fn small_frame_member_is_never_cut_off_and_large_senders_are_refused<R: Runtime>() {
    // Many registrations from this one address, for the long user list at the end.
    let limits = Limits {
        registration_burst: Some(500),
        handshake_rate: Some(1_000),
        ..Limits::default()
    };
    let s = TestServer::start::<R>(limits);
    let (mut big, _) = s.register("big");
    let id = Identity::generate(&mut cove_std::os_rng());
    let mut options = ClientOptions::new("board", AuthMode::Register, id);
    options.config.max_frame = BOARD_FRAME;
    let mut board = s.connect_with(options).expect("a 4 KiB client connects");
    let room = create_room(&mut big, "mixed");
    join(&mut board, room);

    // The largest body a 4 KiB member takes from "big": the record of a history message
    // (the larger relayed form) is 30 bytes of header, the name, the body and a 16-byte tag.
    let fits = BOARD_FRAME as usize - 30 - "big".len() - 16;
    let refused = [fits + 1, 8_000, MAX_BODY_LEN];
    let first = big.handle().send_room(room, &vec![1; fits]).expect("send");
    for len in refused {
        let req = big.handle().send_room(room, &vec![2; len]).expect("send");
        assert_eq!(
            error_code(&reply(&mut big, req)),
            Some(ErrorCode::TooLargeForRecipient),
            "a {len}-byte body"
        );
    }
    let last = big.handle().send_room(room, b"still here?").expect("send");
    let req = big.handle().send_dm("board", &vec![3; 8_000]).expect("dm");
    assert_eq!(
        error_code(&reply(&mut big, req)),
        Some(ErrorCode::TooLargeForRecipient)
    );
    assert!(matches!(
        reply(&mut big, req),
        Reply::MessageAck {
            status: AckStatus::Failed,
            ..
        }
    ));
    assert!(first < last);

    // The board got exactly the two that fit, in order, and is still connected.
    let mut bodies = Vec::new();
    while bodies.len() < 2 {
        let body = wait(&mut board, "the room messages that fit", |e| match e {
            Event::Message(Reply::RoomMessage { body, .. }) => Some(body.clone()),
            Event::Closed { code, .. } => panic!("the board was cut off: {code}"),
            _ => None,
        });
        bodies.push(body);
    }
    assert_eq!(bodies[0].len(), fits);
    assert_eq!(&bodies[1][..], b"still here?");
    sync(&mut board);
    let seen = board.events().drain();
    assert!(
        !seen.iter().any(|e| matches!(e, Event::Closed { .. })),
        "{seen:?}"
    );
    // A user list of many names is cut to what the board takes, never sent whole.
    for i in 0..150 {
        s.register(&format!("user_with_a_long_name_{i:04}"));
    }
    let req = board.list_users().expect("list");
    match reply(&mut board, req) {
        Reply::UserList { users, .. } => assert!(users.len() < 152, "{} users", users.len()),
        other => panic!("expected a user list, got {other:?}"),
    }
    logout(board);
}
