//! The shape of a port of the cove client to a microcontroller, built by CI for
//! `thumbv7em-none-eabihf` with no standard library and no allocator:
//!
//! ```text
//! cargo build -p cove-core --example board --release --no-default-features \
//!     --features embedded-io --target thumbv7em-none-eabihf
//! ```
//!
//! What a port provides (docs/PORTING.md): a monotonic clock ([`Clock`]), a random
//! generator ([`rand_core::TryCryptoRng`]), a socket (embedded-io's `Read` and `Write`,
//! plus [`ReadTimeout`]) and fixed buffers. The three here are stubs, so that the program
//! links without a board: a real port wires its SysTick or RTC, its TRNG peripheral and
//! its TCP stack (smoltcp, embassy-net, a modem's socket) in their place. The stubs hide
//! their values from the optimizer, so the whole client stays in the binary and its size
//! is what a port pays. Everything else is the core's blocking driver.
//!
//! On a host, `cargo run -p cove-core --example board` prints the memory this client
//! takes on that host instead.
#![cfg_attr(target_os = "none", no_std, no_main)]

use core::convert::Infallible;
use core::hint::black_box;

use cove_core::Instant;
use cove_core::blocking::{BlockingClient, Clock, Login, ReadTimeout};
use cove_core::client::{Client, ClientConfig, ClientEvent};
use cove_core::crypto::{Identity, RUST_CRYPTO, Suite};
use cove_core::time::Duration;
use cove_core::wire::{AuthMode, HEADER_LEN, RoomId, ServerMsg};
use embedded_io::{ErrorKind, ErrorType, Read, Write};

/// The largest frame this board reads, announced to the server in the handshake.
const FRAME_LIMIT: usize = 4096;
/// The largest message it sends (bodies a little under this).
const MSG: usize = 2048;
/// Its transmit queue: one sealed message and room for acks and pings behind it.
const TX: usize = MSG + 512;

/// The client state machine as this board sizes it.
type BoardClient = Client<TX, MSG>;
/// The receive buffer: one whole frame.
type RxBuffer = [u8; FRAME_LIMIT + HEADER_LEN];

/// The board's clock (stub: a counter; a board reads its SysTick or RTC).
struct SysTick(u64);

impl Clock for SysTick {
    fn now(&mut self) -> Instant {
        self.0 = black_box(self.0 + 1_000);
        Instant(self.0)
    }
}

/// The board's random generator (STUB: not random at all; a board reads its TRNG
/// peripheral here, and must never ship this).
struct Trng;

impl rand_core::TryRng for Trng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(black_box(0))
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(black_box(0))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        black_box(dst);
        Ok(())
    }
}

impl rand_core::TryCryptoRng for Trng {}

/// The board's TCP socket (stub: the optimizer cannot see what it reads).
struct Socket;

impl ErrorType for Socket {
    type Error = ErrorKind;
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        let n = black_box(buf.len());
        black_box(&mut *buf);
        Ok(n.min(buf.len()))
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        Ok(black_box(buf).len())
    }
    fn flush(&mut self) -> Result<(), ErrorKind> {
        Ok(())
    }
}

impl ReadTimeout for Socket {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> Result<(), ErrorKind> {
        black_box(timeout);
        Ok(())
    }
}

/// What the board does: log in, join a room, greet it, then echo what it hears (and
/// acknowledge each message once shown) until the connection closes.
fn run(rx: &mut RxBuffer) {
    let mut config = ClientConfig::new(Suite::ChaChaPoly, AuthMode::Login);
    config.max_frame = FRAME_LIMIT as u32;
    let mut rng = Trng;
    // A board keeps its identity in flash; it is made once, with the TRNG.
    let identity = Identity::generate(&mut rng);
    let login = Login {
        config,
        provider: &RUST_CRYPTO,
        identity: &identity,
        name: "board",
        rng: &mut rng,
    };
    let ignore = |_: &mut BoardClient, _: Instant, _: ClientEvent<'_>| {};
    let Ok((mut bc, _welcome)) = BlockingClient::connect(Socket, SysTick(0), rx, login, ignore)
    else {
        return;
    };
    let Some(room) = RoomId::parse(black_box(b"BOARD2")) else {
        return;
    };
    let _ = bc.command(|c, now| c.join_room(now, room));
    let _ = bc.command(|c, now| c.send_room(now, room, b"hello from a board"));
    while let Ok(true) = bc.poll(|client, now, ev| {
        if let ClientEvent::Message(ServerMsg::RoomMessage { seq, body, .. }) = ev {
            let _ = client.send_room(now, room, body);
            let _ = client.ack_room(now, room, seq);
        }
    }) {}
}

/// The reset handler a board's runtime (or its vector table) calls.
#[cfg(target_os = "none")]
fn reset() -> ! {
    let mut rx: RxBuffer = [0; FRAME_LIMIT + HEADER_LEN];
    loop {
        run(&mut rx);
    }
}

/// Kept by the linker, so `reset` and everything it calls are in the binary.
#[cfg(target_os = "none")]
#[used]
static RESET: fn() -> ! = reset;

/// The memory the client takes, measured by `size_of` on the target it was built for
/// (docs/PORTING.md reads it out of the board's ELF): this board's client, its receive
/// buffer and its driver; a client that also sends 4 KiB messages; then the default
/// [`Client`] and a receive buffer for the default 64 KiB frame limit.
#[used]
static RAM: [usize; 6] = [
    core::mem::size_of::<BoardClient>(),
    core::mem::size_of::<RxBuffer>(),
    core::mem::size_of::<BlockingClient<'static, Socket, SysTick, TX, MSG>>(),
    core::mem::size_of::<Client<{ FRAME_LIMIT + 512 }, FRAME_LIMIT>>(),
    core::mem::size_of::<Client>(),
    cove_core::wire::DEFAULT_MAX_FRAME as usize + HEADER_LEN,
];

#[cfg(target_os = "none")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[cfg(not(target_os = "none"))]
fn main() {
    let [client, rx, driver, client_4k, default_client, default_rx] = RAM;
    println!("on this host, the board client ({FRAME_LIMIT}-byte frames):");
    println!("  Client<{TX}, {MSG}>: {client} bytes");
    println!("  receive buffer: {rx} bytes");
    println!("  BlockingClient (client, socket, clock, buffer reference): {driver} bytes");
    println!("  total: {} bytes", driver + rx);
    println!("  (sending 4 KiB messages too, Client<4608, 4096>: {client_4k} bytes)");
    println!("the default client (64 KiB frames):");
    println!("  Client (32 KiB queue, 8 KiB messages): {default_client} bytes");
    println!("  receive buffer: {default_rx} bytes");
    println!("  total: {} bytes", default_client + default_rx);
    let _ = run;
}
