//! Admission: fair shares of the server for every source address. One address cannot hold
//! the connection cap with idle sockets, cannot starve logins by filling the share kept
//! for unauthenticated connections, and cannot register accounts or start handshakes
//! faster than its budget — however it paces itself.

use alloc::collections::BTreeMap;

use crate::hub::ConnId;
use crate::rate::TokenBucket;
use crate::time::{Duration, Instant};
use crate::wire::ErrorCode;

/// A source address as admission counts it: an IPv4 address whole, an IPv6 address by
/// its /64 prefix (one subscriber usually holds a whole /64).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourceAddr([u8; 16]);

impl SourceAddr {
    /// A connection whose source the adapter cannot tell (a stream that is not TCP): only
    /// the server-wide limits apply to it.
    pub const UNKNOWN: SourceAddr = SourceAddr([0; 16]);

    /// An IPv4 source.
    pub fn ipv4(octets: [u8; 4]) -> SourceAddr {
        let mut a = [0u8; 16];
        a[10] = 0xff;
        a[11] = 0xff;
        a[12..].copy_from_slice(&octets);
        SourceAddr(a)
    }

    /// An IPv6 source, keyed by its /64 prefix; an IPv4-mapped address counts as IPv4.
    pub fn ipv6(octets: [u8; 16]) -> SourceAddr {
        if octets[..10] == [0; 10] && octets[10..12] == [0xff, 0xff] {
            return SourceAddr(octets);
        }
        let mut a = [0u8; 16];
        a[..8].copy_from_slice(&octets[..8]);
        SourceAddr(a)
    }
}

#[cfg(feature = "std")]
impl From<std::net::IpAddr> for SourceAddr {
    fn from(ip: std::net::IpAddr) -> SourceAddr {
        match ip {
            std::net::IpAddr::V4(v4) => SourceAddr::ipv4(v4.octets()),
            std::net::IpAddr::V6(v6) => SourceAddr::ipv6(v6.octets()),
        }
    }
}

/// The fair-share limits. Defaults suit a server for up to a few hundred people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdmissionConfig {
    /// Most connections open at once; one more is refused with `LimitReached`.
    /// Default 1024.
    pub max_connections: usize,
    /// Most connections from one source address, logged in or not. Default 64.
    pub max_per_addr: usize,
    /// Most connections still in their handshake, server-wide: the rest of
    /// `max_connections` is kept for logged-in users, so idle sockets cannot keep anyone
    /// from logging in. Default 256.
    pub max_unauthenticated: usize,
    /// Most connections still in their handshake from one source address. Default 8.
    pub max_unauthenticated_per_addr: usize,
    /// New connections (each one a handshake) per second from one address, steady
    /// state. Default 5.
    pub handshakes_per_sec: u32,
    /// New connections one address may open in a burst. Default 20.
    pub handshake_burst: u32,
    /// One registration per this long from one address, steady state. Default 60 s.
    pub registration_every: Duration,
    /// Registrations one address may make in a burst. Default 5.
    pub registration_burst: u32,
    /// Most source addresses remembered (their budgets outlive their connections, so
    /// reconnecting does not refill them). Default 65,536.
    pub max_tracked_addrs: usize,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            max_connections: 1024,
            max_per_addr: 64,
            max_unauthenticated: 256,
            max_unauthenticated_per_addr: 8,
            handshakes_per_sec: 5,
            handshake_burst: 20,
            registration_every: Duration::from_secs(60),
            registration_burst: 5,
            max_tracked_addrs: 65_536,
        }
    }
}

/// What admission remembers of one source address.
#[derive(Debug)]
struct AddrState {
    conns: usize,
    unauthenticated: usize,
    handshakes: TokenBucket,
    registrations: TokenBucket,
    last_seen: Instant,
}

/// A connection admission knows.
#[derive(Clone, Copy, Debug)]
struct Admitted {
    addr: SourceAddr,
    authenticated: bool,
}

/// Counts connections per source address and enforces [`AdmissionConfig`].
#[derive(Debug)]
pub(super) struct Admission {
    config: AdmissionConfig,
    addrs: BTreeMap<SourceAddr, AddrState>,
    conns: BTreeMap<ConnId, Admitted>,
    unauthenticated: usize,
}

