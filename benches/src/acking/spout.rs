//! The spout: reads partitions, guards timestamps, emits tuples with random ids, tracks its
//! pending trees, replays the ones that time out.

use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use rtrb::{Consumer, Producer};
use weir_core::time::TimestampGuard;
use weir_core::time::arith::millis;
use weir_core::time::guard::Offer;

use super::acker::AckerMsg;
use super::pending::PendingTuples;
use super::topology::{Backoff, Msg, push_waiting, route};
use super::{AckingJob, AckingRun};
use crate::traffic::input::{Line, PartitionReader};
use crate::traffic::record::TrafficRecord;

/// A spout tuple: the record, its tree's root id, its edge id and the spout's watermark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoutTuple {
    /// The record (its `at` is its source offset: partition and line).
    pub record: TrafficRecord,
    /// The tree's root id (the message id); 0 without acking.
    pub root: u64,
    /// The tuple's edge id; 0 without acking.
    pub edge: u64,
    /// The spout's watermark when it emitted the tuple.
    pub watermark: i64,
}

/// What a spout task counted.
#[derive(Debug, Default)]
pub(super) struct SpoutStats {
    records_in: u64,
    rejected: u64,
    quarantined: u64,
    acked: u64,
    replays: u64,
    peak_pending: usize,
}

impl SpoutStats {
    pub(super) fn add_to(&self, run: &mut AckingRun) {
        run.records_in += self.records_in;
        run.records_rejected += self.rejected;
        run.records_quarantined += self.quarantined;
        run.trees_acked += self.acked;
        run.replays += self.replays;
        run.peak_pending = run.peak_pending.max(self.peak_pending);
    }
}

struct Partition {
    reader: PartitionReader,
    guard: TimestampGuard<TrafficRecord>,
    max_ts: i64,
    ended: bool,
}

/// The spout's side of acking: its rings to and from the acker and its pending trees.
struct Acking {
    to_acker: Producer<AckerMsg>,
    completed: Consumer<u64>,
    pending: PendingTuples<TrafficRecord>,
    acked: u64,
}

impl Acking {
    /// Takes every completed root off the ring (`ack(msgId)`); whether there was one.
    fn drain(&mut self) -> bool {
        drain(&mut self.completed, &mut self.pending, &mut self.acked)
    }
}

/// [`Acking::drain`] on its parts, for use while its ring to the acker is borrowed.
fn drain(
    completed: &mut Consumer<u64>,
    pending: &mut PendingTuples<TrafficRecord>,
    acked: &mut u64,
) -> bool {
    let mut any = false;
    while let Ok(root) = completed.pop() {
        any = true;
        *acked += u64::from(pending.acked(root).is_some());
    }
    any
}

/// One spout task.
pub(super) struct Spout {
    task: u16,
    partitions: Vec<Partition>,
    /// Round-robin cursor over the partitions.
    next: usize,
    to_tags: Vec<Producer<Msg<SpoutTuple>>>,
    acking: Option<Acking>,
    rng: Pcg64Mcg,
    out_of_orderness_ms: i64,
    stats: SpoutStats,
    /// Reused buffers: released guard records, timed-out records.
    held: Vec<TrafficRecord>,
    replay: Vec<TrafficRecord>,
}

/// Records read from one partition before the spout turns to the next and to its acks.
const BATCH: usize = 64;

impl Spout {
    pub(super) fn new(
        job: &AckingJob,
        task: usize,
        readers: Vec<PartitionReader>,
        to_tags: Vec<Producer<Msg<SpoutTuple>>>,
        acker: Option<(Producer<AckerMsg>, Consumer<u64>)>,
        now: Instant,
    ) -> Self {
        Self {
            task: task as u16,
            partitions: readers
                .into_iter()
                .map(|reader| Partition {
                    reader,
                    guard: TimestampGuard::new(job.guard),
                    max_ts: i64::MIN,
                    ended: false,
                })
                .collect(),
            next: 0,
            to_tags,
            acking: acker.map(|(to_acker, completed)| Acking {
                to_acker,
                completed,
                pending: PendingTuples::new(job.max_spout_pending, job.message_timeout, now),
                acked: 0,
            }),
            rng: Pcg64Mcg::seed_from_u64(0x5707_u64 << 16 | task as u64),
            out_of_orderness_ms: millis(job.out_of_orderness),
            stats: SpoutStats::default(),
            held: Vec::new(),
            replay: Vec::new(),
        }
    }

    /// Runs the task: emits every record, then waits until every tree completed (replaying
    /// those that time out), then stops the downstream; after an input error it stops the
    /// downstream at once and returns the error.
    pub(super) fn run(mut self) -> Result<SpoutStats, String> {
        let result = self.emit_all();
        let flushed = result.is_ok();
        self.stop(flushed);
        let acked = self
            .acking
            .as_ref()
            .map_or(self.stats.records_in, |a| a.acked);
        self.stats.acked = acked;
        result.map(|()| self.stats)
    }

    fn emit_all(&mut self) -> Result<(), String> {
        let mut backoff = Backoff::default();
        let mut flushed = false;
        loop {
            let mut progress = self.acking.as_mut().is_some_and(Acking::drain);
            progress |= self.replay_timed_out();
            if self.partitions.iter().any(|p| !p.ended) {
                if !self.acking.as_ref().is_some_and(|a| a.pending.is_full()) {
                    self.read_batch()?;
                    progress = true;
                }
            } else {
                if !flushed {
                    self.broadcast(Msg::Flush);
                    flushed = true;
                }
                if self.acking.as_ref().is_none_or(|a| a.pending.is_empty()) {
                    return Ok(());
                }
            }
            if progress {
                backoff.reset();
            } else {
                backoff.snooze();
            }
        }
    }

