//! Frames: `[u32 big-endian payload length][u8 type][payload]`.
