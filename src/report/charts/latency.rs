//! Latency over time, with what happened above it: one lane per step action (the step's
//! span), then lanes of engine events (container start/kill/die, health_status, health probe
//! execs), then every request as a point (x = scheduled start, y = latency), failures in
//! their class's colour on top, p50/p99 per interval as lines, step spans shaded behind.

use super::{
    Chart, Dots, FONT, MAX_OK_POINTS, RIGHT_MARGIN, TimeAxis, WIDTH, Y_LABEL_AREA, action_color,
    err, finish, house_mesh, outcome_color, polyline, shade_steps, text_style, y_desc, y_range,
};
use crate::outcome::Outcome;
use crate::report::run_data::RunData;
use plotters::prelude::*;
use std::collections::HashMap;
use std::io;

const LANE_PX: u32 = 20;
const PLOT_PX: u32 = 380;
pub const P50_COLOR: RGBColor = RGBColor(0x1b, 0x9e, 0x3e);
pub const P99_COLOR: RGBColor = RGBColor(0xff, 0x6f, 0x00);
pub const START: RGBColor = RGBColor(0x2c, 0xa0, 0x2c);
pub const STOP: RGBColor = RGBColor(0xd6, 0x27, 0x28);
pub const KILL: RGBColor = RGBColor(0xff, 0x7f, 0x0e);
pub const PROBE: RGBColor = RGBColor(0x55, 0x55, 0x55);

enum Mark {
    /// A span with a label drawn inside it (truncated to fit).
    Span {
        from: f64,
        to: f64,
        color: RGBColor,
        label: String,
        failed: bool,
    },
    Tick {
        at: f64,
        color: RGBColor,
    },
}

struct Lane {
    name: String,
    marks: Vec<Mark>,
}

fn lanes(data: &RunData) -> Vec<Lane> {
    let mut lanes: Vec<Lane> = Vec::new();
    for s in &data.summary.steps {
        let name = format!("step: {}", s.action);
        let mark = Mark::Span {
            from: s.start_s,
            to: s.end_s,
            color: action_color(&s.action),
            label: format!("#{} {}", s.index, s.label),
            failed: !s.ok && !s.expected_failure,
        };
        match lanes.iter_mut().find(|l| l.name == name) {
            Some(l) => l.marks.push(mark),
            None => lanes.push(Lane {
                name,
                marks: vec![mark],
            }),
        }
    }
    let docker = || data.events.iter().filter(|e| e.source == "docker");
    let tick = |kinds: &[(&str, RGBColor)]| -> Vec<Mark> {
        docker()
            .filter_map(|e| {
                let &(_, color) = kinds.iter().find(|(k, _)| *k == e.kind)?;
                Some(Mark::Tick {
                    at: e.at_ms / 1e3,
                    color,
                })
            })
            .collect()
    };
    let containers = tick(&[("start", START), ("kill", KILL), ("die", STOP)]);
    let health: Vec<Mark> = docker()
        .filter(|e| e.kind == "health_status")
        .map(|e| Mark::Tick {
            at: e.at_ms / 1e3,
            color: match e.detail.as_str() {
                "healthy" => START,
                "unhealthy" => STOP,
                _ => PROBE,
            },
        })
        .collect();
    // A probe runs from exec_start to the next exec_die of the same container.
    let mut open: HashMap<&str, f64> = HashMap::new();
    let mut probes = Vec::new();
    for e in docker() {
        match e.kind.as_str() {
            "exec_start" => {
                open.insert(&e.subject, e.at_ms / 1e3);
            }
            "exec_die" => {
                if let Some(from) = open.remove(e.subject.as_str()) {
                    probes.push(Mark::Span {
                        from,
                        to: e.at_ms / 1e3,
                        color: PROBE,
                        label: String::new(),
                        failed: false,
                    });
                }
            }
            _ => {}
        }
    }
    for (name, marks) in [
        ("containers", containers),
        ("health_status", health),
        ("health probes", probes),
    ] {
        if !marks.is_empty() {
            lanes.push(Lane {
                name: name.into(),
                marks,
            });
        }
    }
    if let Some(c) = &data.summary.cluster {
        lanes.extend(cluster_lanes(c, data.summary.run.duration_s));
    }
    if let Some(c) = &data.summary.containers {
        lanes.extend(container_lanes(c, data.summary.run.duration_s));
    }
    lanes
}

