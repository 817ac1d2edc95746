//! Checkpoints in a folder of the local file system (Flink's `FileSystemCheckpointStorage`):
//! the folder layout, the commit by `_metadata`, retention and the search for the latest
//! usable checkpoint.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use weir_core::checkpoint::{
    ChannelStateHandle, ChannelStateSink, CheckpointId, CheckpointMetadata, CheckpointStorage,
    ChunkHandle, CompletedCheckpoint, OperatorSnapshot, PARTS_FOLDER, StateHandle, StorageError,
};

use super::shared::{self, SharedStateRegistry};
use super::{channel_file, metadata_file, state_file};

/// Completed checkpoints kept by default (Flink's `state.checkpoints.num-retained` is 1;
/// weir keeps one more, so that a damaged latest checkpoint has a fallback).
pub const DEFAULT_RETAINED: usize = 2;

/// The file whose presence makes a folder a completed checkpoint.
pub const METADATA_FILE: &str = "_metadata";

/// `_metadata` while it is written, before the rename that completes the checkpoint.
const METADATA_IN_PROGRESS: &str = "_metadata.inprogress";

const FOLDER_PREFIX: &str = "chk-";

/// Write buffer of a state file.
const WRITE_BUFFER_BYTES: usize = 256 * 1024;

/// Checkpoint storage in a local folder:
///
/// ```text
/// DIR/chk-N/_metadata            written last; its presence completes checkpoint N
/// DIR/chk-N/{uid}-{subtask}.state one per operator subtask (see the `storage` module docs)
/// DIR/chk-N/channels-{task}.state  unaligned: one per subtask that persisted in-flight data
/// ```
///
/// Durability: [`write_state`](CheckpointStorage::write_state) returns once its file and the
/// folder entry are synced; [`complete`](CheckpointStorage::complete) once `_metadata` is
/// synced and renamed into place and the folder synced. A crash at any point leaves either
/// no `_metadata` (the folder is no checkpoint, and is removed by the next completion) or a
/// complete checkpoint.
///
/// Concurrency: any number of threads may write states of the same or of different
/// checkpoints at once, each (uid, subtask) once per checkpoint; the coordinator completes,
/// discards and searches. A late write into a checkpoint that was discarded meanwhile may
/// leave an incomplete folder behind; the next completion removes it.
#[derive(Debug)]
pub struct FsCheckpointStorage {
    dir: PathBuf,
    retained: usize,
    registry: Arc<SharedStateRegistry>,
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The error for a request the storage refuses (not damage on disk).
fn invalid_input(path: &Path, reason: String) -> StorageError {
    StorageError::Io {
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidInput, reason),
    }
}

/// Syncs a folder, so that the entries created or renamed in it are durable.
fn sync_folder(path: &Path) -> Result<(), StorageError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io_at(path))
}

/// The id of a folder named `chk-N` (N in decimal, without leading zeros).
fn folder_id(path: &Path) -> Option<CheckpointId> {
    let digits = path.file_name()?.to_str()?.strip_prefix(FOLDER_PREFIX)?;
    let id: CheckpointId = digits.parse().ok()?;
    (id.to_string() == digits).then_some(id)
}

/// Removes a checkpoint's folder, `_metadata` first: a removal cut short leaves no folder
/// that looks complete but misses files.
fn remove_checkpoint_folder(path: &Path) -> Result<(), StorageError> {
    let metadata = path.join(METADATA_FILE);
    match fs::remove_file(&metadata) {
        Ok(()) => sync_folder(path)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_at(&metadata)(e)),
    }
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_at(path)(e)),
        _ => Ok(()),
    }
}

