//! The checkpoint coordinator (Flink's `CheckpointCoordinator`) and the snapshot threads.
//!
//! It runs on the thread that started the job, beside the task threads: it triggers a
//! checkpoint every interval (at most one in flight, a minimum pause after each), collects one
//! acknowledgement per subtask, writes the metadata, commits the transactional outputs, and
//! announces completion; a checkpoint that a subtask declines or that passes the timeout is
//! aborted, its files removed and counted. Sources that finished reading keep taking part; when
//! every source subtask has finished, the coordinator triggers the final checkpoint at once,
//! and the job ends when it completes (everything committed).
//!
//! Tasks and coordinator talk through [`Signals`] (coordinator → tasks: a few atomics the task
//! loops read once per batch) and a channel of [`Report`]s (tasks → coordinator, from
//! `crate::sync::mpsc`). Both are control-plane: a handful of messages per checkpoint, never
//! per record. Which report counts towards which checkpoint, and what the tasks are told, is
//! [`PendingCheckpoints`]' job; the coordinator adds time, storage, commits and statistics.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::channel_state::{ChannelChunk, ChannelStateFile};
use super::config::CheckpointConfig;
use super::inject::{FailureInjector, Site};
use super::pending::{
    AckTimings, Acknowledgement, PendingCheckpoint, PendingCheckpoints, Received, Report,
};
use super::signals::Signals;
use super::snapshot::PendingOperator;
use super::stats::{CheckpointRecord, CheckpointStats, Status};
use super::{CheckpointId, CheckpointMetadata, CheckpointStorage, PendingPart};
use crate::error::JobError;
use crate::sync::mpsc::{Receiver, RecvTimeoutError, Sender};

/// Commits the transactional outputs of completed checkpoints (implemented by
/// [`crate::sink::TransactionalOutputs`]).
pub trait OutputCommitter: Send + Sync + std::fmt::Debug {
    /// Makes the parts of checkpoint `checkpoint` (and of none later) visible; idempotent.
    fn commit(&self, checkpoint: CheckpointId, parts: &[PendingPart]) -> Result<(), String>;
    /// Before an attempt: redo the commit of the checkpoint restored from (or retract what a
    /// newer one committed), discard everything uncommitted. Returns warnings to print.
    fn recover(
        &self,
        restored: Option<(CheckpointId, &[PendingPart])>,
    ) -> Result<Vec<String>, String>;
    /// The newest checkpoint whose outputs are committed (0: none).
    fn last_committed(&self) -> CheckpointId;
}

/// A task's snapshot on its way to the snapshot threads.
pub(crate) struct SnapshotJob {
    pub(crate) checkpoint: CheckpointId,
    pub(crate) task: usize,
    pub(crate) subtask: usize,
    pub(crate) parallelism: usize,
    pub(crate) operators: Vec<PendingOperator>,
    pub(crate) parts: Vec<PendingPart>,
    pub(crate) timings: AckTimings,
    /// Unaligned: the channel state the acknowledgement waits for.
    pub(crate) channel_state: Option<Arc<ChannelStateFile>>,
}

/// What the snapshot threads do: each job runs to its end without waiting for a task.
pub(crate) enum PoolJob {
    /// Serialize and write a subtask's operator states, then acknowledge (or hand the
    /// acknowledgement to its channel state).
    Snapshot(SnapshotJob),
    /// Append one chunk of a subtask's channel state.
    Chunk(Arc<ChannelStateFile>, ChannelChunk),
    /// The task sent this many chunks of its channel state: none follows.
    Close(Arc<ChannelStateFile>, u64),
}

/// The snapshot threads of one attempt: serialize keyed views, write files, acknowledge.
pub(crate) struct SnapshotPool {
    jobs: Option<std::sync::mpsc::Sender<PoolJob>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for SnapshotPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotPool")
            .field("threads", &self.threads.len())
            .finish()
    }
}

