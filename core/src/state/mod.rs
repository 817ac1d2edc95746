//! State (Flink's keyed state backend on the heap and its operator state backend), with
//! copy-on-write asynchronous snapshots.
//!
//! # Keyed state
//! Keyed state is partitioned by key group ([`crate::keyed`]): a key's group is
//! `hash_key(key) % max_parallelism`, and a subtask owns a contiguous range of groups. A
//! [`KeyedTable`] holds, per owned key group, a flat hash map (std's, hashed with FxHash)
//! behind a reference count that running snapshots share. The typed states are thin layers
//! over one table each: [`ValueState`] (the table itself), [`MapState`], [`ListState`],
//! [`ReducingState`] and [`AggregatingState`]. [`KeyedState`] is a handle scoped to the current
//! key, for keyed process functions.
//!
//! A key's group is [`hash_key`](crate::keyed::hash_key) of the whole key, or, for a table
//! made with `KeyedTable::with_routed_hash` (crate-internal), of the part the keyed exchange
//! routes by (the window operators' (window, key) slots are grouped by their key and hashed
//! whole in the group's map, so that the windows of one key do not collide).
//!
//! Every state is registered by name; the name goes into the snapshot, and a restore finds the
//! state's entries by it. Values are written and read with their [`Codec`].
//!
//! # Access API
//! Nothing hands out a reference that outlives the call: values are read by clone
//! ([`KeyedTable::get`]) or inside a closure ([`KeyedTable::with`]), and changed inside a
//! closure ([`KeyedTable::update_slot`], [`KeyedTable::upsert_with`], [`KeyedTable::merge`]).
//! A serialized backend (values as bytes, as RocksDB holds them) implements the same calls by
//! decoding before and encoding after the closure; no caller has to change.
//!
//! # Copy-on-write snapshots, against Flink's `CopyOnWriteStateMap`
//! Flink's heap backend keeps a versioned hash map per key group; a snapshot bumps the map's
//! version and **copies its bucket array** on the task thread, so the synchronous part grows
//! with the number of entries (O(buckets)); entries older than a running snapshot are copied
//! before they are changed.
//!
//! weir copies at key-group granularity: each group's map sits behind a reference count
//! (`triomphe::Arc`). [`KeyedTable::snapshot`] clones the counts, one increment per group: the
//! synchronous part is O(key groups) (128 by default), independent of the number of entries.
//! The snapshot thread serializes the maps it holds ([`TableSnapshot::write`]) while the task
//! goes on; before every write the task checks its group's count (one acquire load): alone,
//! it writes in place; shared with a running snapshot, it first replaces the group by a copy
//! of its own (O(entries of the group)) and writes there, in place from then on. The snapshot's
//! maps never change, and a snapshot that ends frees the groups that were copied meanwhile.
//!
//! The trade-offs:
//! - Against Flink's per-entry copy-on-write: no version counter per entry and per map, no
//!   bucket array copied at the barrier (Flink's stall is O(buckets), ours O(groups)); but a
//!   group is copied whole even if one of its entries changes. The copying is bounded by one
//!   full copy of the state per checkpoint, made on the task thread and spread over the first
//!   write to each group while the snapshot runs (with 128 groups, each about 1/128 of the
//!   state); once the snapshot thread is done, nothing is copied. Memory during a snapshot:
//!   at most twice the state, as in Flink.
//! - Against a persistent trie (the hash array mapped trie of `imbl` weir used before): a
//!   write during a snapshot copied only the path to its entry, but every lookup walked several
//!   nodes, a cache miss each, and every write checked each node on the path for sharing;
//!   the flat map answers with one probe, usually one miss. On the traffic job, keyed state
//!   was half of weir's CPU with the trie.
//!
//! Values are cloned when their group is copied: keep them small, or make them cheap to clone
//! (lists and maps of state are themselves persistent: [`ListState`], [`MapState`]).
//!
//! [`SnapshotMode::Sync`] is the baseline: every table serialized on the task thread, a full
//! copy, the same blobs produced eagerly.
//!
//! # Snapshot format
//! A snapshot of one operator is one blob per owned key group
//! ([`crate::checkpoint::OperatorSnapshot::keyed`]). A blob is a sequence of sections, one per
//! state with entries in that group: the state's name (length-prefixed UTF-8), the entry count
//! (`u64`), the payload length (`u64`), then the entries, each its key and then its value in
//! their codecs. A group without state has an empty blob.
//!
//! # Restore, also at another parallelism
//! [`KeyedRestore`] takes the blobs of any number of old subtasks (each contributing its key
//! groups) and inserts into a state every entry of every group the state owns now. Each entry
//! is checked on the way in: its key must hash to the group it is stored in, appear once, and
//! its bytes decode exactly; damaged or mismatched state is a [`StateError`] naming the state
//! and the group, never silently skipped.
//!
//! # Operator state
//! [`OperatorStateWriter`] and [`OperatorStateReader`]: named, codec-encoded values for state
//! that is not keyed (source offsets, clocks, sink transactions).
//!
//! # Loom
//! The groups' reference counts live inside `triomphe`, which does not build on loom's
//! primitives, so the copy-on-write sharing cannot be model-checked here. The two-thread stress
//! tests in this module's tests (the task thread mutating, and so copying the groups it shares,
//! while another thread serializes the snapshot, compared with a model of the state at snapshot
//! time) cover the concurrent use.
//!
//! # Backends
//! Where a table keeps its entries is the job's [`StateBackend`]: [`HeapBackend`] (the default,
//! everything above) or a backend whose [`KeyedBytes`] store holds encoded entries (the
//! memory-mapped one of `weir-backends`, with incremental snapshots); see [`backend`'s
//! docs](StateBackend). Tables made with [`KeyedTable::new`] are always on the heap; operators
//! make theirs with [`KeyedTable::with_backend`] and the backend of their context.
//!
//! Table of contents:
//! - [`StateBackend`], [`KeyedBytes`], [`BytesSnapshot`]: pluggable stores.
//! - [`KeyedTable`] (also [`ValueState`]): the per-key-group table and its access API.
//! - [`KeyedState`]: the handle scoped to the current key.
//! - [`MapState`], [`ListState`], [`ReducingState`], [`AggregatingState`]: typed states.
//! - [`TableSnapshot`], [`KeyedSnapshot`]: copy-on-write snapshots and their blobs.
//! - [`KeyedRestore`]: restore, also at another parallelism.
//! - [`OperatorStateWriter`], [`OperatorStateReader`]: non-keyed state.

