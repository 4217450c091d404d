//! SVG plots with plotters.

use std::path::Path;

use plotters::prelude::*;

use crate::cluster::Impl;
use crate::scenarios::Curve;

fn color(i: Impl) -> RGBColor {
    match i {
        Impl::Ours => RGBColor(31, 119, 180),
        Impl::Chitchat => RGBColor(214, 39, 40),
    }
}

/// Fraction of nodes that know a new key against time.
pub fn propagation(path: &Path, curves: &[&Curve]) -> Result<(), String> {
    let root = SVGBackend::new(path, (720, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let t_max = curves
        .iter()
        .flat_map(|c| c.2.iter().map(|p| p.0))
        .fold(0.05, f64::max);
    let n = curves.first().map_or(0, |c| c.1);
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("a new key spreading, N = {n}"), ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..t_max * 1.05, 0.0..1.02)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("seconds since the key was set")
        .y_desc("fraction of nodes holding it")
        .draw()
        .map_err(|e| e.to_string())?;
    for c in curves {
        let col = color(c.0);
        chart
            .draw_series(LineSeries::new(c.2.iter().copied(), col.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(c.0.name())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], col.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// Steady-state bytes per node per second against cluster size.
pub fn bytes_vs_n(path: &Path, points: &[(Impl, usize, f64)]) -> Result<(), String> {
    let root = SVGBackend::new(path, (720, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let n_max = points.iter().map(|p| p.1).max().unwrap_or(10) as f64;
    let y_max = points
        .iter()
        .map(|p| p.2)
        .filter(|v| v.is_finite())
        .fold(1.0, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption("steady-state traffic", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..n_max * 1.05, 0.0..y_max * 1.1)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("nodes (N)")
        .y_desc("bytes per node per second")
        .draw()
        .map_err(|e| e.to_string())?;
    for imp in [Impl::Ours, Impl::Chitchat] {
        let series: Vec<(f64, f64)> = points
            .iter()
            .filter(|p| p.0 == imp && p.2.is_finite())
            .map(|p| (p.1 as f64, p.2))
            .collect();
        if series.is_empty() {
            continue;
        }
        let col = color(imp);
        chart
            .draw_series(LineSeries::new(series.clone(), col.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(imp.name())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], col.stroke_width(2)));
        chart
            .draw_series(series.iter().map(|&p| Circle::new(p, 3, col.filled())))
            .map_err(|e| e.to_string())?;
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}
