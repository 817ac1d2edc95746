//! The traffic job on weir: read and parse (rejecting bad lines with file, line and reason),
//! assign timestamps and watermarks and quarantine implausible timestamps, key by plate, tag
//! origin and long-term flag with per-plate state, then three outputs from the tagged stream:
//!
//! ```text
//! source: parse, watermarks, guard (p) --key_by(plate)--> tag (p) -+-> count-origins --> origins (1)
//!                                                                  +-> flow_1m: global 1-min window
//!                                                                  |     (window-all, or local + merge) --> flow_1m (1)
//!                                                                  +--key_by(origin)--> origin_5m: 5-min window (p) --> origin_5m (1)
//! ```
//!
//! Every input line ends as exactly one of: counted in `flow_1m.jsonl`, dropped as late
//! (`late.jsonl`), rejected as malformed or quarantined for an implausible timestamp
//! (`rejected.jsonl`). [`TrafficRun`] carries the four counts.
//!
//! - `source`: the input as a weir source, and the tally behind progress and result latency.
//! - `operators`: tagging, per-subtask origin counts, the origin window's aggregate.
//! - `outputs`: quarantined and late lines, windowed results as they fire, merged origins.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use weir_core::runtime::JobControl;
use weir_core::time::arith::millis;
use weir_core::time::{GuardConfig, Quarantine, WatermarkEmit, WatermarkStrategy};
use weir_core::window::{Count, GlobalAggregation, WindowAssigner, WindowSpec};
use weir_core::{Job, JobResult, RuntimeConfig};

use super::input::TrafficInput;
use super::record::{Home, Origin, TrafficRecord};
use super::tag::{OriginCounts, Tagged};
use super::windows::{
    FLOW_FILE, FLOW_WINDOW_MS, FlowCount, ORIGIN_FILE, ORIGIN_WINDOW_MS, OriginWindowCount,
    WindowTotals,
};

mod committed;
mod operators;
mod outputs;
mod source;

use committed::Committed;
use operators::{CountOrigins, OriginWindow, Tag};
pub use outputs::QuarantinedRecord;
use outputs::{FlowLatency, LateLines, LateRecord, OriginsSink, WindowLines};
use source::TrafficSource;
pub use source::{PartitionRejects, Tally};

/// The traffic job's settings.
#[derive(Debug, Clone)]
pub struct TrafficJob {
    /// Files or generator.
    pub input: TrafficInput,
    /// The home province and city.
    pub home: Home,
    /// Parallelism of the source and the tagging step.
    pub parallelism: usize,
    /// The runtime's settings.
    pub runtime: RuntimeConfig,
    /// Folder of the job's [`OUTPUT_FILES`].
    pub output: PathBuf,
    /// Failure injection: the first tagging subtask to receive its record number `n + 1`
    /// panics, once per job (a restarted attempt does not fail again).
    pub fail_after: Option<u64>,
    /// Records per second the source reads at most, over all partitions; `None`: as fast as
    /// it can.
    pub rate: Option<u64>,
    /// Time the tagging step spends per record (flink-benchmarks' slow sink), so that the
    /// sources are backpressured and in-flight buffers fill; `None`: no delay.
    pub slow_tag: Option<Duration>,
    /// Event time: watermarks, lateness, idleness, the guard, aggregation and mode.
    pub event_time: EventTimeOptions,
}

impl TrafficJob {
    /// The job over `input` writing into `output`, unpinned, with every other setting at its
    /// default: home 浙A, parallelism 2, the default runtime and event time, no failure
    /// injection. Set fields to change them (`TrafficJob { parallelism: 4, ..TrafficJob::new(..) }`).
    pub fn new(input: TrafficInput, output: impl Into<PathBuf>) -> Self {
        Self {
            input,
            home: Home {
                province: '浙',
                city: 'A',
            },
            parallelism: 2,
            runtime: RuntimeConfig {
                pin: false,
                ..RuntimeConfig::default()
            },
            output: output.into(),
            fail_after: None,
            rate: None,
            slow_tag: None,
            event_time: EventTimeOptions::default(),
        }
    }
}

