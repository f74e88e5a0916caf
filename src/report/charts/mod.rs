//! The report's charts, one file each, all inline SVG. plotters (SVG backend, no font
//! features: its text is plain `<text>` the browser sets) draws frames, axes, bands, bars and
//! lines. Dense per-request point clouds are appended by [`Dots`] as one compact `<path>` per
//! series instead of one `<circle>` each: ~12 bytes a point instead of ~95 keeps a run of a
//! million requests under 5 MB, and points that land on the same pixel are drawn once (no
//! visible difference, failures are never sampled away).

pub mod connect;
pub mod latency;
pub mod outcomes;
pub mod percentiles;
pub mod versions;

use crate::outcome::Outcome;
use plotters::chart::MeshStyle;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use std::collections::HashSet;
use std::fmt::Write as _;
use std::io;

/// Every time chart is this wide with this left margin, so their x axes line up on the page.
pub const WIDTH: u32 = 1200;
pub const Y_LABEL_AREA: u32 = 110;
pub const RIGHT_MARGIN: u32 = 24;
pub const FONT: &str = "sans-serif";

/// Above this many ok points (after merging same-pixel points) the latency charts keep an
/// evenly spread sample of them; failures are always all drawn.
pub const MAX_OK_POINTS: usize = 50_000;

pub type Chart<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

pub fn err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("chart: {e}"))
}

/// The x axis of the time charts in seconds: run time, or (in `compare`) time since the first
/// step started.
#[derive(Debug, Clone, Copy)]
pub struct TimeAxis {
    /// Subtracted from run time.
    pub origin_s: f64,
    pub start_s: f64,
    pub end_s: f64,
}

impl TimeAxis {
    /// The whole run on run time.
    pub fn of_run(data: &super::run_data::RunData) -> TimeAxis {
        let s = &data.summary;
        let last_interval = s.intervals.last().map_or(0.0, |i| i.start_s) + s.interval_ms / 1e3;
        let last_request = data
            .points
            .iter()
            .map(|r| r.scheduled_ms / 1e3)
            .fold(0.0, f64::max);
        let end = s.run.duration_s.max(last_interval).max(last_request);
        TimeAxis {
            origin_s: 0.0,
            start_s: 0.0,
            end_s: if end > 0.0 { end } else { 1.0 },
        }
    }

    /// Chart x for a run time in seconds.
    pub fn x(&self, run_s: f64) -> f64 {
        run_s - self.origin_s
    }

    pub fn range(&self) -> std::ops::Range<f64> {
        self.start_s..self.end_s
    }

    pub fn label(&self) -> &'static str {
        if self.origin_s == 0.0 {
            "seconds since the load started (by scheduled start)"
        } else {
            "seconds since the first step started"
        }
    }
}

pub fn outcome_color(o: Outcome) -> RGBColor {
    match o {
        Outcome::Ok => RGBColor(0x4c, 0x78, 0xa8),
        Outcome::Http5xx => RGBColor(0xd6, 0x27, 0x28),
        Outcome::Http4xx => RGBColor(0xff, 0x9f, 0x1c),
        Outcome::Refused => RGBColor(0x94, 0x3f, 0xbd),
        Outcome::ConnectTimeout => RGBColor(0x8c, 0x56, 0x4b),
        Outcome::TlsHandshake => RGBColor(0x17, 0xbe, 0xcf),
        Outcome::Reset => RGBColor(0xe3, 0x1a, 0x9c),
        Outcome::Timeout => RGBColor(0x11, 0x11, 0x11),
        Outcome::Late => RGBColor(0x99, 0x99, 0x99),
    }
}

/// Fill colour of a step span, by the step's action.
pub fn action_color(action: &str) -> RGBColor {
    const PALETTE: [RGBColor; 6] = [
        RGBColor(0xf2, 0xb7, 0x05),
        RGBColor(0x2a, 0x9d, 0x8f),
        RGBColor(0xe7, 0x6f, 0x51),
        RGBColor(0x6a, 0x4c, 0x93),
        RGBColor(0x26, 0x46, 0x53),
        RGBColor(0x8a, 0xb1, 0x7d),
    ];
    let h = action
        .bytes()
        .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    PALETTE[h as usize % PALETTE.len()]
}

/// Colour of the n-th version (versions sorted by name).
pub fn version_color(n: usize) -> RGBColor {
    const PALETTE: [RGBColor; 8] = [
        RGBColor(0x4c, 0x78, 0xa8),
        RGBColor(0xf5, 0x85, 0x18),
        RGBColor(0x54, 0xa2, 0x4b),
        RGBColor(0xb2, 0x79, 0xa2),
        RGBColor(0xe4, 0x57, 0x56),
        RGBColor(0x72, 0xb7, 0xb2),
        RGBColor(0xee, 0xca, 0x3b),
        RGBColor(0x9d, 0x75, 0x5d),
    ];
    PALETTE[n % PALETTE.len()]
}

