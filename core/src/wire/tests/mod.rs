//! Tests of the whole wire module: round trips, prefixes, limits, vectors, byte soup, and
//! the durable-rooms messages of version 2 (`rooms`).
//!
//! `samples` holds one sample of every message, shared by the topics below.

mod frames;
mod lists;
mod messages;
mod mls;
mod rooms;
mod samples;
mod soup;
