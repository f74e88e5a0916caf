//! report.html: one self-contained file (inline CSS and SVG, no script, nothing fetched) that
//! answers in a minute when each step ran, what failed and when, how latency moved, when the
//! versions switched and whether health probes lined up with latency spikes. Every string
//! that comes from the service, the engine or the scenario goes through [`esc`].

mod compare;
mod tables;

pub use compare::{render_compare, render_pairs};
use tables::*;

use super::charts::{self, TimeAxis, hex, outcome_color, version_color};
use super::run_data::RunData;
use super::{ReportError, Summary};
use crate::outcome::Outcome;

use std::io::{self, Write};
use std::path::Path;

/// Text made safe for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    crate::escape::markup(s)
}

/// Loads the run in `dir` and writes `dir/report.html`.
pub fn write_report_html(dir: &Path) -> Result<(), ReportError> {
    write_report_html_of(dir, &RunData::load(dir)?)
}

/// Writes `dir/report.html` for `data` (a run just measured, or one loaded from `dir`).
pub fn write_report_html_of(dir: &Path, data: &RunData) -> Result<(), ReportError> {
    let path = dir.join("report.html");
    let io_err = |source| ReportError::Io {
        path: path.clone(),
        source,
    };
    let mut out = io::BufWriter::new(std::fs::File::create(&path).map_err(io_err)?);
    render(data, &mut out).map_err(io_err)?;
    out.flush().map_err(io_err)
}

