//! Run reports: what ran, on what machine, what came in and out, how fast, and every task's
//! metrics; written as `report.json` and printed as a summary table.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;
use weir_core::metrics::TaskReport;

/// The machine a run happened on.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Machine {
    /// Logical cores available to the process.
    pub cores: usize,
    /// The CPU model, from `/proc/cpuinfo` where there is one.
    pub cpu_model: String,
}

impl Machine {
    /// Reads the machine's facts.
    pub fn detect() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, model)| model.trim().to_owned())
            })
            .unwrap_or_else(|| std::env::consts::ARCH.to_owned());
        Self { cores, cpu_model }
    }
}

/// Processing-time latency percentiles, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Latency {
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Maximum.
    pub max_ms: f64,
    /// Number of samples.
    pub samples: u64,
}

impl Latency {
    /// Percentiles of a histogram of nanoseconds; `None` when it is empty.
    pub fn from_ns(histogram: &Histogram<u64>) -> Option<Self> {
        if histogram.is_empty() {
            return None;
        }
        let ms = |ns: u64| ns as f64 / 1e6;
        Some(Self {
            p50_ms: ms(histogram.value_at_quantile(0.5)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            p999_ms: ms(histogram.value_at_quantile(0.999)),
            max_ms: ms(histogram.max()),
            samples: histogram.len(),
        })
    }
}

/// The median of `values` (the mean of the middle two for an even count); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    })
}

/// The per-task table of a weir run.
pub fn task_table(tasks: &[TaskReport]) -> String {
    let width = tasks.iter().map(|t| t.task.len()).max().unwrap_or(4).max(4);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:width$}  sub core  busy  idle    bp  inPool outPool    recordsIn   recordsOut",
        "task"
    );
    for t in tasks {
        let core = t.core.map_or_else(|| "-".to_owned(), |c| c.to_string());
        let _ = writeln!(
            out,
            "{:width$}  {:>3} {:>4} {:>5.0} {:>5.0} {:>5.0}  {:>5.1}% {:>6.1}% {:>12} {:>12}",
            t.task,
            t.subtask,
            core,
            t.busyTimeMsPerSecond,
            t.idleTimeMsPerSecond,
            t.backPressuredTimeMsPerSecond,
            t.inPoolUsage * 100.0,
            t.outPoolUsage * 100.0,
            t.numRecordsIn,
            t.numRecordsOut,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn latency_percentiles_come_from_the_histogram() {
        let mut h = Histogram::<u64>::new(3).unwrap();
        for ms in 1..=100u64 {
            h.record(ms * 1_000_000).unwrap();
        }
        let l = Latency::from_ns(&h).unwrap();
        assert!((l.p50_ms - 50.0).abs() < 0.1, "{l:?}");
        assert!((l.max_ms - 100.0).abs() < 0.1, "{l:?}");
        assert_eq!(l.samples, 100);
    }
}
