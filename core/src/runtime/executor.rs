//! The executor: sizes the buffer pool, creates one channel per (upstream subtask, downstream
//! subtask) edge, builds every subtask's chain, and runs each on its own OS thread, or the
//! subtasks of each task slot together on the slot's thread ([`TaskThreads`]), pinned round
//! robin to the cores read once at start-up.
//!
//! With checkpointing a job runs in attempts: the coordinator runs on this thread beside the
//! tasks; after a failure every task ends, the restart strategy decides, and the next attempt
//! rebuilds every chain from the newest completed checkpoint (or from the start when there is
//! none), after the transactional outputs recovered to it.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use super::TaskBody;
use super::checkpointing::{RestoreSource, TaskCheckpointing};
use super::control::{JobContext, JobControl, TaskEnv};
use super::slot::{self, SlotTask, TaskThreads};
use crate::checkpoint::{
    CheckpointConfig, CheckpointStats, Coordinator, FailureInjector, OutputCommitter, Report,
    Restart, RestartBackoff, RestartStrategy, Signals, SnapshotPool, Transactions,
};
use crate::error::{JobError, TaskError};
use crate::keyed::DEFAULT_MAX_PARALLELISM;
use crate::keyed::KeyGroups;
use crate::metrics::TaskReport;
use crate::net::{
    ChannelReceiver, ChannelSender, LocalBufferPool, NetworkBufferPool, PoolConfig, PoolError,
    TaskNotifier, channel,
};
use crate::operator::panic_message;
use crate::sync::Arc as SyncArc;

/// Ring slots per channel beyond its buffer quota, for events (end of partition, barriers).
pub const EVENT_SLOTS: usize = 4;

/// How a job runs.
#[derive(Debug, Clone, Serialize)]
pub struct RuntimeConfig {
    /// Network buffer pool sizes and quotas.
    pub pool: PoolConfig,
    /// Send a partly filled buffer after this long (Flink's `execution.buffer-timeout`, 100 ms);
    /// zero sends after every record.
    #[serde(with = "duration_ms")]
    pub buffer_timeout: Duration,
    /// Also send partly filled buffers when a task runs out of work: an input task before it
    /// waits for input, a source before it sleeps for its rate. Under load a task never runs
    /// dry and buffers leave full (or at the timeout); at low load records leave at once
    /// instead of waiting up to `buffer_timeout` at every exchange. Only buffers holding a
    /// record or a latency marker go: one of watermarks and statuses alone waits for the
    /// timeout, as everything does in Flink, which has no such flush (`false` is its
    /// behaviour). On by default.
    pub flush_on_idle: bool,
    /// How long an idle flush holds back a buffer before it sends it: a buffer that got a
    /// record since the task last ran dry waits until it has carried data through idle
    /// moments this long (the task wakes by then), so that a task running dry after every
    /// small input does not send a buffer (and wake its receiver) for each. `None`: a
    /// hundredth of `buffer_timeout` ([`Self::idle_flush_age`]), 1 ms by default.
    #[serde(with = "option_duration_ms")]
    pub idle_flush_age: Option<Duration>,
    /// Pin each thread (a subtask's, or a slot's) to a core.
    pub pin: bool,
    /// One thread per subtask (the default, Flink's plan), or one per task slot.
    pub threads: TaskThreads,
    /// Emit a latency marker from every source subtask this often; `None` turns tracking off.
    #[serde(with = "option_duration_ms")]
    pub latency_interval: Option<Duration>,
    /// The number of key groups.
    pub max_parallelism: usize,
    /// Checkpointing; `None` turns it off (the default).
    pub checkpoint: Option<CheckpointConfig>,
    /// What to do after a failure (only with checkpointing: without, a failure ends the job).
    pub restart: RestartStrategy,
    /// Start from a checkpoint instead of from the beginning.
    pub restore: Option<RestoreFrom>,
    /// Failures to inject: how many, and the seed of their plan.
    pub inject_failures: Option<(u32, u64)>,
    /// Commits the transactional outputs when a checkpoint completes.
    #[serde(skip)]
    pub committer: Option<Arc<dyn OutputCommitter>>,
    /// Where keyed state lives (Flink's `state.backend.type`); the heap by default.
    #[serde(serialize_with = "backend_name")]
    pub state_backend: crate::state::StateBackendRef,
    /// How many window results a window operator fires per turn when a watermark makes more
    /// due; the task takes its next input between turns (latency markers pass, and records
    /// that fire no window again; one that does, within allowed lateness, and any other
    /// element, waits for the rest; the watermark goes down after the last turn), so that
    /// firing thousands of windows does not hold up the input the whole time. `None` fires
    /// everything at once (Flink's way).
    /// [`DEFAULT_FIRING_BUDGET`] by default.
    pub firing_budget: Option<usize>,
}

