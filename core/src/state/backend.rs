//! Pluggable keyed-state backends (Flink's `StateBackend`): where a [`KeyedTable`]'s entries
//! live.
//!
//! A backend is a factory chosen once per job ([`crate::RuntimeConfig::state_backend`]) and
//! handed to every operator in its [`OperatorContext`](crate::operator::OperatorContext);
//! [`KeyedTable::with_backend`] asks it for a store. [`HeapBackend`] (the default) keeps the
//! typed, persistent maps of the [module docs](super); any other backend supplies a
//! [`KeyedBytes`] store holding codec-encoded keys and values per key group (as RocksDB holds
//! them), and the table decodes before and encodes after each call, so no caller's access API
//! changes. `weir-backends` implements the memory-mapped one.
//!
//! A byte store takes its own snapshots ([`KeyedBytes::snapshot`]: the synchronous part,
//! O(key groups)) and writes them itself ([`BytesSnapshot::write_incremental`]: the
//! asynchronous part), so that it can write only what changed since the last completed
//! checkpoint into shared files that later checkpoints refer to ([`SharedFile`]).
//!
//! [`KeyedTable`]: super::KeyedTable
//! [`KeyedTable::with_backend`]: super::KeyedTable::with_backend

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use crate::checkpoint::SharedFile;

/// A keyed-state backend: a factory of stores, one per state and subtask.
pub trait StateBackend: Send + Sync + fmt::Debug {
    /// The backend's name, as `--state-backend` spells it (Flink's `state.backend.type`).
    fn name(&self) -> &'static str;

    /// A store for state `name` over the key groups `key_groups`; `None`: the table keeps
    /// its typed heap maps.
    ///
    /// # Errors
    /// If the store cannot be made (its files cannot be created), naming the file and why.
    fn create_store(
        &self,
        name: &str,
        key_groups: Range<usize>,
    ) -> Result<Option<Box<dyn KeyedBytes>>, String>;
}

/// A shared handle on a backend, as the runtime config and operator contexts hold it.
pub type StateBackendRef = Arc<dyn StateBackend>;

/// The default backend: typed persistent maps on the heap, copy-on-write snapshots of full
/// blobs (Flink's `HashMapStateBackend`).
#[derive(Debug, Clone, Copy, Default)]
pub struct HeapBackend;

impl StateBackend for HeapBackend {
    fn name(&self) -> &'static str {
        "heap"
    }

    fn create_store(
        &self,
        _name: &str,
        _key_groups: Range<usize>,
    ) -> Result<Option<Box<dyn KeyedBytes>>, String> {
        Ok(None)
    }
}

/// The heap backend as a shared handle (the runtime's default).
pub fn heap() -> StateBackendRef {
    Arc::new(HeapBackend)
}

/// A store of encoded entries per key group: `group` is the index within the store's key
/// groups (0 for its first group); keys and values are the bytes of their codecs.
///
/// A store is used by one task thread; only its snapshots go to other threads. Calls that
/// cannot report an error (a write whose segment cannot be made) panic with the file and
/// the reason: the operator call that made them fails, and the job restarts by its strategy.
pub trait KeyedBytes: Send {
    /// The value of `key`, borrowed from the store.
    fn get(&self, group: usize, key: &[u8]) -> Option<&[u8]>;

    /// Sets the value of `key`.
    fn put(&mut self, group: usize, key: &[u8], value: &[u8]);

    /// Removes `key`; whether it had a value.
    fn remove(&mut self, group: usize, key: &[u8]) -> bool;

    /// Entries of one group.
    fn group_len(&self, group: usize) -> usize;

    /// Calls `f` on every entry of one group (an order that is the same on every run with
    /// the same history).
    fn for_each(&self, group: usize, f: &mut dyn FnMut(&[u8], &[u8]));

    /// Removes every entry.
    fn clear(&mut self);

    /// The synchronous part of a snapshot: a view of the store as it is now, for a snapshot
    /// thread to write while the store goes on changing. Takes `&self` (the store's
    /// bookkeeping of its snapshots is its own), as [`KeyedTable::snapshot`] does.
    ///
    /// [`KeyedTable::snapshot`]: super::KeyedTable::snapshot
    fn snapshot(&self) -> Box<dyn BytesSnapshot>;

    /// Restores one (empty) group from the payload of a section that
    /// [`BytesSnapshot::write_incremental`] wrote (the store's own format: a chain of shared
    /// files), checking what it reads.
    ///
    /// # Errors
    /// A file that is missing or damaged, or a payload that does not parse: the file and why.
    fn restore_chain(&mut self, group: usize, payload: &[u8]) -> Result<usize, String>;
}

/// A byte store's view at a snapshot; `Send`: it goes to a snapshot thread.
pub trait BytesSnapshot: Send {
    /// Entries of one group in the view.
    fn group_len(&self, group: usize) -> usize;

    /// Calls `f` on every entry of one group in the view (for a full, canonical blob).
    fn for_each(&self, group: usize, f: &mut dyn FnMut(&[u8], &[u8]));

    /// The asynchronous part: writes what changed since the store's last completed checkpoint
    /// into shared files (durable when this returns) and returns, per group, the payload of
    /// the group's section (`None`: the group holds no entry).
    ///
    /// # Errors
    /// A failed write, with the file and the reason (the checkpoint is declined).
    fn write_incremental(self: Box<Self>) -> Result<Incremental, String>;
}

/// What an incremental snapshot of one store wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Incremental {
    /// Per group (in order), the payload of its section; `None` for a group without entries.
    pub sections: Vec<Option<Vec<u8>>>,
    /// Every shared file the sections refer to (written now or earlier).
    pub shared: Vec<SharedFile>,
    /// Bytes of the shared files written by this snapshot.
    pub written_bytes: u64,
}
