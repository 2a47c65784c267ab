//! The cleartext headers of MLS messages (RFC 9420 §6), read by the server acting as the
//! Delivery Service: which group, which epoch, what kind of content, and — for a
//! KeyPackage — whose key. Pure parsing of borrowed bytes; nothing is decrypted or verified
//! (the server holds no group keys), and no MLS library is needed.
//!
//! Integers are big-endian; `<V>` vectors carry an RFC 9000-style variable-length size
//! (RFC 9420 §2.1.2): the top two bits of the first byte give the size's width (1, 2 or 4
//! bytes); `0b11` is invalid.

use core::fmt;

/// `ProtocolVersion mls10`.
pub const MLS_VERSION_10: u16 = 1;
/// The credential type of a basic credential (RFC 9420 §5.3).
pub const CREDENTIAL_BASIC: u16 = 1;
/// The largest group ID the server accepts, in bytes.
pub const MAX_GROUP_ID_LEN: usize = 64;

/// `WireFormat` of an `MLSMessage`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireFormat {
    /// `mls_public_message` (1): signed, not encrypted.
    PublicMessage,
    /// `mls_private_message` (2): signed and encrypted.
    PrivateMessage,
    /// `mls_welcome` (3).
    Welcome,
    /// `mls_group_info` (4).
    GroupInfo,
    /// `mls_key_package` (5).
    KeyPackage,
}

impl WireFormat {
    fn from_u16(v: u16) -> Option<WireFormat> {
        Some(match v {
            1 => WireFormat::PublicMessage,
            2 => WireFormat::PrivateMessage,
            3 => WireFormat::Welcome,
            4 => WireFormat::GroupInfo,
            5 => WireFormat::KeyPackage,
            _ => return None,
        })
    }
}

/// `ContentType` of a framed message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentType {
    /// Application data (1).
    Application,
    /// A proposal (2).
    Proposal,
    /// A commit (3).
    Commit,
}

/// `SenderType` of a public message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SenderType {
    /// A member, by leaf index (1).
    Member,
    /// An external sender (2).
    External,
    /// A new member proposing its own addition (3).
    NewMemberProposal,
    /// A new member joining by external commit (4).
    NewMemberCommit,
}

/// Why MLS bytes were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MlsHeaderError {
    /// The bytes end inside a field.
    Truncated,
    /// Not MLS 1.0.
    Version,
    /// A wire format, content type, sender type or credential type this server does not know.
    BadValue,
    /// A variable-length size with the reserved `0b11` prefix, or a group ID over
    /// [`MAX_GROUP_ID_LEN`].
    BadLength,
    /// A different wire format than the request allows.
    WrongKind,
}

impl fmt::Display for MlsHeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MlsHeaderError::Truncated => "MLS message truncated",
            MlsHeaderError::Version => "not an MLS 1.0 message",
            MlsHeaderError::BadValue => "unknown MLS wire format or type",
            MlsHeaderError::BadLength => "bad MLS length",
            MlsHeaderError::WrongKind => "wrong kind of MLS message",
        })
    }
}

impl core::error::Error for MlsHeaderError {}

/// The cleartext header of a public or private MLS message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageHeader<'a> {
    /// Public or private.
    pub wire_format: WireFormat,
    /// The group.
    pub group_id: &'a [u8],
    /// The epoch the message was made in.
    pub epoch: u64,
    /// What it carries.
    pub content_type: ContentType,
    /// Who sent it, for a public message (a private message hides its sender).
    pub sender: Option<SenderType>,
}

/// The group and epoch of a `GroupInfo`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupInfoHeader<'a> {
    /// The group.
    pub group_id: &'a [u8],
    /// The epoch it describes.
    pub epoch: u64,
}

/// What the server checks of a `KeyPackage`: whose it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyPackageHeader<'a> {
    /// The cipher suite.
    pub cipher_suite: u16,
    /// The leaf's signature key (cove: the account's Ed25519 identity key).
    pub signature_key: &'a [u8],
    /// The basic credential's identity (cove: the account name).
    pub identity: &'a [u8],
}

