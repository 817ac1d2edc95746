//! Event time: watermark strategies (bounded out-of-orderness, periodic and punctuated
//! generators, idleness), punctuated watermarks deferred to the end of a source batch
//! (`deferred`), the timestamp guard, watermarks and their status, the watermark valve
//! and latency markers (Flink's `WatermarkStrategy`, `Watermark`, `WatermarkStatus`,
//! `StatusWatermarkValve`, `LatencyMarker`); and [`arith`], the event-time arithmetic every
//! one of them uses, total over all of `i64`.

pub mod arith;
pub(crate) mod deferred;
pub mod guard;
mod strategy;
mod valve;

pub use guard::{GuardConfig, Quarantine, TimestampGuard};
pub use strategy::{
    DEFAULT_WATERMARK_INTERVAL, Punctuation, QuarantineFactory, QuarantineHandler, WatermarkEmit,
    WatermarkStrategy,
};
pub use valve::{ValveOutput, WatermarkValve};

/// "Event time has reached `t`": no record with a timestamp at or below `t` is expected any
/// more. A stream's watermarks never go backwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Watermark(pub i64);

impl Watermark {
    /// Before any event time: the initial watermark of every channel.
    pub const MIN: Watermark = Watermark(i64::MIN);
    /// End of event time: sent at the end of bounded input (and in batch mode, the only one).
    /// It fires every window; no data produces it ([`arith::watermark_for`] is below it).
    pub const MAX: Watermark = Watermark(i64::MAX);
}

/// Whether a channel currently takes part in the watermark minimum (Flink's `WatermarkStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum WatermarkStatus {
    /// The channel sends data and watermarks; its watermark counts.
    Active,
    /// The channel sends nothing for now; it is left out of the minimum.
    Idle,
}

/// A marker a source emits periodically; sinks record how long it took to reach them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatencyMarker {
    /// When the source emitted it, in ns since the job started.
    pub emitted_ns: u64,
    /// The source subtask that emitted it.
    pub source_subtask: u32,
}
