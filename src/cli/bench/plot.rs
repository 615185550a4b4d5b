//! An SVG chart of throughput against concurrency, one line per path
//! (`--plot FILE.svg`, built with `--features plot`).

use super::{
    paths::PathKind,
    report::{Report, Row},
    workload::Workload,
};
use plotters::prelude::*;
use std::path::Path;

/// Why the chart could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("could not draw {file}: {message}")]
pub struct PlotError {
    file: String,
    message: String,
}

const COLORS: [RGBColor; 5] = [
    RGBColor(200, 60, 60),
    RGBColor(30, 110, 200),
    RGBColor(60, 160, 60),
    RGBColor(200, 140, 20),
    RGBColor(130, 70, 170),
];

/// Draw operations per second against concurrent tasks for `workload`, one
/// line per path, both axes logarithmic.
pub fn throughput_svg(file: &Path, report: &Report, workload: Workload) -> Result<(), PlotError> {
    let failed = |message: String| PlotError {
        file: file.display().to_string(),
        message,
    };
    let rows: Vec<&Row> = report
        .results
        .iter()
        .filter(|r| r.workload == workload && r.ops_per_sec > 0.0)
        .collect();
    if rows.is_empty() {
        return Err(failed(format!(
            "no results of workload {}",
            workload.name()
        )));
    }
    let max_x = rows.iter().map(|r| r.concurrency).max().unwrap_or(1) as f64;
    let (min_y, max_y) = rows.iter().fold((f64::MAX, 0.0_f64), |(lo, hi), r| {
        (lo.min(r.ops_per_sec), hi.max(r.ops_per_sec))
    });
    let meta = &report.meta;
    let title = format!(
        "{}: {} on {}, rtt {} ms, pool {}",
        workload.name(),
        "ops/s vs concurrent tasks",
        meta.backend,
        meta.rtt_ms,
        meta.pool_size
    );
    let draw = || -> Result<(), Box<dyn std::error::Error>> {
        let root = SVGBackend::new(file, (900, 560)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(20)
            .x_label_area_size(45)
            .y_label_area_size(80)
            .build_cartesian_2d(
                (0.8_f64..max_x * 1.5).log_scale(),
                (min_y / 2.0..max_y * 2.0).log_scale(),
            )?;
        chart
            .configure_mesh()
            .x_desc("concurrent tasks")
            .y_desc("operations per second")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()?;
        for (i, path) in PathKind::ALL.into_iter().enumerate() {
            let mut points: Vec<(f64, f64)> = rows
                .iter()
                .filter(|r| r.path == path)
                .map(|r| (r.concurrency as f64, r.ops_per_sec))
                .collect();
            if points.is_empty() {
                continue;
            }
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            let color = COLORS[i % COLORS.len()];
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
                .label(path.name())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart.draw_series(points.iter().map(|p| Circle::new(*p, 4, color.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| failed(e.to_string()))
}
