//! Parsing one input line of `cove chat` into a typed [`Command`]; no I/O here, so every
//! command and every wrong argument can be tested without a connection.

use std::fmt;

use cove_core::wire::{MAX_NAME_LEN, ROOM_ALPHABET, RoomId, Status, valid_name};

/// What `/help` prints, one command a line.
pub(super) const HELP: &str = "\
commands:
  /create [--private] [title]  create a room (private: by invitation only) and enter it
  /join ID            join a room by its 6-character ID
  /leave [ID]         leave a room for good (default: the current one)
  /switch ID          make a room you are in the current one
  /rooms              list public rooms
  /invite NICK [ID]   add someone to a room (private rooms: if you created it); default: the current one
  /remove NICK [ID]   remove someone from a room you created; they cannot read what follows
  /title TEXT         rename the current room (if you created it)
  /history [N]        list N (default 20) earlier messages of the current room; repeat for more
                      (who wrote when: a message is decrypted once, when it arrives)
  /users              list users and their status
  /msg NICK text      send a direct message (works while NICK is offline)
  /verify NICK        show the safety number to compare with NICK (in person or by phone)
  /accept-key NICK    trust NICK's new key after comparing safety numbers; held messages are sent
  /status online|away set your presence
  /help               this list
  /quit               log out and exit
anything else is sent to the current room. Rooms and direct messages are end-to-end
encrypted: the server relays them without being able to read them.";

/// One input line, understood.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Command {
    /// Plain text for the current room, exactly as typed (only the line end removed).
    Say(String),
    /// `/help`.
    Help,
    /// `/quit` or `/exit`.
    Quit,
    /// `/create [--private] [title]`.
    Create {
        /// The title; `None` asks for the default one.
        title: Option<String>,
        /// Joined by invitation only, and never listed.
        private: bool,
    },
    /// `/join ID`.
    Join(RoomId),
    /// `/leave [ID]`; `None` means the current room.
    Leave(Option<RoomId>),
    /// `/switch ID`.
    Switch(RoomId),
    /// `/rooms`.
    Rooms,
    /// `/users`.
    Users,
    /// `/msg NICK text`.
    Msg {
        /// The recipient's nickname.
        to: String,
        /// The message, trimmed, never empty.
        text: String,
    },
    /// `/status online|away`.
    Status(Status),
    /// `/invite NICK [ID]`; `room` `None` means the current room.
    Invite {
        /// Who is invited.
        nick: String,
        /// To which room.
        room: Option<RoomId>,
    },
    /// `/remove NICK [ID]`; `room` `None` means the current room.
    Remove {
        /// Who is removed.
        nick: String,
        /// From which room.
        room: Option<RoomId>,
    },
    /// `/title TEXT`: the current room's new title, trimmed, never empty.
    Title(String),
    /// `/history [N]`: up to N earlier messages of the current room.
    History(u8),
    /// `/verify NICK`: the safety number of this account and NICK.
    Verify(String),
    /// `/accept-key NICK`: trust NICK's changed key.
    AcceptKey(String),
}

/// How many messages `/history` shows when not told.
pub(super) const HISTORY_DEFAULT: u8 = 20;
/// The most `/history` asks for at once: the server's page size.
pub(super) const HISTORY_MAX: u8 = 100;

impl Command {
    /// Whether the command is answered on this side only, so it needs no token from the
    /// request pacer.
    pub(super) fn is_local(&self) -> bool {
        matches!(
            self,
            Command::Help | Command::Quit | Command::Switch(_) | Command::Verify(_)
        )
    }
}

/// Why a line is not a valid command; its `Display` is the message shown to the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum ParseError {
    /// `/name` is not a command.
    Unknown(String),
    /// The argument should have been a room ID.
    NotARoom(String),
    /// The argument should have been a nickname.
    NotANick(String),
    /// Missing or wrong arguments; holds the command's usage line.
    Usage(&'static str),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Unknown(name) => write!(f, "unknown command /{name}; /help lists them"),
            ParseError::NotARoom(text) => write!(
                f,
                "{text:?} is not a room ID: 6 characters from {}",
                String::from_utf8_lossy(ROOM_ALPHABET)
            ),
            ParseError::NotANick(text) => write!(
                f,
                "{text:?} is not a nickname: 1-{MAX_NAME_LEN} letters, digits, '_', '-' or '.'"
            ),
            ParseError::Usage(usage) => write!(f, "usage: {usage}"),
        }
    }
}

