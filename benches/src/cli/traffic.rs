//! `weir run traffic`: the traffic job on weir and/or timely dataflow, once or interleaved
//! repetitions, with reports.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Serialize;
use weir_core::RuntimeConfig;
use weir_core::checkpoint::{BarrierMode, CheckpointStats};
use weir_core::metrics::TaskReport;
use weir_core::sink::JsonLinesFile;

use super::checkpointing::CheckpointArgs;
use super::duration::{
    OptionalDuration, parse_duration, parse_optional_duration, parse_positive_duration,
};
use super::progress::Progress;
use super::{
    Engine, MAX_PARALLELISM, MAX_PARTITIONS, MAX_REPEAT, RuntimeArgs, count, current_job,
    engine_dir, records,
};
use crate::output_dir::{self, OutputDir, REPORT_FILE, Status};
use crate::peer::timely_traffic::Dropped;
use crate::peer::{plain_timely, timely_traffic};
use crate::report::{Latency, Machine, median, task_table};
use crate::traffic::generator::GeneratorConfig;
use crate::traffic::input::TrafficInput;
use crate::traffic::job::PartitionRejects;
use crate::traffic::job::{
    self, EventTimeOptions, LATE_FILE, ORIGINS_FILE, OUTPUT_FILES, REJECTED_FILE, TrafficJob,
    Watermarks,
};
use crate::traffic::record::Home;
use crate::traffic::tag::OriginCounts;
use crate::traffic::windows::WindowTotals;
use weir_core::time::{DEFAULT_WATERMARK_INTERVAL, GuardConfig};
use weir_core::window::GlobalAggregation;

