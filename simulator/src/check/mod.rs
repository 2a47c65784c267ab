//! The invariants the world is checked against, one module per invariant or group, each
//! fed by the world through a narrow call. A check returns `Err(Violation)` naming the
//! invariant; the run stops at the first one (see [`crate::FailureKind`]).
//!
//! | Module | Invariants (`Violation::check`) | Fed from |
//! |---|---|---|
//! | [`handshake`] | "handshake identity", "server identity" | each `Authenticate` / `ServerIdentity` |
//! | [`session`] | "session broken" | each close, on either side |
//! | [`canary`] | "plaintext on the wire", "plaintext at the server" | each segment; each request and store op |
//! | [`durability`] | "durable queue"; "write-ahead", "nothing acked lost" | each server restart; each login, DM ack and DM shown |
//! | [`client_view`] | room order, agreement and membership, DM integrity, order and duplicates, acks, accounts | each client event |
//! | [`timers`] | "busy timer" | each timer that fires |
//! | [`convergence`] | "liveness" (what has not converged yet) | the liveness phase |
//!
//! The hub-step checks against the reference model (room cap, sequence numbers, who
//! receives what, message IDs, queues), one batch in flight at a time ("batches"), and
//! "nothing acked lost" when the server crashes live with the model, in [`crate::model`].

pub(crate) mod canary;
pub(crate) mod client_view;
pub(crate) mod convergence;
pub(crate) mod durability;
pub(crate) mod handshake;
pub(crate) mod session;
pub(crate) mod timers;
