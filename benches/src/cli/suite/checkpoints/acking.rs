//! The checkpoint suite's section "Barriers against Storm's acking" (seed question 3): the
//! traffic job on the same generated input under no guarantee, Storm-style acking
//! ([`crate::acking`]) and aligned barrier checkpoints, interleaved round robin, medians of
//! at least [`MIN_REPEAT`] rounds; and, after one injected failure, the records counted more
//! than once under each guarantee.
//!
//! Each guarantee's cost is its throughput over its own engine's no-guarantee run: weir's
//! aligned checkpoints over weir without checkpoints, acking over the same Storm-style
//! topology with `topology.acker.executors: 0`. The failure is, for acking, [`LOST_TUPLES`]
//! tuples lost between the tagging step and flow_1m (their trees time out and are replayed);
//! for barriers, a tagging subtask that panics a third of the way in (the job restarts from
//! its latest completed checkpoint). Duplicates: the tagged records counted by count-origins
//! above the records the guard accepted (the barrier run's are read from its committed
//! outputs).

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use weir_backends::FsCheckpointStorage;
use weir_core::RuntimeConfig;
use weir_core::checkpoint::{BarrierMode, CheckpointConfig, RestartStrategy};

use super::super::medians::{self, Medians, Metric, Run, cell, get, num};
use super::super::{SuiteJob, round_robin, run_job};
use super::{INTERVAL, TIMEOUT};
use crate::acking::{self, AckingJob, LoseTuples};
use crate::traffic::generator::GeneratorConfig;
use crate::traffic::input::TrafficInput;
use crate::traffic::job::TrafficJob;

/// Rounds at least, whatever `--repeat` says: the machine is noisy.
pub(super) const MIN_REPEAT: usize = 5;
/// Tuples the acked run with a failure loses.
pub(super) const LOST_TUPLES: u64 = 100;
/// `topology.message.timeout.secs` of the acked runs: Storm's 30 s scaled to runs of a
/// second or two, so a lost tree is replayed within the run.
pub(super) const MESSAGE_TIMEOUT: Duration = Duration::from_secs(1);

/// Generated records per run: quick, full.
const RECORDS: [u64; 2] = [50_000, 1_000_000];

/// The configurations, in the order of a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(super) enum Config {
    /// weir, no checkpoints.
    WeirNone,
    /// weir, aligned barrier checkpoints.
    WeirAligned,
    /// weir, aligned barriers, a tagging subtask fails once.
    WeirAlignedFailure,
    /// The Storm-style topology without ackers.
    StormNone,
    /// The Storm-style topology with acking.
    StormAcking,
    /// With acking, [`LOST_TUPLES`] tuples lost.
    StormAckingLost,
}

const CONFIGS: [Config; 6] = [
    Config::WeirNone,
    Config::WeirAligned,
    Config::WeirAlignedFailure,
    Config::StormNone,
    Config::StormAcking,
    Config::StormAckingLost,
];

impl Config {
    fn name(self) -> &'static str {
        match self {
            Config::WeirNone => "weir-none",
            Config::WeirAligned => "weir-aligned",
            Config::WeirAlignedFailure => "weir-aligned-failure",
            Config::StormNone => "storm-none",
            Config::StormAcking => "storm-acking",
            Config::StormAckingLost => "storm-acking-lost",
        }
    }

    /// The configuration without a guarantee on the same engine.
    fn baseline(self) -> Config {
        match self {
            Config::WeirNone | Config::WeirAligned | Config::WeirAlignedFailure => Config::WeirNone,
            _ => Config::StormNone,
        }
    }
}

/// One run.
#[derive(Debug, Clone, Serialize)]
pub(super) struct RunMetrics {
    config: &'static str,
    round: usize,
    records_in: u64,
    wall_ms: f64,
    throughput_records_per_s: f64,
    /// Tagged records counted more than once.
    duplicates: u64,
    /// Acking: trees failed by timeout and replayed.
    replays: u64,
    /// Barriers: restarts from a checkpoint.
    restarts: u64,
    /// Records flow_1m dropped as late (acking: replays that came after their window).
    flow_late: u64,
}

impl Run for RunMetrics {
    fn config(&self) -> &str {
        self.config
    }
}

const METRICS: &[Metric<RunMetrics>] = &[
    ("throughput_records_per_s", |r| {
        Some(r.throughput_records_per_s)
    }),
    ("duplicates", |r| Some(r.duplicates as f64)),
    ("replays", |r| Some(r.replays as f64)),
    ("restarts", |r| Some(r.restarts as f64)),
    ("flow_late", |r| Some(r.flow_late as f64)),
];

