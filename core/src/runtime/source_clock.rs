//! Event time at a source subtask (Flink's per-split watermark generation and
//! `WatermarkOutputMultiplexer`): each partition keeps its highest timestamp; the subtask's
//! watermark is the minimum over its partitions that are not idle, and is emitted only when
//! it advances. With an idle timeout, a silent partition is left out, and a subtask whose
//! partitions are all idle (or that owns none) declares itself idle.

use std::time::{Duration, Instant};

use crate::time::arith::{millis, watermark_for};
use crate::time::deferred::DeferredWatermark;
use crate::time::{Watermark, WatermarkEmit, WatermarkStatus, WatermarkStrategy};

#[derive(Debug, Clone, Copy)]
struct PartitionClock {
    max_ts: Option<i64>,
    last_record: Instant,
    idle: bool,
}

/// What the subtask should send after a change.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClockOutput {
    pub(crate) status: Option<WatermarkStatus>,
    pub(crate) watermark: Option<Watermark>,
}

/// The event-time state of one source subtask.
#[derive(Debug)]
pub(crate) struct SourceClock {
    partitions: Vec<PartitionClock>,
    out_of_orderness_ms: i64,
    idle_timeout: Option<Duration>,
    emitted: Watermark,
    idle: bool,
    /// Whether a partition's highest timestamp or idleness changed since the last
    /// [`poll`](Self::poll): if not, a poll has nothing to say (what it emits follows from
    /// those alone, and the last poll emitted what they gave), and returns at once. A
    /// punctuated source polls after every record.
    changed: bool,
    /// The lowest highest timestamp over the active partitions at the last poll (`i64::MIN`
    /// for one without records; `i64::MAX` when none is active): a higher timestamp of a
    /// partition above it leaves the minimum, hence the watermark, where it was, so it sets no
    /// `changed`. With partitions read in turns, only the one holding the watermark back makes
    /// a punctuated source's polls compute.
    floor: i64,
}

impl SourceClock {
    pub(crate) fn new<T>(strategy: &WatermarkStrategy<T>, partitions: usize) -> Self {
        let now = Instant::now();
        Self {
            partitions: vec![
                PartitionClock {
                    max_ts: None,
                    last_record: now,
                    idle: false,
                };
                partitions
            ],
            out_of_orderness_ms: millis(strategy.out_of_orderness),
            idle_timeout: match strategy.emit {
                WatermarkEmit::EndOfInput => None,
                _ => strategy.idle_timeout,
            },
            emitted: Watermark::MIN,
            idle: false,
            changed: true,
            floor: i64::MAX,
        }
    }

    /// An accepted record of partition `p` with timestamp `ts`.
    #[inline]
    pub(crate) fn observe(&mut self, p: usize, ts: i64) {
        let clock = &mut self.partitions[p];
        if clock.max_ts.is_none_or(|m| ts > m) {
            self.changed |= clock.max_ts.is_none_or(|m| m <= self.floor);
            clock.max_ts = Some(ts);
        }
    }

    /// Partition `p` produced records at `now`: it is active again.
    pub(crate) fn touch(&mut self, p: usize, now: Instant) {
        let clock = &mut self.partitions[p];
        clock.last_record = now;
        self.changed |= clock.idle;
        clock.idle = false;
    }

    /// Marks partitions silent for the idle timeout as idle (called from the task's timers).
    pub(crate) fn detect_idleness(&mut self, now: Instant) {
        if let Some(timeout) = self.idle_timeout {
            for clock in &mut self.partitions {
                if now.duration_since(clock.last_record) >= timeout {
                    self.changed |= !clock.idle;
                    clock.idle = true;
                }
            }
        }
    }

