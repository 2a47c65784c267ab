//! The seed corpora, made deterministically: valid frames and handshakes, every message
//! type, and sessions that walk the state machines through their main paths.
//!
//! `cargo run -p cove-fuzz --example gen_corpus` writes them to `fuzz/corpus/<target>/`.
//! They are committed; regenerate them after changing an input format.
//!
//! One file per target (`wire` covers the four decoders); the helpers they share are here.

mod client;
mod connection;
mod e2ee;
mod handshake;
mod hub;
mod hub_mls;
mod wire;

use std::io;
use std::path::Path;

use cove_core::wire::{Alert, ClientMsg, ErrorCode, FrameType, RoomId, ServerMsg, encode_header};

use crate::arb::Bytes;

pub use e2ee::e2ee_seeds;
pub use hub_mls::hub_mls_seeds;
pub use wire::{client_messages, server_messages};

/// One seed: a file name and its bytes.
pub type Seed = (String, Vec<u8>);

fn frame(typ: FrameType, payload: &[u8]) -> Vec<u8> {
    let mut f = encode_header(typ, payload.len() as u32).to_vec();
    f.extend_from_slice(payload);
    f
}

fn enc_client(m: &ClientMsg<'_>) -> Vec<u8> {
    let mut out = vec![0u8; m.encoded_len()];
    let n = m.encode(&mut out).expect("seed message encodes");
    out.truncate(n);
    out
}

fn enc_server(m: &ServerMsg<'_>) -> Vec<u8> {
    let mut out = vec![0u8; m.encoded_len()];
    let n = m.encode(&mut out).expect("seed message encodes");
    out.truncate(n);
    out
}

const ROOM: RoomId = RoomId(*b"ABC234");

fn alert_payload(code: ErrorCode, text: &str) -> Vec<u8> {
    let a = Alert { code, text };
    let mut out = vec![0u8; a.encoded_len()];
    let n = a.encode(&mut out).expect("alert encodes");
    out.truncate(n);
    out
}

fn bytes(b: &[u8]) -> Bytes {
    Bytes(b.to_vec())
}

/// Every target's seeds, by target name.
pub fn corpora() -> Vec<(&'static str, Vec<Seed>)> {
    let named = |v: Vec<(&'static str, Vec<u8>)>| -> Vec<Seed> {
        v.into_iter().map(|(n, b)| (n.to_owned(), b)).collect()
    };
    vec![
        ("frame_decoder", wire::frame_seeds()),
        ("client_msg_decoder", named(client_messages())),
        ("server_msg_decoder", named(server_messages())),
        ("alert_decoder", wire::alert_seeds()),
        ("handshake_responder", handshake::responder_seeds()),
        ("handshake_initiator", handshake::initiator_seeds()),
        ("server_connection", connection::connection_seeds()),
        ("hub_sequence", hub::hub_seeds()),
        ("client_state_machine", client::client_seeds()),
        ("hub_mls", hub_mls::hub_mls_seeds()),
        ("e2ee_session", e2ee::e2ee_seeds()),
    ]
}

/// Writes every seed to `dir/<target>/seed-<name>`, replacing older seeds (files whose
/// names start with `seed-`); other files, such as inputs the fuzzer found, stay.
pub fn write_corpora(dir: &Path) -> io::Result<usize> {
    let mut n = 0;
    for (target, seeds) in corpora() {
        let d = dir.join(target);
        std::fs::create_dir_all(&d)?;
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with("seed-") {
                std::fs::remove_file(entry.path())?;
            }
        }
        for (name, bytes) in seeds {
            std::fs::write(d.join(format!("seed-{name}")), bytes)?;
            n += 1;
        }
    }
    Ok(n)
}