impl SnapshotPool {
    pub(crate) fn start(
        threads: usize,
        storage: Arc<dyn CheckpointStorage>,
        reports: Sender<Report>,
        injector: Arc<FailureInjector>,
    ) -> Self {
        // The jobs channel stays std's: only std threads use it, never a loom model.
        let (tx, rx) = std::sync::mpsc::channel::<PoolJob>();
        let rx = Arc::new(Mutex::new(rx));
        let threads = (0..threads.max(1))
            .map(|i| {
                let (rx, storage, reports, injector) = (
                    Arc::clone(&rx),
                    Arc::clone(&storage),
                    reports.clone(),
                    Arc::clone(&injector),
                );
                std::thread::Builder::new()
                    .name(format!("snapshot-{i}"))
                    .spawn(move || {
                        loop {
                            let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                            let Ok(job) = job else { return };
                            let report = match job {
                                PoolJob::Snapshot(job) => {
                                    write_job(job, storage.as_ref(), &injector)
                                }
                                PoolJob::Chunk(file, chunk) => file.write(chunk, storage.as_ref()),
                                PoolJob::Close(file, chunks) => file.close(chunks),
                            };
                            if let Some(report) = report {
                                let _ = reports.send(report);
                            }
                        }
                    })
                    .expect("spawning a snapshot thread")
            })
            .collect();
        Self {
            jobs: Some(tx),
            threads,
        }
    }

    pub(crate) fn sender(&self) -> std::sync::mpsc::Sender<PoolJob> {
        self.jobs.clone().expect("pool running")
    }

