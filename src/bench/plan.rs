//! The workload's fixed shape: who is in which room, where each message goes, and the
//! header every message body starts with.
//!
//! Room `r` holds the membership slots `r*M .. (r+1)*M`; slot `m` belongs to client
//! `m % N`. So every room has exactly `M` distinct members (`M <= N`), and a client is in
//! `ceil` or `floor` of `R*M / N` rooms (none when `R*M < N`: it stays idle).

/// Length of the header at the start of every body: sender, room and sequence number
/// (8 hex digits each) and the send time in ns since the common start (16 hex digits).
/// Text, so that it travels unchanged in an IRC `PRIVMSG`.
pub const HEADER_LEN: usize = 40;

/// The shape of a run.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Clients (N).
    pub clients: u32,
    /// Rooms (R).
    pub rooms: u32,
    /// Members per room (M).
    pub members: u32,
    /// Messages each client in a room sends (K).
    pub msgs: u32,
}

impl Plan {
    /// The rooms client `c` is in, in slot order.
    pub fn rooms_of(&self, c: u32) -> Vec<u32> {
        let slots = u64::from(self.rooms) * u64::from(self.members);
        let mut out = Vec::new();
        let mut m = u64::from(c);
        while m < slots {
            // m < R*M, so m / M < R fits in u32.
            out.push(u32::try_from(m / u64::from(self.members)).unwrap_or(u32::MAX));
            m += u64::from(self.clients);
        }
        out
    }

    /// The client holding slot `pos` of room `r`.
    pub fn member(&self, r: u32, pos: u32) -> u32 {
        let m = u64::from(r) * u64::from(self.members) + u64::from(pos);
        (m % u64::from(self.clients)) as u32
    }

    /// Position of client `s` in room `r`, if it is a member.
    pub fn position(&self, s: u32, r: u32) -> Option<u32> {
        let n = u64::from(self.clients);
        let first = u64::from(r) * u64::from(self.members);
        let pos = (u64::from(s) + n - first % n) % n;
        (s < self.clients && r < self.rooms && pos < u64::from(self.members)).then_some(pos as u32)
    }

    /// Whether client `c` creates room `r` (it holds the room's first slot).
    pub fn creates(&self, c: u32, r: u32) -> bool {
        self.member(r, 0) == c
    }

    /// Clients that are in at least one room (and so send).
    pub fn senders(&self) -> u32 {
        let slots = u64::from(self.rooms) * u64::from(self.members);
        slots.min(u64::from(self.clients)) as u32
    }

    /// Messages sent in the whole run.
    pub fn total_msgs(&self) -> u64 {
        u64::from(self.senders()) * u64::from(self.msgs)
    }
}

/// Client `sender`'s message number `k` goes to its room `rooms[k % rooms.len()]` with
/// per-(sender, room) sequence number `k / rooms.len()`.
pub fn route(rooms_len: usize, k: u32) -> (usize, u32) {
    let n = rooms_len.max(1) as u32;
    ((k % n) as usize, k / n)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn put_hex(out: &mut [u8], v: u64) {
    let n = out.len();
    for (i, b) in out.iter_mut().enumerate() {
        let shift = 4 * (n - 1 - i);
        *b = HEX[((v >> shift) & 0xf) as usize];
    }
}

fn get_hex(inp: &[u8]) -> Option<u64> {
    let mut v: u64 = 0;
    for &b in inp {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        v = (v << 4) | u64::from(d);
    }
    Some(v)
}

/// What a body's header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Sending client.
    pub sender: u32,
    /// Room index.
    pub room: u32,
    /// Sequence number per (sender, room), from 0.
    pub seq: u32,
    /// Send time, ns since the common start.
    pub sent_ns: u64,
}

impl Header {
    /// Writes the header into the first [`HEADER_LEN`] bytes of `body`.
    pub fn write(&self, body: &mut [u8]) {
        if body.len() < HEADER_LEN {
            return;
        }
        put_hex(&mut body[0..8], u64::from(self.sender));
        put_hex(&mut body[8..16], u64::from(self.room));
        put_hex(&mut body[16..24], u64::from(self.seq));
        put_hex(&mut body[24..40], self.sent_ns);
    }

    /// Reads the header of `body`, if it has one.
    pub fn read(body: &[u8]) -> Option<Header> {
        let h = body.get(..HEADER_LEN)?;
        Some(Header {
            sender: u32::try_from(get_hex(&h[0..8])?).ok()?,
            room: u32::try_from(get_hex(&h[8..16])?).ok()?,
            seq: u32::try_from(get_hex(&h[16..24])?).ok()?,
            sent_ns: get_hex(&h[24..40])?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let h = Header {
            sender: 9_999,
            room: 77,
            seq: 123_456,
            sent_ns: 0x0123_4567_89ab_cdef,
        };
        let mut body = [b'.'; 50];
        h.write(&mut body);
        assert_eq!(Header::read(&body), Some(h));
        assert_eq!(Header::read(&body[..39]), None);
        body[3] = b'x';
        assert_eq!(Header::read(&body), None);
    }

    #[test]
    fn rooms_are_full_and_positions_invert_members() {
        for (n, r, m) in [(200, 10, 20), (10, 3, 7), (5, 1, 5), (30, 2, 4)] {
            let p = Plan {
                clients: n,
                rooms: r,
                members: m,
                msgs: 1,
            };
            let mut count = vec![0u32; r as usize];
            for c in 0..n {
                for room in p.rooms_of(c) {
                    count[room as usize] += 1;
                    let pos = p.position(c, room).expect("member");
                    assert_eq!(p.member(room, pos), c);
                }
            }
            assert!(count.iter().all(|&k| k == m), "{n} {r} {m}: {count:?}");
            let members_total: u32 = (0..n).filter(|&c| !p.rooms_of(c).is_empty()).count() as u32;
            assert_eq!(members_total, p.senders());
        }
    }
}