/// One configuration's medians.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Row {
    config: &'static str,
    throughput_records_per_s: Option<f64>,
    /// Throughput over the same engine's run without a guarantee.
    ratio_to_no_guarantee: Option<f64>,
    duplicates: Option<f64>,
    replays: Option<f64>,
    restarts: Option<f64>,
    flow_late: Option<f64>,
}

/// What `report.json` holds under `acking`.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Section {
    records: u64,
    repeat: usize,
    checkpoint_interval_ms: f64,
    message_timeout_ms: f64,
    max_spout_pending: usize,
    lost_tuples: u64,
    runs: Vec<RunMetrics>,
    medians: Medians,
    rows: Vec<Row>,
}

/// Runs the section: every configuration once per round, round robin.
pub(super) fn run(
    job: &SuiteJob,
    quick: bool,
    repeat: usize,
    runs_dir: &std::path::Path,
) -> Result<Section, String> {
    let records = RECORDS[usize::from(!quick)];
    let repeat = repeat.max(MIN_REPEAT);
    let input = TrafficInput::Generate(GeneratorConfig {
        records,
        partitions: job.partitions,
        seed: job.seed,
        ..GeneratorConfig::default()
    });
    let total = CONFIGS.len() * repeat;
    let mut done = 0;
    let runs = round_robin(&CONFIGS, repeat, |&config, round| {
        let run = match config {
            Config::WeirNone | Config::WeirAligned | Config::WeirAlignedFailure => {
                run_weir(job, &input, config, round, runs_dir)?
            }
            _ => run_storm(job, &input, config, round)?,
        };
        done += 1;
        println!(
            "[{done:>3}/{total}] round {} {:<22} {:>10.0} records/s, {} duplicates, {} replays, {} restarts",
            round + 1,
            config.name(),
            run.throughput_records_per_s,
            run.duplicates,
            run.replays,
            run.restarts
        );
        Ok(run)
    })?;
    let medians = medians::medians(CONFIGS.iter().map(|c| c.name()), &runs, METRICS);
    let rows = CONFIGS
        .iter()
        .map(|&c| {
            let m = |metric| get(&medians, c.name(), metric);
            let throughput = m("throughput_records_per_s");
            let base = get(&medians, c.baseline().name(), "throughput_records_per_s");
            Row {
                config: c.name(),
                throughput_records_per_s: throughput,
                ratio_to_no_guarantee: throughput.zip(base).map(|(t, b)| t / b),
                duplicates: m("duplicates"),
                replays: m("replays"),
                restarts: m("restarts"),
                flow_late: m("flow_late"),
            }
        })
        .collect();
    Ok(Section {
        records,
        repeat,
        checkpoint_interval_ms: INTERVAL.as_secs_f64() * 1e3,
        message_timeout_ms: MESSAGE_TIMEOUT.as_secs_f64() * 1e3,
        max_spout_pending: acking::DEFAULT_MAX_SPOUT_PENDING,
        lost_tuples: LOST_TUPLES,
        runs,
        medians,
        rows,
    })
}

/// The weir job, without checkpoints or with aligned ones (and then perhaps one failure).
fn run_weir(
    job: &SuiteJob,
    input: &TrafficInput,
    config: Config,
    round: usize,
    runs_dir: &std::path::Path,
) -> Result<RunMetrics, String> {
    let dir = runs_dir.join(format!("{}-{}", config.name(), round + 1));
    let mut runtime = RuntimeConfig::default();
    if config != Config::WeirNone {
        let checkpoints = dir.join(crate::cli::checkpointing::DEFAULT_CHECKPOINT_DIR);
        let storage = FsCheckpointStorage::new(checkpoints.clone(), 2)
            .map_err(|e| format!("{}: {e}", config.name()))?;
        runtime.checkpoint = Some(CheckpointConfig {
            mode: BarrierMode::Aligned,
            timeout: TIMEOUT,
            ..CheckpointConfig::new(INTERVAL, checkpoints, Arc::new(storage))
        });
        runtime.restart = RestartStrategy::FixedDelay {
            attempts: 3,
            delay: Duration::from_millis(10),
        };
    }
    let traffic = TrafficJob {
        parallelism: job.parallelism,
        runtime: RuntimeConfig {
            pin: false,
            ..runtime
        },
        fail_after: (config == Config::WeirAlignedFailure)
            .then(|| generated_records(input) / (3 * job.parallelism as u64).max(1)),
        ..TrafficJob::new(input.clone(), dir)
    };
    let run = run_job(&traffic, config.name(), round)?;
    let wall = run.result.wall.as_secs_f64().max(1e-9);
    let accepted = run.records_in - run.records_rejected - run.records_quarantined;
    Ok(RunMetrics {
        config: config.name(),
        round: round + 1,
        records_in: run.records_in,
        wall_ms: wall * 1e3,
        throughput_records_per_s: run.records_in as f64 / wall,
        duplicates: run.counts.total().saturating_sub(accepted),
        replays: 0,
        restarts: run
            .result
            .checkpoints
            .as_ref()
            .map_or(0, |c| c.restarts.len() as u64),
        flow_late: run.records_late_dropped,
    })
}

