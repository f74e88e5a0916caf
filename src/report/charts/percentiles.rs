//! Latency distribution of ok requests (from scheduled start), overall and per phase, as a
//! percentile curve on HdrHistogram's tail axis: x = -log10(1 - q), so 90 %, 99 %, 99.9 % …
//! are equally spaced and the tail is as wide as the body. Drawn from the report model's
//! curves (HdrHistogram, the same figures as summary.txt), never from the requests.

use super::{RIGHT_MARGIN, WIDTH, err, house_mesh, polyline, y_desc, y_range};
use crate::report::run_data::RunData;
use plotters::prelude::*;
use std::io;

const HEIGHT: u32 = 320;
/// Curves and their colours, in legend order.
pub const SERIES: [(&str, RGBColor); 4] = [
    ("all", RGBColor(0x22, 0x22, 0x22)),
    ("before", RGBColor(0x4c, 0x78, 0xa8)),
    ("during", RGBColor(0xe4, 0x57, 0x56)),
    ("after", RGBColor(0x54, 0xa2, 0x4b)),
];

/// The curve of each series of [`SERIES`] (`[quantile, ms]`; empty when it had no request).
pub fn curves(data: &RunData) -> Vec<&[[f64; 2]]> {
    SERIES
        .iter()
        .map(|(name, _)| match *name {
            "all" => data.summary.latency_curve.as_slice(),
            phase => data
                .summary
                .phases
                .iter()
                .find(|p| p.name == phase)
                .map_or(&[][..], |p| p.latency_curve.as_slice()),
        })
        .collect()
}

/// x of a curve point: the tail axis, with the max (q = 1) at the curve's last step.
fn tail_x(q: f64, t_end: f64) -> f64 {
    if q >= 1.0 { t_end } else { -(1.0 - q).log10() }
}

fn tail_label(t: &f64) -> String {
    if (t - t.round()).abs() > 1e-9 {
        return String::new();
    }
    // n steps right is the 1 - 10^-n quantile: p90, p99, p99.9, ...
    let n = t.round() as i32;
    let q = 100.0 - 100.0 / 10f64.powi(n);
    format!("p{:.*}", (n - 2).max(0) as usize, q)
}

pub fn render(data: &RunData) -> io::Result<String> {
    let curves = curves(data);
    // Where each curve's tail axis ends: its last point below the max, rounded up.
    let t_end = |c: &[[f64; 2]]| {
        c.iter()
            .filter(|p| p[0] < 1.0)
            .map(|p| tail_x(p[0], 0.0))
            .fold(0.0f64, f64::max)
            .ceil()
            .max(2.0)
    };
    let t_max = curves.iter().map(|c| t_end(c)).fold(2.0f64, f64::max);
    let all = curves[0];
    let ((y0, y1), zoomed) = y_range(
        all.first().map_or(0.0, |p| p[1]),
        all.last().map_or(1.0, |p| p[1]),
    );
    let mut svg = String::new();
    let mut extra = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .margin_right(RIGHT_MARGIN)
            .margin_top(8)
            .x_label_area_size(40)
            .y_label_area_size(super::Y_LABEL_AREA)
            .build_cartesian_2d(0.0..t_max, y0..y1)
            .map_err(err)?;
        house_mesh(&mut chart)
            .x_desc("percentile (tail axis: each step is 10x rarer)")
            .y_desc(y_desc("latency (ms)", zoomed))
            .x_labels((t_max as usize) * 2 + 1)
            .y_labels(8)
            .x_label_formatter(&tail_label)
            .draw()
            .map_err(err)?;
        for (i, c) in curves.iter().enumerate() {
            if c.is_empty() {
                continue;
            }
            let end = t_end(c);
            let pts: Vec<(f64, f64)> = c.iter().map(|p| (tail_x(p[0], end), p[1])).collect();
            let width = if i == 0 { 2.5 } else { 1.6 };
            extra.push_str(&polyline(&chart, &pts, SERIES[i].1, width));
        }
        root.present().map_err(err)?;
    }
    Ok(super::finish(svg, &extra))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_labels_name_the_percentiles() {
        assert_eq!(tail_label(&0.0), "p0");
        assert_eq!(tail_label(&1.0), "p90");
        assert_eq!(tail_label(&2.0), "p99");
        assert_eq!(tail_label(&3.0), "p99.9");
        assert_eq!(tail_label(&4.0), "p99.99");
        assert_eq!(tail_label(&1.5), "");
    }
}
