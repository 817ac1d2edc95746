//! The loop of a source subtask: read owned partitions round robin, assign timestamps, guard
//! them, push records down the chain, generate watermarks, keep the processing-time duties,
//! and end with the final watermark and end of input.
//!
//! In streaming execution a source behaves like an unbounded one even over bounded input: a
//! subtask whose partitions are exhausted (or that owns none) stays up, still keeping its
//! timers, until every subtask of the source has finished reading. A subtask without
//! partitions therefore holds the watermark back while the others read unless idleness is
//! configured, as in Flink. When the whole source has been read, every subtask sends the final
//! watermark; that of a subtask without partitions may overtake records still queued from the
//! others, which then arrive late downstream (and are counted as late, as any late record).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::TaskBody;
use super::checkpointing;
use super::control::TaskEnv;
use super::source_clock::{ClockOutput, SourceClock};
use super::ticker::Ticker;
use crate::checkpoint::{
    ChannelStateFeed, CheckpointId, Site, StateReader, StateWriter, TaskSnapshot,
};
use crate::codec::DecodeError;
use crate::error::{JobError, OperatorError, TaskError};
use crate::net::Flush;
use crate::operator::Output;
use crate::source::{BatchEnd, PartitionReader, Read, Source, owned_partitions};
use crate::time::deferred::DeferredWatermark;
use crate::time::guard::{GuardState, Offer};
use crate::time::{
    LatencyMarker, Quarantine, QuarantineHandler, TimestampGuard, Watermark, WatermarkEmit,
    WatermarkStrategy,
};

/// Records read from one partition before the loop turns to the next, and the most records
/// pushed down the chain as one batch.
pub(crate) const SOURCE_BATCH: usize = 256;

/// How long a source with nothing to read sleeps before polling again.
const PENDING_SLEEP: Duration = Duration::from_millis(1);

/// A partition reader with the partition's index among the subtask's own.
type LocalReader<T> = (usize, Box<dyn PartitionReader<T>>);

/// Where the subtask stands in one of its partitions: what a checkpoint records of it.
#[derive(Debug, Clone)]
struct PartitionPosition {
    /// The partition's index in the source.
    global: usize,
    /// The position after the last record pushed downstream (or held by the guard's warm-up:
    /// then `held_from`).
    offset: u64,
    /// Whether the partition is exhausted.
    ended: bool,
    /// The offset before the first record the guard's warm-up holds now.
    held_from: Option<u64>,
    /// The reader's own state ([`PartitionReader::state`]) at its current position, taken at
    /// each snapshot and when the partition ends.
    reader_state: Vec<u8>,
}

/// What a restored source subtask starts from, per local partition.
struct Restored {
    /// Per local partition: offset, ended, the reader's state.
    positions: Vec<Option<(u64, bool, Vec<u8>)>>,
    clocks: Vec<Option<super::source_clock::PartitionClockState>>,
    guards: Vec<Option<GuardState>>,
    emitted: Option<(Watermark, bool)>,
}

/// Event time of a source subtask: the strategy, per-partition guards, the clock.
struct EventTime<T> {
    strategy: WatermarkStrategy<T>,
    guards: Vec<Option<TimestampGuard<T>>>,
    clock: SourceClock,
    quarantine: Option<QuarantineHandler<T>>,
}

/// How many records a source gathers before it pushes them down the chain as one batch
/// ([`Output::push_batch`]): one call per batch and link instead of one per record.
///
/// A barrier is injected only between two pushes, so a push that blocks on backpressure holds
/// a triggered barrier back until the chain has taken the whole batch. The limit therefore
/// follows the backpressure, as TCP's congestion window does: it starts at one record,
/// doubles after each push that did not wait, up to [`SOURCE_BATCH`], and halves after each
/// push that did (the task's backpressured time grew). Under steady backpressure a blocked
/// push holds about what the free buffers take, so a barrier waits about as long as behind a
/// single record; without backpressure, batches are full.
#[derive(Debug)]
struct BatchLimit(usize);

impl BatchLimit {
    fn new() -> Self {
        Self(1)
    }

    /// Records to gather before the next push.
    #[inline]
    fn get(&self) -> usize {
        self.0
    }

    /// A push ended; `waited`: it was backpressured.
    #[inline]
    fn pushed(&mut self, waited: bool) {
        self.0 = if waited {
            (self.0 / 2).max(1)
        } else {
            (self.0 * 2).min(SOURCE_BATCH)
        };
    }
}

