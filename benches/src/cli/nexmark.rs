//! `weir run nexmark`: one Nexmark query over the crate's events, with its report, the ratio
//! to Flink's published per-core throughput, and the generator's own rate in weir (the source
//! into a discarding sink) beside it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde::Serialize;
use weir_core::RuntimeConfig;
use weir_core::checkpoint::CheckpointStats;
use weir_core::metrics::TaskReport;

use super::checkpointing::CheckpointArgs;
use super::duration::{parse_duration, parse_positive_duration};
use super::progress::Progress;
use super::{MAX_PARALLELISM, MAX_PARTITIONS, RuntimeArgs, count, current_job, records};
use crate::nexmark::{
    Aggregation, EventsConfig, Generator, NexmarkJob, NexmarkRun, Query, RowOutput, SourceRun,
    Watermarks,
};
use crate::output_dir::{OutputDir, Status};
use crate::report::{Latency, Machine, task_table};

/// Where the query's rows go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SinkChoice {
    /// JSON lines in `<output>/<query>.jsonl` (transactional with checkpoints).
    Jsonl,
    /// Counted and dropped (not with checkpoints).
    Discard,
}

/// Streaming or batch execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Periodic watermarks (--watermark-interval).
    Streaming,
    /// One final watermark at the end of the input: complete results.
    Batch,
}

/// Options of `weir run nexmark`.
#[derive(Debug, Clone, Args)]
pub struct NexmarkArgs {
    /// The query.
    #[arg(long, value_enum)]
    query: Query,
    /// Events to generate (persons, auctions and bids in the generator's 1:3:46 mix), at
    /// least 1.
    #[arg(long, value_parser = records(), default_value_t = 1_000_000)]
    events: u64,
    /// Partitions of the event stream, 1 to 4096; partition p of K generates events p, p+K, ...
    #[arg(long, value_parser = count(1, MAX_PARTITIONS), default_value_t = 4)]
    partitions: usize,
    /// Subtasks of the source and of every other step, 1 to 1024 and at most
    /// --max-parallelism.
    #[arg(long, short, value_parser = count(1, MAX_PARALLELISM), default_value_t = 2)]
    parallelism: usize,
    /// Folder of `<query>.jsonl` (with --sink jsonl) and report.json. A run first replaces
    /// report.json with one saying "status": "incomplete" and removes every `<query>.jsonl` of
    /// an earlier run (not with --restore: a restored run continues them), and writes
    /// report.json last with "status": "completed", "stopped_early" or "failed". Files of
    /// other names are left alone.
    #[arg(long, default_value = "out")]
    output: PathBuf,
    /// q7's global window: `window-all` (one subtask) or `parallel` (local-global).
    #[arg(long, value_enum, default_value = "parallel")]
    aggregation: Aggregation,
    /// Where the rows go [default: discard for q0-q2, jsonl for the windowed queries and with
    /// --checkpoint-interval, which needs jsonl].
    #[arg(long, value_enum)]
    sink: Option<SinkChoice>,
    /// Events per second of event time (the generator's rate), at least 1.
    #[arg(long, value_parser = count(1, usize::MAX as u64), default_value_t = 10_000)]
    rate: usize,
    /// Streaming (periodic watermarks) or batch (one final watermark).
    #[arg(long, value_enum, default_value = "streaming")]
    mode: Mode,
    /// What makes the events: `weir` (allocation-free, the crate's events without the strings
    /// weir drops) or `crate` (the `nexmark` crate's generator, every field, then converted).
    /// The same events either way; Flink's Nexmark has its own generator in the source.
    #[arg(long, value_enum, default_value = "weir")]
    generator: Generator,
    /// After the query, run the generator alone (the source into a discarding sink, same
    /// events, parallelism and runtime, no checkpoints) and report its rate and the query's
    /// share of it: `on` or `off`.
    #[arg(long, default_value = "on", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set)]
    source_rate: bool,
    /// Interval of the periodic watermarks (streaming), more than 0 (Flink's default: 200ms).
    #[arg(long, value_parser = parse_positive_duration, default_value = "10ms", allow_hyphen_values = true)]
    pub(super) watermark_interval: Duration,
    /// Bounded out-of-orderness of the watermarks (the generator emits in order).
    #[arg(long, value_parser = parse_duration, default_value = "0s", allow_hyphen_values = true)]
    out_of_orderness: Duration,
    #[command(flatten)]
    runtime: RuntimeArgs,
    #[command(flatten)]
    checkpointing: CheckpointArgs,
}