fn generated_records(input: &TrafficInput) -> u64 {
    match input {
        TrafficInput::Generate(generator) => generator.records,
        TrafficInput::Files(_) => 0,
    }
}

/// The Storm-style topology, without ackers, with acking, or with acking and lost tuples.
fn run_storm(
    job: &SuiteJob,
    input: &TrafficInput,
    config: Config,
    round: usize,
) -> Result<RunMetrics, String> {
    let topology = AckingJob {
        parallelism: job.parallelism,
        acking: config != Config::StormNone,
        message_timeout: MESSAGE_TIMEOUT,
        lose: (config == Config::StormAckingLost).then(|| LoseTuples {
            after: generated_records(input) / (3 * job.parallelism as u64).max(1),
            count: LOST_TUPLES,
        }),
        ..AckingJob::new(input.clone())
    };
    let run = acking::run(&topology)
        .map_err(|e| format!("{} round {}: {e}", config.name(), round + 1))?;
    if run.counts.total() < run.records_accepted()
        || run.windows.counted() + run.flow_late < run.records_accepted()
    {
        return Err(format!(
            "{} round {}: records lost under acking: {} accepted, {} counted, {} in flow_1m + {} late",
            config.name(),
            round + 1,
            run.records_accepted(),
            run.counts.total(),
            run.windows.counted(),
            run.flow_late
        ));
    }
    Ok(RunMetrics {
        config: config.name(),
        round: round + 1,
        records_in: run.records_in,
        wall_ms: run.wall_s * 1e3,
        throughput_records_per_s: run.throughput_records_per_s(),
        duplicates: run.duplicates(),
        replays: run.replays,
        restarts: 0,
        flow_late: run.flow_late,
    })
}

/// The section of `report.md`.
pub(super) fn markdown(section: &Section) -> String {
    use std::fmt::Write as _;
    let mut md = String::new();
    let w = &mut md;
    let _ = writeln!(
        w,
        "## Barriers against Storm's acking (seed question 3)\n\n\
         The traffic job on the same {} generated records, {} rounds round robin: weir without \
         checkpoints and with aligned barrier checkpoints every {:.0} ms (exactly once: \
         two-phase-commit outputs); the same logic as a Storm-style topology \
         (`benches/src/acking`) without ackers and with per-tuple acking (XOR ledger, \
         message timeout {:.0} ms, max spout pending {} per spout task; at least once). The \
         cost of a guarantee is its throughput over its own engine's run without one. The \
         failure runs: weir's tagging subtask panics a third of the way in and the job \
         restarts from its latest checkpoint; the topology loses {} tuples between tagging \
         and flow_1m, whose trees time out and are replayed. Duplicates: tagged records \
         counted more than once (count-origins against the records accepted). Cells: \
         `median (lowest–highest)`.\n",
        section.records,
        section.repeat,
        section.checkpoint_interval_ms,
        section.message_timeout_ms,
        section.max_spout_pending,
        section.lost_tuples
    );
    let _ = writeln!(
        w,
        "| configuration | records/s | / no guarantee | duplicates | replays | restarts | flow_1m late |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|");
    for row in &section.rows {
        let c = |metric| cell(&section.medians, row.config, metric, 1.0, 0);
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.config,
            c("throughput_records_per_s"),
            num(row.ratio_to_no_guarantee, 3),
            c("duplicates"),
            c("replays"),
            c("restarts"),
            c("flow_late")
        );
    }
    let _ = writeln!(
        w,
        "\nA replay comes a message timeout after its tuple, after its windows fired: flow_1m \
         counts it as late, count-origins and origin_5m count it again. Barriers restore the \
         state with the offsets, so the committed outputs count every record once.\n"
    );
    md
}