/// Options of `weir run traffic`.
#[derive(Debug, Clone, Args)]
pub struct TrafficArgs {
    /// A CSV file, or a folder whose *.csv entries (links to files followed; a folder or
    /// dangling link is an error) are read sorted by name, one file = one partition. Columns
    /// ts_ms (i64 epoch ms), plate, checkpoint_id (u32); the header is optional and names them
    /// in any order; RFC 4180 quoting; a UTF-8 BOM is skipped. A plate is a province
    /// abbreviation (浙, 京, 沪, ...), a city letter A-Z, then 5 letters A-Z or digits (6 for
    /// new-energy plates). Lines that are not records go to rejected.jsonl. Without
    /// --input, the built-in generator runs.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Records the built-in generator produces (when there is no --input), at least 1.
    #[arg(long, value_parser = records(), default_value_t = 1_000_000, conflicts_with = "input")]
    generate: u64,
    /// Partitions of the generated input, 1 to 4096; each plate always lands on the same
    /// partition, like a Kafka topic keyed by plate.
    #[arg(long, value_parser = count(1, MAX_PARTITIONS), default_value_t = 4, conflicts_with = "input")]
    partitions: usize,
    /// Seed of the generator: the same seed gives the same records.
    #[arg(long, default_value_t = 42, conflicts_with = "input")]
    seed: u64,
    /// Home province character and city letter: plates from there are `local`, other cities
    /// of the province `province`, other provinces `other`.
    #[arg(long, default_value = "浙A")]
    home: Home,
    /// Subtasks of the source and the tagging step (timely: workers), 1 to 1024 and at most
    /// --max-parallelism.
    #[arg(long, short, value_parser = count(1, MAX_PARALLELISM), default_value_t = 2)]
    parallelism: usize,
    /// Folder of the outputs: origins.jsonl, flow_1m.jsonl, origin_5m.jsonl, late.jsonl,
    /// rejected.jsonl and report.json (in a subfolder per engine when several run), and
    /// compare.json with several engines or --repeat. A run first replaces report.json with
    /// one saying "status": "incomplete" and removes these files of an earlier run, and writes
    /// report.json last with "status": "completed", "stopped_early" or "failed"; a report
    /// still "incomplete" is a killed run's. Files of other names are left alone.
    #[arg(long, default_value = "out")]
    output: PathBuf,
    /// Engines to run, comma separated: `weir`, `timely` (the project's tuned timely dataflow
    /// peer), `timely-plain` (issue 9's untuned reference program: CSV --input only, guard
    /// off), or several, such as `weir,timely,timely-plain`.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "weir")]
    engine: Vec<Engine>,
    /// Runs of each engine, interleaved, 1 to 10000; with several, the medians and the ratio
    /// are printed and written to compare.json.
    #[arg(long, value_parser = count(1, MAX_REPEAT), default_value_t = 1)]
    repeat: usize,
    /// Watermark generator: `periodic` (every 10 ms of processing time; Flink's default is
    /// `periodic:200ms`, which fires windows in larger bursts and later), `periodic:INTERVAL`
    /// (for example `periodic:50ms`) or `punctuated` (after every record).
    #[arg(long, value_parser = parse_watermarks, default_value = "periodic:10ms")]
    pub(super) watermark: Watermarks,
    /// Bounded out-of-orderness: watermark = highest timestamp seen − this − 1 ms.
    #[arg(long, value_parser = parse_duration, default_value = "5s", allow_hyphen_values = true)]
    out_of_orderness: Duration,
    /// Allowed lateness of the windows: a late record within it updates its window, which
    /// fires again (a new line); past it, the record goes to late.jsonl.
    #[arg(long, value_parser = parse_duration, default_value = "0s", allow_hyphen_values = true)]
    allowed_lateness: Duration,
    /// Mark a source partition idle after this long without records, or `off`: an idle
    /// partition (and a source subtask without partitions) no longer holds the watermark back.
    #[arg(long, value_parser = parse_optional_duration, default_value = "off", allow_hyphen_values = true)]
    idle_timeout: OptionalDuration,
    /// Quarantine records more than this ahead of the partition's reference timestamp (the
    /// median of its first 16 records, then the highest accepted), or `off`.
    #[arg(long, value_parser = parse_optional_duration, default_value = "1h", allow_hyphen_values = true)]
    max_future_skew: OptionalDuration,
    /// Quarantine records more than this behind the partition's reference timestamp, or
    /// `off`. Records hours late are late data, not bogus: keep this above them.
    #[arg(long, value_parser = parse_optional_duration, default_value = "12h", allow_hyphen_values = true)]
    max_past_skew: OptionalDuration,
    /// Aggregation of the global per-minute flow: `window-all` (one subtask sees every record,
    /// Flink's windowAll) or `parallel` (pre-aggregate per subtask, merge per window).
    #[arg(long, value_enum, default_value = "parallel")]
    aggregation: Aggregation,
    /// `streaming` (watermarks while reading, late data dropped) or `batch` (one final
    /// watermark at end of input: complete results, nothing late).
    #[arg(long, value_enum, default_value = "streaming")]
    mode: Mode,
    /// Failure injection: the first weir tagging subtask to reach its record N + 1 panics,
    /// once per job. Without checkpoints that fails the job with the operator's name and a
    /// non-zero exit; with them the job restarts by its restart strategy.
    #[arg(long)]
    fail_after: Option<u64>,
    /// Read at most this many records per second, over all partitions (for crash tests and
    /// latency at a given load; measure latency at half the rate the job reaches without it).
    /// Each partition releases the records of 40 µs at a time, as a polled source hands over
    /// what arrived, and the source sleeps until the next are due [default: as fast as
    /// possible].
    #[arg(long, value_parser = records())]
    rate: Option<u64>,
    /// Make the tagging step spend this long per record (ms, s; for example 1ms), as
    /// flink-benchmarks' slow sink does: the sources are backpressured and the network
    /// buffers fill (for checkpoint experiments under backpressure) [default: no delay].
    #[arg(long, value_parser = parse_positive_duration)]
    slow_tag: Option<Duration>,
    #[command(flatten)]
    runtime: RuntimeArgs,
    #[command(flatten)]
    checkpointing: CheckpointArgs,
}

/// How the global window is aggregated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Aggregation {
    /// Parallelism 1, as Flink's windowAll.
    WindowAll,
    /// Pre-aggregate per subtask, merge per window.
    Parallel,
}

/// Execution mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Mode {
    /// Watermarks while reading.
    Streaming,
    /// One final watermark.
    Batch,
}

fn parse_watermarks(text: &str) -> Result<Watermarks, String> {
    match text.trim() {
        "punctuated" => Ok(Watermarks::Punctuated),
        "periodic" => Ok(Watermarks::Periodic(DEFAULT_WATERMARK_INTERVAL)),
        other => match other.strip_prefix("periodic:") {
            Some(interval) => parse_positive_duration(interval).map(Watermarks::Periodic),
            None => Err(format!(
                "'{other}' is not a watermark generator: use periodic, periodic:INTERVAL or punctuated"
            )),
        },
    }
}

