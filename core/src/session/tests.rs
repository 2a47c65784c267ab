//! Tests of the transport session: records, rotation, limits and poisoning.

use super::*;
use crate::crypto::RUST_CRYPTO;

fn pair(suite: Suite, config: SessionConfig) -> (Session, Session) {
    let a = Session::new(&RUST_CRYPTO, suite, &[1; 32], &[2; 32], [9; 32], config);
    let b = Session::new(&RUST_CRYPTO, suite, &[2; 32], &[1; 32], [9; 32], config);
    (a, b)
}

/// Opens every record in `buf`, returning the non-KeyUpdate plaintexts' first bytes.
fn open_all(s: &mut Session, now: Instant, buf: &mut [u8], seen: &mut [u8; 64]) -> usize {
    let mut off = 0;
    let mut n = 0;
    while off < buf.len() {
        let header: [u8; 5] = buf[off..off + 5].try_into().unwrap();
        let len = u32::from_be_bytes(header[..4].try_into().unwrap()) as usize;
        let pt = s
            .open_record(now, &header, &mut buf[off + 5..off + 5 + len])
            .unwrap();
        if pt[0] != MSG_KEY_UPDATE {
            seen[n] = pt[1];
            n += 1;
        }
        off += 5 + len;
    }
    n
}

#[test]
fn records_round_trip_both_suites() {
    for suite in Suite::ALL {
        let (mut a, mut b) = pair(suite, SessionConfig::default());
        let mut buf = [0u8; 128];
        for i in 0..10u8 {
            let n = a
                .seal_record(Instant(0), &[0x10, i, 2, 3], &mut buf)
                .unwrap();
            assert_eq!(n, 4 + RECORD_OVERHEAD);
            assert_eq!(buf[4], FRAME_RECORD);
            let header: [u8; 5] = buf[..5].try_into().unwrap();
            let pt = b.open_record(Instant(0), &header, &mut buf[5..n]).unwrap();
            assert_eq!(pt, &[0x10, i, 2, 3]);
            let n = b.seal_record(Instant(0), &[0x11, i], &mut buf).unwrap();
            let header: [u8; 5] = buf[..5].try_into().unwrap();
            assert_eq!(
                a.open_record(Instant(0), &header, &mut buf[5..n]).unwrap(),
                &[0x11, i]
            );
        }
        assert_eq!(a.stats().records_sent, 10);
        assert_eq!(a.stats().records_received, 10);
        assert_eq!(a.stats().key_updates_sent, 0);
    }
}

#[test]
fn tampered_record_fails_keeps_counter_and_poisons() {
    let (mut a, mut b) = pair(Suite::AesGcm, SessionConfig::default());
    let mut buf = [0u8; 64];
    let n = a.seal_record(Instant(0), b"\x10hello", &mut buf).unwrap();
    for pos in [0usize, 4, 5, 8, n - 1] {
        let (_, mut b2) = pair(Suite::AesGcm, SessionConfig::default());
        let mut t = buf;
        t[pos] ^= 0x40;
        let header: [u8; 5] = t[..5].try_into().unwrap();
        assert!(
            b2.open_record(Instant(0), &header, &mut t[5..n]).is_err(),
            "pos {pos}"
        );
        assert_eq!(b2.recv.counter, 0);
        assert!(b2.is_poisoned());
    }
    let mut t = buf;
    t[7] ^= 1;
    let header: [u8; 5] = t[..5].try_into().unwrap();
    assert_eq!(
        b.open_record(Instant(0), &header, &mut t[5..n]),
        Err(SessionError::Decrypt)
    );
    assert_eq!(b.recv.counter, 0);
    assert_eq!(b.stats().records_received, 0);
    // Poisoned: even the genuine record is refused now, and so is sealing.
    let header: [u8; 5] = buf[..5].try_into().unwrap();
    assert_eq!(
        b.open_record(Instant(0), &header, &mut buf[5..n]),
        Err(SessionError::Poisoned)
    );
    assert_eq!(
        b.seal_record(Instant(0), b"\x10x", &mut [0u8; 64]),
        Err(SessionError::Poisoned)
    );
}

#[test]
fn replayed_record_fails() {
    let (mut a, mut b) = pair(Suite::ChaChaPoly, SessionConfig::default());
    let mut buf = [0u8; 64];
    let n = a.seal_record(Instant(0), b"\x10hello", &mut buf).unwrap();
    let copy = buf;
    let header: [u8; 5] = buf[..5].try_into().unwrap();
    b.open_record(Instant(0), &header, &mut buf[5..n]).unwrap();
    let mut buf = copy;
    assert_eq!(
        b.open_record(Instant(0), &header, &mut buf[5..n]),
        Err(SessionError::Decrypt)
    );
}

