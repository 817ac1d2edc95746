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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use weir_core::time::{GuardConfig, Quarantine, WatermarkEmit, WatermarkStrategy};
use weir_core::window::{
    AggregateFunction, Count, GlobalAggregation, Window, WindowAssigner, WindowResult, WindowSpec,
};

use weir_core::error::OperatorError;
use weir_core::operator::{Collector, KeyedProcessFunction, KeyedState, Operator};
use weir_core::runtime::JobControl;
use weir_core::sink::{JsonLinesFile, JsonLinesWriter, Sink};
use weir_core::source::{PartitionReader as WeirReader, Read, Source};
use weir_core::{Job, JobResult, RuntimeConfig};

use super::input::{Line, PartitionReader, TrafficInput};
use super::parse::Rejection;
use super::record::{Home, Origin, Plate, TrafficRecord};
use super::tag::{LongTermTracker, OriginCounts, Tagged};
use super::windows::{
    FLOW_FILE, FLOW_WINDOW_MS, FlowCount, ORIGIN_FILE, ORIGIN_WINDOW_MS, OriginWindowCount,
    WindowTotals,
};

/// Lines a reader counts locally before it publishes them for the progress bar.
const PUBLISH_EVERY_LINES: u64 = 4096;

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
    /// Folder of `origins.jsonl` and `rejected.jsonl`.
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

/// Lines read and rejected so far, shared by the job's readers, and when event time passed
/// each flow window's end at every partition (for the result latency).
#[derive(Debug)]
pub struct Tally {
    lines: AtomicU64,
    rejected: AtomicU64,
    progress: Mutex<EventTimeProgress>,
}

/// When each partition's highest timestamp first passed each flow-window boundary.
#[derive(Debug)]
struct EventTimeProgress {
    partitions: usize,
    /// Boundary (window end + out-of-orderness) → (partitions that passed it, latest time).
    passed: BTreeMap<i64, (usize, u64)>,
}

impl Tally {
    fn new(partitions: usize) -> Self {
        Self {
            lines: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            progress: Mutex::new(EventTimeProgress {
                partitions,
                passed: BTreeMap::new(),
            }),
        }
    }

    /// A partition's highest timestamp passed the boundaries in `boundaries` at `now_ns`.
    fn passed(&self, boundaries: impl Iterator<Item = i64>, now_ns: u64) {
        let mut progress = self.progress.lock().unwrap_or_else(|p| p.into_inner());
        for boundary in boundaries {
            let entry = progress.passed.entry(boundary).or_insert((0, 0));
            entry.0 += 1;
            entry.1 = entry.1.max(now_ns);
        }
    }

    /// When every partition had passed `boundary`, if they all have. Each window's first
    /// result asks once, so a complete boundary is forgotten when asked for: the log holds only
    /// boundaries whose windows have not fired yet (or never will: a minute without records
    /// leaves one small entry).
    fn all_passed(&self, boundary: i64) -> Option<u64> {
        let mut progress = self.progress.lock().unwrap_or_else(|p| p.into_inner());
        let partitions = progress.partitions;
        if progress.passed.get(&boundary)?.0 != partitions {
            return None;
        }
        progress.passed.remove(&boundary).map(|(_, at)| at)
    }

    /// Data lines read so far (published every few thousand lines, exact at the end).
    pub fn lines(&self) -> u64 {
        self.lines.load(Ordering::Relaxed)
    }

    /// Lines rejected so far.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }
}

/// What a run of the job produced.
#[derive(Debug)]
pub struct TrafficRun {
    /// Data lines read (header excluded).
    pub records_in: u64,
    /// Malformed lines rejected into `rejected.jsonl`.
    pub records_rejected: u64,
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

/// A record quarantined by the timestamp guard, as a line of `rejected.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuarantinedRecord {
    /// Why.
    pub reason: String,
    /// The record's timestamp, ms.
    pub ts_ms: i64,
    /// The plate.
    pub plate: String,
    /// The camera.
    pub checkpoint_id: u32,
    /// The reference timestamp it was judged against, ms.
    pub reference_ms: i64,
}

impl QuarantinedRecord {
    /// The line for `record` and the guard's verdict.
    pub fn new(record: &TrafficRecord, quarantine: &Quarantine) -> Self {
        Self {
            reason: quarantine.reason.clone(),
            ts_ms: record.ts_ms,
            plate: record.plate.as_str().to_owned(),
            checkpoint_id: record.checkpoint_id,
            reference_ms: quarantine.reference_ms,
        }
    }
}

