//! Checkpoints (Flink's `CheckpointCoordinator`, barriers and snapshots): the types every part
//! of fault tolerance shares.
//!
//! A checkpoint `n` is a consistent cut of the job: every source subtask records its partition
//! offsets and injects barrier `n` in band; every task snapshots its operators when barrier `n`
//! has arrived on its inputs (aligned: on all of them), forwards the barrier, and acknowledges
//! with the handles of the files its snapshot wrote. The checkpoint completes when every subtask
//! has acknowledged and the coordinator has written the checkpoint's metadata.
//!
//! This module holds the vocabulary: ids, the bytes an operator's snapshot produces
//! ([`OperatorSnapshot`]), what the storage records of them ([`StateHandle`],
//! [`CheckpointMetadata`]) and the storage contract ([`CheckpointStorage`]); `weir-backends`
//! implements the storage.

mod barrier;
mod channel_state;
mod config;
mod coordinator;
pub(crate) mod inject;
mod pending;
mod signals;
mod snapshot;
mod stats;
mod transaction;

pub use barrier::{BarrierHandler, TakeSnapshot};
pub use channel_state::{
    ChannelChunk, ChannelInfo, ChannelSide, ChannelStateHandle, ChannelStateSink, ChunkBytes,
    ChunkHandle,
};
pub(crate) use channel_state::{ChannelStateFeed, ChannelStateFile};
pub(crate) use config::RestartBackoff;
pub use config::{
    BarrierMode, CheckpointConfig, RestartStrategy, SnapshotMode, exponential_defaults,
};
pub use coordinator::OutputCommitter;
pub(crate) use coordinator::{Coordinator, PoolJob, SnapshotJob, SnapshotPool, unix_ms};
pub use inject::{FailureInjector, Site};
/// Under `--cfg weir_loom` the coordinator's bookkeeping is public, for the loom models.
#[cfg(weir_loom)]
pub use pending::{
    AckTimings, Acknowledgement, PendingCheckpoint, PendingCheckpoints, RECENT_ABORTED, Received,
    Report,
};
#[cfg(not(weir_loom))]
pub(crate) use pending::{AckTimings, Report};
pub use signals::Signals;
pub(crate) use snapshot::PendingOperator;
pub use snapshot::{
    KeyedWrite, RestoreContext, SnapshotContext, StateReader, StateWriter, TaskSnapshot,
};
pub use stats::{CheckpointRecord, CheckpointStats, Restart, Status, Summary};
pub use transaction::{
    SharedTransaction, Transaction, Transactions, in_transaction_scope, register_transaction,
};

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The folder of a checkpoint (`chk-N/parts/`) that holds its outputs' pre-committed parts;
/// an aborted checkpoint keeps it, for the parts to be carried into the next one.
pub const PARTS_FOLDER: &str = "parts";

/// The folder of the checkpoint directory (`DIR/shared/`) that holds the files of incremental
/// snapshots, which several checkpoints refer to (Flink's `shared/`). A file there is removed
/// once no retained checkpoint refers to it.
pub const SHARED_FOLDER: &str = "shared";

/// A checkpoint's id: 1 for the first checkpoint of a job, increasing by one per trigger, and
/// continued (not restarted) after a restore.
pub type CheckpointId = u64;

/// What one subtask's snapshot of one operator holds, in bytes, ready to be written.
///
/// `operator_state` is the operator's non-keyed state (source offsets, the watermark, sink
/// transactions), opaque to the storage. `keyed` holds one blob per key group of
/// `key_groups` (empty blobs for groups without state), so that a restore at another
/// parallelism can read only the groups a new subtask owns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperatorSnapshot {
    /// The operator's stable id (Flink's uid).
    pub uid: String,
    /// The subtask that took the snapshot.
    pub subtask: usize,
    /// The operator's parallelism when the snapshot was taken.
    pub parallelism: usize,
    /// Non-keyed state.
    pub operator_state: Vec<u8>,
    /// The key groups this subtask owned (empty for a non-keyed operator).
    pub key_groups: Range<usize>,
    /// One blob per key group in `key_groups`, in order.
    pub keyed: Vec<Vec<u8>>,
    /// The shared files the blobs refer to (incremental snapshots; empty for full ones).
    pub shared: Vec<SharedFile>,
    /// Bytes of the shared files this snapshot wrote (the rest were written by earlier ones).
    pub shared_written_bytes: u64,
}

