//! The checkpoint suite's section "Recovery": from a failure to the first output after the
//! restore, against the state a restore reads and the data in flight when the job failed.
//!
//! Every run fails once: a tagging subtask panics a third of the way through its input
//! (`--fail-after`), the job restarts at once from its latest completed checkpoint. Two
//! figures per run, both from the failure: to the restored attempt's start (the failed attempt
//! cancelled and joined, the outputs recovered, every task rebuilt and its state read:
//! `last_recovery_ms`), and to the first record a sink receives after the restore
//! (`last_recovery_to_output_ms`: what a consumer of the outputs waits). The state grows with
//! the records read before the failure (the tagging step's per-plate state); the data in flight
//! grows with the buffers per channel under a slow tagging step.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use weir_core::RuntimeConfig;
use weir_core::checkpoint::{BarrierMode, CheckpointConfig, RestartStrategy};
use weir_core::net::PoolConfig;

use super::super::medians::{self, Medians, Metric, Run, cell};
use super::super::{SuiteJob, round_robin, run_job};
use super::{FLOATING_PER_GATE, INTERVAL, TIMEOUT, mode_name, run_folder};
use crate::traffic::generator::GeneratorConfig;
use crate::traffic::input::TrafficInput;
use crate::traffic::job::TrafficJob;

/// The barrier modes compared.
const MODES: [BarrierMode; 1] = [BarrierMode::Aligned];

/// Records of the runs without a slow step (the state-size axis): quick, full.
const STATE_RECORDS: [&[u64]; 2] = [&[100_000, 300_000], &[300_000, 1_000_000, 3_000_000]];
/// The slow step of the in-flight runs, and their exclusive buffers per channel.
const SLOW_TAG: Duration = Duration::from_millis(1);
const IN_FLIGHT_BUFFERS: [usize; 2] = [2, 32];
/// Seconds of tagging work of a slowed run: quick, full.
const SLOW_RUN_S: [f64; 2] = [0.6, 1.5];

/// One configuration.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Config {
    name: String,
    mode: BarrierMode,
    records: u64,
    slow_tag_ms: Option<f64>,
    exclusive_buffers: usize,
}

fn configs(quick: bool, parallelism: usize) -> Vec<Config> {
    let full = usize::from(!quick);
    let mut configs = Vec::new();
    for mode in MODES {
        for &records in STATE_RECORDS[full] {
            configs.push(Config {
                name: format!("{}-state-{records}", mode_name(mode)),
                mode,
                records,
                slow_tag_ms: None,
                exclusive_buffers: weir_core::net::pool::DEFAULT_EXCLUSIVE_PER_CHANNEL,
            });
        }
        let records =
            ((SLOW_RUN_S[full] * parallelism as f64 / SLOW_TAG.as_secs_f64()) as u64).max(1);
        for buffers in IN_FLIGHT_BUFFERS {
            configs.push(Config {
                name: format!(
                    "{}-slow-{}ms-b{buffers}",
                    mode_name(mode),
                    SLOW_TAG.as_millis()
                ),
                mode,
                records,
                slow_tag_ms: Some(SLOW_TAG.as_secs_f64() * 1e3),
                exclusive_buffers: buffers,
            });
        }
    }
    configs
}

/// One run.
#[derive(Debug, Clone, Serialize)]
pub(super) struct RunMetrics {
    config: String,
    round: usize,
    restarts: usize,
    /// The checkpoint the last restart restored (`None`: none had completed, the job started
    /// over from the beginning of its input, and no recovery time is measured).
    restored_checkpoint: Option<u64>,
    /// Bytes of state the restore read.
    restored_bytes: u64,
    /// From the failure to the restored attempt's start, ms.
    recovery_ms: Option<f64>,
    /// From the failure to the first record a sink received after the restore, ms.
    recovery_to_output_ms: Option<f64>,
}

impl Run for RunMetrics {
    fn config(&self) -> &str {
        &self.config
    }
}

const METRICS: &[Metric<RunMetrics>] = &[
    ("restored_from_a_checkpoint", |r| {
        Some(f64::from(u8::from(r.restored_checkpoint.is_some())))
    }),
    ("restored_bytes", |r| Some(r.restored_bytes as f64)),
    ("recovery_ms", |r| r.recovery_ms),
    ("recovery_to_output_ms", |r| r.recovery_to_output_ms),
];

/// What `report.json` holds under `recovery`.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Section {
    repeat: usize,
    configs: Vec<Config>,
    runs: Vec<RunMetrics>,
    medians: Medians,
}