impl Admission {
    pub(super) fn new(config: AdmissionConfig) -> Admission {
        Admission {
            config,
            addrs: BTreeMap::new(),
            conns: BTreeMap::new(),
            unauthenticated: 0,
        }
    }

    /// Connections open now.
    pub(super) fn open(&self) -> usize {
        self.conns.len()
    }

    /// A new connection from `addr`: admitted, or the code to refuse it with.
    pub(super) fn accept(
        &mut self,
        now: Instant,
        conn: ConnId,
        addr: SourceAddr,
    ) -> Result<(), ErrorCode> {
        let c = &self.config;
        if self.conns.len() >= c.max_connections || self.unauthenticated >= c.max_unauthenticated {
            return Err(ErrorCode::LimitReached);
        }
        if addr == SourceAddr::UNKNOWN {
            self.admit(conn, addr);
            return Ok(());
        }
        if !self.addrs.contains_key(&addr) {
            self.make_room(now);
        }
        let c = &self.config;
        let state = self.addrs.entry(addr).or_insert_with(|| AddrState {
            conns: 0,
            unauthenticated: 0,
            handshakes: TokenBucket::new(now, c.handshakes_per_sec, c.handshake_burst),
            registrations: TokenBucket::every(now, c.registration_every, c.registration_burst),
            last_seen: now,
        });
        state.last_seen = now;
        if state.conns >= c.max_per_addr || state.unauthenticated >= c.max_unauthenticated_per_addr
        {
            return Err(ErrorCode::LimitReached);
        }
        if !state.handshakes.try_take(now) {
            return Err(ErrorCode::RateLimited);
        }
        state.conns += 1;
        state.unauthenticated += 1;
        self.admit(conn, addr);
        Ok(())
    }

    fn admit(&mut self, conn: ConnId, addr: SourceAddr) {
        self.unauthenticated += 1;
        let admitted = Admitted {
            addr,
            authenticated: false,
        };
        self.conns.insert(conn, admitted);
    }

    /// The connection finished its handshake. For a registration, whether its address
    /// still has budget (`Err(RateLimited)` when not). Connections admission never saw
    /// (accepted before it existed, or by a test) are not limited.
    pub(super) fn authenticated(
        &mut self,
        now: Instant,
        conn: ConnId,
        register: bool,
    ) -> Result<(), ErrorCode> {
        let Some(admitted) = self.conns.get_mut(&conn) else {
            return Ok(());
        };
        if !admitted.authenticated {
            admitted.authenticated = true;
            self.unauthenticated -= 1;
            if let Some(state) = self.addrs.get_mut(&admitted.addr) {
                state.unauthenticated -= 1;
            }
        }
        let Some(state) = self.addrs.get_mut(&admitted.addr) else {
            return Ok(());
        };
        state.last_seen = now;
        if register && !state.registrations.try_take(now) {
            return Err(ErrorCode::RateLimited);
        }
        Ok(())
    }

    /// The connection closed.
    pub(super) fn closed(&mut self, now: Instant, conn: ConnId) {
        let Some(admitted) = self.conns.remove(&conn) else {
            return;
        };
        if !admitted.authenticated {
            self.unauthenticated -= 1;
        }
        if let Some(state) = self.addrs.get_mut(&admitted.addr) {
            state.conns -= 1;
            state.last_seen = now;
            if !admitted.authenticated {
                state.unauthenticated -= 1;
            }
        }
    }

    /// Forgets addresses without connections when the table is full: first those idle
    /// long enough for their budgets to have refilled, then the longest idle.
    fn make_room(&mut self, now: Instant) {
        if self.addrs.len() < self.config.max_tracked_addrs {
            return;
        }
        let refill = self
            .config
            .registration_every
            .micros()
            .saturating_mul(u64::from(self.config.registration_burst));
        self.addrs
            .retain(|_, s| s.conns > 0 || now.saturating_since(s.last_seen).micros() < refill);
        if self.addrs.len() >= self.config.max_tracked_addrs {
            let oldest = self
                .addrs
                .iter()
                .filter(|(_, s)| s.conns == 0)
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(a, _)| *a);
            if let Some(a) = oldest {
                self.addrs.remove(&a);
            }
        }
    }
}

#[cfg(test)]
mod tests;
