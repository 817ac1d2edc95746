//! `weir suite checkpoints`: barrier checkpoints on the traffic job, every configuration
//! interleaved round robin, medians of the repetitions.
//!
//! 1. Barrier modes under backpressure: aligned, unaligned, aligned with a timeout and
//!    at-least-once barriers, with the tagging step slowed to 1 ms and 10 ms per record
//!    (`slow_tag`, as flink-benchmarks' `CheckpointingTimeBenchmark` slows its sink) and
//!    without, sweeping the exclusive buffers per channel: checkpoint duration, start delay,
//!    alignment, bytes, persisted in-flight bytes, throughput, and the targets.
//! 2. Snapshot strategies against state size: heap async (copy-on-write), heap sync and mmap
//!    incremental; the state is the tagging step's per-plate state, which grows with the
//!    distinct plates seen, so the records read drive it and the checkpointed bytes are the x
//!    axis.
//! 3. Barriers against Storm's acking (seed question 3, [`acking`]): throughput of no
//!    guarantee, per-tuple acking and aligned checkpoints, and duplicates after a failure.
//! 4. Recovery ([`recovery`]): from a failure to the restored attempt's start and to the first
//!    output, against the state restored and the buffers in flight.
//! 5. State backends ([`state`]): heap against mmap on a keyed table driven directly, against
//!    keys (1 K to 10 M) and the fraction changed between checkpoints (0.1%, 1%, 10%).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use serde::Serialize;
use weir_backends::FsCheckpointStorage;
use weir_core::RuntimeConfig;
use weir_core::checkpoint::Summary as Percentiles;
use weir_core::checkpoint::{
    BarrierMode, CheckpointConfig, CheckpointRecord, SnapshotMode, Status,
};
use weir_core::net::PoolConfig;

mod acking;
mod recovery;
mod report;
mod state;

use super::SuiteJob;
use super::medians::{self, Medians, Metric, Run, get};
use super::plot::{self, Panel, Series};
use super::{round_robin, run_job, write};
use crate::cli::state_backend::{self, Backend};
use crate::cli::{MAX_REPEAT, Switch, count};
use crate::output_dir::{OutputDir, Status as OutputStatus};
use crate::report::Machine;
use crate::traffic::generator::GeneratorConfig;
use crate::traffic::input::TrafficInput;
use crate::traffic::job::TrafficJob;

/// Options of `weir suite checkpoints`.
#[derive(Debug, Clone, Args)]
pub struct CheckpointsArgs {
    /// The whole suite small (fewer records, buffers 2 and 8, two state sizes, one round):
    /// about a minute, for tests and CI smoke runs.
    #[arg(long)]
    quick: bool,
    /// Rounds, 1 to 10000: every configuration runs once per round, round robin
    /// [default: 3; 1 with --quick; the Storm acking section runs at least 5].
    #[arg(long, value_parser = count(1, MAX_REPEAT))]
    repeat: Option<usize>,
    /// Folder of report.json, report.md, duration-vs-buffers.svg and stall-vs-state.svg
    /// [default: results/<date>-<cores>-cores-<cpu>/checkpoints]; written as `weir suite
    /// event-time` writes its folder (report.json last).
    #[arg(long)]
    output: Option<PathBuf>,
    #[command(flatten)]
    job: SuiteJob,
    /// Pin each subtask's thread to a core.
    #[arg(long, value_enum, default_value = "on")]
    pin: Switch,
    /// Bytes per network buffer segment: small, so that a few buffers hold a few records and
    /// the in-flight data the sweep varies is a handful of records per buffer.
    #[arg(long, value_parser = count(64, 1 << 20), default_value_t = 256)]
    segment_size: usize,
}

/// The barrier modes of the sweep.
const MODES: [BarrierMode; 4] = [
    BarrierMode::Aligned,
    BarrierMode::Unaligned,
    BarrierMode::AlignedWithTimeout {
        timeout: ALIGNED_TIMEOUT,
    },
    BarrierMode::AtLeastOnce,
];
/// The alignment timeout of the aligned-timeout runs: Flink's examples use tens of ms.
const ALIGNED_TIMEOUT: Duration = Duration::from_millis(10);