    /// Reads up to [`BATCH`] lines of the next unended partition and emits its records,
    /// stopping early at max spout pending (which the guard's release of its warm-up records
    /// may overshoot by at most `weir_core::time::guard::WARMUP_RECORDS`).
    fn read_batch(&mut self) -> Result<(), String> {
        let n = self.partitions.len();
        let Some(at) = (0..n)
            .map(|i| (self.next + i) % n)
            .find(|&i| !self.partitions[i].ended)
        else {
            return Ok(());
        };
        self.next = (at + 1) % n;
        for _ in 0..BATCH {
            if self.acking.as_ref().is_some_and(|a| a.pending.is_full()) {
                break;
            }
            let partition = &mut self.partitions[at];
            let line = partition.reader.next_item().map_err(|e| e.to_string())?;
            let mut held = std::mem::take(&mut self.held);
            match line {
                Some(Line::Record(record)) => {
                    self.stats.records_in += 1;
                    match partition.guard.offer(record, record.ts_ms) {
                        Offer::Judged(record, _, verdict) => {
                            self.judged(at, record, verdict.is_some(), &mut held)
                        }
                        Offer::Held => {}
                        Offer::Released(records) => {
                            for (record, _, verdict) in records {
                                self.judged(at, record, verdict.is_some(), &mut held);
                            }
                        }
                    }
                }
                Some(Line::Rejected(_)) => {
                    self.stats.records_in += 1;
                    self.stats.rejected += 1;
                }
                Some(Line::Skipped) => {}
                None => {
                    for (record, _, verdict) in partition.guard.finish() {
                        self.judged(at, record, verdict.is_some(), &mut held);
                    }
                    self.partitions[at].ended = true;
                }
            }
            for record in held.drain(..) {
                self.emit(record);
            }
            self.held = held;
            if self.partitions[at].ended {
                break;
            }
        }
        Ok(())
    }

    /// A record the guard judged: quarantined, or accepted (moves its partition's highest
    /// timestamp and is queued in `held` for emission).
    fn judged(
        &mut self,
        at: usize,
        record: TrafficRecord,
        quarantined: bool,
        held: &mut Vec<TrafficRecord>,
    ) {
        if quarantined {
            self.stats.quarantined += 1;
            return;
        }
        let partition = &mut self.partitions[at];
        partition.max_ts = partition.max_ts.max(record.ts_ms);
        held.push(record);
    }

    /// The minimum over the partitions of the highest timestamp − out-of-orderness − 1 ms
    /// (an ended partition holds nothing back).
    fn watermark(&self) -> i64 {
        self.partitions
            .iter()
            .map(|p| match p.ended {
                true => i64::MAX,
                false => p
                    .max_ts
                    .saturating_sub(self.out_of_orderness_ms)
                    .saturating_sub(1),
            })
            .min()
            .unwrap_or(i64::MAX)
    }

    /// A fresh, nonzero random id (0 means "no tree").
    fn id(&mut self) -> u64 {
        loop {
            let id = self.rng.random::<u64>();
            if id != 0 {
                return id;
            }
        }
    }

    /// Emits `record` as the root of a new tree: registers it with the acker and in the
    /// pending trees, then sends it to its tag task.
    fn emit(&mut self, record: TrafficRecord) {
        let (root, edge) = match self.acking {
            Some(_) => (self.id(), self.id()),
            None => (0, 0),
        };
        if let Some(acking) = &mut self.acking {
            acking.pending.emitted(root, record);
            self.stats.peak_pending = self.stats.peak_pending.max(acking.pending.len());
            let init = AckerMsg::Init {
                root,
                value: edge,
                spout: self.task,
            };
            let Acking {
                to_acker,
                completed,
                pending,
                acked,
            } = acking;
            push_waiting(to_acker, init, || {
                drain(completed, pending, acked);
            });
        }
        let tuple = SpoutTuple {
            record,
            root,
            edge,
            watermark: self.watermark(),
        };
        let tag = route(&record.plate, self.to_tags.len());
        let ring = &mut self.to_tags[tag];
        let acking = &mut self.acking;
        push_waiting(ring, Msg::Tuple(tuple), || {
            if let Some(acking) = acking.as_mut() {
                acking.drain();
            }
        });
    }

    /// Re-emits, under new roots, the trees that timed out (`fail(msgId)`); whether any did.
    fn replay_timed_out(&mut self) -> bool {
        let Some(acking) = &mut self.acking else {
            return false;
        };
        let mut replay = std::mem::take(&mut self.replay);
        acking
            .pending
            .timed_out(Instant::now(), |_, record| replay.push(record));
        let any = !replay.is_empty();
        self.stats.replays += replay.len() as u64;
        for record in replay.drain(..) {
            self.emit(record);
        }
        self.replay = replay;
        any
    }

    fn broadcast(&mut self, msg: Msg<SpoutTuple>) {
        for ring in &mut self.to_tags {
            let acking = &mut self.acking;
            push_waiting(ring, msg, || {
                if let Some(acking) = acking.as_mut() {
                    acking.drain();
                }
            });
        }
    }

    /// Ends the downstream: `Flush` unless sent already, `Stop` to every tag task and to the
    /// acker. The ring of completed roots is dropped with `self`, which tells the acker.
    fn stop(&mut self, flushed: bool) {
        if !flushed {
            self.broadcast(Msg::Flush);
        }
        self.broadcast(Msg::Stop);
        if let Some(acking) = &mut self.acking {
            let Acking {
                to_acker,
                completed,
                pending,
                acked,
            } = acking;
            push_waiting(to_acker, AckerMsg::Stop, || {
                drain(completed, pending, acked);
            });
        }
    }
}
