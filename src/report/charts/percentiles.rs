//! Latency distribution of ok requests (from scheduled start), overall and per phase, as a
//! percentile curve on HdrHistogram's tail axis: x = -log10(1 - q), so 90 %, 99 %, 99.9 % …
//! are equally spaced and the tail is as wide as the body. Computed from the loaded requests.

use super::{RIGHT_MARGIN, WIDTH, err, house_mesh, polyline, y_desc, y_range};
use crate::outcome::Outcome;
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

/// Sorted latencies of ok requests per series of [`SERIES`]; a request belongs to the phase
/// whose [start, end) holds its scheduled start.
pub fn sorted_latencies(data: &RunData) -> Vec<Vec<f64>> {
    let mut out = vec![Vec::new(); SERIES.len()];
    for r in data.requests.iter().filter(|r| r.outcome == Outcome::Ok) {
        out[0].push(r.latency_ms);
        let at = r.scheduled_ms / 1e3;
        let phase = data
            .summary
            .phases
            .iter()
            .find(|p| p.start_s <= at && at < p.end_s)
            .and_then(|p| SERIES.iter().position(|(n, _)| *n == p.name));
        if let Some(i) = phase {
            out[i].push(r.latency_ms);
        }
    }
    for v in &mut out {
        v.sort_by(f64::total_cmp);
    }
    out
}

/// The value at quantile q (nearest rank).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
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
    let sorted = sorted_latencies(data);
    let n_all = sorted[0].len().max(2) as f64;
    let t_max = n_all.log10().ceil().max(2.0);
    let ((y0, y1), zoomed) = y_range(
        sorted[0].first().copied().unwrap_or(0.0),
        sorted[0].last().copied().unwrap_or(1.0),
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
        for (i, v) in sorted.iter().enumerate() {
            if v.is_empty() {
                continue;
            }
            // A curve ends where its sample runs out: q = 1 - 1/n.
            let end = (v.len() as f64).log10().min(t_max);
            let steps = 400;
            let pts: Vec<(f64, f64)> = (0..=steps)
                .map(|k| {
                    let t = end * k as f64 / steps as f64;
                    (t, quantile(v, 1.0 - 10f64.powf(-t)))
                })
                .chain(std::iter::once((end, *v.last().unwrap_or(&0.0))))
                .collect();
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

    #[test]
    fn quantile_is_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&v, 1.0), 100.0);
    }
}