impl TrafficArgs {
    fn event_time(&self) -> EventTimeOptions {
        EventTimeOptions {
            watermarks: self.watermark,
            out_of_orderness: self.out_of_orderness,
            allowed_lateness: self.allowed_lateness,
            idle_timeout: self.idle_timeout.0,
            guard: self.guard(),
            aggregation: match self.aggregation {
                Aggregation::WindowAll => GlobalAggregation::WindowAll,
                Aggregation::Parallel => GlobalAggregation::Parallel {
                    parallelism: self.parallelism,
                },
            },
            batch: self.mode == Mode::Batch,
        }
    }

    fn guard(&self) -> GuardConfig {
        let ms = |d: OptionalDuration| d.0.map(|d| d.as_millis() as i64);
        GuardConfig {
            max_future_skew_ms: ms(self.max_future_skew),
            max_past_skew_ms: ms(self.max_past_skew),
        }
    }
}

/// What `report.json` holds.
#[derive(Debug, Serialize)]
struct Report<'a> {
    job: &'static str,
    engine: &'static str,
    config: ConfigReport<'a>,
    machine: &'a Machine,
    records_in: u64,
    records_rejected: u64,
    records_quarantined: u64,
    records_tagged: u64,
    records_counted: u64,
    records_late_dropped: u64,
    records_late_dropped_origin_5m: u64,
    /// At least once: what the outputs count beyond the input (records counted twice after a
    /// restore); absent for exactly-once runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    records_duplicated: Option<u64>,
    /// Partitions that rejected more than a tenth of their lines (also warned about on stderr).
    partitions_mostly_rejected: &'a [PartitionRejects],
    throughput_records_per_s: f64,
    wall_ms: f64,
    latency: Option<Latency>,
    result_latency: Option<Latency>,
    watermarks_per_second: f64,
    network: Option<Network>,
    stopped_early: bool,
    /// Checkpoints, restarts and restores with Flink's metric names (when checkpointing).
    checkpoints: Option<serde_json::Value>,
    /// The failures injected on purpose (`--inject-failures`, `--fail-after`).
    injected_failures: &'a [String],
    tasks: &'a [TaskReport],
}

#[derive(Debug, Serialize)]
struct ConfigReport<'a> {
    input: String,
    generator: Option<&'a GeneratorConfig>,
    home: String,
    parallelism: usize,
    event_time: EventTimeOptions,
    runtime: &'a RuntimeConfig,
}

#[derive(Debug, Clone, Copy, Serialize)]
struct Network {
    segments: usize,
    segment_bytes: usize,
}

/// One engine's run.
#[derive(Debug)]
struct EngineRun {
    engine: Engine,
    records_in: u64,
    records_rejected: u64,
    records_quarantined: u64,
    records_late_dropped: u64,
    records_late_dropped_origin_5m: u64,
    partitions_mostly_rejected: Vec<PartitionRejects>,
    counts: OriginCounts,
    windows: WindowTotals,
    wall: Duration,
    latency: Option<Latency>,
    result_latency: Option<Latency>,
    network: Option<Network>,
    stopped_early: bool,
    checkpoints: Option<CheckpointStats>,
    injected_failures: Vec<String>,
    /// At-least-once checkpoints: a restore may have counted records twice.
    at_least_once: bool,
    /// Failures `--inject-failures` asked for.
    planned_failures: usize,
    tasks: Vec<TaskReport>,
}

impl EngineRun {
    /// A run of a timely program, whose results are complete (nothing late, no network of
    /// weir's, no checkpoints), before its counts are filled in.
    fn complete(engine: Engine) -> Self {
        Self {
            engine,
            records_in: 0,
            records_rejected: 0,
            records_quarantined: 0,
            records_late_dropped: 0,
            records_late_dropped_origin_5m: 0,
            partitions_mostly_rejected: Vec::new(),
            counts: OriginCounts::default(),
            windows: WindowTotals::default(),
            wall: Duration::ZERO,
            latency: None,
            result_latency: None,
            network: None,
            stopped_early: false,
            checkpoints: None,
            injected_failures: Vec::new(),
            at_least_once: false,
            planned_failures: 0,
            tasks: Vec::new(),
        }
    }