/// A docker lab: the edge's upstream (each span labelled with its servers), then one lane
/// per container with its states.
fn container_lanes(c: &crate::report::ContainersOut, run_end: f64) -> Vec<Lane> {
    let span = |from: f64, to: Option<f64>, color, label: String| Mark::Span {
        from,
        to: to.unwrap_or(run_end),
        color,
        label,
        failed: false,
    };
    let mut lanes = vec![Lane {
        name: "upstream".into(),
        marks: c
            .upstream
            .iter()
            .map(|u| {
                let color = match u.switch.as_deref() {
                    Some("restart") => KILL,
                    _ => PROBE,
                };
                span(u.start_s, u.end_s, color, u.servers.join(", "))
            })
            .collect(),
    }];
    for l in &c.lanes {
        let color = match l.state.as_str() {
            "healthy" => START,
            "stopping" | "unhealthy" => STOP,
            _ => KILL,
        };
        let name = if l.container == crate::driver::containers::EDGE_CONTAINER {
            "edge (nginx)".to_string()
        } else {
            l.container.clone()
        };
        let mark = span(l.start_s, l.end_s, color, l.state.clone());
        match lanes.iter_mut().find(|x| x.name == name) {
            Some(lane) => lane.marks.push(mark),
            None => lanes.push(Lane {
                name,
                marks: vec![mark],
            }),
        }
    }
    lanes
}

/// A multi-node lab: the control plane's unavailable spans, then one lane per node with its
/// states (what the steps did to it, what the managers saw).
fn cluster_lanes(c: &crate::report::ClusterOut, run_end: f64) -> Vec<Lane> {
    let span = |from: f64, to: Option<f64>, color, label: &str| Mark::Span {
        from,
        to: to.unwrap_or(run_end),
        color,
        label: label.to_string(),
        failed: false,
    };
    let mut lanes = vec![Lane {
        name: "control plane".into(),
        marks: c
            .control_plane_unavailable
            .iter()
            .map(|s| span(s.start_s, s.end_s, STOP, "unavailable"))
            .collect(),
    }];
    for l in &c.lanes {
        let color = match l.state.as_str() {
            "stopped" | "down" => STOP,
            "leader" => START,
            "drain" | "paused" | "disconnected" | "unknown" => KILL,
            _ => PROBE,
        };
        let mark = span(l.start_s, l.end_s, color, &l.state);
        let name = format!("node {}", l.node);
        // A node's states overlap (stopped, down as the managers saw it, events lost): each
        // goes on the node's first row where it overlaps nothing, rows after the first unnamed.
        let first = match lanes.iter().position(|x| x.name == name) {
            Some(i) => i,
            None => {
                lanes.push(Lane {
                    name,
                    marks: Vec::new(),
                });
                lanes.len() - 1
            }
        };
        let rows = 1 + lanes[first + 1..]
            .iter()
            .take_while(|x| x.name.is_empty())
            .count();
        match (first..first + rows).find(|&i| !lanes[i].marks.iter().any(|m| overlaps(m, &mark))) {
            Some(i) => lanes[i].marks.push(mark),
            None => lanes.insert(
                first + rows,
                Lane {
                    name: String::new(),
                    marks: vec![mark],
                },
            ),
        }
    }
    lanes
}

fn overlaps(a: &Mark, b: &Mark) -> bool {
    match (a, b) {
        (Mark::Span { from, to, .. }, Mark::Span { from: f, to: t, .. }) => from < t && f < to,
        _ => false,
    }
}

/// The chart as one `<svg>`, its y range fitted to this run.
pub fn render(data: &RunData, axis: TimeAxis) -> io::Result<String> {
    render_with_y(data, axis, y_span(data))
}