    /// Waits for the queued snapshots to be written, then ends the threads.
    pub(crate) fn stop(mut self) {
        self.jobs = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The asynchronous phase of one subtask's snapshot: its report, unless the acknowledgement
/// waits for its channel state (which then reports).
fn write_job(
    job: SnapshotJob,
    storage: &dyn CheckpointStorage,
    injector: &FailureInjector,
) -> Option<Report> {
    let started = Instant::now();
    let (checkpoint, task) = (job.checkpoint, job.task);
    let channel_state = job.channel_state;
    let decline = |reason: String| match &channel_state {
        Some(file) => file.decline(reason),
        None => Some(Report::Declined {
            checkpoint,
            task,
            reason,
        }),
    };
    if let Err(e) = injector.hit(Site::AsyncSnapshot, task) {
        return decline(e.to_string());
    }
    let mut states = Vec::with_capacity(job.operators.len());
    let mut bytes = 0;
    for part in job.operators {
        let uid = part.uid.clone();
        let snapshot = match part.finish(job.subtask, job.parallelism) {
            Ok(snapshot) => snapshot,
            Err(e) => return decline(format!("writing keyed state of '{uid}': {e}")),
        };
        match storage.write_state(checkpoint, &snapshot) {
            Ok(handle) => {
                bytes += handle.checkpointed_bytes();
                states.push(handle);
            }
            Err(e) => return decline(format!("writing state of '{}': {e}", snapshot.uid)),
        }
    }
    bytes += job.parts.iter().map(|p| p.bytes).sum::<u64>();
    let mut timings = job.timings;
    timings.async_ns = started.elapsed().as_nanos() as u64;
    let ack = Acknowledgement {
        states,
        parts: job.parts,
        bytes,
        timings,
        unaligned: channel_state.is_some(),
        ..Acknowledgement::default()
    };
    match &channel_state {
        Some(file) => file.acknowledge(ack),
        None => Some(Report::Ack {
            checkpoint,
            task,
            ack,
        }),
    }
}

/// Bytes of a whole checkpoint: state files, each shared file it refers to once, output parts.
fn full_state_bytes(metadata: &CheckpointMetadata) -> u64 {
    let mut shared = std::collections::HashSet::new();
    let files: u64 = metadata.states.iter().map(|h| h.file_bytes).sum();
    let shared_bytes: u64 = metadata
        .states
        .iter()
        .flat_map(|h| &h.shared)
        .filter(|f| shared.insert(f.file.as_str()))
        .map(|f| f.bytes)
        .sum();
    let parts: u64 = metadata.pending_parts.iter().map(|p| p.bytes).sum();
    files + shared_bytes + parts
}

/// The coordinator of one job: its state lives across attempts (ids continue, history grows).
pub(crate) struct Coordinator {
    config: CheckpointConfig,
    committer: Option<Arc<dyn OutputCommitter>>,
    max_parallelism: usize,
    pending: PendingCheckpoints,
    last_end: Instant,
    failed_in_row: u32,
    /// The timeout of the checkpoint in flight: the configured one, except for a final
    /// checkpoint after an expired final one, which gets twice its predecessor's (a bounded
    /// job must be able to end even with a timeout shorter than its final checkpoint takes).
    timeout: Duration,
    /// The timeout the next final checkpoint gets.
    final_timeout: Duration,
    /// The newest checkpoint completed in this run (or restored from), 0 before any.
    last_completed: CheckpointId,
    /// When the tasks of the latest attempt started (built, state restored).
    pub(crate) attempt_started: Option<Instant>,
    pub(crate) stats: CheckpointStats,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("pending", &self.pending)
            .finish()
    }
}

/// Milliseconds since the Unix epoch (barrier trigger times).
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Coordinator {
    pub(crate) fn new(
        config: CheckpointConfig,
        committer: Option<Arc<dyn OutputCommitter>>,
        max_parallelism: usize,
        first_id: CheckpointId,
    ) -> Self {
        Self {
            timeout: config.timeout,
            final_timeout: config.timeout,
            config,
            committer,
            max_parallelism,
            pending: PendingCheckpoints::new(first_id),
            last_end: Instant::now(),
            failed_in_row: 0,
            last_completed: 0,
            attempt_started: None,
            stats: CheckpointStats::default(),
        }
    }

    pub(crate) fn config(&self) -> &CheckpointConfig {
        &self.config
    }

    pub(crate) fn committer(&self) -> Option<&Arc<dyn OutputCommitter>> {
        self.committer.as_ref()
    }

    /// Ids continue after a restore from `id`.
    pub(crate) fn continue_after(&mut self, id: CheckpointId) {
        self.last_completed = id;
        self.pending.continue_after(id);
    }

    /// Runs one attempt's coordination until all `tasks` task threads ended. `fail` records a
    /// job failure (too many failed checkpoints, a failed commit) and cancels the attempt.
    pub(crate) fn run_attempt(
        &mut self,
        signals: &Signals,
        reports: &Receiver<Report>,
        tasks: usize,
        source_subtasks: usize,
        injector: &FailureInjector,
        fail: &dyn Fn(JobError),
    ) {
        let mut ended = 0;
        self.last_end = Instant::now();
        // After a job failure no checkpoint is triggered: a checkpoint whose metadata is durable
        // but whose commit failed (or was never tried) is neither completed nor aborted for the
        // tasks, and a newer barrier would make them carry its pre-committed parts away from
        // the folder its metadata names (and that the next attempt's recovery commits from).
        let failed = std::cell::Cell::new(false);
        let fail = &|e: JobError| {
            failed.set(true);
            fail(e);
        };
        while ended < tasks {
            let now = Instant::now();
            let next_trigger = self.last_end + self.config.interval.max(self.config.min_pause);
            let all_sources_done = signals.sources_finished() >= source_subtasks;
            if self.pending.in_flight().is_none()
                && !failed.get()
                && !signals.final_completed()
                && (all_sources_done || now >= next_trigger)
            {
                self.pending.trigger(signals, tasks, all_sources_done);
                self.timeout = if all_sources_done {
                    self.final_timeout
                } else {
                    self.config.timeout
                };
            }
            let wait = match self.pending.in_flight() {
                Some(f) => (f.triggered() + self.timeout).saturating_duration_since(now),
                None => next_trigger.saturating_duration_since(now),
            }
            .clamp(Duration::from_millis(1), Duration::from_millis(50));
            match reports.recv_timeout(wait) {
                Ok(report) => match self.pending.receive(report) {
                    // A finished source: the loop's top looks at the final checkpoint.
                    Received::Pending | Received::Unknown | Received::SourceFinished => {}
                    Received::TaskEnded => ended += 1,
                    Received::Acknowledged(f) => self.complete(signals, f, injector, fail),
                    Received::Declined {
                        checkpoint,
                        task,
                        reason,
                    } => {
                        let reason = format!("declined by subtask index {task}: {reason}");
                        self.abort(signals, checkpoint, Status::Failed(reason), fail);
                    }
                    Received::Late(id) => {
                        // Its snapshot thread may have written files after the abort removed
                        // the folder: remove them again.
                        let _ = self.config.storage.discard(id);
                    }
                },
                Err(RecvTimeoutError::Timeout) => {
                    if let Some(f) = self.pending.expire(self.timeout) {
                        let reason = format!(
                            "checkpoint {} expired after {} ms before completing",
                            f.id(),
                            self.timeout.as_millis()
                        );
                        if signals.sources_finished() >= source_subtasks {
                            self.final_timeout = self.final_timeout.saturating_mul(2);
                        }
                        self.abort(signals, f, Status::Expired(reason), fail);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        if let Some(f) = self.pending.end_attempt() {
            // The attempt ended (failed or cancelled) with a checkpoint in flight.
            let _ = self.config.storage.discard(f.id());
        }
    }

    /// Writes the metadata of `f`, whose every subtask acknowledged, commits its outputs and
    /// announces it; a failed metadata write aborts it, a failed commit fails the job.
    fn complete(
        &mut self,
        signals: &Signals,
        f: PendingCheckpoint,
        injector: &FailureInjector,
        fail: &dyn Fn(JobError),
    ) {
        let mut states = Vec::new();
        let mut parts = Vec::new();
        let mut channel_states = Vec::new();
        let mut record = CheckpointRecord::new(f.id(), f.triggered_at_ms());
        for (&task, ack) in f.acknowledgements() {
            states.extend(ack.states.iter().cloned());
            parts.extend(ack.parts.iter().cloned());
            channel_states.extend(ack.channel_states.iter().cloned());
            record.add_subtask(task, ack);
        }
        parts.sort_by(|a, b| (&a.output, &a.path).cmp(&(&b.output, &b.path)));
        let metadata = CheckpointMetadata {
            id: f.id(),
            triggered_at_ms: f.triggered_at_ms(),
            previous_completed: self.last_completed,
            max_parallelism: self.max_parallelism,
            states,
            pending_parts: parts,
            channel_states,
        };
        if let Err(e) = self.config.storage.complete(&metadata) {
            let status = Status::Failed(format!("writing metadata: {e}"));
            self.abort(signals, f, status, fail);
            return;
        }
        // The checkpoint is durable: from here on a restore uses it, so its outputs must be
        // committed (now, or by the recovery of the next attempt).
        if let Err(e) = injector.hit(Site::BeforeCommit, usize::MAX) {
            fail(e);
            return;
        }
        if let Some(committer) = &self.committer
            && let Err(e) = committer.commit(f.id(), &metadata.pending_parts)
        {
            fail(JobError::Checkpoint(format!(
                "committing the outputs of checkpoint {}: {e}",
                f.id()
            )));
            return;
        }
        self.last_completed = f.id();
        record.full_state_bytes = full_state_bytes(&metadata);
        record.finish(f.triggered().elapsed(), Status::Completed);
        self.stats.push(record);
        self.failed_in_row = 0;
        self.last_end = Instant::now();
        self.pending.completed(signals, f);
    }

    /// Removes what `f` wrote, announces its abort and counts it; too many in a row fail the
    /// job.
    fn abort(
        &mut self,
        signals: &Signals,
        f: PendingCheckpoint,
        status: Status,
        fail: &dyn Fn(JobError),
    ) {
        let _ = self.config.storage.discard(f.id());
        let mut record = CheckpointRecord::new(f.id(), f.triggered_at_ms());
        let reason = status.reason().unwrap_or_default().to_owned();
        record.finish(f.triggered().elapsed(), status);
        self.pending.aborted(signals, f);
        self.stats.push(record);
        self.failed_in_row += 1;
        self.last_end = Instant::now();
        if self.failed_in_row > self.config.tolerable_failed {
            fail(JobError::Checkpoint(format!(
                "{} failed checkpoint(s) in a row, {} tolerated; the last: {reason}",
                self.failed_in_row, self.config.tolerable_failed
            )));
        }
    }
}
