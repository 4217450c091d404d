//! SVG plots with plotters.

use std::path::Path;

use plotters::prelude::*;

use crate::cluster::Impl;
use crate::scenarios::{Curve, SweepPoint, MEMBERLIST_QUOTED};

fn color(i: Impl) -> RGBColor {
    match i {
        Impl::Ours => RGBColor(31, 119, 180),
        Impl::OursMonitored => RGBColor(44, 160, 44),
        Impl::ChitchatV0 => RGBColor(214, 39, 40),
        Impl::ChitchatV1 => RGBColor(255, 127, 14),
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
    for imp in Impl::ALL {
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

/// Steady bytes per node per second against crash detection time, one
/// curve per implementation, each point labelled with its gossip interval;
/// memberlist's quoted figures drawn apart (hollow grey triangles). Both
/// axes logarithmic.
pub fn sweep(path: &Path, points: &[SweepPoint], n: usize) -> Result<(), String> {
    let root = SVGBackend::new(path, (800, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let ok = |p: &&SweepPoint| p.2.is_finite() && p.3.is_finite() && p.2 > 0.0 && p.3 > 0.0;
    let xs = points
        .iter()
        .filter(ok)
        .map(|p| p.3)
        .chain(MEMBERLIST_QUOTED.iter().map(|q| q.2));
    let ys = points
        .iter()
        .filter(ok)
        .map(|p| p.2)
        .chain(MEMBERLIST_QUOTED.iter().map(|q| q.1));
    let (x0, x1) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
    let (y0, y1) = ys.fold((f64::MAX, f64::MIN), |(a, b), y| (a.min(y), b.max(y)));
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("steady traffic against crash detection time, N = {n}, by gossip interval"),
            ("sans-serif", 18),
        )
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (x0 / 1.5..x1 * 1.5).log_scale(),
            (y0 / 2.0..y1 * 2.0).log_scale(),
        )
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("time until every node reports a crashed node dead (s, log scale)")
        .y_desc("bytes per node per second (log scale)")
        .draw()
        .map_err(|e| e.to_string())?;
    for imp in Impl::ALL {
        let mut series: Vec<(f64, f64, u128)> = points
            .iter()
            .filter(ok)
            .filter(|p| p.0 == imp)
            .map(|p| (p.3, p.2, p.1.as_millis()))
            .collect();
        if series.is_empty() {
            continue;
        }
        series.sort_by_key(|p| p.2);
        let col = color(imp);
        chart
            .draw_series(LineSeries::new(
                series.iter().map(|p| (p.0, p.1)),
                col.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label(imp.name())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], col.stroke_width(2)));
        chart
            .draw_series(
                series
                    .iter()
                    .map(|p| Circle::new((p.0, p.1), 3, col.filled())),
            )
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(series.iter().map(|p| {
                Text::new(
                    format!("{} ms", p.2),
                    (p.0, p.1),
                    ("sans-serif", 11).into_font().color(&col),
                )
            }))
            .map_err(|e| e.to_string())?;
    }
    let grey = RGBColor(110, 110, 110);
    chart
        .draw_series(
            MEMBERLIST_QUOTED
                .iter()
                .map(|q| TriangleMarker::new((q.2, q.1), 6, grey.stroke_width(2))),
        )
        .map_err(|e| e.to_string())?
        .label("memberlist (quoted, not measured)")
        .legend(move |(x, y)| TriangleMarker::new((x + 8, y), 5, grey.stroke_width(2)));
    chart
        .draw_series(MEMBERLIST_QUOTED.iter().map(|q| {
            Text::new(
                q.0.to_string(),
                (q.2, q.1),
                ("sans-serif", 11).into_font().color(&grey),
            )
        }))
        .map_err(|e| e.to_string())?;
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}