/// What `report.json` holds.
#[derive(Debug, Serialize)]
#[allow(non_snake_case)]
struct Report<'a> {
    job: &'static str,
    query: Query,
    engine: &'static str,
    config: ConfigReport<'a>,
    machine: &'a Machine,
    events_in: u64,
    rows_out: u64,
    numLateRecordsDropped: u64,
    throughput_events_per_s: f64,
    cores_used: usize,
    throughput_per_core_events_per_s: f64,
    flink_v1_per_core_events_per_s: f64,
    ratio_to_flink_per_core: f64,
    /// The generator alone in weir (`--source-rate`), and the query's rate against it.
    source_alone: Option<SourceAlone>,
    wall_ms: f64,
    latency: Option<Latency>,
    network: Network,
    stopped_early: bool,
    /// Checkpoints, restarts and restores with Flink's metric names (when checkpointing).
    checkpoints: Option<serde_json::Value>,
    /// The failures injected on purpose (`--inject-failures`).
    injected_failures: &'a [String],
    tasks: &'a [TaskReport],
}

#[derive(Debug, Serialize)]
struct ConfigReport<'a> {
    events: &'a EventsConfig,
    parallelism: usize,
    aggregation: Option<Aggregation>,
    sink: SinkChoice,
    output: Option<String>,
    mode: Mode,
    watermarks: Watermarks,
    out_of_orderness_ms: u128,
    runtime: &'a RuntimeConfig,
}

/// The generator's own rate: the source into a discarding sink.
#[derive(Debug, Clone, Copy, Serialize)]
struct SourceAlone {
    events_in: u64,
    wall_ms: f64,
    throughput_events_per_s: f64,
    cores_used: usize,
    throughput_per_core_events_per_s: f64,
    /// The query's throughput over the source's: 1 means the engine adds nothing to the
    /// generator's cost, 0.5 that the query's operators take as long as generating.
    query_share_of_source_rate: f64,
}

#[derive(Debug, Clone, Copy, Serialize)]
struct Network {
    segments: usize,
    segment_bytes: usize,
}

/// The cores a run used: one thread per subtask, at most the machine's cores (the distinct
/// pinned cores when pinning was on).
fn cores_used(tasks: &[TaskReport], machine: &Machine) -> usize {
    let pinned: BTreeSet<usize> = tasks.iter().filter_map(|t| t.core).collect();
    let threads = if pinned.is_empty() {
        tasks.len()
    } else {
        pinned.len()
    };
    threads.clamp(1, machine.cores.max(1))
}

/// Runs `weir run nexmark`.
pub(super) fn run(args: &NexmarkArgs) -> Result<(), String> {
    let mut runtime = args.runtime.config(args.parallelism)?;
    let checkpointing = args.checkpointing.resolve(&args.output)?;
    checkpointing.apply(&mut runtime);
    let checkpointed = runtime.checkpoint.is_some();
    let sink = match args.sink {
        Some(SinkChoice::Discard) if checkpointed => {
            return Err(
                "--sink discard cannot be checkpointed: its rows could not be counted once over restarts; use --sink jsonl"
                    .into(),
            );
        }
        Some(sink) => sink,
        None if checkpointed || args.query.is_windowed() => SinkChoice::Jsonl,
        None => SinkChoice::Discard,
    };
    // A restored run continues the rows of the run it restores: they stay.
    let stale: Vec<String> = if runtime.restore.is_some() {
        Vec::new()
    } else {
        Query::value_variants()
            .iter()
            .map(|q| q.rows_file())
            .collect()
    };
    let stale: Vec<&str> = stale.iter().map(String::as_str).collect();
    let out = OutputDir::open(&args.output, &stale)?;
    let rows_path = args.output.join(args.query.rows_file());
    let watermarks = match args.mode {
        Mode::Streaming => Watermarks::Periodic(args.watermark_interval),
        Mode::Batch => Watermarks::EndOfInput,
    };
    let job = NexmarkJob {
        query: args.query,
        events: EventsConfig {
            events: args.events,
            partitions: args.partitions,
            rate: args.rate,
            generator: args.generator,
            ..EventsConfig::default()
        },
        parallelism: args.parallelism,
        aggregation: args.aggregation,
        watermarks,
        out_of_orderness: args.out_of_orderness,
        runtime,
        output: match sink {
            SinkChoice::Jsonl => RowOutput::Jsonl(args.output.clone()),
            SinkChoice::Discard => RowOutput::Discard,
        },
    };
    let machine = Machine::detect();
    let mut progress = None;
    let total = args.events;
    let outcome = crate::nexmark::run(&job, |control, read| {
        *current_job().lock().unwrap_or_else(|p| p.into_inner()) = Some(control);
        progress = Some(Progress::start(Some(total), move || read.total()));
    });
    drop(progress);
    *current_job().lock().unwrap_or_else(|p| p.into_inner()) = None;
    let run = match outcome {
        Ok(run) => run,
        Err(e) => return Err(out.fail(e)),
    };
    let output = (sink == SinkChoice::Jsonl).then_some(rows_path.as_path());
    let source = if args.source_rate && !run.result.stopped_early {
        match crate::nexmark::source_rate(
            &job.events,
            job.parallelism,
            job.watermarks,
            &job.runtime,
        ) {
            Ok(source) => Some(source),
            Err(e) => return Err(out.fail(format!("the source-rate run: {e}"))),
        }
    } else {
        None
    };
    let report = report(args, &job, sink, output, &machine, &run, source);
    let short = (!run.result.stopped_early && run.events_in != args.events).then(|| {
        format!(
            "the source read {} events, not the {} asked for",
            run.events_in, args.events
        )
    });
    let status = match (&short, run.result.stopped_early) {
        (Some(_), _) => Status::Failed,
        (None, true) => Status::StoppedEarly,
        (None, false) => Status::Completed,
    };
    out.finish(status, short.as_deref(), &report)?;
    print_run(&report, &run, output, &args.output);
    short.map_or(Ok(()), Err)
}

