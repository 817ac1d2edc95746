//! The job's source: files or generator as a weir source, with the tally of lines read and
//! rejected and the event-time progress behind the result latency.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use weir_core::checkpoint::{StateReader, StateWriter};
use weir_core::error::OperatorError;
use weir_core::runtime::JobControl;
use weir_core::sink::{LineWriter, OutputFile};
use weir_core::source::{BatchEnd, PartitionReader as WeirReader, Read, Source, read_batch};
use weir_core::time::arith::{distance_ms, tumbling_window};

use rustc_hash::FxHashMap;
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
///
/// Each partition's counts are its reader's totals at its position, stored (not added) by the
/// one reader of the partition: a reader restored from a checkpoint starts from the totals at
/// the checkpoint, so lines read again after a restart are counted once.
#[derive(Debug)]
pub struct Tally {
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
    /// Hashed: it is only ever looked up by boundary, once per window's first result, on the
    /// sink's way to writing it.
    passed: FxHashMap<i64, (usize, u64)>,
}

impl Tally {
    pub(super) fn new(partitions: usize) -> Self {
        Self {
            partitions: (0..partitions)
                .map(|_| (AtomicU64::new(0), AtomicU64::new(0)))
                .collect(),
            progress: Mutex::new(EventTimeProgress {
                partitions,
                passed: FxHashMap::default(),
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

    /// When every partition had passed `boundary`, if they all have, for the window's first
    /// line: the boundary is forgotten when asked for, so a later line of the window (a refire)
    /// finds nothing and is not measured, and the log holds only boundaries whose windows
    /// have not fired yet (or never will: a minute without records leaves one small entry).
    /// A partition that passes a boundary after its window's first line (it was idle, so the
    /// watermark went on without it) leaves an entry that never completes.
    pub(super) fn first_result(&self, boundary: i64) -> Option<u64> {
        let mut progress = self.progress.lock().unwrap_or_else(|p| p.into_inner());
        let partitions = progress.partitions;
        let (passed, at) = progress.passed.remove(&boundary)?;
        (passed == partitions).then_some(at)
    }

    /// Data lines read so far (published every few thousand lines, exact at the end).
    pub fn lines(&self) -> u64 {
        self.partitions
            .iter()
            .map(|(lines, _)| lines.load(Ordering::Relaxed))
            .sum()
    }

    /// Lines rejected so far.
    pub fn rejected(&self) -> u64 {
        self.partitions
            .iter()
            .map(|(_, rejected)| rejected.load(Ordering::Relaxed))
            .sum()
    }

    /// Partition `partition`'s totals are now `counts` (data lines, rejected lines).
    fn store(&self, partition: usize, counts: Counts) {
        if let Some((lines, rejected)) = self.partitions.get(partition) {
            lines.store(counts.lines, Ordering::Relaxed);
            rejected.store(counts.rejected, Ordering::Relaxed);
        }
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
    pub(super) rejected: OutputFile,
    pub(super) tally: Arc<Tally>,
    pub(super) control: Arc<JobControl>,
    /// Event time that makes the watermark pass a flow window's end: end + out-of-orderness
    /// ([`weir_core::time::arith::fires_at`]).
    pub(super) boundary_shift_ms: i64,
    /// Records per second each partition reads at most (`--rate` over the partitions).
    pub(super) rate_per_partition: Option<f64>,
}

/// A reader's totals at its position: its [`WeirReader::state`] with the position.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    lines: u64,
    rejected: u64,
}

impl TrafficSource {
    fn reader(
        &self,
        partition: usize,
        offset: u64,
        restored: Option<(u64, Counts)>,
    ) -> Result<Box<dyn WeirReader<TrafficRecord>>, OperatorError> {
        let reader = self.input.open_at(partition, offset)?;
        if !self.input.files().is_empty() {
            eprintln!("weir: reading {} (partition {partition})", reader.name());
        }
        let (accounted_until, counts) = restored.unwrap_or((0, Counts::default()));
        self.tally.store(partition, counts);
        Ok(Box::new(TrafficReader {
            reader,
            partition,
            rejected: self.rejected.writer(partition)?,
            tally: Arc::clone(&self.tally),
            control: Arc::clone(&self.control),
            counts,
            unpublished: 0,
            accounted_until,
            boundary_shift_ms: self.boundary_shift_ms,
            next_boundary: None,
            in_batch: false,
            batch_passed: Vec::new(),
            batch_passed_ns: 0,
            pace: self.rate_per_partition.map(Pace::new),
            dropped_pending: false,
        }))
    }
}

/// How much of the rate a paced reader releases at a time: the records of 40 µs (64 at 1.6 M
/// records/s per partition), at least one. A source that polls (a Kafka fetch) hands over what
/// arrived since its last poll, many records at once at a high rate; released one at a time,
/// every turn of the source task found a few records, pushed them as a batch and polled again
/// at once, never sleeping: at half the maximum rate the job took 2.3x the CPU of the same
/// records read unthrottled, in steps 1.5x (`results/2026-12-11-input-shapes/`). After a step
/// the reader says when the next is due ([`pending_until`](WeirReader::pending_until)) and the
/// source sleeps until then; sleeping until its next duty instead (up to 1 ms), the records due
/// meanwhile came as a burst, and the p99 latency rose (1.60 ms against 0.82 when told, 1.05
/// released one at a time, in one set of 11 interleaved rounds).
const PACE_STEP: Duration = Duration::from_micros(40);

/// Paces a reader at a fixed rate (`--rate`), in steps of [`PACE_STEP`]: ahead of it, the
/// reader reports `Pending`.
#[derive(Debug)]
struct Pace {
    start: Instant,
    per_s: f64,
    read: u64,
    /// Records per step.
    step: u64,
    /// Records the rate allowed at the last look at the clock, rounded down to whole steps:
    /// until `read` reaches it, one more record is not ahead, and the clock is not read again.
    allowed: u64,
}

impl Pace {
    /// Paces `per_s` records per second from now.
    fn new(per_s: f64) -> Self {
        Self {
            start: Instant::now(),
            per_s,
            read: 0,
            step: ((per_s * PACE_STEP.as_secs_f64()).round() as u64).max(1),
            allowed: 0,
        }
    }

    /// Whether one more record now would read faster than the rate. Reads the clock only once
    /// the records allowed at the last reading are read.
    fn ahead(&mut self) -> bool {
        self.read >= self.allowed && self.ahead_after(self.start.elapsed())
    }

    /// When the step after the records allowed at the last look at the clock is due.
    fn next_step_at(&self) -> Instant {
        self.start + Duration::from_secs_f64((self.allowed + self.step) as f64 / self.per_s)
    }

    /// [`ahead`](Self::ahead) once `elapsed` has passed since the start, the allowance read.
    fn ahead_after(&mut self, elapsed: Duration) -> bool {
        let due = (elapsed.as_secs_f64() * self.per_s) as u64;
        self.allowed = due / self.step * self.step;
        self.read >= self.allowed
    }
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
        self.reader(partition, offset, None)
    }

    /// Reopens at `offset` with the totals the reader had at its own position then (which is
    /// past `offset` when the guard held records): lines up to that position were counted
    /// and rejected already, so they are read again without either.
    fn restore(
        &self,
        partition: usize,
        offset: u64,
        state: &[u8],
    ) -> Result<Box<dyn WeirReader<TrafficRecord>>, OperatorError> {
        let (position, counts) = decode_reader_state(partition, state)?;
        if position < offset {
            return Err(format!(
                "the state of partition {partition}'s reader is behind its resume offset (position {position}, offset {offset})"
            )
            .into());
        }
        self.reader(partition, offset, Some((position, counts)))
    }

    /// An ended partition keeps its totals in the tally.
    fn restore_ended(&self, partition: usize, state: &[u8]) -> Result<(), OperatorError> {
        let (_, counts) = decode_reader_state(partition, state)?;
        self.tally.store(partition, counts);
        Ok(())
    }
}

/// A reader's state as [`TrafficReader::state`] wrote it: its position and its totals there.
fn decode_reader_state(partition: usize, state: &[u8]) -> Result<(u64, Counts), String> {
    let decode = |e| format!("the state of partition {partition}'s reader does not decode: {e}");
    let mut r = StateReader::new(state);
    let position = r.u64().map_err(decode)?;
    let counts = Counts {
        lines: r.u64().map_err(decode)?,
        rejected: r.u64().map_err(decode)?,
    };
    if !r.is_empty() {
        return Err(format!(
            "the state of partition {partition}'s reader has trailing bytes"
        ));
    }
    Ok((position, counts))
}

struct TrafficReader {
    reader: PartitionReader,
    partition: usize,
    rejected: LineWriter<Rejection>,
    tally: Arc<Tally>,
    control: Arc<JobControl>,
    /// Data and rejected lines up to the reader's position, restored ones included.
    counts: Counts,
    /// Lines counted since the tally was last told.
    unpublished: u64,
    /// Lines ending at or before this offset were counted (and rejected) before a restore;
    /// 0 once passed (or without a restore).
    accounted_until: u64,
    boundary_shift_ms: i64,
    /// The next flow-window boundary this partition's highest timestamp has not passed.
    next_boundary: Option<i64>,
    /// Whether a batch is being read ([`next_batch`](WeirReader::next_batch)): the boundaries
    /// passed in it then wait in `batch_passed`, with the time the first of them was passed
    /// in `batch_passed_ns`, and are told to the tally once at the batch's end (one lock and
    /// one clock read per batch, not per boundary; a boundary passed later in the batch is
    /// stamped with the first one's time, so its latency reads at most a batch's reading time
    /// longer). Outside a batch a boundary is told at once.
    in_batch: bool,
    batch_passed: Vec<i64>,
    batch_passed_ns: u64,
    pace: Option<Pace>,
    /// Whether the last `Pending` came after [`DROPPED_PER_POLL`] dropped lines (more is to
    /// be read at once), not from the pace. Read only after a `Pending`.
    dropped_pending: bool,
}

impl TrafficReader {
    fn publish(&mut self) {
        self.unpublished = 0;
        self.tally.store(self.partition, self.counts);
    }
}

impl TrafficReader {
    /// Records when this partition's highest timestamp passes flow-window boundaries (one
    /// comparison per record; a lock only when a minute of event time has passed). The
    /// boundaries are the flow windows' ends shifted by the out-of-orderness, so the first
    /// one above `ts` is the end of its window aligned to that shift (clamped to `i64::MAX`).
    #[inline(always)]
    fn track_event_time(&mut self, ts: i64) {
        match self.next_boundary {
            Some(next) if ts < next => {}
            _ => self.pass_boundaries(ts),
        }
    }

    /// [`track_event_time`](Self::track_event_time) once `ts` reached the next boundary (or
    /// at the first record): out of line, about once a minute of event time.
    #[inline(never)]
    fn pass_boundaries(&mut self, ts: i64) {
        let upto = tumbling_window(ts, FLOW_WINDOW_MS, self.boundary_shift_ms).end;
        if let Some(next) = self.next_boundary
            && distance_ms(upto, next) <= MAX_TRACKED_JUMP_MS
        {
            let passed = std::iter::successors(Some(next), |b| b.checked_add(FLOW_WINDOW_MS))
                .take_while(|b| *b < upto);
            if !self.in_batch {
                self.tally.passed(passed, self.control.now_ns());
            } else {
                if self.batch_passed.is_empty() {
                    self.batch_passed_ns = self.control.now_ns();
                }
                self.batch_passed.extend(passed);
            }
        }
        self.next_boundary = Some(upto);
    }
}

impl WeirReader<TrafficRecord> for TrafficReader {
    /// The next record; `Pending` after [`DROPPED_PER_POLL`] rejected lines or skipped parts
    /// of an oversized line without a record, so the caller can look at stop requests.
    /// Inlined into [`next_batch`](WeirReader::next_batch), where a record goes from the
    /// parser straight into the batch.
    #[inline(always)]
    fn next(&mut self) -> Result<Read<TrafficRecord>, OperatorError> {
        if let Some(pace) = &mut self.pace {
            if pace.ahead() {
                self.dropped_pending = false;
                return Ok(Read::Pending);
            }
            pace.read += 1;
        }
        for _ in 0..DROPPED_PER_POLL {
            let line = self.reader.next_item()?;
            // Read again after a restore: counted, and rejected, before the failure.
            // Zero once the reader passed its restored position: one compare per line after.
            let accounted =
                self.accounted_until != 0 && self.reader.offset() <= self.accounted_until;
            if !accounted {
                self.accounted_until = 0;
            }
            if !accounted && matches!(line, Some(Line::Record(_) | Line::Rejected(_))) {
                self.counts.lines += 1;
                self.unpublished += 1;
                if self.unpublished >= PUBLISH_EVERY_LINES {
                    self.publish();
                }
            }
            match line {
                Some(Line::Record(record)) => {
                    self.track_event_time(record.ts_ms);
                    return Ok(Read::Record(record));
                }
                Some(Line::Rejected(rejection)) if !accounted => {
                    self.counts.rejected += 1;
                    self.rejected.write_line(&rejection)?;
                }
                Some(Line::Rejected(_) | Line::Skipped) => {}
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
        self.dropped_pending = true;
        Ok(Read::Pending)
    }

    /// The records of [`next`](Self::next), with the flow-window boundaries they pass told
    /// to the tally once, at the end (before the source task sees the records, so before any
    /// watermark they move).
    fn next_batch(
        &mut self,
        out: &mut Vec<TrafficRecord>,
        max: usize,
    ) -> Result<BatchEnd, OperatorError> {
        self.in_batch = true;
        let end = read_batch(out, max, || self.next());
        self.in_batch = false;
        if !self.batch_passed.is_empty() {
            self.tally
                .passed(self.batch_passed.drain(..), self.batch_passed_ns);
        }
        end
    }

    /// Now after [`DROPPED_PER_POLL`] dropped lines (a stretch of bad lines is read on without
    /// the source's pause: 2 M of them took 2.8 s, 2 s of it pauses); when the pace allows its
    /// next step after a `Pending` of the pace.
    fn pending_until(&self) -> Option<Instant> {
        if self.dropped_pending {
            return Some(Instant::now());
        }
        self.pace.as_ref().map(Pace::next_step_at)
    }

    fn offset(&self) -> u64 {
        self.reader.offset()
    }

    /// The position and the totals there.
    fn state(&self) -> Vec<u8> {
        let mut w = StateWriter::new();
        w.u64(self.reader.offset())
            .u64(self.counts.lines)
            .u64(self.counts.rejected);
        w.finish()
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use weir_core::runtime::JobControl;
    use weir_core::sink::JobOutputs;
    use weir_core::source::{BatchEnd, Read, Source};

    use super::{Tally, TrafficSource};
    use crate::traffic::input::TrafficInput;
    use crate::traffic::windows::FLOW_WINDOW_MS;

    /// A pace releases whole steps of its rate, never more than the rate allows, and at a low
    /// rate a record at a time.
    #[test]
    fn a_pace_releases_its_rate_in_steps() {
        let mut pace = super::Pace::new(1_600_000.0);
        assert_eq!(pace.step, 64);
        let us = Duration::from_micros;
        // 62 records due after 39 µs: not a whole step yet.
        assert!(pace.ahead_after(us(39)));
        // 65 due after 41 µs: the step, and nothing past it.
        assert!(!pace.ahead_after(us(41)));
        assert_eq!(pace.allowed, 64);
        pace.read = 64;
        assert!(pace.ahead_after(us(79)));
        // 160 due after 100 µs: two whole steps.
        assert!(!pace.ahead_after(us(100)));
        assert_eq!(pace.allowed, 128);
        // The third step is due at 192 records: 120 µs.
        assert_eq!(pace.next_step_at() - pace.start, us(120));
        let mut slow = super::Pace::new(1_000.0);
        assert_eq!(slow.step, 1);
        assert!(!slow.ahead_after(Duration::from_micros(2_500)));
        assert_eq!(slow.allowed, 2);
    }

    /// A reader that stops for a look at stop requests in a stretch of bad lines says it can
    /// be read on at once; a paced one, ahead of its rate, says when its next step is due.
    #[test]
    fn a_reader_says_when_it_can_be_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("part-0.csv");
        let bad = "x\n".repeat(super::DROPPED_PER_POLL as usize + 10);
        std::fs::write(
            &csv,
            format!("ts_ms,plate,checkpoint_id\n{bad}1772409600000,浙A12345,7\n"),
        )
        .unwrap();
        let input = TrafficInput::from_path(&csv).unwrap();
        std::fs::create_dir(dir.path().join("out")).unwrap();
        let outputs = JobOutputs::open(dir.path().join("out"), false).unwrap();
        let source = |rate_per_partition| TrafficSource {
            input: input.clone(),
            rejected: outputs.file("rejected.jsonl").unwrap(),
            tally: Arc::new(Tally::new(1)),
            control: Arc::new(JobControl::new()),
            boundary_shift_ms: 5_000,
            rate_per_partition,
        };
        let mut reader = source(None).open(0, 0).unwrap();
        assert!(matches!(reader.next().unwrap(), Read::Pending));
        let at = reader.pending_until().expect("a reader in bad lines knows");
        assert!(at <= std::time::Instant::now(), "at once");
        assert!(matches!(reader.next().unwrap(), Read::Record(_)));
        assert!(matches!(reader.next().unwrap(), Read::End));
        // One record a second: the first is due after a second.
        let started = std::time::Instant::now();
        let mut paced = source(Some(1.0)).open(0, 0).unwrap();
        assert!(matches!(paced.next().unwrap(), Read::Pending));
        let due = paced.pending_until().expect("a paced reader knows");
        assert!(due > started && due <= std::time::Instant::now() + Duration::from_secs(1));
    }

    /// Every (boundary, partitions that passed it) a tally holds, sorted.
    fn passed(tally: &Tally) -> Vec<(i64, usize)> {
        let progress = tally.progress.lock().unwrap();
        let mut passed: Vec<_> = progress.passed.iter().map(|(&b, &(n, _))| (b, n)).collect();
        passed.sort_unstable();
        passed
    }

    /// Reading in batches tells the tally the boundaries record-by-record reading does, each
    /// once; and nothing waits in the reader after a batch.
    #[test]
    fn batches_tell_the_tally_every_boundary_they_pass() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("part-0.csv");
        // Three records a minute for 40 minutes, some out of order by up to 90 s.
        let mut text = String::from("ts_ms,plate,checkpoint_id\n");
        for i in 0..120i64 {
            let ts = 1_772_409_600_000 + i * 20_000 - if i % 7 == 3 { 90_000 } else { 0 };
            text.push_str(&format!("{ts},浙A{:05},{}\n", i, i % 9));
        }
        std::fs::write(&csv, text).unwrap();
        let input = TrafficInput::from_path(&csv).unwrap();
        std::fs::create_dir(dir.path().join("out")).unwrap();
        let outputs = JobOutputs::open(dir.path().join("out"), false).unwrap();
        let run = |batch: Option<usize>| {
            let source = TrafficSource {
                input: input.clone(),
                rejected: outputs.file("rejected.jsonl").unwrap(),
                tally: Arc::new(Tally::new(1)),
                control: Arc::new(JobControl::new()),
                boundary_shift_ms: 5_000,
                rate_per_partition: None,
            };
            let mut reader = source.open(0, 0).unwrap();
            let mut records = Vec::new();
            match batch {
                None => {
                    while let Read::Record(r) = reader.next().unwrap() {
                        records.push(r);
                    }
                }
                Some(n) => while reader.next_batch(&mut records, n).unwrap() != BatchEnd::End {},
            }
            assert_eq!(records.len(), 120);
            let told = passed(&source.tally);
            drop(reader);
            assert_eq!(
                passed(&source.tally),
                told,
                "nothing was left in the reader"
            );
            told
        };
        let one_by_one = run(None);
        assert!(one_by_one.len() >= 35, "{} boundaries", one_by_one.len());
        assert!(
            one_by_one
                .iter()
                .all(|&(b, n)| n == 1 && (b - 5_000) % FLOW_WINDOW_MS == 0)
        );
        for n in [1, 2, 7, 64, 1024] {
            assert_eq!(run(Some(n)), one_by_one, "batches of {n}");
        }
    }

    /// A window's first line is measured once every partition passed its boundary, at the
    /// latest of their times; a refire is not measured, nor a first line before all passed.
    #[test]
    fn a_first_result_is_measured_once_all_partitions_passed() {
        let tally = Tally::new(2);
        tally.passed([60_000, 120_000].into_iter(), 5);
        tally.passed([60_000].into_iter(), 9);
        assert_eq!(
            tally.first_result(60_000),
            Some(9),
            "the later partition's time"
        );
        assert_eq!(tally.first_result(60_000), None, "a refire");
        assert_eq!(
            tally.first_result(120_000),
            None,
            "one partition has not passed it"
        );
        tally.passed([120_000].into_iter(), 11);
        assert_eq!(
            tally.first_result(120_000),
            None,
            "its first line was before: the refire is not measured"
        );
    }
}