    fn throughput(&self) -> f64 {
        self.records_in as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

#[derive(Debug, Serialize)]
struct Comparison {
    machine: Machine,
    parallelism: usize,
    repeat: usize,
    runs: Vec<ComparisonRun>,
    median_throughput_records_per_s: Vec<(String, f64)>,
    ratio_weir_over_timely: Option<f64>,
    /// weir's median throughput over issue 9's plain timely program's.
    ratio_weir_over_timely_plain: Option<f64>,
}

#[derive(Debug, Serialize)]
struct ComparisonRun {
    engine: &'static str,
    repetition: usize,
    throughput_records_per_s: f64,
    wall_ms: f64,
}

fn input_of(args: &TrafficArgs) -> Result<TrafficInput, String> {
    match &args.input {
        Some(path) => TrafficInput::from_path(path).map_err(|e| e.to_string()),
        None => Ok(TrafficInput::Generate(GeneratorConfig {
            records: args.generate,
            partitions: args.partitions,
            seed: args.seed,
            ..GeneratorConfig::default()
        })),
    }
}

/// The comparison of the runs, with several engines or `--repeat`.
const COMPARE_FILE: &str = "compare.json";

/// The files of a run's folder besides report.json: the job's outputs and compare.json (a
/// stale one of an earlier invocation must not stand beside this one's runs).
fn run_files() -> Vec<&'static str> {
    [&OUTPUT_FILES[..], &[COMPARE_FILE]].concat()
}

/// Runs `weir run traffic`.
pub(super) fn run(args: &TrafficArgs) -> Result<(), String> {
    let input = input_of(args)?;
    let mut engines: Vec<Engine> = Vec::new();
    for &engine in &args.engine {
        if !engines.contains(&engine) {
            engines.push(engine);
        }
    }
    let machine = Machine::detect();
    let mut runtime = args.runtime.config(args.parallelism)?;
    let checkpointing = args.checkpointing.resolve(&args.output)?;
    if checkpointing.restore.is_some() && (engines != [Engine::Weir] || args.repeat > 1) {
        return Err(
            "--restore continues one weir run: it cannot be combined with another engine or --repeat"
                .into(),
        );
    }
    if engines.contains(&Engine::TimelyPlain) {
        check_plain(args, &input)?;
    }
    checkpointing.apply(&mut runtime);
    // A restored run continues the outputs of the run it restores: they stay.
    let restoring = runtime.restore.is_some();
    if engines.len() > 1 {
        // The engines write subfolders: nothing of a single-engine run stays above them.
        output_dir::create(&args.output)?;
        output_dir::remove(&args.output, &[run_files(), vec![REPORT_FILE]].concat())?;
    }
    let mut runs = Vec::new();
    for repetition in 0..args.repeat {
        for &engine in &engines {
            let stale = if restoring { Vec::new() } else { run_files() };
            let out = OutputDir::open(engine_dir(&args.output, engine, engines.len()), &stale)?;
            let result = match engine {
                Engine::Weir => run_weir(args, &input, &runtime, out.path()),
                Engine::Timely => run_timely(args, &input, out.path()),
                Engine::TimelyPlain => run_timely_plain(args, &input, out.path()),
            };
            let run = match result {
                Ok(run) => run,
                Err(e) => return Err(out.fail(e)),
            };
            let accounting = check_accounting(&run);
            let status = match (&accounting, run.stopped_early) {
                (Err(_), _) => Status::Failed,
                (Ok(()), true) => Status::StoppedEarly,
                (Ok(()), false) => Status::Completed,
            };
            let dir = out.path().to_path_buf();
            let report = report(args, &input, &runtime, &machine, &run);
            out.finish(
                status,
                accounting.as_ref().err().map(String::as_str),
                &report,
            )?;
            print_run(&run, repetition, args.repeat, &dir);
            accounting?;
            let stopped = run.stopped_early;
            runs.push((repetition, run));
            if stopped {
                return Ok(());
            }
        }
    }
    if engines.len() > 1 || args.repeat > 1 {
        compare(args, machine, &engines, &runs)?;
    }
    Ok(())
}

fn run_weir(
    args: &TrafficArgs,
    input: &TrafficInput,
    runtime: &RuntimeConfig,
    dir: &Path,
) -> Result<EngineRun, String> {
    let job = TrafficJob {
        input: input.clone(),
        home: args.home,
        parallelism: args.parallelism,
        runtime: runtime.clone(),
        output: dir.to_path_buf(),
        fail_after: args.fail_after,
        rate: args.rate,
        slow_tag: args.slow_tag,
        event_time: args.event_time(),
    };
    let total = match input {
        TrafficInput::Generate(g) => Some(g.records),
        TrafficInput::Files(_) => None,
    };
    let mut progress = None;
    let outcome = job::run(&job, |control, tally| {
        *current_job().lock().unwrap_or_else(|p| p.into_inner()) = Some(control);
        progress = Some(Progress::start(total, move || tally.lines()));
    });
    drop(progress);
    *current_job().lock().unwrap_or_else(|p| p.into_inner()) = None;
    let outcome = outcome?;
    Ok(EngineRun {
        engine: Engine::Weir,
        records_in: outcome.records_in,
        records_rejected: outcome.records_rejected,
        records_quarantined: outcome.records_quarantined,
        records_late_dropped: outcome.records_late_dropped,
        records_late_dropped_origin_5m: outcome.records_late_dropped_origin_5m,
        partitions_mostly_rejected: outcome
            .rejects_by_partition
            .iter()
            .copied()
            .filter(PartitionRejects::too_many)
            .collect(),
        counts: outcome.counts,
        windows: outcome.windows,
        wall: outcome.result.wall,
        latency: Latency::from_ns(&outcome.result.latency_ns),
        result_latency: Latency::from_ns(&outcome.result_latency_ns),
        network: Some(Network {
            segments: outcome.result.pool_segments,
            segment_bytes: outcome.result.segment_bytes,
        }),
        stopped_early: outcome.result.stopped_early,
        checkpoints: outcome.result.checkpoints,
        injected_failures: outcome.result.injected_failures,
        at_least_once: runtime
            .checkpoint
            .as_ref()
            .is_some_and(|c| c.mode == BarrierMode::AtLeastOnce),
        planned_failures: runtime.inject_failures.map_or(0, |(k, _)| k as usize),
        tasks: outcome.result.tasks,
    })
}

fn run_timely(args: &TrafficArgs, input: &TrafficInput, dir: &Path) -> Result<EngineRun, String> {
    let rejected_file =
        JsonLinesFile::create(dir.join(REJECTED_FILE)).map_err(|e| e.to_string())?;
    let mut rejected = rejected_file.writer::<Dropped>();
    let mut write_error = None;
    let outcome = timely_traffic::run(input, args.home, args.parallelism, args.guard(), |line| {
        if let Err(e) = rejected.write_line(line) {
            write_error.get_or_insert(e);
        }
    })?;
    rejected.flush().map_err(|e| e.to_string())?;
    if let Some(e) = write_error {
        return Err(format!("writing {}: {e}", rejected_file.path().display()));
    }
    write_complete_results(dir, &outcome.counts, &outcome.windows)?;
    Ok(EngineRun {
        records_in: outcome.records_in,
        records_rejected: outcome.records_rejected,
        records_quarantined: outcome.records_quarantined,
        counts: outcome.counts,
        windows: outcome.windows,
        wall: outcome.wall,
        ..EngineRun::complete(Engine::Timely)
    })
}

/// Refuses what `--engine timely-plain` cannot do, naming the options: it reads CSV files and
/// has no timestamp guard. What the timely peer ignores (checkpoints, --rate, --slow-tag,
/// --fail-after, event-time options), it ignores too.
fn check_plain(args: &TrafficArgs, input: &TrafficInput) -> Result<(), String> {
    if matches!(input, TrafficInput::Generate(_)) {
        return Err(
            "--engine timely-plain reads CSV files: give --input (it has no generator)".into(),
        );
    }
    if args.guard().is_on() {
        return Err(
            "--engine timely-plain has no timestamp guard: add --max-future-skew off --max-past-skew off"
                .into(),
        );
    }
    Ok(())
}

/// Runs issue 9's plain timely program; writes the outputs the timely peer writes except
/// rejected.jsonl (the plain program counts rejected lines, it does not keep them).
fn run_timely_plain(
    args: &TrafficArgs,
    input: &TrafficInput,
    dir: &Path,
) -> Result<EngineRun, String> {
    let outcome = plain_timely::run(input.files(), args.home, args.parallelism)?;
    write_complete_results(dir, &outcome.counts, &outcome.windows)?;
    Ok(EngineRun {
        records_in: outcome.records_in,
        records_rejected: outcome.records_rejected,
        counts: outcome.counts,
        windows: outcome.windows,
        wall: outcome.wall,
        ..EngineRun::complete(Engine::TimelyPlain)
    })
}

/// Writes origins.jsonl, flow_1m.jsonl, origin_5m.jsonl and an empty late.jsonl: a timely
/// program's results are complete, nothing is dropped as late.
fn write_complete_results(
    dir: &Path,
    counts: &OriginCounts,
    windows: &WindowTotals,
) -> Result<(), String> {
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))
    };
    write(ORIGINS_FILE, counts.to_jsonl())?;
    windows.write_jsonl(dir)?;
    write(LATE_FILE, String::new())
}