/// A source subtask.
pub(crate) struct SourceTask<T> {
    env: TaskEnv,
    name: String,
    source: Arc<dyn Source<Item = T>>,
    chain: Box<dyn Output<T>>,
    /// Records accepted and not yet pushed down the chain: pushed ([`SourceTask::push_batch`])
    /// when the limit is reached, at the end of each partition's turn, before a record the
    /// deferred watermark holds back, and before anything else goes down the chain (a
    /// periodic watermark, status, latency marker, barrier or flush), so the chain sees every
    /// element in the order it was produced. Empty between turns.
    batch: Vec<T>,
    /// The gathered records after a cut of `batch` ([`with_first`](Self::with_first)), kept
    /// here, empty, between cuts so that its capacity is reused: a punctuated source cuts its
    /// batch at every record behind the deferred watermark.
    rest: Vec<T>,
    /// The punctuated watermark due after `batch`, sent right after it: only ever set while
    /// `batch` holds records, so none is deferred between turns, across a barrier, a status,
    /// a latency marker or the end of input.
    deferred: DeferredWatermark,
    limit: BatchLimit,
    ticker: Ticker,
    event_time: Option<EventTime<T>>,
    /// Subtasks of this source still reading (in this attempt).
    running: Arc<AtomicUsize>,
    /// The source's uid: its state's name in checkpoints.
    uid: Arc<str>,
    positions: Vec<PartitionPosition>,
    /// The newest checkpoint whose barrier this subtask injected.
    injected: CheckpointId,
    /// The newest completed checkpoint the chain was told of.
    notified: CheckpointId,
    restored: Option<Restored>,
    /// The final watermark went out: no other may follow it (the task may still tick while
    /// it waits for the final checkpoint).
    final_watermark: bool,
}

