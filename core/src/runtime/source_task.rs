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
use super::control::TaskEnv;
use super::source_clock::SourceClock;
use super::ticker::Ticker;
use crate::error::{JobError, OperatorError, TaskError};
use crate::operator::Output;
use crate::source::{PartitionReader, Read, Source, owned_partitions};
use crate::time::guard::Offer;
use crate::time::{
    LatencyMarker, Quarantine, QuarantineHandler, TimestampGuard, Watermark, WatermarkEmit,
    WatermarkStrategy,
};

/// Records read from one partition before the loop turns to the next.
pub(crate) const SOURCE_BATCH: usize = 256;

/// How long a source with nothing to read sleeps before polling again.
const PENDING_SLEEP: Duration = Duration::from_millis(1);

/// A partition reader with the partition's index among the subtask's own.
type LocalReader<T> = (usize, Box<dyn PartitionReader<T>>);

/// Event time of a source subtask: the strategy, per-partition guards, the clock.
struct EventTime<T> {
    strategy: WatermarkStrategy<T>,
    guards: Vec<Option<TimestampGuard<T>>>,
    clock: SourceClock,
    quarantine: Option<QuarantineHandler<T>>,
}

/// A source subtask.
pub(crate) struct SourceTask<T> {
    env: TaskEnv,
    name: String,
    source: Arc<dyn Source<Item = T>>,
    parallelism: usize,
    chain: Box<dyn Output<T>>,
    ticker: Ticker,
    event_time: Option<EventTime<T>>,
    /// Subtasks of this source still reading.
    running: Arc<AtomicUsize>,
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
    ) -> Self {
        let partitions = owned_partitions(source.partitions(), env.subtask(), parallelism).len();
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
            quarantine: strategy.quarantine.as_ref().map(|f| f(env.subtask())),
            strategy,
        });
        Self {
            env,
            name,
            source,
            parallelism,
            chain,
            ticker,
            event_time,
            running,
        }
    }

    fn source_error(&self, error: OperatorError) -> TaskError {
        TaskError::Failed(JobError::Operator {
            operator: self.name.clone(),
            subtask: self.env.subtask(),
            message: error.to_string(),
        })
    }

    /// The readers of the owned partitions, with their local index.
    fn open_readers(&self) -> Result<Vec<LocalReader<T>>, TaskError> {
        owned_partitions(
            self.source.partitions(),
            self.env.subtask(),
            self.parallelism,
        )
        .into_iter()
        .enumerate()
        .map(|(local, p)| {
            self.source
                .open(p, 0)
                .map(|r| (local, r))
                .map_err(|e| self.source_error(e))
        })
        .collect()
    }

    /// One record read from local partition `p`.
    #[inline]
    fn record(&mut self, p: usize, record: T) -> Result<(), TaskError> {
        let Some(et) = &mut self.event_time else {
            return self.chain.push(record);
        };
        let ts = (et.strategy.timestamp)(&record);
        match et.guards[p].as_mut() {
            None => self.accept(p, record, ts),
            Some(guard) => match guard.offer(record, ts) {
                Offer::Judged(record, ts, verdict) => self.judged(p, record, ts, verdict),
                Offer::Held => Ok(()),
                Offer::Released(all) => {
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
                if let Some(handler) = &mut self.event_time.as_mut().expect("guarded").quarantine {
                    handler(record, quarantine);
                }
                Ok(())
            }
        }
    }

    #[inline]
    fn accept(&mut self, p: usize, record: T, ts: i64) -> Result<(), TaskError> {
        let et = self.event_time.as_mut().expect("event time");
        et.clock.observe(p, ts);
        let punctuate = match &et.strategy.emit {
            WatermarkEmit::Punctuated(None) => true,
            WatermarkEmit::Punctuated(Some(marks)) => marks(&record),
            _ => false,
        };
        self.chain.push(record)?;
        if punctuate {
            self.emit_watermark()?;
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
        Ok(())
    }

    fn emit_watermark(&mut self) -> Result<(), TaskError> {
        let Some(et) = &mut self.event_time else {
            return Ok(());
        };
        let out = et.clock.poll();
        if let Some(status) = out.status {
            self.chain.status(status)?;
        }
        if let Some(watermark) = out.watermark {
            self.env.metrics().output_watermark.set(watermark.0);
            self.chain.watermark(watermark)?;
        }
        Ok(())
    }

    /// The processing-time duties at `now`. `polled` is when the partitions were last polled:
    /// idleness is judged at that time, so time spent pushing records downstream (under
    /// backpressure, say) never makes a producing partition look silent.
    fn tick(&mut self, now: Instant, polled: Instant) -> Result<(), TaskError> {
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
            self.chain.flush()?;
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

    fn idle_wait(&mut self, now: Instant) {
        let sleep = PENDING_SLEEP.min(self.ticker.sleep_budget(now));
        std::thread::sleep(sleep);
        self.env
            .metrics()
            .idle_ns
            .add(now.elapsed().as_nanos() as u64);
    }
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
            let mut read = 0u64;
            let polled = Instant::now();
            let mut i = 0;
            while i < readers.len() {
                let (p, mut ended, mut batch) = (readers[i].0, false, 0u64);
                for _ in 0..SOURCE_BATCH {
                    match readers[i].1.next().map_err(|e| self.source_error(e))? {
                        Read::Record(record) => {
                            batch += 1;
                            self.record(p, record)?;
                        }
                        Read::Pending => break,
                        Read::End => {
                            ended = true;
                            break;
                        }
                    }
                }
                if batch > 0
                    && let Some(et) = &mut self.event_time
                {
                    et.clock.touch(p, polled);
                }
                read += batch;
                if ended {
                    self.partition_ended(p)?;
                    readers.swap_remove(i);
                } else {
                    i += 1;
                }
            }
            metrics.records_in.add(read);
            let now = Instant::now();
            self.tick(now, polled)?;
            if read == 0 && !readers.is_empty() {
                self.idle_wait(now);
            }
        }
        // Streaming: stay up, as an unbounded source would, until the whole source is read.
        self.running.fetch_sub(1, Ordering::AcqRel);
        while self.streaming()
            && self.running.load(Ordering::Acquire) > 0
            && !self.env.control().stop_requested()
        {
            self.env.check_cancelled()?;
            let now = Instant::now();
            self.tick(now, now)?;
            self.idle_wait(now);
        }
        self.chain.watermark(Watermark::MAX)?;
        self.chain.end_of_input()
    }
}