    /// The status and watermark to emit now, if either changed.
    #[inline]
    pub(crate) fn poll(&mut self) -> ClockOutput {
        if !std::mem::take(&mut self.changed) {
            return ClockOutput::default();
        }
        let mut out = ClockOutput::default();
        let idle = self.idle_timeout.is_some() && self.partitions.iter().all(|c| c.idle);
        if idle != self.idle {
            self.idle = idle;
            out.status = Some(if idle {
                WatermarkStatus::Idle
            } else {
                WatermarkStatus::Active
            });
        }
        if idle {
            self.floor = i64::MAX;
            return out;
        }
        let floor = self
            .partitions
            .iter()
            .filter(|c| !c.idle)
            .map(|c| c.max_ts.unwrap_or(i64::MIN))
            .min();
        self.floor = floor.unwrap_or(i64::MAX);
        if let Some(floor) = floor {
            let watermark = watermark_for(floor, self.out_of_orderness_ms);
            if watermark > self.emitted.0 {
                self.emitted = Watermark(watermark);
                out.watermark = Some(self.emitted);
            }
        }
        out
    }
}

impl SourceClock {
    /// Punctuated watermarks after each record of a run read from partition `p`, with
    /// timestamps `ts` in read order: what [`observe`](Self::observe) then
    /// [`poll`](Self::poll) after every record would emit, each new watermark deferred into
    /// `deferred` (which keeps the newest). Stops before the first record at or behind the
    /// deferred watermark (that record must see it first, [`DeferredWatermark`]) and returns
    /// how many records it took. `None`, taking none, when a poll could emit a status (a
    /// partition's idleness changed) or `p` is idle: the caller then goes record by record.
    ///
    /// With only `p`'s highest timestamp moving, the minimum over the active partitions is
    /// `min(max_p, others)` for a fixed `others`, so each record costs a comparison or two.
    #[inline]
    pub(crate) fn punctuate_run(
        &mut self,
        p: usize,
        ts: impl Iterator<Item = i64>,
        deferred: &mut DeferredWatermark,
    ) -> Option<usize> {
        if self.changed || self.partitions[p].idle {
            return None;
        }
        let others = self
            .partitions
            .iter()
            .enumerate()
            .filter(|&(q, c)| q != p && !c.idle)
            .map(|(_, c)| c.max_ts.unwrap_or(i64::MIN))
            .min()
            .unwrap_or(i64::MAX);
        let mut max_p = self.partitions[p].max_ts;
        let mut emitted = self.emitted.0;
        let mut taken = 0;
        for ts in ts {
            if deferred.holds_back(ts) {
                break;
            }
            taken += 1;
            if max_p.is_some_and(|m| ts <= m) {
                continue;
            }
            max_p = Some(ts);
            let watermark = watermark_for(ts.min(others), self.out_of_orderness_ms);
            if watermark > emitted {
                emitted = watermark;
                deferred.defer(Watermark(watermark));
            }
        }
        self.partitions[p].max_ts = max_p;
        self.emitted = Watermark(emitted);
        self.floor = max_p.unwrap_or(i64::MIN).min(others);
        Some(taken)
    }
}

/// One partition's clock in a checkpoint: its highest timestamp and whether it was idle.
pub(crate) type PartitionClockState = (Option<i64>, bool);

impl SourceClock {
    /// Partition `p`'s clock, for the source's snapshot.
    pub(crate) fn partition_state(&self, p: usize) -> PartitionClockState {
        let clock = &self.partitions[p];
        (clock.max_ts, clock.idle)
    }

    /// Restores partition `p`'s clock (its silence counts from now).
    pub(crate) fn restore_partition(&mut self, p: usize, (max_ts, idle): PartitionClockState) {
        let clock = &mut self.partitions[p];
        clock.max_ts = max_ts;
        clock.idle = idle;
        self.changed = true;
        clock.last_record = Instant::now();
    }

    /// The watermark emitted last and whether the subtask was idle.
    pub(crate) fn emitted_state(&self) -> (Watermark, bool) {
        (self.emitted, self.idle)
    }