impl<T: Send + 'static> SourceTask<T> {
    #[allow(
        clippy::too_many_arguments,
        reason = "assembled once, by the job builder"
    )]
    pub(crate) fn new(
        env: TaskEnv,
        name: String,
        source: Arc<dyn Source<Item = T>>,
        parallelism: usize,
        chain: Box<dyn Output<T>>,
        ticker: Ticker,
        strategy: Option<WatermarkStrategy<T>>,
        running: Arc<AtomicUsize>,
        uid: Arc<str>,
    ) -> Result<Self, JobError> {
        let owned = owned_partitions(source.partitions(), env.subtask(), parallelism);
        let partitions = owned.len();
        let quarantine = match strategy.as_ref().and_then(|s| s.quarantine.as_ref()) {
            Some(factory) => Some(factory(env.subtask()).map_err(|e| JobError::Operator {
                operator: name.clone(),
                subtask: env.subtask(),
                message: format!("opening the quarantine output: {e}"),
            })?),
            None => None,
        };
        let event_time = strategy.map(|strategy| EventTime {
            guards: (0..partitions)
                .map(|_| {
                    strategy
                        .guard
                        .is_on()
                        .then(|| TimestampGuard::new(strategy.guard))
                })
                .collect(),
            clock: SourceClock::new(&strategy, partitions),
            quarantine,
            strategy,
        });
        let positions = owned
            .iter()
            .map(|&global| PartitionPosition {
                global,
                offset: 0,
                ended: false,
                held_from: None,
                reader_state: Vec::new(),
            })
            .collect();
        let mut task = Self {
            env,
            name,
            source,
            chain,
            batch: Vec::with_capacity(SOURCE_BATCH),
            rest: Vec::with_capacity(SOURCE_BATCH),
            deferred: DeferredWatermark::default(),
            limit: BatchLimit::new(),
            ticker,
            event_time,
            running,
            uid,
            positions,
            injected: 0,
            notified: 0,
            restored: None,
            final_watermark: false,
        };
        if let Some(context) = task.env.restore_for(&task.uid)? {
            let restored = task
                .decode_restored(&context.operator_states)
                .map_err(|e| {
                    JobError::Checkpoint(format!(
                        "restoring source '{}': its state does not decode: {e}",
                        task.name
                    ))
                })?;
            task.injected = context.checkpoint;
            task.notified = context.checkpoint;
            task.apply_restored(restored);
        }
        Ok(task)
    }

    /// The source's state at a barrier: per partition its global id, offset and whether it
    /// ended, its clock and guard; then the watermark emitted last.
    fn write_state(&self) -> Vec<u8> {
        let mut w = StateWriter::new();
        w.u64(self.positions.len() as u64);
        for (p, pos) in self.positions.iter().enumerate() {
            w.u64(pos.global as u64)
                .u64(pos.held_from.unwrap_or(pos.offset))
                .bool(pos.ended)
                .bytes(&pos.reader_state);
            let (max_ts, idle) = self
                .event_time
                .as_ref()
                .map_or((None, false), |et| et.clock.partition_state(p));
            w.bool(max_ts.is_some()).i64(max_ts.unwrap_or(0)).bool(idle);
            let guard = self
                .event_time
                .as_ref()
                .and_then(|et| et.guards[p].as_ref())
                .map(TimestampGuard::state);
            let reference = guard.and_then(|g| g.reference);
            w.bool(reference.is_some())
                .i64(reference.unwrap_or(0))
                .u64(guard.map_or(0, |g| u64::from(g.ahead_in_a_row)));
        }
        let (emitted, idle) = self
            .event_time
            .as_ref()
            .map_or((Watermark::MIN, false), |et| et.clock.emitted_state());
        w.i64(emitted.0).bool(idle);
        w.finish()
    }

    /// Reads the state of every old subtask and keeps what concerns this subtask's
    /// partitions (a restore at another parallelism re-deals them, Flink's split
    /// reassignment). The watermark emitted last is restored only when the subtask owns
    /// exactly the partitions it owned before.
    fn decode_restored(&self, states: &[Vec<u8>]) -> Result<Restored, DecodeError> {
        let n = self.positions.len();
        let mut restored = Restored {
            positions: vec![None; n],
            clocks: vec![None; n],
            guards: vec![None; n],
            emitted: None,
        };
        for state in states {
            let mut r = StateReader::new(state);
            let count = r.u64()?;
            let mut mine = 0;
            for _ in 0..count {
                let global = r.u64()? as usize;
                let (offset, ended, reader_state) = (r.u64()?, r.bool()?, r.bytes()?.to_vec());
                let (has_max, max, idle) = (r.bool()?, r.i64()?, r.bool()?);
                let (has_ref, reference, ahead) = (r.bool()?, r.i64()?, r.u64()?);
                let Some(local) = self.positions.iter().position(|p| p.global == global) else {
                    continue;
                };
                mine += 1;
                restored.positions[local] = Some((offset, ended, reader_state));
                restored.clocks[local] = Some((has_max.then_some(max), idle));
                restored.guards[local] = Some(GuardState {
                    reference: has_ref.then_some(reference),
                    ahead_in_a_row: u32::try_from(ahead)
                        .map_err(|_| DecodeError::Invalid("guard run length"))?,
                });
            }
            let (emitted, idle) = (Watermark(r.i64()?), r.bool()?);
            if !r.is_empty() {
                return Err(DecodeError::Invalid("trailing bytes in a source state"));
            }
            if mine == n && count as usize == n {
                restored.emitted = Some((emitted, idle));
            }
        }
        Ok(restored)
    }

    fn apply_restored(&mut self, restored: Restored) {
        if let Some(et) = &mut self.event_time {
            for (p, clock) in restored.clocks.iter().enumerate() {
                if let Some(clock) = clock {
                    et.clock.restore_partition(p, *clock);
                }
            }
            for (p, guard) in restored.guards.iter().enumerate() {
                if let (Some(state), true) = (guard, et.strategy.guard.is_on()) {
                    et.guards[p] = Some(TimestampGuard::restored(et.strategy.guard, *state));
                }
            }
            if let Some(emitted) = restored.emitted {
                et.clock.restore_emitted(emitted);
            }
        }
        self.restored = Some(restored);
    }

    fn source_error(&self, error: OperatorError) -> TaskError {
        TaskError::Failed(JobError::Operator {
            operator: self.name.clone(),
            subtask: self.env.subtask(),
            message: error.to_string(),
        })
    }

    /// The readers of the owned partitions that have not ended, with their local index, each
    /// at its restored offset (0 without a restore).
    fn open_readers(&mut self) -> Result<Vec<LocalReader<T>>, TaskError> {
        let restored = self.restored.take();
        let mut readers = Vec::with_capacity(self.positions.len());
        for local in 0..self.positions.len() {
            let position = restored.as_ref().and_then(|r| r.positions[local].clone());
            let pos = &mut self.positions[local];
            let reader = match position {
                Some((offset, ended, state)) => {
                    pos.offset = offset;
                    pos.ended = ended;
                    pos.reader_state = state;
                    if ended {
                        self.source
                            .restore_ended(pos.global, &pos.reader_state)
                            .map_err(|e| self.source_error(e))?;
                        continue;
                    }
                    self.source.restore(pos.global, offset, &pos.reader_state)
                }
                None => self.source.open(pos.global, 0),
            }
            .map_err(|e| self.source_error(e))?;
            readers.push((local, reader));
        }
        Ok(readers)
    }

    /// Whether partition `p`'s guard is warming up (its next record may be held).
    #[inline]
    fn warming_up(&self, p: usize) -> bool {
        self.event_time
            .as_ref()
            .is_some_and(|et| et.guards[p].as_ref().is_some_and(|g| !g.is_warm()))
    }

    /// Injects the newest triggered barrier, if this subtask has not yet: the gathered batch
    /// goes down, the snapshot follows (the offsets after every record pushed so far), then
    /// the barrier goes down the chain.
    /// Takes part in a checkpoint if one was triggered; `readers` are the partitions still
    /// being read (their own state is taken now).
    fn maybe_checkpoint(&mut self, readers: &[LocalReader<T>]) -> Result<(), TaskError> {
        let Some(ck) = self.env.checkpointing() else {
            return Ok(());
        };
        self.notified =
            checkpointing::notify_completed(&self.env, self.notified, &mut *self.chain)?;
        let Some(mut barrier) = ck.signals.trigger_after(self.injected) else {
            return Ok(());
        };
        let mode = ck.mode;
        // The records read before the trigger go first: the offsets count them.
        self.push_batch()?;
        // A source has nothing to align: its barrier overtakes from the start when the mode
        // is unaligned, or when an aligned timeout already passed.
        barrier.unaligned = mode.is_unaligned_at(&barrier, crate::checkpoint::unix_ms());
        self.injected = barrier.checkpoint_id;
        for (local, reader) in readers {
            self.positions[*local].reader_state = reader.state();
        }
        let (uid, state) = (Arc::clone(&self.uid), self.write_state());
        let env = self.env.clone();
        let feed = checkpointing::snapshot(
            &env,
            barrier,
            0,
            &mut *self.chain,
            |snapshot: &mut TaskSnapshot| {
                snapshot.operator(&uid, 0..0).set_operator_state(state);
            },
        )?;
        // No input: the channel state (the writers' open buffers) is all sent.
        match feed.map(ChannelStateFeed::close) {
            Some(false) => Err(TaskError::Cancelled),
            _ => Ok(()),
        }
    }

    /// Whether a checkpoint newer than the last injected one was triggered: one atomic load,
    /// checked after every record (as Flink's mailbox runs a trigger between two records).
    #[inline]
    fn checkpoint_triggered(&self) -> bool {
        self.env
            .checkpointing()
            .is_some_and(|ck| ck.signals.triggered_after(self.injected))
    }

    /// Pushes the gathered records down the chain as one batch, then the watermark deferred
    /// after them, and adapts the batch limit to whether the push was backpressured. O(1)
    /// when nothing is gathered.
    #[inline]
    fn push_batch(&mut self) -> Result<(), TaskError> {
        if self.batch.is_empty() {
            debug_assert!(!self.deferred.is_deferred(), "deferred with no batch");
            return Ok(());
        }
        let backpressured = &self.env.metrics().backpressured_ns;
        let before = backpressured.get();
        self.chain.push_batch(&mut self.batch)?;
        self.limit.pushed(backpressured.get() != before);
        if let Some(watermark) = self.deferred.take() {
            self.send_watermark(watermark)?;
        }
        // In a task slot, the subtasks this batch went to (and the rest) run now.
        super::slot::yield_now();
        Ok(())
    }

    /// The records gathered from `start` on, just read from partition `p` in one batch, in
    /// order: each is judged by the partition's guard (warm), advances its clock and, under
    /// punctuated watermarks, may defer a watermark: what [`record`](Self::record) does for
    /// each, in place (a partition read outside its guard's warm-up). Three rare cases move records: a quarantined record leaves the batch
    /// for the quarantine; before a record at or behind the deferred watermark the records
    /// before it go down, then the watermark; after a record that changes the status, the
    /// records up to it go down, then the status.
    #[inline]
    fn admit_gathered(&mut self, p: usize, start: usize) -> Result<(), TaskError> {
        if self.event_time.is_none() {
            return Ok(());
        }
        let et = self.event_time.as_mut().expect("event time");
        if et.guards[p].is_none()
            && matches!(
                et.strategy.emit,
                WatermarkEmit::Periodic(_) | WatermarkEmit::EndOfInput
            )
        {
            // Without a guard or punctuation a record only raises its partition's highest
            // timestamp, and observing a run's highest is observing each in turn (the floor
            // it compares with moves only at a poll).
            let timestamp = &et.strategy.timestamp;
            if let Some(ts) = self.batch[start..].iter().map(|r| timestamp(r)).max() {
                et.clock.observe(p, ts);
            }
            return Ok(());
        }
        let mut i = start;
        while i < self.batch.len() {
            let et = self.event_time.as_mut().expect("event time");
            if et.guards[p].is_none() && matches!(et.strategy.emit, WatermarkEmit::Punctuated(None))
            {
                // The common case in one tight loop, up to the next record that cuts.
                let timestamp = &et.strategy.timestamp;
                let run = self.batch[i..].iter().map(|record| timestamp(record));
                if let Some(taken) = et.clock.punctuate_run(p, run, &mut self.deferred) {
                    i += taken;
                    if i == self.batch.len() {
                        break;
                    }
                }
            }
            let ts = (et.strategy.timestamp)(&self.batch[i]);
            if let Some(quarantine) = et.guards[p].as_mut().and_then(|guard| guard.judge(ts)) {
                let record = self.batch.remove(i);
                self.judged(p, record, ts, Some(quarantine))?;
                continue;
            }
            if self.deferred.holds_back(ts) {
                self.with_first(i, Self::push_batch)?;
                i = 0;
            }
            let et = self.event_time.as_mut().expect("event time");
            et.clock.observe(p, ts);
            let punctuate = match &et.strategy.emit {
                WatermarkEmit::Punctuated(None) => true,
                WatermarkEmit::Punctuated(Some(marks)) => marks(&self.batch[i]),
                _ => false,
            };
            i += 1;
            if punctuate {
                match et.clock.poll() {
                    ClockOutput {
                        status: None,
                        watermark,
                    } => {
                        if let Some(watermark) = watermark {
                            self.deferred.defer(watermark);
                        }
                    }
                    out => {
                        self.with_first(i, |task| task.send(out))?;
                        i = 0;
                    }
                }
            }
        }
        debug_assert!(
            !self.deferred.is_deferred()
                || self
                    .event_time
                    .as_ref()
                    .is_some_and(|et| matches!(et.strategy.emit, WatermarkEmit::Punctuated(_))),
            "only punctuated watermarks defer"
        );
        Ok(())
    }

    /// Runs `send` (which pushes what is gathered, and more) with only the first `n` gathered
    /// records gathered; the rest are gathered again after it. The rest is moved once, into
    /// `rest`, whose vector then becomes the batch (the pushed batch's vector, emptied,
    /// becomes `rest`): no allocation, and no second copy.
    fn with_first(
        &mut self,
        n: usize,
        send: impl FnOnce(&mut Self) -> Result<(), TaskError>,
    ) -> Result<(), TaskError> {
        debug_assert!(self.rest.is_empty(), "a cut is never nested");
        let mut rest = std::mem::take(&mut self.rest);
        rest.extend(self.batch.drain(n..));
        send(self)?;
        if self.batch.is_empty() {
            std::mem::swap(&mut self.batch, &mut rest);
        } else {
            self.batch.append(&mut rest);
        }
        self.rest = rest;
        Ok(())
    }

    /// Records were just read from `readers[i]`: a triggered barrier goes down after them
    /// (the records gathered so far first, then the snapshot of the offsets just past them:
    /// a barrier waits for no batch), or else a batch that reached its limit.
    #[inline]
    fn after_read(&mut self, readers: &[LocalReader<T>], i: usize) -> Result<(), TaskError> {
        if self.checkpoint_triggered() {
            self.positions[readers[i].0].offset = readers[i].1.offset();
            self.maybe_checkpoint(readers)
        } else if self.batch.len() >= self.limit.get() {
            self.push_batch()
        } else {
            Ok(())
        }
    }

    /// One record read from local partition `p`.
    #[inline]
    fn record(&mut self, p: usize, record: T) -> Result<(), TaskError> {
        let Some(et) = &mut self.event_time else {
            self.batch.push(record);
            return Ok(());
        };
        let ts = (et.strategy.timestamp)(&record);
        match et.guards[p].as_mut() {
            None => self.accept(p, record, ts),
            Some(guard) => match guard.offer(record, ts) {
                Offer::Judged(record, ts, verdict) => self.judged(p, record, ts, verdict),
                Offer::Held => Ok(()),
                Offer::Released(all) => {
                    self.positions[p].held_from = None;
                    for (record, ts, verdict) in all {
                        self.judged(p, record, ts, verdict)?;
                    }
                    Ok(())
                }
            },
        }
    }

    fn judged(
        &mut self,
        p: usize,
        record: T,
        ts: i64,
        verdict: Option<Quarantine>,
    ) -> Result<(), TaskError> {
        match verdict {
            None => self.accept(p, record, ts),
            Some(quarantine) => {
                self.env.metrics().records_quarantined.add(1);
                let handler = &mut self.event_time.as_mut().expect("guarded").quarantine;
                match handler {
                    Some(handler) => handler(record, quarantine).map_err(|e| self.source_error(e)),
                    None => Ok(()),
                }
            }
        }
    }

    /// Gathers an accepted record. A record at or behind the deferred punctuated watermark
    /// first cuts the batch, so that it arrives after that watermark as it would record by
    /// record ([`DeferredWatermark`]).
    #[inline]
    fn accept(&mut self, p: usize, record: T, ts: i64) -> Result<(), TaskError> {
        if self.deferred.holds_back(ts) {
            self.push_batch()?;
        }
        let et = self.event_time.as_mut().expect("event time");
        et.clock.observe(p, ts);
        let punctuate = match &et.strategy.emit {
            WatermarkEmit::Punctuated(None) => true,
            WatermarkEmit::Punctuated(Some(marks)) => marks(&record),
            _ => false,
        };
        self.batch.push(record);
        if punctuate {
            self.punctuate()?;
        }
        Ok(())
    }

    /// The partition ended: release what its guard still holds.
    fn partition_ended(&mut self, p: usize) -> Result<(), TaskError> {
        let held = match &mut self.event_time {
            Some(et) => et.guards[p].as_mut().map(TimestampGuard::finish),
            None => None,
        };
        for (record, ts, verdict) in held.into_iter().flatten() {
            self.judged(p, record, ts, verdict)?;
        }
        let pos = &mut self.positions[p];
        pos.held_from = None;
        pos.ended = true;
        Ok(())
    }

    /// What the clock has to send now (nothing after the final watermark).
    fn poll_clock(&mut self) -> ClockOutput {
        match &mut self.event_time {
            Some(et) if !self.final_watermark => et.clock.poll(),
            _ => ClockOutput::default(),
        }
    }

    /// The punctuated watermark after the record just gathered: one that only advances is
    /// deferred to the end of the batch; a status change goes down at once.
    #[inline]
    fn punctuate(&mut self) -> Result<(), TaskError> {
        match self.poll_clock() {
            ClockOutput {
                status: None,
                watermark: Some(watermark),
            } => {
                self.deferred.defer(watermark);
                Ok(())
            }
            out => self.send(out),
        }
    }

    fn emit_watermark(&mut self) -> Result<(), TaskError> {
        let out = self.poll_clock();
        self.send(out)
    }

    /// Sends the clock's output after the records before it (and the watermark deferred
    /// after them): the status, then the watermark.
    fn send(&mut self, out: ClockOutput) -> Result<(), TaskError> {
        if out == ClockOutput::default() {
            return Ok(());
        }
        self.push_batch()?;
        if let Some(status) = out.status {
            self.chain.status(status)?;
        }
        match out.watermark {
            Some(watermark) => self.send_watermark(watermark),
            None => Ok(()),
        }
    }

    fn send_watermark(&mut self, watermark: Watermark) -> Result<(), TaskError> {
        self.env.metrics().output_watermark.set(watermark.0);
        self.chain.watermark(watermark)
    }

    /// The processing-time duties at `now`. `polled` is when the partitions were last polled:
    /// idleness is judged at that time, so time spent pushing records downstream (under
    /// backpressure, say) never makes a producing partition look silent.
    fn tick(&mut self, now: Instant, polled: Instant) -> Result<(), TaskError> {
        self.push_batch()?;
        let due = self.ticker.due(now);
        if due.latency_marker {
            self.chain.latency_marker(LatencyMarker {
                emitted_ns: self.env.control().now_ns(),
                source_subtask: self.env.subtask() as u32,
            })?;
        }
        if due.watermark {
            if let Some(et) = &mut self.event_time {
                et.clock.detect_idleness(polled);
            }
            self.emit_watermark()?;
        }
        if due.flush {
            self.chain.flush(Flush::All)?;
        }
        if due.sample {
            self.env.sample_pools(0);
        }
        Ok(())
    }

    fn streaming(&self) -> bool {
        self.event_time
            .as_ref()
            .is_some_and(|et| !matches!(et.strategy.emit, WatermarkEmit::EndOfInput))
    }

    /// Sleeps until the next poll of the readers (at `until`, the earliest instant a reader
    /// said it can find a record, or after the usual pause) or the next duty, whichever comes
    /// first, after flushing the partly filled buffers if the job flushes on idle (nothing is
    /// gathered here: every turn pushes its batch).
    fn idle_wait(&mut self, now: Instant, until: Option<Instant>) -> Result<(), TaskError> {
        let mut sleep = pause(now, until).min(self.ticker.sleep_budget(now));
        if self.ticker.flush_when_idle()
            && let Some(due) = self.chain.flush(Flush::Idle { now })?
        {
            sleep = sleep.min(due.saturating_duration_since(now));
        }
        super::slot::sleep(sleep);
        self.env
            .metrics()
            .idle_ns
            .add(now.elapsed().as_nanos() as u64);
        Ok(())
    }
}

