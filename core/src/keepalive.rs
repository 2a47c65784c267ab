//! Keepalive: ping a quiet peer, give up on a silent one. Shared by client and server.

use crate::time::{Duration, Instant};

/// What the keepalive timer asks for when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeepaliveAction {
    /// Nothing to do yet.
    Idle,
    /// Send a `Ping` with this nonce.
    SendPing(u64),
    /// Nothing was heard for the idle timeout: close the connection.
    TimedOut,
}

/// Tracks when the peer was last heard from and when to ping it.
#[derive(Clone, Debug)]
pub struct Keepalive {
    last_heard: Instant,
    last_ping: Option<Instant>,
    ping_interval: Duration,
    idle_timeout: Duration,
    nonce: u64,
}

impl Keepalive {
    /// Starts the clock at `now`.
    pub fn new(now: Instant, ping_interval: Duration, idle_timeout: Duration) -> Keepalive {
        Keepalive {
            last_heard: now,
            last_ping: None,
            ping_interval,
            idle_timeout,
            nonce: 0,
        }
    }

    /// Anything arrived from the peer.
    pub fn heard(&mut self, now: Instant) {
        self.last_heard = self.last_heard.max(now);
        self.last_ping = None;
    }

    /// The next instant [`Keepalive::handle_timeout`] has work to do.
    pub fn poll_timeout(&self) -> Instant {
        let give_up = self.last_heard + self.idle_timeout;
        match self.last_ping {
            Some(_) => give_up,
            None => give_up.min(self.last_heard + self.ping_interval),
        }
    }

    /// Advances the timer.
    pub fn handle_timeout(&mut self, now: Instant) -> KeepaliveAction {
        if now >= self.last_heard + self.idle_timeout {
            return KeepaliveAction::TimedOut;
        }
        if self.last_ping.is_none() && now >= self.last_heard + self.ping_interval {
            self.last_ping = Some(now);
            self.nonce = self.nonce.wrapping_add(1);
            return KeepaliveAction::SendPing(self.nonce);
        }
        KeepaliveAction::Idle
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_once_then_times_out_unless_heard() {
        let mut k = Keepalive::new(Instant(0), Duration(10), Duration(25));
        assert_eq!(k.poll_timeout(), Instant(10));
        assert_eq!(k.handle_timeout(Instant(9)), KeepaliveAction::Idle);
        assert_eq!(k.handle_timeout(Instant(10)), KeepaliveAction::SendPing(1));
        assert_eq!(k.poll_timeout(), Instant(25));
        assert_eq!(k.handle_timeout(Instant(20)), KeepaliveAction::Idle);
        k.heard(Instant(21));
        assert_eq!(k.poll_timeout(), Instant(31));
        assert_eq!(k.handle_timeout(Instant(31)), KeepaliveAction::SendPing(2));
        assert_eq!(k.handle_timeout(Instant(46)), KeepaliveAction::TimedOut);
    }
}