const MSG_USAGE: &str = "/msg NICK text";
const STATUS_USAGE: &str = "/status online|away";
const INVITE_USAGE: &str = "/invite NICK [ID]";
const REMOVE_USAGE: &str = "/remove NICK [ID]";
const TITLE_USAGE: &str = "/title TEXT";
const HISTORY_USAGE: &str = "/history [N], N from 1 to 100";
const VERIFY_USAGE: &str = "/verify NICK";
const ACCEPT_KEY_USAGE: &str = "/accept-key NICK";

/// Parses one input line. `Ok(None)` for a blank line, which is ignored.
pub(super) fn parse(line: &str) -> Result<Option<Command>, ParseError> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() {
        return Ok(None);
    }
    let Some(c) = line.strip_prefix('/') else {
        return Ok(Some(Command::Say(line.to_string())));
    };
    let c = c.trim_start();
    let (name, rest) = c.split_once(char::is_whitespace).unwrap_or((c, ""));
    let rest = rest.trim();
    let command = match name {
        "help" => Command::Help,
        "quit" | "exit" => Command::Quit,
        "create" => create(rest),
        "join" => Command::Join(room(rest)?),
        "leave" if rest.is_empty() => Command::Leave(None),
        "leave" => Command::Leave(Some(room(rest)?)),
        "switch" => Command::Switch(room(rest)?),
        "rooms" => Command::Rooms,
        "users" => Command::Users,
        "msg" => {
            let (to, text) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let text = text.trim();
            if to.is_empty() || text.is_empty() {
                return Err(ParseError::Usage(MSG_USAGE));
            }
            Command::Msg {
                to: to.to_string(),
                text: text.to_string(),
            }
        }
        "status" => match rest {
            "online" => Command::Status(Status::Online),
            "away" => Command::Status(Status::Away),
            _ => return Err(ParseError::Usage(STATUS_USAGE)),
        },
        "invite" => {
            let (nick, room) = member_and_room(rest, INVITE_USAGE)?;
            Command::Invite { nick, room }
        }
        "remove" => {
            let (nick, room) = member_and_room(rest, REMOVE_USAGE)?;
            Command::Remove { nick, room }
        }
        "title" if rest.is_empty() => return Err(ParseError::Usage(TITLE_USAGE)),
        "title" => Command::Title(rest.to_string()),
        "history" if rest.is_empty() => Command::History(HISTORY_DEFAULT),
        "history" => match rest.parse::<u8>() {
            Ok(n @ 1..=HISTORY_MAX) => Command::History(n),
            _ => return Err(ParseError::Usage(HISTORY_USAGE)),
        },
        "verify" => Command::Verify(nick(rest, VERIFY_USAGE)?),
        "accept-key" => Command::AcceptKey(nick(rest, ACCEPT_KEY_USAGE)?),
        other => return Err(ParseError::Unknown(other.to_string())),
    };
    Ok(Some(command))
}

/// `/create`'s arguments: an optional `--private` first, then the title.
fn create(rest: &str) -> Command {
    let (private, title) = match rest.strip_prefix("--private") {
        Some(after) if after.is_empty() || after.starts_with(char::is_whitespace) => {
            (true, after.trim())
        }
        _ => (false, rest),
    };
    let title = Some(title.to_string()).filter(|t| !t.is_empty());
    Command::Create { title, private }
}

/// `NICK [ID]`, for `/invite` and `/remove`.
fn member_and_room(
    rest: &str,
    usage: &'static str,
) -> Result<(String, Option<RoomId>), ParseError> {
    let mut words = rest.split_whitespace();
    let (Some(nick), room, None) = (words.next(), words.next(), words.next()) else {
        return Err(ParseError::Usage(usage));
    };
    if !valid_name(nick) {
        return Err(ParseError::NotANick(nick.to_string()));
    }
    let room = room.map(self::room).transpose()?;
    Ok((nick.to_string(), room))
}

/// Exactly one nickname, for `/verify` and `/accept-key`.
fn nick(rest: &str, usage: &'static str) -> Result<String, ParseError> {
    let mut words = rest.split_whitespace();
    let (Some(nick), None) = (words.next(), words.next()) else {
        return Err(ParseError::Usage(usage));
    };
    if !valid_name(nick) {
        return Err(ParseError::NotANick(nick.to_string()));
    }
    Ok(nick.to_string())
}

