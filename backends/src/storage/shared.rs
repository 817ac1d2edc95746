//! Shared state of incremental checkpoints (Flink's `SharedStateRegistry`): which files under
//! `DIR/shared/` the retained checkpoints refer to, their verification, and the removal of
//! the files no retained checkpoint needs.
//!
//! The count is recomputed from the retained checkpoints' `_metadata` at each completion, not
//! kept in memory: a restarted process (or one that restored from an older checkpoint) counts
//! what is on disk. Files of an aborted checkpoint are referred to by no `_metadata`, so they
//! go at the next completion. A file is only removed at a completion; checkpoints are one at a
//! time (`max-concurrent-checkpoints` is 1), so at a completion no snapshot of a newer
//! checkpoint is writing into `shared/` except the late one of an aborted checkpoint, whose
//! file is garbage.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Mutex;

use weir_core::checkpoint::{CheckpointMetadata, SHARED_FOLDER, SharedFile, StorageError};

use super::file_format;

/// The shared files known to be in completed checkpoints, which the memory-mapped backend
/// asks before it takes a snapshot as the base of the next increment. Thread-safe: the
/// coordinator confirms, snapshot threads and tasks ask.
#[derive(Debug, Default)]
pub struct SharedStateRegistry {
    confirmed: Mutex<HashSet<String>>,
}

impl SharedStateRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `file` (`shared/NAME`) is in a completed checkpoint.
    pub fn is_confirmed(&self, file: &str) -> bool {
        self.lock().contains(file)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.confirmed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records the shared files of a completed checkpoint.
    pub(crate) fn confirm(&self, metadata: &CheckpointMetadata) {
        let mut confirmed = self.lock();
        for file in metadata.states.iter().flat_map(|h| &h.shared) {
            confirmed.insert(file.file.clone());
        }
    }

    /// Forgets the files that are gone.
    fn retain(&self, referenced: &HashSet<String>) {
        self.lock().retain(|f| referenced.contains(f));
    }
}

/// The shared files of `metadata`, each once.
pub(crate) fn files_of(metadata: &CheckpointMetadata) -> Vec<&SharedFile> {
    let mut seen = HashSet::new();
    metadata
        .states
        .iter()
        .flat_map(|h| &h.shared)
        .filter(|f| seen.insert(f.file.as_str()))
        .collect()
}

/// Checks a shared file named in metadata: a plain file of `shared/`.
pub(crate) fn check_name(file: &SharedFile) -> Result<(), String> {
    crate::state::check_shared_name(&file.file)
}

/// Checks that `dir/FILE` exists with its length (at completion: the file was written).
pub(crate) fn check_exists(dir: &Path, file: &SharedFile) -> Result<(), StorageError> {
    let path = dir.join(&file.file);
    let bytes = fs::metadata(&path)
        .map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => StorageError::Corrupt {
                path: path.clone(),
                reason: "missing".into(),
            },
            _ => StorageError::Io {
                path: path.clone(),
                source,
            },
        })?
        .len();
    if bytes != file.bytes {
        return Err(StorageError::Corrupt {
            path,
            reason: format!("{bytes} bytes on disk, the handle says {}", file.bytes),
        });
    }
    Ok(())
}

/// Verifies `dir/FILE` whole: its length and the CRC32 of all its bytes. O(file).
pub(crate) fn verify(dir: &Path, file: &SharedFile) -> Result<(), StorageError> {
    check_exists(dir, file)?;
    let path = dir.join(&file.file);
    let mut f = file_format::open(&path)?;
    let mut crc = crc32fast::Hasher::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut chunk).map_err(|source| StorageError::Io {
            path: path.clone(),
            source,
        })?;
        if n == 0 {
            break;
        }
        crc.update(&chunk[..n]);
    }
    let computed = crc.finalize();
    if computed != file.crc32 {
        return Err(StorageError::Corrupt {
            path,
            reason: format!(
                "checksum mismatch (the checkpoint says 0x{:08x}, computed 0x{computed:08x})",
                file.crc32
            ),
        });
    }
    Ok(())
}

/// Removes every file of `dir/shared/` that none of `retained` (the metadata of the retained
/// checkpoints) refers to, and tells `registry`. Returns the files removed.
pub(crate) fn remove_unreferenced(
    dir: &Path,
    retained: &[CheckpointMetadata],
    registry: &SharedStateRegistry,
) -> Result<Vec<String>, StorageError> {
    let referenced: HashSet<String> = retained
        .iter()
        .flat_map(files_of)
        .map(|f| f.file.clone())
        .collect();
    registry.retain(&referenced);
    let folder = dir.join(SHARED_FOLDER);
    let entries = match fs::read_dir(&folder) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(StorageError::Io {
                path: folder,
                source,
            });
        }
    };
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| StorageError::Io {
            path: folder.clone(),
            source,
        })?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let relative = format!("{SHARED_FOLDER}/{name}");
        if referenced.contains(&relative) || !entry.path().is_file() {
            continue;
        }
        match fs::remove_file(entry.path()) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(StorageError::Io {
                    path: entry.path(),
                    source: e,
                });
            }
            _ => removed.push(relative),
        }
    }
    Ok(removed)
}
