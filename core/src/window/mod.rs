//! Event-time windows (Flink's `WindowOperator` with `TumblingEventTimeWindows`,
//! `SlidingEventTimeWindows`, `EventTimeTrigger`, allowed lateness and the late-data side
//! output), and the two ways to aggregate a global window: `windowAll` (parallelism 1) and
//! local-global (pre-aggregate per subtask, merge per window).
//!
//! Semantics, exactly Flink's:
//! - windows are `[start, end)`, aligned to the epoch plus an optional offset;
//! - a window fires when the watermark reaches `end − 1`;
//! - a record is late when `end − 1 + lateness <= watermark` for every window it belongs to;
//!   it goes to the late output and counts as `numLateRecordsDropped`;
//! - a record for a window that fired but is still within lateness updates it, and the window
//!   fires again with the new result; window state is freed at `end − 1 + lateness`.
//!
//! At the ends of `i64` windows are clamped, never overflowed: see
//! [`crate::time::arith`], where every bound above is computed.
//!
//! # Checkpoints
//! Window contents live in the [`crate::state`] module and are snapshotted at every barrier:
//! per (window, key) the accumulator (so [`AggregateFunction::Acc`] has a codec) and its place
//! in the firing order, and as operator state the watermark and the order counter. After a
//! restore a job fires the same windows in the same order and makes the same late decisions as
//! an uninterrupted run. Keyed windows and the merge step keep their contents by key group and
//! restore the groups they own at any parallelism; the local step of local-global aggregation
//! keeps its partials as operator state, and at another parallelism new subtask `j` takes the
//! partials of every old subtask `i` with `i % parallelism == j`, merged.

mod aggregate;
mod assigner;
mod late;
mod minibatch;
mod operator;
mod state;
mod stream;

pub use aggregate::{AggregateFunction, Count};
pub use assigner::{Window, WindowAssigner};
pub use late::{
    LateHandler, LateOutput, LatePartialHandler, LatePartialRecords, LatePartials, LateRecords,
};
pub use operator::{LocalPreAggregate, Partial, WindowAggregate, WindowMerge, WindowResult};
pub use stream::{GlobalAggregation, WindowSpec};