struct Cursor<'a> {
    buf: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], MlsHeaderError> {
        if self.buf.len() < n {
            return Err(MlsHeaderError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, MlsHeaderError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, MlsHeaderError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u64(&mut self) -> Result<u64, MlsHeaderError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(b))
    }

    /// A `<V>` vector's bytes.
    fn vector(&mut self) -> Result<&'a [u8], MlsHeaderError> {
        let first = self.u8()?;
        let len = match first >> 6 {
            0 => usize::from(first & 0x3f),
            1 => (usize::from(first & 0x3f) << 8) | usize::from(self.u8()?),
            2 => {
                let rest = self.take(3)?;
                (usize::from(first & 0x3f) << 24)
                    | (usize::from(rest[0]) << 16)
                    | (usize::from(rest[1]) << 8)
                    | usize::from(rest[2])
            }
            _ => return Err(MlsHeaderError::BadLength),
        };
        self.take(len)
    }

    fn group_id(&mut self) -> Result<&'a [u8], MlsHeaderError> {
        let id = self.vector()?;
        if id.len() > MAX_GROUP_ID_LEN {
            return Err(MlsHeaderError::BadLength);
        }
        Ok(id)
    }

    fn content_type(&mut self) -> Result<ContentType, MlsHeaderError> {
        Ok(match self.u8()? {
            1 => ContentType::Application,
            2 => ContentType::Proposal,
            3 => ContentType::Commit,
            _ => return Err(MlsHeaderError::BadValue),
        })
    }

    /// `MLSMessage`'s version and wire format.
    fn message_start(&mut self) -> Result<WireFormat, MlsHeaderError> {
        if self.u16()? != MLS_VERSION_10 {
            return Err(MlsHeaderError::Version);
        }
        WireFormat::from_u16(self.u16()?).ok_or(MlsHeaderError::BadValue)
    }
}

/// The wire format of an `MLSMessage`, from its first four bytes.
pub fn wire_format(bytes: &[u8]) -> Result<WireFormat, MlsHeaderError> {
    Cursor { buf: bytes }.message_start()
}

/// The header of an `MLSMessage` holding a `PublicMessage` or `PrivateMessage`.
pub fn message_header(bytes: &[u8]) -> Result<MessageHeader<'_>, MlsHeaderError> {
    let mut c = Cursor { buf: bytes };
    let wire_format = c.message_start()?;
    match wire_format {
        WireFormat::PublicMessage => {
            let group_id = c.group_id()?;
            let epoch = c.u64()?;
            let sender = match c.u8()? {
                1 => {
                    c.take(4)?;
                    SenderType::Member
                }
                2 => {
                    c.take(4)?;
                    SenderType::External
                }
                3 => SenderType::NewMemberProposal,
                4 => SenderType::NewMemberCommit,
                _ => return Err(MlsHeaderError::BadValue),
            };
            c.vector()?; // authenticated_data
            let content_type = c.content_type()?;
            Ok(MessageHeader {
                wire_format,
                group_id,
                epoch,
                content_type,
                sender: Some(sender),
            })
        }
        WireFormat::PrivateMessage => {
            let group_id = c.group_id()?;
            let epoch = c.u64()?;
            let content_type = c.content_type()?;
            Ok(MessageHeader {
                wire_format,
                group_id,
                epoch,
                content_type,
                sender: None,
            })
        }
        _ => Err(MlsHeaderError::WrongKind),
    }
}

/// The group and epoch of an `MLSMessage` holding a `GroupInfo` (its `GroupContext` comes
/// first: version, cipher suite, group ID, epoch).
pub fn group_info_header(bytes: &[u8]) -> Result<GroupInfoHeader<'_>, MlsHeaderError> {
    let mut c = Cursor { buf: bytes };
    if c.message_start()? != WireFormat::GroupInfo {
        return Err(MlsHeaderError::WrongKind);
    }
    if c.u16()? != MLS_VERSION_10 {
        return Err(MlsHeaderError::Version);
    }
    c.u16()?; // cipher_suite
    let group_id = c.group_id()?;
    let epoch = c.u64()?;
    Ok(GroupInfoHeader { group_id, epoch })
}

