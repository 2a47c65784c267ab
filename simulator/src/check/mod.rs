//! The invariants the world is checked against, one module per invariant or group, each
//! fed by the world through a narrow call. A check returns `Err(Violation)` naming the
//! invariant; the run stops at the first one (see [`crate::FailureKind`]).
//!
//! | Module | Invariants (`Violation::check`) | Fed from |
//! |---|---|---|
//! | [`handshake`] | "handshake identity", "server identity" | each `Authenticate` / `ServerIdentity` |
//! | [`session`] | "session broken" | each close, on either side |
//! | [`canary`] | "plaintext on the wire", "plaintext at the server" | each segment; each request and store op |
//! | [`durability`] | "durable queue", "durable membership", "durable rooms"; "write-ahead", "nothing acked lost" | each step's membership ops; each server restart; each login, DM ack and DM shown |
//! | [`room_delivery`] | (a) "room exactly once", "room window", "delivery to non-member"; "room log", "room order" | each hub step (via the model); each room message a client shows; the liveness phase |
//! | [`cursors`] | (b) "room cursor" | each step's cursor ops and each ack; each commit; each restart |
//! | [`retention`] | (c) "retention gap", "retention" | each hub step (via the model); each gap and message a client sees |
//! | [`history`] | (d) "history" | each hub step (via the model); each history page a client sees |
//! | [`client_view`] | room joins and the cap, DM integrity, order and duplicates, acks, accounts | each client event |
//! | [`timers`] | "busy timer" | each timer that fires |
//! | [`convergence`] | "liveness" (what has not converged yet) | the liveness phase |
//! | [`e2ee_canary`] | "e2ee plaintext at the server", "plaintext on the wire" | each request, reply, store op and log line of the server; each segment |
//! | [`e2ee_delivery`] | (e2ee a) "e2ee decrypt", "e2ee exactly once", "e2ee room order" | each room entry an encrypted user's session handles; each join, leave and gap it sees |
//! | [`epochs`] | (e2ee b) "one commit per epoch" | each hub step's store ops (`GroupSet`, logged Commits' MLS headers) |
//! | [`removed_reads`] | (e2ee c) "removed member reads" | each durable removal (an old state watched) and each durable entry of an encrypted room |
//!
//! The hub-step checks against the reference model (room cap, invitations, sequence
//! numbers, exactly which room replies each connection receives, message IDs, queues),
//! one batch in flight at a time ("batches"), and "nothing acked lost" when the server
//! crashes live with the model, in [`crate::model`].

pub(crate) mod canary;
pub(crate) mod client_view;
pub(crate) mod convergence;
pub(crate) mod cursors;
pub(crate) mod durability;
pub(crate) mod e2ee_canary;
pub(crate) mod e2ee_delivery;
pub(crate) mod epochs;
pub(crate) mod handshake;
pub(crate) mod history;
pub(crate) mod removed_reads;
pub(crate) mod retention;
pub(crate) mod room_delivery;
pub(crate) mod session;
pub(crate) mod timers;
