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
//! loops read once per batch) and a channel of [`Report`]s (tasks → coordinator). Both are
//! control-plane: a handful of messages per checkpoint, never per record.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::config::CheckpointConfig;
use super::inject::{FailureInjector, Site};
use super::snapshot::PendingOperator;
use super::stats::{CheckpointRecord, CheckpointStats, Status};
use super::{CheckpointId, CheckpointMetadata, CheckpointStorage, PendingPart, StateHandle};
use crate::error::JobError;
use crate::net::CheckpointBarrier;

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
}

/// Coordinator → tasks.
#[derive(Debug, Default)]
pub struct Signals {
    trigger_id: AtomicU64,
    trigger: Mutex<Option<CheckpointBarrier>>,
    completed: AtomicU64,
    aborted: AtomicU64,
    final_checkpoint: AtomicU64,
    sources_finished: AtomicUsize,
}

impl Signals {
    /// The newest barrier sources must inject, if it is newer than `injected`.
    #[inline]
    pub(crate) fn trigger_after(&self, injected: CheckpointId) -> Option<CheckpointBarrier> {
        // Acquire pairs with the Release store in `trigger`: the barrier behind the lock is
        // at least as new as the id read.
        if self.trigger_id.load(Ordering::Acquire) <= injected {
            return None;
        }
        let barrier = *self.trigger.lock().unwrap_or_else(|p| p.into_inner());
        barrier.filter(|b| b.checkpoint_id > injected)
    }

    fn trigger(&self, barrier: CheckpointBarrier) {
        *self.trigger.lock().unwrap_or_else(|p| p.into_inner()) = Some(barrier);
        self.trigger_id
            .store(barrier.checkpoint_id, Ordering::Release);
    }

    /// The newest completed checkpoint.
    #[inline]
    pub(crate) fn completed(&self) -> CheckpointId {
        self.completed.load(Ordering::Acquire)
    }

    /// The newest aborted checkpoint.
    #[inline]
    pub(crate) fn aborted(&self) -> CheckpointId {
        self.aborted.load(Ordering::Acquire)
    }

    /// A source subtask finished reading (and emitted its final watermark).
    pub(crate) fn source_finished(&self) {
        self.sources_finished.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether the final checkpoint has completed: finished sources may end.
    pub(crate) fn final_completed(&self) -> bool {
        let last = self.final_checkpoint.load(Ordering::Acquire);
        last != 0 && self.completed() >= last
    }
}

/// Timings of one subtask's part of a checkpoint, ns.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct AckTimings {
    pub(crate) sync_ns: u64,
    pub(crate) async_ns: u64,
    pub(crate) alignment_ns: u64,
    pub(crate) start_delay_ns: u64,
}

/// Tasks → coordinator.
#[derive(Debug)]
pub(crate) enum Report {
    /// A subtask's snapshot is durable.
    Ack {
        checkpoint: CheckpointId,
        task: usize,
        states: Vec<StateHandle>,
        parts: Vec<PendingPart>,
        bytes: u64,
        timings: AckTimings,
    },
    /// A subtask could not snapshot.
    Declined {
        checkpoint: CheckpointId,
        task: usize,
        reason: String,
    },
    /// A task thread ended (for any reason).
    TaskEnded,
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
}

/// The snapshot threads of one attempt: serialize keyed views, write files, acknowledge.
pub(crate) struct SnapshotPool {
    jobs: Option<Sender<SnapshotJob>>,
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
        let (tx, rx) = std::sync::mpsc::channel::<SnapshotJob>();
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
                            let _ = reports.send(write_job(job, storage.as_ref(), &injector));
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