/// Between checkpoint triggers; with no pause, the next starts as soon as one ends.
const INTERVAL: Duration = Duration::from_millis(50);
/// Long enough that no checkpoint of the suite expires.
const TIMEOUT: Duration = Duration::from_secs(120);
/// Buffers shared by a gate's channels: Flink's default, fixed while the exclusive ones vary.
const FLOATING_PER_GATE: usize = weir_core::net::pool::DEFAULT_FLOATING_PER_GATE;

/// The sizes of one run of the suite.
struct Sizes {
    repeat: usize,
    buffers: &'static [usize],
    /// Seconds of tagging work each slowed run should take (records = this × parallelism /
    /// the per-record delay).
    slow_run_s: f64,
    /// Records of the runs without a slow step.
    fast_records: u64,
    /// Records of the snapshot-strategy runs: the state-size drivers.
    state_records: &'static [u64],
}

const QUICK: Sizes = Sizes {
    repeat: 1,
    buffers: &[2, 8],
    slow_run_s: 1.0,
    fast_records: 50_000,
    state_records: &[20_000, 200_000],
};

const FULL: Sizes = Sizes {
    repeat: 3,
    buffers: &[2, 8, 32],
    slow_run_s: 2.0,
    fast_records: 300_000,
    state_records: &[30_000, 100_000, 300_000, 1_000_000, 3_000_000],
};

/// The per-record delays of the tagging step; `None`: no slow step.
const SLOW_TAGS: [Option<Duration>; 3] = [
    None,
    Some(Duration::from_millis(1)),
    Some(Duration::from_millis(10)),
];

/// Which part of the suite a configuration belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Part {
    Barriers,
    Snapshots,
}

/// One configuration.
#[derive(Debug, Clone, Serialize)]
struct Config {
    name: String,
    part: Part,
    mode: BarrierMode,
    strategy: Strategy,
    slow_tag_ms: Option<f64>,
    exclusive_buffers: usize,
    records: u64,
}

fn mode_name(mode: BarrierMode) -> &'static str {
    match mode {
        BarrierMode::Aligned => "aligned",
        BarrierMode::Unaligned => "unaligned",
        BarrierMode::AlignedWithTimeout { .. } => "aligned-timeout",
        BarrierMode::AtLeastOnce => "at-least-once",
    }
}

/// A snapshot strategy: a state backend and where its snapshot is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Strategy {
    /// Heap maps, copy-on-write views serialized by snapshot threads.
    HeapAsync,
    /// Heap maps serialized on the task thread: the baseline.
    HeapSync,
    /// Memory-mapped state, incremental snapshots into shared files.
    MmapIncremental,
}

const STRATEGIES: [Strategy; 3] = [
    Strategy::HeapAsync,
    Strategy::HeapSync,
    Strategy::MmapIncremental,
];

impl Strategy {
    fn name(self) -> &'static str {
        match self {
            Strategy::HeapAsync => "heap-async",
            Strategy::HeapSync => "heap-sync",
            Strategy::MmapIncremental => "mmap-incremental",
        }
    }

    fn snapshot(self) -> SnapshotMode {
        match self {
            Strategy::HeapSync => SnapshotMode::Sync,
            Strategy::HeapAsync | Strategy::MmapIncremental => SnapshotMode::Async,
        }
    }

    fn backend(self) -> Backend {
        match self {
            Strategy::MmapIncremental => Backend::Mmap,
            Strategy::HeapAsync | Strategy::HeapSync => Backend::Heap,
        }
    }
}

fn slow_name(slow: Option<Duration>) -> String {
    slow.map_or_else(
        || "no-slow".to_owned(),
        |d| format!("slow-{}ms", d.as_millis()),
    )
}

