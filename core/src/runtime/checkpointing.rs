//! A subtask's side of checkpoints: what it needs to take part (signals, where to send its
//! snapshot, the restore source), and the one routine both task loops run at a barrier.

use std::collections::HashMap;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::Instant;

use super::control::TaskEnv;
use crate::checkpoint::{
    AckTimings, BarrierMode, CheckpointId, CheckpointStorage, CompletedCheckpoint, PARTS_FOLDER,
    PendingOperator, RestoreContext, Signals, Site, SnapshotJob, SnapshotMode, StateHandle,
    TaskSnapshot, Transactions,
};
use crate::error::{JobError, TaskError};
use crate::net::CheckpointBarrier;
use crate::operator::Output;

/// The completed checkpoint an attempt restores from, indexed by operator uid.
#[derive(Debug)]
pub(crate) struct RestoreSource {
    checkpoint: CompletedCheckpoint,
    storage: Arc<dyn CheckpointStorage>,
    by_uid: HashMap<String, Vec<StateHandle>>,
    bytes_read: std::sync::atomic::AtomicU64,
}

impl RestoreSource {
    pub(crate) fn new(
        checkpoint: CompletedCheckpoint,
        storage: Arc<dyn CheckpointStorage>,
    ) -> Self {
        let mut by_uid: HashMap<String, Vec<StateHandle>> = HashMap::new();
        for handle in &checkpoint.metadata.states {
            by_uid
                .entry(handle.uid.clone())
                .or_default()
                .push(handle.clone());
        }
        for handles in by_uid.values_mut() {
            handles.sort_by_key(|h| h.subtask);
        }
        Self {
            checkpoint,
            storage,
            by_uid,
            bytes_read: Default::default(),
        }
    }

    pub(crate) fn id(&self) -> CheckpointId {
        self.checkpoint.metadata.id
    }

    /// Bytes of state read so far.
    pub(crate) fn bytes_read(&self) -> u64 {
        self.bytes_read.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Operator `uid`'s state for a subtask that now owns `key_groups`: the non-keyed state of
    /// every old subtask and the blobs of the owned groups. `None`: the checkpoint has no state
    /// for it (a new or stateless operator).
    pub(crate) fn context_for(
        &self,
        uid: &str,
        key_groups: Range<usize>,
    ) -> Result<Option<RestoreContext>, JobError> {
        let Some(handles) = self.by_uid.get(uid) else {
            return Ok(None);
        };
        let mut context = RestoreContext {
            checkpoint: self.id(),
            old_parallelism: handles.first().map_or(0, |h| h.parallelism),
            operator_states: Vec::with_capacity(handles.len()),
            keyed: Vec::new(),
        };
        for handle in handles {
            let wanted = key_groups.start.max(handle.key_groups.start)
                ..key_groups.end.min(handle.key_groups.end);
            let snapshot = self
                .storage
                .read_state(&self.checkpoint, handle, wanted.clone())
                .map_err(|e| {
                    JobError::Checkpoint(format!(
                        "restoring '{uid}' from checkpoint {}: {e}",
                        self.id()
                    ))
                })?;
            let bytes =
                snapshot.operator_state.len() + snapshot.keyed.iter().map(Vec::len).sum::<usize>();
            self.bytes_read
                .fetch_add(bytes as u64, std::sync::atomic::Ordering::Relaxed);
            context.operator_states.push(snapshot.operator_state);
            context
                .keyed
                .extend(snapshot.key_groups.clone().zip(snapshot.keyed));
        }
        context.keyed.sort_by_key(|(g, _)| *g);
        Ok(Some(context))
    }
}

/// What a subtask needs to take part in checkpoints.
#[derive(Debug)]
pub(crate) struct TaskCheckpointing {
    pub(crate) signals: Arc<Signals>,
    pub(crate) snapshots: Sender<SnapshotJob>,
    pub(crate) mode: BarrierMode,
    pub(crate) snapshot_mode: SnapshotMode,
    pub(crate) dir: PathBuf,
    pub(crate) transactions: Transactions,
}

/// Takes this subtask's part of checkpoint `barrier`: `own` adds the task's own state (source
/// offsets, the valve), the chain snapshots its operators and forwards the barrier, the
/// registered transactions pre-commit; the keyed views go to a snapshot thread.
pub(crate) fn snapshot<T>(
    env: &TaskEnv,
    barrier: CheckpointBarrier,
    alignment_ns: u64,
    chain: &mut dyn Output<T>,
    own: impl FnOnce(&mut TaskSnapshot),
) -> Result<(), TaskError> {
    let ck = env
        .checkpointing()
        .expect("barriers only flow when checkpointing");
    let started = Instant::now();
    let start_delay_ns = crate::checkpoint::unix_ms()
        .saturating_sub(barrier.triggered_at_ms)
        .saturating_mul(1_000_000);
    env.injector()
        .hit(Site::SyncSnapshot, env.task_index())
        .map_err(TaskError::Failed)?;
    let id = barrier.checkpoint_id;
    let part_dir = ck.dir.join(format!("chk-{id}")).join(PARTS_FOLDER);
    let mut snapshot = TaskSnapshot::new(id, part_dir.clone());
    own(&mut snapshot);
    chain.barrier(barrier, &mut snapshot)?;
    let completed = ck.signals.completed();
    let parts = ck
        .transactions
        .pre_commit_all(id, &part_dir, completed)
        .map_err(|e| {
            TaskError::Failed(JobError::Checkpoint(format!(
                "task '{}' (subtask {}) could not pre-commit its outputs for checkpoint {id}: {e}",
                env.task_name(),
                env.subtask()
            )))
        })?;
    snapshot.parts.extend(parts);
    let mut operators = std::mem::take(&mut snapshot.operators);
    if ck.snapshot_mode == SnapshotMode::Sync {
        // The baseline: serialize every keyed view here, on the task thread.
        operators
            .iter_mut()
            .for_each(PendingOperator::write_keyed_now);
    }
    let job = SnapshotJob {
        checkpoint: id,
        task: env.task_index(),
        subtask: env.subtask(),
        parallelism: env.parallelism(),
        operators,
        parts: std::mem::take(&mut snapshot.parts),
        timings: AckTimings {
            sync_ns: started.elapsed().as_nanos() as u64,
            async_ns: 0,
            alignment_ns,
            start_delay_ns,
        },
    };
    if ck.snapshots.send(job).is_err() {
        return Err(TaskError::Cancelled);
    }
    Ok(())
}

/// Tells the chain about checkpoints completed since `notified`; returns the newest.
pub(crate) fn notify_completed<T>(
    env: &TaskEnv,
    notified: CheckpointId,
    chain: &mut dyn Output<T>,
) -> Result<CheckpointId, TaskError> {
    let Some(ck) = env.checkpointing() else {
        return Ok(notified);
    };
    let completed = ck.signals.completed();
    if completed > notified {
        chain.checkpoint_complete(completed)?;
    }
    Ok(completed.max(notified))
}
