//! The traffic job on timely dataflow 0.32, in process: the peer weir is compared against.
//!
//! Each worker reads the partitions `p` with `p % workers == index` and feeds their records,
//! in batches of [`READ_BATCH_LINES`], into a single epoch. Records are exchanged by plate to
//! a tagging operator that keeps each plate's [`LongTermTracker`] in a worker-local map and
//! pre-aggregates [`OriginCounts`] and the event-time windows' counts (in hash maps by window
//! start); when its input is exhausted it sends those counts, the windows' as a
//! [`WindowTotals`], to worker 0, which sums them. The windows are complete: nothing is sent
//! before the frontier is empty, so every tagged record is counted in its windows. Rejected
//! lines travel to the calling thread over a bounded channel and are handed to the caller
//! while the workers run.
//!
//! The per-plate answer does not depend on the worker count: a plate lives on one partition,
//! one worker reads that partition in order, and timely channels are FIFO between a pair of
//! workers, so every plate's records are tagged in partition order.

use std::hash::BuildHasher;
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rustc_hash::{FxBuildHasher, FxHashMap};
use timely::Config;
use timely::dataflow::InputHandle;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Input;
use timely::dataflow::operators::generic::operator::Operator;

use weir_core::time::guard::Offer;
use weir_core::time::{GuardConfig, TimestampGuard};

use crate::traffic::input::{Line, TrafficInput};
use crate::traffic::job::QuarantinedRecord;
use crate::traffic::parse::Rejection;
use crate::traffic::record::{Home, HomePrefix, Plate, TrafficRecord};
use crate::traffic::tag::{LongTermTracker, OriginCounts, Tagged};
use crate::traffic::windows::{FLOW_WINDOW_MS, ORIGIN_WINDOW_MS, WindowTotals, window_start};

/// Lines a worker reads before it hands the batch to the dataflow and steps it.
pub const READ_BATCH_LINES: usize = 1024;

/// Rejections in flight from the workers to the caller before the workers wait.
pub const REJECTION_QUEUE: usize = 1024;

/// What a run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelyOutcome {
    /// Data lines read (headers excluded): tagged plus rejected plus quarantined.
    pub records_in: u64,
    /// Lines rejected.
    pub records_rejected: u64,
    /// Records quarantined by the timestamp guard.
    pub records_quarantined: u64,
    /// Tagged records by origin.
    pub counts: OriginCounts,
    /// Tagged records by flow window and by origin window: complete, every tagged record
    /// counted (`windows.counted() == counts.total()`).
    pub windows: WindowTotals,
    /// From the start of the workers until the last of them finished.
    pub wall: Duration,
}

/// What a tagging operator sends worker 0 at the end of its input.
type Partial = (OriginCounts, WindowTotals);

/// One worker's window counts, in hash maps while records arrive (a lookup per record and
/// window, where a [`WindowTotals`] would walk a B-tree), sorted into a [`WindowTotals`] once.
#[derive(Debug, Default)]
struct WindowCounts {
    /// Records per flow window start.
    flow: FxHashMap<i64, u64>,
    /// Records per origin window start, by origin.
    origin: FxHashMap<i64, OriginCounts>,
}

impl WindowCounts {
    #[inline]
    fn add(&mut self, tagged: &Tagged) {
        let ts = tagged.record.ts_ms;
        *self
            .flow
            .entry(window_start(ts, FLOW_WINDOW_MS))
            .or_default() += 1;
        self.origin
            .entry(window_start(ts, ORIGIN_WINDOW_MS))
            .or_default()
            .add(tagged);
    }

    fn into_totals(self) -> WindowTotals {
        let origin = self.origin.into_iter().flat_map(|(start, counts)| {
            (0..counts.count.len())
                .filter(move |&i| counts.count[i] > 0)
                .map(move |i| ((start, i), (counts.count[i], counts.long_term[i])))
        });
        WindowTotals {
            flow: self.flow.into_iter().collect(),
            origin: origin.collect(),
        }
    }
}

/// What one worker read.
#[derive(Debug, Default)]
struct Tally {
    records_in: u64,
    records_rejected: u64,
    records_quarantined: u64,
}

/// A line the job did not count: malformed, or quarantined by the timestamp guard.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum Dropped {
    /// A malformed line.
    Rejected(Rejection),
    /// A record with an implausible timestamp.
    Quarantined(QuarantinedRecord),
}

/// Runs the traffic job on `workers` timely workers in this process.
///
/// `rejected` is called on the calling thread for every rejected line, while the job runs;
/// the workers wait when it falls [`REJECTION_QUEUE`] lines behind. An input that cannot be
/// read (a missing file, a read error) fails the run with the partition's name.
pub fn run(
    input: &TrafficInput,
    home: Home,
    workers: usize,
    guard: GuardConfig,
    mut dropped: impl FnMut(&Dropped),
) -> Result<TimelyOutcome, String> {
    if workers == 0 {
        return Err("the timely peer needs at least one worker".to_owned());
    }
    let input = Arc::new(input.clone());
    let total = Arc::new(Mutex::new(Partial::default()));
    let (rejections, received) = mpsc::sync_channel(REJECTION_QUEUE);
    let started = Instant::now();
    let guards = {
        let total = Arc::clone(&total);
        timely::execute(Config::process(workers), move |worker| {
            run_worker(worker, &input, home, guard, &total, rejections.clone())
        })?
    };
    // Ends once every worker has finished and dropped its sender.
    for line in received {
        dropped(&line);
    }
    let mut outcome = TimelyOutcome {
        records_in: 0,
        records_rejected: 0,
        records_quarantined: 0,
        counts: OriginCounts::default(),
        windows: WindowTotals::default(),
        wall: Duration::ZERO,
    };
    for result in guards.join() {
        let tally = result??;
        outcome.records_in += tally.records_in;
        outcome.records_rejected += tally.records_rejected;
        outcome.records_quarantined += tally.records_quarantined;
    }
    outcome.wall = started.elapsed();
    (outcome.counts, outcome.windows) =
        std::mem::take(&mut *total.lock().unwrap_or_else(PoisonError::into_inner));
    Ok(outcome)
}