fn report<'a>(
    args: &TrafficArgs,
    input: &'a TrafficInput,
    runtime: &'a RuntimeConfig,
    machine: &'a Machine,
    run: &'a EngineRun,
) -> Report<'a> {
    let (input_text, generator) = match input {
        TrafficInput::Generate(g) => ("generator".to_owned(), Some(g)),
        TrafficInput::Files(files) => (
            files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(","),
            None,
        ),
    };
    Report {
        job: "traffic",
        engine: run.engine.name(),
        config: ConfigReport {
            input: input_text,
            generator,
            home: args.home.to_string(),
            parallelism: args.parallelism,
            event_time: args.event_time(),
            runtime,
        },
        machine,
        records_in: run.records_in,
        records_rejected: run.records_rejected,
        records_quarantined: run.records_quarantined,
        records_tagged: run.counts.total(),
        records_counted: run.windows.counted(),
        records_late_dropped: run.records_late_dropped,
        records_late_dropped_origin_5m: run.records_late_dropped_origin_5m,
        records_duplicated: duplicated(run),
        partitions_mostly_rejected: &run.partitions_mostly_rejected,
        throughput_records_per_s: run.throughput(),
        wall_ms: run.wall.as_secs_f64() * 1000.0,
        latency: run.latency,
        result_latency: run.result_latency,
        watermarks_per_second: run
            .tasks
            .iter()
            .filter(|t| t.task.starts_with("source"))
            .map(|t| t.watermarksPerSecond)
            .sum(),
        network: run.network,
        stopped_early: run.stopped_early,
        checkpoints: run.checkpoints.as_ref().map(CheckpointStats::to_json),
        injected_failures: &run.injected_failures,
        tasks: &run.tasks,
    }
}

