//! The traffic job on weir: read and parse (rejecting bad lines with file, line and reason),
//! key by plate, tag origin and long-term flag with per-plate state, pre-aggregate the counts
//! per subtask, and merge them into `origins.jsonl` at end of input.
//!
//! ```text
//! source: parse (p) --key_by(plate)--> tag -> count-origins (p) --rebalance--> origins (1)
//! ```

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use weir_core::error::OperatorError;
use weir_core::operator::{Collector, KeyedProcessFunction, KeyedState, Operator};
use weir_core::runtime::JobControl;
use weir_core::sink::{JsonLinesFile, JsonLinesWriter, Sink};
use weir_core::source::{PartitionReader as WeirReader, Read, Source};
use weir_core::{Job, JobResult, RuntimeConfig};

use super::input::{Line, PartitionReader, TrafficInput};
use super::parse::Rejection;
use super::record::{Home, Plate, TrafficRecord};
use super::tag::{LongTermTracker, OriginCounts, Tagged};

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
}

/// Lines read and rejected so far, shared by the job's readers.
#[derive(Debug, Default)]
pub struct Tally {
    lines: AtomicU64,
    rejected: AtomicU64,
}

impl Tally {
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
    /// Lines rejected into `rejected.jsonl`.
    pub records_rejected: u64,
    /// The counts written to `origins.jsonl`.
    pub counts: OriginCounts,
    /// The runtime's report.
    pub result: JobResult,
}

/// The traffic input as a weir source; rejected lines go to `rejected.jsonl`.
struct TrafficSource {
    input: TrafficInput,
    rejected: Arc<JsonLinesFile>,
    tally: Arc<Tally>,
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
            unpublished_lines: 0,
            unpublished_rejected: 0,
        }))
    }
}

struct TrafficReader {
    reader: PartitionReader,
    rejected: JsonLinesWriter<Rejection>,
    tally: Arc<Tally>,
    unpublished_lines: u64,
    unpublished_rejected: u64,
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

impl WeirReader<TrafficRecord> for TrafficReader {
    fn next(&mut self) -> Result<Read<TrafficRecord>, OperatorError> {
        loop {
            let line = self.reader.next_item()?;
            self.unpublished_lines += u64::from(line.is_some());
            if self.unpublished_lines >= PUBLISH_EVERY_LINES {
                self.publish();
            }
            match line {
                Some(Line::Record(record)) => return Ok(Read::Record(record)),
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
    let rejected =
        JsonLinesFile::create(job.output.join("rejected.jsonl")).map_err(|e| e.to_string())?;
    let tally = Arc::new(Tally::default());
    let counts = Arc::new(Mutex::new(OriginCounts::default()));
    let p = job.parallelism;

    let weir_job = Job::new(job.runtime.clone());
    let home = job.home;
    let fail_after = job.fail_after;
    let origins_path = job.output.join("origins.jsonl");
    let result_slot = Arc::clone(&counts);
    weir_job
        .source(
            "source: parse",
            p,
            TrafficSource {
                input: job.input.clone(),
                rejected,
                tally: Arc::clone(&tally),
            },
        )
        .key_by(|r: &TrafficRecord| r.plate)
        .process("tag", p, move || Tag { home, fail_after })
        .process("count-origins", CountOrigins::default)
        .sink("origins", 1, move |_| OriginsSink {
            path: origins_path.clone(),
            total: OriginCounts::default(),
            result: Arc::clone(&result_slot),
        });
    started(weir_job.control(), Arc::clone(&tally));
    let result = weir_job.execute().map_err(|e| e.to_string())?;
    let counts = *counts.lock().unwrap_or_else(|p| p.into_inner());
    Ok(TrafficRun {
        records_in: tally.lines(),
        records_rejected: tally.rejected(),
        counts,
        result,
    })
}