const CSS: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;margin:24px auto;max-width:1240px;padding:0 12px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 6px;border-bottom:1px solid #ddd;padding-bottom:3px}
.meta{color:#555}.verdict{display:inline-block;padding:3px 12px;border-radius:4px;font-weight:700;color:#fff;letter-spacing:.05em}
.pass{background:#2a8a3e}.fail{background:#c62828}.inconclusive{background:#b26a00}
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f5f5f5}td.n{text-align:right;font-variant-numeric:tabular-nums}tr.bad td{background:#fdecea}
.legend{margin:4px 0 2px;font-size:13px}.legend span{margin-right:14px;white-space:nowrap}
.sw{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:4px;vertical-align:-1px}
.line{display:inline-block;width:18px;height:3px;margin-right:4px;vertical-align:3px}
.note{color:#555;font-size:13px;margin:2px 0}svg{max-width:100%;height:auto;display:block}
pre{background:#f7f7f7;padding:8px;overflow-x:auto;font-size:12px}details{margin:6px 0}
.cards{display:flex;gap:10px;flex-wrap:wrap;margin:10px 0}.card{border:1px solid #ddd;border-radius:4px;padding:6px 12px;min-width:110px}
.card b{display:block;font-size:20px}.card.bad b{color:#c62828}
@media print{body{margin:0;max-width:none}h2{break-after:avoid}svg,table{break-inside:avoid}details>*{display:block}}
"#;

fn head(out: &mut impl Write, title: &str) -> io::Result<()> {
    writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{CSS}</style></head><body>",
        esc(title)
    )
}

fn f1(v: f64) -> String {
    format!("{v:.1}")
}

fn opt_ms(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_string(), f1)
}

fn pct(n: u64, of: u64) -> String {
    if of == 0 {
        "–".into()
    } else {
        format!("{:.2} %", n as f64 * 100.0 / of as f64)
    }
}

pub fn render(data: &RunData, out: &mut impl Write) -> io::Result<()> {
    let s = &data.summary;
    head(out, &format!("rollcheck: {}", s.scenario.title))?;
    header(out, s)?;
    let axis = TimeAxis::of_run(data);

    writeln!(out, "<h2>Steps, events and latency over time</h2>")?;
    writeln!(
        out,
        "<p class=\"note\">Lanes on top: each step's span (a red outline = failed), container \
         start/kill/die ticks, health_status ticks and health-probe execs. Below: every request \
         at its scheduled start (x) with its latency (y); shaded bands are the steps. Points on \
         the same pixel are drawn once; failures are always drawn.</p>"
    )?;
    legend_outcomes(out, data, true)?;
    legend_lanes(out)?;
    writeln!(out, "{}", charts::latency::render(data, axis)?)?;

    writeln!(out, "<h2>Outcomes per interval ({} ms)</h2>", s.interval_ms)?;
    legend_outcomes(out, data, false)?;
    writeln!(out, "{}", charts::outcomes::render(data, axis)?)?;

    if s.attribution.foreign(s.requests.ok) {
        writeln!(
            out,
            "<p class=\"note\"><b>Not attributed:</b> {}.</p>",
            esc(super::Attribution::NOTICE)
        )?;
    }
    writeln!(out, "<h2>Version mix over time</h2>")?;
    writeln!(
        out,
        "<p class=\"note\">Share of ok responses per serving version in each interval \
         (X-Rollcheck-Version). More than one colour = the mixed window. Blank = no ok response.</p>"
    )?;
    legend_versions(out, data)?;
    writeln!(out, "{}", charts::versions::render(data, axis)?)?;

    writeln!(out, "<h2>Connect time vs time to first byte</h2>")?;
    writeln!(
        out,
        "<p class=\"note\">A +1 s row in the top panel is a TCP SYN retransmit (the network or a \
         full accept queue), not service time; the service's own time is in the bottom panel.</p>"
    )?;
    writeln!(out, "{}", charts::connect::render(data, axis)?)?;

    writeln!(out, "<h2>Latency distribution (ok requests)</h2>")?;
    legend_percentiles(out)?;
    writeln!(out, "{}", charts::percentiles::render(data)?)?;
    percentile_table(out, s)?;
    entry_table(out, s)?;

    failure_table(out, s)?;
    if let Some(t) = &s.server_truth {
        writeln!(
            out,
            "<p class=\"note\"><b>Server truth</b>: {}</p>",
            esc(&t.line())
        )?;
    }
    if let Some(g) = &s.generators {
        generator_table(out, g)?;
    }
    phase_table(out, s)?;
    step_table(out, s)?;
    probe_table(out, s)?;
    if let Some(c) = &s.cluster {
        cluster_table(out, c)?;
    }
    if let Some(c) = &s.containers {
        upstream_table(out, c)?;
    }
    task_table(out, s)?;
    env_table(out, s)?;
    writeln!(out, "<h2>Scenario</h2>")?;
    writeln!(
        out,
        "<p class=\"note\">{}</p><pre>{}</pre>",
        esc(&s.scenario.file),
        esc(&data.scenario)
    )?;
    events_list(out, data)?;
    writeln!(
        out,
        "<p class=\"note\">rollcheck {} · summary schema {}</p></body></html>",
        esc(&s.rollcheck_version),
        s.schema_version
    )
}

fn header(out: &mut impl Write, s: &Summary) -> io::Result<()> {
    let verdict = s.verdict.as_str();
    writeln!(
        out,
        "<h1>{}</h1><p class=\"meta\">{} · run {} · started {} · {:.1} s{}<br>target {} · {} · {}</p>",
        esc(&s.scenario.title),
        esc(&s.scenario.file),
        esc(&s.run.id),
        esc(&s.run.started_utc),
        s.run.duration_s,
        match (s.run.interrupted, s.run.recovered) {
            (_, true) => " · <b>recovered</b> from requests.csv and events.csv",
            (true, false) => " · <b>interrupted</b>",
            (false, false) => "",
        },
        esc(&s.run.target),
        esc(&s.run.model),
        if s.run.keepalive {
            "keep-alive connections"
        } else {
            "new connection per request"
        }
    )?;
    writeln!(
        out,
        "<p><span class=\"verdict {verdict}\">{}</span></p>",
        verdict.to_uppercase()
    )?;
    let r = &s.requests;
    writeln!(out, "<div class=\"cards\">")?;
    let card = |out: &mut dyn Write, label: &str, value: String, bad: bool| {
        writeln!(
            out,
            "<div class=\"card{}\">{label}<b>{value}</b></div>",
            if bad { " bad" } else { "" }
        )
    };
    card(out, "requests", r.total.to_string(), false)?;
    card(out, "ok", r.ok.to_string(), false)?;
    card(
        out,
        "dropped",
        format!("{} ({})", r.dropped, pct(r.dropped, r.total - r.late)),
        r.dropped > 0,
    )?;
    if r.late > 0 {
        card(out, "late (harness)", r.late.to_string(), false)?;
    }
    card(out, "p50 ms", opt_ms(s.latency_ms.p50), false)?;
    card(out, "p99 ms", opt_ms(s.latency_ms.p99), false)?;
    card(out, "max ms", opt_ms(s.latency_ms.max), false)?;
    writeln!(out, "</div>")?;
    if !s.gate.is_empty() {
        writeln!(
            out,
            "<table><tr><th>gate</th><th>limit</th><th>value</th><th>result</th></tr>"
        )?;
        for g in &s.gate {
            writeln!(
                out,
                "<tr{}><td>{}</td><td class=\"n\">{} {}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                if g.passed { "" } else { " class=\"bad\"" },
                esc(&g.threshold),
                g.bound.symbol(),
                esc(&g.unit.format(g.limit)),
                g.value
                    .map_or_else(|| "–".into(), |v| esc(&g.unit.format(v))),
                if g.passed { "pass" } else { "<b>fail</b>" }
            )?;
        }
        writeln!(out, "</table>")?;
    }
    if !s.problems.is_empty() {
        writeln!(
            out,
            "<p><b>Problems</b> (why the run is inconclusive):</p><ul>"
        )?;
        for p in &s.problems {
            writeln!(out, "<li>{}</li>", esc(p))?;
        }
        writeln!(out, "</ul>")?;
    }
    let between = s
        .requests
        .dropped_between_s
        .map(|[first, last]| {
            format!(
                "; dropped between {first:.2} s and {last:.2} s of the run ({:.2} s)",
                last - first
            )
        })
        .unwrap_or_default();
    writeln!(
        out,
        "<p class=\"note\">dropped = {} (late requests are the harness's own limit and never count){between}</p>",
        esc(&s.dropped_classes.join(" + "))
    )
}

fn legend_outcomes(out: &mut impl Write, data: &RunData, lines: bool) -> io::Result<()> {
    write!(out, "<div class=\"legend\">")?;
    for (o, n) in data.summary.outcomes.iter() {
        if n > 0 || o == Outcome::Ok {
            write!(
                out,
                "<span><i class=\"sw\" style=\"background:{}\"></i>{o} ({n})</span>",
                hex(outcome_color(o))
            )?;
        }
    }
    if lines {
        write!(
            out,
            "<span><i class=\"line\" style=\"background:{}\"></i>p50 per interval</span>\
             <span><i class=\"line\" style=\"background:{}\"></i>p99 per interval</span>",
            hex(charts::latency::P50_COLOR),
            hex(charts::latency::P99_COLOR)
        )?;
    }
    writeln!(out, "</div>")
}

fn legend_lanes(out: &mut impl Write) -> io::Result<()> {
    use charts::latency::{KILL, PROBE, START, STOP};
    writeln!(
        out,
        "<div class=\"legend\">lanes: <span><i class=\"sw\" style=\"background:{}\"></i>container start / healthy</span>\
         <span><i class=\"sw\" style=\"background:{}\"></i>kill (signal)</span>\
         <span><i class=\"sw\" style=\"background:{}\"></i>die (exit) / unhealthy</span>\
         <span><i class=\"sw\" style=\"background:{}\"></i>health probe running (exec_start → exec_die)</span></div>",
        hex(START),
        hex(KILL),
        hex(STOP),
        hex(PROBE)
    )
}

fn legend_versions(out: &mut impl Write, data: &RunData) -> io::Result<()> {
    write!(out, "<div class=\"legend\">")?;
    for (n, v) in charts::versions::versions(data).into_iter().enumerate() {
        let count = data.summary.versions.get(v).copied().unwrap_or(0);
        write!(
            out,
            "<span><i class=\"sw\" style=\"background:{}\"></i>version {} ({count} ok)</span>",
            hex(version_color(n)),
            esc(v)
        )?;
    }
    if data.summary.versions.is_empty() {
        write!(out, "<span>no version header in any response</span>")?;
    }
    writeln!(out, "</div>")
}

fn legend_percentiles(out: &mut impl Write) -> io::Result<()> {
    write!(out, "<div class=\"legend\">")?;
    for (name, c) in charts::percentiles::SERIES {
        write!(
            out,
            "<span><i class=\"line\" style=\"background:{}\"></i>{name}</span>",
            hex(c)
        )?;
    }
    writeln!(out, "</div>")
}
