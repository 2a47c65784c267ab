//! The end-to-end encryption messages: their exact layout (hand-computed from
//! docs/PROTOCOL.md), the optional name of `GroupCommit`, the KeyPackage list, the room
//! flags' direct bit, and refusals of truncated and padded input.

extern crate alloc;

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::samples::room;
use crate::wire::*;

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).expect("test hex")
}

fn enc_client(m: &ClientMsg<'_>) -> String {
    let mut buf = vec![0u8; m.encoded_len()];
    let n = m.encode(&mut buf).expect("valid message");
    hex::encode(&buf[..n])
}

fn enc_server(m: &ServerMsg<'_>) -> String {
    let mut buf = vec![0u8; m.encoded_len()];
    let n = m.encode(&mut buf).expect("valid message");
    hex::encode(&buf[..n])
}

const TWO_PACKAGES: &[u8] = &[0, 2, 0xAA, 0xBB, 0, 1, 0xCC];

fn client_layouts() -> Vec<(ClientMsg<'static>, &'static str)> {
    use ClientMsg::*;
    let abc = room(b"ABC234");
    vec![
        (
            UploadKeyPackages {
                req: 1,
                last_resort: false,
                packages: KeyPackageList::parse(TWO_PACKAGES).expect("valid"),
            },
            "30 00000001 00 0007 0002aabb 0001cc",
        ),
        (
            FetchKeyPackage {
                req: 2,
                name: "bob",
            },
            "31 00000002 03 626f62",
        ),
        (
            InitGroup {
                req: 3,
                room: abc,
                group_info: &[0x01, 0x02],
            },
            "32 00000003 414243323334 0002 0102",
        ),
        (
            GroupCommit {
                req: 4,
                room: abc,
                commit: &[0xC0],
                group_info: &[0x61],
                add: Some("bob"),
                welcome: &[0x77, 0x77],
            },
            "33 00000004 414243323334 0001 c0 0001 61 03 626f62 0002 7777",
        ),
        (
            GroupCommit {
                req: 5,
                room: abc,
                commit: &[0xC0],
                group_info: &[0x61],
                add: None,
                welcome: &[],
            },
            "33 00000005 414243323334 0001 c0 0001 61 00 0000",
        ),
        (
            GetGroupInfo { req: 6, room: abc },
            "34 00000006 414243323334",
        ),
        (
            OpenDirect {
                req: 7,
                peer: "bob",
                group_info: &[0x61],
                welcome: &[0x77],
            },
            "35 00000007 03 626f62 0001 61 0001 77",
        ),
    ]
}

fn server_layouts() -> Vec<(ServerMsg<'static>, &'static str)> {
    use ServerMsg::*;
    vec![
        (
            KeyPackage {
                req: 2,
                name: "bob",
                package: &[0xAA],
            },
            "98 00000002 03 626f62 0001 aa",
        ),
        (
            GroupInfo {
                req: 6,
                room: room(b"ABC234"),
                epoch: 9,
                group_info: &[0x61, 0x62],
            },
            "99 00000006 414243323334 0000000000000009 0002 6162",
        ),
        (KeyPackagesLow { remaining: 3 }, "9a 0003"),
        (
            RoomJoined {
                req: 7,
                room: room(b"ABC234"),
                private: true,
                direct: true,
                title: "",
                admin: "al",
                members: NameEntries::new(2, b"\x02al\x03bob").expect("valid"),
            },
            "89 00000007 414243323334 03 00 02 616c 02 02616c 03626f62",
        ),
    ]
}

#[test]
fn e2ee_messages_have_the_documented_layout() {
    for (msg, hex) in client_layouts() {
        let bytes = unhex(hex);
        assert_eq!(enc_client(&msg), hex::encode(&bytes), "{msg:?}");
        assert_eq!(msg.encoded_len(), bytes.len());
        assert_eq!(ClientMsg::decode(&bytes), Result::Ok(msg));
    }
    for (msg, hex) in server_layouts() {
        let bytes = unhex(hex);
        assert_eq!(enc_server(&msg), hex::encode(&bytes), "{msg:?}");
        assert_eq!(msg.encoded_len(), bytes.len());
        assert_eq!(ServerMsg::decode(&bytes), Result::Ok(msg));
    }
}

#[test]
fn e2ee_messages_refuse_every_truncation_and_a_trailing_byte() {
    let client = client_layouts().into_iter().map(|(_, h)| (unhex(h), true));
    let server = server_layouts().into_iter().map(|(_, h)| (unhex(h), false));
    for (bytes, is_client) in client.chain(server) {
        let decode = |b: &[u8]| {
            if is_client {
                ClientMsg::decode(b).map(|_| ())
            } else {
                ServerMsg::decode(b).map(|_| ())
            }
        };
        for cut in 0..bytes.len() {
            assert!(
                decode(&bytes[..cut]).is_err(),
                "prefix {cut} of {bytes:02x?}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode(&longer), Err(WireError::TrailingBytes));
    }
}

#[test]
fn key_package_lists_refuse_empty_oversized_and_cut_entries() {
    let list = KeyPackageList::parse(TWO_PACKAGES).expect("valid");
    assert_eq!(list.len(), 2);
    assert_eq!(
        list.iter().collect::<Vec<_>>(),
        [&[0xAA, 0xBB][..], &[0xCC]]
    );
    assert!(KeyPackageList::parse(&[]).expect("empty list").is_empty());
    assert_eq!(KeyPackageList::parse(&[0, 0]), Err(WireError::TooLong));
    assert_eq!(KeyPackageList::parse(&[0, 2, 1]), Err(WireError::Truncated));
    let mut big = vec![0u8; 2 + MAX_KEY_PACKAGE_LEN + 1];
    big[..2].copy_from_slice(&((MAX_KEY_PACKAGE_LEN + 1) as u16).to_be_bytes());
    assert_eq!(KeyPackageList::parse(&big), Err(WireError::TooLong));
    big[..2].copy_from_slice(&(MAX_KEY_PACKAGE_LEN as u16).to_be_bytes());
    assert_eq!(
        KeyPackageList::parse(&big[..2 + MAX_KEY_PACKAGE_LEN])
            .expect("the largest package")
            .len(),
        1
    );
    let mut out = [0u8; 16];
    let n = KeyPackageList::encode(&mut out, [&[0xAA, 0xBB][..], &[0xCC][..]]).expect("fits");
    assert_eq!(&out[..n], TWO_PACKAGES);
    assert_eq!(
        KeyPackageList::encode(&mut out, [&[][..]]),
        Err(WireError::TooLong)
    );
}

#[test]
fn a_group_commit_refuses_a_bad_added_name() {
    // `add` of length 3 holding a space: not a valid name.
    let bytes = unhex("33 00000005 414243323334 0001 c0 0001 61 03 612062 0000");
    assert_eq!(ClientMsg::decode(&bytes), Err(WireError::BadName));
}