/// Records dropped as late, as a line of `late.jsonl`: one record, or (`records` > 1 or no
/// record fields) a partial aggregate the merge step of two-phase aggregation had to drop
/// because its subtask had been idle while the others moved the watermark past the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct LateRecord {
    output: &'static str,
    records: u64,
    #[serde(flatten)]
    record: Option<LateFields>,
    window_start: i64,
    window_end: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct LateFields {
    ts_ms: i64,
    plate: String,
    checkpoint_id: u32,
}

impl LateRecord {
    fn new(output: &'static str, record: &TrafficRecord, window: Window) -> Self {
        Self {
            output,
            records: 1,
            record: Some(LateFields {
                ts_ms: record.ts_ms,
                plate: record.plate.as_str().to_owned(),
                checkpoint_id: record.checkpoint_id,
            }),
            window_start: window.start,
            window_end: window.end,
        }
    }

    fn partial(output: &'static str, window: Window, records: u64) -> Self {
        Self {
            output,
            records,
            record: None,
            window_start: window.start,
            window_end: window.end,
        }
    }
}

/// The traffic input as a weir source; rejected lines go to `rejected.jsonl`.
struct TrafficSource {
    input: TrafficInput,
    rejected: Arc<JsonLinesFile>,
    tally: Arc<Tally>,
    control: Arc<JobControl>,
    /// Event time that makes the watermark pass a flow window's end: end + out-of-orderness.
    boundary_shift_ms: i64,
}

impl Source for TrafficSource {
    type Item = TrafficRecord;

    fn partitions(&self) -> usize {
        self.input.partitions()
    }

    fn open(
        &self,
        partition: usize,
        offset: u64,
    ) -> Result<Box<dyn WeirReader<TrafficRecord>>, OperatorError> {
        Ok(Box::new(TrafficReader {
            reader: self.input.open_at(partition, offset)?,
            rejected: self.rejected.writer(),
            tally: Arc::clone(&self.tally),
            control: Arc::clone(&self.control),
            unpublished_lines: 0,
            unpublished_rejected: 0,
            boundary_shift_ms: self.boundary_shift_ms,
            next_boundary: None,
        }))
    }
}

struct TrafficReader {
    reader: PartitionReader,
    rejected: JsonLinesWriter<Rejection>,
    tally: Arc<Tally>,
    control: Arc<JobControl>,
    unpublished_lines: u64,
    unpublished_rejected: u64,
    boundary_shift_ms: i64,
    /// The next flow-window boundary this partition's highest timestamp has not passed.
    next_boundary: Option<i64>,
}

impl TrafficReader {
    fn publish(&mut self) {
        self.tally.lines.fetch_add(
            std::mem::take(&mut self.unpublished_lines),
            Ordering::Relaxed,
        );
        self.tally.rejected.fetch_add(
            std::mem::take(&mut self.unpublished_rejected),
            Ordering::Relaxed,
        );
    }
}

impl TrafficReader {
    /// Records when this partition's highest timestamp passes flow-window boundaries (one
    /// comparison per record; a lock only when a minute of event time has passed).
    #[inline]
    fn track_event_time(&mut self, ts: i64) {
        let boundary_of = |ts: i64| {
            ts - (ts - self.boundary_shift_ms).rem_euclid(FLOW_WINDOW_MS) + FLOW_WINDOW_MS
        };
        match self.next_boundary {
            None => self.next_boundary = Some(boundary_of(ts)),
            Some(next) if ts >= next => {
                let upto = boundary_of(ts);
                let passed = (0..)
                    .map(|i| next + i * FLOW_WINDOW_MS)
                    .take_while(|b| *b < upto);
                // Bogus timestamps are quarantined downstream of this reader; a jump of more
                // than a day is not a window boundary worth tracking one by one.
                if upto - next <= 86_400_000 {
                    self.tally.passed(passed, self.control.now_ns());
                }
                self.next_boundary = Some(upto);
            }
            Some(_) => {}
        }
    }
}

