//! weir-backends: the pluggable implementations of weir-core's traits.
//!
//! The core defines the contracts and knows no backend; this crate implements them and the
//! `weir` binary wires them together from the command line. The fault-tolerance work fills it:
//! the heap state backend with copy-on-write asynchronous snapshots, the memory-mapped state
//! backend with incremental snapshots, and checkpoint storage on memory-mapped files (see
//! `docs/ARCHITECTURE.md`). Until then it has no code, and weir-core's keyed state lives in the
//! keyed process operator's per-subtask map.
