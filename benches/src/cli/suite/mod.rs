//! `weir suite`: side-by-side comparisons run in one process, every configuration interleaved
//! (round robin, `--repeat` rounds), the median of the repetitions per metric; a throughput
//! ratio is the median over the rounds of the ratio within each round (paired: a machine
//! drifting between rounds cancels), other ratios are ratios of medians; writes `report.json`,
//! `report.md` and SVG plots.
//!
//! `weir suite event-time` compares, on the generated traffic input (one generator seed for
//! every configuration):
//! 1. periodic (the default interval) vs punctuated watermarks;
//! 2. parallel (two-phase) vs window-all aggregation of the global per-minute window;
//! 3. a sweep of the watermark delay (bounded out-of-orderness) with punctuated watermarks;
//! 4. streaming vs batch execution over the same history.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};
use serde::Serialize;
use weir_core::RuntimeConfig;
use weir_core::metrics::TaskReport;
use weir_core::window::GlobalAggregation;

mod checkpoints;
mod medians;
mod plot;
mod report;

use medians::{Medians, Metric, Run, get};

use super::{
    MAX_PARALLELISM, MAX_PARTITIONS, MAX_REPEAT, RuntimeArgs, Switch, count, current_job, records,
};
use crate::output_dir::{OutputDir, Status};
use crate::report::{Latency, Machine, median};
use crate::traffic::generator::GeneratorConfig;
use crate::traffic::input::TrafficInput;
use crate::traffic::job::{self, EventTimeOptions, TrafficJob, Watermarks};
use crate::traffic::record::Home;

/// Options of `weir suite`.
#[derive(Debug, Clone, Args)]
pub struct SuiteArgs {
    #[command(subcommand)]
    suite: SuiteKind,
}

#[derive(Debug, Clone, Subcommand)]
enum SuiteKind {
    /// Event time on the traffic job: periodic vs punctuated watermarks, parallel vs
    /// window-all aggregation, a watermark-delay sweep (0 s to 180 s) and streaming vs batch.
    EventTime(EventTimeArgs),
    /// Checkpoints on the traffic job: aligned vs at-least-once barriers under backpressure
    /// (a slow tagging step) and without, over buffers per channel; heap async vs sync
    /// snapshots against state size.
    Checkpoints(checkpoints::CheckpointsArgs),
}

/// The generated traffic job every suite runs.
#[derive(Debug, Clone, Args)]
pub(super) struct SuiteJob {
    /// Subtasks of the source and the tagging step (and of a two-phase merge), 1 to 1024.
    #[arg(long, short, value_parser = count(1, MAX_PARALLELISM), default_value_t = 2)]
    pub(super) parallelism: usize,
    /// Partitions of the generated input, 1 to 4096.
    #[arg(long, value_parser = count(1, MAX_PARTITIONS), default_value_t = 4)]
    pub(super) partitions: usize,
    /// Seed of the generator, the same for every configuration.
    #[arg(long, default_value_t = 42)]
    pub(super) seed: u64,
}