fn report<'a>(
    args: &NexmarkArgs,
    job: &'a NexmarkJob,
    sink: SinkChoice,
    output: Option<&Path>,
    machine: &'a Machine,
    run: &'a NexmarkRun,
    source: Option<SourceRun>,
) -> Report<'a> {
    let wall = run.wall.as_secs_f64().max(1e-9);
    let throughput = run.events_in as f64 / wall;
    let cores = cores_used(&run.result.tasks, machine);
    let source_alone = source.map(|s| {
        let wall = s.wall.as_secs_f64().max(1e-9);
        let rate = s.events_in as f64 / wall;
        let cores = s.subtasks.clamp(1, machine.cores.max(1));
        SourceAlone {
            events_in: s.events_in,
            wall_ms: wall * 1000.0,
            throughput_events_per_s: rate,
            cores_used: cores,
            throughput_per_core_events_per_s: rate / cores as f64,
            query_share_of_source_rate: throughput / rate.max(1e-9),
        }
    });
    let per_core = throughput / cores as f64;
    let flink = args.query.flink_per_core();
    Report {
        job: "nexmark",
        query: args.query,
        engine: "weir",
        config: ConfigReport {
            events: &job.events,
            parallelism: args.parallelism,
            aggregation: (args.query == Query::Q7).then_some(args.aggregation),
            sink,
            output: output.map(|p| p.display().to_string()),
            mode: args.mode,
            watermarks: job.watermarks,
            out_of_orderness_ms: args.out_of_orderness.as_millis(),
            runtime: &job.runtime,
        },
        machine,
        events_in: run.events_in,
        rows_out: run.rows_out,
        numLateRecordsDropped: run
            .result
            .tasks
            .iter()
            .map(|t| t.numLateRecordsDropped)
            .sum(),
        throughput_events_per_s: throughput,
        cores_used: cores,
        throughput_per_core_events_per_s: per_core,
        flink_v1_per_core_events_per_s: flink,
        ratio_to_flink_per_core: per_core / flink,
        source_alone,
        wall_ms: wall * 1000.0,
        latency: Latency::from_ns(&run.result.latency_ns),
        network: Network {
            segments: run.result.pool_segments,
            segment_bytes: run.result.segment_bytes,
        },
        stopped_early: run.result.stopped_early,
        checkpoints: run
            .result
            .checkpoints
            .as_ref()
            .map(CheckpointStats::to_json),
        injected_failures: &run.result.injected_failures,
        tasks: &run.result.tasks,
    }
}

fn print_run(report: &Report<'_>, run: &NexmarkRun, output: Option<&Path>, dir: &Path) {
    println!(
        "nexmark {}: {} events in {:.3} s = {:.2} M events/s; {} rows out, {} late{}",
        report.query.name(),
        report.events_in,
        report.wall_ms / 1000.0,
        report.throughput_events_per_s / 1e6,
        report.rows_out,
        report.numLateRecordsDropped,
        if report.stopped_early {
            " (stopped early)"
        } else {
            ""
        },
    );
    println!(
        "per core: {:.1} K events/s on {} cores; Flink v1 {}: {:.1} K events/s per core; weir / Flink = {:.2}",
        report.throughput_per_core_events_per_s / 1e3,
        report.cores_used,
        report.query.name(),
        report.flink_v1_per_core_events_per_s / 1e3,
        report.ratio_to_flink_per_core,
    );
    if let Some(s) = report.source_alone {
        println!(
            "generator alone (source into a discarding sink): {:.2} M events/s, {:.1} K per core on {} cores; {} runs at {:.2} of it",
            s.throughput_events_per_s / 1e6,
            s.throughput_per_core_events_per_s / 1e3,
            s.cores_used,
            report.query.name(),
            s.query_share_of_source_rate,
        );
    }
    if let Some(l) = report.latency {
        println!(
            "latency (source to sink, {} markers): p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
            l.samples, l.p50_ms, l.p99_ms, l.p999_ms, l.max_ms
        );
    }
    if let Some(stats) = &run.result.checkpoints {
        print!("{}", stats.describe());
    }
    for failure in &run.result.injected_failures {
        println!("  injected: {failure}");
    }
    if !run.result.tasks.is_empty() {
        print!("{}", task_table(&run.result.tasks));
    }
    if let Some(path) = output {
        println!("rows in {}", path.display());
    }
    println!("report.json in {}", dir.display());
}