pub fn hex(c: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

/// The grid and labels every chart shares: a light grid, readable labels, plain numbers.
pub fn house_mesh<'a, 'b, 'c>(
    chart: &'c mut Chart<'a, 'b>,
) -> MeshStyle<'a, 'c, RangedCoordf64, RangedCoordf64, SVGBackend<'b>> {
    let mut mesh = chart.configure_mesh();
    mesh.x_label_formatter(&num)
        .y_label_formatter(&num)
        .label_style(text_style(12.0 * 1.24))
        .axis_desc_style(text_style(12.0 * 1.24))
        .light_line_style(RGBColor(0xf0, 0xf0, 0xf0))
        .bold_line_style(RGBColor(0xe0, 0xe0, 0xe0));
    mesh
}

pub fn text_style(size: f64) -> TextStyle<'static> {
    TextStyle::from((FONT, size).into_font()).color(&BLACK)
}

/// Points in pixels, grouped into series drawn in order; same-pixel points merge.
#[derive(Default)]
pub struct Dots {
    series: Vec<Series>,
}

/// Colour, radius, points in drawing order, and the pixels already taken.
type Series = (RGBColor, f64, Vec<(i32, i32)>, HashSet<(i32, i32)>);

impl Dots {
    /// Starts a series; `radius` in pixels.
    pub fn series(&mut self, color: RGBColor, radius: f64) -> usize {
        self.series
            .push((color, radius, Vec::new(), HashSet::default()));
        self.series.len() - 1
    }

    /// Adds a data point of series `s`, dropped when it falls outside the plot area.
    pub fn add(&mut self, s: usize, chart: &Chart, x: f64, y: f64) {
        let (xr, yr) = chart.plotting_area().get_pixel_range();
        let p = chart.backend_coord(&(x, y));
        if !xr.contains(&p.0) || p.1 < yr.start || p.1 > yr.end {
            return;
        }
        let (_, _, points, seen) = &mut self.series[s];
        if seen.insert(p) {
            points.push(p);
        }
    }

    /// Keeps at most `max` points of series `s`, evenly spread over the drawing order.
    pub fn thin(&mut self, s: usize, max: usize) {
        let points = &mut self.series[s].2;
        if points.len() > max {
            let step = points.len() as f64 / max as f64;
            *points = (0..max)
                .map(|i| points[(i as f64 * step) as usize])
                .collect();
        }
    }

    pub fn svg(&self) -> String {
        let mut out = String::new();
        for (color, r, points, _) in &self.series {
            if points.is_empty() {
                continue;
            }
            let _ = write!(
                out,
                r#"<path fill="none" stroke="{}" stroke-width="{}" stroke-linecap="round" stroke-opacity="0.8" d=""#,
                hex(*color),
                r * 2.0
            );
            for (x, y) in points {
                let _ = write!(out, "M{x} {y}h0");
            }
            out.push_str("\"/>\n");
        }
        out
    }
}

/// A polyline in data coordinates (for lines that must sit above the point clouds).
pub fn polyline(chart: &Chart, points: &[(f64, f64)], color: RGBColor, width: f64) -> String {
    let mut out = format!(
        r#"<polyline fill="none" stroke="{}" stroke-width="{width}" stroke-linejoin="round" points=""#,
        hex(color)
    );
    for &(x, y) in points {
        let (px, py) = chart.backend_coord(&(x, y));
        let _ = write!(out, "{px},{py} ");
    }
    out.push_str("\"/>\n");
    out
}

/// plotters' finished SVG with `extra` (already valid, escaped SVG) drawn on top.
pub fn finish(mut svg: String, extra: &str) -> String {
    if let Some(end) = svg.rfind("</svg>") {
        svg.insert_str(end, extra);
    }
    svg
}

/// Shades each step's span over the whole plot height, in its action's colour.
pub fn shade_steps(
    chart: &mut Chart,
    steps: &[super::StepOut],
    axis: TimeAxis,
    y: (f64, f64),
) -> io::Result<()> {
    chart
        .draw_series(steps.iter().map(|s| {
            Rectangle::new(
                [(axis.x(s.start_s), y.0), (axis.x(s.end_s), y.1)],
                action_color(&s.action).mix(0.13).filled(),
            )
        }))
        .map_err(err)?;
    Ok(())
}

/// Plotters' tick labels: short numbers (1.5, 20, 1000).
pub fn num(v: &f64) -> String {
    if v.abs() >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// The y range for values in [min, max]: from 0, unless every value sits high above 0 (e.g.
/// a 1 s service), where starting at 0 would flatten the differences the chart is for.
/// Returns the range and whether it was zoomed (the axis title then says so).
pub fn y_range(min: f64, max: f64) -> ((f64, f64), bool) {
    let max = max.max(1.0);
    if min.is_finite() && min > max * 0.4 {
        let pad = ((max - min) * 0.15).max(max * 0.005);
        (((min - pad).max(0.0), max + pad), true)
    } else {
        ((0.0, max * 1.08), false)
    }
}

pub fn y_desc(what: &str, zoomed: bool) -> String {
    if zoomed {
        format!("{what} (axis not from 0)")
    } else {
        what.to_string()
    }
}