/// Window results fired per turn by default ([`RuntimeConfig::firing_budget`]): about a
/// tenth of a millisecond of firing on the development machine.
pub const DEFAULT_FIRING_BUDGET: usize = 256;

fn backend_name<S: serde::Serializer>(
    backend: &crate::state::StateBackendRef,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(backend.name())
}

/// Which checkpoint a job starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestoreFrom {
    /// The newest usable completed checkpoint in the checkpoint folder.
    Latest,
    /// The checkpoint in this folder (`.../chk-N`).
    Path(std::path::PathBuf),
}

impl RuntimeConfig {
    /// The idle flush's age in effect: the one set, or a hundredth of the buffer timeout.
    pub fn idle_flush_age(&self) -> Duration {
        self.idle_flush_age
            .unwrap_or(self.buffer_timeout / IDLE_FLUSH_AGE_DIVISOR)
    }
}

/// The buffer timeout over the default idle flush age ([`RuntimeConfig::idle_flush_age`]).
const IDLE_FLUSH_AGE_DIVISOR: u32 = 100;

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            pool: PoolConfig::default(),
            buffer_timeout: Duration::from_millis(100),
            flush_on_idle: true,
            idle_flush_age: None,
            pin: true,
            threads: TaskThreads::default(),
            latency_interval: Some(Duration::from_millis(100)),
            max_parallelism: DEFAULT_MAX_PARALLELISM,
            checkpoint: None,
            restart: RestartStrategy::default(),
            restore: None,
            inject_failures: None,
            committer: None,
            state_backend: crate::state::heap(),
            firing_budget: Some(DEFAULT_FIRING_BUDGET),
        }
    }
}

mod duration_ms {
    pub(super) fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1000.0)
    }
}

mod option_duration_ms {
    pub(super) fn serialize<S: serde::Serializer>(
        d: &Option<std::time::Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_f64(d.as_secs_f64() * 1000.0),
            None => s.serialize_none(),
        }
    }
}

/// The cores this process may run on, read once (before any thread is pinned).
pub fn available_cores() -> &'static [core_affinity::CoreId] {
    static CORES: OnceLock<Vec<core_affinity::CoreId>> = OnceLock::new();
    CORES.get_or_init(|| core_affinity::get_core_ids().unwrap_or_default())
}

/// What a finished job reports.
#[derive(Debug, Clone)]
pub struct JobResult {
    /// Wall time from the first task's start to the last task's end; after restarts, from the
    /// first attempt's start (every attempt and restart delay included).
    pub wall: Duration,
    /// Every subtask's metrics.
    pub tasks: Vec<TaskReport>,
    /// Source-to-sink latency of the latency markers, ns.
    pub latency_ns: Histogram<u64>,
    /// Segments in the network buffer pool.
    pub pool_segments: usize,
    /// Bytes per segment.
    pub segment_bytes: usize,
    /// Whether the job ended early because a stop was requested.
    pub stopped_early: bool,
    /// Checkpoints, restarts and restores, when the job checkpoints.
    pub checkpoints: Option<CheckpointStats>,
    /// The failures injected on purpose.
    pub injected_failures: Vec<String>,
}

