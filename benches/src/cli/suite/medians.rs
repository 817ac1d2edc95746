//! Medians of the repetitions: per configuration and metric, the median, lowest and highest
//! value over the rounds, and their cells in `report.md`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::report::median;

/// A metric the suite takes medians of: its name and its value in one run (`None`: the run
/// has none, e.g. a latency without samples).
pub(super) type Metric<R> = (&'static str, fn(&R) -> Option<f64>);

/// Per configuration, per metric.
pub(super) type Medians = BTreeMap<String, BTreeMap<&'static str, Summary>>;

/// One run of a configuration.
pub(super) trait Run {
    /// The name of the configuration it ran.
    fn config(&self) -> &str;
}

/// Median, lowest and highest of one metric over the repetitions.
#[derive(Debug, Clone, Copy, Serialize)]
pub(super) struct Summary {
    pub(super) median: f64,
    pub(super) min: f64,
    pub(super) max: f64,
    /// (max − min) / median: the run-to-run swing.
    pub(super) spread: f64,
}

/// Per configuration in `configs`, the summary of every metric over its runs; a metric no run
/// of a configuration has is left out. O(configs × metrics × runs).
pub(super) fn medians<'a, R: Run>(
    configs: impl IntoIterator<Item = &'a str>,
    runs: &[R],
    metrics: &[Metric<R>],
) -> Medians {
    let mut out = BTreeMap::new();
    for config in configs {
        let mut summaries = BTreeMap::new();
        for (name, value) in metrics {
            let values: Vec<f64> = runs
                .iter()
                .filter(|r| r.config() == config)
                .filter_map(value)
                .collect();
            if let Some(m) = median(&values) {
                let min = values.iter().copied().fold(f64::INFINITY, f64::min);
                let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let spread = if m.abs() > 0.0 {
                    (max - min) / m.abs()
                } else {
                    0.0
                };
                summaries.insert(
                    *name,
                    Summary {
                        median: m,
                        min,
                        max,
                        spread,
                    },
                );
            }
        }
        out.insert(config.to_owned(), summaries);
    }
    out
}

/// The median of `metric` for `config`, when there is one.
pub(super) fn get(medians: &Medians, config: &str, metric: &str) -> Option<f64> {
    medians
        .get(config)
        .and_then(|m| m.get(metric))
        .map(|s| s.median)
}

/// `12.34` or `-`.
pub(super) fn num(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.decimals$}"))
}

/// The median and the lowest–highest range, as `median (min–max)`, scaled; `-` without one.
pub(super) fn cell(
    medians: &Medians,
    config: &str,
    metric: &str,
    scale: f64,
    decimals: usize,
) -> String {
    match medians.get(config).and_then(|m| m.get(metric)) {
        Some(s) => format!(
            "{:.decimals$} ({:.decimals$}–{:.decimals$})",
            s.median * scale,
            s.min * scale,
            s.max * scale
        ),
        None => "-".to_owned(),
    }
}
