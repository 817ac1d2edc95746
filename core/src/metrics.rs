//! Task metrics with Flink's names: time accounting (busy / idle / backpressured ms per
//! second), pool usage, record and buffer counts, watermarks.
//!
//! Every counter has one writer, the task's own thread, and any number of readers (the progress
//! bar, the report): it is an atomic updated with a plain load and store, which costs what a
//! non-atomic add costs and lets readers see a recent value without a lock.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use serde::Serialize;

/// Latency histograms track 1 ns to one hour at 3 significant digits; longer values are
/// clamped to an hour.
pub const LATENCY_MAX_NS: u64 = 3_600_000_000_000;

/// An empty latency histogram (ns).
pub fn latency_histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, LATENCY_MAX_NS, 3)
        .expect("1 ns to 1 h at 3 digits is a valid range")
}

/// A counter with a single writer thread.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Only the owning task's thread may call this.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    /// Sets the value. Only the owning task's thread may call this.
    #[inline]
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }

    /// The latest value.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A gauge holding a watermark (or `i64::MIN` before the first).
#[derive(Debug)]
pub struct WatermarkGauge(AtomicI64);

impl Default for WatermarkGauge {
    fn default() -> Self {
        Self(AtomicI64::new(i64::MIN))
    }
}

impl WatermarkGauge {
    /// Sets the value; single writer.
    #[inline]
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }

    /// The latest value, `None` before the first watermark.
    pub fn get(&self) -> Option<i64> {
        let v = self.0.load(Ordering::Relaxed);
        (v != i64::MIN).then_some(v)
    }
}

/// Live metrics of one subtask.
#[derive(Debug, Default)]
pub struct TaskMetrics {
    /// Records that entered the task (from its input gate or its source).
    pub records_in: Counter,
    /// Records the task emitted downstream or wrote to its sink.
    pub records_out: Counter,
    /// Buffers the task sent on its output channels.
    pub buffers_out: Counter,
    /// Time spent waiting for input, ns.
    pub idle_ns: Counter,
    /// Time spent waiting for an output buffer or ring slot, ns.
    pub backpressured_ns: Counter,
    /// Sum of sampled output pool usage, in parts per million of the pool.
    pub out_pool_usage_ppm_sum: Counter,
    /// Sum of sampled input queue usage, in parts per million of the input rings.
    pub in_pool_usage_ppm_sum: Counter,
    /// Number of pool usage samples.
    pub pool_samples: Counter,
    /// Highest sampled output pool usage, in parts per million.
    pub out_pool_usage_ppm_max: Counter,
    /// Highest number of output buffers in use seen by any sample.
    pub out_buffers_in_use_max: Counter,
    /// The task's input watermark (Flink's `currentInputWatermark`).
    pub input_watermark: WatermarkGauge,
    /// The task's output watermark (Flink's `currentOutputWatermark`).
    pub output_watermark: WatermarkGauge,
    /// Watermarks the task emitted.
    pub watermarks_emitted: Counter,
    /// Records dropped because their windows were past allowed lateness.
    pub late_records_dropped: Counter,
    /// Records a source's timestamp guard quarantined.
    pub records_quarantined: Counter,
}

/// A subtask's metrics at the end of a run, in Flink's names, for the report.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[allow(non_snake_case, reason = "Flink's metric names, as users know them")]
pub struct TaskReport {
    /// The task's name: its chained operators joined by ` -> `.
    pub task: String,
    /// The subtask index.
    pub subtask: usize,
    /// The core it was pinned to, if pinning was on.
    pub core: Option<usize>,
    /// Records in.
    pub numRecordsIn: u64,
    /// Records out.
    pub numRecordsOut: u64,
    /// Buffers out.
    pub numBuffersOut: u64,
    /// Busy time per second of wall time.
    pub busyTimeMsPerSecond: f64,
    /// Idle time per second of wall time.
    pub idleTimeMsPerSecond: f64,
    /// Backpressured time per second of wall time.
    pub backPressuredTimeMsPerSecond: f64,
    /// Average share of the input rings in use (0..1).
    pub inPoolUsage: f64,
    /// Average share of the output pool in use (0..1).
    pub outPoolUsage: f64,
    /// Highest sampled share of the output pool in use.
    pub outPoolUsageMax: f64,
    /// Highest number of output buffers in use.
    pub outBuffersInUseMax: u64,
    /// Last input watermark.
    pub currentInputWatermark: Option<i64>,
    /// Last output watermark.
    pub currentOutputWatermark: Option<i64>,
    /// Watermarks emitted per second of wall time.
    pub watermarksPerSecond: f64,
    /// Records dropped as late.
    pub numLateRecordsDropped: u64,
    /// Records quarantined by the timestamp guard.
    pub numRecordsQuarantined: u64,
}

impl TaskMetrics {
    /// The report of a task that ran for `wall_ns`.
    pub fn report(
        &self,
        task: &str,
        subtask: usize,
        core: Option<usize>,
        wall_ns: u64,
    ) -> TaskReport {
        let wall = wall_ns.max(1) as f64;
        let per_second = |ns: u64| ns as f64 / wall * 1000.0;
        let idle = self.idle_ns.get().min(wall_ns);
        let bp = self.backpressured_ns.get().min(wall_ns - idle);
        let samples = self.pool_samples.get().max(1) as f64;
        TaskReport {
            task: task.to_owned(),
            subtask,
            core,
            numRecordsIn: self.records_in.get(),
            numRecordsOut: self.records_out.get(),
            numBuffersOut: self.buffers_out.get(),
            busyTimeMsPerSecond: per_second(wall_ns - idle - bp),
            idleTimeMsPerSecond: per_second(idle),
            backPressuredTimeMsPerSecond: per_second(bp),
            inPoolUsage: self.in_pool_usage_ppm_sum.get() as f64 / samples / 1e6,
            outPoolUsage: self.out_pool_usage_ppm_sum.get() as f64 / samples / 1e6,
            outPoolUsageMax: self.out_pool_usage_ppm_max.get() as f64 / 1e6,
            outBuffersInUseMax: self.out_buffers_in_use_max.get(),
            currentInputWatermark: self.input_watermark.get(),
            currentOutputWatermark: self.output_watermark.get(),
            watermarksPerSecond: self.watermarks_emitted.get() as f64 / wall * 1e9,
            numLateRecordsDropped: self.late_records_dropped.get(),
            numRecordsQuarantined: self.records_quarantined.get(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_shares_add_up_to_one_second_per_second() {
        let m = TaskMetrics::default();
        m.idle_ns.add(250_000_000);
        m.backpressured_ns.add(500_000_000);
        let r = m.report("t", 0, None, 1_000_000_000);
        assert_eq!(r.idleTimeMsPerSecond, 250.0);
        assert_eq!(r.backPressuredTimeMsPerSecond, 500.0);
        assert_eq!(r.busyTimeMsPerSecond, 250.0);
    }
}
