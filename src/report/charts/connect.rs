//! Connect time vs time to first byte, per request over time, in panels on one x axis: TCP
//! connect (connected − sent) on top, the TLS handshake under it (https only), first byte
//! after connect below. A SYN retransmit shows as a +1 s (or +3 s) row in the top panel while
//! the service time below stays flat; a slow service shows the other way round. Requests
//! that never connected are absent.

use super::{
    Dots, MAX_OK_POINTS, RIGHT_MARGIN, TimeAxis, WIDTH, Y_LABEL_AREA, err, house_mesh,
    outcome_color, shade_steps, y_desc, y_range,
};
use crate::outcome::Outcome;
use crate::report::run_data::{Point, RunData};
use plotters::prelude::*;
use std::io;

const PANEL_PX: u32 = 200;

pub fn render(data: &RunData, axis: TimeAxis) -> io::Result<String> {
    let mut svg = String::new();
    let mut extra = String::new();
    {
        type Pick = fn(&Point) -> Option<f64>;
        let mut panels: Vec<(&str, Pick)> = vec![("connect (ms)", |p| p.connect_ms)];
        // https: the handshake between connect and the request, in its own panel.
        if data.points.iter().any(|p| p.tls_ms.is_some()) {
            panels.push(("TLS handshake (ms)", |p| p.tls_ms));
        }
        panels.push(("first byte after connect (ms)", |p| p.ttfb_ms));
        let n = panels.len() as u32;
        let root =
            SVGBackend::with_string(&mut svg, (WIDTH, PANEL_PX * n + 30)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        // Every panel PANEL_PX high; the last one also holds the x axis.
        let breaks: Vec<u32> = (1..n).map(|i| PANEL_PX * i - 10).collect();
        let areas = root.split_by_breakpoints(Vec::<u32>::new(), breaks);
        let panels = areas
            .iter()
            .zip(panels)
            .enumerate()
            .map(|(i, (area, (desc, pick)))| (area, desc, pick, i + 1 == n as usize));
        for (area, desc, pick, x_axis) in panels {
            let (min, max) = data
                .points
                .iter()
                .filter_map(pick)
                .fold((f64::INFINITY, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
            let ((y0, y1), zoomed) = y_range(min, max);
            let desc = y_desc(desc, zoomed);
            let mut chart = ChartBuilder::on(area)
                .margin_right(RIGHT_MARGIN)
                .margin_top(8)
                .x_label_area_size(if x_axis { 40 } else { 0 })
                .y_label_area_size(Y_LABEL_AREA)
                .build_cartesian_2d(axis.range(), y0..y1)
                .map_err(err)?;
            let mut mesh = house_mesh(&mut chart);
            mesh.y_desc(&desc).x_labels(20).y_labels(5);
            if x_axis {
                mesh.x_desc(axis.label());
            }
            mesh.draw().map_err(err)?;
            shade_steps(&mut chart, &data.summary.steps, axis, (y0, y1))?;
            let mut dots = Dots::default();
            let series: Vec<usize> = Outcome::ALL
                .iter()
                .map(|&o| dots.series(outcome_color(o), if o == Outcome::Ok { 1.6 } else { 2.6 }))
                .collect();
            for r in &data.points {
                if let Some(v) = pick(r) {
                    let x = axis.x(r.scheduled_ms / 1e3);
                    dots.add(series[r.outcome as usize], &chart, x, v);
                }
            }
            dots.thin(series[Outcome::Ok as usize], MAX_OK_POINTS / 2);
            extra.push_str(&dots.svg());
        }
        root.present().map_err(err)?;
    }
    Ok(super::finish(svg, &extra))
}
