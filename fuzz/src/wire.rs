//! Targets for the stateless parsers: frames, client and server messages, alerts.
//!
//! Each decodes raw bytes and, when they parse, checks that the value is canonical: it
//! re-encodes to exactly the input, its size is reported exactly, a too-small buffer is
//! refused without a byte written, and every proper prefix or extension is refused.

use cove_core::hub::Reply;
use cove_core::server::{ListScratch, encode_reply, reply_from, request_from};
use cove_core::wire::{
    Alert, BufferTooSmall, ClientMsg, FrameError, FrameType, HEADER_LEN, ServerMsg, WireError,
    decode_frame, encode_frame, needed_len,
};

/// The frame size limits the frame target picks from with its first byte.
const MAX_PAYLOADS: [u32; 8] = [0, 1, 16, 38, 255, 4096, 64 * 1024, u32::MAX];

const POISON: u8 = 0xA5;

/// Frame decoder: the first byte picks the size limit; the rest is a byte stream decoded
/// frame after frame, as a connection would.
pub fn frame_decoder(data: &[u8]) {
    let Some((&pick, mut buf)) = data.split_first() else {
        return;
    };
    let max = MAX_PAYLOADS[usize::from(pick) % MAX_PAYLOADS.len()];
    loop {
        let needed = needed_len(buf, max);
        match decode_frame(buf, max) {
            Ok(Some((frame, used))) => {
                assert_eq!(needed, Ok(used), "needed_len disagrees with decode_frame");
                assert_eq!(used, HEADER_LEN + frame.payload.len());
                assert!(used <= buf.len());
                assert!(frame.payload.len() as u64 <= u64::from(max));
                assert_eq!(frame.typ.as_u8(), buf[4]);
                assert_eq!(FrameType::from_u8(buf[4]), Some(frame.typ));
                assert_eq!(frame.encoded_len(), used);
                // Re-encoding gives the same bytes; a buffer one byte short is untouched.
                let mut out = vec![POISON; used];
                assert_eq!(encode_frame(frame.typ, frame.payload, &mut out), Ok(used));
                assert_eq!(&out[..], &buf[..used]);
                let mut short = vec![POISON; used - 1];
                assert_eq!(
                    frame.encode(&mut short),
                    Err(BufferTooSmall { needed: used })
                );
                assert!(short.iter().all(|&b| b == POISON));
                // Every prefix of a frame is incomplete, never an error or another frame.
                for cut in [0, 1, HEADER_LEN - 1, HEADER_LEN, used - 1] {
                    if cut < used {
                        assert_eq!(decode_frame(&buf[..cut], max), Ok(None));
                    }
                }
                buf = &buf[used..];
            }
            Ok(None) => {
                let needed = needed.expect("incomplete input cannot be an error");
                assert!(buf.len() < needed, "a whole frame was not returned");
                if buf.len() >= HEADER_LEN {
                    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
                    assert!(len <= max);
                    assert!(FrameType::from_u8(buf[4]).is_some());
                }
                return;
            }
            Err(e) => {
                assert_eq!(needed, Err(e));
                assert!(
                    buf.len() >= HEADER_LEN,
                    "refused before the header was complete"
                );
                let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
                match e {
                    FrameError::TooLarge { len: l, max: m } => {
                        assert_eq!((l, m), (len, max));
                        assert!(len > max);
                    }
                    FrameError::UnknownType(t) => {
                        assert_eq!(t, buf[4]);
                        assert!(len <= max);
                        assert!(FrameType::from_u8(t).is_none());
                    }
                    _ => panic!("unexpected frame error {e:?}"),
                }
                // The header alone decides: the same header with no payload errs the same.
                assert_eq!(decode_frame(&buf[..HEADER_LEN], max), Err(e));
                return;
            }
        }
    }
}