/// Every configuration: the barrier sweep, then the snapshot strategies.
fn configs(sizes: &Sizes, parallelism: usize) -> Vec<Config> {
    let mut configs = Vec::new();
    for slow in SLOW_TAGS {
        let records = slow.map_or(sizes.fast_records, |d| {
            ((sizes.slow_run_s * parallelism as f64 / d.as_secs_f64()) as u64).max(1)
        });
        for mode in MODES {
            for &buffers in sizes.buffers {
                configs.push(Config {
                    name: format!("{}-{}-b{buffers}", mode_name(mode), slow_name(slow)),
                    part: Part::Barriers,
                    mode,
                    strategy: Strategy::HeapAsync,
                    slow_tag_ms: slow.map(|d| d.as_secs_f64() * 1e3),
                    exclusive_buffers: buffers,
                    records,
                });
            }
        }
    }
    for strategy in STRATEGIES {
        for &records in sizes.state_records {
            configs.push(Config {
                name: format!("{}-{records}", strategy.name()),
                part: Part::Snapshots,
                mode: BarrierMode::Aligned,
                strategy,
                slow_tag_ms: None,
                exclusive_buffers: weir_core::net::pool::DEFAULT_EXCLUSIVE_PER_CHANNEL,
                records,
            });
        }
    }
    configs
}

/// What one run measured; the checkpoint figures are over its completed checkpoints.
#[derive(Debug, Clone, Serialize)]
struct RunMetrics {
    config: String,
    round: usize,
    records_in: u64,
    wall_ms: f64,
    throughput_records_per_s: f64,
    checkpoints_completed: usize,
    checkpoints_failed: usize,
    duration_ms: Percentiles,
    start_delay_ms: Percentiles,
    alignment_ms: Percentiles,
    sync_ms: Percentiles,
    async_ms: Percentiles,
    checkpointed_bytes: Percentiles,
    /// The state every checkpoint refers to, shared files of earlier ones included.
    full_state_bytes: Percentiles,
    /// In-flight buffers written into the checkpoint (unaligned barriers).
    persisted_in_flight_bytes: Percentiles,
    /// Checkpoints in which at least one subtask went unaligned.
    checkpoints_unaligned: usize,
    /// Mean over the source subtasks of `backPressuredTimeMsPerSecond`: how much the slow
    /// step held the sources back.
    source_backpressured_ms_per_s: f64,
}

impl Run for RunMetrics {
    fn config(&self) -> &str {
        &self.config
    }
}

/// A checkpoint figure, only where a checkpoint completed.
fn completed(r: &RunMetrics, value: f64) -> Option<f64> {
    (r.checkpoints_completed > 0).then_some(value)
}

const METRICS: &[Metric<RunMetrics>] = &[
    ("throughput_records_per_s", |r| {
        Some(r.throughput_records_per_s)
    }),
    ("wall_ms", |r| Some(r.wall_ms)),
    ("checkpoints_completed", |r| {
        Some(r.checkpoints_completed as f64)
    }),
    ("checkpoints_failed", |r| Some(r.checkpoints_failed as f64)),
    ("duration_p50_ms", |r| completed(r, r.duration_ms.p50)),
    ("duration_p99_ms", |r| completed(r, r.duration_ms.p99)),
    ("start_delay_p50_ms", |r| completed(r, r.start_delay_ms.p50)),
    ("start_delay_p99_ms", |r| completed(r, r.start_delay_ms.p99)),
    ("alignment_p99_ms", |r| completed(r, r.alignment_ms.p99)),
    ("sync_p99_ms", |r| completed(r, r.sync_ms.p99)),
    ("async_p99_ms", |r| completed(r, r.async_ms.p99)),
    ("checkpointed_bytes_p50", |r| {
        completed(r, r.checkpointed_bytes.p50)
    }),
    ("full_state_bytes_p50", |r| {
        completed(r, r.full_state_bytes.p50)
    }),
    ("persisted_in_flight_bytes_p50", |r| {
        completed(r, r.persisted_in_flight_bytes.p50)
    }),
    ("checkpoints_unaligned", |r| {
        Some(r.checkpoints_unaligned as f64)
    }),
    ("source_backpressured_ms_per_s", |r| {
        Some(r.source_backpressured_ms_per_s)
    }),
];

/// One point of the barrier sweep (medians).
#[derive(Debug, Clone, Serialize)]
struct BarrierPoint {
    mode: &'static str,
    slow_tag_ms: Option<f64>,
    exclusive_buffers: usize,
    duration_p50_ms: Option<f64>,
    duration_p99_ms: Option<f64>,
    start_delay_p99_ms: Option<f64>,
    alignment_p99_ms: Option<f64>,
    checkpointed_bytes_p50: Option<f64>,
    persisted_in_flight_bytes_p50: Option<f64>,
    throughput_records_per_s: Option<f64>,
}

