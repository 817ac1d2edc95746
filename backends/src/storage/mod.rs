//! Checkpoint storage (Flink's `CheckpointStorage`): [`FsCheckpointStorage`] keeps each
//! checkpoint in a folder `chk-N` of a local directory.
//!
//! # Files
//! Every file opens with a header (magic `WCKP`, the format version [`FORMAT_VERSION`], the
//! file's kind), then holds frames `length | payload | CRC32`, each checked on its own
//! (`file_format`):
//! - `chk-N/{uid}-{subtask}.state` (`state_file`), one per operator subtask: a descriptor
//!   (checkpoint, uid, subtask, parallelism, key groups), the non-keyed operator state, then
//!   one frame per key group. The [`StateHandle`](weir_core::checkpoint::StateHandle) records
//!   each group's offset, so a restore at another parallelism reads and checks only the groups
//!   it owns. A uid that is not plain ASCII letters, digits, `_` and `-` is hex-encoded.
//! - `chk-N/channels-{task}.state` (`channel_file`), unaligned checkpoints only: one per
//!   subtask that persisted in-flight data; one frame per chunk (a descriptor: side, upstream
//!   and downstream subtask, sequence number; then the buffer's bytes). The
//!   [`ChannelStateHandle`](weir_core::checkpoint::ChannelStateHandle) in `_metadata` records
//!   every chunk's channel and offset.
//! - `shared/NAME` (`shared`, written by the memory-mapped state backend): the frames of
//!   incremental snapshots, which several checkpoints refer to; each handle lists the ones
//!   it needs with their length and CRC32 ([`SharedFile`](weir_core::checkpoint::SharedFile)).
//!   A checkpoint verifies whole only if its shared files do; a file is removed once no
//!   retained checkpoint lists it ([`SharedStateRegistry`]).
//! - `chk-N/_metadata` (`metadata_file`): the
//!   [`CheckpointMetadata`](weir_core::checkpoint::CheckpointMetadata) as JSON, in one frame.
//!
//! # Checks
//! - Before a write: the bytes about to be written are decoded back and compared with the
//!   handle (state files) or the metadata (`_metadata`).
//! - After a read: every byte read is covered by the exact-value header check or a frame's
//!   checksum (which covers its length), and every length and offset is compared with the
//!   handle from the (checked) metadata; so a changed byte, a truncation, a missing file or a
//!   file of another subtask or checkpoint is reported with the file and the reason, never
//!   read as state. `latest` and `load` check every file whole; `read_state` checks the
//!   frames it reads.
//!
//! # Durability
//! A state file is synced before `write_state` returns. `_metadata` is written last, to a
//! temporary file, synced, renamed into place, and the folder synced: a folder without it is
//! no checkpoint.

mod channel_file;
pub(crate) mod file_format;
mod fs;
mod metadata_file;
mod shared;
mod state_file;

pub use file_format::FORMAT_VERSION;
pub use fs::{DEFAULT_RETAINED, FsCheckpointStorage, METADATA_FILE};
pub use shared::SharedStateRegistry;
