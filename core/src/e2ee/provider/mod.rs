//! cove's mls-rs `CryptoProvider`, built on the crates the core already uses.
