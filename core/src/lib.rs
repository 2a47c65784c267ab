//! cove-core: the sans-IO protocol core of cove.
//!
//! No clock, no RNG, no IO inside: every input carries `now` ([`time::Instant`]),
//! randomness comes in as `&mut impl CryptoRng`, and bytes go in and out through
//! caller-owned buffers. With no features the client side runs without an allocator;
//! the `alloc` feature adds the server side (`server`, `hub`, `store`), and the
//! `embedded-io` feature a blocking client driver over the embedded-io traits
//! (`blocking`, no allocator needed), which is what a port to a board or a bare socket
//! runs (docs/PORTING.md).
#![no_std]
// The one `unsafe` block is in the optional ring provider (erasing ring's keys on drop).
#![cfg_attr(not(feature = "ring"), forbid(unsafe_code))]
#![cfg_attr(feature = "ring", deny(unsafe_code))]
#![warn(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod crypto;
#[cfg(feature = "e2ee")]
pub mod e2ee;
pub mod handshake;
pub mod noise;
pub mod session;
pub mod time;
pub mod wire;

pub use time::{Duration, Instant};

#[cfg(feature = "embedded-io")]
pub mod blocking;
pub mod client;
#[cfg(feature = "std")]
pub mod connect;
#[cfg(feature = "alloc")]
pub mod hub;
pub mod keepalive;
pub mod rate;
#[cfg(feature = "alloc")]
pub mod server;
#[cfg(feature = "alloc")]
pub mod store;
