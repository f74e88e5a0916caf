//! Version mix over time: the share of ok responses per serving version in each interval,
//! stacked to 100 %, so the window in which old and new versions both answered shows as the
//! stretch where more than one colour is present. Intervals without an ok response stay blank.

use super::{
    RIGHT_MARGIN, TimeAxis, WIDTH, Y_LABEL_AREA, err, house_mesh, shade_steps, version_color,
};
use crate::report::run_data::RunData;
use plotters::prelude::*;
use std::io;

const HEIGHT: u32 = 200;

/// Versions in the order of their colours (sorted by name, as in summary.json).
pub fn versions(data: &RunData) -> Vec<&str> {
    data.summary.versions.keys().map(String::as_str).collect()
}

pub fn render(data: &RunData, axis: TimeAxis) -> io::Result<String> {
    let s = &data.summary;
    let names = versions(data);
    let width_s = s.interval_ms / 1e3;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .margin_right(RIGHT_MARGIN)
            .margin_top(8)
            .x_label_area_size(40)
            .y_label_area_size(Y_LABEL_AREA)
            .build_cartesian_2d(axis.range(), 0.0..100.0)
            .map_err(err)?;
        house_mesh(&mut chart)
            .x_desc(axis.label())
            .y_desc("% of ok responses")
            .x_labels(20)
            .y_labels(5)
            .draw()
            .map_err(err)?;
        shade_steps(&mut chart, &s.steps, axis, (0.0, 100.0))?;
        let mut bars = Vec::new();
        for i in &s.intervals {
            let total: u64 = i.versions.values().sum();
            if total == 0 {
                continue;
            }
            let (x0, x1) = (axis.x(i.start_s), axis.x(i.start_s + width_s));
            let mut base = 0.0;
            for (n, name) in names.iter().enumerate() {
                let share = *i.versions.get(*name).unwrap_or(&0) as f64 * 100.0 / total as f64;
                if share > 0.0 {
                    bars.push(Rectangle::new(
                        [(x0, base), (x1, base + share)],
                        version_color(n).filled(),
                    ));
                    base += share;
                }
            }
        }
        chart.draw_series(bars).map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}