/// The route of a record: bits of the plate's hash that the tagging operator's hash map
/// does not use (it takes the low bits for buckets and the top seven for tags), so one
/// worker's plates still spread over all of its buckets.
fn route(record: &TrafficRecord) -> u64 {
    FxBuildHasher.hash_one(record.plate) >> 32
}

/// Builds the dataflow on one worker, feeds it this worker's partitions and closes its input.
fn run_worker(
    worker: &mut timely::worker::Worker,
    input: &TrafficInput,
    home: Home,
    guard: GuardConfig,
    total: &Arc<Mutex<Partial>>,
    rejections: SyncSender<Dropped>,
) -> Result<Tally, String> {
    let mut records = InputHandle::new();
    let total = Arc::clone(total);
    worker.dataflow::<u64, _, _>(|scope| {
        scope
            .input_from(&mut records)
            .unary_frontier(Exchange::new(route), "TagByPlate", move |capability, _| {
                let mut capability = Some(capability);
                let mut trackers = FxHashMap::<Plate, LongTermTracker>::default();
                let mut counts = OriginCounts::default();
                let mut windows = WindowCounts::default();
                let home = HomePrefix::of(&home);
                move |(input, frontier), output| {
                    input.for_each(|_, batch| {
                        for record in batch.drain(..) {
                            let origin = home.origin(&record.plate);
                            let tagged = Tagged::with_origin(record, origin, |record, day| {
                                trackers.entry(record.plate).or_default().observe(day)
                            });
                            counts.add(&tagged);
                            windows.add(&tagged);
                        }
                    });
                    if frontier.is_empty()
                        && let Some(capability) = capability.take()
                    {
                        let windows = std::mem::take(&mut windows).into_totals();
                        output.session(&capability).give((counts, windows));
                    }
                }
            })
            .sink(
                Exchange::new(|_: &Partial| 0),
                "SumCounts",
                move |(input, _)| {
                    input.for_each(|_, counts| {
                        let mut total = total.lock().unwrap_or_else(PoisonError::into_inner);
                        for (worker_counts, worker_windows) in counts.drain(..) {
                            total.0.merge(&worker_counts);
                            total.1.merge(&worker_windows);
                        }
                    });
                },
            );
    });

    let mut tally = Tally::default();
    let mut batch: Vec<TrafficRecord> = Vec::with_capacity(READ_BATCH_LINES);
    let mut batch_lines = 0;
    let partitions = input.partitions();
    let send = |line: Dropped| {
        rejections
            .send(line)
            .map_err(|_| "the caller stopped taking rejections".to_owned())
    };
    for p in (worker.index()..partitions).step_by(worker.peers()) {
        let mut reader = input.open(p).map_err(|err| err.to_string())?;
        // The same guard as weir's sources, per partition, before anything else sees a record.
        let mut partition_guard = guard.is_on().then(|| TimestampGuard::new(guard));
        let mut judged = Vec::new();
        loop {
            let line = reader.next_item().map_err(|err| err.to_string())?;
            let ended = line.is_none();
            match (line, &mut partition_guard) {
                (None, Some(g)) => judged.extend(g.finish()),
                (None, None) => {}
                (Some(Line::Skipped), _) => {}
                (Some(Line::Rejected(rejection)), _) => {
                    tally.records_in += 1;
                    tally.records_rejected += 1;
                    send(Dropped::Rejected(*rejection))?;
                }
                (Some(Line::Record(record)), None) => {
                    tally.records_in += 1;
                    batch.push(record);
                }
                (Some(Line::Record(record)), Some(g)) => {
                    tally.records_in += 1;
                    match g.offer(record, record.ts_ms) {
                        Offer::Judged(record, ts, verdict) => judged.push((record, ts, verdict)),
                        Offer::Held => {}
                        Offer::Released(all) => judged.extend(all),
                    }
                }
            }
            for (record, _, verdict) in judged.drain(..) {
                match verdict {
                    None => batch.push(record),
                    Some(quarantine) => {
                        tally.records_quarantined += 1;
                        send(Dropped::Quarantined(QuarantinedRecord::new(
                            &record,
                            &quarantine,
                            input,
                        )))?;
                    }
                }
            }
            if ended {
                if let Some(warning) = reader.reject_warning() {
                    eprintln!("timely: warning: {warning}");
                }
                break;
            }
            batch_lines += 1;
            if batch_lines == READ_BATCH_LINES {
                batch_lines = 0;
                records.send_batch(&mut batch);
                batch.clear();
                worker.step();
            }
        }
    }
    records.send_batch(&mut batch);
    // Dropping the handle closes the input; timely runs the dataflow to completion after
    // this closure returns.
    records.close();
    Ok(tally)
}