/// How long a source whose readers found nothing waits before it polls them again: until
/// `until`, the earliest instant a reader said it can find a record, if that comes sooner than
/// [`PENDING_SLEEP`]; else `PENDING_SLEEP` (never longer: a source also looks at checkpoint
/// triggers and stop requests between polls).
fn pause(now: Instant, until: Option<Instant>) -> Duration {
    until.map_or(PENDING_SLEEP, |until| {
        PENDING_SLEEP.min(until.saturating_duration_since(now))
    })
}

impl<T: Send + 'static> TaskBody for SourceTask<T> {
    fn run(mut self: Box<Self>) -> Result<(), TaskError> {
        let mut readers = self.open_readers()?;
        let metrics = Arc::clone(self.env.metrics());
        while !readers.is_empty() {
            self.env.check_cancelled()?;
            if self.env.control().stop_requested() {
                break;
            }
            self.env
                .injector()
                .hit(Site::Processing, self.env.task_index())
                .map_err(TaskError::Failed)?;
            self.maybe_checkpoint(&readers)?;
            let mut read = 0u64;
            let polled = Instant::now();
            let mut i = 0;
            while i < readers.len() {
                let (p, mut ended, mut batch) = (readers[i].0, false, 0usize);
                // Record by record only while the partition's guard warms up: the warm-up
                // holds records back and needs each one's position. Otherwise a batch at a
                // time, each record then admitted in place (`admit_gathered`).
                if !self.warming_up(p) {
                    while batch < SOURCE_BATCH {
                        // As many records as the batch being gathered has room for, at most
                        // the rest of this partition's turn.
                        let (start, left) = (self.batch.len(), SOURCE_BATCH - batch);
                        let room = self.limit.get().saturating_sub(start).clamp(1, left);
                        let end = readers[i]
                            .1
                            .next_batch(&mut self.batch, room)
                            .map_err(|e| self.source_error(e))?;
                        let got = self.batch.len() - start;
                        batch += got;
                        self.admit_gathered(p, start)?;
                        if got > 0 {
                            self.after_read(&readers, i)?;
                        }
                        match end {
                            BatchEnd::Full => {}
                            BatchEnd::Pending => break,
                            BatchEnd::End => {
                                ended = true;
                                break;
                            }
                        }
                    }
                } else {
                    for _ in 0..SOURCE_BATCH {
                        // Where a record held by the guard's warm-up starts, if it is the first.
                        let held_from = (self.warming_up(p)
                            && self.positions[p].held_from.is_none())
                        .then(|| readers[i].1.offset());
                        match readers[i].1.next().map_err(|e| self.source_error(e))? {
                            Read::Record(record) => {
                                batch += 1;
                                if held_from.is_some() {
                                    self.positions[p].held_from = held_from;
                                }
                                self.record(p, record)?;
                                self.after_read(&readers, i)?;
                            }
                            Read::Pending => break,
                            Read::End => {
                                ended = true;
                                break;
                            }
                        }
                    }
                }
                self.positions[p].offset = readers[i].1.offset();
                if batch > 0
                    && let Some(et) = &mut self.event_time
                {
                    et.clock.touch(p, polled);
                }
                read += batch as u64;
                if ended {
                    self.positions[p].reader_state = readers[i].1.state();
                    self.partition_ended(p)?;
                    readers.swap_remove(i);
                } else {
                    i += 1;
                }
                self.push_batch()?;
            }
            metrics.records_in.add(read);
            let now = Instant::now();
            self.tick(now, polled)?;
            // A turn of any firing a watermark left due in the chain; no waiting while some is.
            if self.chain.resume()? {
                super::slot::yield_now();
            } else if read == 0 && !readers.is_empty() {
                // Every reader found nothing: until the first that knows when it will.
                let until = readers.iter().filter_map(|(_, r)| r.pending_until()).min();
                self.idle_wait(now, until)?;
            }
        }
        // Streaming: stay up, as an unbounded source would, until the whole source is read.
        self.running.fetch_sub(1, Ordering::AcqRel);
        while self.streaming()
            && self.running.load(Ordering::Acquire) > 0
            && !self.env.control().stop_requested()
        {
            self.env.check_cancelled()?;
            self.maybe_checkpoint(&[])?;
            let now = Instant::now();
            self.tick(now, now)?;
            if self.chain.resume()? {
                super::slot::yield_now();
            } else {
                self.idle_wait(now, None)?;
            }
        }
        debug_assert!(self.batch.is_empty(), "every turn pushes its batch");
        self.chain.watermark(Watermark::MAX)?;
        self.final_watermark = true;
        if let Some(ck) = self.env.checkpointing() {
            // Everything is read and the final watermark is out: wait for the final
            // checkpoint, which commits every output, and take part in it.
            let signals = Arc::clone(&ck.signals);
            signals.source_finished();
            // Wakes the coordinator, which may be waiting for its next trigger (up to 50 ms):
            // the final checkpoint starts now. The coordinator gone (the attempt ending) is
            // no error here: the loop below sees the cancellation.
            let _ = ck.reports.send(crate::checkpoint::Report::SourceFinished);
            while !signals.final_completed() {
                self.env.check_cancelled()?;
                self.maybe_checkpoint(&[])?;
                let now = Instant::now();
                self.tick(now, now)?;
                self.idle_wait(now, None)?;
            }
            self.notified =
                checkpointing::notify_completed(&self.env, self.notified, &mut *self.chain)?;
        }
        self.chain.end_of_input()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_polls_again_when_its_readers_say_records_are_due_if_that_is_sooner() {
        let now = Instant::now();
        let us = Duration::from_micros;
        assert_eq!(pause(now, None), PENDING_SLEEP, "the usual pause");
        assert_eq!(
            pause(now, Some(now + us(40))),
            us(40),
            "a paced reader's next step"
        );
        assert_eq!(pause(now, Some(now)), Duration::ZERO, "due now");
        assert_eq!(
            pause(now + us(10), Some(now)),
            Duration::ZERO,
            "due already"
        );
        assert_eq!(
            pause(now, Some(now + Duration::from_secs(5))),
            PENDING_SLEEP,
            "never longer than the usual pause"
        );
    }

    #[test]
    fn the_batch_limit_grows_while_pushes_are_free_and_halves_when_they_wait() {
        let mut limit = BatchLimit::new();
        assert_eq!(limit.get(), 1, "slow start");
        for expected in [2, 4, 8, 16, 32, 64, 128, 256, 256] {
            limit.pushed(false);
            assert_eq!(limit.get(), expected);
        }
        limit.pushed(true);
        assert_eq!(limit.get(), 128);
        for _ in 0..10 {
            limit.pushed(true);
        }
        assert_eq!(limit.get(), 1, "never below one record");
    }
}
