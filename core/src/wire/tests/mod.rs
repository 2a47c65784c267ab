//! Tests of the whole wire module: round trips, prefixes, limits, vectors, byte soup.
//!
//! `samples` holds one sample of every message, shared by the topics below.

mod frames;
mod lists;
mod messages;
mod samples;
mod soup;
