//! An IRC client for the generator, to drive an IRC server (ngircd) with the same loop,
//! workload and statistics: NICK/USER, JOIN #channel, PRIVMSG.

use std::fmt::Write as _;

use super::endpoint::{Cx, Endpoint, Member, Status};

/// Output queue per connection, in bytes (as for cove).
const OUT: usize = 16 * 1024;
/// Longest line read; IRC allows 512 bytes, servers a little more.
pub const MAX_LINE: usize = 8 * 1024;

/// One generator connection to an IRC server.
pub struct IrcEp {
    out: Vec<u8>,
    pos: usize,
    /// `PRIVMSG #channel :` per room, in the order of [`Member::rooms`].
    prefixes: Vec<Vec<u8>>,
    /// Joins not confirmed (end of NAMES) yet.
    pending: usize,
    ready: bool,
    failure: Option<String>,
    ended: bool,
}

/// The channel of room `r` in run `tag`.
fn channel(tag: &str, r: u32) -> String {
    format!("#{tag}r{r}")
}

fn trim(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

impl IrcEp {
    /// Starts registration of `nick`; the NICK and USER lines are queued.
    pub fn new(nick: &str, tag: &str, me: &Member) -> IrcEp {
        let mut out = Vec::with_capacity(OUT);
        out.extend_from_slice(format!("NICK {nick}\r\nUSER {nick} 0 * :cove bench\r\n").as_bytes());
        let prefixes = me
            .rooms
            .iter()
            .map(|&r| format!("PRIVMSG {} :", channel(tag, r)).into_bytes())
            .collect();
        IrcEp {
            out,
            pos: 0,
            prefixes,
            pending: 0,
            ready: false,
            failure: None,
            ended: false,
        }
    }

    fn push(&mut self, parts: &[&[u8]]) -> bool {
        let len: usize = parts.iter().map(|p| p.len()).sum::<usize>() + 2;
        if self.pos > 0 {
            self.out.drain(..self.pos);
            self.pos = 0;
        }
        if self.out.len() + len > OUT && !self.out.is_empty() {
            return false;
        }
        for p in parts {
            self.out.extend_from_slice(p);
        }
        self.out.extend_from_slice(b"\r\n");
        true
    }

    fn line(&mut self, cx: &mut Cx<'_>, me: &mut Member, line: &[u8]) {
        // [":prefix "] COMMAND params... [" :trailing"]
        let rest = match line.strip_prefix(b":") {
            Some(l) => l.splitn(2, |&b| b == b' ').nth(1).unwrap_or(&[]),
            None => line,
        };
        let mut words = rest.splitn(2, |&b| b == b' ');
        let cmd = words.next().unwrap_or(&[]);
        let params = words.next().unwrap_or(&[]);
        match cmd {
            b"PRIVMSG" => {
                if let Some(i) = params.windows(2).position(|w| w == b" :") {
                    cx.deliver(me, &params[i + 2..]);
                }
            }
            b"PING" => {
                let _ = self.push(&[b"PONG ", params]);
            }
            b"001" => self.ready = true,
            b"366" => self.pending = self.pending.saturating_sub(1),
            b"ERROR" => {
                let why = format!(
                    "the server closed the connection: {}",
                    String::from_utf8_lossy(params)
                );
                self.ended(&why);
            }
            [b'4' | b'5', _, _] => {
                let what = format!("the server refused: {}", String::from_utf8_lossy(rest));
                if cx.running {
                    cx.refused(|| what);
                } else if self.failure.is_none() {
                    self.failure = Some(what);
                }
            }
            _ => {}
        }
    }
}

impl Endpoint for IrcEp {
    fn output(&self) -> &[u8] {
        &self.out[self.pos..]
    }

    fn advance(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.out.len());
        if self.pos == self.out.len() {
            self.out.clear();
            self.pos = 0;
        }
    }

    fn input(&mut self, buf: &mut [u8], cx: &mut Cx<'_>, me: &mut Member) -> usize {
        let Some(end) = buf.iter().position(|&b| b == b'\n') else {
            if buf.len() >= MAX_LINE {
                self.ended("the server sent a line longer than 8 KiB");
            }
            return 0;
        };
        self.line(cx, me, trim(&buf[..=end]));
        end + 1
    }

    fn queue(&mut self, _cx: &mut Cx<'_>, j: usize, body: &[u8]) -> bool {
        if j >= self.prefixes.len() {
            return false;
        }
        let prefix = std::mem::take(&mut self.prefixes[j]);
        let ok = self.push(&[&prefix, body]);
        self.prefixes[j] = prefix;
        ok
    }

    fn create(&mut self, cx: &mut Cx<'_>, me: &Member, j: usize) {
        self.join(cx, me, j);
    }

    fn join(&mut self, _cx: &mut Cx<'_>, me: &Member, j: usize) {
        let Some(prefix) = self.prefixes.get(j) else {
            return;
        };
        // "PRIVMSG #chan :" holds the channel's name.
        let chan = prefix[8..prefix.len() - 2].to_vec();
        let _ = me;
        let mut line = String::new();
        let _ = write!(line, "JOIN {}", String::from_utf8_lossy(&chan));
        if self.push(&[line.as_bytes()]) {
            self.pending += 1;
        }
    }

    fn ended(&mut self, why: &str) {
        if !self.ended {
            self.ended = true;
            if self.failure.is_none() {
                self.failure = Some(why.to_string());
            }
        }
    }

    fn status(&self) -> Status {
        Status {
            ready: self.ready,
            pending: self.pending,
            failure: self.failure.clone(),
        }
    }

    fn closed(&self) -> bool {
        self.ended
    }
}
