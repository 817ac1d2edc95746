//! weir-backends: the pluggable implementations of weir-core's traits.
//!
//! The core defines the contracts and knows no backend; this crate implements them and the
//! `weir` binary wires them together from the command line (see `docs/ARCHITECTURE.md`).
//!
//! Table of contents:
//! - [`state`]: the memory-mapped keyed-state backend ([`MmapBackend`]): values in mapped
//!   segments, an index per key group, incremental snapshots into shared files.
//! - [`storage`]: checkpoint storage in a local folder ([`FsCheckpointStorage`]): one folder
//!   per checkpoint, state files with per-key-group frames and CRC32s, `_metadata` written
//!   last, retention, and the search for the latest checkpoint that verifies.

pub mod state;
pub mod storage;

pub use state::{MmapBackend, MmapConfig};
pub use storage::FsCheckpointStorage;