/// Whose an `MLSMessage` holding a `KeyPackage` is: its leaf node's signature key and
/// basic credential (RFC 9420 §10: version, cipher suite, init key, then the leaf node's
/// encryption key, signature key and credential).
pub fn key_package_header(bytes: &[u8]) -> Result<KeyPackageHeader<'_>, MlsHeaderError> {
    let mut c = Cursor { buf: bytes };
    if c.message_start()? != WireFormat::KeyPackage {
        return Err(MlsHeaderError::WrongKind);
    }
    if c.u16()? != MLS_VERSION_10 {
        return Err(MlsHeaderError::Version);
    }
    let cipher_suite = c.u16()?;
    c.vector()?; // init_key
    c.vector()?; // leaf_node.encryption_key
    let signature_key = c.vector()?;
    if c.u16()? != CREDENTIAL_BASIC {
        return Err(MlsHeaderError::BadValue);
    }
    let identity = c.vector()?;
    Ok(KeyPackageHeader {
        cipher_suite,
        signature_key,
        identity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public_commit(epoch: u64, sender: u8) -> [u8; 24] {
        let mut b = [0u8; 24];
        b[..4].copy_from_slice(&[0, 1, 0, 1]);
        b[4] = 3; // group_id<V>, 3 bytes
        b[5..8].copy_from_slice(b"gid");
        b[8..16].copy_from_slice(&epoch.to_be_bytes());
        b[16] = sender;
        // member index (4 bytes) or nothing, then authenticated_data<V> = empty, commit
        if sender == 1 {
            b[21] = 0;
            b[22] = 3;
        } else {
            b[17] = 0;
            b[18] = 3;
        }
        b
    }

    #[test]
    fn reads_a_public_commit_from_a_member_and_from_a_joiner() {
        let member = public_commit(7, 1);
        let h = message_header(&member).unwrap();
        assert_eq!(h.wire_format, WireFormat::PublicMessage);
        assert_eq!(h.group_id, b"gid");
        assert_eq!(h.epoch, 7);
        assert_eq!(h.content_type, ContentType::Commit);
        assert_eq!(h.sender, Some(SenderType::Member));
        let joiner = public_commit(9, 4);
        let h = message_header(&joiner).unwrap();
        assert_eq!(h.sender, Some(SenderType::NewMemberCommit));
        assert_eq!(h.epoch, 9);
        assert_eq!(h.content_type, ContentType::Commit);
    }

    #[test]
    fn reads_a_private_message() {
        let mut b = [0u8; 4 + 1 + 2 + 8 + 1];
        b[..4].copy_from_slice(&[0, 1, 0, 2]);
        b[4] = 2;
        b[5..7].copy_from_slice(b"id");
        b[7..15].copy_from_slice(&u64::MAX.to_be_bytes());
        b[15] = 1;
        let h = message_header(&b).unwrap();
        assert_eq!(h.wire_format, WireFormat::PrivateMessage);
        assert_eq!(h.epoch, u64::MAX);
        assert_eq!(h.content_type, ContentType::Application);
        assert_eq!(h.sender, None);
        b[15] = 4;
        assert_eq!(message_header(&b), Err(MlsHeaderError::BadValue));
    }

    #[test]
    fn refuses_other_versions_kinds_and_truncation() {
        let ok = public_commit(1, 1);
        let mut v = ok;
        v[1] = 2;
        assert_eq!(message_header(&v), Err(MlsHeaderError::Version));
        let mut w = ok;
        w[3] = 3;
        assert_eq!(message_header(&w), Err(MlsHeaderError::WrongKind));
        w[3] = 9;
        assert_eq!(message_header(&w), Err(MlsHeaderError::BadValue));
        for cut in 0..ok.len() - 1 {
            assert_eq!(
                message_header(&ok[..cut]),
                Err(MlsHeaderError::Truncated),
                "{cut}"
            );
        }
        assert_eq!(wire_format(&ok), Ok(WireFormat::PublicMessage));
    }

    #[test]
    fn variable_length_sizes_of_every_width() {
        let mut two = [0u8; 2 + 70];
        two[0] = 0x40;
        two[1] = 70;
        assert_eq!(Cursor { buf: &two }.vector().unwrap().len(), 70);
        let mut four = [0u8; 4 + 300];
        four[0] = 0x80;
        four[2] = 1;
        four[3] = 44;
        assert_eq!(Cursor { buf: &four }.vector().unwrap().len(), 300);
        assert_eq!(
            Cursor { buf: &[0xc0, 0] }.vector(),
            Err(MlsHeaderError::BadLength)
        );
        assert_eq!(
            Cursor { buf: &[0x05, 1] }.vector(),
            Err(MlsHeaderError::Truncated)
        );
    }

    #[test]
    fn variable_length_sizes_use_every_bit_of_their_width() {
        // The largest two-byte size, and a four-byte one with a bit in each of its bytes.
        let mut two = alloc_free_buf::<{ 2 + 16_383 }>();
        two[0] = 0x7f;
        two[1] = 0xff;
        assert_eq!(Cursor { buf: &two }.vector().unwrap().len(), 16_383);
        let mut four = alloc_free_buf::<{ 4 + 0x01_01_01 }>();
        four[..4].copy_from_slice(&[0x80, 0x01, 0x01, 0x01]);
        assert_eq!(Cursor { buf: &four }.vector().unwrap().len(), 0x01_01_01);
        let mut top = [0u8; 4];
        top.copy_from_slice(&[0xbf, 0xff, 0xff, 0xff]);
        assert_eq!(
            Cursor { buf: &top }.vector(),
            Err(MlsHeaderError::Truncated),
            "a 30-bit size, far past the bytes there are"
        );
    }

    fn alloc_free_buf<const N: usize>() -> [u8; N] {
        [0u8; N]
    }

    #[test]
    fn proposals_are_read_as_such() {
        let mut b = [0u8; 4 + 1 + 8 + 1];
        b[..4].copy_from_slice(&[0, 1, 0, 2]);
        b[13] = 2;
        assert_eq!(
            message_header(&b).map(|h| h.content_type),
            Ok(ContentType::Proposal)
        );
    }

    #[test]
    fn a_group_id_of_the_largest_size_is_accepted() {
        // 64 needs the two-byte size form.
        let mut b = [0u8; 4 + 2 + MAX_GROUP_ID_LEN + 8 + 1];
        b[..4].copy_from_slice(&[0, 1, 0, 2]);
        b[4] = 0x40;
        b[5] = MAX_GROUP_ID_LEN as u8;
        b[4 + 2 + MAX_GROUP_ID_LEN + 8] = 1;
        let h = message_header(&b).unwrap();
        assert_eq!(h.group_id.len(), MAX_GROUP_ID_LEN);
    }

    #[test]
    fn errors_say_what_was_wrong() {
        let all = [
            MlsHeaderError::Truncated,
            MlsHeaderError::Version,
            MlsHeaderError::BadValue,
            MlsHeaderError::BadLength,
            MlsHeaderError::WrongKind,
        ];
        let mut buf = [[0u8; 64]; 5];
        let mut lens = [0usize; 5];
        for (i, e) in all.iter().enumerate() {
            let mut w = Wr(&mut buf[i], 0);
            core::fmt::write(&mut w, format_args!("{e}")).unwrap();
            lens[i] = w.1;
        }
        for i in 0..all.len() {
            let t = core::str::from_utf8(&buf[i][..lens[i]]).unwrap();
            assert!(t.contains("MLS"), "{t}");
            for j in 0..i {
                assert_ne!(&buf[j][..lens[j]], t.as_bytes(), "{t} twice");
            }
        }
    }

    struct Wr<'b>(&'b mut [u8; 64], usize);

    impl core::fmt::Write for Wr<'_> {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            let end = self.1 + s.len();
            self.0
                .get_mut(self.1..end)
                .ok_or(core::fmt::Error)?
                .copy_from_slice(s.as_bytes());
            self.1 = end;
            Ok(())
        }
    }

    #[test]
    fn group_ids_are_bounded() {
        let mut b = [0u8; 4 + 1 + 65 + 8 + 1];
        b[..4].copy_from_slice(&[0, 1, 0, 2]);
        b[4] = 0x40;
        b[5] = 65;
        assert_eq!(message_header(&b[..]), Err(MlsHeaderError::BadLength));
    }

    #[test]
    fn reads_a_group_info_and_a_key_package() {
        let mut gi = [0u8; 4 + 4 + 2 + 8];
        gi[..4].copy_from_slice(&[0, 1, 0, 4]);
        gi[4..8].copy_from_slice(&[0, 1, 0, 1]);
        gi[8] = 1;
        gi[9] = 0xAA;
        gi[10..18].copy_from_slice(&5u64.to_be_bytes());
        let h = group_info_header(&gi).unwrap();
        assert_eq!((h.group_id, h.epoch), (&[0xAA][..], 5));
        assert_eq!(message_header(&gi), Err(MlsHeaderError::WrongKind));

        let mut kp = [0u8; 4 + 4 + 3 + 2 + 4 + 2 + 4];
        kp[..4].copy_from_slice(&[0, 1, 0, 5]);
        kp[4..8].copy_from_slice(&[0, 1, 0, 3]);
        kp[8] = 2; // init_key
        kp[11] = 1; // encryption_key
        kp[13] = 3; // signature_key
        kp[14..17].copy_from_slice(b"key");
        kp[17..19].copy_from_slice(&[0, 1]);
        kp[19] = 3;
        kp[20..23].copy_from_slice(b"bob");
        let h = key_package_header(&kp[..23]).unwrap();
        assert_eq!(h.cipher_suite, 3);
        assert_eq!(h.signature_key, b"key");
        assert_eq!(h.identity, b"bob");
        kp[18] = 2; // an X.509 credential
        assert_eq!(key_package_header(&kp), Err(MlsHeaderError::BadValue));
        assert_eq!(group_info_header(&kp), Err(MlsHeaderError::WrongKind));
    }
}