impl WeirReader<TrafficRecord> for TrafficReader {
    fn next(&mut self) -> Result<Read<TrafficRecord>, OperatorError> {
        loop {
            let line = self.reader.next_item()?;
            self.unpublished_lines += u64::from(line.is_some());
            if self.unpublished_lines >= PUBLISH_EVERY_LINES {
                self.publish();
            }
            match line {
                Some(Line::Record(record)) => {
                    self.track_event_time(record.ts_ms);
                    return Ok(Read::Record(record));
                }
                Some(Line::Rejected(rejection)) => {
                    self.unpublished_rejected += 1;
                    self.rejected.write_line(&rejection)?;
                }
                None => {
                    self.publish();
                    self.rejected.flush()?;
                    return Ok(Read::End);
                }
            }
        }
    }

    fn offset(&self) -> u64 {
        self.reader.offset()
    }
}

impl Drop for TrafficReader {
    fn drop(&mut self) {
        // A reader dropped before its end (a stop request) still accounts for what it read.
        self.publish();
        if let Err(e) = self.rejected.flush() {
            eprintln!("weir: could not write rejected lines: {e}");
        }
    }
}

/// Tags each record with its origin and, for non-local plates, the long-term flag.
#[derive(Debug, Clone, Copy)]
struct Tag {
    home: Home,
    /// Records left before an injected panic.
    fail_after: Option<u64>,
}

impl KeyedProcessFunction<Plate, TrafficRecord, Tagged> for Tag {
    type State = LongTermTracker;

    #[inline]
    fn process(
        &mut self,
        _plate: &Plate,
        tracker: &mut KeyedState<'_, Plate, LongTermTracker>,
        record: TrafficRecord,
        out: &mut Collector<'_, Tagged>,
    ) -> Result<(), OperatorError> {
        if let Some(left) = &mut self.fail_after {
            assert!(*left > 0, "injected failure (--fail-after)");
            *left -= 1;
        }
        // Local plates never touch their state: only non-local plates can be long-term.
        out.collect(Tagged::new(record, &self.home, |_, day| {
            tracker.get_or_default().observe(day)
        }));
        Ok(())
    }
}

/// Pre-aggregates the counts of one subtask and emits them at end of input.
#[derive(Debug, Default)]
struct CountOrigins(OriginCounts);

impl Operator<Tagged, OriginCounts> for CountOrigins {
    #[inline]
    fn process(
        &mut self,
        tagged: Tagged,
        _out: &mut Collector<'_, OriginCounts>,
    ) -> Result<(), OperatorError> {
        self.0.add(&tagged);
        Ok(())
    }

    fn on_end_of_input(
        &mut self,
        out: &mut Collector<'_, OriginCounts>,
    ) -> Result<(), OperatorError> {
        out.collect(self.0);
        Ok(())
    }
}

/// Counts tagged records per origin and long-term flag in a window.
#[derive(Debug, Clone, Copy, Default)]
struct OriginWindow;

impl AggregateFunction<Tagged> for OriginWindow {
    type Acc = (u64, u64);
    type Out = (u64, u64);

    fn create(&self) -> (u64, u64) {
        (0, 0)
    }
    #[inline]
    fn add(&self, acc: &mut (u64, u64), tagged: &Tagged) {
        acc.0 += 1;
        acc.1 += u64::from(tagged.long_term);
    }
    fn merge(&self, acc: &mut (u64, u64), other: &(u64, u64)) {
        acc.0 += other.0;
        acc.1 += other.1;
    }
    fn result(&self, acc: &(u64, u64)) -> (u64, u64) {
        *acc
    }
}

/// Writes window results as they fire (a re-fire is a new line) and keeps each window's
/// last value; publishes them when the input ends.
struct WindowLines<R, L> {
    lines: JsonLinesWriter<L>,
    last: BTreeMap<(i64, usize), R>,
    line: fn(Window, usize, &R) -> L,
    slot: Arc<Mutex<BTreeMap<(i64, usize), R>>>,
    latency: Option<FlowLatency>,
}

/// Measures the result latency of flow windows at their sink.
struct FlowLatency {
    tally: Arc<Tally>,
    control: Arc<JobControl>,
    shift_ms: i64,
    histogram: Arc<Mutex<hdrhistogram::Histogram<u64>>>,
}

