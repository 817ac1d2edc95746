//! `--state-backend`: where keyed state lives, and its Flink keys.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::ValueEnum;
use weir_backends::storage::SharedStateRegistry;
use weir_backends::{MmapBackend, MmapConfig};
use weir_core::state::{self, StateBackendRef};

/// Flink's key of the backend.
pub(super) const BACKEND: &str = "state.backend.type";
/// Flink's key of incremental checkpoints (older name).
pub(super) const INCREMENTAL: &str = "state.backend.incremental";
/// Flink's key of incremental checkpoints (Flink 2).
pub(super) const INCREMENTAL_NEW: &str = "execution.checkpointing.incremental";

/// `--state-backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Backend {
    /// Typed persistent maps on the heap; full copy-on-write snapshots.
    #[default]
    Heap,
    /// Values in memory-mapped files; incremental snapshots.
    Mmap,
}

/// `-D state.backend.type`: Flink's `hashmap` is weir's `heap`.
pub(super) fn parse(text: &str) -> Result<Backend, String> {
    match text.to_ascii_lowercase().as_str() {
        "heap" | "hashmap" => Ok(Backend::Heap),
        "mmap" => Ok(Backend::Mmap),
        other => Err(format!(
            "'{other}' is not a state backend: heap (hashmap) or mmap"
        )),
    }
}

/// `-D state.backend.incremental`.
pub(super) fn parse_bool(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!("'{other}' is not true or false")),
    }
}

/// Checks the incremental setting against the backend: the heap's snapshots are full, the
/// memory-mapped backend's incremental, by design.
pub(super) fn check_incremental(backend: Backend, incremental: Option<bool>) -> Result<(), String> {
    match (backend, incremental) {
        (Backend::Heap, Some(true)) => Err(format!(
            "-D {INCREMENTAL}=true: the heap backend takes full snapshots; \
             incremental ones need --state-backend mmap"
        )),
        (Backend::Mmap, Some(false)) => Err(format!(
            "-D {INCREMENTAL}=false: the mmap backend's snapshots are always incremental"
        )),
        _ => Ok(()),
    }
}

/// The backend's handle: the memory-mapped one makes its segments in `local_dir` (default: a
/// `weir-mmap` folder in the system's temporary folder) and, with checkpoints, writes its
/// shared files under `checkpoint_dir`, learning completions from `registry`.
pub(super) fn build(
    backend: Backend,
    local_dir: Option<&Path>,
    checkpoints: Option<(PathBuf, Arc<SharedStateRegistry>)>,
) -> Result<StateBackendRef, String> {
    match backend {
        Backend::Heap => Ok(state::heap()),
        Backend::Mmap => {
            let local_dir =
                local_dir.map_or_else(|| std::env::temp_dir().join("weir-mmap"), Path::to_path_buf);
            let (checkpoint_dir, registry) = match checkpoints {
                Some((dir, registry)) => (Some(dir), registry),
                None => (None, Arc::new(SharedStateRegistry::new())),
            };
            let backend = MmapBackend::new(MmapConfig::new(local_dir, checkpoint_dir), registry)
                .map_err(|e| format!("--state-backend mmap: {e}"))?;
            Ok(Arc::new(backend))
        }
    }
}
