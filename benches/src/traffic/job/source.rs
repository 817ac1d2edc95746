//! The job's source: files or generator as a weir source, with the tally of lines read and
//! rejected and the event-time progress behind the result latency.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use weir_core::error::OperatorError;
use weir_core::runtime::JobControl;
use weir_core::sink::{JsonLinesFile, JsonLinesWriter};
use weir_core::source::{PartitionReader as WeirReader, Read, Source};
use weir_core::time::arith::{distance_ms, tumbling_window};

use serde::Serialize;

use crate::traffic::input::{Line, PartitionReader, REJECT_WARNING_FRACTION, TrafficInput};
use crate::traffic::parse::Rejection;
use crate::traffic::record::TrafficRecord;
use crate::traffic::windows::FLOW_WINDOW_MS;

/// Lines a reader counts locally before it publishes them for the progress bar.
const PUBLISH_EVERY_LINES: u64 = 4096;

/// The longest jump of a partition's highest timestamp whose flow-window boundaries are logged
/// one by one: a day's (1,440 boundaries). A longer one (a bogus timestamp, quarantined
/// downstream of the reader) logs none.
const MAX_TRACKED_JUMP_MS: u64 = 86_400_000;

/// Rejected lines and skipped parts of oversized lines one call of `next` handles before
/// it returns `Pending`, so that the source loop sees a stop request even in an input of
/// nothing but bad lines or one endless line.
const DROPPED_PER_POLL: u32 = 1024;

/// Lines read and rejected so far, shared by the job's readers, and when event time passed
/// each flow window's end at every partition (for the result latency).
#[derive(Debug)]
pub struct Tally {
    lines: AtomicU64,
    rejected: AtomicU64,
    /// Per partition: (data lines, rejected lines).
    partitions: Box<[(AtomicU64, AtomicU64)]>,
    progress: Mutex<EventTimeProgress>,
}

/// One partition's data lines and rejected lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PartitionRejects {
    /// The input partition.
    pub partition: usize,
    /// Data lines read (header excluded).
    pub lines: u64,
    /// Lines rejected.
    pub rejected: u64,
}

impl PartitionRejects {
    /// Whether the partition rejected more than a tenth of its lines (it is warned about on
    /// stderr when it ends).
    pub fn too_many(&self) -> bool {
        self.rejected * REJECT_WARNING_FRACTION > self.lines
    }
}

/// When each partition's highest timestamp first passed each flow-window boundary.
#[derive(Debug)]
struct EventTimeProgress {
    partitions: usize,
    /// Boundary (window end + out-of-orderness) → (partitions that passed it, latest time).
    passed: BTreeMap<i64, (usize, u64)>,
}

impl Tally {
    pub(super) fn new(partitions: usize) -> Self {
        Self {
            lines: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            partitions: (0..partitions)
                .map(|_| (AtomicU64::new(0), AtomicU64::new(0)))
                .collect(),
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
    pub(super) fn all_passed(&self, boundary: i64) -> Option<u64> {
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

    /// Data lines and rejected lines of every partition (exact at the end).
    pub fn by_partition(&self) -> Vec<PartitionRejects> {
        self.partitions
            .iter()
            .enumerate()
            .map(|(partition, (lines, rejected))| PartitionRejects {
                partition,
                lines: lines.load(Ordering::Relaxed),
                rejected: rejected.load(Ordering::Relaxed),
            })
            .collect()
    }
}

/// The traffic input as a weir source; rejected lines go to `rejected.jsonl`.
pub(super) struct TrafficSource {
    pub(super) input: TrafficInput,
    pub(super) rejected: Arc<JsonLinesFile>,
    pub(super) tally: Arc<Tally>,
    pub(super) control: Arc<JobControl>,
    /// Event time that makes the watermark pass a flow window's end: end + out-of-orderness
    /// ([`weir_core::time::arith::fires_at`]).
    pub(super) boundary_shift_ms: i64,
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
        let reader = self.input.open_at(partition, offset)?;
        if !self.input.files().is_empty() {
            eprintln!("weir: reading {} (partition {partition})", reader.name());
        }
        Ok(Box::new(TrafficReader {
            reader,
            partition,
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
    partition: usize,
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
        let lines = std::mem::take(&mut self.unpublished_lines);
        let rejected = std::mem::take(&mut self.unpublished_rejected);
        self.tally.lines.fetch_add(lines, Ordering::Relaxed);
        self.tally.rejected.fetch_add(rejected, Ordering::Relaxed);
        if let Some((p_lines, p_rejected)) = self.tally.partitions.get(self.partition) {
            p_lines.fetch_add(lines, Ordering::Relaxed);
            p_rejected.fetch_add(rejected, Ordering::Relaxed);
        }
    }
}

impl TrafficReader {
    /// Records when this partition's highest timestamp passes flow-window boundaries (one
    /// comparison per record; a lock only when a minute of event time has passed). The
    /// boundaries are the flow windows' ends shifted by the out-of-orderness, so the first
    /// one above `ts` is the end of its window aligned to that shift (clamped to `i64::MAX`).
    #[inline]
    fn track_event_time(&mut self, ts: i64) {
        let boundary_of = |ts: i64| tumbling_window(ts, FLOW_WINDOW_MS, self.boundary_shift_ms).end;
        match self.next_boundary {
            None => self.next_boundary = Some(boundary_of(ts)),
            Some(next) if ts >= next => {
                let upto = boundary_of(ts);
                if distance_ms(upto, next) <= MAX_TRACKED_JUMP_MS {
                    let passed =
                        std::iter::successors(Some(next), |b| b.checked_add(FLOW_WINDOW_MS))
                            .take_while(|b| *b < upto);
                    self.tally.passed(passed, self.control.now_ns());
                }
                self.next_boundary = Some(upto);
            }
            Some(_) => {}
        }
    }
}

impl WeirReader<TrafficRecord> for TrafficReader {
    /// The next record; `Pending` after [`DROPPED_PER_POLL`] rejected lines or skipped parts
    /// of an oversized line without a record, so the caller can look at stop requests.
    fn next(&mut self) -> Result<Read<TrafficRecord>, OperatorError> {
        for _ in 0..DROPPED_PER_POLL {
            let line = self.reader.next_item()?;
            self.unpublished_lines +=
                u64::from(matches!(line, Some(Line::Record(_) | Line::Rejected(_))));
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
                Some(Line::Skipped) => {}
                None => {
                    self.publish();
                    self.rejected.flush()?;
                    if let Some(warning) = self.reader.reject_warning() {
                        eprintln!("weir: warning: {warning}");
                    }
                    return Ok(Read::End);
                }
            }
        }
        Ok(Read::Pending)
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
