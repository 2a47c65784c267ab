//! Pure parse and emit of frames and messages. No state lives here.

mod codec;
pub mod error;
pub mod frame;
pub mod message;
pub mod mls;
pub mod types;

pub use error::*;
pub use frame::*;
pub use message::*;
pub use types::*;

#[cfg(test)]
mod tests;
