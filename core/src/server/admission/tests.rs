use super::*;

const T: Instant = Instant(1_000_000);

fn small() -> AdmissionConfig {
    AdmissionConfig {
        max_connections: 10,
        max_per_addr: 4,
        max_unauthenticated: 6,
        max_unauthenticated_per_addr: 3,
        handshakes_per_sec: 1,
        handshake_burst: 100,
        registration_every: Duration::from_secs(60),
        registration_burst: 2,
        max_tracked_addrs: 100,
    }
}

fn a(n: u8) -> SourceAddr {
    SourceAddr::ipv4([10, 0, 0, n])
}

#[test]
fn idle_sockets_of_one_address_cannot_keep_others_out() {
    let mut adm = Admission::new(small());
    for i in 0..3 {
        assert_eq!(adm.accept(T, ConnId(i), a(1)), Ok(()));
    }
    // A fourth handshake from the same address is refused…
    assert_eq!(adm.accept(T, ConnId(3), a(1)), Err(ErrorCode::LimitReached));
    // …while another address still gets in.
    assert_eq!(adm.accept(T, ConnId(4), a(2)), Ok(()));
    // Logging in frees the unauthenticated share, up to the per-address cap.
    adm.authenticated(T, ConnId(0), false).unwrap();
    assert_eq!(adm.accept(T, ConnId(5), a(1)), Ok(()));
    adm.authenticated(T, ConnId(1), false).unwrap();
    assert_eq!(
        adm.accept(T, ConnId(6), a(1)),
        Err(ErrorCode::LimitReached),
        "4 connections per address"
    );
    adm.closed(T, ConnId(1));
    assert_eq!(adm.accept(T, ConnId(7), a(1)), Ok(()));
}

#[test]
fn the_unauthenticated_share_is_bounded_server_wide_and_the_cap_holds() {
    let mut adm = Admission::new(small());
    for i in 0..6u64 {
        adm.accept(T, ConnId(i), a(i as u8)).unwrap();
    }
    assert_eq!(adm.accept(T, ConnId(6), a(9)), Err(ErrorCode::LimitReached));
    for i in 0..6u64 {
        adm.authenticated(T, ConnId(i), false).unwrap();
    }
    for i in 6..10u64 {
        adm.accept(T, ConnId(i), a(i as u8)).unwrap();
    }
    assert_eq!(adm.open(), 10);
    assert_eq!(
        adm.accept(T, ConnId(10), a(20)),
        Err(ErrorCode::LimitReached)
    );
}

#[test]
fn registrations_are_budgeted_per_address_across_reconnects() {
    let mut adm = Admission::new(small());
    for i in 0..2u64 {
        adm.accept(T, ConnId(i), a(1)).unwrap();
        assert_eq!(adm.authenticated(T, ConnId(i), true), Ok(()));
        adm.closed(T, ConnId(i));
    }
    adm.accept(T, ConnId(2), a(1)).unwrap();
    assert_eq!(
        adm.authenticated(T, ConnId(2), true),
        Err(ErrorCode::RateLimited)
    );
    // Logins are not registrations; another address has its own budget.
    adm.accept(T, ConnId(3), a(1)).unwrap();
    assert_eq!(adm.authenticated(T, ConnId(3), false), Ok(()));
    adm.accept(T, ConnId(4), a(2)).unwrap();
    assert_eq!(adm.authenticated(T, ConnId(4), true), Ok(()));
    // A minute later, one more.
    let later = Instant(T.micros() + 60_000_000);
    adm.accept(later, ConnId(5), a(1)).unwrap();
    assert_eq!(adm.authenticated(later, ConnId(5), true), Ok(()));
}

#[test]
fn handshakes_are_rate_limited_per_address() {
    let mut adm = Admission::new(AdmissionConfig {
        handshake_burst: 2,
        ..small()
    });
    for i in 0..2u64 {
        adm.accept(T, ConnId(i), a(1)).unwrap();
        adm.closed(T, ConnId(i));
    }
    assert_eq!(adm.accept(T, ConnId(2), a(1)), Err(ErrorCode::RateLimited));
    assert_eq!(adm.accept(T, ConnId(3), a(2)), Ok(()));
    let later = Instant(T.micros() + 1_000_000);
    assert_eq!(adm.accept(later, ConnId(4), a(1)), Ok(()));
}

#[test]
fn ipv6_counts_by_prefix_and_mapped_ipv4_as_ipv4() {
    let mut x = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
    let first = SourceAddr::ipv6(x);
    x[15] = 99;
    assert_eq!(SourceAddr::ipv6(x), first, "same /64");
    x[7] = 2;
    assert_ne!(SourceAddr::ipv6(x), first, "another /64");
    let mut mapped = [0u8; 16];
    mapped[10] = 0xff;
    mapped[11] = 0xff;
    mapped[12..].copy_from_slice(&[192, 0, 2, 7]);
    assert_eq!(SourceAddr::ipv6(mapped), SourceAddr::ipv4([192, 0, 2, 7]));
}

#[test]
fn the_address_table_is_bounded() {
    let mut adm = Admission::new(AdmissionConfig {
        max_tracked_addrs: 4,
        ..small()
    });
    for i in 0..10u64 {
        adm.accept(T, ConnId(i), a(i as u8)).unwrap();
        adm.closed(T, ConnId(i));
        assert!(adm.addrs.len() <= 4, "{} tracked", adm.addrs.len());
    }
    // Unknown connections are not limited, and closing them changes nothing.
    assert_eq!(adm.authenticated(T, ConnId(99), true), Ok(()));
    adm.closed(T, ConnId(99));
    assert_eq!(adm.open(), 0);
}

#[test]
fn unknown_sources_meet_only_the_server_wide_limits() {
    let mut adm = Admission::new(small());
    for i in 0..6u64 {
        adm.accept(T, ConnId(i), SourceAddr::UNKNOWN).unwrap();
    }
    assert_eq!(
        adm.accept(T, ConnId(6), SourceAddr::UNKNOWN),
        Err(ErrorCode::LimitReached),
        "the unauthenticated share"
    );
    for i in 0..6u64 {
        adm.authenticated(T, ConnId(i), true).unwrap();
    }
    adm.closed(T, ConnId(0));
    assert_eq!(adm.open(), 5);
    assert_eq!(adm.unauthenticated, 0);
    assert!(adm.addrs.is_empty());
}
