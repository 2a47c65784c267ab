//! Small value types shared by every message: names, room IDs, status, codes.

use core::fmt;

/// Longest nickname, in bytes.
pub const MAX_NAME_LEN: usize = 32;
/// Longest room title, in bytes.
pub const MAX_TITLE_LEN: usize = 64;
/// Longest human-readable error or close text, in bytes.
pub const MAX_TEXT_LEN: usize = 256;
/// Largest opaque body of a room message, a direct message or a prekey bundle, in bytes.
///
/// Chosen so that the body's *relayed* form — a room message gains 58 bytes of header
/// with the longest sender name, a history message 62, a DM 52, a bundle 41, and the
/// record its 16-byte tag —
/// fits the 64 KiB frame every client accepts ([`DEFAULT_MAX_FRAME`]), with room to spare
/// for fields later versions add. The hub refuses longer bodies with
/// [`ErrorCode::BodyTooLarge`]: a body that fits the sender's frame but not the
/// receiver's would otherwise disconnect every member of a room, or lock a user out
/// with a direct message that can never be delivered.
pub const MAX_BODY_LEN: usize = 64_000;
/// The largest frame payload every peer accepts unless configured otherwise: 64 KiB. A
/// client that announces no limit in its handshake accepts this much.
pub const DEFAULT_MAX_FRAME: u32 = 64 * 1024;
/// The smallest frame limit a client may announce: every reply that is not a body, a
/// bundle or a list (an error or close with the longest text, a `RoomJoined` of a default
/// room of 20 members with the longest names) fits in a record this large.
pub const MIN_FRAME_LIMIT: u32 = 1024;
/// Length of a room ID.
pub const ROOM_ID_LEN: usize = 6;
/// The alphabet room IDs are drawn from: no 0/O, 1/I/L, so IDs read aloud unambiguously.
pub const ROOM_ALPHABET: &[u8; 31] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
/// Bit of a room's flags byte (`CreateRoom`, `RoomJoined`): the room is private, joined by
/// invitation only. The other bits are reserved: they must be 0, and a decoder refuses a
/// byte that sets one, so a later version can give them a meaning without ambiguity.
pub const ROOM_FLAG_PRIVATE: u8 = 0x01;
/// Room flag: a direct conversation of two (made by `OpenDirect`; never listed or joined).
pub const ROOM_FLAG_DIRECT: u8 = 0x02;

/// Presence of a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Status {
    /// Not connected.
    Offline = 0,
    /// Connected and active.
    Online = 1,
    /// Connected, but said they are away.
    Away = 2,
}

impl Status {
    /// Decodes a status byte.
    pub fn from_u8(b: u8) -> Option<Status> {
        match b {
            0 => Some(Status::Offline),
            1 => Some(Status::Online),
            2 => Some(Status::Away),
            _ => None,
        }
    }

    /// A lowercase word for people.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Offline => "offline",
            Status::Online => "online",
            Status::Away => "away",
        }
    }
}

/// What happened to a direct message, as told to its sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum AckStatus {
    /// Not accepted; an `Error` with the reason accompanies it.
    Failed = 0,
    /// Handed to the recipient's live connection.
    Delivered = 1,
    /// Stored durably for an offline recipient.
    Queued = 2,
}

impl AckStatus {
    /// Decodes an ack status byte.
    pub fn from_u8(b: u8) -> Option<AckStatus> {
        match b {
            0 => Some(AckStatus::Failed),
            1 => Some(AckStatus::Delivered),
            2 => Some(AckStatus::Queued),
            _ => None,
        }
    }
}

/// Whether the handshake registers a new account or logs in to an existing one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum AuthMode {
    /// Create the account: bind the nickname to the client's identity key.
    Register = 1,
    /// Prove ownership of an existing account's identity key.
    Login = 2,
}

impl AuthMode {
    /// Decodes an auth mode byte.
    pub fn from_u8(b: u8) -> Option<AuthMode> {
        match b {
            1 => Some(AuthMode::Register),
            2 => Some(AuthMode::Login),
            _ => None,
        }
    }
}