/// A file under `DIR/shared/` that an incremental snapshot refers to; several checkpoints may
/// refer to one file (Flink's `SharedStateRegistry` counts them).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SharedFile {
    /// The file, relative to the checkpoint directory (`shared/NAME`).
    pub file: String,
    /// Bytes of the whole file.
    pub bytes: u64,
    /// CRC32 of the whole file.
    pub crc32: u32,
}

/// Where one [`OperatorSnapshot`] lives in a checkpoint, as recorded in its metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateHandle {
    /// The operator's uid.
    pub uid: String,
    /// The subtask that wrote it.
    pub subtask: usize,
    /// The operator's parallelism at that time.
    pub parallelism: usize,
    /// The file, relative to the checkpoint's folder.
    pub file: String,
    /// Bytes of the whole file.
    pub file_bytes: u64,
    /// Bytes of the non-keyed state.
    pub operator_state_bytes: u64,
    /// The key groups covered.
    pub key_groups: Range<usize>,
    /// Byte offset and length of each key group's blob inside the file, for ranged reads.
    pub key_group_offsets: Vec<(u64, u64)>,
    /// The shared files the keyed blobs refer to: the checkpoint needs them, and retention
    /// keeps them while a retained checkpoint does.
    #[serde(default)]
    pub shared: Vec<SharedFile>,
    /// Bytes of the shared files written for this checkpoint (its increment).
    #[serde(default)]
    pub shared_written_bytes: u64,
}

impl StateHandle {
    /// Bytes this handle's checkpoint wrote for it: its file and its new shared files
    /// (Flink's checkpointed size).
    pub fn checkpointed_bytes(&self) -> u64 {
        self.file_bytes + self.shared_written_bytes
    }
}

/// A pending part of a transactional output, pre-committed at a barrier and committed when
/// its checkpoint completes (see `sink::two_phase`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingPart {
    /// The output file it belongs to (its name in the output folder, e.g. `flow_1m.jsonl`).
    pub output: String,
    /// The part file holding the lines, absolute.
    pub path: PathBuf,
    /// Bytes in the part.
    pub bytes: u64,
    /// Whole lines in the part.
    pub lines: u64,
}

/// The `_metadata` of a completed checkpoint: what a restore needs to find everything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointMetadata {
    /// The checkpoint's id.
    pub id: CheckpointId,
    /// When it was triggered, ms since the Unix epoch.
    pub triggered_at_ms: u64,
    /// The checkpoint completed before it in the same run (0: none): the outputs it commits
    /// continue what that one committed, so a restore into output files committed up to an
    /// earlier checkpoint would leave a gap (and is refused).
    #[serde(default)]
    pub previous_completed: CheckpointId,
    /// The number of key groups of the job (state cannot be restored with another).
    pub max_parallelism: usize,
    /// Every operator subtask's state.
    pub states: Vec<StateHandle>,
    /// The outputs' parts pre-committed for this checkpoint, committed when it completes.
    pub pending_parts: Vec<PendingPart>,
    /// The in-flight data of an unaligned checkpoint, one file per subtask that persisted
    /// any (empty for aligned checkpoints).
    #[serde(default)]
    pub channel_states: Vec<ChannelStateHandle>,
}

/// A completed checkpoint found in storage, verified, ready to restore from.
#[derive(Debug, Clone)]
pub struct CompletedCheckpoint {
    /// Its folder.
    pub path: PathBuf,
    /// Its metadata.
    pub metadata: CheckpointMetadata,
}