impl<R: Copy + Send + 'static, L: Serialize + Send + 'static> WindowLines<R, L> {
    fn write(&mut self, window: Window, key: usize, value: R) -> Result<(), OperatorError> {
        self.lines.write_line(&(self.line)(window, key, &value))?;
        let first = self.last.insert((window.start, key), value).is_none();
        if first
            && let Some(latency) = &self.latency
            && let Some(passed) = latency.tally.all_passed(window.end + latency.shift_ms)
        {
            let now = latency.control.now_ns();
            latency
                .histogram
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .saturating_record(now.saturating_sub(passed).max(1));
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), OperatorError> {
        self.lines.flush()?;
        *self.slot.lock().unwrap_or_else(|p| p.into_inner()) = std::mem::take(&mut self.last);
        Ok(())
    }
}

impl Sink<WindowResult<(), u64>> for WindowLines<u64, FlowCount> {
    fn write(&mut self, result: WindowResult<(), u64>) -> Result<(), OperatorError> {
        WindowLines::write(self, result.window, 0, result.value)
    }
    fn finish(&mut self) -> Result<(), OperatorError> {
        WindowLines::finish(self)
    }
}

impl Sink<WindowResult<Origin, (u64, u64)>> for WindowLines<(u64, u64), OriginWindowCount> {
    fn write(&mut self, result: WindowResult<Origin, (u64, u64)>) -> Result<(), OperatorError> {
        WindowLines::write(self, result.window, result.key.index(), result.value)
    }
    fn finish(&mut self) -> Result<(), OperatorError> {
        WindowLines::finish(self)
    }
}

/// Merges the partial counts and writes `origins.jsonl` when the input ends.
struct OriginsSink {
    path: PathBuf,
    total: OriginCounts,
    result: Arc<Mutex<OriginCounts>>,
}

impl Sink<OriginCounts> for OriginsSink {
    fn write(&mut self, partial: OriginCounts) -> Result<(), OperatorError> {
        self.total.merge(&partial);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), OperatorError> {
        std::fs::write(&self.path, self.total.to_jsonl())
            .map_err(|e| format!("writing {}: {e}", self.path.display()))?;
        *self.result.lock().unwrap_or_else(|p| p.into_inner()) = self.total;
        Ok(())
    }
}

/// Creates `dir` if needed, with a message that names it.
pub fn create_output_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

/// Runs the job on weir. `started` receives the job's control block (to request a stop) and
/// the live tally (for progress) before the job starts.
pub fn run(
    job: &TrafficJob,
    started: impl FnOnce(Arc<JobControl>, Arc<Tally>),
) -> Result<TrafficRun, String> {
    create_output_dir(&job.output)?;
    let file = |name: &str| JsonLinesFile::create(job.output.join(name)).map_err(|e| e.to_string());
    let (rejected, late) = (file("rejected.jsonl")?, file("late.jsonl")?);
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
            Arc::new(move |_subtask| {
                let mut lines = rejected.writer::<QuarantinedRecord>();
                let quarantined = Arc::clone(&quarantined);
                Box::new(move |record: TrafficRecord, quarantine: Quarantine| {
                    quarantined.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = lines
                        .write_line(&QuarantinedRecord::new(&record, &quarantine))
                        .and_then(|()| lines.flush())
                    {
                        eprintln!("weir: could not write a quarantined record: {e}");
                    }
                })
            })
        }),
    };
    let lateness_ms = et.allowed_lateness.as_millis() as i64;
    let late_output = |output: &'static str, counter: &Arc<AtomicU64>| {
        let (late, counter) = (Arc::clone(&late), Arc::clone(counter));
        let factory: weir_core::window::LateOutput<Tagged> = Arc::new(move |_subtask| {
            let mut lines = late.writer::<LateRecord>();
            let counter = Arc::clone(&counter);
            Box::new(move |tagged: &Tagged, window: Window| {
                counter.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = lines
                    .write_line(&LateRecord::new(output, &tagged.record, window))
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
    let origins_path = job.output.join("origins.jsonl");
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
                boundary_shift_ms: et.out_of_orderness.as_millis() as i64,
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
        let shift_ms = et.out_of_orderness.as_millis() as i64;
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
        records_quarantined: quarantined.load(Ordering::Relaxed),
        records_late_dropped: late_flow.load(Ordering::Relaxed),
        records_late_dropped_origin_5m: late_origin.load(Ordering::Relaxed),
        counts,
        windows,
        result_latency_ns,
        result,
    })
}