/// How the job treats event time.
#[derive(Debug, Clone, Serialize)]
pub struct EventTimeOptions {
    /// Periodic (with its interval) or punctuated watermarks; ignored in batch mode.
    pub watermarks: Watermarks,
    /// Bounded out-of-orderness.
    #[serde(serialize_with = "ms")]
    pub out_of_orderness: Duration,
    /// Allowed lateness of both windowed outputs.
    #[serde(serialize_with = "ms")]
    pub allowed_lateness: Duration,
    /// Idle timeout of source partitions; `None`: never idle.
    #[serde(serialize_with = "optional_ms")]
    pub idle_timeout: Option<Duration>,
    /// Implausible-timestamp limits.
    pub guard: GuardConfig,
    /// How the global per-minute flow is aggregated.
    pub aggregation: GlobalAggregation,
    /// Streaming, or batch: one final watermark, nothing late.
    pub batch: bool,
}

/// The watermark generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Watermarks {
    /// Every interval of processing time.
    Periodic(#[serde(serialize_with = "ms")] Duration),
    /// After every record.
    Punctuated,
}

fn ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

fn optional_ms<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_u64(d.as_millis() as u64),
        None => s.serialize_none(),
    }
}

/// Default guard limits: an hour ahead (nothing legitimate comes from the future) and twelve
/// hours behind (devices hours late are late data, not bogus; a day-old timestamp is bogus).
pub const DEFAULT_GUARD: GuardConfig = GuardConfig {
    max_future_skew_ms: Some(3_600_000),
    max_past_skew_ms: Some(12 * 3_600_000),
};

impl Default for EventTimeOptions {
    fn default() -> Self {
        Self {
            watermarks: Watermarks::Periodic(weir_core::time::DEFAULT_WATERMARK_INTERVAL),
            out_of_orderness: Duration::from_secs(5),
            allowed_lateness: Duration::ZERO,
            idle_timeout: None,
            guard: DEFAULT_GUARD,
            aggregation: GlobalAggregation::Parallel { parallelism: 2 },
            batch: false,
        }
    }
}

/// What a run of the job produced. Every count but `records_in` and `rejects_by_partition`
/// (the source's own, restored with its offsets after a failure) is read back from the output
/// files once the job has ended: the report says what a reader of the outputs sees, also after
/// restarts.
#[derive(Debug)]
pub struct TrafficRun {
    /// Data lines read (header excluded).
    pub records_in: u64,
    /// Malformed lines rejected into `rejected.jsonl`.
    pub records_rejected: u64,
    /// Data and rejected lines per input partition (those with too many rejections were
    /// warned about on stderr: [`PartitionRejects::too_many`]).
    pub rejects_by_partition: Vec<PartitionRejects>,
    /// Records quarantined by the timestamp guard (also in `rejected.jsonl`).
    pub records_quarantined: u64,
    /// Records dropped as late by the per-minute flow window (in `late.jsonl`).
    pub records_late_dropped: u64,
    /// Records dropped as late by the five-minute origin window (in `late.jsonl`).
    pub records_late_dropped_origin_5m: u64,
    /// The counts written to `origins.jsonl` (every tagged record).
    pub counts: OriginCounts,
    /// The final value of every window (the last line of each window in its file).
    pub windows: WindowTotals,
    /// Processing time from event time passing a flow window's end at the sources to the
    /// window's first result at its sink, ns.
    pub result_latency_ns: hdrhistogram::Histogram<u64>,
    /// The runtime's report.
    pub result: JobResult,
}

impl TrafficRun {
    /// Records counted in `flow_1m.jsonl` (final values).
    pub fn records_counted(&self) -> u64 {
        self.windows.counted()
    }
}