/// One point of the snapshot strategies (medians).
#[derive(Debug, Clone, Serialize)]
struct SnapshotPoint {
    strategy: &'static str,
    records: u64,
    checkpointed_bytes_p50: Option<f64>,
    full_state_bytes_p50: Option<f64>,
    sync_p99_ms: Option<f64>,
    duration_p99_ms: Option<f64>,
    throughput_records_per_s: Option<f64>,
}

/// What `report.json` holds.
#[derive(Debug, Serialize)]
struct SuiteReport {
    suite: &'static str,
    machine: Machine,
    quick: bool,
    parallelism: usize,
    partitions: usize,
    seed: u64,
    repeat: usize,
    segment_bytes: usize,
    floating_per_gate: usize,
    interval_ms: f64,
    configs: Vec<Config>,
    /// Every run, in the order they ran.
    runs: Vec<RunMetrics>,
    medians: Medians,
    barriers: Vec<BarrierPoint>,
    snapshots: Vec<SnapshotPoint>,
    /// Barriers against Storm's acking.
    acking: acking::Section,
    /// Recovery against state size and in-flight data.
    recovery: recovery::Section,
    /// State backends against state size and changed fraction.
    state: state::Section,
}

const REPORT_MD: &str = "report.md";
const DURATION_PLOT: &str = "duration-vs-buffers.svg";
const STALL_PLOT: &str = "stall-vs-state.svg";

/// Runs `weir suite checkpoints`.
pub(super) fn run(args: &CheckpointsArgs) -> Result<(), String> {
    let output = match &args.output {
        Some(output) => output.clone(),
        None => super::default_output(&Machine::detect(), "checkpoints"),
    };
    let report = run_suite(args, &output)?;
    println!(
        "checkpoints suite: {} runs; report.json, report.md, {DURATION_PLOT} and {STALL_PLOT} in {}",
        report.runs.len(),
        output.display()
    );
    Ok(())
}

fn run_suite(args: &CheckpointsArgs, output: &Path) -> Result<SuiteReport, String> {
    let sizes = if args.quick { &QUICK } else { &FULL };
    let repeat = args.repeat.unwrap_or(sizes.repeat);
    let out = OutputDir::open(output, &[REPORT_MD, DURATION_PLOT, STALL_PLOT])?;
    let runs_dir = output.join("runs");
    let configs = configs(sizes, args.job.parallelism);
    let total = configs.len() * repeat;
    let mut done = 0;
    let result = round_robin(&configs, repeat, |config, round| {
        let run = run_one(args, config, round, &runs_dir)?;
        done += 1;
        println!(
            "[{done:>3}/{total}] round {} {:<32} {:>8.0} records/s, {} checkpoints, duration p50 {:.1} ms, sync p99 {:.2} ms, {} bytes",
            round + 1,
            config.name,
            run.throughput_records_per_s,
            run.checkpoints_completed,
            run.duration_ms.p50,
            run.sync_ms.p99,
            run.checkpointed_bytes.p50,
        );
        Ok(run)
    });
    let result = result.and_then(|runs| {
        let acking = acking::run(&args.job, args.quick, repeat, &runs_dir)?;
        let recovery = recovery::run(&args.job, args.quick, repeat, args.segment_size, &runs_dir)?;
        let state = state::run(args.quick, repeat, &runs_dir)?;
        Ok((runs, acking, recovery, state))
    });
    let _ = std::fs::remove_dir_all(&runs_dir);
    let written = result.and_then(|(runs, acking, recovery, state)| {
        let medians = medians::medians(configs.iter().map(|c| c.name.as_str()), &runs, METRICS);
        let report = SuiteReport {
            suite: "checkpoints",
            machine: Machine::detect(),
            quick: args.quick,
            parallelism: args.job.parallelism,
            partitions: args.job.partitions,
            seed: args.job.seed,
            repeat,
            segment_bytes: args.segment_size,
            floating_per_gate: FLOATING_PER_GATE,
            interval_ms: INTERVAL.as_secs_f64() * 1e3,
            barriers: barrier_points(&configs, &medians),
            snapshots: snapshot_points(&configs, &medians),
            acking,
            recovery,
            state,
            configs,
            runs,
            medians,
        };
        write(&output.join(REPORT_MD), report::markdown(&report))?;
        plot_durations(&output.join(DURATION_PLOT), &report)?;
        plot_stalls(&output.join(STALL_PLOT), &report)?;
        Ok(report)
    });
    let report = match written {
        Ok(report) => report,
        Err(e) => return Err(out.fail(e)),
    };
    out.finish(OutputStatus::Completed, None, &report)?;
    Ok(report)
}

