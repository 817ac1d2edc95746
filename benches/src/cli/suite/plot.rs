//! The suite's plot: late share and result latency against the watermark delay, as SVG.

use std::path::Path;

use super::SweepPoint;

/// Late share and result latency against the watermark delay, two panels.
pub(super) fn plot(path: &Path, sweep: &[SweepPoint]) -> Result<(), String> {
    use plotters::prelude::*;
    let err = |e: &dyn std::fmt::Display| format!("plotting {}: {e}", path.display());
    let root = SVGBackend::new(path, (1000, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let (left, right) = root.split_horizontally(500);
    let x_max = sweep.iter().map(|p| p.delay_s).max().unwrap_or(1) as f64 * 1.05;

    let late: Vec<(f64, f64)> = sweep
        .iter()
        .map(|p| (p.delay_s as f64, p.late_share * 100.0))
        .collect();
    let late_max = late.iter().map(|p| p.1).fold(0.0, f64::max).max(1e-3) * 1.15;
    let mut chart = ChartBuilder::on(&left)
        .caption("Records dropped as late", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max, 0.0..late_max)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("watermark delay (bounded out-of-orderness), s")
        .y_desc("% of records in")
        .draw()
        .map_err(|e| err(&e))?;
    chart
        .draw_series(LineSeries::new(late.iter().copied(), &RED))
        .map_err(|e| err(&e))?;
    chart
        .draw_series(late.iter().map(|&p| Circle::new(p, 3, RED.filled())))
        .map_err(|e| err(&e))?;

    let series = |f: fn(&SweepPoint) -> Option<f64>| -> Vec<(f64, f64)> {
        sweep
            .iter()
            .filter_map(|p| f(p).map(|v| (p.delay_s as f64, v)))
            .collect()
    };
    let p50 = series(|p| p.result_latency_p50_ms);
    let p99 = series(|p| p.result_latency_p99_ms);
    let latency_max = p50
        .iter()
        .chain(&p99)
        .map(|p| p.1)
        .fold(0.0, f64::max)
        .max(1e-3)
        * 1.15;
    let mut chart = ChartBuilder::on(&right)
        .caption("Result latency (processing time)", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max, 0.0..latency_max)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("watermark delay (bounded out-of-orderness), s")
        .y_desc("ms")
        .draw()
        .map_err(|e| err(&e))?;
    for (label, points, color) in [("p50", &p50, BLUE), ("p99", &p99, MAGENTA)] {
        chart
            .draw_series(LineSeries::new(points.iter().copied(), &color))
            .map_err(|e| err(&e))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(|e| err(&e))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