/// Error codes carried by `Error`, `AuthResponse`, `Close` and the cleartext `Alert`.
///
/// 0x01–0x08 keep the meanings of the C-Chat specification; 0x10 and up are cove's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The nickname is empty, too long, or has forbidden characters.
    InvalidUsername = 0x01,
    /// Registration of a name that is taken.
    UserExists = 0x02,
    /// No such user.
    UserNotFound = 0x03,
    /// Login with a key that does not match the account, or a bad signature.
    AuthFailed = 0x04,
    /// A message that does not parse or is not allowed in this state.
    InvalidFormat = 0x05,
    /// The connection's token bucket is empty.
    RateLimited = 0x06,
    /// The server failed internally (for example its store).
    ServerError = 0x07,
    /// The connection is being closed.
    ConnectionTerminated = 0x08,
    /// The room has as many members as it may.
    RoomFull = 0x10,
    /// No room with that ID.
    RoomNotFound = 0x11,
    /// The request needs membership of a room the user is not in.
    NotInRoom = 0x12,
    /// The recipient's offline queue is full.
    QueueFull = 0x13,
    /// A frame longer than the configured maximum.
    FrameTooLarge = 0x14,
    /// The protocol version is not one this peer speaks.
    UnsupportedVersion = 0x15,
    /// The cipher suite is not allowed by this peer.
    UnsupportedSuite = 0x16,
    /// The handshake did not finish before its deadline.
    HandshakeTimeout = 0x17,
    /// Nothing was heard from the peer for too long.
    IdleTimeout = 0x18,
    /// The connection's outbound queue overflowed because it did not read ("SendQ exceeded").
    SendQueueExceeded = 0x19,
    /// The server has as many connections, rooms or members as it may.
    LimitReached = 0x1A,
    /// The user is already in that room.
    AlreadyInRoom = 0x1B,
    /// The account is already logged in on another connection.
    AlreadyConnected = 0x1C,
    /// A record failed to decrypt or authenticate.
    DecryptFailed = 0x1D,
    /// The server is shutting down.
    ShuttingDown = 0x1E,
    /// The request needs a completed login.
    NotAuthenticated = 0x1F,
    /// A body (room message, direct message, prekey bundle) longer than
    /// [`MAX_BODY_LEN`], which would not fit a client's frame once relayed.
    BodyTooLarge = 0x20,
    /// Only the room's admin may invite, remove members or change the title.
    NotRoomAdmin = 0x21,
    /// The room is private and the user has no pending invitation to it.
    NotInvited = 0x22,
    /// A Commit for an epoch the room has left (another Commit won it): process the
    /// winner, then retry. Also an application message from too old an epoch.
    StaleEpoch = 0x23,
    /// Bytes that are not the MLS message the request needs (or of another group).
    NotMls = 0x24,
    /// The user has no KeyPackage left (nor a last-resort one).
    NoKeyPackage = 0x25,
    /// The two users already have a direct conversation (you are a member of it).
    DirectExists = 0x26,
    /// A KeyPackage whose key or name is not the uploading account's.
    KeyPackageRefused = 0x27,
    /// The room has no MLS group yet.
    NoGroup = 0x28,
    /// The room already has an MLS group.
    GroupExists = 0x29,
    /// A room message or direct message that fits the protocol's limit but not the
    /// frame limit a member or the recipient announced in its handshake: refused to the
    /// sender, so no connection is ever sent a record larger than it accepts.
    TooLargeForRecipient = 0x2A,
}

impl ErrorCode {
    /// Decodes a code byte; unknown codes are a parse error.
    pub fn from_u8(b: u8) -> Option<ErrorCode> {
        use ErrorCode::*;
        Some(match b {
            0x01 => InvalidUsername,
            0x02 => UserExists,
            0x03 => UserNotFound,
            0x04 => AuthFailed,
            0x05 => InvalidFormat,
            0x06 => RateLimited,
            0x07 => ServerError,
            0x08 => ConnectionTerminated,
            0x10 => RoomFull,
            0x11 => RoomNotFound,
            0x12 => NotInRoom,
            0x13 => QueueFull,
            0x14 => FrameTooLarge,
            0x15 => UnsupportedVersion,
            0x16 => UnsupportedSuite,
            0x17 => HandshakeTimeout,
            0x18 => IdleTimeout,
            0x19 => SendQueueExceeded,
            0x1A => LimitReached,
            0x1B => AlreadyInRoom,
            0x1C => AlreadyConnected,
            0x1D => DecryptFailed,
            0x1E => ShuttingDown,
            0x1F => NotAuthenticated,
            0x20 => BodyTooLarge,
            0x21 => NotRoomAdmin,
            0x22 => NotInvited,
            0x23 => StaleEpoch,
            0x24 => NotMls,
            0x25 => NoKeyPackage,
            0x26 => DirectExists,
            0x27 => KeyPackageRefused,
            0x28 => NoGroup,
            0x29 => GroupExists,
            0x2A => TooLargeForRecipient,
            _ => return None,
        })
    }

