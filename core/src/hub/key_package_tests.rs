//! The hub's KeyPackage directory: only a user's own packages are taken, each is handed
//! out once and then the last-resort one, stock is bounded per user and in bytes, and the
//! owner is warned when it runs low — each across a restart.

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use super::group_tests::{G, application, codes, oks};
use super::test_server::{Server, mine};
use super::*;

/// A KeyPackage with `key` as its leaf's signature key and `name` as its credential.
fn key_package(key: [u8; 32], name: &str, tag: u8) -> Arc<[u8]> {
    let mut b = vec![0, 1, 0, 5, 0, 1, 0, 1, 1, tag, 1, 0xBB, 32];
    b.extend_from_slice(&key);
    b.extend_from_slice(&[0, 1, name.len() as u8]);
    b.extend_from_slice(name.as_bytes());
    b.into()
}

/// The key `Server::connect` gives `name`.
fn key_of(name: &str) -> [u8; 32] {
    [name.as_bytes()[0]; 32]
}

fn upload(
    s: &mut Server,
    c: ConnId,
    last_resort: bool,
    kps: Vec<Arc<[u8]>>,
) -> Vec<(ConnId, Reply)> {
    s.request(
        c,
        Request::UploadKeyPackages {
            req: 7,
            last_resort,
            packages: kps,
        },
    )
}

fn fetch(s: &mut Server, c: ConnId, who: &str) -> Result<Arc<[u8]>, Vec<ErrorCode>> {
    let out = s.request(
        c,
        Request::FetchKeyPackage {
            req: 8,
            name: who.into(),
        },
    );
    mine(&out, c)
        .into_iter()
        .find_map(|r| match r {
            Reply::KeyPackage { package, .. } => Some(package),
            _ => None,
        })
        .ok_or_else(|| codes(&out))
}

#[test]
fn key_packages_must_be_the_uploaders_own() {
    let mut s = Server::new(HubConfig::default());
    let (bob, _) = s.connect("bob", AuthMode::Register);
    let cases = [
        (
            vec![key_package(key_of("x"), "bob", 1)],
            ErrorCode::KeyPackageRefused,
        ),
        (
            vec![key_package(key_of("bob"), "bo", 1)],
            ErrorCode::KeyPackageRefused,
        ),
        (
            vec![key_package(key_of("bob"), "bob", 1), application(G, 0)],
            ErrorCode::NotMls,
        ),
        (vec![], ErrorCode::InvalidFormat),
    ];
    for (kps, code) in cases {
        assert_eq!(codes(&upload(&mut s, bob, false, kps)), [code]);
    }
    assert_eq!(s.hub.key_packages_of("bob"), 0, "all or nothing");
    let two = vec![key_package(key_of("bob"), "bob", 1); 2];
    assert_eq!(
        codes(&upload(&mut s, bob, true, two)),
        [ErrorCode::InvalidFormat]
    );
}

#[test]
fn each_key_package_is_handed_out_once_then_the_last_resort_one() {
    let mut s = Server::new(HubConfig::default());
    let (bob, _) = s.connect("bob", AuthMode::Register);
    let (alice, _) = s.connect("alice", AuthMode::Register);
    assert_eq!(
        fetch(&mut s, alice, "bob"),
        Err(vec![ErrorCode::NoKeyPackage])
    );
    assert_eq!(
        fetch(&mut s, alice, "nobody"),
        Err(vec![ErrorCode::UserNotFound])
    );
    let kps: Vec<_> = (1..=3)
        .map(|t| key_package(key_of("bob"), "bob", t))
        .collect();
    assert_eq!(oks(&upload(&mut s, bob, false, kps.clone()), bob), 1);
    assert_eq!(s.hub.key_packages_of("bob"), 3);
    let last = key_package(key_of("bob"), "bob", 9);
    let out = upload(&mut s, bob, true, vec![last.clone()]);
    assert_eq!(oks(&out, bob), 1);
    assert!(
        mine(&out, bob).contains(&Reply::KeyPackagesLow { remaining: 3 }),
        "a new user of the directory is told its stock at once"
    );
    assert_eq!(fetch(&mut s, alice, "bob"), Ok(kps[0].clone()));
    s.restart();
    let (alice, _) = s.connect("alice", AuthMode::Login);
    let (bob, at_login) = s.connect("bob", AuthMode::Login);
    assert!(at_login.contains(&Reply::KeyPackagesLow { remaining: 2 }));
    assert_eq!(
        s.hub.key_packages_of("bob"),
        2,
        "what was handed out stays out"
    );
    let out = s.request(
        alice,
        Request::FetchKeyPackage {
            req: 8,
            name: "bob".into(),
        },
    );
    assert!(mine(&out, bob).contains(&Reply::KeyPackagesLow { remaining: 1 }));
    assert_eq!(fetch(&mut s, alice, "bob"), Ok(kps[2].clone()));
    assert_eq!(fetch(&mut s, alice, "bob"), Ok(last.clone()));
    assert_eq!(fetch(&mut s, alice, "bob"), Ok(last), "never used up");
}