    /// Restores what was emitted last, so that the restored subtask neither repeats nor
    /// regresses its watermark.
    pub(crate) fn restore_emitted(&mut self, (emitted, idle): (Watermark, bool)) {
        self.emitted = emitted;
        self.idle = idle;
        self.changed = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strategy(idle: Option<Duration>) -> WatermarkStrategy<i64> {
        let mut s = WatermarkStrategy::bounded_out_of_orderness(Duration::from_millis(5), |t| *t);
        s.idle_timeout = idle;
        s
    }

    #[test]
    fn watermark_is_highest_timestamp_minus_bound_minus_one_over_all_partitions() {
        let mut clock = SourceClock::new(&strategy(None), 2);
        clock.observe(0, 100);
        assert_eq!(
            clock.poll().watermark,
            None,
            "partition 1 has no timestamp yet"
        );
        clock.observe(1, 50);
        assert_eq!(clock.poll().watermark, Some(Watermark(44)));
        clock.observe(1, 40);
        assert_eq!(
            clock.poll().watermark,
            None,
            "never backwards, never repeated"
        );
    }

    #[test]
    fn an_idle_partition_leaves_the_minimum_and_a_subtask_without_partitions_is_idle() {
        let mut clock = SourceClock::new(&strategy(Some(Duration::from_millis(50))), 2);
        let later = Instant::now() + Duration::from_millis(100);
        clock.observe(0, 100);
        clock.touch(0, later);
        clock.detect_idleness(later);
        // Partition 1 never produced: idle. Partition 0 is active.
        assert_eq!(clock.poll().watermark, Some(Watermark(94)));

        let mut empty = SourceClock::new(&strategy(Some(Duration::ZERO)), 0);
        assert_eq!(empty.poll().status, Some(WatermarkStatus::Idle));
        let mut stalled = SourceClock::new(&strategy(None), 0);
        assert_eq!(
            stalled.poll(),
            ClockOutput::default(),
            "without idleness it stays active"
        );
    }

    /// A poll returns at once when nothing changed since the last one; every change it must
    /// see (a higher timestamp, a partition going idle or active again) is seen.
    #[test]
    fn a_poll_sees_every_change_since_the_last_one() {
        let mut clock = SourceClock::new(&strategy(Some(Duration::from_millis(50))), 1);
        clock.observe(0, 100);
        assert_eq!(clock.poll().watermark, Some(Watermark(94)));
        assert_eq!(clock.poll(), ClockOutput::default(), "nothing changed");
        clock.observe(0, 90);
        assert_eq!(
            clock.poll(),
            ClockOutput::default(),
            "not a higher timestamp"
        );
        let silent = Instant::now() + Duration::from_millis(100);
        clock.detect_idleness(silent);
        assert_eq!(clock.poll().status, Some(WatermarkStatus::Idle));
        clock.detect_idleness(silent);
        assert_eq!(clock.poll(), ClockOutput::default(), "still idle");
        clock.touch(0, silent);
        clock.observe(0, 110);
        assert_eq!(
            clock.poll(),
            ClockOutput {
                status: Some(WatermarkStatus::Active),
                watermark: Some(Watermark(104)),
            }
        );
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// A record of partition `p` at `ts`, read `after` ms after the previous op.
        Record { p: usize, ts: i64, after: u64 },
        /// The task's timer checks idleness `after` ms after the previous op.
        Detect { after: u64 },
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            4 => (0..3usize, 0..200i64, 0..30u64).prop_map(|(p, ts, after)| Op::Record { p, ts, after }),
            1 => (0..80u64).prop_map(|after| Op::Detect { after }),
        ]
    }

    proptest::proptest! {
        /// The shortcuts (`changed`, `floor`) never hide an output: polled after every op, a
        /// clock says exactly what one that recomputes at every poll says.
        #[test]
        fn a_poll_says_what_a_full_recomputation_says(
            ops in proptest::collection::vec(op(), 1..120),
            idle in proptest::option::of(20..60u64),
        ) {
            let strategy = strategy(idle.map(Duration::from_millis));
            let (mut fast, mut full) = (SourceClock::new(&strategy, 3), SourceClock::new(&strategy, 3));
            let mut now = Instant::now();
            for op in ops {
                for clock in [&mut fast, &mut full] {
                    match op {
                        Op::Record { p, ts, .. } => {
                            clock.touch(p, now);
                            clock.observe(p, ts);
                        }
                        Op::Detect { .. } => clock.detect_idleness(now),
                    }
                }
                let (Op::Record { after, .. } | Op::Detect { after }) = op;
                now += Duration::from_millis(after);
                full.changed = true;
                proptest::prop_assert_eq!(fast.poll(), full.poll());
            }
        }
    }

