//! A room message is encoded once for all of its recipients.
//!
//! The hub fans one room message out as one [`Reply::RoomMessage`] per member, each
//! holding the same body. Encoding it per recipient (validating the room ID and the
//! sender's name, then copying the body into the connection's plaintext buffer) was a
//! tenth of a busy server's time. The driver instead encodes it once into a shared buffer
//! ([`Outgoing::encoded`]) and each connection seals those bytes straight into its
//! transmit queue.

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::convert::{ListScratch, encode_reply};
use crate::hub::Reply;
use crate::wire::RoomId;

/// A reply released for one connection
/// ([`Driver::poll_outgoing`](super::Driver::poll_outgoing)), with the plaintext it
/// encodes to when that was made once for every recipient of a room message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// The reply.
    pub reply: Reply,
    /// `reply` encoded as an inner message, shared by its recipients; `None` for replies
    /// that go to one connection only (each is encoded where it is sealed).
    pub encoded: Option<Arc<[u8]>>,
}

impl Outgoing {
    /// A reply with no shared encoding.
    pub fn single(reply: Reply) -> Outgoing {
        Outgoing {
            reply,
            encoded: None,
        }
    }

    /// An estimate of the bytes this takes on the wire, for bounding queues.
    pub fn encoded_len_hint(&self) -> usize {
        match &self.encoded {
            Some(e) => e.len(),
            None => self.reply.encoded_len_hint(),
        }
    }
}

/// Which room message the last encoding is of: the room and sequence number say which,
/// the shared body and sender (compared by address, and kept alive here so no other
/// message can reuse the address) rule out a deleted and re-created room's messages.
#[derive(Debug)]
struct Key {
    room: RoomId,
    seq: u64,
    from: Arc<str>,
    body: Arc<[u8]>,
    timestamp: u64,
}

impl Key {
    fn of(reply: &Reply) -> Option<Key> {
        match reply {
            Reply::RoomMessage {
                room,
                seq,
                from,
                timestamp,
                body,
            } => Some(Key {
                room: *room,
                seq: *seq,
                from: from.clone(),
                body: body.clone(),
                timestamp: *timestamp,
            }),
            _ => None,
        }
    }

    /// Whether `reply` is the message this key is of. Compares without cloning: a clone
    /// of the shared body would touch a reference count every recipient's thread touches.
    fn is_of(&self, reply: &Reply) -> bool {
        matches!(
            reply,
            Reply::RoomMessage { room, seq, from, timestamp, body }
                if self.room == *room
                    && self.seq == *seq
                    && self.timestamp == *timestamp
                    && Arc::ptr_eq(&self.from, from)
                    && Arc::ptr_eq(&self.body, body)
        )
    }
}

/// The driver's memory of the last room message it encoded (a fan-out releases one
/// message's deliveries one after another, so one entry serves them all).
#[derive(Debug, Default)]
pub(super) struct RelayEncoder {
    last: Option<(Key, Arc<[u8]>)>,
    scratch: ListScratch,
    buf: Vec<u8>,
    /// Encodings made (each served one or more recipients).
    pub(super) encodings: u64,
}

impl RelayEncoder {
    /// `reply` with its shared encoding when it is a room message.
    pub(super) fn outgoing(&mut self, reply: Reply) -> Outgoing {
        if let Some((last, encoded)) = &self.last
            && last.is_of(&reply)
        {
            let encoded = Some(encoded.clone());
            return Outgoing { reply, encoded };
        }
        let Some(key) = Key::of(&reply) else {
            return Outgoing::single(reply);
        };
        if encode_reply(&reply, &mut self.scratch, &mut self.buf).is_err() {
            // The connection encodes it again and refuses it loudly there.
            self.last = None;
            return Outgoing::single(reply);
        }
        let encoded: Arc<[u8]> = Arc::from(&self.buf[..]);
        self.encodings += 1;
        self.last = Some((key, encoded.clone()));
        Outgoing {
            reply,
            encoded: Some(encoded),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(room: u8, seq: u64, from: &Arc<str>, body: &Arc<[u8]>) -> Reply {
        Reply::RoomMessage {
            room: RoomId([b'A' + room; crate::wire::ROOM_ID_LEN]),
            seq,
            from: from.clone(),
            timestamp: 77,
            body: body.clone(),
        }
    }

    fn encoded(reply: &Reply) -> Vec<u8> {
        let mut out = Vec::new();
        encode_reply(reply, &mut ListScratch::default(), &mut out).unwrap();
        out
    }

    /// One encoding serves every delivery of a message and equals the per-connection
    /// encoding byte for byte; any other message, or the same room and sequence number
    /// with another body (a re-created room), gets its own.
    #[test]
    fn a_fan_out_is_encoded_once_and_exactly_as_each_connection_would() {
        let mut relay = RelayEncoder::default();
        let (alice, body) = (Arc::<str>::from("alice"), Arc::<[u8]>::from(&b"hi all"[..]));
        let first = message(1, 5, &alice, &body);
        let outs: Vec<Outgoing> = (0..3).map(|_| relay.outgoing(first.clone())).collect();
        assert_eq!(relay.encodings, 1);
        for o in &outs {
            assert_eq!(o.reply, first);
            assert_eq!(o.encoded.as_deref(), Some(&encoded(&first)[..]));
            assert!(Arc::ptr_eq(
                o.encoded.as_ref().unwrap(),
                outs[0].encoded.as_ref().unwrap()
            ));
        }
        let other_body = Arc::<[u8]>::from(&b"hi all"[..]);
        for next in [
            message(1, 6, &alice, &body),
            message(2, 6, &alice, &body),
            message(2, 6, &alice, &other_body),
            message(2, 6, &Arc::from("alice"), &other_body),
        ] {
            let before = relay.encodings;
            let o = relay.outgoing(next.clone());
            assert_eq!(relay.encodings, before + 1, "{next:?}");
            assert_eq!(o.encoded.as_deref(), Some(&encoded(&next)[..]));
        }
        let mut later = message(2, 6, &alice, &other_body);
        if let Reply::RoomMessage { timestamp, .. } = &mut later {
            *timestamp += 1;
        }
        let before = relay.encodings;
        let o = relay.outgoing(later.clone());
        assert_eq!(relay.encodings, before + 1);
        assert_eq!(o.encoded.as_deref(), Some(&encoded(&later)[..]));
    }

    #[test]
    fn other_replies_are_encoded_by_their_connection() {
        let mut relay = RelayEncoder::default();
        let ok = Reply::Ok { req: 3 };
        let o = relay.outgoing(ok.clone());
        assert_eq!(o, Outgoing::single(ok.clone()));
        assert_eq!(o.encoded_len_hint(), ok.encoded_len_hint());
        assert_eq!(relay.encodings, 0);
    }
}
