//! What the library-level checkpoint tests share: a checkpointed runtime over a test folder.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use weir_backends::FsCheckpointStorage;
use weir_core::RuntimeConfig;
use weir_core::checkpoint::{BarrierMode, CheckpointConfig, RestartStrategy};
use weir_core::runtime::RestoreFrom;
use weir_core::sink::TransactionalOutputs;

/// A runtime that checkpoints every 10 ms in `mode` into `dir/checkpoints` (2 retained), with
/// transactional outputs in `dir/out`, unpinned; and those outputs.
pub fn checkpointed(
    dir: &Path,
    mode: BarrierMode,
    failures: Option<(u32, u64)>,
    restart: RestartStrategy,
    restore: Option<RestoreFrom>,
) -> (RuntimeConfig, Arc<TransactionalOutputs>) {
    let storage = Arc::new(FsCheckpointStorage::new(dir.join("checkpoints"), 2).expect("storage"));
    let outputs = Arc::new(TransactionalOutputs::open(dir.join("out")).expect("outputs"));
    let mut checkpoint =
        CheckpointConfig::new(Duration::from_millis(10), dir.join("checkpoints"), storage);
    checkpoint.mode = mode;
    let config = RuntimeConfig {
        pin: false,
        checkpoint: Some(checkpoint),
        restart,
        restore,
        inject_failures: failures,
        committer: Some(outputs.clone()),
        ..RuntimeConfig::default()
    };
    (config, outputs)
}
