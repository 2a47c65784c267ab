//! Pure parse and emit of frames and messages. No state lives here.

pub mod frame;
pub mod message;
pub mod types;

pub use frame::*;
pub use message::*;
pub use types::*;
