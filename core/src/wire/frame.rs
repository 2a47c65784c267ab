//! Frames: `[u32 big-endian payload length][u8 type][payload]`.

/// Bytes in a frame header: the length and the type.
pub const HEADER_LEN: usize = 5;
/// Frame type of the handshake's first message (client → server).
pub const FRAME_SYN: u8 = 0x01;
/// Frame type of the handshake's second message (server → client).
pub const FRAME_SYN_ACK: u8 = 0x02;
/// Frame type of the handshake's third message (client → server).
pub const FRAME_ACK: u8 = 0x03;
/// Frame type of a cleartext alert: `[u8 code][u16 len][text]`, sent before session keys exist.
pub const FRAME_ALERT: u8 = 0x15;
/// Frame type of an encrypted record: `[ciphertext][16-byte tag]`.
pub const FRAME_RECORD: u8 = 0x17;
