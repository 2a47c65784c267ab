//! The `cove` package: the command-line program (`cove serve`, `cove chat`,
//! `cove keygen`, `cove bench`), its configuration and files, and [`store::SqliteStore`], the
//! server's durable store.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bench;
pub mod chat;
pub mod config;
pub mod files;
pub mod link;
pub mod serve;
pub mod store;
