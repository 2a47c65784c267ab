//! Frames and alerts: partial input, size and type checks, and error texts.

extern crate alloc;

use alloc::string::String;

use crate::wire::*;

#[test]
fn frames_wait_for_their_bytes() {
    let mut buf = [0u8; 64];
    let n = encode_frame(FrameType::Record, b"0123456789abcdef!", &mut buf).expect("fits");
    assert_eq!(n, HEADER_LEN + 17);
    assert_eq!(buf[..HEADER_LEN], encode_header(FrameType::Record, 17));
    for i in 0..n {
        assert_eq!(
            decode_frame(&buf[..i], 1024),
            Result::Ok(None),
            "prefix {i}"
        );
        let want = if i < HEADER_LEN { HEADER_LEN } else { n };
        assert_eq!(needed_len(&buf[..i], 1024), Result::Ok(want));
    }
    let (frame, used) = decode_frame(&buf[..n], 1024)
        .expect("ok")
        .expect("complete");
    assert_eq!(used, n);
    assert_eq!(frame.typ, FrameType::Record);
    assert_eq!(frame.payload, b"0123456789abcdef!");
    assert_eq!(frame.encoded_len(), n);
    // An empty payload is a complete frame of 5 bytes.
    assert_eq!(
        decode_frame(&[0, 0, 0, 0, FRAME_SYN], 0),
        Result::Ok(Some((
            Frame {
                typ: FrameType::Syn,
                payload: &[]
            },
            5
        )))
    );
}

#[test]
fn an_oversize_frame_is_refused_from_its_header() {
    let header = [0xFF, 0xFF, 0xFF, 0xFF, FRAME_RECORD];
    let err = FrameError::TooLarge {
        len: u32::MAX,
        max: 65_536,
    };
    assert_eq!(decode_frame(&header, 65_536), Err(err));
    assert_eq!(needed_len(&header, 65_536), Err(err));
    assert_eq!(err.code(), ErrorCode::FrameTooLarge);
    // Exactly the maximum is allowed; one more is not.
    assert_eq!(
        decode_frame(&[0, 0, 1, 0, FRAME_RECORD], 256),
        Result::Ok(None)
    );
    assert_eq!(
        decode_frame(&[0, 0, 1, 1, FRAME_RECORD], 256),
        Err(FrameError::TooLarge { len: 257, max: 256 })
    );
    // Four bytes of a huge length are not judged yet.
    assert_eq!(decode_frame(&header[..4], 16), Result::Ok(None));
}

#[test]
fn an_unknown_frame_type_is_refused_from_its_header() {
    for t in 0..=255u8 {
        let header = [0, 0, 0, 1, t];
        let r = decode_frame(&header, 16);
        match FrameType::from_u8(t) {
            Some(ft) => {
                assert_eq!(ft.as_u8(), t);
                assert_eq!(r, Result::Ok(None));
            }
            None => assert_eq!(r, Err(FrameError::UnknownType(t))),
        }
    }
    assert_eq!(FrameError::UnknownType(9).code(), ErrorCode::InvalidFormat);
}

#[test]
fn back_to_back_frames_report_what_they_consumed() {
    let mut stream = [0u8; 64];
    let a = encode_frame(FrameType::Syn, b"abc", &mut stream).expect("fits");
    let b = encode_frame(FrameType::Ack, b"defgh", &mut stream[a..]).expect("fits");
    let stream = &stream[..a + b + 2]; // plus 2 bytes of a third header
    let (f1, n1) = decode_frame(stream, 16).expect("ok").expect("complete");
    assert_eq!((f1.typ, f1.payload, n1), (FrameType::Syn, &b"abc"[..], 8));
    let (f2, n2) = decode_frame(&stream[n1..], 16)
        .expect("ok")
        .expect("complete");
    assert_eq!(
        (f2.typ, f2.payload, n2),
        (FrameType::Ack, &b"defgh"[..], 10)
    );
    assert_eq!(decode_frame(&stream[n1 + n2..], 16), Result::Ok(None));
}

#[test]
fn frame_encoding_refuses_small_buffers_untouched() {
    let mut buf = [0xEEu8; 7];
    assert_eq!(
        encode_frame(FrameType::Record, b"abc", &mut buf),
        Err(BufferTooSmall { needed: 8 })
    );
    assert_eq!(buf, [0xEE; 7]);
    let f = Frame {
        typ: FrameType::SynAck,
        payload: b"abc",
    };
    let mut buf = [0u8; 8];
    assert_eq!(f.encode(&mut buf), Result::Ok(8));
    assert_eq!(buf, [0, 0, 0, 3, FRAME_SYN_ACK, b'a', b'b', b'c']);
}

#[test]
fn alerts_round_trip_and_are_checked() {
    let a = Alert {
        code: ErrorCode::UnsupportedVersion,
        text: "v2 only",
    };
    let mut buf = [0xEEu8; 32];
    assert_eq!(
        a.encode(&mut buf[..4]),
        Err(WireError::BufferTooSmall { needed: 10 })
    );
    assert_eq!(buf, [0xEE; 32]);
    let n = a.encode(&mut buf).expect("fits");
    assert_eq!(n, a.encoded_len());
    assert_eq!(Alert::decode(&buf[..n]), Result::Ok(a));
    for i in 0..n {
        assert!(Alert::decode(&buf[..i]).is_err());
    }
    assert_eq!(Alert::decode(&buf[..n + 1]), Err(WireError::TrailingBytes));
    let mut frame = [0u8; 32];
    let m = a.encode_frame(&mut frame).expect("fits");
    assert_eq!(
        frame[..HEADER_LEN],
        encode_header(FrameType::Alert, n as u32)
    );
    assert_eq!(frame[HEADER_LEN..m], buf[..n]);
    assert_eq!(
        Alert::decode(&[0x00, 0, 0]),
        Err(WireError::BadValue),
        "code 0 is not a code"
    );
    let bad = Alert {
        code: ErrorCode::ServerError,
        text: "a\rb",
    };
    assert_eq!(bad.encode_frame(&mut frame), Err(WireError::BadText));
}

#[test]
fn errors_display() {
    use core::fmt::Write;
    let mut s = String::new();
    write!(
        s,
        "{} / {} / {}",
        WireError::UnknownType(0x42),
        FrameError::TooLarge { len: 9, max: 8 },
        BufferTooSmall { needed: 3 }
    )
    .expect("string");
    assert_eq!(
        s,
        "unknown message type 0x42 / frame payload of 9 bytes exceeds the maximum of 8 / \
         output buffer too small: 3 bytes needed"
    );
    let _: &dyn core::error::Error = &WireError::Truncated;
    let _: &dyn core::error::Error = &FrameError::UnknownType(0);
}