impl FsCheckpointStorage {
    /// Storage in `dir` (created if missing) keeping the newest `retained` completed
    /// checkpoints; `retained` must be at least 1.
    pub fn new(dir: PathBuf, retained: usize) -> Result<Self, StorageError> {
        if retained == 0 {
            return Err(invalid_input(
                &dir,
                "state.checkpoints.num-retained must be at least 1, got 0".into(),
            ));
        }
        fs::create_dir_all(&dir).map_err(io_at(&dir))?;
        Ok(Self {
            dir,
            retained,
            registry: Arc::new(SharedStateRegistry::new()),
        })
    }

    /// The registry of shared files in completed checkpoints, for the memory-mapped state
    /// backend to learn which of its snapshots may be the base of the next increment.
    pub fn shared_registry(&self) -> Arc<SharedStateRegistry> {
        Arc::clone(&self.registry)
    }

    /// The folder holding the checkpoints.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Completed checkpoints kept.
    pub fn retained(&self) -> usize {
        self.retained
    }

    /// The folder of checkpoint `id`.
    pub fn folder(&self, id: CheckpointId) -> PathBuf {
        self.dir.join(format!("{FOLDER_PREFIX}{id}"))
    }

    /// Creates a checkpoint's folder unless it exists, durably.
    fn create_folder(&self, folder: &Path) -> Result<(), StorageError> {
        match fs::create_dir(folder) {
            Ok(()) => sync_folder(&self.dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(io_at(folder)(e)),
        }
    }

    /// The checkpoint folders, newest first. O(entries of the folder).
    fn folders(&self) -> Result<Vec<(CheckpointId, PathBuf)>, StorageError> {
        let mut folders = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io_at(&self.dir))? {
            let path = entry.map_err(io_at(&self.dir))?.path();
            if let Some(id) = folder_id(&path)
                && path.is_dir()
            {
                folders.push((id, path));
            }
        }
        folders.sort_unstable_by_key(|&(id, _)| std::cmp::Reverse(id));
        Ok(folders)
    }

    /// Keeps the newest `retained` completed checkpoints and the incomplete ones newer than
    /// `completed` (in progress); removes the rest, then the shared files none of the kept
    /// checkpoints refers to (if every kept `_metadata` reads: a file a damaged one might need
    /// is never removed).
    fn retain(&self, completed: CheckpointId) -> Result<(), StorageError> {
        let mut kept = 0;
        let mut kept_metadata = Vec::new();
        let mut all_read = true;
        for (id, path) in self.folders()? {
            let remove = if path.join(METADATA_FILE).is_file() {
                kept += 1;
                kept > self.retained
            } else {
                id < completed
            };
            if remove {
                remove_checkpoint_folder(&path)?;
            } else if path.join(METADATA_FILE).is_file() {
                match metadata_file::read(&path.join(METADATA_FILE)) {
                    Ok(metadata) => kept_metadata.push(metadata),
                    Err(_) => all_read = false,
                }
            }
        }
        if all_read {
            shared::remove_unreferenced(&self.dir, &kept_metadata, &self.registry)?;
        }
        Ok(())
    }

    /// Verifies the completed checkpoint in `folder`: its `_metadata`, every handle, every
    /// state file whole. O(bytes of the checkpoint) time, O(metadata) memory.
    fn verify(folder: &Path) -> Result<CompletedCheckpoint, StorageError> {
        let metadata_path = folder.join(METADATA_FILE);
        let metadata = metadata_file::read(&metadata_path)?;
        let corrupt = |reason: String| StorageError::Corrupt {
            path: metadata_path.clone(),
            reason,
        };
        if let Some(id) = folder_id(folder)
            && id != metadata.id
        {
            return Err(corrupt(format!(
                "the metadata of checkpoint {} in folder {FOLDER_PREFIX}{id}",
                metadata.id
            )));
        }
        for handle in &metadata.states {
            state_file::check_handle(handle).map_err(corrupt)?;
            if handle.key_groups.end > metadata.max_parallelism {
                return Err(corrupt(format!(
                    "{}: key groups {:?} beyond the job's {} key groups",
                    handle.file, handle.key_groups, metadata.max_parallelism
                )));
            }
            state_file::verify_file(&folder.join(&handle.file), metadata.id, handle)?;
        }
        for handle in &metadata.channel_states {
            channel_file::check_handle(handle).map_err(corrupt)?;
            channel_file::verify_file(&folder.join(&handle.file), handle)?;
        }
        let dir = folder.parent().unwrap_or(Path::new("."));
        for file in shared::files_of(&metadata) {
            shared::check_name(file).map_err(corrupt)?;
            shared::verify(dir, file)?;
        }
        Ok(CompletedCheckpoint {
            path: folder.to_path_buf(),
            metadata,
        })
    }

