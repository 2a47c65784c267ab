//! Structurally plausible MLS bytes (RFC 9420 §6): the cleartext headers the hub reads,
//! built around chosen group IDs, epochs, sender and content types, followed by arbitrary
//! bytes where the signed or encrypted part would be. Nothing here is a valid signature or
//! ciphertext: the hub never checks one.

/// `mls_public_message`.
pub const WF_PUBLIC: u16 = 1;
/// `mls_private_message`.
pub const WF_PRIVATE: u16 = 2;
/// `mls_welcome`.
pub const WF_WELCOME: u16 = 3;
/// `mls_group_info`.
pub const WF_GROUP_INFO: u16 = 4;
/// `mls_key_package`.
pub const WF_KEY_PACKAGE: u16 = 5;

/// Content type `application`.
pub const CT_APPLICATION: u8 = 1;
/// Content type `commit`.
pub const CT_COMMIT: u8 = 3;

/// Sender type `member`.
pub const SENDER_MEMBER: u8 = 1;
/// Sender type `new_member_commit`.
pub const SENDER_NEW_MEMBER_COMMIT: u8 = 4;

/// Appends a `<V>` vector: its variable-length size (1, 2 or 4 bytes), then the bytes.
pub fn vector(out: &mut Vec<u8>, bytes: &[u8]) {
    let n = bytes.len();
    if n < 0x40 {
        out.push(n as u8);
    } else if n < 0x4000 {
        out.extend_from_slice(&(0x4000 | n as u16).to_be_bytes());
    } else {
        out.extend_from_slice(&(0x8000_0000 | n as u32).to_be_bytes());
    }
    out.extend_from_slice(bytes);
}

fn start(wire_format: u16) -> Vec<u8> {
    let mut b = vec![0, 1];
    b.extend_from_slice(&wire_format.to_be_bytes());
    b
}

/// `MLSMessage(PublicMessage)`: group, epoch, sender (a member's leaf index is 0), empty
/// authenticated data, content type, then `tail`.
pub fn public_message(gid: &[u8], epoch: u64, sender: u8, content: u8, tail: &[u8]) -> Vec<u8> {
    let mut b = start(WF_PUBLIC);
    vector(&mut b, gid);
    b.extend_from_slice(&epoch.to_be_bytes());
    b.push(sender);
    if sender == 1 || sender == 2 {
        b.extend_from_slice(&[0, 0, 0, 0]);
    }
    vector(&mut b, &[]);
    b.push(content);
    b.extend_from_slice(tail);
    b
}

/// `MLSMessage(PrivateMessage)`: group, epoch, content type, then `tail`.
pub fn private_message(gid: &[u8], epoch: u64, content: u8, tail: &[u8]) -> Vec<u8> {
    let mut b = start(WF_PRIVATE);
    vector(&mut b, gid);
    b.extend_from_slice(&epoch.to_be_bytes());
    b.push(content);
    b.extend_from_slice(tail);
    b
}

/// `MLSMessage(GroupInfo)`: its GroupContext's version, suite 1, group and epoch, then
/// `tail`.
pub fn group_info(gid: &[u8], epoch: u64, tail: &[u8]) -> Vec<u8> {
    let mut b = start(WF_GROUP_INFO);
    b.extend_from_slice(&[0, 1, 0, 1]);
    vector(&mut b, gid);
    b.extend_from_slice(&epoch.to_be_bytes());
    b.extend_from_slice(tail);
    b
}

/// `MLSMessage(Welcome)` followed by `tail`.
pub fn welcome(tail: &[u8]) -> Vec<u8> {
    let mut b = start(WF_WELCOME);
    b.extend_from_slice(tail);
    b
}

/// `MLSMessage(KeyPackage)` whose leaf has signature key `key` and a basic credential
/// naming `identity`; `tag` makes packages of one owner differ; `pad` adds bytes after
/// the credential.
pub fn key_package(key: &[u8], identity: &[u8], tag: u8, pad: usize) -> Vec<u8> {
    let mut b = start(WF_KEY_PACKAGE);
    b.extend_from_slice(&[0, 1, 0, 1]);
    vector(&mut b, &[tag; 32]); // init_key
    vector(&mut b, &[tag ^ 0x5a; 32]); // encryption_key
    vector(&mut b, key);
    b.extend_from_slice(&[0, 1]); // basic credential
    vector(&mut b, identity);
    b.resize(b.len() + pad, tag);
    b
}