/// Builds one subtask's task body from its setup.
pub(crate) type BuildFn = Box<dyn Fn(&mut TaskSetup) -> Result<Box<dyn TaskBody>, JobError>>;

/// One vertex of the job graph, as the builder hands it to the executor.
pub(crate) struct VertexPlan {
    pub(crate) name: String,
    pub(crate) parallelism: usize,
    pub(crate) build: BuildFn,
}

/// A data exchange between two vertices: every upstream subtask to every downstream subtask.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EdgePlan {
    pub(crate) from: usize,
    pub(crate) to: usize,
}

/// What a subtask's chain is built from.
pub(crate) struct TaskSetup {
    pub(crate) env: TaskEnv,
    pub(crate) config: RuntimeConfig,
    /// The attempt being built: 0 for the first run, then one more per restart.
    pub(crate) attempt: u32,
    outputs: HashMap<usize, OutputChannels>,
    inputs: HashMap<usize, Vec<ChannelReceiver>>,
}

/// The channels of one output edge of a subtask.
#[derive(Default)]
pub(crate) struct OutputChannels {
    /// The index of the edge's first channel among all output channels of the task: the task's
    /// pool reserves exclusive buffers per output channel, so the writer of each edge takes its
    /// buffers at `first + channel` (two edges never share a channel's exclusive buffers).
    pub(crate) first: usize,
    /// One sender per downstream subtask.
    pub(crate) senders: Vec<ChannelSender>,
}

impl TaskSetup {
    /// The channels of output edge `edge`, one per downstream subtask.
    pub(crate) fn take_outputs(&mut self, edge: usize) -> OutputChannels {
        self.outputs.remove(&edge).unwrap_or_default()
    }

    /// The channels of input edge `edge`, one per upstream subtask.
    pub(crate) fn take_inputs(&mut self, edge: usize) -> Vec<ChannelReceiver> {
        self.inputs.remove(&edge).unwrap_or_default()
    }

    /// The task's output pool; every task with an output edge has one.
    pub(crate) fn pool(&self) -> LocalBufferPool {
        self.env
            .output_pool()
            .cloned()
            .expect("tasks with output edges get a pool")
    }
}

/// A subtask as the executor starts it.
/// The slot of subtask 0 of a vertex of `parallelism` among `slots` (the job's highest
/// parallelism); subtask `s` goes to `(offset + s) % slots`. A vertex of full parallelism
/// starts at slot 0, so that subtask `s` of each such vertex shares slot `s` (slot sharing:
/// a keyed exchange's local half and a forward edge stay in the slot). The vertices of lower
/// parallelism (a window-all step, the sinks of parallelism 1) start where the previous one
/// ended (`spread`, advanced here), so that they are spread over the slots instead of all
/// loading slot 0 (Flink's balanced task scheduling, `taskmanager.load-balance.mode: TASKS`).
fn slot_offset(parallelism: usize, slots: usize, spread: &mut usize) -> usize {
    if parallelism >= slots {
        return 0;
    }
    let offset = *spread % slots;
    *spread += parallelism;
    offset
}

struct Ready {
    name: String,
    subtask: usize,
    /// Its task slot under [`TaskThreads::PerSlot`] ([`slot_of`]).
    slot: usize,
    env: TaskEnv,
    body: Box<dyn TaskBody>,
    transactions: Transactions,
}

/// A running thread (one subtask's, or one slot's) and the subtasks it runs.
struct Spawned {
    tasks: Vec<(String, usize, TaskEnv)>,
    core: Option<usize>,
    /// Each subtask's wall time, ns, in the order of `tasks`.
    handle: std::thread::JoinHandle<Vec<u64>>,
}