mod backend;
mod format;
mod group_map;
mod list;
mod map;
mod operator_state;
mod reducing;
mod restore;
mod scoped;
mod snapshot;
mod table;
#[cfg(test)]
mod tests;

use std::hash::Hash;

use thiserror::Error;

use crate::codec::{Codec, DecodeError};

pub use backend::{
    BytesSnapshot, HeapBackend, Incremental, KeyedBytes, StateBackend, StateBackendRef, heap,
};
pub use list::ListState;
pub use map::{MapState, UserMap};
pub use operator_state::{OperatorStateReader, OperatorStateWriter};
pub use reducing::{AggregatingState, ReducingState};
pub use restore::KeyedRestore;
pub use scoped::KeyedState;
pub use snapshot::{KeyedParts, KeyedSnapshot, TableSnapshot};
pub use table::KeyedTable;
pub(crate) use table::Located;

/// Where a keyed snapshot is serialized; the one enum [`crate::checkpoint::CheckpointConfig`]
/// carries, here for the states that take it.
pub use crate::checkpoint::SnapshotMode;

/// A key of keyed state: hashed into its key group, compared, cloned into the table and
/// written into snapshots.
pub trait StateKey: Hash + Eq + Clone + Codec + Send + Sync + 'static {}
impl<T: Hash + Eq + Clone + Codec + Send + Sync + 'static> StateKey for T {}

/// A value of keyed state: cloned when a snapshot shares its key group and the group changes,
/// written into snapshots, and read by the snapshot thread while the task goes on.
pub trait StateValue: Clone + Codec + Send + Sync + 'static {}
impl<T: Clone + Codec + Send + Sync + 'static> StateValue for T {}

/// Flink's `ValueState`: one value per key. A [`KeyedTable`] is exactly that.
pub type ValueState<K, V> = KeyedTable<K, V>;

/// A state that lives in one [`KeyedTable`]: what [`KeyedSnapshot::add`] snapshots and
/// [`KeyedRestore::restore`] fills (Flink's `StateSnapshotRestore`).
pub trait StateSnapshotRestore {
    /// The state's key.
    type Key: StateKey;
    /// What the table stores per key.
    type Stored: StateValue;
    /// The table.
    fn table(&self) -> &KeyedTable<Self::Key, Self::Stored>;
    /// The table, to restore into.
    fn table_mut(&mut self) -> &mut KeyedTable<Self::Key, Self::Stored>;
}

/// Why state could not be restored.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum StateError {
    /// The bytes of a state do not decode.
    #[error("state {name:?}{}: {source}", in_group(*.group))]
    Decode {
        /// The state (or, for a malformed section header, the section's position).
        name: String,
        /// The key group, for keyed state.
        group: Option<usize>,
        /// What the codec found.
        #[source]
        source: DecodeError,
    },
    /// The bytes decode but do not hold what they should: a key in the wrong key group, a key
    /// twice, an entry count that disagrees with the payload.
    #[error("state {name:?}{}: {reason}", in_group(*.group))]
    Corrupt {
        /// The state.
        name: String,
        /// The key group, for keyed state.
        group: Option<usize>,
        /// What is wrong.
        reason: String,
    },
    /// The snapshots given to a restore do not fit together or do not fit the state: a blob
    /// count that is not the range's length, a key group given twice, a group the state owns
    /// that no snapshot covers, a state restored into twice.
    #[error("{0}")]
    Layout(String),
    /// The state backend failed: its store could not be made, or its snapshot not written.
    #[error("state {name:?}: {reason}")]
    Backend {
        /// The state.
        name: String,
        /// What failed (the file and why).
        reason: String,
    },
    /// The snapshots hold a state that nothing restored (renamed or dropped state): restoring
    /// without it would lose it silently.
    #[error("state {0:?} is in the snapshot but was not restored")]
    Unclaimed(String),
}

fn in_group(group: Option<usize>) -> String {
    group.map_or_else(String::new, |g| format!(", key group {g}"))
}
