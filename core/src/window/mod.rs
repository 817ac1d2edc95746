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

mod aggregate;
mod assigner;
mod operator;
mod state;
mod stream;

pub use aggregate::{AggregateFunction, Count};
pub use assigner::{Window, WindowAssigner};
pub use operator::{
    LateHandler, LateOutput, LatePartialHandler, LatePartials, LocalPreAggregate, Partial,
    WindowAggregate, WindowMerge, WindowResult,
};
pub use stream::{GlobalAggregation, WindowSpec};
