//! Parsing one input line of `cove chat` into a typed [`Command`]; no I/O here, so every
//! command and every wrong argument can be tested without a connection.

use std::fmt;

use cove_core::wire::{ROOM_ALPHABET, RoomId, Status};

/// What `/help` prints, one command a line.
pub(super) const HELP: &str = "\
commands:
  /create [title]     create a room and enter it
  /join ID            join a room by its 6-character ID
  /leave [ID]         leave a room (default: the current one)
  /switch ID          make a room you are in the current one
  /rooms              list rooms
  /users              list users and their status
  /msg NICK text      send a direct message (queued if NICK is offline)
  /status online|away set your presence
  /help               this list
  /quit               log out and exit
anything else is sent to the current room.";

/// One input line, understood.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Command {
    /// Plain text for the current room, exactly as typed (only the line end removed).
    Say(String),
    /// `/help`.
    Help,
    /// `/quit` or `/exit`.
    Quit,
    /// `/create [title]`; `None` asks for the default title.
    Create(Option<String>),
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
}

impl Command {
    /// Whether the command is answered on this side only, so it needs no token from the
    /// request pacer.
    pub(super) fn is_local(&self) -> bool {
        matches!(self, Command::Help | Command::Quit | Command::Switch(_))
    }
}

/// Why a line is not a valid command; its `Display` is the message shown to the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum ParseError {
    /// `/name` is not a command.
    Unknown(String),
    /// The argument should have been a room ID.
    NotARoom(String),
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
            ParseError::Usage(usage) => write!(f, "usage: {usage}"),
        }
    }
}

const MSG_USAGE: &str = "/msg NICK text";
const STATUS_USAGE: &str = "/status online|away";

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
        "create" if rest.is_empty() => Command::Create(None),
        "create" => Command::Create(Some(rest.to_string())),
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
        other => return Err(ParseError::Unknown(other.to_string())),
    };
    Ok(Some(command))
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
    }

    #[test]
    fn create_with_and_without_a_title() {
        assert_eq!(ok("/create"), Command::Create(None));
        assert_eq!(ok("/create   "), Command::Create(None));
        assert_eq!(
            ok("/create  the lobby  "),
            Command::Create(Some("the lobby".into()))
        );
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
    fn only_help_quit_and_switch_stay_local() {
        assert!(ok("/help").is_local());
        assert!(ok("/quit").is_local());
        assert!(ok("/switch K7QX2M").is_local());
        for line in [
            "hi",
            "/create",
            "/join K7QX2M",
            "/leave",
            "/rooms",
            "/users",
        ] {
            assert!(!ok(line).is_local(), "{line}");
        }
        assert!(!ok("/msg bob hi").is_local());
        assert!(!ok("/status away").is_local());
    }
}