/// The merged origin counts.
pub const ORIGINS_FILE: &str = "origins.jsonl";
/// Malformed lines and quarantined records.
pub const REJECTED_FILE: &str = "rejected.jsonl";
/// Records dropped as late.
pub const LATE_FILE: &str = "late.jsonl";
/// Every file the job writes into its output folder (`report.json` is the command's).
pub const OUTPUT_FILES: [&str; 5] = [
    ORIGINS_FILE,
    FLOW_FILE,
    ORIGIN_FILE,
    LATE_FILE,
    REJECTED_FILE,
];

/// Runs the job on weir. `started` receives the job's control block (to request a stop) and
/// the live tally (for progress) before the job starts.
///
/// With checkpointing on (`job.runtime.checkpoint`), every output is transactional and the
/// job restarts after failures by its restart strategy; `job.runtime.restore` starts it from a
/// checkpoint of an earlier run, whose committed outputs it continues.
pub fn run(
    job: &TrafficJob,
    started: impl FnOnce(Arc<JobControl>, Arc<Tally>),
) -> Result<TrafficRun, String> {
    let outputs = crate::output_dir::job_outputs(&job.output, &job.runtime)?;
    let [rejected, late, flow_file, origin_file] = outputs
        .files([REJECTED_FILE, LATE_FILE, FLOW_FILE, ORIGIN_FILE])
        .map_err(|e| e.to_string())?;
    let tally = Arc::new(Tally::new(job.input.partitions()));
    let latency = Arc::new(Mutex::new(weir_core::metrics::latency_histogram()));
    let p = job.parallelism;
    let et = &job.event_time;
    let input = Arc::new(job.input.clone());

    let weir_job = Job::new(RuntimeConfig {
        committer: outputs.committer(),
        ..job.runtime.clone()
    });
    let control = weir_job.control();
    let strategy = WatermarkStrategy {
        timestamp: Arc::new(|r: &TrafficRecord| r.ts_ms),
        out_of_orderness: et.out_of_orderness,
        emit: match (et.batch, et.watermarks) {
            (true, _) => WatermarkEmit::EndOfInput,
            (false, Watermarks::Periodic(interval)) => WatermarkEmit::Periodic(interval),
            (false, Watermarks::Punctuated) => WatermarkEmit::Punctuated(None),
        },
        idle_timeout: if et.batch { None } else { et.idle_timeout },
        guard: et.guard,
        quarantine: Some({
            let (rejected, input) = (rejected.clone(), Arc::clone(&input));
            Arc::new(move |subtask| {
                let mut lines = rejected.writer::<QuarantinedRecord>(subtask)?;
                let input = Arc::clone(&input);
                Ok(Box::new(
                    move |record: TrafficRecord, quarantine: Quarantine| {
                        lines
                            .write_line(&QuarantinedRecord::new(&record, &quarantine, &input))
                            .and_then(|()| lines.flush())
                            .map_err(|e| format!("writing a quarantined record: {e}").into())
                    },
                ))
            })
        }),
    };
    let lateness_ms = millis(et.allowed_lateness);
    let late_output = |output: &'static str| {
        let (late, input) = (late.clone(), Arc::clone(&input));
        let factory: weir_core::window::LateOutput<Tagged> = Arc::new(move |subtask| {
            let lines = late.writer::<LateRecord>(subtask)?;
            Ok(Box::new(LateLines::new(output, lines, Arc::clone(&input))))
        });
        factory
    };
    let late_partials = |output: &'static str| {
        let (late, input) = (late.clone(), Arc::clone(&input));
        let factory: weir_core::window::LatePartials = Arc::new(move |subtask| {
            let lines = late.writer::<LateRecord>(subtask)?;
            Ok(Box::new(LateLines::new(output, lines, Arc::clone(&input))))
        });
        factory
    };
    let spec = |output: &'static str, size_ms: i64| WindowSpec {
        assigner: WindowAssigner::tumbling(size_ms),
        allowed_lateness_ms: lateness_ms,
        timestamp: Arc::new(|t: &Tagged| t.record.ts_ms),
        late: Some(late_output(output)),
        late_partials: Some(late_partials(output)),
    };

    let home = job.home;
    let slow_tag = job.slow_tag;
    let fail_after = job
        .fail_after
        .map(|n| (n, Arc::new(AtomicBool::new(false))));
    let origins_path = job.output.join(ORIGINS_FILE);
    let tagged = weir_job
        .source_with_watermarks(
            "source: parse",
            p,
            TrafficSource {
                input: job.input.clone(),
                rejected,
                tally: Arc::clone(&tally),
                control: Arc::clone(&control),
                boundary_shift_ms: millis(et.out_of_orderness),
                rate_per_partition: job
                    .rate
                    .map(|rate| rate as f64 / job.input.partitions().max(1) as f64),
            },
            strategy,
        )
        .key_by(|r: &TrafficRecord| r.plate)
        .process("tag", p, move || {
            Tag::new(home, fail_after.clone(), slow_tag)
        });
    let (totals, windowed) = tagged.split();
    let (flow, by_origin) = windowed.split();
    totals
        .process("count-origins", CountOrigins::default)
        .sink("origins", 1, move |_| {
            OriginsSink::new(origins_path.clone())
        });
    let flow_lines = {
        let (tally, control, latency) = (
            Arc::clone(&tally),
            Arc::clone(&control),
            Arc::clone(&latency),
        );
        let shift_ms = millis(et.out_of_orderness);
        move |subtask| {
            WindowLines::new(
                &flow_file,
                subtask,
                |window, _, count: &u64| FlowCount {
                    window_start: window.start,
                    window_end: window.end,
                    count: *count,
                },
                Some(FlowLatency {
                    tally: Arc::clone(&tally),
                    control: Arc::clone(&control),
                    shift_ms,
                    histogram: Arc::clone(&latency),
                }),
            )
        }
    };
    flow.window_global(
        "flow_1m",
        et.aggregation,
        spec("flow_1m", FLOW_WINDOW_MS),
        Count,
    )
    .try_sink("flow_1m sink", 1, flow_lines);
    let origin_lines = move |subtask| {
        WindowLines::new(
            &origin_file,
            subtask,
            |window, origin, &(count, long_term): &(u64, u64)| OriginWindowCount {
                window_start: window.start,
                window_end: window.end,
                origin: Origin::from_index(origin).expect("origin index from Origin::index"),
                count,
                long_term,
            },
            None,
        )
    };
    let origin_spec = spec("origin_5m", ORIGIN_WINDOW_MS);
    let origin_windows = match et.aggregation {
        // The seed's job: every tagged record crosses the network to its origin's window.
        GlobalAggregation::WindowAll => by_origin.key_by(|t: &Tagged| t.origin).window(
            "origin_5m",
            p,
            origin_spec,
            OriginWindow,
        ),
        // Pre-aggregate per (window, origin) in the tagging task; only partials cross.
        GlobalAggregation::Parallel { parallelism } => by_origin.window_two_phase(
            "origin_5m",
            |t: &Tagged| t.origin,
            parallelism,
            origin_spec,
            OriginWindow,
        ),
    };
    origin_windows.try_sink("origin_5m sink", 1, origin_lines);

    started(control, Arc::clone(&tally));
    let result = weir_job.execute().map_err(|e| e.to_string())?;
    let committed = Committed::read(&job.output)?;
    let result_latency_ns = latency.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok(TrafficRun {
        records_in: tally.lines(),
        records_rejected: committed.rejected,
        rejects_by_partition: tally.by_partition(),
        records_quarantined: committed.quarantined,
        records_late_dropped: committed.late_flow,
        records_late_dropped_origin_5m: committed.late_origin,
        counts: committed.counts,
        windows: committed.windows,
        result_latency_ns,
        result,
    })
}