    /// `path` relative to the checkpoint folder.
    fn describe_path(&self, path: &Path) -> String {
        path.strip_prefix(&self.dir)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    /// `error` as one line, its path relative to the checkpoint folder:
    /// `chk-7/tag-0.state: checksum mismatch (…)`.
    fn describe(&self, error: &StorageError) -> String {
        let relative = |path: &Path| self.describe_path(path);
        match error {
            StorageError::Io { path, source } => format!("{}: {source}", relative(path)),
            StorageError::Corrupt { path, reason } => format!("{}: {reason}", relative(path)),
            StorageError::NoCheckpoint { .. } => error.to_string(),
        }
    }
}

impl CheckpointStorage for FsCheckpointStorage {
    /// The highest id of any checkpoint folder, complete or not: a job goes on with ids above
    /// it, so that it never writes into a folder left by an earlier run.
    fn highest_id(&self) -> Result<Option<CheckpointId>, StorageError> {
        Ok(self.folders()?.first().map(|&(id, _)| id))
    }

    /// Writes `DIR/chk-{id}/{uid}-{subtask}.state` (replacing one left by an earlier,
    /// incomplete attempt at the same id), after checking that the bytes decode back to the
    /// snapshot's handle. Refuses to write into a completed checkpoint. Returns once the file
    /// is synced; its folder entry is synced by [`complete`](CheckpointStorage::complete),
    /// once for all of a checkpoint's files (a checkpoint of the traffic job writes two dozen:
    /// a folder sync for each was 24 syncs more per checkpoint). O(snapshot bytes): one
    /// checksum pass to frame, one to check, one write.
    fn write_state(
        &self,
        id: CheckpointId,
        snapshot: &OperatorSnapshot,
    ) -> Result<StateHandle, StorageError> {
        let folder = self.folder(id);
        if folder.join(METADATA_FILE).exists() {
            return Err(invalid_input(
                &folder,
                format!("checkpoint {id} is already complete"),
            ));
        }
        self.create_folder(&folder)?;
        let name = state_file::file_name(&snapshot.uid, snapshot.subtask)
            .map_err(|reason| invalid_input(&folder, reason))?;
        let path = folder.join(&name);
        let (handle, pieces) = state_file::encode(id, snapshot, name)
            .map_err(|reason| invalid_input(&path, reason))?;
        state_file::verify_stream(&mut pieces.reader(), id, &handle).map_err(|e| {
            StorageError::Corrupt {
                path: path.clone(),
                reason: format!("the encoded state does not decode back: {e}"),
            }
        })?;
        let file = File::create(&path).map_err(io_at(&path))?;
        let mut w = BufWriter::with_capacity(WRITE_BUFFER_BYTES, file);
        pieces.write_to(&mut w).map_err(io_at(&path))?;
        let file = w.into_inner().map_err(|e| io_at(&path)(e.into_error()))?;
        file.sync_all().map_err(io_at(&path))?;
        Ok(handle)
    }