/// Runs the section: every configuration once per round, round robin.
pub(super) fn run(
    job: &SuiteJob,
    quick: bool,
    repeat: usize,
    segment_bytes: usize,
    runs_dir: &Path,
) -> Result<Section, String> {
    let configs = configs(quick, job.parallelism);
    let total = configs.len() * repeat;
    let mut done = 0;
    let runs = round_robin(&configs, repeat, |config, round| {
        let run = run_one(job, config, round, segment_bytes, runs_dir)?;
        done += 1;
        let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1} ms"));
        println!(
            "[{done:>3}/{total}] round {} {:<32} restored {} bytes, recovery {}, to output {}",
            round + 1,
            config.name,
            run.restored_bytes,
            ms(run.recovery_ms),
            ms(run.recovery_to_output_ms),
        );
        Ok(run)
    })?;
    let medians = medians::medians(configs.iter().map(|c| c.name.as_str()), &runs, METRICS);
    Ok(Section {
        repeat,
        configs,
        runs,
        medians,
    })
}

fn run_one(
    job: &SuiteJob,
    config: &Config,
    round: usize,
    segment_bytes: usize,
    runs_dir: &Path,
) -> Result<RunMetrics, String> {
    let (dir, checkpoints, storage) = run_folder(runs_dir, &config.name, round)?;
    let traffic = TrafficJob {
        parallelism: job.parallelism,
        runtime: RuntimeConfig {
            pool: PoolConfig {
                segment_bytes,
                exclusive_per_channel: config.exclusive_buffers,
                floating_per_gate: FLOATING_PER_GATE,
                ..PoolConfig::default()
            },
            checkpoint: Some(CheckpointConfig {
                mode: config.mode,
                timeout: TIMEOUT,
                ..CheckpointConfig::new(INTERVAL, checkpoints, Arc::new(storage))
            }),
            restart: RestartStrategy::FixedDelay {
                attempts: 3,
                delay: Duration::ZERO,
            },
            ..RuntimeConfig::default()
        },
        slow_tag: config
            .slow_tag_ms
            .map(|ms| Duration::from_secs_f64(ms / 1e3)),
        fail_after: Some(config.records / (3 * job.parallelism as u64).max(1)),
        ..TrafficJob::new(
            TrafficInput::Generate(GeneratorConfig {
                records: config.records,
                partitions: job.partitions,
                seed: job.seed,
                ..GeneratorConfig::default()
            }),
            dir,
        )
    };
    let run = run_job(&traffic, &config.name, round)?;
    let stats = run.result.checkpoints.clone().unwrap_or_default();
    if stats.restarts.is_empty() {
        return Err(format!(
            "{} round {}: the injected failure did not fire",
            config.name,
            round + 1
        ));
    }
    Ok(RunMetrics {
        config: config.name.clone(),
        round: round + 1,
        restarts: stats.restarts.len(),
        restored_checkpoint: stats.restarts.last().and_then(|r| r.restored_checkpoint),
        restored_bytes: stats.last_restored_bytes,
        recovery_ms: stats.last_recovery_ms,
        recovery_to_output_ms: stats.last_recovery_to_output_ms,
    })
}

/// The section of `report.md`.
pub(super) fn markdown(section: &Section) -> String {
    use std::fmt::Write as _;
    let mut md = String::new();
    let w = &mut md;
    let _ = writeln!(
        w,
        "## Recovery\n\n\
         Every run fails once: a tagging subtask panics a third of the way through its input \
         and the job restarts at once from its latest completed checkpoint ({} rounds round \
         robin). Recovery to the restored attempt's start: the failed attempt cancelled and \
         joined, the outputs recovered, the tasks rebuilt and their state read. To the first \
         output: until a sink receives its first record after the restore. The state runs \
         vary the records read before the failure; the slow runs ({} ms per record in the \
         tagging step) vary the buffers in flight. A run whose failure came before any \
         checkpoint completed starts over from the beginning of its input (`restored` 0): \
         no recovery time is measured for it. The first output waits for a window to fire \
         (a watermark every {} ms), so it is the recovery a consumer of the outputs sees, \
         not the engine's alone. Cells: `median (lowest–highest)`.\n",
        section.repeat,
        SLOW_TAG.as_millis(),
        weir_core::time::DEFAULT_WATERMARK_INTERVAL.as_millis()
    );
    let _ = writeln!(
        w,
        "| configuration | records | buffers per channel | restored | restored bytes | to restored start ms | to first output ms |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|");
    for config in &section.configs {
        let c = |metric, digits| cell(&section.medians, &config.name, metric, 1.0, digits);
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} | {} |",
            config.name,
            config.records,
            config.exclusive_buffers,
            c("restored_from_a_checkpoint", 0),
            c("restored_bytes", 0),
            c("recovery_ms", 1),
            c("recovery_to_output_ms", 1),
        );
    }
    let _ = writeln!(w);
    md
}
