//! Byte soup: random and mutated input never panics, and whatever decodes is canonical.

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;

use super::samples::*;
use crate::wire::*;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> usize {
        (self.next() % n) as usize
    }
}

/// Whatever decodes must encode back to the very same bytes (the encoding is canonical).
fn check_canonical(buf: &[u8]) -> usize {
    let mut accepted = 0;
    if let Result::Ok(m) = ClientMsg::decode(buf) {
        let mut out = vec![0u8; m.encoded_len()];
        assert_eq!(m.encode(&mut out), Result::Ok(buf.len()), "{buf:02x?}");
        assert_eq!(out, buf);
        accepted += 1;
    }
    if let Result::Ok(m) = ServerMsg::decode(buf) {
        let mut out = vec![0u8; m.encoded_len()];
        assert_eq!(m.encode(&mut out), Result::Ok(buf.len()), "{buf:02x?}");
        assert_eq!(out, buf);
        if let ServerMsg::UserList { users, .. } = m {
            assert_eq!(users.iter().count(), users.len());
        }
        if let ServerMsg::RoomJoined { members, .. } = m {
            assert_eq!(members.iter().count(), members.len());
        }
        if let ServerMsg::RoomList { rooms, .. } = m {
            assert_eq!(rooms.iter().count(), rooms.len());
        }
        accepted += 1;
    }
    if let Result::Ok(a) = Alert::decode(buf) {
        let mut out = vec![0u8; a.encoded_len()];
        assert_eq!(a.encode(&mut out), Result::Ok(buf.len()));
        assert_eq!(out, buf);
    }
    let _ = decode_frame(buf, 64);
    let _ = decode_frame(buf, u32::MAX);
    accepted
}

#[test]
fn random_byte_soup_never_panics() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let types: Vec<u8> = (0x03..=0x09)
        .chain(0x10..=0x1B)
        .chain(0x20..=0x23)
        .chain(0x81..=0x97)
        .collect();
    let mut accepted = 0;
    // Enough rounds that every type byte, including the long v2 ones, is drawn often.
    for _ in 0..30_000 {
        let len = rng.below(48);
        let mut buf: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Mostly valid type bytes and small lengths, so parsing gets past the first field.
        if let Some(first) = buf.first_mut()
            && rng.below(4) != 0
        {
            *first = types[rng.below(types.len() as u64)];
        }
        for b in buf.iter_mut().skip(1) {
            if rng.below(3) == 0 {
                *b = rng.below(6) as u8;
            }
        }
        accepted += check_canonical(&buf);
    }
    assert!(accepted > 100, "soup too thin: only {accepted} accepted");
}

#[test]
fn mutated_samples_never_panic() {
    let mut rng = XorShift(0xD1B5_4A32_D192_ED03);
    let mut encodings = Vec::new();
    with_encodings(|buf, _| {
        if buf.len() < 600 {
            encodings.push(buf.to_vec());
        }
    });
    for round in 0..20_000 {
        let mut buf = encodings[round % encodings.len()].clone();
        for _ in 0..=rng.below(3) {
            match rng.below(4) {
                0 if !buf.is_empty() => {
                    let i = rng.below(buf.len() as u64);
                    buf[i] = rng.next() as u8;
                }
                1 if !buf.is_empty() => {
                    let i = rng.below(buf.len() as u64);
                    buf[i] ^= 1 << rng.below(8);
                }
                2 => buf.truncate(rng.below(buf.len() as u64 + 1)),
                _ => buf.push(rng.next() as u8),
            }
        }
        check_canonical(&buf);
        // As a frame stream too.
        let mut framed = encode_header(FrameType::Record, buf.len() as u32).to_vec();
        framed.extend_from_slice(&buf);
        let cut = rng.below(framed.len() as u64 + 1);
        let _ = decode_frame(&framed[..cut], 256);
    }
}