    /// Checks every handle and that its state file exists with its length, syncs the folder and
    /// the folders of the pending parts (the entries of the state files and parts, which
    /// [`write_state`](CheckpointStorage::write_state) and the transactional writers left to
    /// it, are durable before the metadata that names them), writes `_metadata` to a temporary
    /// file (checked to decode back), syncs it, renames it into place and syncs the folder:
    /// from then on the checkpoint is complete. Then removes completed checkpoints
    /// beyond the newest `retained` and incomplete ones older than this one; as in Flink, a
    /// failed removal does not fail the completion, and the next completion tries again.
    fn complete(&self, metadata: &CheckpointMetadata) -> Result<(), StorageError> {
        let folder = self.folder(metadata.id);
        self.create_folder(&folder)?;
        for handle in &metadata.states {
            state_file::check_handle(handle)
                .map_err(|reason| invalid_input(&folder.join(METADATA_FILE), reason))?;
            let path = folder.join(&handle.file);
            let bytes = fs::metadata(&path).map_err(io_at(&path))?.len();
            if bytes != handle.file_bytes {
                return Err(StorageError::Corrupt {
                    path,
                    reason: format!(
                        "{bytes} bytes on disk, the handle says {}",
                        handle.file_bytes
                    ),
                });
            }
        }
        for handle in &metadata.channel_states {
            channel_file::check_handle(handle)
                .map_err(|reason| invalid_input(&folder.join(METADATA_FILE), reason))?;
        }
        for file in shared::files_of(metadata) {
            shared::check_name(file)
                .map_err(|reason| invalid_input(&folder.join(METADATA_FILE), reason))?;
            shared::check_exists(&self.dir, file)?;
        }
        sync_folder(&folder)?;
        // The pending parts' folders too: a transactional writer moves a part into its
        // checkpoint's folder without syncing the folder (`move_file`), leaving it to here.
        let mut part_folders: Vec<&Path> = metadata
            .pending_parts
            .iter()
            .filter_map(|part| part.path.parent())
            .filter(|dir| *dir != folder)
            .collect();
        part_folders.sort_unstable();
        part_folders.dedup();
        for dir in part_folders {
            sync_folder(dir)?;
        }
        let in_progress = folder.join(METADATA_IN_PROGRESS);
        let bytes = metadata_file::encode(metadata).map_err(|reason| StorageError::Corrupt {
            path: in_progress.clone(),
            reason,
        })?;
        let file = File::create(&in_progress).map_err(io_at(&in_progress))?;
        (&file).write_all(&bytes).map_err(io_at(&in_progress))?;
        file.sync_all().map_err(io_at(&in_progress))?;
        let path = folder.join(METADATA_FILE);
        fs::rename(&in_progress, &path).map_err(io_at(&path))?;
        sync_folder(&folder)?;
        self.registry.confirm(metadata);
        // Not an error of the completion: the checkpoint is durable; see the doc comment.
        let _ = self.retain(metadata.id);
        Ok(())
    }

