//! Outcomes per interval: one stacked bar per interval, ok at the bottom, each failure class
//! stacked above it in its colour, step spans shaded behind.

use super::{
    RIGHT_MARGIN, TimeAxis, WIDTH, Y_LABEL_AREA, err, house_mesh, outcome_color, shade_steps,
};
use crate::outcome::Outcome;
use crate::report::run_data::RunData;
use plotters::prelude::*;
use std::io;

const HEIGHT: u32 = 240;

pub fn render(data: &RunData, axis: TimeAxis) -> io::Result<String> {
    let s = &data.summary;
    let width_s = s.interval_ms / 1e3;
    let y_max = s
        .intervals
        .iter()
        .map(|i| i.outcomes.total())
        .max()
        .unwrap_or(0)
        .max(1) as f64
        * 1.1;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .margin_right(RIGHT_MARGIN)
            .margin_top(8)
            .x_label_area_size(40)
            .y_label_area_size(Y_LABEL_AREA)
            .build_cartesian_2d(axis.range(), 0.0..y_max)
            .map_err(err)?;
        house_mesh(&mut chart)
            .x_desc(axis.label())
            .y_desc("requests per interval")
            .x_labels(20)
            .y_labels(6)
            .draw()
            .map_err(err)?;
        shade_steps(&mut chart, &s.steps, axis, (0.0, y_max))?;
        let mut bars = Vec::new();
        for i in &s.intervals {
            let (x0, x1) = (axis.x(i.start_s), axis.x(i.start_s + width_s));
            let gap = (x1 - x0) * 0.08;
            let mut base = 0.0;
            for o in Outcome::ALL {
                let n = i.outcomes.get(o) as f64;
                if n > 0.0 {
                    bars.push(Rectangle::new(
                        [(x0 + gap, base), (x1 - gap, base + n)],
                        outcome_color(o).filled(),
                    ));
                    base += n;
                }
            }
        }
        chart.draw_series(bars).map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}