/// The chart with a given y range (`compare` gives every run the same one).
pub fn render_with_y(data: &RunData, axis: TimeAxis, y: ((f64, f64), bool)) -> io::Result<String> {
    let lanes = lanes(data);
    let top = LANE_PX * lanes.len() as u32 + 10;
    let height = top + PLOT_PX;
    let mut svg = String::new();
    let mut extra = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (lane_area, plot_area) = root.split_vertically(top);
        draw_lanes(&lane_area, &lanes, axis)?;
        let chart = scatter_chart(&plot_area, data, axis, y)?;
        extra.push_str(&points(&chart, data, axis));
        extra.push_str(&interval_lines(&chart, data, axis));
        chart.plotting_area().present().map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(finish(svg, &extra))
}

fn draw_lanes(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    lanes: &[Lane],
    axis: TimeAxis,
) -> io::Result<()> {
    let n = lanes.len().max(1) as f64;
    let chart = ChartBuilder::on(area)
        .margin_top(6)
        .margin_right(RIGHT_MARGIN)
        .y_label_area_size(Y_LABEL_AREA)
        .build_cartesian_2d(axis.range(), 0.0..n)
        .map_err(err)?;
    let row = |i: usize| n - i as f64;
    for (i, lane) in lanes.iter().enumerate() {
        let (y0, y1) = (row(i) - 0.85, row(i) - 0.15);
        let (_, py) = chart.backend_coord(&(axis.start_s, row(i) - 0.5));
        area.draw(&Text::new(
            lane.name.clone(),
            (4, py - area.get_base_pixel().1 - 6),
            text_style(11.0 * 1.24),
        ))
        .map_err(err)?;
        area.draw(&PathElement::new(
            vec![
                chart.backend_coord(&(axis.start_s, row(i) - 1.0)),
                chart.backend_coord(&(axis.end_s, row(i) - 1.0)),
            ]
            .into_iter()
            .map(|(x, y)| (x - area.get_base_pixel().0, y - area.get_base_pixel().1))
            .collect::<Vec<_>>(),
            RGBColor(0xdd, 0xdd, 0xdd),
        ))
        .map_err(err)?;
        for m in &lane.marks {
            match m {
                Mark::Span {
                    from,
                    to,
                    color,
                    label,
                    failed,
                } => {
                    let (a, b) = (axis.x(*from), axis.x(*to).max(axis.x(*from)));
                    chart
                        .plotting_area()
                        .draw(&Rectangle::new(
                            [(a, y0), (b, y1)],
                            color.mix(0.85).filled(),
                        ))
                        .map_err(err)?;
                    if *failed {
                        chart
                            .plotting_area()
                            .draw(&Rectangle::new([(a, y0), (b, y1)], RED.stroke_width(2)))
                            .map_err(err)?;
                    }
                    let (pa, py) = chart.backend_coord(&(a, (y0 + y1) / 2.0));
                    let (pb, _) = chart.backend_coord(&(b, y0));
                    let fits = ((pb - pa - 6).max(0) / 6) as usize;
                    if !label.is_empty() && fits > 1 {
                        let text: String = label.chars().take(fits).collect();
                        root_text(area, &text, (pa + 3, py), 11.0)?;
                    }
                }
                Mark::Tick { at, color } => {
                    let x = axis.x(*at);
                    chart
                        .plotting_area()
                        .draw(&PathElement::new(
                            vec![(x, y0), (x, y1)],
                            color.stroke_width(2),
                        ))
                        .map_err(err)?;
                }
            }
        }
    }
    Ok(())
}

/// Text at absolute pixel `at` (vertically centred), drawn on `area`.
fn root_text(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    text: &str,
    at: (i32, i32),
    size: f64,
) -> io::Result<()> {
    let base = area.get_base_pixel();
    let style = TextStyle::from((FONT, size * 1.24).into_font())
        .color(&WHITE)
        .pos(plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Left,
            plotters::style::text_anchor::VPos::Center,
        ));
    area.draw(&Text::new(
        text.to_string(),
        (at.0 - base.0, at.1 - base.1),
        style,
    ))
    .map_err(err)
}

