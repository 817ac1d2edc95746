//! The job's operators: tagging with per-plate state, per-subtask origin counts, and the
//! origin window's aggregate.

use weir_core::error::OperatorError;
use weir_core::operator::{Collector, KeyedProcessFunction, KeyedState, Operator};
use weir_core::window::AggregateFunction;

use crate::traffic::record::{Home, Plate, TrafficRecord};
use crate::traffic::tag::{LongTermTracker, OriginCounts, Tagged};

/// Tags each record with its origin and, for non-local plates, the long-term flag.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tag {
    pub(super) home: Home,
    /// Records left before an injected panic.
    pub(super) fail_after: Option<u64>,
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
            tracker.update(|t| t.observe(day))
        }));
        Ok(())
    }
}

/// Pre-aggregates the counts of one subtask and emits them at end of input.
#[derive(Debug, Default)]
pub(super) struct CountOrigins(pub(super) OriginCounts);

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