/// The folder of round `round` of configuration `name` under `runs_dir`, the checkpoint folder
/// in it and its storage (2 retained checkpoints).
fn run_folder(
    runs_dir: &Path,
    name: &str,
    round: usize,
) -> Result<(PathBuf, PathBuf, FsCheckpointStorage), String> {
    let dir = runs_dir.join(format!("{name}-{}", round + 1));
    let checkpoints = dir.join(crate::cli::checkpointing::DEFAULT_CHECKPOINT_DIR);
    let storage =
        FsCheckpointStorage::new(checkpoints.clone(), 2).map_err(|e| format!("{name}: {e}"))?;
    Ok((dir, checkpoints, storage))
}

/// One run of `config`, in its own folder under `runs_dir` (outputs and checkpoints).
fn run_one(
    args: &CheckpointsArgs,
    config: &Config,
    round: usize,
    runs_dir: &Path,
) -> Result<RunMetrics, String> {
    let (dir, checkpoints, storage) = run_folder(runs_dir, &config.name, round)?;
    let state_backend = state_backend::build(
        config.strategy.backend(),
        Some(&dir.join("state")),
        Some((checkpoints.clone(), storage.shared_registry())),
    )
    .map_err(|e| format!("{}: {e}", config.name))?;
    let job = TrafficJob {
        parallelism: args.job.parallelism,
        runtime: RuntimeConfig {
            pin: args.pin == Switch::On,
            state_backend,
            pool: PoolConfig {
                segment_bytes: args.segment_size,
                exclusive_per_channel: config.exclusive_buffers,
                floating_per_gate: FLOATING_PER_GATE,
                ..PoolConfig::default()
            },
            checkpoint: Some(CheckpointConfig {
                mode: config.mode,
                snapshot: config.strategy.snapshot(),
                timeout: TIMEOUT,
                ..CheckpointConfig::new(INTERVAL, checkpoints, Arc::new(storage))
            }),
            ..RuntimeConfig::default()
        },
        slow_tag: config
            .slow_tag_ms
            .map(|ms| Duration::from_secs_f64(ms / 1e3)),
        ..TrafficJob::new(
            TrafficInput::Generate(GeneratorConfig {
                records: config.records,
                partitions: args.job.partitions,
                seed: args.job.seed,
                ..GeneratorConfig::default()
            }),
            dir,
        )
    };
    let run = run_job(&job, &config.name, round)?;
    let stats = run.result.checkpoints.clone().unwrap_or_default();
    let done: Vec<&CheckpointRecord> = stats
        .history
        .iter()
        .filter(|r| r.status == Status::Completed)
        .collect();
    let of = |f: fn(&CheckpointRecord) -> f64| Percentiles::of(done.iter().map(|r| f(r)).collect());
    let sources: Vec<f64> = run
        .result
        .tasks
        .iter()
        .filter(|t| t.task.starts_with("source"))
        .map(|t| t.backPressuredTimeMsPerSecond)
        .collect();
    let wall = run.result.wall.as_secs_f64().max(1e-9);
    Ok(RunMetrics {
        config: config.name.clone(),
        round: round + 1,
        records_in: run.records_in,
        wall_ms: wall * 1e3,
        throughput_records_per_s: run.records_in as f64 / wall,
        checkpoints_completed: done.len(),
        checkpoints_failed: stats.failed_count(),
        duration_ms: of(|r| r.end_to_end_duration_ms),
        start_delay_ms: of(|r| r.start_delay_ms),
        alignment_ms: of(|r| r.alignment_duration_ms),
        sync_ms: of(|r| r.sync_duration_ms),
        async_ms: of(|r| r.async_duration_ms),
        checkpointed_bytes: of(|r| r.checkpointed_bytes as f64),
        full_state_bytes: of(|r| r.full_state_bytes as f64),
        persisted_in_flight_bytes: of(|r| r.persisted_in_flight_bytes as f64),
        checkpoints_unaligned: done
            .iter()
            .filter(|r| !r.unaligned_subtasks.is_empty())
            .count(),
        source_backpressured_ms_per_s: sources.iter().sum::<f64>() / sources.len().max(1) as f64,
    })
}