#[test]
fn record_under_old_key_after_update_fails() {
    let (mut a, mut b) = pair(Suite::AesGcm, SessionConfig::default());
    let (mut stale, _) = pair(Suite::AesGcm, SessionConfig::default());
    let mut buf = [0u8; 128];
    a.request_key_update();
    let n = a.seal_record(Instant(0), b"\x10new", &mut buf).unwrap();
    assert_eq!(n, SEAL_MAX_OVERHEAD + 4);
    let mut seen = [0u8; 64];
    assert_eq!(open_all(&mut b, Instant(0), &mut buf[..n], &mut seen), 1);
    assert_eq!(b.stats().key_updates_received, 1);
    // The peer asked (request_update = 1): b's next record starts with its own update.
    let n = b.seal_record(Instant(0), b"\x10back", &mut buf).unwrap();
    assert_eq!(n, SEAL_MAX_OVERHEAD + 5);
    assert_eq!(open_all(&mut a, Instant(0), &mut buf[..n], &mut seen), 1);
    assert_eq!(a.stats().key_updates_received, 1);
    // A record sealed under the initial key (counter 1) no longer opens.
    let _ = stale.seal_record(Instant(0), b"\x10old", &mut buf).unwrap();
    let n = stale.seal_record(Instant(0), b"\x10old", &mut buf).unwrap();
    let header: [u8; 5] = buf[..5].try_into().unwrap();
    assert_eq!(
        b.open_record(Instant(0), &header, &mut buf[5..n]),
        Err(SessionError::Decrypt)
    );
}

#[test]
fn rotation_every_three_records_loses_nothing() {
    let cfg = SessionConfig {
        rotate_after_records: 3,
        ..SessionConfig::default()
    };
    let (mut a, mut b) = pair(Suite::ChaChaPoly, cfg);
    let mut buf = [0u8; 128];
    let mut seen = [0u8; 64];
    for i in 0..50u8 {
        if i == 20 {
            a.request_key_update();
        }
        let n = a.seal_record(Instant(0), &[0x10, i], &mut buf).unwrap();
        assert_eq!(open_all(&mut b, Instant(0), &mut buf[..n], &mut seen), 1);
        assert_eq!(seen[0], i);
        let n = b.seal_record(Instant(0), &[0x11, i], &mut buf).unwrap();
        assert_eq!(open_all(&mut a, Instant(0), &mut buf[..n], &mut seen), 1);
        assert_eq!(seen[0], i);
    }
    let (sa, sb) = (a.stats(), b.stats());
    assert!(sa.key_updates_sent >= 16, "{sa:?}");
    assert_eq!(sa.key_updates_sent, sb.key_updates_received);
    assert_eq!(sb.key_updates_sent, sa.key_updates_received);
    assert_eq!(sa.records_sent, sb.records_received);
    assert_eq!(sa.records_sent, 50 + sa.key_updates_sent);
}

#[test]
fn time_and_byte_thresholds_rotate() {
    let cfg = SessionConfig {
        rotate_after_bytes: 10,
        rotate_after: Duration::from_secs(60),
        ..SessionConfig::default()
    };
    let (mut a, _) = pair(Suite::AesGcm, cfg);
    let mut buf = [0u8; 128];
    assert_eq!(
        a.seal_record(Instant(0), b"\x10abc", &mut buf).unwrap(),
        4 + RECORD_OVERHEAD
    );
    assert!(!a.key_update_due(Instant(59_000_000)));
    assert!(a.key_update_due(Instant(60_000_000)));
    let n = a
        .seal_record(Instant(60_000_000), b"\x10abcdefghijk", &mut buf)
        .unwrap();
    assert_eq!(n, 12 + SEAL_MAX_OVERHEAD);
    assert!(
        a.key_update_due(Instant(60_000_001)),
        "12 bytes >= 10 under the new key"
    );
    assert_eq!(a.stats().key_updates_sent, 1);
}

#[test]
fn buffer_too_small_changes_nothing() {
    let (mut a, mut b) = pair(Suite::AesGcm, SessionConfig::default());
    a.request_key_update();
    let mut small = [0u8; 20];
    assert_eq!(
        a.seal_record(Instant(0), b"\x10hi", &mut small),
        Err(SessionError::BufferTooSmall {
            needed: SEAL_MAX_OVERHEAD + 3
        })
    );
    assert_eq!(a.send.counter, 0);
    assert!(a.key_update_due(Instant(0)));
    let mut buf = [0u8; 128];
    let n = a.seal_record(Instant(0), b"\x10hi", &mut buf).unwrap();
    let mut seen = [0u8; 64];
    assert_eq!(open_all(&mut b, Instant(0), &mut buf[..n], &mut seen), 1);
    assert_eq!(
        a.seal_record(Instant(0), &[MSG_KEY_UPDATE, 0], &mut buf),
        Err(SessionError::ReservedType)
    );
}