    /// A short English description for logs and people.
    pub fn description(self) -> &'static str {
        use ErrorCode::*;
        match self {
            InvalidUsername => "invalid username",
            UserExists => "user already exists",
            UserNotFound => "user not found",
            AuthFailed => "authentication failed",
            InvalidFormat => "invalid message format",
            RateLimited => "rate limit exceeded",
            ServerError => "server error",
            ConnectionTerminated => "connection terminated",
            RoomFull => "room is full",
            RoomNotFound => "room not found",
            NotInRoom => "not in that room",
            QueueFull => "recipient's offline queue is full",
            FrameTooLarge => "frame too large",
            UnsupportedVersion => "unsupported protocol version",
            UnsupportedSuite => "unsupported cipher suite",
            HandshakeTimeout => "handshake timed out",
            IdleTimeout => "idle timeout",
            SendQueueExceeded => "send queue exceeded",
            LimitReached => "server limit reached",
            AlreadyInRoom => "already in that room",
            AlreadyConnected => "already connected elsewhere",
            DecryptFailed => "record failed to decrypt",
            ShuttingDown => "server shutting down",
            NotAuthenticated => "not logged in",
            BodyTooLarge => "message body too large",
            NotRoomAdmin => "only the room's admin may do that",
            NotInvited => "that room is private: ask for an invitation",
            StaleEpoch => "another change to the group came first: catch up and retry",
            NotMls => "not an MLS message of this room's group",
            NoKeyPackage => "that user has no key package left: they must log in once",
            DirectExists => "you already have a direct conversation with that user",
            KeyPackageRefused => "a key package must carry your own name and identity key",
            NoGroup => "that room has no encryption group yet",
            GroupExists => "that room already has an encryption group",
            TooLargeForRecipient => "too large for a recipient's device: send a shorter message",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (0x{:02x})", self.description(), *self as u8)
    }
}

/// A 6-character room ID from [`ROOM_ALPHABET`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RoomId(pub [u8; ROOM_ID_LEN]);

impl RoomId {
    /// Checks and wraps six bytes; lowercase letters are accepted and upper-cased.
    pub fn parse(s: &[u8]) -> Option<RoomId> {
        if s.len() != ROOM_ID_LEN {
            return None;
        }
        let mut id = [0u8; ROOM_ID_LEN];
        for (d, &c) in id.iter_mut().zip(s) {
            let c = c.to_ascii_uppercase();
            if !ROOM_ALPHABET.contains(&c) {
                return None;
            }
            *d = c;
        }
        Some(RoomId(id))
    }

    /// Builds an ID from six indices into the alphabet (each taken modulo its length).
    pub fn from_indices(ix: [u8; ROOM_ID_LEN]) -> RoomId {
        let mut id = [0u8; ROOM_ID_LEN];
        for (d, i) in id.iter_mut().zip(ix) {
            *d = ROOM_ALPHABET[i as usize % ROOM_ALPHABET.len()];
        }
        RoomId(id)
    }

    /// The ID as text.
    pub fn as_str(&self) -> &str {
        // Every byte is from ROOM_ALPHABET (ASCII), enforced by the constructors.
        core::str::from_utf8(&self.0).unwrap_or("??????")
    }
}

