//! Job-wide control (cancel on failure, stop on request) and each task's environment.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hdrhistogram::Histogram;

use super::checkpointing::{RestoreSource, TaskCheckpointing};
use crate::checkpoint::FailureInjector;
use crate::error::{JobError, TaskError};
use crate::metrics::{TaskMetrics, latency_histogram};
use crate::net::{LocalBufferPool, TaskNotifier};
use crate::sync::Arc as SyncArc;

/// Flags every task checks, and what the tasks hand back at the end.
///
/// Lifetimes: the clock, the stop request and the latency histogram live as long as the job;
/// cancellation, the first failure and the first output belong to one attempt (the first output
/// is forgotten when the executor restarts) and are cleared by the executor
/// (after every thread of the failed attempt has ended) before the next attempt starts.
#[derive(Debug)]
pub struct JobControl {
    started: Instant,
    cancelled: AtomicBool,
    stop_requested: AtomicBool,
    failure: Mutex<Option<JobError>>,
    /// [`Self::now_ns`] when a sink first received a record in this attempt; 0: not yet.
    first_output_ns: AtomicU64,
    latency_ns: Mutex<Histogram<u64>>,
}

impl Default for JobControl {
    fn default() -> Self {
        Self::new()
    }
}

impl JobControl {
    /// A control block; the job's clock starts now.
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            cancelled: AtomicBool::new(false),
            stop_requested: AtomicBool::new(false),
            failure: Mutex::new(None),
            first_output_ns: AtomicU64::new(0),
            latency_ns: Mutex::new(latency_histogram()),
        }
    }

    /// Nanoseconds since the job started (the clock of latency markers).
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    /// Asks the sources to end their input now; everything read so far is processed and the
    /// job finishes normally (Ctrl-C).
    pub fn request_stop(&self) {
        self.stop_requested.store(true, Ordering::Relaxed);
    }

    /// Whether a stop was requested.
    #[inline]
    pub fn stop_requested(&self) -> bool {
        self.stop_requested.load(Ordering::Relaxed)
    }

    /// Whether the job is being cancelled.
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// Records a failure (the first one wins) and cancels every task.
    pub fn fail(&self, error: JobError) {
        let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        failure.get_or_insert(error);
        self.cancelled.store(true, Ordering::Relaxed);
    }

    /// Clears the attempt's cancellation and failure: the next attempt starts clean. Called only
    /// when no task thread of the previous attempt is running.
    pub(crate) fn reset_attempt(&self) -> Option<JobError> {
        let failure = self
            .failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        self.cancelled.store(false, Ordering::Relaxed);
        failure
    }

    /// Forgets the first output of a failed attempt, before the next one starts (every thread
    /// of the failed one has ended).
    pub(crate) fn forget_output(&self) {
        self.first_output_ns.store(0, Ordering::Relaxed);
    }

    /// A sink received its first record of this attempt; the earliest call of the attempt
    /// is kept. Each sink calls it once per attempt, not per record.
    pub(crate) fn mark_output(&self) {
        let now = self.now_ns().max(1);
        // Relaxed: a measurement, read after the attempt's threads are joined.
        let _ = self
            .first_output_ns
            .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// When a sink first received a record in this attempt, if one did.
    pub(crate) fn first_output(&self) -> Option<Instant> {
        match self.first_output_ns.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(self.started + std::time::Duration::from_nanos(ns)),
        }
    }

    /// The first failure, if any.
    pub fn failure(&self) -> Option<JobError> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Adds a sink's latency histogram to the job's.
    pub fn merge_latency(&self, histogram: &Histogram<u64>) {
        let mut latency = self.latency_ns.lock().unwrap_or_else(|p| p.into_inner());
        // Both histograms have the same bounds, so adding cannot fail on range.
        latency
            .add(histogram)
            .expect("latency histograms share their bounds");
    }

    /// The merged source-to-sink latency histogram, in ns.
    pub fn latency(&self) -> Histogram<u64> {
        self.latency_ns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// What one subtask's code needs from the runtime: who it is, how to wait, where to count.
#[derive(Debug, Clone)]
pub struct TaskEnv {
    inner: Arc<EnvInner>,
}

#[derive(Debug)]
struct EnvInner {
    task_name: String,
    subtask: usize,
    notifier: SyncArc<TaskNotifier>,
    control: Arc<JobControl>,
    metrics: Arc<TaskMetrics>,
    output_pool: Option<LocalBufferPool>,
    job: JobContext,
}

/// Where a subtask sits in the job and what it takes part in.
#[derive(Debug, Default)]
pub(crate) struct JobContext {
    /// The subtask's index among all subtasks of the job.
    pub(crate) task_index: usize,
    /// Its vertex's parallelism.
    pub(crate) parallelism: usize,
    /// The key groups it owns.
    pub(crate) key_groups: Range<usize>,
    pub(crate) injector: Arc<FailureInjector>,
    pub(crate) checkpointing: Option<TaskCheckpointing>,
    pub(crate) restore: Option<Arc<RestoreSource>>,
}

impl TaskEnv {
    /// The environment of subtask `subtask` of task `task_name`.
    pub fn new(
        task_name: String,
        subtask: usize,
        notifier: SyncArc<TaskNotifier>,
        control: Arc<JobControl>,
        output_pool: Option<LocalBufferPool>,
    ) -> Self {
        let job = JobContext {
            parallelism: subtask + 1,
            ..JobContext::default()
        };
        Self::in_job(task_name, subtask, notifier, control, output_pool, job)
    }

    /// The environment of a subtask placed in a job by the executor.
    pub(crate) fn in_job(
        task_name: String,
        subtask: usize,
        notifier: SyncArc<TaskNotifier>,
        control: Arc<JobControl>,
        output_pool: Option<LocalBufferPool>,
        job: JobContext,
    ) -> Self {
        Self {
            inner: Arc::new(EnvInner {
                task_name,
                subtask,
                notifier,
                control,
                metrics: Arc::new(TaskMetrics::default()),
                output_pool,
                job,
            }),
        }
    }

    /// The subtask's index among all subtasks of the job.
    pub(crate) fn task_index(&self) -> usize {
        self.inner.job.task_index
    }

    /// The parallelism of the subtask's vertex.
    pub fn parallelism(&self) -> usize {
        self.inner.job.parallelism
    }

    /// The key groups this subtask owns.
    pub fn key_groups(&self) -> Range<usize> {
        self.inner.job.key_groups.clone()
    }

    /// The job's failure plan.
    pub(crate) fn injector(&self) -> &FailureInjector {
        &self.inner.job.injector
    }

    /// Checkpointing, when the job checkpoints.
    pub(crate) fn checkpointing(&self) -> Option<&TaskCheckpointing> {
        self.inner.job.checkpointing.as_ref()
    }

    /// The state of operator `uid` in the checkpoint this attempt restores from, if any.
    pub(crate) fn restore_for(
        &self,
        uid: &str,
    ) -> Result<Option<crate::checkpoint::RestoreContext>, JobError> {
        match &self.inner.job.restore {
            Some(source) => {
                self.injector()
                    .hit(crate::checkpoint::Site::Restoring, self.task_index())?;
                source.context_for(uid, self.key_groups())
            }
            None => Ok(None),
        }
    }

    /// The checkpoint this attempt restores from, if any.
    pub(crate) fn restore_source(&self) -> Option<&Arc<RestoreSource>> {
        self.inner.job.restore.as_ref()
    }

    /// The task's name.
    pub fn task_name(&self) -> &str {
        &self.inner.task_name
    }

    /// The subtask index.
    pub fn subtask(&self) -> usize {
        self.inner.subtask
    }

    /// The task thread's notifier.
    #[inline]
    pub fn notifier(&self) -> &TaskNotifier {
        &self.inner.notifier
    }

    /// The notifier, shared (a task slot keeps it to see the subtask's wake-ups).
    pub(crate) fn notifier_handle(&self) -> SyncArc<TaskNotifier> {
        SyncArc::clone(&self.inner.notifier)
    }

    /// The job's control block.
    #[inline]
    pub fn control(&self) -> &Arc<JobControl> {
        &self.inner.control
    }

    /// The task's metrics.
    #[inline]
    pub fn metrics(&self) -> &Arc<TaskMetrics> {
        &self.inner.metrics
    }

    /// The task's output buffer pool, if it has network outputs.
    pub fn output_pool(&self) -> Option<&LocalBufferPool> {
        self.inner.output_pool.as_ref()
    }

    /// `Err(Cancelled)` once the job is being cancelled.
    #[inline]
    pub fn check_cancelled(&self) -> Result<(), TaskError> {
        if self.inner.control.is_cancelled() {
            Err(TaskError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Samples pool usage into the metrics (called by the task loop every few milliseconds).
    pub fn sample_pools(&self, input_usage_ppm: u64) {
        let m = &self.inner.metrics;
        m.pool_samples.add(1);
        m.in_pool_usage_ppm_sum.add(input_usage_ppm);
        if let Some(pool) = &self.inner.output_pool {
            let in_use = pool.in_use() as u64;
            let ppm = in_use * 1_000_000 / pool.size().max(1) as u64;
            m.out_pool_usage_ppm_sum.add(ppm);
            if ppm > m.out_pool_usage_ppm_max.get() {
                m.out_pool_usage_ppm_max.set(ppm);
            }
            if in_use > m.out_buffers_in_use_max.get() {
                m.out_buffers_in_use_max.set(in_use);
            }
        }
    }
}