#[test]
fn malformed_key_update_and_bad_header_poison() {
    let (mut a, mut b) = pair(Suite::AesGcm, SessionConfig::default());
    let mut buf = [0u8; 64];
    // Forge a KeyUpdate with a bad flag by sealing it below the public API.
    a.seal_one(&[MSG_KEY_UPDATE, 7], &mut buf[..RECORD_OVERHEAD + 2])
        .unwrap();
    let header: [u8; 5] = buf[..5].try_into().unwrap();
    assert_eq!(
        b.open_record(Instant(0), &header, &mut buf[5..RECORD_OVERHEAD + 2]),
        Err(SessionError::BadKeyUpdate)
    );
    assert!(b.is_poisoned());
    let (_, mut c) = pair(Suite::AesGcm, SessionConfig::default());
    assert_eq!(
        c.open_record(Instant(0), &[0, 0, 0, 3, 0x17], &mut [0u8; 3]),
        Err(SessionError::Truncated)
    );
    assert!(c.is_poisoned());
    let (_, mut c) = pair(Suite::AesGcm, SessionConfig::default());
    assert_eq!(
        c.open_record(Instant(0), &[0, 0, 0, 20, 0x17], &mut [0u8; 21]),
        Err(SessionError::BadHeader)
    );
    let (_, mut c) = pair(Suite::AesGcm, SessionConfig::default());
    assert_eq!(
        c.open_record(Instant(0), &[0, 0, 0, 20, 0x03], &mut [0u8; 20]),
        Err(SessionError::BadHeader)
    );
}

#[test]
fn hard_limit_refuses_sealing() {
    let (mut a, mut b) = pair(Suite::AesGcm, SessionConfig::default());
    a.set_hard_limit_for_test(5);
    b.set_hard_limit_for_test(5);
    let mut buf = [0u8; 64];
    let mut seen = [0u8; 64];
    for _ in 0..5 {
        let n = a.seal_record(Instant(0), b"\x10x", &mut buf).unwrap();
        open_all(&mut b, Instant(0), &mut buf[..n], &mut seen);
    }
    assert_eq!(
        a.seal_record(Instant(0), b"\x10x", &mut buf),
        Err(SessionError::KeyExhausted)
    );
    assert_eq!(
        a.seal_record(Instant(0), b"\x10x", &mut buf),
        Err(SessionError::KeyExhausted)
    );
    assert_eq!(a.send.counter, 5);
}

#[test]
fn thresholds_are_clamped_below_the_hard_limit() {
    let cfg = SessionConfig {
        rotate_after_records: u64::MAX,
        rotate_after_bytes: 0,
        ..SessionConfig::default()
    };
    let (a, _) = pair(Suite::AesGcm, cfg);
    assert_eq!(a.config().rotate_after_records, AES_GCM_RECORD_LIMIT - 1);
    assert_eq!(a.config().rotate_after_bytes, 1);
    let (c, _) = pair(Suite::ChaChaPoly, cfg);
    assert_eq!(c.config().rotate_after_records, CHACHA_RECORD_LIMIT - 1);
}

/// A session whose provider keys its cipher once (ring) and one that keys RustCrypto's
/// talk across many key updates in both suites: each update rebuilds the keyed cipher
/// from the new key, or the peer could not open the next record.
#[cfg(feature = "ring")]
#[test]
fn keyed_ciphers_are_rebuilt_on_every_key_update_across_providers() {
    use crate::crypto::RING;
    let cfg = SessionConfig {
        rotate_after_records: 2,
        ..SessionConfig::default()
    };
    for suite in Suite::ALL {
        let mut a = Session::new(&RING, suite, &[1; 32], &[2; 32], [9; 32], cfg);
        let mut b = Session::new(&RUST_CRYPTO, suite, &[2; 32], &[1; 32], [9; 32], cfg);
        let mut buf = [0u8; 128];
        let mut seen = [0u8; 64];
        for i in 0..20u8 {
            let n = a.seal_record(Instant(0), &[0x10, i], &mut buf).unwrap();
            assert_eq!(open_all(&mut b, Instant(0), &mut buf[..n], &mut seen), 1);
            assert_eq!(seen[0], i);
            let n = b.seal_record(Instant(0), &[0x11, i], &mut buf).unwrap();
            assert_eq!(open_all(&mut a, Instant(0), &mut buf[..n], &mut seen), 1);
            assert_eq!(seen[0], i);
        }
        assert!(a.stats().key_updates_sent >= 9, "{:?}", a.stats());
        assert!(b.stats().key_updates_sent >= 9, "{:?}", b.stats());
    }
}

/// An empty record (just the tag) opens: the truncation check is for fewer bytes than a
/// tag, not for exactly one. A fresh session is not poisoned.
#[test]
fn an_empty_record_is_exactly_a_tag_and_opens() {
    let (mut a, mut b) = pair(Suite::AesGcm, SessionConfig::default());
    assert!(!a.is_poisoned() && !b.is_poisoned());
    let mut buf = [0u8; 64];
    let n = a.seal_record(Instant(0), &[], &mut buf).unwrap();
    assert_eq!(n, RECORD_OVERHEAD);
    let header: [u8; 5] = buf[..5].try_into().unwrap();
    assert_eq!(
        b.open_record(Instant(0), &header, &mut buf[5..n]),
        Ok(&[][..])
    );
    assert!(!b.is_poisoned());
}