impl fmt::Debug for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RoomId({})", self.as_str())
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Checks a nickname: 1 to [`MAX_NAME_LEN`] bytes of ASCII letters, digits, `_`, `-` and `.`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// Checks free text (titles, error texts): UTF-8 without control characters and without
/// the invisible formatting characters that let one person's text change how others see
/// a line ([`is_invisible_format`]).
pub fn valid_text(text: &str, max: usize) -> bool {
    text.len() <= max
        && !text
            .chars()
            .any(|c| c.is_control() || is_invisible_format(c))
}

/// Characters that change how text around them is laid out, or that show nothing at
/// all, and that `char::is_control` does not catch (Unicode categories Cf, Zl, Zp):
/// bidirectional overrides, embeddings and isolates reorder what follows them ("Trojan
/// Source"). Refused in titles and texts; `cove chat` shows them escaped in message
/// bodies, which the server cannot read. Variation selectors are left alone: emoji need
/// them and they cannot reorder text.
pub fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'                      // soft hyphen
            | '\u{061C}'                // Arabic letter mark (bidi)
            | '\u{180E}'                // Mongolian vowel separator
            | '\u{200B}'..='\u{200F}'   // zero-width space/joiners, LRM, RLM
            | '\u{2028}'..='\u{202E}'   // line/paragraph separators, bidi embeddings/overrides
            | '\u{2060}'..='\u{2064}'   // word joiner, invisible operators
            | '\u{2066}'..='\u{206F}'   // bidi isolates, deprecated format controls
            | '\u{FEFF}'                // zero-width no-break space (BOM)
            | '\u{FFF9}'..='\u{FFFB}'   // interlinear annotation controls
            | '\u{E0000}'..='\u{E007F}' // tag characters: invisible ASCII look-alikes
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_refuse_bidirectional_overrides_and_invisible_characters() {
        assert!(valid_text("café ☕ lobby", 64));
        for bad in [
            "a\u{202E}b",
            "\u{2066}x",
            "zero\u{200B}width",
            "\u{FEFF}bom",
            "a\u{2028}b",
        ] {
            assert!(!valid_text(bad, 64), "{bad:?} accepted");
        }
        assert!(
            !valid_text("tab\there", 64),
            "control characters stay refused"
        );
    }

    #[test]
    fn room_ids_use_only_the_unambiguous_alphabet() {
        assert!(RoomId::parse(b"ABC234").is_some());
        assert_eq!(RoomId::parse(b"abc234").map(|r| r.0), Some(*b"ABC234"));
        assert!(RoomId::parse(b"ABC23O").is_none(), "O is ambiguous");
        assert!(RoomId::parse(b"ABC231").is_none(), "1 is ambiguous");
        assert!(RoomId::parse(b"ABC23").is_none());
        let id = RoomId::from_indices([0, 1, 2, 30, 31, 255]);
        assert!(RoomId::parse(&id.0).is_some());
    }

    #[test]
    fn names_refuse_control_characters_and_length() {
        assert!(valid_name("alice_01"));
        assert!(!valid_name(""));
        assert!(!valid_name("al\u{7}ice"));
        assert!(!valid_name("al ice"));
        assert!(!valid_name(&"a".repeat(33)));
        assert!(valid_name(&"a".repeat(32)));
    }

    #[test]
    fn codes_round_trip() {
        for b in 0..=255u8 {
            if let Some(c) = ErrorCode::from_u8(b) {
                assert_eq!(c as u8, b);
            }
        }
        assert_eq!(ErrorCode::from_u8(0x10), Some(ErrorCode::RoomFull));
        assert_eq!(ErrorCode::from_u8(0x21), Some(ErrorCode::NotRoomAdmin));
        assert_eq!(ErrorCode::from_u8(0x22), Some(ErrorCode::NotInvited));
        assert_eq!(ErrorCode::from_u8(0x23), Some(ErrorCode::StaleEpoch));
        assert_eq!(ErrorCode::from_u8(0x29), Some(ErrorCode::GroupExists));
        assert_eq!(
            ErrorCode::from_u8(0x2A),
            Some(ErrorCode::TooLargeForRecipient)
        );
        assert_eq!(ErrorCode::from_u8(0x2B), None);
        assert_eq!(
            ErrorCode::NotInvited.description(),
            "that room is private: ask for an invitation"
        );
    }
}