/// Runs the job to completion (or failure) and reports it: one attempt without checkpointing,
/// attempts until success or the restart strategy gives up with it.
pub(crate) fn execute(
    vertices: Vec<VertexPlan>,
    edges: Vec<EdgePlan>,
    config: RuntimeConfig,
    control: Arc<JobControl>,
) -> Result<JobResult, JobError> {
    let tasks: usize = vertices.iter().map(|v| v.parallelism).sum();
    let injector = Arc::new(match config.inject_failures {
        Some((count, seed)) => FailureInjector::new(count, seed, tasks),
        None => FailureInjector::none(),
    });
    let job = Plan {
        vertices: &vertices,
        edges: &edges,
        config: &config,
        control: &control,
        injector: &injector,
    };
    let Some(checkpoint) = config.checkpoint.clone() else {
        if config.restore.is_some() {
            return Err(JobError::Invalid(
                "restoring from a checkpoint needs checkpointing on".into(),
            ));
        }
        let mut result = job.attempt(None, None, 0)?;
        result.injected_failures = injector.fired();
        return Ok(result);
    };
    let storage = Arc::clone(&checkpoint.storage);
    let warn = &mut |message: &str| eprintln!("weir: {message}");
    let mut restore = match &config.restore {
        None => None,
        Some(RestoreFrom::Latest) => Some(
            storage
                .latest(warn)
                .map_err(|e| JobError::Checkpoint(e.to_string()))?
                .ok_or_else(|| {
                    JobError::Checkpoint(format!(
                        "--restore latest: no completed checkpoint in {}",
                        checkpoint.dir.display()
                    ))
                })?,
        ),
        Some(RestoreFrom::Path(path)) => Some(
            storage
                .load(path)
                .map_err(|e| JobError::Checkpoint(e.to_string()))?,
        ),
    };
    let first_id = storage
        .highest_id()
        .map_err(|e| JobError::Checkpoint(e.to_string()))?
        .map_or(1, |id| id + 1);
    let mut coordinator = Coordinator::new(
        checkpoint,
        config.committer.clone(),
        config.max_parallelism,
        first_id,
    );
    // A fresh run never restores from checkpoints an earlier run left in the folder.
    let restorable_from = if config.restore.is_some() {
        0
    } else {
        first_id
    };
    let mut backoff = RestartBackoff::new(config.restart);
    let mut failed_at: Option<Instant> = None;
    let job_started = Instant::now();
    for attempt in 0u32.. {
        if let Some(from) = &restore {
            if from.metadata.max_parallelism != config.max_parallelism {
                return Err(JobError::Checkpoint(format!(
                    "checkpoint {} was taken with max parallelism {}, the job has {}",
                    from.metadata.id, from.metadata.max_parallelism, config.max_parallelism
                )));
            }
            coordinator.continue_after(from.metadata.id);
        }
        if let Some(committer) = coordinator.committer() {
            if let Some(from) = &restore {
                let previous = from.metadata.previous_completed;
                let committed = committer.last_committed();
                if committed < previous {
                    return Err(JobError::Checkpoint(format!(
                        "checkpoint {} continues the outputs of checkpoint {previous}, but the \
                         outputs here are committed only up to checkpoint {committed}: restore \
                         into the output folder of the run that wrote the checkpoint",
                        from.metadata.id
                    )));
                }
            }
            let restored = restore
                .as_ref()
                .map(|c| (c.metadata.id, c.metadata.pending_parts.as_slice()));
            for message in committer
                .recover(restored)
                .map_err(|e| JobError::Checkpoint(format!("recovering the outputs: {e}")))?
            {
                eprintln!("weir: {message}");
            }
        }
        let source = restore
            .clone()
            .map(|c| Arc::new(RestoreSource::new(c, Arc::clone(&storage))));
        let outcome = job.attempt(Some(&mut coordinator), source.clone(), attempt);
        if let (Some(source), Some(at), Some(started)) =
            (&source, failed_at, coordinator.attempt_started)
        {
            // From the failure to the restored attempt's tasks starting: the failed attempt
            // cancelled and joined, the restart delay, the outputs recovered, every task
            // rebuilt and its state read.
            let stats = &mut coordinator.stats;
            stats.last_restored_bytes = source.bytes_read();
            stats
                .last_recovery_ms
                .get_or_insert(started.saturating_duration_since(at).as_secs_f64() * 1e3);
            if stats.last_recovery_to_output_ms.is_none() {
                stats.last_recovery_to_output_ms = control
                    .first_output()
                    .map(|first| first.saturating_duration_since(at).as_secs_f64() * 1e3);
            }
        }
        match outcome {
            Ok(mut result) => {
                if attempt > 0 {
                    // Every attempt, restarts and their delays included.
                    result.wall = job_started.elapsed();
                }
                result.checkpoints = Some(std::mem::take(&mut coordinator.stats));
                result.injected_failures = injector.fired();
                return Ok(result);
            }
            Err(error) => {
                let now = Instant::now();
                let delay = match backoff.on_failure(now) {
                    Some(delay) if !control.stop_requested() => delay,
                    _ => return Err(error),
                };
                restore = storage
                    .latest(warn)
                    .map_err(|e| JobError::Checkpoint(e.to_string()))?
                    .filter(|c| c.metadata.id >= restorable_from);
                let from = restore.as_ref().map(|c| c.metadata.id);
                eprintln!(
                    "weir: attempt {} failed: {error}; restarting in {} ms from {}",
                    attempt + 1,
                    delay.as_millis(),
                    from.map_or("the beginning".to_owned(), |id| format!("checkpoint {id}"))
                );
                coordinator.stats.restarts.push(Restart {
                    cause: error.to_string(),
                    restored_checkpoint: from,
                    delay_ms: delay.as_secs_f64() * 1e3,
                });
                coordinator.stats.last_restore_timestamp_ms = Some(crate::checkpoint::unix_ms());
                coordinator.stats.last_recovery_ms = None;
                coordinator.stats.last_recovery_to_output_ms = None;
                control.forget_output();
                failed_at = Some(now);
                std::thread::sleep(delay);
            }
        }
    }
    unreachable!("attempts are counted by u32 and each either returns or restarts")
}

