//! A blocking client driver over the `embedded-io` traits (feature `embedded-io`): the
//! loop every port of the client runs, written once. It needs no allocator; the port
//! brings the socket, the clock, the RNG and the receive buffer.
//!
//! ```text
//! connect:  Client::new → write the SYN → poll until LoggedIn (or Closed, or the
//!           handshake deadline)
//! poll:     write what is pending → bound the read by poll_timeout() → read
//!           → handle_input until it consumes nothing (one event per frame)
//!           → handle_timeout when due → drain poll_event → write what is pending
//! ```
//!
//! Commands go through [`BlockingClient::client`] (join, send, ack, logout): they queue
//! records, which the next [`BlockingClient::poll`] or [`BlockingClient::flush`] writes.

use core::fmt;

use embedded_io::{Error as _, ErrorKind, ErrorType, Read, Write};
use rand_core::CryptoRng;

use crate::client::{Client, ClientConfig, ClientError, ClientEvent, ClientState};
use crate::crypto::{CryptoProvider, Identity};
use crate::handshake::HandshakeError;
use crate::time::{Duration, Instant};
use crate::wire::{AuthMode, ErrorCode, HEADER_LEN};

/// The board's monotonic clock.
pub trait Clock {
    /// The current time. Any origin will do, but it must never go backwards.
    fn now(&mut self) -> Instant;
}

/// What the driver needs of a socket besides [`Read`] and [`Write`]: a bound on how long
/// the next read may block, so that keepalive and the handshake deadline run on time.
pub trait ReadTimeout: ErrorType {
    /// The next `read` should give up after `timeout` (`None`: wait for data or EOF)
    /// with an error that [`ReadTimeout::is_timeout`] recognises. A socket that cannot
    /// time out may ignore this: the client's timers then run when data arrives.
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> Result<(), Self::Error>;

    /// Whether `e` says only that a read timed out (the connection is fine). By default,
    /// `TimedOut` and `Interrupted`.
    fn is_timeout(e: &Self::Error) -> bool {
        matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::Interrupted)
    }
}

/// Why the driver stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DriveError<E> {
    /// The socket failed.
    Io(E),
    /// The receive buffer cannot hold the largest frame the client accepts
    /// (`config.max_frame` plus the 5-byte header).
    BufferTooSmall {
        /// Bytes the buffer needs.
        needed: usize,
    },
    /// The handshake could not start (an invalid name, a frame limit below the minimum).
    Handshake(HandshakeError),
    /// The connection closed before the login completed.
    Closed {
        /// Why.
        code: ErrorCode,
        /// Whether the server closed it (or vanished), rather than this side.
        by_peer: bool,
    },
}

impl<E: fmt::Debug> fmt::Display for DriveError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DriveError::Io(e) => write!(f, "socket error: {e:?}"),
            DriveError::BufferTooSmall { needed } => {
                write!(f, "receive buffer too small: {needed} bytes needed")
            }
            DriveError::Handshake(e) => write!(f, "cannot start the handshake: {e}"),
            DriveError::Closed { code, by_peer } => {
                let who = if *by_peer { "server" } else { "client" };
                write!(f, "closed by the {who} before the login: {code}")
            }
        }
    }
}

impl<E: fmt::Debug> core::error::Error for DriveError<E> {}

/// What the login told the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoggedIn {
    /// The server's proven Ed25519 key: pin it (the first time) or compare it.
    pub server_key: [u8; 32],
    /// Register or login.
    pub mode: AuthMode,
    /// Direct messages queued while offline; they follow.
    pub pending: u32,
}

/// Who the client is and how it connects: everything [`BlockingClient::connect`] needs
/// besides the socket, the clock and the buffer.
pub struct Login<'a, R> {
    /// The client's settings; `config.max_frame` is announced to the server.
    pub config: ClientConfig,
    /// The crypto provider, usually [`crate::crypto::RUST_CRYPTO`].
    pub provider: &'static dyn CryptoProvider,
    /// The account's identity key.
    pub identity: &'a Identity,
    /// The nickname.
    pub name: &'a str,
    /// The board's random number generator.
    pub rng: &'a mut R,
}

/// A logged-in client driven over a blocking socket. `TX` and `MSG` size the client's
/// transmit queue and largest outgoing message (see [`Client`]); the receive buffer is
/// the port's, at least `config.max_frame + 5` bytes.
pub struct BlockingClient<'b, S, C, const TX: usize, const MSG: usize> {
    socket: S,
    clock: C,
    client: Client<TX, MSG>,
    rx: &'b mut [u8],
    filled: usize,
}

