//! Replies that would not fit the frame limit a client announced.
//!
//! The hub already keeps bodies within every member's limit (it refuses them to their
//! sender, and skips what it logged before a smaller client appeared), so what reaches
//! this is the rest: lists, bundles, GroupInfos, KeyPackages. None of it is sent larger
//! than the client accepts, and none of it closes the connection:
//!
//! - a list (`UserList`, `RoomList`, a `RoomJoined`'s members) is cut to the entries
//!   that fit, as lists are already cut to `max_list_entries`;
//! - a room message becomes a `RoomGap` past it (the member skips it, as it skips what
//!   retention dropped); a history message is left out (its `HistoryDone` still follows);
//! - any other answer to a request becomes `Error { req, FrameTooLarge }`, and a notice
//!   without a request becomes `Error { 0, TooLargeForRecipient }`.

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::convert::{ListScratch, encode_reply};
use crate::hub::Reply;
use crate::wire::ErrorCode;

/// Encodes into `out` the largest form of `reply` whose record fits `limit` bytes of
/// frame payload (`tag` bytes are added by sealing). Returns false when nothing is to be
/// sent (`out` is then unspecified).
pub(super) fn encode_within(
    reply: &Reply,
    limit: usize,
    tag: usize,
    scratch: &mut ListScratch,
    out: &mut Vec<u8>,
) -> bool {
    let fits = |out: &Vec<u8>| out.len() + tag <= limit;
    if encode_reply(reply, scratch, out).is_ok() && fits(out) {
        return true;
    }
    let Some(smaller) = substitute(reply) else {
        return false;
    };
    match smaller {
        Shrink::List(len) => {
            // The longest prefix of the list that fits: entries only shrink the record,
            // so search the count.
            let (mut lo, mut hi) = (0usize, len);
            while lo < hi {
                let mid = (lo + hi).div_ceil(2);
                let ok = encode_reply(&truncated(reply, mid), scratch, out).is_ok() && fits(out);
                if ok { lo = mid } else { hi = mid - 1 }
            }
            encode_reply(&truncated(reply, lo), scratch, out).is_ok() && fits(out)
        }
        Shrink::Replace(other) => encode_reply(&other, scratch, out).is_ok() && fits(out),
        Shrink::Drop => false,
    }
}

enum Shrink {
    /// Cut the list to fewer entries (of this many).
    List(usize),
    /// Send this instead.
    Replace(Reply),
    /// Send nothing.
    Drop,
}

fn substitute(reply: &Reply) -> Option<Shrink> {
    let refuse = |req: u32| {
        let code = ErrorCode::FrameTooLarge;
        let text = code.description();
        Shrink::Replace(Reply::Error { req, code, text })
    };
    Some(match reply {
        Reply::UserList { users, .. } => Shrink::List(users.len()),
        Reply::RoomList { rooms, .. } => Shrink::List(rooms.len()),
        Reply::RoomJoined { members, .. } => Shrink::List(members.len()),
        Reply::RoomMessage { room, seq, .. } => Shrink::Replace(Reply::RoomGap {
            room: *room,
            first_available: seq.saturating_add(1),
        }),
        Reply::HistoryMessage { .. } => Shrink::Drop,
        Reply::PublicKey { req, .. }
        | Reply::PrekeyBundle { req, .. }
        | Reply::KeyPackage { req, .. }
        | Reply::GroupInfo { req, .. } => refuse(*req),
        Reply::IncomingDm { .. } => {
            let code = ErrorCode::TooLargeForRecipient;
            let text = code.description();
            Shrink::Replace(Reply::Error { req: 0, code, text })
        }
        // Fixed-size replies and short texts always fit MIN_FRAME_LIMIT.
        _ => return None,
    })
}

/// `reply` (a list) with only its first `n` entries.
fn truncated(reply: &Reply, n: usize) -> Reply {
    match reply {
        Reply::UserList { req, users } => Reply::UserList {
            req: *req,
            users: users.iter().take(n).cloned().collect::<Arc<[_]>>(),
        },
        Reply::RoomList { req, rooms } => Reply::RoomList {
            req: *req,
            rooms: rooms.iter().take(n).cloned().collect(),
        },
        Reply::RoomJoined {
            req,
            room,
            title,
            members,
            private,
            direct,
            admin,
        } => Reply::RoomJoined {
            req: *req,
            room: *room,
            title: title.clone(),
            members: members.iter().take(n).cloned().collect(),
            private: *private,
            direct: *direct,
            admin: admin.clone(),
        },
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{RoomId, Status};
    use alloc::string::ToString;
    use alloc::vec;

    const TAG: usize = 16;

    fn encoded_len(reply: &Reply) -> usize {
        let mut out = Vec::new();
        encode_reply(reply, &mut ListScratch::default(), &mut out).unwrap();
        out.len()
    }

    fn fit(reply: &Reply, limit: usize) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        encode_within(reply, limit, TAG, &mut ListScratch::default(), &mut out).then_some(out)
    }

    #[test]
    fn a_reply_that_fits_is_unchanged() {
        let reply = Reply::Ok { req: 3 };
        let mut want = Vec::new();
        encode_reply(&reply, &mut ListScratch::default(), &mut want).unwrap();
        assert_eq!(fit(&reply, want.len() + TAG), Some(want));
    }

    #[test]
    fn a_list_is_cut_to_the_longest_prefix_that_fits() {
        let users: Arc<[(Arc<str>, Status)]> = (0..500)
            .map(|i| {
                (
                    Arc::from(alloc::format!("user{i:04}").as_str()),
                    Status::Online,
                )
            })
            .collect();
        let reply = Reply::UserList { req: 9, users };
        assert!(encoded_len(&reply) + TAG > 4096);
        let out = fit(&reply, 4096).expect("a shorter list");
        assert!(out.len() + TAG <= 4096);
        // One more entry would not have fitted.
        let Some(n) = (0..500)
            .rev()
            .find(|&n| encoded_len(&truncated(&reply, n)) == out.len())
        else {
            panic!("not a prefix of the list");
        };
        assert!(encoded_len(&truncated(&reply, n + 1)) + TAG > 4096);
        assert!(n > 100, "cut too short: {n}");
    }

    #[test]
    fn a_room_message_becomes_a_gap_past_it_and_an_answer_an_error() {
        let room = RoomId::parse(b"ABCDEF").unwrap();
        let big: Arc<[u8]> = Arc::from(vec![7u8; 8000]);
        let msg = Reply::RoomMessage {
            room,
            seq: 41,
            from: "alice".into(),
            timestamp: 1,
            body: big.clone(),
        };
        let gap = Reply::RoomGap {
            room,
            first_available: 42,
        };
        let mut want = Vec::new();
        encode_reply(&gap, &mut ListScratch::default(), &mut want).unwrap();
        assert_eq!(fit(&msg, 4096), Some(want));
        let bundle = Reply::PrekeyBundle {
            req: 5,
            name: "bob".into(),
            bundle: Some(big.clone()),
        };
        let code = ErrorCode::FrameTooLarge;
        let refused = Reply::Error {
            req: 5,
            code,
            text: code.description(),
        };
        let mut want = Vec::new();
        encode_reply(&refused, &mut ListScratch::default(), &mut want).unwrap();
        assert_eq!(fit(&bundle, 4096), Some(want));
        let history = Reply::HistoryMessage {
            req: 6,
            room,
            seq: 1,
            from: "alice".to_string().into(),
            timestamp: 1,
            body: big,
        };
        assert_eq!(fit(&history, 4096), None);
    }
}