/// Records counted more than once: at least once, after a restore, what the outputs count
/// beyond the input (`None` when every record must be counted exactly once).
fn duplicated(run: &EngineRun) -> Option<u64> {
    run.at_least_once.then(|| {
        let dropped = run.records_rejected + run.records_quarantined;
        (run.windows.counted() + run.records_late_dropped + dropped).saturating_sub(run.records_in)
    })
}

/// Fails loudly when a record went missing: every data line is tagged or dropped with a
/// reason, and every tagged record is counted in the per-minute flow or dropped as late.
/// At least once (`--checkpoint-mode at-least-once`), records may be counted twice after a
/// restore, never lost: the counts may exceed the input.
fn check_accounting(run: &EngineRun) -> Result<(), String> {
    let (tagged, counted) = (run.counts.total(), run.windows.counted());
    let dropped = run.records_rejected + run.records_quarantined;
    let adds_up = |total: u64| match run.at_least_once {
        false => run.records_in == total,
        true => run.records_in <= total,
    };
    if !adds_up(tagged + dropped) || !adds_up(counted + run.records_late_dropped + dropped) {
        return Err(format!(
            "{}: accounting does not add up: records_in {} {} records_counted {} + records_late_dropped {} + records_rejected {} + records_quarantined {} (records_tagged {})",
            run.engine.name(),
            run.records_in,
            if run.at_least_once { ">" } else { "!=" },
            counted,
            run.records_late_dropped,
            run.records_rejected,
            run.records_quarantined,
            tagged,
        ));
    }
    Ok(())
}