fn barrier_points(configs: &[Config], medians: &Medians) -> Vec<BarrierPoint> {
    configs
        .iter()
        .filter(|c| c.part == Part::Barriers)
        .map(|c| {
            let m = |metric| get(medians, &c.name, metric);
            BarrierPoint {
                mode: mode_name(c.mode),
                slow_tag_ms: c.slow_tag_ms,
                exclusive_buffers: c.exclusive_buffers,
                duration_p50_ms: m("duration_p50_ms"),
                duration_p99_ms: m("duration_p99_ms"),
                start_delay_p99_ms: m("start_delay_p99_ms"),
                alignment_p99_ms: m("alignment_p99_ms"),
                checkpointed_bytes_p50: m("checkpointed_bytes_p50"),
                persisted_in_flight_bytes_p50: m("persisted_in_flight_bytes_p50"),
                throughput_records_per_s: m("throughput_records_per_s"),
            }
        })
        .collect()
}

fn snapshot_points(configs: &[Config], medians: &Medians) -> Vec<SnapshotPoint> {
    configs
        .iter()
        .filter(|c| c.part == Part::Snapshots)
        .map(|c| {
            let m = |metric| get(medians, &c.name, metric);
            SnapshotPoint {
                strategy: c.strategy.name(),
                records: c.records,
                checkpointed_bytes_p50: m("checkpointed_bytes_p50"),
                full_state_bytes_p50: m("full_state_bytes_p50"),
                sync_p99_ms: m("sync_p99_ms"),
                duration_p99_ms: m("duration_p99_ms"),
                throughput_records_per_s: m("throughput_records_per_s"),
            }
        })
        .collect()
}

/// Checkpoint duration p50 against the exclusive buffers per channel: a panel per slow step,
/// a line per barrier mode.
fn plot_durations(path: &Path, report: &SuiteReport) -> Result<(), String> {
    let panels: Vec<Panel> = SLOW_TAGS
        .iter()
        .map(|slow| {
            let slow_ms = slow.map(|d| d.as_secs_f64() * 1e3);
            let series = MODES
                .into_iter()
                .map(|mode| Series {
                    label: mode_name(mode).to_owned(),
                    points: report
                        .barriers
                        .iter()
                        .filter(|p| p.mode == mode_name(mode) && p.slow_tag_ms == slow_ms)
                        .filter_map(|p| p.duration_p50_ms.map(|d| (p.exclusive_buffers as f64, d)))
                        .collect(),
                })
                .collect();
            Panel {
                caption: format!("Checkpoint duration p50, {}", slow_name(*slow)),
                x_desc: "exclusive buffers per channel",
                y_desc: "ms",
                series,
            }
        })
        .collect();
    plot::panels(path, &panels)
}

/// The synchronous stall (sync part p99) against the checkpointed bytes, a line per strategy.
fn plot_stalls(path: &Path, report: &SuiteReport) -> Result<(), String> {
    let series = STRATEGIES
        .into_iter()
        .map(|strategy| Series {
            label: strategy.name().to_owned(),
            points: report
                .snapshots
                .iter()
                .filter(|p| p.strategy == strategy.name())
                .filter_map(|p| {
                    p.checkpointed_bytes_p50
                        .zip(p.sync_p99_ms)
                        .map(|(b, s)| (b / 1e6, s))
                })
                .collect(),
        })
        .collect();
    plot::panels(
        path,
        &[Panel {
            caption: "Synchronous stall p99 against state size".into(),
            x_desc: "checkpointed bytes per checkpoint (p50), MB",
            y_desc: "ms",
            series,
        }],
    )
}