/// Options of `weir suite event-time`.
#[derive(Debug, Clone, Args)]
pub struct EventTimeArgs {
    /// Records the generator produces for every configuration but the aggregation comparison,
    /// at least 1.
    #[arg(long, value_parser = records(), default_value_t = 2_000_000)]
    records: u64,
    /// Records of the aggregation comparison (parallel vs window-all), larger so that the
    /// window has time to become the bottleneck, at least 1 [default: 4 × --records].
    #[arg(long, value_parser = records())]
    window_records: Option<u64>,
    /// Rounds, 1 to 10000: every configuration runs once per round, round robin.
    #[arg(long, value_parser = count(1, MAX_REPEAT), default_value_t = 5)]
    repeat: usize,
    /// Folder of report.json, report.md and late-latency-vs-delay.svg
    /// [default: results/<date>-<cores>-cores-<cpu>/event-time]. A run first replaces
    /// report.json with one saying "status": "incomplete" and removes the other two, and
    /// writes report.json last with "status": "completed" (or "failed", with the error).
    #[arg(long)]
    output: Option<PathBuf>,
    #[command(flatten)]
    job: SuiteJob,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

/// The periodic watermark interval compared against punctuated watermarks: weir's default.
const PERIODIC_INTERVAL: Duration = weir_core::time::DEFAULT_WATERMARK_INTERVAL;
/// The out-of-orderness of the watermark and aggregation comparisons.
const DEFAULT_DELAY_S: u64 = 5;
/// The watermark delays of the sweep, seconds.
const SWEEP_DELAYS_S: [u64; 5] = [0, 5, 30, 120, 180];
/// Targets the suite reports against.
const TARGET_PUNCTUATED_OVER_PERIODIC: f64 = 0.9;
const TARGET_PARALLEL_OVER_WINDOW_ALL: f64 = 1.8;
/// Busy time (ms per s) above which a task counts as saturated.
const SATURATED_MS_PER_S: f64 = 900.0;

/// Names of the configurations.
const BATCH: &str = "batch";
const PERIODIC: &str = "periodic-5s";
const WINDOW_ALL: &str = "window-all-large";
const PARALLEL: &str = "parallel-large";

fn punctuated(delay_s: u64) -> String {
    format!("punctuated-{delay_s}s")
}

/// Runs `weir suite`.
pub(super) fn run(args: &SuiteArgs) -> Result<(), String> {
    match &args.suite {
        SuiteKind::EventTime(args) => {
            let output = match &args.output {
                Some(output) => output.clone(),
                None => default_output(&Machine::detect(), "event-time"),
            };
            let report = run_event_time(args, &output)?;
            println!(
                "event-time suite: {} runs; report.json, report.md and late-latency-vs-delay.svg in {}",
                report.runs.len(),
                output.display()
            );
            Ok(())
        }
        SuiteKind::Checkpoints(args) => checkpoints::run(args),
    }
}

/// `results/<date>-<cores>-cores-<cpu>/<suite>`.
fn default_output(machine: &Machine, suite: &str) -> PathBuf {
    PathBuf::from("results")
        .join(format!("{}-{}", today(), machine_name(machine)))
        .join(suite)
}

/// Runs one configuration's job (Ctrl-C stops it), removes its output folder and refuses a
/// run that stopped early; errors name the configuration and the round.
fn run_job(job: &TrafficJob, config: &str, round: usize) -> Result<job::TrafficRun, String> {
    let outcome = job::run(job, |control, _tally| {
        *current_job().lock().unwrap_or_else(|p| p.into_inner()) = Some(control);
    });
    *current_job().lock().unwrap_or_else(|p| p.into_inner()) = None;
    let _ = std::fs::remove_dir_all(&job.output);
    let outcome = outcome.map_err(|e| format!("{config} round {}: {e}", round + 1))?;
    if outcome.result.stopped_early {
        return Err(format!(
            "{config} round {}: stopped early; no report written",
            round + 1
        ));
    }
    check_accounting(&outcome).map_err(|e| format!("{config} round {}: {e}", round + 1))?;
    Ok(outcome)
}

/// Every record in ends as exactly one of counted, late, rejected or quarantined.
fn check_accounting(run: &job::TrafficRun) -> Result<(), String> {
    let dropped = run.records_rejected + run.records_quarantined;
    let counted = run.records_counted();
    if run.records_in != run.counts.total() + dropped
        || run.records_in != counted + run.records_late_dropped + dropped
    {
        return Err(format!(
            "accounting does not add up: records_in {} != counted {} + late {} + rejected {} + quarantined {}",
            run.records_in,
            counted,
            run.records_late_dropped,
            run.records_rejected,
            run.records_quarantined
        ));
    }
    Ok(())
}

/// Every configuration once per round, round robin, `repeat` rounds: `run` gets the
/// configuration and the round (from 0); the runs in the order they ran.
fn round_robin<C, R>(
    configs: &[C],
    repeat: usize,
    mut run: impl FnMut(&C, usize) -> Result<R, String>,
) -> Result<Vec<R>, String> {
    let mut runs = Vec::with_capacity(configs.len() * repeat);
    for round in 0..repeat {
        for config in configs {
            runs.push(run(config, round)?);
        }
    }
    Ok(runs)
}

/// The UTC date, `YYYY-MM-DD`.
fn today() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    // Howard Hinnant's civil_from_days.
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// A folder-name-like name of the machine: `2-cores-amd-epyc`.
fn machine_name(machine: &Machine) -> String {
    let model = machine.cpu_model.to_lowercase();
    let model = model.split('@').next().unwrap_or_default();
    let model = model
        .replace("(r)", " ")
        .replace("(tm)", " ")
        .replace(" cpu", " ");
    let mut slug = String::new();
    for c in model.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    let slug: String = slug.chars().take(40).collect();
    format!("{}-cores-{}", machine.cores, slug.trim_end_matches('-'))
}

/// One configuration of the suite.
#[derive(Debug, Clone, Serialize)]
struct Config {
    name: String,
    records: u64,
    event_time: EventTimeOptions,
}

/// Every configuration of the event-time suite, batch first (the reference of the result
/// difference).
fn configs(args: &EventTimeArgs) -> Vec<Config> {
    let p = args.job.parallelism;
    let streaming = |watermarks, delay_s: u64, aggregation| EventTimeOptions {
        watermarks,
        out_of_orderness: Duration::from_secs(delay_s),
        aggregation,
        ..EventTimeOptions::default()
    };
    let parallel = GlobalAggregation::Parallel { parallelism: p };
    let window_records = args
        .window_records
        .unwrap_or(args.records.saturating_mul(4));
    let mut configs = vec![
        Config {
            name: BATCH.into(),
            records: args.records,
            event_time: EventTimeOptions {
                batch: true,
                ..streaming(Watermarks::Punctuated, DEFAULT_DELAY_S, parallel)
            },
        },
        Config {
            name: PERIODIC.into(),
            records: args.records,
            event_time: streaming(
                Watermarks::Periodic(PERIODIC_INTERVAL),
                DEFAULT_DELAY_S,
                parallel,
            ),
        },
    ];
    for delay in SWEEP_DELAYS_S {
        configs.push(Config {
            name: punctuated(delay),
            records: args.records,
            event_time: streaming(Watermarks::Punctuated, delay, parallel),
        });
    }
    for (name, aggregation) in [
        (WINDOW_ALL, GlobalAggregation::WindowAll),
        (PARALLEL, parallel),
    ] {
        configs.push(Config {
            name: name.into(),
            records: window_records,
            event_time: streaming(Watermarks::Punctuated, DEFAULT_DELAY_S, aggregation),
        });
    }
    configs
}

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
struct RunMetrics {
    config: String,
    round: usize,
    records_in: u64,
    records_counted: u64,
    records_late_dropped: u64,
    records_late_dropped_origin_5m: u64,
    records_rejected: u64,
    records_quarantined: u64,
    wall_ms: f64,
    throughput_records_per_s: f64,
    /// Sum over the source subtasks of `watermarksPerSecond`.
    watermarks_per_s: f64,
    /// `records_late_dropped / records_in`.
    late_share: f64,
    result_latency: Option<Latency>,
    /// Mean over the tagging subtasks (upstream of the window) of
    /// `backPressuredTimeMsPerSecond`.
    tag_backpressured_ms_per_s: f64,
    /// Mean over the tagging subtasks of `busyTimeMsPerSecond`.
    tag_busy_ms_per_s: f64,
    /// The busiest subtask of the flow window (window-all: the one subtask, chained with its
    /// sink; parallel: the merge subtasks, the local pre-aggregation being chained into the
    /// tagging task).
    window_busy_ms_per_s: f64,
    /// Records missing from the flow windows compared with the batch run over the same input
    /// (`None` for another input).
    missing_vs_batch: Option<i64>,
    /// Share of the batch run's flow windows whose final count differs here.
    flow_windows_differing_share: Option<f64>,
    tasks: Vec<TaskReport>,
}

impl Run for RunMetrics {
    fn config(&self) -> &str {
        &self.config
    }
}

/// The metrics the suite takes medians of.
const METRICS: &[Metric<RunMetrics>] = &[
    ("throughput_records_per_s", |r| {
        Some(r.throughput_records_per_s)
    }),
    ("wall_ms", |r| Some(r.wall_ms)),
    ("watermarks_per_s", |r| Some(r.watermarks_per_s)),
    ("result_latency_p50_ms", |r| {
        r.result_latency.map(|l| l.p50_ms)
    }),
    ("result_latency_p99_ms", |r| {
        r.result_latency.map(|l| l.p99_ms)
    }),
    ("records_late_dropped", |r| {
        Some(r.records_late_dropped as f64)
    }),
    ("late_share", |r| Some(r.late_share)),
    ("tag_backpressured_ms_per_s", |r| {
        Some(r.tag_backpressured_ms_per_s)
    }),
    ("tag_busy_ms_per_s", |r| Some(r.tag_busy_ms_per_s)),
    ("window_busy_ms_per_s", |r| Some(r.window_busy_ms_per_s)),
    ("missing_vs_batch", |r| r.missing_vs_batch.map(|m| m as f64)),
    ("flow_windows_differing_share", |r| {
        r.flow_windows_differing_share
    }),
];

/// A target and whether it was met.
#[derive(Debug, Clone, Serialize)]
struct Target {
    what: &'static str,
    target: f64,
    measured: f64,
    met: bool,
    /// The lowest of the per-round ratios.
    lowest_ratio: f64,
    /// The highest of the per-round ratios.
    highest_ratio: f64,
}

/// One point of the watermark-delay sweep (medians).
#[derive(Debug, Clone, Serialize)]
struct SweepPoint {
    delay_s: u64,
    late_share: f64,
    result_latency_p50_ms: Option<f64>,
    result_latency_p99_ms: Option<f64>,
    throughput_records_per_s: f64,
    flow_windows_differing_share: Option<f64>,
    /// What a live deployment waits after a window's end for its result: the delay itself
    /// (event time advances with wall time there) plus the measured p50 result latency.
    live_result_delay_p50_s: Option<f64>,
}

/// Throughput ratios: medians of the per-round ratios; the others, ratios of medians.
#[derive(Debug, Clone, Serialize)]
struct Ratios {
    punctuated_over_periodic_throughput: f64,
    punctuated_over_periodic_watermarks_per_s: f64,
    punctuated_over_periodic_result_latency_p50: Option<f64>,
    punctuated_over_periodic_result_latency_p99: Option<f64>,
    parallel_over_window_all_throughput: f64,
    delay_180s_over_120s_throughput: f64,
    delay_180s_minus_120s_late_share: f64,
    streaming_punctuated_over_batch_throughput: f64,
    streaming_periodic_over_batch_throughput: f64,
}

/// What `report.json` holds.
#[derive(Debug, Serialize)]
struct SuiteReport {
    suite: &'static str,
    machine: Machine,
    parallelism: usize,
    partitions: usize,
    seed: u64,
    repeat: usize,
    runtime: RuntimeConfig,
    configs: Vec<Config>,
    /// Every run, in the order they ran.
    runs: Vec<RunMetrics>,
    /// Per configuration, per metric.
    medians: Medians,
    ratios: Ratios,
    sweep: Vec<SweepPoint>,
    targets: Vec<Target>,
}

/// The suite's files besides report.json.
const REPORT_MD: &str = "report.md";
const PLOT_FILE: &str = "late-latency-vs-delay.svg";

/// Runs the event-time suite and writes its report into `output`, report.json last.
fn run_event_time(args: &EventTimeArgs, output: &Path) -> Result<SuiteReport, String> {
    let runtime = args.runtime.config(args.job.parallelism)?;
    let home: Home = "浙A".parse().map_err(|e| format!("{e}"))?;
    let out = OutputDir::open(output, &[REPORT_MD, PLOT_FILE])?;
    let runs_dir = output.join("runs");
    let machine = Machine::detect();
    let configs = configs(args);
    let result = run_rounds(args, &configs, &runtime, home, &runs_dir);
    // The job outputs are scratch: the report keeps what was measured.
    let _ = std::fs::remove_dir_all(&runs_dir);
    let written = result.and_then(|runs| {
        let medians = medians::medians(configs.iter().map(|c| c.name.as_str()), &runs, METRICS);
        let report = summarize(args, machine, runtime, configs, runs, medians)?;
        write(&output.join(REPORT_MD), report::markdown(args, &report))?;
        plot::plot(&output.join(PLOT_FILE), &report.sweep)?;
        Ok(report)
    });
    let report = match written {
        Ok(report) => report,
        Err(e) => return Err(out.fail(e)),
    };
    out.finish(Status::Completed, None, &report)?;
    report::print_summary(&report);
    Ok(report)
}

fn write(path: &Path, text: String) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// Every configuration once per round, round robin.
fn run_rounds(
    args: &EventTimeArgs,
    configs: &[Config],
    runtime: &RuntimeConfig,
    home: Home,
    runs_dir: &Path,
) -> Result<Vec<RunMetrics>, String> {
    let total = configs.len() * args.repeat;
    let mut done = 0;
    // The batch answer over the main input: the reference of the result difference.
    let mut reference: Option<BTreeMap<i64, u64>> = None;
    round_robin(configs, args.repeat, |config, round| {
        let dir = runs_dir.join(format!("{}-{}", config.name, round + 1));
        let job = TrafficJob {
            input: TrafficInput::Generate(GeneratorConfig {
                records: config.records,
                partitions: args.job.partitions,
                seed: args.job.seed,
                ..GeneratorConfig::default()
            }),
            home,
            parallelism: args.job.parallelism,
            runtime: runtime.clone(),
            output: dir.clone(),
            fail_after: None,
            rate: None,
            slow_tag: None,
            event_time: config.event_time.clone(),
        };
        let outcome = run_job(&job, &config.name, round)?;
        let mut run = measure(config, round, &outcome);
        let flow = &outcome.windows.flow;
        if config.event_time.batch && config.records == args.records {
            match &reference {
                None => reference = Some(flow.clone()),
                Some(first) if first != flow => {
                    return Err(format!(
                        "batch round {} gave other flow windows than round 1",
                        round + 1
                    ));
                }
                Some(_) => {}
            }
        }
        if config.records == args.records
            && let Some(reference) = &reference
        {
            let batch_counted: u64 = reference.values().sum();
            let missing = batch_counted as i64 - run.records_counted as i64;
            run.missing_vs_batch = Some(missing);
            run.flow_windows_differing_share = Some(differing_share(reference, flow));
            if missing != run.records_late_dropped as i64 {
                return Err(format!(
                    "{} round {}: {missing} records missing against batch but {} dropped as late",
                    config.name,
                    round + 1,
                    run.records_late_dropped
                ));
            }
        }
        println!(
            "[{:>3}/{total}] round {} {:<18} {:>6.2} M records/s, {:>9.0} watermarks/s, late {:.3}%, result latency p50 {}",
            done + 1,
            round + 1,
            config.name,
            run.throughput_records_per_s / 1e6,
            run.watermarks_per_s,
            run.late_share * 100.0,
            run.result_latency
                .map_or_else(|| "-".to_owned(), |l| format!("{:.2} ms", l.p50_ms)),
        );
        done += 1;
        Ok(run)
    })
}

/// Share of `reference`'s windows (and of windows only `other` has) whose count differs.
fn differing_share(reference: &BTreeMap<i64, u64>, other: &BTreeMap<i64, u64>) -> f64 {
    let mut windows = 0u64;
    let mut differing = 0u64;
    for (start, count) in reference {
        windows += 1;
        differing += u64::from(other.get(start) != Some(count));
    }
    for start in other.keys() {
        if !reference.contains_key(start) {
            windows += 1;
            differing += 1;
        }
    }
    differing as f64 / windows.max(1) as f64
}

/// The metrics of one run; fails when a record went missing.
fn measure(config: &Config, round: usize, run: &job::TrafficRun) -> RunMetrics {
    let counted = run.records_counted();
    let tasks = &run.result.tasks;
    let mean = |values: Vec<f64>| values.iter().sum::<f64>() / values.len().max(1) as f64;
    let tags: Vec<&TaskReport> = tasks.iter().filter(|t| t.task.starts_with("tag")).collect();
    let wall = run.result.wall.as_secs_f64().max(1e-9);
    RunMetrics {
        config: config.name.clone(),
        round: round + 1,
        records_in: run.records_in,
        records_counted: counted,
        records_late_dropped: run.records_late_dropped,
        records_late_dropped_origin_5m: run.records_late_dropped_origin_5m,
        records_rejected: run.records_rejected,
        records_quarantined: run.records_quarantined,
        wall_ms: wall * 1000.0,
        throughput_records_per_s: run.records_in as f64 / wall,
        watermarks_per_s: tasks
            .iter()
            .filter(|t| t.task.starts_with("source"))
            .map(|t| t.watermarksPerSecond)
            .sum(),
        late_share: run.records_late_dropped as f64 / run.records_in.max(1) as f64,
        result_latency: Latency::from_ns(&run.result_latency_ns),
        tag_backpressured_ms_per_s: mean(
            tags.iter()
                .map(|t| t.backPressuredTimeMsPerSecond)
                .collect(),
        ),
        tag_busy_ms_per_s: mean(tags.iter().map(|t| t.busyTimeMsPerSecond).collect()),
        window_busy_ms_per_s: tasks
            .iter()
            .filter(|t| t.task.starts_with("flow_1m") && !t.task.starts_with("flow_1m sink"))
            .map(|t| t.busyTimeMsPerSecond)
            .fold(0.0, f64::max),
        missing_vs_batch: None,
        flow_windows_differing_share: None,
        tasks: tasks.clone(),
    }
}

/// `num`'s throughput over `den`'s in each round in which both ran: paired, so that the
/// machine's drift between rounds (runs a minute apart swing 2x on a shared 2-core VM) cancels,
/// which a ratio of the two medians does not do. O(runs²), a few hundred runs.
fn paired_throughput_ratios(runs: &[RunMetrics], num: &str, den: &str) -> Vec<f64> {
    runs.iter()
        .filter(|a| a.config == num)
        .filter_map(|a| {
            let b = runs
                .iter()
                .find(|b| b.config == den && b.round == a.round)?;
            (b.throughput_records_per_s > 0.0 && a.throughput_records_per_s.is_finite())
                .then(|| a.throughput_records_per_s / b.throughput_records_per_s)
        })
        .collect()
}

fn summarize(
    args: &EventTimeArgs,
    machine: Machine,
    runtime: RuntimeConfig,
    configs: Vec<Config>,
    runs: Vec<RunMetrics>,
    medians: Medians,
) -> Result<SuiteReport, String> {
    let m = |config: &str, metric: &str| {
        get(&medians, config, metric).ok_or_else(|| format!("no {metric} for {config}"))
    };
    let opt = |config: &str, metric: &str| get(&medians, config, metric);
    let ratio = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a / b.max(1e-12));
    let thr = "throughput_records_per_s";
    // The median of the per-round ratios; no round with both is an error, never a NaN or an
    // infinity printed.
    let over = |num: &str, den: &str| {
        median(&paired_throughput_ratios(&runs, num, den)).ok_or_else(|| {
            format!(
                "no {num} / {den} throughput ratio: no round has a run of both with a throughput"
            )
        })
    };
    let punct = punctuated(DEFAULT_DELAY_S);
    let ratios = Ratios {
        punctuated_over_periodic_throughput: over(&punct, PERIODIC)?,
        punctuated_over_periodic_watermarks_per_s: m(&punct, "watermarks_per_s")?
            / m(PERIODIC, "watermarks_per_s")?.max(1e-12),
        punctuated_over_periodic_result_latency_p50: ratio(
            opt(&punct, "result_latency_p50_ms"),
            opt(PERIODIC, "result_latency_p50_ms"),
        ),
        punctuated_over_periodic_result_latency_p99: ratio(
            opt(&punct, "result_latency_p99_ms"),
            opt(PERIODIC, "result_latency_p99_ms"),
        ),
        parallel_over_window_all_throughput: over(PARALLEL, WINDOW_ALL)?,
        delay_180s_over_120s_throughput: over(&punctuated(180), &punctuated(120))?,
        delay_180s_minus_120s_late_share: m(&punctuated(180), "late_share")?
            - m(&punctuated(120), "late_share")?,
        streaming_punctuated_over_batch_throughput: over(&punct, BATCH)?,
        streaming_periodic_over_batch_throughput: over(PERIODIC, BATCH)?,
    };
    let mut sweep = Vec::new();
    for delay in SWEEP_DELAYS_S {
        let name = punctuated(delay);
        let p50 = opt(&name, "result_latency_p50_ms");
        sweep.push(SweepPoint {
            delay_s: delay,
            late_share: m(&name, "late_share")?,
            result_latency_p50_ms: p50,
            result_latency_p99_ms: opt(&name, "result_latency_p99_ms"),
            throughput_records_per_s: m(&name, thr)?,
            flow_windows_differing_share: opt(&name, "flow_windows_differing_share"),
            live_result_delay_p50_s: p50.map(|p| delay as f64 + p / 1000.0),
        });
    }
    let target = |what, target: f64, num: &str, den: &str, measured: f64| {
        let ratios = paired_throughput_ratios(&runs, num, den);
        Target {
            what,
            target,
            measured,
            met: measured >= target,
            lowest_ratio: ratios.iter().copied().fold(f64::INFINITY, f64::min),
            highest_ratio: ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    };
    let targets = vec![
        target(
            "punctuated / periodic throughput",
            TARGET_PUNCTUATED_OVER_PERIODIC,
            &punct,
            PERIODIC,
            ratios.punctuated_over_periodic_throughput,
        ),
        target(
            "parallel / window-all throughput",
            TARGET_PARALLEL_OVER_WINDOW_ALL,
            PARALLEL,
            WINDOW_ALL,
            ratios.parallel_over_window_all_throughput,
        ),
    ];
    Ok(SuiteReport {
        suite: "event-time",
        machine,
        parallelism: args.job.parallelism,
        partitions: args.job.partitions,
        seed: args.job.seed,
        repeat: args.repeat,
        runtime,
        configs,
        runs,
        medians,
        ratios,
        sweep,
        targets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: EventTimeArgs,
    }

    #[test]
    fn machine_names_are_folder_names() {
        let machine = Machine {
            cores: 2,
            cpu_model: "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz".into(),
        };
        assert_eq!(machine_name(&machine), "2-cores-intel-xeon-platinum-8375c");
        assert_eq!(today().len(), 10);
    }

    #[test]
    fn differing_share_counts_windows_on_either_side() {
        let a = BTreeMap::from([(0, 1), (60, 2)]);
        let b = BTreeMap::from([(0, 1), (60, 1), (120, 1)]);
        assert!((differing_share(&a, &b) - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(differing_share(&a, &a), 0.0);
    }

    /// A run of `config` in `round` at `throughput` (every other metric empty).
    fn run(config: &str, round: usize, throughput: f64) -> RunMetrics {
        RunMetrics {
            config: config.to_owned(),
            round,
            records_in: 0,
            records_counted: 0,
            records_late_dropped: 0,
            records_late_dropped_origin_5m: 0,
            records_rejected: 0,
            records_quarantined: 0,
            wall_ms: 1.0,
            throughput_records_per_s: throughput,
            watermarks_per_s: 0.0,
            late_share: 0.0,
            result_latency: None,
            tag_backpressured_ms_per_s: 0.0,
            tag_busy_ms_per_s: 0.0,
            window_busy_ms_per_s: 0.0,
            missing_vs_batch: None,
            flow_windows_differing_share: None,
            tasks: Vec::new(),
        }
    }

    /// The machine slows 3x in round 2; within each round `a` runs at 0.9 of `b`, and each
    /// round's ratio says so. A round missing either configuration has no ratio.
    #[test]
    fn a_throughput_ratio_pairs_the_runs_of_each_round() {
        let runs = vec![
            run("a", 1, 90.0),
            run("b", 1, 100.0),
            run("a", 2, 30.0),
            run("b", 2, 33.3),
            run("a", 3, 90.0),
            run("b", 3, 100.0),
            run("b", 4, 100.0),
        ];
        let ratios = paired_throughput_ratios(&runs, "a", "b");
        assert_eq!(ratios.len(), 3, "round 4 has no run of a");
        assert!(ratios.iter().all(|r| (r - 0.9).abs() < 0.01), "{ratios:?}");
    }

    #[test]
    fn a_zero_median_is_an_error_never_a_nan_ratio() {
        let wrapper = Wrapper::try_parse_from(["suite", "--repeat", "1"]).unwrap();
        let configs = configs(&wrapper.args);
        let runs: Vec<RunMetrics> = configs.iter().map(|c| run(&c.name, 1, 0.0)).collect();
        let medians = medians::medians(configs.iter().map(|c| c.name.as_str()), &runs, METRICS);
        let runtime = RuntimeConfig::default();
        let err = summarize(
            &wrapper.args,
            Machine::detect(),
            runtime,
            configs,
            runs,
            medians,
        )
        .map(|r| format!("{:?}", r.ratios))
        .unwrap_err();
        assert!(err.contains("throughput ratio"), "{err}");
    }

    #[test]
    fn the_suite_runs_end_to_end_on_a_tiny_input() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("event-time");
        let wrapper = Wrapper::try_parse_from([
            "suite",
            "--records",
            "20000",
            "--window-records",
            "20000",
            "--repeat",
            "1",
            "--pin",
            "off",
        ])
        .unwrap();
        let report = run_event_time(&wrapper.args, &out).unwrap();
        assert_eq!(report.runs.len(), configs(&wrapper.args).len());
        assert!(report.runs.iter().all(|r| r.records_in == 20_000));
        for file in ["report.json", "report.md", "late-latency-vs-delay.svg"] {
            let text = std::fs::read_to_string(out.join(file)).unwrap();
            assert!(!text.is_empty(), "{file} is empty");
        }
        assert!(!out.join("runs").exists(), "scratch outputs are removed");
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap())
                .unwrap();
        assert!(json["ratios"]["punctuated_over_periodic_throughput"].is_number());
        assert_eq!(
            json["sweep"].as_array().unwrap().len(),
            SWEEP_DELAYS_S.len()
        );
        // Batch drops nothing; the streaming runs miss exactly what they dropped as late.
        let batch = report.runs.iter().find(|r| r.config == BATCH).unwrap();
        assert_eq!(batch.records_late_dropped, 0);
        assert_eq!(batch.missing_vs_batch, Some(0));
    }
}