fn print_run(run: &EngineRun, repetition: usize, repeat: usize, dir: &Path) {
    let rate = run.throughput();
    println!(
        "{:6} run {}/{}: {} records in {:.3} s = {:.2} M records/s; counted {}, late {}, rejected {}, quarantined {}{}",
        run.engine.name(),
        repetition + 1,
        repeat,
        run.records_in,
        run.wall.as_secs_f64(),
        rate / 1e6,
        run.windows.counted(),
        run.records_late_dropped,
        run.records_rejected,
        run.records_quarantined,
        if run.stopped_early {
            " (stopped early)"
        } else {
            ""
        },
    );
    if repeat > 1 {
        return;
    }
    if let Some(l) = run.latency {
        println!(
            "latency (source to sink, {} markers): p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
            l.samples, l.p50_ms, l.p99_ms, l.p999_ms, l.max_ms
        );
    }
    if let Some(l) = run.result_latency {
        println!(
            "result latency (event time past a window's end to its result, {} windows): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            l.samples, l.p50_ms, l.p99_ms, l.max_ms
        );
    }
    if let Some(stats) = &run.checkpoints {
        print!("{}", stats.describe());
    }
    for failure in &run.injected_failures {
        println!("  injected: {failure}");
    }
    let fired = run.injected_failures.len();
    if fired < run.planned_failures {
        println!(
            "  {} of {} planned failures did not fire: the job ended before their points",
            run.planned_failures - fired,
            run.planned_failures
        );
    }
    print!("{}", run.counts.to_jsonl());
    if !run.tasks.is_empty() {
        print!("{}", task_table(&run.tasks));
    }
    println!("outputs and report.json in {}", dir.display());
}

fn compare(
    args: &TrafficArgs,
    machine: Machine,
    engines: &[Engine],
    runs: &[(usize, EngineRun)],
) -> Result<(), String> {
    // Every run must have produced the same answer: the same tagged records, and in batch
    // mode the same complete windows (timely's are always complete; weir's streaming windows
    // lack the records dropped as late, which the report counts).
    let batch = args.mode == Mode::Batch;
    if let Some((_, first)) = runs.first() {
        for (repetition, run) in runs {
            if run.counts != first.counts
                || run.records_rejected != first.records_rejected
                || run.records_quarantined != first.records_quarantined
                || (batch && run.windows != first.windows)
            {
                return Err(format!(
                    "{} run {} disagrees with {} run 1: {:?} vs {:?}",
                    run.engine.name(),
                    repetition + 1,
                    first.engine.name(),
                    run.counts,
                    first.counts
                ));
            }
        }
    }
    let medians: Vec<(String, f64)> = engines
        .iter()
        .map(|&engine| {
            let rates: Vec<f64> = runs
                .iter()
                .filter(|(_, r)| r.engine == engine)
                .map(|(_, r)| r.throughput())
                .collect();
            (engine.name().to_owned(), median(&rates).unwrap_or(0.0))
        })
        .collect();
    for (engine, rate) in &medians {
        println!(
            "{engine:6} median of {}: {:.2} M records/s",
            args.repeat,
            rate / 1e6
        );
    }
    let of = |name: &str| medians.iter().find(|(e, _)| e == name).map(|(_, r)| *r);
    let ratio_to = |peer: &str| of("weir").zip(of(peer)).map(|(w, t)| w / t);
    let (ratio, ratio_plain) = (ratio_to("timely"), ratio_to("timely-plain"));
    for (peer, ratio) in [("timely", ratio), ("timely-plain", ratio_plain)] {
        if let Some(ratio) = ratio {
            println!("weir / {peer}: {ratio:.2}");
        }
    }
    let comparison = Comparison {
        machine,
        parallelism: args.parallelism,
        repeat: args.repeat,
        runs: runs
            .iter()
            .map(|(repetition, r)| ComparisonRun {
                engine: r.engine.name(),
                repetition: repetition + 1,
                throughput_records_per_s: r.throughput(),
                wall_ms: r.wall.as_secs_f64() * 1000.0,
            })
            .collect(),
        median_throughput_records_per_s: medians,
        ratio_weir_over_timely: ratio,
        ratio_weir_over_timely_plain: ratio_plain,
    };
    let path = args.output.join(COMPARE_FILE);
    let json = serde_json::to_string_pretty(&comparison).map_err(|e| e.to_string())?;
    output_dir::write_atomically(&path, &(json + "\n"))?;
    println!("comparison in {}", path.display());
    Ok(())
}
