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
    AckTimings, BarrierMode, ChannelStateFeed, ChannelStateFile, CheckpointId, CheckpointStorage,
    ChunkHandle, CompletedCheckpoint, PARTS_FOLDER, PendingOperator, PoolJob, RestoreContext,
    Signals, Site, SnapshotJob, SnapshotMode, StateHandle, TaskSnapshot, Transactions,
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

/// One chunk of channel state a restored writer replays: to its old downstream channel when
/// the exchange kept its shape, else (`None`) through the partitioner.
#[derive(Debug, Clone)]
pub(crate) struct ReplayChunk {
    pub(crate) channel: Option<usize>,
    file: usize,
    chunk: ChunkHandle,
}

impl RestoreSource {
    /// The channel state of `exchange` that upstream subtask `upstream` of `upstreams` (now
    /// writing to `downstreams` channels) replays, in replay order: both sides of every old
    /// channel `u → d` with `u == upstream` when the exchange kept its shape, else with
    /// `u % upstreams == upstream` (a deterministic assignment of the old upstreams; the
    /// partitioner then routes each record, by key group for a keyed exchange). O(chunks of
    /// the checkpoint · log).
    pub(crate) fn channel_replay(
        &self,
        exchange: &str,
        upstream: usize,
        upstreams: usize,
        downstreams: usize,
    ) -> Vec<ReplayChunk> {
        let mut chunks: Vec<ReplayChunk> = self
            .checkpoint
            .metadata
            .channel_states
            .iter()
            .enumerate()
            .flat_map(|(file, handle)| {
                handle
                    .chunks
                    .iter()
                    .filter(|c| c.info.exchange == exchange)
                    .map(move |c| (file, c))
            })
            .filter_map(|(file, c)| {
                let same_shape = c.info.upstreams == upstreams && c.info.downstreams == downstreams;
                let mine = if same_shape {
                    c.info.upstream == upstream
                } else {
                    c.info.upstream % upstreams.max(1) == upstream
                };
                mine.then(|| ReplayChunk {
                    channel: same_shape.then_some(c.info.downstream),
                    file,
                    chunk: c.clone(),
                })
            })
            .collect();
        chunks.sort_by_key(|c| c.chunk.info.replay_key());
        chunks
    }

    /// Reads one chunk to replay, verified.
    pub(crate) fn read_chunk(&self, chunk: &ReplayChunk) -> Result<Vec<u8>, JobError> {
        let handle = &self.checkpoint.metadata.channel_states[chunk.file];
        let bytes = self
            .storage
            .read_channel_chunk(&self.checkpoint, handle, &chunk.chunk)
            .map_err(|e| {
                JobError::Checkpoint(format!(
                    "restoring channel state from checkpoint {}: {e}",
                    self.id()
                ))
            })?;
        self.bytes_read
            .fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(bytes)
    }
}

/// What a subtask needs to take part in checkpoints.
#[derive(Debug)]
pub(crate) struct TaskCheckpointing {
    pub(crate) signals: Arc<Signals>,
    pub(crate) snapshots: Sender<PoolJob>,
    /// The coordinator's reports, for a source that finished reading
    /// ([`Report::SourceFinished`](crate::checkpoint::Report::SourceFinished)).
    pub(crate) reports: crate::sync::mpsc::Sender<crate::checkpoint::Report>,
    pub(crate) mode: BarrierMode,
    pub(crate) snapshot_mode: SnapshotMode,
    pub(crate) dir: PathBuf,
    pub(crate) transactions: Transactions,
}

/// Takes this subtask's part of checkpoint `barrier`: `own` adds the task's own state (source
/// offsets, the valve), the chain snapshots its operators and forwards the barrier (by
/// priority when `barrier.unaligned`), the registered transactions pre-commit; the keyed views
/// go to a snapshot thread.
///
/// Unaligned, the output side's channel state goes to the snapshot threads too, and the feed
/// of the subtask's channel state comes back: the caller pushes its input channel state into
/// it and closes it when every barrier arrived (a source closes it at once).
pub(crate) fn snapshot<T>(
    env: &TaskEnv,
    barrier: CheckpointBarrier,
    alignment_ns: u64,
    chain: &mut dyn Output<T>,
    own: impl FnOnce(&mut TaskSnapshot),
) -> Result<Option<ChannelStateFeed>, TaskError> {
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
    debug_assert!(
        barrier.unaligned || snapshot.channel_chunks.is_empty(),
        "only unaligned barriers leave output channel state"
    );
    let channel_state = barrier
        .unaligned
        .then(|| ChannelStateFile::new(id, env.task_index()));
    let mut feed = channel_state
        .as_ref()
        .map(|file| ChannelStateFeed::new(Arc::clone(file), ck.snapshots.clone()));
    if let Some(feed) = &mut feed {
        for chunk in std::mem::take(&mut snapshot.channel_chunks) {
            if !feed.push(chunk) {
                return Err(TaskError::Cancelled);
            }
        }
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
        channel_state,
    };
    if ck.snapshots.send(PoolJob::Snapshot(job)).is_err() {
        return Err(TaskError::Cancelled);
    }
    Ok(feed)
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