/// What every attempt of one job runs.
struct Plan<'a> {
    vertices: &'a [VertexPlan],
    edges: &'a [EdgePlan],
    config: &'a RuntimeConfig,
    control: &'a Arc<JobControl>,
    injector: &'a Arc<FailureInjector>,
}

impl Plan<'_> {
    /// One attempt: fresh pool, channels and chains (restored from `restore`), the coordinator
    /// beside the tasks, until every task ended.
    fn attempt(
        &self,
        coordinator: Option<&mut Coordinator>,
        restore: Option<Arc<RestoreSource>>,
        attempt: u32,
    ) -> Result<JobResult, JobError> {
        let (vertices, edges, config, control) =
            (self.vertices, self.edges, self.config, self.control);
        let cores = available_cores();
        let pool_cfg = config.pool;

        // One notifier per subtask, and the pool quota each subtask's outputs need.
        let notifiers: Vec<Vec<SyncArc<TaskNotifier>>> = vertices
            .iter()
            .map(|v| {
                (0..v.parallelism)
                    .map(|_| SyncArc::new(TaskNotifier::new()))
                    .collect()
            })
            .collect();
        let out_channels: Vec<usize> = (0..vertices.len())
            .map(|v| {
                edges
                    .iter()
                    .filter(|e| e.from == v)
                    .map(|e| vertices[e.to].parallelism)
                    .sum()
            })
            .collect();
        let quota = |channels: usize| {
            if channels == 0 {
                0
            } else {
                channels * pool_cfg.exclusive_per_channel + pool_cfg.floating_per_gate
            }
        };
        let needed: usize = vertices
            .iter()
            .enumerate()
            .map(|(v, plan)| plan.parallelism * quota(out_channels[v]))
            .sum();
        let segments = match pool_cfg.segments {
            Some(configured) if configured < needed => {
                return Err(PoolError::Undersized { needed, configured }.into());
            }
            configured => configured.unwrap_or(needed).max(1),
        };
        let mut global = NetworkBufferPool::new(pool_cfg.segment_bytes, segments)?;

        // Channels: senders grouped by (vertex, subtask, edge), receivers likewise.
        let mut outputs: Vec<Vec<HashMap<usize, OutputChannels>>> = vertices
            .iter()
            .map(|v| (0..v.parallelism).map(|_| HashMap::new()).collect())
            .collect();
        let mut inputs: Vec<Vec<HashMap<usize, Vec<ChannelReceiver>>>> = vertices
            .iter()
            .map(|v| (0..v.parallelism).map(|_| HashMap::new()).collect())
            .collect();
        let capacity = pool_cfg.exclusive_per_channel + pool_cfg.floating_per_gate + EVENT_SLOTS;
        // An edge's channels follow the channels of the edges its vertex sends on before it.
        let mut next_channel = vec![0; vertices.len()];
        for (edge_id, edge) in edges.iter().enumerate() {
            let first = next_channel[edge.from];
            next_channel[edge.from] += vertices[edge.to].parallelism;
            for up in 0..vertices[edge.from].parallelism {
                for down in 0..vertices[edge.to].parallelism {
                    let (tx, rx) = channel(
                        capacity,
                        SyncArc::clone(&notifiers[edge.from][up]),
                        SyncArc::clone(&notifiers[edge.to][down]),
                    );
                    outputs[edge.from][up]
                        .entry(edge_id)
                        .or_insert_with(|| OutputChannels {
                            first,
                            senders: Vec::new(),
                        })
                        .senders
                        .push(tx);
                    inputs[edge.to][down].entry(edge_id).or_default().push(rx);
                }
            }
        }

        // Checkpointing: the signals to the tasks, their reports back, the snapshot threads.
        let signals = Arc::new(Signals::default());
        let (reports_tx, reports_rx) = crate::sync::mpsc::channel::<Report>();
        let snapshots = coordinator.as_ref().map(|c| {
            SnapshotPool::start(
                c.config().snapshot_threads,
                Arc::clone(&c.config().storage),
                reports_tx.clone(),
                Arc::clone(self.injector),
            )
        });

        // Build every subtask's chain on this thread, then start them all.
        let mut bodies = Vec::new();
        let mut task_index = 0;
        let slots = vertices.iter().map(|v| v.parallelism).max().unwrap_or(1);
        let mut spread = 0;
        for (v, plan) in vertices.iter().enumerate() {
            let first_slot = slot_offset(plan.parallelism, slots, &mut spread);
            let groups = KeyGroups::new(config.max_parallelism, plan.parallelism)
                .map_err(JobError::Invalid)?;
            for subtask in 0..plan.parallelism {
                let pool = match out_channels[v] {
                    0 => None,
                    channels => Some(global.local_pool(
                        channels,
                        pool_cfg.exclusive_per_channel,
                        pool_cfg.floating_per_gate,
                        SyncArc::clone(&notifiers[v][subtask]),
                    )?),
                };
                let transactions = Transactions::default();
                let checkpointing = match (&coordinator, &snapshots) {
                    (Some(c), Some(pool)) => Some(TaskCheckpointing {
                        signals: Arc::clone(&signals),
                        snapshots: pool.sender(),
                        reports: reports_tx.clone(),
                        mode: c.config().mode,
                        snapshot_mode: c.config().snapshot,
                        dir: c.config().dir.clone(),
                        transactions: transactions.clone(),
                    }),
                    _ => None,
                };
                let env = TaskEnv::in_job(
                    plan.name.clone(),
                    subtask,
                    SyncArc::clone(&notifiers[v][subtask]),
                    Arc::clone(control),
                    pool,
                    JobContext {
                        task_index,
                        parallelism: plan.parallelism,
                        key_groups: groups.range_of(subtask),
                        injector: Arc::clone(self.injector),
                        checkpointing,
                        restore: restore.clone(),
                    },
                );
                task_index += 1;
                let mut setup = TaskSetup {
                    env: env.clone(),
                    config: config.clone(),
                    attempt,
                    outputs: std::mem::take(&mut outputs[v][subtask]),
                    inputs: std::mem::take(&mut inputs[v][subtask]),
                };
                let body = {
                    let _scope = coordinator.is_some().then(|| transactions.enter());
                    (plan.build)(&mut setup)?
                };
                bodies.push(Ready {
                    name: plan.name.clone(),
                    subtask,
                    slot: (first_slot + subtask) % slots,
                    env,
                    body,
                    transactions,
                });
            }
        }
        let source_subtasks: usize = vertices
            .iter()
            .enumerate()
            .filter(|(v, _)| !edges.iter().any(|e| e.to == *v))
            .map(|(_, plan)| plan.parallelism)
            .sum();

        let started = Instant::now();
        let tasks = bodies.len();
        let threads = match config.threads {
            TaskThreads::PerSubtask => bodies.into_iter().map(|ready| vec![ready]).collect(),
            TaskThreads::PerSlot => {
                let mut slotted: Vec<Vec<Ready>> = (0..slots).map(|_| Vec::new()).collect();
                for ready in bodies {
                    slotted[ready.slot].push(ready);
                }
                slotted
            }
        };
        let mut spawned = Vec::with_capacity(threads.len());
        for (index, group) in threads.into_iter().enumerate() {
            let core = (config.pin && !cores.is_empty()).then(|| cores[index % cores.len()]);
            let thread_name = match group.as_slice() {
                [one] => format!("{}#{}", one.name, one.subtask),
                _ => format!("slot#{index}"),
            };
            let meta = group
                .iter()
                .map(|r| (r.name.clone(), r.subtask, r.env.clone()))
                .collect();
            let reports = reports_tx.clone();
            let scoped = coordinator.is_some();
            let handle = std::thread::Builder::new()
                .name(thread_name.chars().take(60).collect())
                .spawn(move || run_thread(group, core, scoped, &reports))
                .map_err(|e| JobError::Spawn {
                    task: thread_name,
                    message: e.to_string(),
                });
            let handle = match handle {
                Ok(h) => h,
                Err(e) => {
                    control.fail(e.clone());
                    join_all(spawned);
                    control.reset_attempt();
                    return Err(e);
                }
            };
            spawned.push(Spawned {
                tasks: meta,
                core: core.map(|c| c.id),
                handle,
            });
        }
        drop(reports_tx);
        if let Some(coordinator) = coordinator {
            coordinator.attempt_started = Some(started);
            coordinator.run_attempt(
                &signals,
                &reports_rx,
                tasks,
                source_subtasks,
                self.injector,
                &|e| control.fail(e),
            );
        }
        let walls = join_all(spawned);
        let wall = started.elapsed();
        let tasks = walls
            .into_iter()
            .map(|(name, subtask, core, env, wall_ns)| {
                env.metrics().report(&name, subtask, core, wall_ns)
            })
            .collect();
        // Every task environment (and its sender of snapshots) is gone: the snapshot threads
        // finish what is queued and end.
        if let Some(pool) = snapshots {
            pool.stop();
        }
        if let Some(failure) = control.reset_attempt() {
            return Err(failure);
        }
        Ok(JobResult {
            wall,
            tasks,
            latency_ns: control.latency(),
            pool_segments: global.total_segments(),
            segment_bytes: global.segment_bytes(),
            stopped_early: control.stop_requested(),
            checkpoints: None,
            injected_failures: Vec::new(),
        })
    }
}