    pub(crate) fn sender(&self) -> Sender<SnapshotJob> {
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

/// The asynchronous phase of one subtask's snapshot.
fn write_job(
    job: SnapshotJob,
    storage: &dyn CheckpointStorage,
    injector: &FailureInjector,
) -> Report {
    let started = Instant::now();
    let (checkpoint, task) = (job.checkpoint, job.task);
    let decline = |reason: String| Report::Declined {
        checkpoint,
        task,
        reason,
    };
    if let Err(e) = injector.hit(Site::AsyncSnapshot, task) {
        return decline(e.to_string());
    }
    let mut states = Vec::with_capacity(job.operators.len());
    let mut bytes = 0;
    for part in job.operators {
        let snapshot = part.finish(job.subtask, job.parallelism);
        match storage.write_state(checkpoint, &snapshot) {
            Ok(handle) => {
                bytes += handle.file_bytes;
                states.push(handle);
            }
            Err(e) => return decline(format!("writing state of '{}': {e}", snapshot.uid)),
        }
    }
    bytes += job.parts.iter().map(|p| p.bytes).sum::<u64>();
    let mut timings = job.timings;
    timings.async_ns = started.elapsed().as_nanos() as u64;
    Report::Ack {
        checkpoint,
        task,
        states,
        parts: job.parts,
        bytes,
        timings,
    }
}

struct InFlight {
    id: CheckpointId,
    triggered: Instant,
    triggered_at_ms: u64,
    acks: BTreeMap<usize, (Vec<StateHandle>, Vec<PendingPart>, u64, AckTimings)>,
}

/// The coordinator of one job: its state lives across attempts (ids continue, history grows).
pub(crate) struct Coordinator {
    config: CheckpointConfig,
    committer: Option<Arc<dyn OutputCommitter>>,
    max_parallelism: usize,
    next_id: CheckpointId,
    in_flight: Option<InFlight>,
    last_end: Instant,
    failed_in_row: u32,
    pub(crate) stats: CheckpointStats,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("next_id", &self.next_id)
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
            config,
            committer,
            max_parallelism,
            next_id: first_id.max(1),
            in_flight: None,
            last_end: Instant::now(),
            failed_in_row: 0,
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
        self.next_id = self.next_id.max(id + 1);
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
        self.in_flight = None;
        self.last_end = Instant::now();
        while ended < tasks {
            let now = Instant::now();
            let all_sources_done =
                signals.sources_finished.load(Ordering::Acquire) >= source_subtasks;
            if self.in_flight.is_none()
                && !signals.final_completed()
                && (all_sources_done
                    || now >= self.last_end + self.config.interval.max(self.config.min_pause))
            {
                self.trigger(signals, all_sources_done);
            }
            let wait = match &self.in_flight {
                Some(f) => (f.triggered + self.config.timeout).saturating_duration_since(now),
                None => (self.last_end + self.config.interval.max(self.config.min_pause))
                    .saturating_duration_since(now),
            }
            .clamp(Duration::from_millis(1), Duration::from_millis(50));
            match reports.recv_timeout(wait) {
                Ok(Report::TaskEnded) => ended += 1,
                Ok(Report::Ack {
                    checkpoint,
                    task,
                    states,
                    parts,
                    bytes,
                    timings,
                }) => {
                    let Some(f) = self.in_flight.as_mut().filter(|f| f.id == checkpoint) else {
                        continue; // a late acknowledgement of an aborted checkpoint
                    };
                    f.acks.insert(task, (states, parts, bytes, timings));
                    if f.acks.len() == tasks {
                        self.complete(signals, injector, fail);
                    }
                }
                Ok(Report::Declined {
                    checkpoint,
                    task,
                    reason,
                }) => {
                    if self.in_flight.as_ref().is_some_and(|f| f.id == checkpoint) {
                        let reason = format!("declined by subtask index {task}: {reason}");
                        self.abort(signals, Status::Failed(reason), fail);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    if let Some(f) = &self.in_flight
                        && f.triggered.elapsed() >= self.config.timeout
                    {
                        let reason = format!(
                            "checkpoint {} expired after {} ms before completing",
                            f.id,
                            self.config.timeout.as_millis()
                        );
                        self.abort(signals, Status::Expired(reason), fail);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        if let Some(f) = self.in_flight.take() {
            // The attempt ended (failed or cancelled) with a checkpoint in flight.
            let _ = self.config.storage.discard(f.id);
        }
    }

    fn trigger(&mut self, signals: &Signals, final_checkpoint: bool) {
        let id = self.next_id;
        self.next_id += 1;
        let triggered_at_ms = unix_ms();
        self.in_flight = Some(InFlight {
            id,
            triggered: Instant::now(),
            triggered_at_ms,
            acks: BTreeMap::new(),
        });
        if final_checkpoint {
            signals.final_checkpoint.store(id, Ordering::Release);
        }
        signals.trigger(CheckpointBarrier {
            checkpoint_id: id,
            triggered_at_ms,
            unaligned: false,
        });
    }

    fn complete(&mut self, signals: &Signals, injector: &FailureInjector, fail: &dyn Fn(JobError)) {
        let f = self.in_flight.take().expect("in flight");
        let mut states = Vec::new();
        let mut parts = Vec::new();
        let mut record = CheckpointRecord::new(f.id, f.triggered_at_ms);
        for (states_of, parts_of, bytes, t) in f.acks.into_values() {
            states.extend(states_of);
            parts.extend(parts_of);
            record.add_subtask(bytes, t);
        }
        parts.sort_by(|a, b| (&a.output, &a.path).cmp(&(&b.output, &b.path)));
        let metadata = CheckpointMetadata {
            id: f.id,
            triggered_at_ms: f.triggered_at_ms,
            max_parallelism: self.max_parallelism,
            states,
            pending_parts: parts,
        };
        if let Err(e) = self.config.storage.complete(&metadata) {
            self.in_flight = Some(InFlight {
                acks: BTreeMap::new(),
                ..f
            });
            self.abort(
                signals,
                Status::Failed(format!("writing metadata: {e}")),
                fail,
            );
            return;
        }
        // The checkpoint is durable: from here on a restore uses it, so its outputs must be
        // committed (now, or by the recovery of the next attempt).
        if let Err(e) = injector.hit(Site::BeforeCommit, usize::MAX) {
            fail(e);
            return;
        }
        if let Some(committer) = &self.committer
            && let Err(e) = committer.commit(f.id, &metadata.pending_parts)
        {
            fail(JobError::Checkpoint(format!(
                "committing the outputs of checkpoint {}: {e}",
                f.id
            )));
            return;
        }
        record.finish(f.triggered.elapsed(), Status::Completed);
        self.stats.push(record);
        self.failed_in_row = 0;
        self.last_end = Instant::now();
        signals.completed.store(f.id, Ordering::Release);
    }

    fn abort(&mut self, signals: &Signals, status: Status, fail: &dyn Fn(JobError)) {
        let f = self.in_flight.take().expect("in flight");
        let _ = self.config.storage.discard(f.id);
        signals.aborted.store(f.id, Ordering::Release);
        let mut record = CheckpointRecord::new(f.id, f.triggered_at_ms);
        let reason = status.reason().unwrap_or_default().to_owned();
        record.finish(f.triggered.elapsed(), status);
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