impl<'b, S, C, const TX: usize, const MSG: usize> BlockingClient<'b, S, C, TX, MSG>
where
    S: Read + Write + ReadTimeout,
    C: Clock,
{
    /// Runs the handshake and the register-or-login on a connected `socket`. Events
    /// that arrive with the login (none today) are passed to `on_event`.
    pub fn connect<R: CryptoRng>(
        socket: S,
        mut clock: C,
        rx: &'b mut [u8],
        login: Login<'_, R>,
        mut on_event: impl FnMut(&mut Client<TX, MSG>, Instant, ClientEvent<'_>),
    ) -> Result<(Self, LoggedIn), DriveError<S::Error>> {
        let needed = login.config.max_frame as usize + HEADER_LEN;
        if rx.len() < needed {
            return Err(DriveError::BufferTooSmall { needed });
        }
        let now = clock.now();
        let client = Client::new(
            now,
            login.config,
            login.provider,
            login.identity,
            login.name,
            login.rng,
        )
        .map_err(DriveError::Handshake)?;
        let mut this = BlockingClient {
            socket,
            clock,
            client,
            rx,
            filled: 0,
        };
        let mut welcome = None;
        let mut closed = None;
        let mut open = true;
        while open && welcome.is_none() && closed.is_none() {
            open = this.poll(|client, now, ev| match ev {
                ClientEvent::LoggedIn {
                    server_key,
                    mode,
                    pending,
                } => {
                    welcome = Some(LoggedIn {
                        server_key,
                        mode,
                        pending,
                    })
                }
                ClientEvent::Closed { code, by_peer } => closed = Some((code, by_peer)),
                other => on_event(client, now, other),
            })?;
        }
        match (welcome, closed) {
            (Some(w), _) => Ok((this, w)),
            (None, Some((code, by_peer))) => Err(DriveError::Closed { code, by_peer }),
            (None, None) => Err(DriveError::Closed {
                code: ErrorCode::ConnectionTerminated,
                by_peer: true,
            }),
        }
    }

    /// The client, to send commands (they are written by the next `poll` or `flush`).
    pub fn client(&mut self) -> &mut Client<TX, MSG> {
        &mut self.client
    }

    /// The time on the port's clock, for commands.
    pub fn now(&mut self) -> Instant {
        self.clock.now()
    }

    /// Whether the connection is closed (nothing more will happen).
    pub fn is_closed(&self) -> bool {
        self.client.state() == ClientState::Closed
    }

    /// Writes everything the client has queued, blocking until the socket took it.
    pub fn flush(&mut self) -> Result<(), DriveError<S::Error>> {
        let pending = self.client.pending_transmit();
        if pending.is_empty() {
            return Ok(());
        }
        let n = pending.len();
        self.socket.write_all(pending).map_err(DriveError::Io)?;
        self.client.advance_transmit(n);
        self.socket.flush().map_err(DriveError::Io)
    }

    /// One round: writes what is pending, waits for input at most until the client's
    /// next timer, feeds every whole frame to the client, fires due timers, hands each
    /// event to `on_event` (its data borrows the receive buffer; the `&mut Client` lets
    /// it answer, e.g. acknowledge), and writes what that queued. Returns whether the
    /// connection is still open; a socket error closes the client and is returned.
    pub fn poll(
        &mut self,
        mut on_event: impl FnMut(&mut Client<TX, MSG>, Instant, ClientEvent<'_>),
    ) -> Result<bool, DriveError<S::Error>> {
        self.flush()?;
        if self.is_closed() {
            return Ok(false);
        }
        let now = self.clock.now();
        let wait = self.client.poll_timeout().map(|t| t - now);
        if wait != Some(Duration::ZERO) {
            self.socket.set_read_timeout(wait).map_err(DriveError::Io)?;
            match self.socket.read(&mut self.rx[self.filled..]) {
                Ok(0) => self.client.handle_eof(self.clock.now()),
                Ok(n) => {
                    self.filled += n;
                    self.feed(&mut on_event);
                }
                Err(e) if S::is_timeout(&e) => {}
                Err(e) => {
                    self.client.handle_eof(self.clock.now());
                    self.drain(&mut on_event);
                    return Err(DriveError::Io(e));
                }
            }
        }
        let now = self.clock.now();
        if self.client.poll_timeout().is_some_and(|t| t <= now) {
            self.client.handle_timeout(now);
        }
        self.drain(&mut on_event);
        self.flush()?;
        Ok(!self.is_closed())
    }

    /// Feeds the buffered bytes to the client, one frame at a time, keeping a partial
    /// frame at the front of the buffer for the next read.
    fn feed(&mut self, on_event: &mut impl FnMut(&mut Client<TX, MSG>, Instant, ClientEvent<'_>)) {
        let now = self.clock.now();
        loop {
            let input = self.client.handle_input(now, &mut self.rx[..self.filled]);
            let used = input.consumed;
            if let Some(ev) = input.event {
                on_event(&mut self.client, now, ev);
            }
            if used == 0 {
                break;
            }
            self.rx.copy_within(used..self.filled, 0);
            self.filled -= used;
        }
        if self.filled == self.rx.len() {
            // A whole buffer and no frame in it: the length prefix promised more than
            // the client accepts (the client refuses that itself; this is the backstop).
            self.client.close(now, ErrorCode::FrameTooLarge);
        }
    }

    /// Hands the events not tied to a frame (a close from a timer) to `on_event`.
    fn drain(&mut self, on_event: &mut impl FnMut(&mut Client<TX, MSG>, Instant, ClientEvent<'_>)) {
        let now = self.clock.now();
        while let Some(ev) = self.client.poll_event() {
            on_event(&mut self.client, now, ev);
        }
    }

    /// Runs a command against the client with the current time, e.g.
    /// `bc.command(|c, now| c.send_room(now, room, b"hi"))`.
    pub fn command<T>(
        &mut self,
        f: impl FnOnce(&mut Client<TX, MSG>, Instant) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        let now = self.clock.now();
        f(&mut self.client, now)
    }

    /// Gives back the socket and the clock (after a close, to reconnect).
    pub fn into_parts(self) -> (S, C) {
        (self.socket, self.clock)
    }
}

#[cfg(test)]
mod tests {
    use core::cell::Cell;

    use super::*;
    use crate::crypto::{RUST_CRYPTO, Suite};
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    /// The test's clock, in microseconds, shared by the socket and the driver.
    #[derive(Clone, Copy)]
    struct Shared<'a>(&'a Cell<u64>);

    impl Clock for Shared<'_> {
        fn now(&mut self) -> Instant {
            Instant(self.0.get())
        }
    }

    /// A socket that takes every byte written and never has anything to read: each read
    /// times out after the timeout it was given, on the test's clock.
    struct Silent<'a> {
        timeout: Option<Duration>,
        clock: Shared<'a>,
    }

    impl ErrorType for Silent<'_> {
        type Error = ErrorKind;
    }

    impl Read for Silent<'_> {
        fn read(&mut self, _buf: &mut [u8]) -> Result<usize, ErrorKind> {
            let Some(t) = self.timeout else {
                return Err(ErrorKind::Other); // it would block forever
            };
            self.clock.0.set(self.clock.0.get() + t.micros());
            Err(ErrorKind::TimedOut)
        }
    }

    impl Write for Silent<'_> {
        fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
            Ok(buf.len())
        }
        fn flush(&mut self) -> Result<(), ErrorKind> {
            Ok(())
        }
    }

    impl ReadTimeout for Silent<'_> {
        fn set_read_timeout(&mut self, timeout: Option<Duration>) -> Result<(), ErrorKind> {
            self.timeout = timeout;
            Ok(())
        }
    }

    type Small<'b, 'c> = BlockingClient<'b, Silent<'c>, Shared<'c>, 2048, 1024>;

    fn connect(rx: &mut [u8], now: &Cell<u64>) -> Result<(), DriveError<ErrorKind>> {
        let clock = Shared(now);
        let socket = Silent {
            timeout: None,
            clock,
        };
        let mut config = ClientConfig::new(Suite::ChaChaPoly, AuthMode::Register);
        config.max_frame = 4096;
        let id = Identity::from_bytes(&[9; 64]);
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        let login = Login {
            config,
            provider: &RUST_CRYPTO,
            identity: &id,
            name: "board",
            rng: &mut rng,
        };
        Small::connect(socket, clock, rx, login, |_, _, _| {}).map(|_| ())
    }

    #[test]
    fn a_silent_server_hits_the_handshake_deadline_on_the_ports_clock() {
        let now = Cell::new(5);
        let mut rx = [0u8; 4096 + HEADER_LEN];
        assert_eq!(
            connect(&mut rx, &now),
            Err(DriveError::Closed {
                code: ErrorCode::HandshakeTimeout,
                by_peer: false
            })
        );
        // The read waited exactly until the deadline (10 s by default), not longer.
        assert_eq!(now.get(), 5 + Duration::from_secs(10).micros());
    }

    #[test]
    fn a_buffer_smaller_than_a_frame_is_refused_up_front() {
        let now = Cell::new(0);
        let mut rx = [0u8; 4096];
        assert_eq!(
            connect(&mut rx, &now),
            Err(DriveError::BufferTooSmall { needed: 4101 })
        );
        assert_eq!(now.get(), 0);
    }
}