    proptest::proptest! {
        /// A run of records taken at once defers what a poll after each record would emit
        /// (its newest, with deferral), stops at the record a cut is for, and leaves the clock
        /// where record by record leaves it.
        #[test]
        fn a_punctuated_run_is_observe_and_poll_after_every_record(
            runs in proptest::collection::vec((0..3usize, proptest::collection::vec(0..300i64, 0..40)), 1..20),
            idle in proptest::option::of(20..60u64),
        ) {
            let strategy = strategy(idle.map(Duration::from_millis));
            let (mut fast, mut slow) = (SourceClock::new(&strategy, 3), SourceClock::new(&strategy, 3));
            let now = Instant::now();
            for (p, ts) in runs {
                fast.touch(p, now);
                slow.touch(p, now);
                let (mut fast_deferred, mut slow_deferred) =
                    (DeferredWatermark::default(), DeferredWatermark::default());
                let mut i = 0;
                while i < ts.len() {
                    let taken = fast
                        .punctuate_run(p, ts[i..].iter().copied(), &mut fast_deferred)
                        .unwrap_or(0);
                    // Record by record over what the run took, and over the record it stopped
                    // at (a cut: the deferred watermark goes first).
                    let stop = (i + taken).min(ts.len());
                    for &t in &ts[i..stop] {
                        proptest::prop_assert!(!slow_deferred.holds_back(t));
                        slow.observe(p, t);
                        if let Some(w) = slow.poll().watermark {
                            slow_deferred.defer(w);
                        }
                    }
                    proptest::prop_assert_eq!(fast_deferred.take(), slow_deferred.take());
                    if stop < ts.len() {
                        for clock in [&mut fast, &mut slow] {
                            clock.observe(p, ts[stop]);
                            let _ = clock.poll();
                        }
                    }
                    i = stop + 1;
                }
                proptest::prop_assert_eq!(fast.emitted_state(), slow.emitted_state());
                for q in 0..3 {
                    proptest::prop_assert_eq!(fast.partition_state(q), slow.partition_state(q));
                }
                // Both clocks have nothing more to say, and say the same from here on.
                proptest::prop_assert_eq!(fast.poll(), slow.poll());
            }
        }
    }

    proptest::proptest! {
        /// Observing only a run's highest timestamp (what a periodic source does with a batch)
        /// leaves the clock where observing each record does: the same polls from there on.
        #[test]
        fn observing_a_runs_highest_is_observing_each(
            runs in proptest::collection::vec((0..3usize, proptest::collection::vec(0..300i64, 1..40)), 1..20),
            idle in proptest::option::of(20..60u64),
            poll_every in 1..4usize,
        ) {
            let strategy = strategy(idle.map(Duration::from_millis));
            let (mut fast, mut slow) = (SourceClock::new(&strategy, 3), SourceClock::new(&strategy, 3));
            let now = Instant::now();
            for (n, (p, ts)) in runs.into_iter().enumerate() {
                fast.touch(p, now);
                slow.touch(p, now);
                fast.observe(p, *ts.iter().max().expect("a run has records"));
                for &t in &ts {
                    slow.observe(p, t);
                }
                if n % poll_every == 0 {
                    proptest::prop_assert_eq!(fast.poll(), slow.poll());
                }
                for q in 0..3 {
                    proptest::prop_assert_eq!(fast.partition_state(q), slow.partition_state(q));
                }
            }
            proptest::prop_assert_eq!(fast.poll(), slow.poll());
        }
    }
}