/// Why checkpoint storage failed.
#[derive(Debug)]
pub enum StorageError {
    /// An I/O failure on `path`.
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// A file does not hold what it should: bad magic, version, checksum, length or content.
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// No completed checkpoint could be used.
    NoCheckpoint {
        /// The checkpoint folder searched.
        dir: PathBuf,
        /// Why each candidate was refused, newest first.
        refused: Vec<String>,
    },
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Self::Corrupt { path, reason } => write!(f, "{}: {reason}", path.display()),
            Self::NoCheckpoint { dir, refused } if refused.is_empty() => {
                write!(f, "{}: no completed checkpoint", dir.display())
            }
            Self::NoCheckpoint { dir, refused } => write!(
                f,
                "{}: no usable checkpoint ({})",
                dir.display(),
                refused.join("; ")
            ),
        }
    }
}

impl std::error::Error for StorageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Durable checkpoint storage (Flink's `CheckpointStorage`): one folder per checkpoint, files
/// with a format version and a CRC32, metadata written last.
///
/// Contract:
/// - [`write_state`](Self::write_state) returns only once the file's bytes are durable
///   (synced), and may be called from several snapshot threads at once.
/// - [`complete`](Self::complete) makes the folder entries of the state files and of the
///   metadata's pending parts durable (the writers sync only the files), then writes
///   `_metadata` last (synced, then renamed into place): a folder without it is no checkpoint. It then keeps the newest `retained` completed
///   checkpoints and removes older and incomplete ones.
/// - [`latest`](Self::latest) returns the newest completed checkpoint whose metadata and every
///   state file verify; each one refused on the way is reported through `warn` with its file
///   and reason.
pub trait CheckpointStorage: Send + Sync + fmt::Debug {
    /// Writes one subtask's snapshot of one operator into checkpoint `id`.
    fn write_state(
        &self,
        id: CheckpointId,
        snapshot: &OperatorSnapshot,
    ) -> Result<StateHandle, StorageError>;

    /// Completes a checkpoint whose every state is written.
    fn complete(&self, metadata: &CheckpointMetadata) -> Result<(), StorageError>;

    /// Removes what an aborted checkpoint wrote.
    fn discard(&self, id: CheckpointId) -> Result<(), StorageError>;

    /// The newest usable completed checkpoint, or `None` if there is none at all.
    fn latest(
        &self,
        warn: &mut dyn FnMut(&str),
    ) -> Result<Option<CompletedCheckpoint>, StorageError>;

    /// The highest checkpoint id with a folder, complete or not: a restarted job continues
    /// above it, so it never writes into a folder an earlier run left.
    fn highest_id(&self) -> Result<Option<CheckpointId>, StorageError>;

    /// The completed checkpoint in folder `path`, verified.
    fn load(&self, path: &std::path::Path) -> Result<CompletedCheckpoint, StorageError>;

    /// Reads back one state: its non-keyed state and the blobs of the key groups in
    /// `key_groups` ∩ the handle's groups (in order), verifying the checksum.
    fn read_state(
        &self,
        checkpoint: &CompletedCheckpoint,
        handle: &StateHandle,
        key_groups: Range<usize>,
    ) -> Result<OperatorSnapshot, StorageError>;

    /// A new channel state file of task `task` (its index in the job) in checkpoint `id`,
    /// appended to by one snapshot thread at a time. Storage that cannot hold channel state
    /// refuses, and the unaligned checkpoint is declined with the reason.
    fn channel_state_writer(
        &self,
        id: CheckpointId,
        task: usize,
    ) -> Result<Box<dyn ChannelStateSink>, StorageError> {
        let _ = task;
        Err(StorageError::Io {
            path: PathBuf::from(format!("chk-{id}")),
            source: std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "this checkpoint storage holds no channel state (unaligned checkpoints)",
            ),
        })
    }

    /// Reads back one chunk of channel state, verifying its checksum and its place.
    fn read_channel_chunk(
        &self,
        checkpoint: &CompletedCheckpoint,
        handle: &ChannelStateHandle,
        chunk: &ChunkHandle,
    ) -> Result<Vec<u8>, StorageError> {
        let _ = chunk;
        Err(StorageError::Corrupt {
            path: checkpoint.path.join(&handle.file),
            reason: "this checkpoint storage holds no channel state".into(),
        })
    }
}