/// The y range that fits `data`'s requests and interval lines.
pub fn y_span(data: &RunData) -> ((f64, f64), bool) {
    let lines = data
        .summary
        .intervals
        .iter()
        .flat_map(|i| [i.p50_ms, i.p99_ms])
        .flatten();
    let all = data.points.iter().map(|r| r.latency_ms).chain(lines);
    let (min, max) = all.fold((f64::INFINITY, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    y_range(min, max)
}

fn scatter_chart<'a, 'b>(
    area: &'a DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
    data: &RunData,
    axis: TimeAxis,
    (y, zoomed): ((f64, f64), bool),
) -> io::Result<Chart<'a, 'b>> {
    let mut chart = ChartBuilder::on(area)
        .margin_right(RIGHT_MARGIN)
        .margin_top(4)
        .x_label_area_size(40)
        .y_label_area_size(Y_LABEL_AREA)
        .build_cartesian_2d(axis.range(), y.0..y.1)
        .map_err(err)?;
    house_mesh(&mut chart)
        .x_desc(axis.label())
        .y_desc(y_desc("latency (ms)", zoomed))
        .x_labels(20)
        .y_labels(8)
        .draw()
        .map_err(err)?;
    shade_steps(&mut chart, &data.summary.steps, axis, y)?;
    Ok(chart)
}

/// Every request: ok ones first (thinned above [`MAX_OK_POINTS`]), each failure class on top.
pub fn points(chart: &Chart, data: &RunData, axis: TimeAxis) -> String {
    let mut dots = Dots::default();
    let order: Vec<Outcome> = Outcome::ALL.into_iter().collect();
    let series: Vec<usize> = order
        .iter()
        .map(|&o| dots.series(outcome_color(o), if o == Outcome::Ok { 1.6 } else { 2.6 }))
        .collect();
    for r in &data.points {
        let s = series[r.outcome as usize];
        dots.add(s, chart, axis.x(r.scheduled_ms / 1e3), r.latency_ms);
    }
    dots.thin(series[Outcome::Ok as usize], MAX_OK_POINTS);
    dots.svg()
}

/// p50 and p99 of ok requests per interval, at the interval's middle.
pub fn interval_lines(chart: &Chart, data: &RunData, axis: TimeAxis) -> String {
    let s = &data.summary;
    let half = s.interval_ms / 2e3;
    let mut out = String::new();
    for (pick, color) in [
        (
            (|i: &crate::report::IntervalOut| i.p99_ms) as fn(&_) -> _,
            P99_COLOR,
        ),
        (|i: &crate::report::IntervalOut| i.p50_ms, P50_COLOR),
    ] {
        // A gap (no ok request in an interval) breaks the line rather than bridging it.
        let mut run: Vec<(f64, f64)> = Vec::new();
        for i in &s.intervals {
            match pick(i) {
                Some(v) => run.push((axis.x(i.start_s + half), v)),
                None if !run.is_empty() => {
                    out.push_str(&polyline(chart, &run, color, 2.0));
                    run.clear();
                }
                None => {}
            }
        }
        if !run.is_empty() {
            out.push_str(&polyline(chart, &run, color, 2.0));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{ClusterOut, LaneOut};

    #[test]
    fn overlapping_states_of_one_node_get_rows_of_their_own() {
        let lane = |node: &str, state: &str, start_s: f64, end_s: Option<f64>| LaneOut {
            node: node.into(),
            state: state.into(),
            start_s,
            end_s,
        };
        let c = ClusterOut {
            lanes: vec![
                lane("manager-1", "leader", 0.0, None),
                lane("worker-3", "stopped", 10.0, Some(58.0)),
                lane("worker-3", "down", 21.0, Some(59.0)),
                lane("worker-3", "events lost", 22.0, Some(58.0)),
                lane("worker-3", "stopped", 70.0, Some(80.0)),
                lane("worker-1", "drain", 5.0, Some(9.0)),
            ],
            control_plane_unavailable: Vec::new(),
            control_plane_unavailable_s: 0.0,
            reschedules: Vec::new(),
            requests_per_node: Default::default(),
            tasks_rejected: Default::default(),
        };
        let lanes = cluster_lanes(&c, 100.0);
        let rows: Vec<(&str, usize)> = lanes
            .iter()
            .map(|l| (l.name.as_str(), l.marks.len()))
            .collect();
        assert_eq!(
            rows,
            [
                ("control plane", 0),
                ("node manager-1", 1),
                ("node worker-3", 2),
                ("", 1),
                ("", 1),
                ("node worker-1", 1),
            ]
        );
    }
}
