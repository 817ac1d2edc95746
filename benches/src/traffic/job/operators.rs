//! The job's operators: tagging with per-plate state, per-subtask origin counts, and the
//! origin window's aggregate.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use weir_core::checkpoint::{SnapshotContext, StateReader, StateWriter};
use weir_core::codec::{decode_exact, encode_to_vec};
use weir_core::error::OperatorError;
use weir_core::operator::{Collector, KeyedProcessFunction, KeyedState, Operator, OperatorContext};
use weir_core::window::AggregateFunction;

use crate::traffic::record::{Home, HomePrefix, Origin, Plate, TrafficRecord};
use crate::traffic::tag::{LongTermTracker, OriginCounts, Tagged};

/// Tags each record with its origin and, for non-local plates, the long-term flag.
#[derive(Debug, Clone)]
pub(super) struct Tag {
    home: HomePrefix,
    /// Injected failure: the record count at which a subtask panics, and whether one did (it
    /// fires once per job, not again in a restarted attempt).
    fail_after: Option<(u64, Arc<AtomicBool>)>,
    /// Records this subtask has tagged in this attempt.
    seen: u64,
    /// Time spent per record (`--slow-tag`), to backpressure the sources.
    slow: Option<Duration>,
}

impl Tag {
    pub(super) fn new(
        home: Home,
        fail_after: Option<(u64, Arc<AtomicBool>)>,
        slow: Option<Duration>,
    ) -> Self {
        Self {
            home: HomePrefix::of(&home),
            fail_after,
            seen: 0,
            slow,
        }
    }
}

impl KeyedProcessFunction<Plate, TrafficRecord, Tagged> for Tag {
    type State = LongTermTracker;

    #[inline]
    fn process(
        &mut self,
        plate: &Plate,
        tracker: &mut KeyedState<'_, Plate, LongTermTracker>,
        record: TrafficRecord,
        out: &mut Collector<'_, Tagged>,
    ) -> Result<(), OperatorError> {
        if let Some((after, fired)) = &self.fail_after {
            self.seen += 1;
            if self.seen > *after && !fired.swap(true, Ordering::Relaxed) {
                panic!("injected failure (--fail-after)");
            }
        }
        if let Some(slow) = self.slow {
            std::thread::sleep(slow);
        }
        // Local plates never touch their state: only non-local plates can be long-term.
        // The origin is read from the key (the record's plate, written once into the
        // operator's look-ahead), not from `record`: the record was just copied onto the
        // stack for this call, and a word of its plate read back across two of the copy's
        // stores waits for them to reach the cache (a fifth of this function's cycles).
        let origin = self.home.origin(plate);
        out.collect(Tagged::with_origin(record, origin, |_, day| {
            tracker.update(|t| t.observe(day))
        }));
        Ok(())
    }

    /// Only non-local plates have state ([`Tagged::new`]).
    #[inline]
    fn needs_state(&self, plate: &Plate, _record: &TrafficRecord) -> bool {
        self.home.origin(plate) != Origin::Local
    }
}

/// Pre-aggregates the counts of one subtask and emits them at end of input. Its counts are
/// its state: after a restart they continue from the checkpoint; at another parallelism the
/// old subtasks' counts are dealt round robin (old subtask `i` to new subtask `i % p`).
#[derive(Debug, Default)]
pub(super) struct CountOrigins(pub(super) OriginCounts);

impl Operator<Tagged, OriginCounts> for CountOrigins {
    fn open(&mut self, context: &OperatorContext) -> Result<(), OperatorError> {
        let Some(restore) = &context.restore else {
            return Ok(());
        };
        for (old, state) in restore.operator_states.iter().enumerate() {
            if old % context.parallelism != context.subtask || state.is_empty() {
                continue;
            }
            let bytes = StateReader::new(state)
                .bytes()
                .map_err(|e| format!("restoring the origin counts of old subtask {old}: {e}"))?;
            let counts = decode_exact::<OriginCounts>(bytes)
                .map_err(|e| format!("restoring the origin counts of old subtask {old}: {e}"))?;
            self.0.merge(&counts);
        }
        Ok(())
    }

    #[inline]
    fn process(
        &mut self,
        tagged: Tagged,
        _out: &mut Collector<'_, OriginCounts>,
    ) -> Result<(), OperatorError> {
        self.0.add(&tagged);
        Ok(())
    }

    fn snapshot_state(&mut self, ctx: &mut SnapshotContext<'_>) -> Result<(), OperatorError> {
        let mut w = StateWriter::new();
        w.bytes(&encode_to_vec(&self.0));
        ctx.set_operator_state(w.finish());
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
pub(super) struct OriginWindow;

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