    /// Removes checkpoint `id`'s folder, `_metadata` first; a missing folder is no error.
    /// Removes the state files and metadata of aborted checkpoint `id`, and keeps its `parts/`
    /// folder: the outputs' parts pre-committed for it are carried into the next checkpoint by
    /// their subtasks (see `weir_core::checkpoint::Transactions`). The folder, incomplete, is
    /// removed whole with the other incomplete ones at the next completion; one without parts
    /// is removed now.
    fn discard(&self, id: CheckpointId) -> Result<(), StorageError> {
        let folder = self.folder(id);
        let entries = match fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_at(&folder)(e)),
        };
        // The metadata first: a removal cut short never leaves a folder that looks complete.
        let metadata = folder.join(METADATA_FILE);
        match fs::remove_file(&metadata) {
            Ok(()) => sync_folder(&folder)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_at(&metadata)(e)),
        }
        let mut parts = false;
        for entry in entries {
            let path = entry.map_err(io_at(&folder))?.path();
            if path.file_name().is_some_and(|n| n == PARTS_FOLDER) {
                parts = true;
                continue;
            }
            let removed = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            match removed {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_at(&path)(e)),
                _ => {}
            }
        }
        if parts {
            return Ok(());
        }
        match fs::remove_dir(&folder) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_at(&folder)(e)),
            _ => Ok(()),
        }
    }

    /// Searches the completed checkpoints newest first and returns the first that verifies
    /// whole ([`load`](CheckpointStorage::load)); each folder passed over (incomplete, or
    /// damaged: file and reason) is reported through `warn`. `Ok(None)` when no folder has a
    /// `_metadata` (a fresh start, or a crash before the first completion);
    /// `Err(NoCheckpoint)` when some had one but none verified. O(bytes of the checkpoints
    /// read).
    fn latest(
        &self,
        warn: &mut dyn FnMut(&str),
    ) -> Result<Option<CompletedCheckpoint>, StorageError> {
        let mut refused = Vec::new();
        for (_, folder) in self.folders()? {
            let metadata = folder.join(METADATA_FILE);
            if !metadata.exists() {
                warn(&format!(
                    "{}: missing, an incomplete checkpoint; skipped",
                    self.describe_path(&metadata)
                ));
                continue;
            }
            match Self::verify(&folder) {
                Ok(checkpoint) => return Ok(Some(checkpoint)),
                Err(e) => {
                    let line = self.describe(&e);
                    warn(&format!("{line}; checkpoint skipped"));
                    refused.push(line);
                }
            }
        }
        if refused.is_empty() {
            Ok(None)
        } else {
            Err(StorageError::NoCheckpoint {
                dir: self.dir.clone(),
                refused,
            })
        }
    }

    /// Verifies and returns the checkpoint in `path`: a `chk-N` folder, anywhere, or its
    /// `_metadata` file. Any damage is an error naming the file and the reason.
    fn load(&self, path: &Path) -> Result<CompletedCheckpoint, StorageError> {
        let folder = match path.file_name() {
            Some(name) if name == METADATA_FILE && path.is_file() => {
                path.parent().unwrap_or(Path::new("."))
            }
            _ => path,
        };
        Self::verify(folder)
    }

    /// Creates `DIR/chk-{id}/channels-{task}.state` (replacing one left by an earlier,
    /// incomplete attempt); refuses to write into a completed checkpoint. Its chunks are
    /// durable once [`ChannelStateSink::finish`] returned (file and folder entry synced).
    fn channel_state_writer(
        &self,
        id: CheckpointId,
        task: usize,
    ) -> Result<Box<dyn ChannelStateSink>, StorageError> {
        let folder = self.folder(id);
        if folder.join(METADATA_FILE).exists() {
            return Err(invalid_input(
                &folder,
                format!("checkpoint {id} is already complete"),
            ));
        }
        self.create_folder(&folder)?;
        Ok(Box::new(channel_file::FsChannelStateSink::create(
            &folder,
            channel_file::file_name(task),
        )?))
    }

    /// Reads one chunk, checking its frame and its descriptor; O(chunk bytes).
    fn read_channel_chunk(
        &self,
        checkpoint: &CompletedCheckpoint,
        handle: &ChannelStateHandle,
        chunk: &ChunkHandle,
    ) -> Result<Vec<u8>, StorageError> {
        channel_file::check_handle(handle).map_err(|reason| StorageError::Corrupt {
            path: checkpoint.path.join(METADATA_FILE),
            reason,
        })?;
        channel_file::read_chunk(&checkpoint.path.join(&handle.file), chunk)
    }

    /// Reads the handle's operator state and the key groups of `key_groups` it holds,
    /// checking each frame read; O(bytes read), not O(file).
    fn read_state(
        &self,
        checkpoint: &CompletedCheckpoint,
        handle: &StateHandle,
        key_groups: Range<usize>,
    ) -> Result<OperatorSnapshot, StorageError> {
        state_file::check_handle(handle).map_err(|reason| StorageError::Corrupt {
            path: checkpoint.path.join(METADATA_FILE),
            reason,
        })?;
        state_file::read_ranged(
            &checkpoint.path.join(&handle.file),
            checkpoint.metadata.id,
            handle,
            key_groups,
        )
    }
}