type Joined = (String, usize, Option<usize>, TaskEnv, u64);

fn join_all(spawned: Vec<Spawned>) -> Vec<Joined> {
    spawned
        .into_iter()
        .flat_map(|s| {
            let walls = s.handle.join().unwrap_or_else(|panic| {
                // Subtask panics are caught inside; this is the thread's own code failing.
                let (name, subtask, env) = &s.tasks[0];
                env.control().fail(JobError::Panic {
                    operator: name.clone(),
                    subtask: *subtask,
                    message: panic_message(panic.as_ref()),
                });
                vec![0; s.tasks.len()]
            });
            let core = s.core;
            s.tasks
                .into_iter()
                .zip(walls)
                .map(move |((name, subtask, env), wall)| (name, subtask, core, env, wall))
        })
        .collect()
}

/// A thread of the job: register it for its subtasks' wake-ups, pin it, run its subtask (or
/// its slot's subtasks), and report each subtask's end to the coordinator. Returns each
/// subtask's wall time, ns.
fn run_thread(
    group: Vec<Ready>,
    core: Option<core_affinity::CoreId>,
    scoped: bool,
    reports: &crate::sync::mpsc::Sender<Report>,
) -> Vec<u64> {
    for ready in &group {
        ready.env.notifier().register_current();
    }
    if let Some(core) = core {
        // Pinning is best effort: a refused pin leaves the thread where the OS put it.
        core_affinity::set_for_current(core);
    }
    if let [_] = group.as_slice() {
        let ready = group.into_iter().next().expect("one subtask");
        let _scope = scoped.then(|| ready.transactions.enter());
        return vec![run_task(ready.body, &ready.env, reports)];
    }
    let envs: Vec<TaskEnv> = group.iter().map(|r| r.env.clone()).collect();
    let tasks = group
        .into_iter()
        .map(|ready| {
            let reports = reports.clone();
            let env = ready.env;
            let body = ready.body;
            let notifier = env.notifier_handle();
            SlotTask {
                run: Box::new(move || run_task(body, &env, &reports)),
                scope: scoped.then_some(ready.transactions),
                notifier,
            }
        })
        .collect();
    slot::run(tasks).unwrap_or_else(|e| {
        // No subtask of the slot ran: fail the job, and count them ended for the coordinator.
        for env in &envs {
            env.control().fail(JobError::Spawn {
                task: format!("{}#{}", env.task_name(), env.subtask()),
                message: format!("mapping a task slot's subtask stack: {e}"),
            });
            let _ = reports.send(Report::TaskEnded);
        }
        vec![0; envs.len()]
    })
}