fn room(s: &str) -> Result<RoomId, ParseError> {
    RoomId::parse(s.trim().as_bytes()).ok_or_else(|| ParseError::NotARoom(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Command {
        match parse(line) {
            Ok(Some(c)) => c,
            other => panic!("{line:?} parsed as {other:?}"),
        }
    }

    fn err(line: &str) -> String {
        match parse(line) {
            Err(e) => e.to_string(),
            other => panic!("{line:?} should be refused, parsed as {other:?}"),
        }
    }

    fn id(s: &str) -> RoomId {
        RoomId::parse(s.as_bytes()).expect("a valid room ID")
    }

    #[test]
    fn blank_lines_are_ignored() {
        for line in ["", "\n", "\r\n", "   ", " \t \r\n"] {
            assert_eq!(parse(line), Ok(None), "{line:?}");
        }
    }

    #[test]
    fn plain_text_goes_to_the_room_as_typed() {
        assert_eq!(ok("hello room\r\n"), Command::Say("hello room".into()));
        // Inner and surrounding blanks are the user's; only the line end goes.
        assert_eq!(ok("  two  spaces "), Command::Say("  two  spaces ".into()));
        // Not a command unless the slash comes first.
        assert_eq!(ok(" /quit"), Command::Say(" /quit".into()));
    }

    #[test]
    fn help_and_quit() {
        assert_eq!(ok("/help"), Command::Help);
        assert_eq!(ok("/quit\n"), Command::Quit);
        assert_eq!(ok("/exit"), Command::Quit);
        assert_eq!(ok("/ quit"), Command::Quit);
        assert!(HELP.lines().count() > 10, "one command a line");
        for command in [
            "/create [--private]",
            "/join",
            "/leave",
            "/switch",
            "/rooms",
            "/invite",
            "/remove",
            "/title",
            "/history",
            "/users",
            "/msg",
            "/status",
            "/verify",
            "/accept-key",
            "/quit",
        ] {
            assert!(HELP.contains(command), "/help lists {command}");
        }
    }

    fn create(title: Option<&str>, private: bool) -> Command {
        Command::Create {
            title: title.map(str::to_string),
            private,
        }
    }

    #[test]
    fn create_with_and_without_a_title() {
        assert_eq!(ok("/create"), create(None, false));
        assert_eq!(ok("/create   "), create(None, false));
        assert_eq!(ok("/create  the lobby  "), create(Some("the lobby"), false));
    }

    #[test]
    fn create_private_rooms() {
        assert_eq!(ok("/create --private"), create(None, true));
        assert_eq!(ok("/create --private  "), create(None, true));
        assert_eq!(
            ok("/create --private  secret plans "),
            create(Some("secret plans"), true)
        );
        // Only a whole first word is the flag; elsewhere it is part of the title.
        assert_eq!(
            ok("/create --privateer"),
            create(Some("--privateer"), false)
        );
        assert_eq!(
            ok("/create plans --private"),
            create(Some("plans --private"), false)
        );
    }

    #[test]
    fn invite_and_remove_take_a_nick_and_maybe_a_room() {
        assert_eq!(
            ok("/invite bob"),
            Command::Invite {
                nick: "bob".into(),
                room: None
            }
        );
        assert_eq!(
            ok("/invite  bob  k7qx2m "),
            Command::Invite {
                nick: "bob".into(),
                room: Some(id("K7QX2M"))
            }
        );
        assert_eq!(
            ok("/remove carol.b K7QX2M"),
            Command::Remove {
                nick: "carol.b".into(),
                room: Some(id("K7QX2M"))
            }
        );
        assert_eq!(err("/invite"), "usage: /invite NICK [ID]");
        assert_eq!(err("/remove"), "usage: /remove NICK [ID]");
        assert_eq!(err("/invite bob K7QX2M extra"), "usage: /invite NICK [ID]");
        assert!(err("/invite bob O0O0O0").contains("is not a room ID"));
        assert_eq!(
            err("/remove b@d"),
            format!("\"b@d\" is not a nickname: 1-{MAX_NAME_LEN} letters, digits, '_', '-' or '.'")
        );
    }

    #[test]
    fn title_needs_text() {
        assert_eq!(ok("/title  new name "), Command::Title("new name".into()));
        for line in ["/title", "/title   "] {
            assert_eq!(err(line), "usage: /title TEXT", "{line:?}");
        }
    }

    #[test]
    fn history_takes_an_optional_count() {
        assert_eq!(ok("/history"), Command::History(HISTORY_DEFAULT));
        assert_eq!(ok("/history 5"), Command::History(5));
        assert_eq!(ok("/history 100"), Command::History(100));
        for line in [
            "/history 0",
            "/history 101",
            "/history -1",
            "/history lots",
            "/history 1 2",
        ] {
            assert_eq!(
                err(line),
                "usage: /history [N], N from 1 to 100",
                "{line:?}"
            );
        }
    }

    #[test]
    fn join_leave_and_switch_take_room_ids() {
        assert_eq!(ok("/join K7QX2M"), Command::Join(id("K7QX2M")));
        assert_eq!(ok("/join k7qx2m"), Command::Join(id("K7QX2M")), "any case");
        assert_eq!(ok("/leave"), Command::Leave(None));
        assert_eq!(ok("/leave K7QX2M "), Command::Leave(Some(id("K7QX2M"))));
        assert_eq!(ok("/switch\tK7QX2M"), Command::Switch(id("K7QX2M")));
    }

    #[test]
    fn bad_room_ids_are_explained() {
        let alphabet = String::from_utf8_lossy(ROOM_ALPHABET);
        assert_eq!(
            err("/join O0O0O0"),
            format!("\"O0O0O0\" is not a room ID: 6 characters from {alphabet}")
        );
        for line in [
            "/join",
            "/join K7QX2",
            "/leave K7QX2MM",
            "/switch",
            "/switch a b",
        ] {
            assert!(err(line).contains("is not a room ID"), "{line}");
        }
    }

    #[test]
    fn lists() {
        assert_eq!(ok("/rooms"), Command::Rooms);
        assert_eq!(ok("/users"), Command::Users);
    }

    #[test]
    fn msg_takes_a_nick_and_text() {
        assert_eq!(
            ok("/msg bob  see you at 5 "),
            Command::Msg {
                to: "bob".into(),
                text: "see you at 5".into()
            }
        );
        for line in ["/msg", "/msg bob", "/msg bob   ", "/msg  "] {
            assert_eq!(err(line), "usage: /msg NICK text", "{line:?}");
        }
    }

    #[test]
    fn verify_and_accept_key_take_one_nick() {
        assert_eq!(ok("/verify bob"), Command::Verify("bob".into()));
        assert_eq!(ok("/verify  carol.b "), Command::Verify("carol.b".into()));
        assert_eq!(ok("/accept-key bob"), Command::AcceptKey("bob".into()));
        for line in ["/verify", "/verify bob carol", "/verify   "] {
            assert_eq!(err(line), "usage: /verify NICK", "{line:?}");
        }
        assert_eq!(err("/accept-key"), "usage: /accept-key NICK");
        assert!(err("/verify b@d").contains("is not a nickname"));
        assert!(err("/accept-key b@d").contains("is not a nickname"));
        assert!(ok("/verify bob").is_local(), "nothing is sent");
        assert!(!ok("/accept-key bob").is_local(), "held messages are sent");
    }

    #[test]
    fn status_is_online_or_away() {
        assert_eq!(ok("/status online"), Command::Status(Status::Online));
        assert_eq!(ok("/status away "), Command::Status(Status::Away));
        for line in [
            "/status",
            "/status sleepy",
            "/status offline",
            "/status Away",
        ] {
            assert_eq!(err(line), "usage: /status online|away", "{line:?}");
        }
    }

    #[test]
    fn unknown_commands_are_named() {
        assert_eq!(
            err("/frobnicate now"),
            "unknown command /frobnicate; /help lists them"
        );
        assert_eq!(err("/Help"), "unknown command /Help; /help lists them");
        assert_eq!(err("/"), "unknown command /; /help lists them");
    }

    #[test]
    fn only_help_quit_switch_and_verify_stay_local() {
        assert!(ok("/help").is_local());
        assert!(ok("/quit").is_local());
        assert!(ok("/switch K7QX2M").is_local());
        for line in [
            "hi",
            "/create",
            "/create --private",
            "/join K7QX2M",
            "/leave",
            "/rooms",
            "/users",
            "/invite bob",
            "/remove bob",
            "/title t",
            "/history",
        ] {
            assert!(!ok(line).is_local(), "{line}");
        }
        assert!(!ok("/msg bob hi").is_local());
        assert!(!ok("/status away").is_local());
    }
}