/// Checks the encoder contract shared by every message type: exact length, exact bytes,
/// and a refused short buffer left untouched.
fn check_encoding(
    data: &[u8],
    encoded_len: usize,
    encode: impl Fn(&mut [u8]) -> Result<usize, WireError>,
) {
    assert_eq!(
        encoded_len,
        data.len(),
        "encoded_len is not the parsed length"
    );
    let mut out = vec![POISON; data.len()];
    assert_eq!(encode(&mut out), Ok(data.len()));
    assert_eq!(
        out, data,
        "a parsed message does not re-encode to its bytes"
    );
    if !data.is_empty() {
        let mut short = vec![POISON; data.len() - 1];
        assert_eq!(
            encode(&mut short),
            Err(WireError::BufferTooSmall { needed: data.len() })
        );
        assert!(short.iter().all(|&b| b == POISON), "a refused encode wrote");
    }
}

/// Messages must fill their record exactly: any proper prefix and any extension fails.
fn check_boundaries<T>(data: &[u8], decode: impl Fn(&[u8]) -> Result<T, WireError>) {
    let mut longer = data.to_vec();
    longer.push(0);
    assert_eq!(decode(&longer).err(), Some(WireError::TrailingBytes));
    for cut in [0, data.len() / 2, data.len().saturating_sub(1)] {
        if cut < data.len() {
            assert!(decode(&data[..cut]).is_err(), "a prefix parsed");
        }
    }
}

/// `ClientMsg::decode` on raw bytes.
pub fn client_msg_decoder(data: &[u8]) {
    let Ok(msg) = ClientMsg::decode(data) else {
        return;
    };
    assert_eq!(msg.msg_type(), data[0]);
    check_encoding(data, msg.encoded_len(), |out| msg.encode(out));
    check_boundaries(data, |b| ClientMsg::decode(b).map(|_| ()));
    // Everything but the connection's own control messages becomes a hub request.
    let control = matches!(
        msg,
        ClientMsg::Ping { .. }
            | ClientMsg::Pong { .. }
            | ClientMsg::KeyUpdate { .. }
            | ClientMsg::Close { .. }
    );
    assert_eq!(request_from(&msg).is_none(), control);
}

/// `ServerMsg::decode` on raw bytes.
pub fn server_msg_decoder(data: &[u8]) {
    let Ok(msg) = ServerMsg::decode(data) else {
        return;
    };
    assert_eq!(msg.msg_type(), data[0]);
    check_encoding(data, msg.encoded_len(), |out| msg.encode(out));
    check_boundaries(data, |b| ServerMsg::decode(b).map(|_| ()));
    // Lists hold exactly as many valid entries as they announce.
    match msg {
        ServerMsg::UserList { users, .. } => assert_eq!(users.iter().count(), users.len()),
        ServerMsg::RoomJoined { members, .. } => {
            assert_eq!(members.iter().count(), members.len())
        }
        ServerMsg::RoomList { rooms, .. } => assert_eq!(rooms.iter().count(), rooms.len()),
        _ => {}
    }
    // The owned form the client adapters use re-encodes to the same message (error and
    // close texts are replaced by the code's description).
    let Some(reply) = reply_from(&msg) else {
        assert!(matches!(
            msg,
            ServerMsg::Ping { .. } | ServerMsg::Pong { .. } | ServerMsg::KeyUpdate { .. }
        ));
        return;
    };
    let mut out = Vec::new();
    encode_reply(&reply, &mut ListScratch::default(), &mut out)
        .expect("a parsed message's owned form encodes");
    match reply {
        Reply::Error { .. } | Reply::Close { .. } => {
            let again = ServerMsg::decode(&out).expect("re-encoded reply parses");
            assert_eq!(reply_from(&again), Some(reply));
        }
        _ => assert_eq!(out, data, "owned form changed the message"),
    }
}

/// `Alert::decode` on raw bytes, and the alert frame built from it.
pub fn alert_decoder(data: &[u8]) {
    let Ok(alert) = Alert::decode(data) else {
        return;
    };
    check_encoding(data, alert.encoded_len(), |out| alert.encode(out));
    check_boundaries(data, |b| Alert::decode(b).map(|_| ()));
    let mut frame = vec![0u8; HEADER_LEN + data.len()];
    assert_eq!(alert.encode_frame(&mut frame), Ok(frame.len()));
    let (f, used) = decode_frame(&frame, u32::MAX)
        .expect("alert frame header is valid")
        .expect("alert frame is whole");
    assert_eq!(
        (f.typ, f.payload, used),
        (FrameType::Alert, data, frame.len())
    );
}
