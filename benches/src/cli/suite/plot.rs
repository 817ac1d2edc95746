//! The suites' plots: panels of lines with points, side by side, as SVG (plotters' SVG
//! backend only).

use std::path::Path;

use super::SweepPoint;

/// One line of a panel.
pub(super) struct Series {
    pub(super) label: String,
    pub(super) points: Vec<(f64, f64)>,
}

/// One chart: its caption, axis descriptions and lines (a legend when there are several).
pub(super) struct Panel {
    pub(super) caption: String,
    pub(super) x_desc: &'static str,
    pub(super) y_desc: &'static str,
    pub(super) series: Vec<Series>,
}

/// Width of one panel, pixels.
const PANEL_WIDTH: u32 = 500;
const HEIGHT: u32 = 420;

/// Draws `panels` side by side into the SVG file `path`; both axes start at 0.
pub(super) fn panels(path: &Path, panels: &[Panel]) -> Result<(), String> {
    use plotters::prelude::*;
    let err = |e: &dyn std::fmt::Display| format!("plotting {}: {e}", path.display());
    let width = PANEL_WIDTH * panels.len().max(1) as u32;
    let root = SVGBackend::new(path, (width, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let colors = [RED, BLUE, MAGENTA, GREEN, BLACK, CYAN];
    for (panel, area) in panels
        .iter()
        .zip(root.split_evenly((1, panels.len().max(1))))
    {
        let points = || panel.series.iter().flat_map(|s| s.points.iter());
        let x_max = points().map(|p| p.0).fold(0.0, f64::max).max(1e-3) * 1.05;
        let y_max = points().map(|p| p.1).fold(0.0, f64::max).max(1e-3) * 1.15;
        let mut chart = ChartBuilder::on(&area)
            .caption(&panel.caption, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc(panel.x_desc)
            .y_desc(panel.y_desc)
            .draw()
            .map_err(|e| err(&e))?;
        for (series, color) in panel.series.iter().zip(colors.iter().cycle()) {
            let color = *color;
            chart
                .draw_series(LineSeries::new(series.points.iter().copied(), &color))
                .map_err(|e| err(&e))?
                .label(series.label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
            chart
                .draw_series(
                    series
                        .points
                        .iter()
                        .map(|&p| Circle::new(p, 3, color.filled())),
                )
                .map_err(|e| err(&e))?;
        }
        if panel.series.len() > 1 {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| err(&e))?;
        }
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// The event-time suite's plot: late share and result latency against the watermark delay.
pub(super) fn plot(path: &Path, sweep: &[SweepPoint]) -> Result<(), String> {
    let series = |label: &str, f: fn(&SweepPoint) -> Option<f64>| Series {
        label: label.to_owned(),
        points: sweep
            .iter()
            .filter_map(|p| f(p).map(|v| (p.delay_s as f64, v)))
            .collect(),
    };
    let x_desc = "watermark delay (bounded out-of-orderness), s";
    panels(
        path,
        &[
            Panel {
                caption: "Records dropped as late".into(),
                x_desc,
                y_desc: "% of records in",
                series: vec![series("late", |p| Some(p.late_share * 100.0))],
            },
            Panel {
                caption: "Result latency (processing time)".into(),
                x_desc,
                y_desc: "ms",
                series: vec![
                    series("p50", |p| p.result_latency_p50_ms),
                    series("p99", |p| p.result_latency_p99_ms),
                ],
            },
        ],
    )
}
