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

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use weir_core::runtime::JobControl;
use weir_core::sink::JsonLinesFile;
use weir_core::time::arith::millis;
use weir_core::time::{GuardConfig, Quarantine, WatermarkEmit, WatermarkStrategy};
use weir_core::window::{Count, GlobalAggregation, Window, WindowAssigner, WindowSpec};
use weir_core::{Job, JobResult, RuntimeConfig};

use super::input::TrafficInput;
use super::record::{Home, Origin, TrafficRecord};
use super::tag::{OriginCounts, Tagged};
use super::windows::{
    FLOW_FILE, FLOW_WINDOW_MS, FlowCount, ORIGIN_FILE, ORIGIN_WINDOW_MS, OriginWindowCount,
    WindowTotals,
};

mod operators;
mod outputs;
mod source;

use operators::{CountOrigins, OriginWindow, Tag};
pub use outputs::QuarantinedRecord;
use outputs::{FlowLatency, LateRecord, OriginsSink, WindowLines};
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
    /// Failure injection: each tagging subtask panics when it receives its record number
    /// `n + 1`.
    pub fail_after: Option<u64>,
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

/// What a run of the job produced.
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
pub fn run(
    job: &TrafficJob,
    started: impl FnOnce(Arc<JobControl>, Arc<Tally>),
) -> Result<TrafficRun, String> {
    crate::output_dir::create(&job.output)?;
    let file = |name: &str| JsonLinesFile::create(job.output.join(name)).map_err(|e| e.to_string());
    let (rejected, late) = (file(REJECTED_FILE)?, file(LATE_FILE)?);
    let (flow_file, origin_file) = (file(FLOW_FILE)?, file(ORIGIN_FILE)?);
    let tally = Arc::new(Tally::new(job.input.partitions()));
    let counts = Arc::new(Mutex::new(OriginCounts::default()));
    let flow_slot = Arc::new(Mutex::new(BTreeMap::new()));
    let origin_slot = Arc::new(Mutex::new(BTreeMap::new()));
    let quarantined = Arc::new(AtomicU64::new(0));
    let late_flow = Arc::new(AtomicU64::new(0));
    let late_origin = Arc::new(AtomicU64::new(0));
    let latency = Arc::new(Mutex::new(weir_core::metrics::latency_histogram()));
    let p = job.parallelism;
    let et = &job.event_time;
    let input = Arc::new(job.input.clone());

    let weir_job = Job::new(job.runtime.clone());
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
            let (rejected, quarantined) = (Arc::clone(&rejected), Arc::clone(&quarantined));
            let input = Arc::clone(&input);
            Arc::new(move |_subtask| {
                let mut lines = rejected.writer::<QuarantinedRecord>();
                let (quarantined, input) = (Arc::clone(&quarantined), Arc::clone(&input));
                Box::new(move |record: TrafficRecord, quarantine: Quarantine| {
                    quarantined.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = lines
                        .write_line(&QuarantinedRecord::new(&record, &quarantine, &input))
                        .and_then(|()| lines.flush())
                    {
                        eprintln!("weir: could not write a quarantined record: {e}");
                    }
                })
            })
        }),
    };
    let lateness_ms = millis(et.allowed_lateness);
    let late_output = |output: &'static str, counter: &Arc<AtomicU64>| {
        let (late, counter, input) = (Arc::clone(&late), Arc::clone(counter), Arc::clone(&input));
        let factory: weir_core::window::LateOutput<Tagged> = Arc::new(move |_subtask| {
            let mut lines = late.writer::<LateRecord>();
            let (counter, input) = (Arc::clone(&counter), Arc::clone(&input));
            Box::new(move |tagged: &Tagged, window: Window| {
                counter.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = lines
                    .write_line(&LateRecord::new(output, &tagged.record, window, &input))
                    .and_then(|()| lines.flush())
                {
                    eprintln!("weir: could not write a late record: {e}");
                }
            })
        });
        factory
    };
    let late_partials = |output: &'static str, counter: &Arc<AtomicU64>| {
        let (late, counter) = (Arc::clone(&late), Arc::clone(counter));
        let factory: weir_core::window::LatePartials = Arc::new(move |_subtask| {
            let mut lines = late.writer::<LateRecord>();
            let counter = Arc::clone(&counter);
            Box::new(move |window: Window, records: u64| {
                counter.fetch_add(records, Ordering::Relaxed);
                if let Err(e) = lines
                    .write_line(&LateRecord::partial(output, window, records))
                    .and_then(|()| lines.flush())
                {
                    eprintln!("weir: could not write a late partial: {e}");
                }
            })
        });
        factory
    };
    let spec = |output: &'static str, size_ms: i64, counter: &Arc<AtomicU64>| WindowSpec {
        assigner: WindowAssigner::tumbling(size_ms),
        allowed_lateness_ms: lateness_ms,
        timestamp: Arc::new(|t: &Tagged| t.record.ts_ms),
        late: Some(late_output(output, counter)),
        late_partials: Some(late_partials(output, counter)),
    };

    let home = job.home;
    let fail_after = job.fail_after;
    let origins_path = job.output.join(ORIGINS_FILE);
    let result_slot = Arc::clone(&counts);
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
            },
            strategy,
        )
        .key_by(|r: &TrafficRecord| r.plate)
        .process("tag", p, move || Tag { home, fail_after });
    let (totals, windowed) = tagged.split();
    let (flow, by_origin) = windowed.split();
    totals
        .process("count-origins", CountOrigins::default)
        .sink("origins", 1, move |_| OriginsSink {
            path: origins_path.clone(),
            total: OriginCounts::default(),
            result: Arc::clone(&result_slot),
        });
    let flow_lines = {
        let (slot, tally, control, latency) = (
            Arc::clone(&flow_slot),
            Arc::clone(&tally),
            Arc::clone(&control),
            Arc::clone(&latency),
        );
        let shift_ms = millis(et.out_of_orderness);
        move |_| WindowLines {
            lines: flow_file.writer(),
            last: BTreeMap::new(),
            line: |window, _, count: &u64| FlowCount {
                window_start: window.start,
                window_end: window.end,
                count: *count,
            },
            slot: Arc::clone(&slot),
            latency: Some(FlowLatency {
                tally: Arc::clone(&tally),
                control: Arc::clone(&control),
                shift_ms,
                histogram: Arc::clone(&latency),
            }),
        }
    };
    flow.window_global(
        "flow_1m",
        et.aggregation,
        spec("flow_1m", FLOW_WINDOW_MS, &late_flow),
        Count,
    )
    .sink("flow_1m sink", 1, flow_lines);
    let origin_lines = {
        let slot = Arc::clone(&origin_slot);
        move |_| WindowLines {
            lines: origin_file.writer(),
            last: BTreeMap::new(),
            line: |window, origin, &(count, long_term): &(u64, u64)| OriginWindowCount {
                window_start: window.start,
                window_end: window.end,
                origin: Origin::from_index(origin).expect("origin index from Origin::index"),
                count,
                long_term,
            },
            slot: Arc::clone(&slot),
            latency: None,
        }
    };
    let origin_spec = spec("origin_5m", ORIGIN_WINDOW_MS, &late_origin);
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
    origin_windows.sink("origin_5m sink", 1, origin_lines);

    started(control, Arc::clone(&tally));
    let result = weir_job.execute().map_err(|e| e.to_string())?;
    let counts = *counts.lock().unwrap_or_else(|p| p.into_inner());
    let windows = WindowTotals {
        flow: flow_slot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(&(start, _), &count)| (start, count))
            .collect(),
        origin: std::mem::take(&mut *origin_slot.lock().unwrap_or_else(|p| p.into_inner())),
    };
    let result_latency_ns = latency.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok(TrafficRun {
        records_in: tally.lines(),
        records_rejected: tally.rejected(),
        rejects_by_partition: tally.by_partition(),
        records_quarantined: quarantined.load(Ordering::Relaxed),
        records_late_dropped: late_flow.load(Ordering::Relaxed),
        records_late_dropped_origin_5m: late_origin.load(Ordering::Relaxed),
        counts,
        windows,
        result_latency_ns,
        result,
    })
}
