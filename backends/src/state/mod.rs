//! The memory-mapped keyed-state backend (`--state-backend mmap`), with incremental
//! snapshots (Flink's `EmbeddedRocksDBStateBackend` with `state.backend.incremental: true`
//! plays this part in Flink).
//!
//! # Layout
//! One [`MmapStore`] per state and subtask, organised by key group:
//! - **Segments**: values live in memory-mapped files of [`MmapConfig::segment_bytes`] in
//!   [`MmapConfig::local_dir`], unlinked once mapped (the kernel writes their pages back and
//!   may evict them; a crash leaves nothing). A segment is append-only: an update appends the
//!   new value, a removal leaves garbage, and nothing below a segment's tail is written again,
//!   so a snapshot thread reads the values of its view while the task appends.
//! - **Index**: per key group, a persistent hash map from the encoded key to its value's
//!   segment, offset and length; and per key group the keys changed since the last completed
//!   checkpoint with the epoch of their change (a removed key stays there as a tombstone).
//! - **Local compaction**: when garbage exceeds both the live bytes and one segment, the live
//!   values are copied into fresh segments and the old ones dropped (amortized O(1) per write).
//!
//! # Incremental snapshots
//! The synchronous part ([`KeyedBytes::snapshot`]) clones each group's index and changes
//! (O(1) each: persistent maps) and the segment table: O(key groups + segments). The
//! asynchronous part writes one shared file per state and snapshot, `DIR/shared/NAME`, with
//! one frame per key group changed since the **base**, the newest snapshot that a completed
//! checkpoint holds: the latest value of each changed key and a tombstone per removed key
//! (see [`chain`]'s format). A group's section in the checkpoint is its **chain**: the base's
//! frames, then the new one, each named with its file's length and CRC32. The checkpoint's
//! handle lists every shared file its chains need, and the storage counts them across the
//! retained checkpoints and removes a file when none needs it
//! ([`SharedStateRegistry`](crate::storage::SharedStateRegistry), Flink's
//! `SharedStateRegistry`). Only a completed checkpoint's snapshot becomes a base: the store
//! asks the registry whether a snapshot's file is in a completed checkpoint, so an aborted
//! checkpoint's file is never referred to.
//!
//! **Chain compaction**: a group's chain restarts from a full frame of the group when it has
//! [`MmapConfig::max_chain`] frames, or when its frames and the new delta would exceed
//! [`MmapConfig::rebase_ratio`] × the group's live bytes; so a restore reads a bounded
//! multiple of the live state.
//!
//! # Restore
//! A chain section is restored by mapping each file once (read-only), checking each frame's
//! length field and CRC32, and indexing its entries where they lie in the mapping: values are
//! not copied or decoded. A subtask at another parallelism restores only the groups it owns
//! (their frames). A full section (from a heap checkpoint) is restored entry by entry, so a
//! job can move from `heap` to `mmap`; the other way round is refused with a clear error.
//! A missing or damaged shared file is found by the storage's verification of the checkpoint
//! (the whole file's length and CRC32), and the restore falls back to the checkpoint before.

mod chain;
mod segment;
mod snapshot;
mod store;

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use weir_core::state::{KeyedBytes, StateBackend};

pub(crate) use chain::check_name as check_shared_name;
pub use store::MmapStore;

use crate::storage::SharedStateRegistry;

/// Bytes of a local segment by default (a value larger than this gets a segment of its own).
pub const DEFAULT_SEGMENT_BYTES: usize = 4 << 20;

/// Frames a chain holds at most before it restarts from a full base, by default.
pub const DEFAULT_MAX_CHAIN: usize = 8;

/// A chain restarts from a full base when its frames would exceed this multiple of the
/// group's live bytes, by default.
pub const DEFAULT_REBASE_RATIO: f64 = 2.0;

/// The memory-mapped backend's settings.
#[derive(Debug, Clone)]
pub struct MmapConfig {
    /// Where local segments are made (and at once unlinked).
    pub local_dir: PathBuf,
    /// The checkpoint directory: shared files go to its `shared/` folder and are restored
    /// from there. `None`: no snapshot (a job without checkpoints).
    pub checkpoint_dir: Option<PathBuf>,
    /// Bytes of a local segment.
    pub segment_bytes: usize,
    /// Frames in a chain before a full base.
    pub max_chain: usize,
    /// Chain bytes, as a multiple of live bytes, before a full base.
    pub rebase_ratio: f64,
}

impl MmapConfig {
    /// The defaults, segments in `local_dir`, shared files under `checkpoint_dir`.
    pub fn new(local_dir: PathBuf, checkpoint_dir: Option<PathBuf>) -> Self {
        Self {
            local_dir,
            checkpoint_dir,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            max_chain: DEFAULT_MAX_CHAIN,
            rebase_ratio: DEFAULT_REBASE_RATIO,
        }
    }
}

/// The memory-mapped backend: a factory of [`MmapStore`]s (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct MmapBackend {
    config: Arc<MmapConfig>,
    registry: Arc<SharedStateRegistry>,
}

impl MmapBackend {
    /// A backend with `config`, learning from `registry` which shared files are in completed
    /// checkpoints (the checkpoint storage's:
    /// [`FsCheckpointStorage::shared_registry`](crate::FsCheckpointStorage::shared_registry)).
    ///
    /// # Errors
    /// If the local folder cannot be created, or a setting is out of range.
    pub fn new(config: MmapConfig, registry: Arc<SharedStateRegistry>) -> Result<Self, String> {
        if config.segment_bytes == 0
            || config.max_chain == 0
            || config.rebase_ratio.is_nan()
            || config.rebase_ratio < 1.0
        {
            return Err(format!(
                "mmap state backend: segment bytes and chain length must be at least 1 and \
                 the rebase ratio at least 1.0, got {config:?}"
            ));
        }
        std::fs::create_dir_all(&config.local_dir)
            .map_err(|e| format!("{}: {e}", config.local_dir.display()))?;
        Ok(Self {
            config: Arc::new(config),
            registry,
        })
    }

    /// A store for tests and tools, without a table around it.
    pub fn store(&self, name: &str, key_groups: Range<usize>) -> MmapStore {
        MmapStore::new(
            name,
            key_groups,
            Arc::clone(&self.config),
            Arc::clone(&self.registry),
        )
    }
}

impl StateBackend for MmapBackend {
    fn name(&self) -> &'static str {
        "mmap"
    }

    fn create_store(
        &self,
        name: &str,
        key_groups: Range<usize>,
    ) -> Result<Option<Box<dyn KeyedBytes>>, String> {
        Ok(Some(Box::new(self.store(name, key_groups))))
    }
}
