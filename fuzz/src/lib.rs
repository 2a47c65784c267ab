//! Fuzz target bodies for cove-core.
//!
//! Every target is a plain function `fn(&[u8])` that panics when an invariant breaks, so the
//! same code runs under libFuzzer (`fuzz_targets/*.rs`, built by `cargo fuzz`) and in the
//! stable corpus-replay test (`tests/replay.rs`). The seed corpora under `corpus/` are
//! written by [`seeds::write_corpora`] (`cargo run -p cove-fuzz --example gen_corpus`).
//!
//! Stateful targets read a `#[derive(Arbitrary)]` input; [`arb::ArbWriter`] writes such
//! inputs back as bytes, which is how the seeds are made.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod arb;
pub mod client;
pub mod connection;
pub mod e2ee;
pub mod handshake;
pub mod hub;
pub mod hub_mls;
pub mod replay;
pub mod seeds;
pub mod util;
pub mod wire;

/// A fuzz target body: panics when the code under test breaks an invariant.
pub type Target = fn(&[u8]);

/// Every target, by the name of its libFuzzer binary and corpus directory.
pub const TARGETS: &[(&str, Target)] = &[
    ("frame_decoder", wire::frame_decoder),
    ("client_msg_decoder", wire::client_msg_decoder),
    ("server_msg_decoder", wire::server_msg_decoder),
    ("alert_decoder", wire::alert_decoder),
    ("handshake_responder", handshake::handshake_responder),
    ("handshake_initiator", handshake::handshake_initiator),
    ("server_connection", connection::server_connection),
    ("hub_sequence", hub::hub_sequence),
    ("client_state_machine", client::client_state_machine),
    ("hub_mls", hub_mls::hub_mls),
    ("e2ee_session", e2ee::e2ee_session),
];

/// The decoded form of a structured target's input, for people reading a crash.
pub fn describe(name: &str, data: &[u8]) -> Option<String> {
    match name {
        "server_connection" => {
            arb::decode::<connection::ConnInput>(data).map(|i| format!("{i:#?}"))
        }
        "hub_sequence" => arb::decode::<hub::HubInput>(data).map(|i| format!("{i:#?}")),
        "client_state_machine" => {
            arb::decode::<client::ClientInput>(data).map(|i| format!("{i:#?}"))
        }
        "hub_mls" => arb::decode::<hub_mls::DsInput>(data).map(|i| format!("{i:#?}")),
        "e2ee_session" => arb::decode::<e2ee::E2eeInput>(data).map(|i| format!("{i:#?}")),
        _ => None,
    }
}

/// The target called `name`, if there is one.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}