/// The server-wide byte budget holds for the very first upload too.
#[test]
fn a_first_upload_over_the_byte_budget_is_refused() {
    let mut config = HubConfig::default();
    let one = key_package(key_of("bob"), "bob", 0).len();
    config.mls.key_package_bytes_total = one;
    let mut s = Server::new(config);
    let (bob, _) = s.connect("bob", AuthMode::Register);
    let kp = |t: u8| key_package(key_of("bob"), "bob", t);
    let out = upload(&mut s, bob, false, vec![kp(1), kp(2)]);
    assert_eq!(codes(&out), [ErrorCode::LimitReached]);
    assert_eq!(oks(&upload(&mut s, bob, false, vec![kp(1)]), bob), 1);
}

/// The owner is told only when its stock falls below the mark, not when it reaches it.
#[test]
fn the_low_stock_warning_starts_below_the_mark() {
    let mut config = HubConfig::default();
    config.mls.key_packages_low = 2;
    let mut s = Server::new(config);
    let (bob, _) = s.connect("bob", AuthMode::Register);
    let (alice, _) = s.connect("alice", AuthMode::Register);
    let kps: Vec<_> = (1..=3)
        .map(|t| key_package(key_of("bob"), "bob", t))
        .collect();
    upload(&mut s, bob, false, kps);
    let out = upload(
        &mut s,
        bob,
        true,
        vec![key_package(key_of("bob"), "bob", 9)],
    );
    let low = |out: &[(ConnId, Reply)]| {
        mine(out, bob)
            .into_iter()
            .any(|r| matches!(r, Reply::KeyPackagesLow { .. }))
    };
    assert!(!low(&out), "three left, the mark is two");
    let out = s.request(
        alice,
        Request::FetchKeyPackage {
            req: 8,
            name: "bob".into(),
        },
    );
    assert!(!low(&out), "two left: at the mark, not below it");
    let out = s.request(
        alice,
        Request::FetchKeyPackage {
            req: 8,
            name: "bob".into(),
        },
    );
    assert!(mine(&out, bob).contains(&Reply::KeyPackagesLow { remaining: 1 }));
}

/// A store that still lists a replaced last-resort package (written before its
/// replacement's delete) counts only the newer one's bytes against the budget.
#[test]
fn restoring_a_replaced_last_resort_package_counts_its_bytes_once() {
    let one = key_package(key_of("bob"), "bob", 0).len();
    let mut config = HubConfig::default();
    config.mls.key_package_bytes_total = 2 * one;
    let mut s = Server::new(config);
    let (bob, _) = s.connect("bob", AuthMode::Register);
    let mut records =
        crate::store::Store::load(&mut s.store, crate::store::LogMemory::ALL).unwrap();
    for t in [7, 8] {
        records.key_packages.push(crate::store::KeyPackageRecord {
            name: "bob".into(),
            package: key_package(key_of("bob"), "bob", t),
            last_resort: true,
        });
    }
    s.hub = Hub::new(s.config.clone(), 6);
    s.hub.restore(records);
    let (bob2, _) = s.connect("bob", AuthMode::Login);
    assert_ne!(bob, bob2);
    let out = upload(
        &mut s,
        bob2,
        false,
        vec![key_package(key_of("bob"), "bob", 1)],
    );
    assert_eq!(
        oks(&out, bob2),
        1,
        "one last-resort and one one-time: two in all"
    );
}

#[test]
fn key_package_stock_is_bounded_per_user_and_in_bytes() {
    let mut config = HubConfig::default();
    config.mls.key_packages_per_user = 3;
    let one = key_package(key_of("bob"), "bob", 0).len();
    config.mls.key_package_bytes_total = 4 * one;
    let mut s = Server::new(config);
    let (bob, _) = s.connect("bob", AuthMode::Register);
    let (bea, _) = s.connect("bea", AuthMode::Register);
    let kp = |n: &str, t: u8| key_package(key_of(n), n, t);
    assert_eq!(
        oks(
            &upload(&mut s, bob, false, vec![kp("bob", 1), kp("bob", 2)]),
            bob
        ),
        1
    );
    assert_eq!(
        oks(&upload(&mut s, bob, false, vec![kp("bob", 2)]), bob),
        1,
        "a repeat is free"
    );
    let out = upload(&mut s, bob, false, vec![kp("bob", 3), kp("bob", 4)]);
    assert_eq!(codes(&out), [ErrorCode::LimitReached]);
    assert_eq!(oks(&upload(&mut s, bob, false, vec![kp("bob", 3)]), bob), 1);
    assert_eq!(oks(&upload(&mut s, bea, false, vec![kp("bea", 1)]), bea), 1);
    let out = upload(&mut s, bea, false, vec![kp("bea", 2)]);
    assert_eq!(
        codes(&out),
        [ErrorCode::LimitReached],
        "the server-wide budget"
    );
    assert_eq!(oks(&upload(&mut s, bea, true, vec![kp("bea", 3)]), bea), 0);
    // Replacing a last-resort package frees the old one's bytes.
    let (al, _) = s.connect("al", AuthMode::Register);
    fetch(&mut s, al, "bob").expect("one of bob's");
    assert_eq!(oks(&upload(&mut s, bea, true, vec![kp("bea", 3)]), bea), 1);
    assert_eq!(oks(&upload(&mut s, bea, true, vec![kp("bea", 4)]), bea), 1);
}
