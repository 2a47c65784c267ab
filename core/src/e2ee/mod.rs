//! End-to-end encryption with MLS (RFC 9420): cove's own mls-rs crypto provider and the
//! client's groups. Needs the `e2ee` feature (and an allocator).

pub mod provider;