/// Runs one subtask's body, reports its outcome to the job and its end to the coordinator;
/// its wall time, ns.
fn run_task(
    body: Box<dyn TaskBody>,
    env: &TaskEnv,
    reports: &crate::sync::mpsc::Sender<Report>,
) -> u64 {
    let started = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(|| body.run()));
    match outcome {
        Ok(Ok(())) | Ok(Err(TaskError::Cancelled)) => {}
        Ok(Err(TaskError::Failed(error))) => env.control().fail(error),
        Err(panic) => env.control().fail(JobError::Panic {
            operator: env.task_name().to_owned(),
            subtask: env.subtask(),
            message: panic_message(panic.as_ref()),
        }),
    }
    let wall = started.elapsed().as_nanos() as u64;
    let _ = reports.send(Report::TaskEnded);
    wall
}

#[cfg(all(test, not(weir_loom)))]
mod tests {
    use super::slot_offset;

    /// The traffic job's vertices in build order (source, tag, origins, flow merge, flow sink,
    /// origin merge, origin sink) at parallelism 2: each full-parallelism vertex's subtask `s`
    /// is in slot `s`, and the three single-subtask sinks are spread over both slots.
    #[test]
    fn vertices_below_full_parallelism_are_spread_over_the_slots() {
        let parallelisms = [2, 2, 1, 2, 1, 2, 1];
        let mut spread = 0;
        let offsets: Vec<usize> = parallelisms
            .iter()
            .map(|&p| slot_offset(p, 2, &mut spread))
            .collect();
        assert_eq!(offsets, [0, 0, 0, 0, 1, 0, 0]);
        // Three vertices of 3 among 4 slots, then one of 2: every slot ends with 2 or 3 tasks.
        let mut spread = 0;
        let mut load = [0; 4];
        for p in [3, 3, 3, 2] {
            let offset = slot_offset(p, 4, &mut spread);
            for s in 0..p {
                load[(offset + s) % 4] += 1;
            }
        }
        assert_eq!(load, [3, 3, 3, 2]);
    }
}
