//! report.html: one self-contained file (inline CSS and SVG, no script, nothing fetched) that
//! answers in a minute when each step ran, what failed and when, how latency moved, when the
//! versions switched and whether health probes lined up with latency spikes. Every string
//! that comes from the service, the engine or the scenario goes through [`esc`].

use super::charts::{self, TimeAxis, hex, outcome_color, version_color};
use super::run_data::RunData;
use super::{ReportError, Summary};
use crate::outcome::Outcome;

use std::io::{self, Write};
use std::path::Path;

/// Text made safe for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
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

    failure_table(out, s)?;
    phase_table(out, s)?;
    step_table(out, s)?;
    if let Some(c) = &s.cluster {
        cluster_table(out, c)?;
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
        if s.run.interrupted {
            " · <b>interrupted</b>"
        } else {
            ""
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

/// The same HdrHistogram figures as summary.txt: overall, then per phase.
fn percentile_table(out: &mut impl Write, s: &Summary) -> io::Result<()> {
    writeln!(
        out,
        "<table><tr><th></th><th>count</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>"
    )?;
    let rows = std::iter::once(("all", &s.latency_ms))
        .chain(s.phases.iter().map(|p| (p.name.as_str(), &p.latency_ms)));
    for (name, l) in rows {
        write!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td>",
            esc(name),
            l.count
        )?;
        for v in [l.p50, l.p90, l.p99, l.p999, l.max] {
            write!(out, "<td class=\"n\">{}</td>", opt_ms(v))?;
        }
        writeln!(out, "</tr>")?;
    }
    writeln!(
        out,
        "</table><p class=\"note\">ms, from scheduled start (HdrHistogram, 3 significant digits)</p>"
    )
}

/// Like `ab`'s "Failed requests" block: each class with its count, share, first and last
/// time, and its most frequent error text.
fn failure_table(out: &mut impl Write, s: &Summary) -> io::Result<()> {
    writeln!(out, "<h2>Failed requests</h2>")?;
    let sent = s.requests.total - s.requests.late;
    if s.failures.is_empty() {
        return writeln!(
            out,
            "<p>None: every one of {sent} sent requests got a 2xx/3xx.</p>"
        );
    }
    let mut body = String::new();
    for f in &s.failures {
        let dropped = s.dropped_classes.contains(&f.class);
        let color =
            Outcome::parse(&f.class).map_or_else(|| "#999".into(), |o| hex(outcome_color(o)));
        let common = if f.error_count > 0 {
            format!("{} ({}×)", esc(&f.error), f.error_count)
        } else {
            String::new()
        };
        body.push_str(&format!(
            "<tr{}><td><i class=\"sw\" style=\"background:{color}\"></i>{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td>{}</td><td class=\"n\">{:.2}</td><td class=\"n\">{:.2}</td><td>{common}</td></tr>\n",
            if dropped { " class=\"bad\"" } else { "" },
            esc(&f.class),
            f.count,
            pct(f.count, sent),
            if dropped { "yes" } else { "no" },
            f.first_start_s,
            f.last_start_s,
        ));
    }
    writeln!(
        out,
        "<table><tr><th>class</th><th>count</th><th>of sent</th><th>dropped?</th>\
         <th>first (s)</th><th>last (s)</th><th>most frequent error</th></tr>\n{body}</table>\
         <p class=\"note\">first and last: scheduled starts on the run clock</p>"
    )
}

/// A multi-node lab: control-plane outages, what happened to a lost node's tasks, and which
/// nodes served the requests.
fn cluster_table(out: &mut impl Write, c: &crate::report::ClusterOut) -> io::Result<()> {
    let end = |e: Option<f64>| e.map_or_else(|| "end of run".to_string(), |e| format!("{e:.1}"));
    let secs = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.1}"));
    writeln!(out, "<h2>Cluster</h2>")?;
    writeln!(
        out,
        "<p class=\"note\">Control plane unavailable (no manager answered rollcheck's poll): \
         {:.1} s in {} span(s). Node lanes are drawn above the latency chart.</p>",
        c.control_plane_unavailable_s,
        c.control_plane_unavailable.len()
    )?;
    if !c.control_plane_unavailable.is_empty() {
        writeln!(
            out,
            "<table><tr><th>unavailable from (s)</th><th>to (s)</th></tr>"
        )?;
        for sp in &c.control_plane_unavailable {
            writeln!(
                out,
                "<tr class=\"bad\"><td class=\"n\">{:.1}</td><td class=\"n\">{}</td></tr>",
                sp.start_s,
                end(sp.end_s)
            )?;
        }
        writeln!(out, "</table>")?;
    }
    if !c.reschedules.is_empty() {
        writeln!(
            out,
            "<table><tr><th>step</th><th>node</th><th>at (s)</th><th>tasks lost</th>\
             <th>running elsewhere after (s)</th><th>first request to them after (s)</th></tr>"
        )?;
        for r in &c.reschedules {
            writeln!(
                out,
                "<tr><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{:.1}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                r.step,
                esc(&r.node),
                r.at_s,
                r.tasks_lost,
                secs(r.running_elsewhere_after_s),
                secs(r.first_request_after_s)
            )?;
        }
        writeln!(out, "</table>")?;
    }
    writeln!(
        out,
        "<table><tr><th>node</th><th>ok requests served</th></tr>"
    )?;
    for (node, n) in &c.requests_per_node {
        writeln!(
            out,
            "<tr><td>{}</td><td class=\"n\">{n}</td></tr>",
            esc(node)
        )?;
    }
    writeln!(out, "</table>")?;
    if !c.tasks_rejected.is_empty() {
        writeln!(
            out,
            "<table><tr><th>tasks rejected by Swarm</th><th>error</th></tr>"
        )?;
        for (error, n) in &c.tasks_rejected {
            writeln!(
                out,
                "<tr><td class=\"n\">{n}</td><td>{}</td></tr>",
                esc(error)
            )?;
        }
        writeln!(out, "</table>")?;
    }
    Ok(())
}

fn phase_table(out: &mut impl Write, s: &Summary) -> io::Result<()> {
    writeln!(out, "<h2>Phases</h2>")?;
    writeln!(
        out,
        "<table><tr><th>phase</th><th>from (s)</th><th>to (s)</th><th>requests</th>\
         <th>dropped</th><th>p50 ms</th><th>p99 ms</th><th>max ms</th></tr>"
    )?;
    for p in &s.phases {
        writeln!(
            out,
            "<tr{}><td>{}</td><td class=\"n\">{:.1}</td><td class=\"n\">{:.1}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            if p.dropped > 0 { " class=\"bad\"" } else { "" },
            esc(&p.name),
            p.start_s,
            p.end_s,
            p.requests,
            p.dropped,
            opt_ms(p.latency_ms.p50),
            opt_ms(p.latency_ms.p99),
            opt_ms(p.latency_ms.max)
        )?;
    }
    writeln!(out, "</table>")
}

fn step_table(out: &mut impl Write, s: &Summary) -> io::Result<()> {
    writeln!(out, "<h2>Steps</h2>")?;
    if s.steps.is_empty() {
        return writeln!(out, "<p>No steps: load only.</p>");
    }
    writeln!(
        out,
        "<table><tr><th>#</th><th>action</th><th>step</th><th>start (s)</th><th>end (s)</th>\
         <th>took (s)</th><th>result</th><th>detail</th></tr>"
    )?;
    for st in &s.steps {
        let result = match (st.ok, st.expected_failure) {
            (true, false) => "ok",
            (false, true) => "failed, as expected",
            (true, true) => "ok, but expected to fail",
            (false, false) => "failed",
        };
        writeln!(
            out,
            "<tr{}><td class=\"n\">{}</td><td><i class=\"sw\" style=\"background:{}\"></i>{}</td><td>{}</td>\
             <td class=\"n\">{:.2}</td><td class=\"n\">{:.2}</td><td class=\"n\">{:.2}</td><td>{result}</td><td>{}</td></tr>",
            if st.ok == st.expected_failure {
                " class=\"bad\""
            } else {
                ""
            },
            st.index,
            hex(charts::action_color(&st.action)),
            esc(&st.action),
            esc(&st.label),
            st.start_s,
            st.end_s,
            st.end_s - st.start_s,
            esc(&st.detail)
        )?;
    }
    writeln!(out, "</table>")
}

/// Which task served what, and when (from the `task` response header of ok responses).
fn task_table(out: &mut impl Write, s: &Summary) -> io::Result<()> {
    writeln!(out, "<h2>Tasks that served requests</h2>")?;
    if s.tasks.is_empty() {
        return writeln!(
            out,
            "<p>No response named its task (a service other than rollcheck's test service).</p>"
        );
    }
    writeln!(
        out,
        "<table><tr><th>task</th><th>version</th><th>first served (s)</th>\
         <th>last served (s)</th><th>ok responses</th></tr>"
    )?;
    for t in &s.tasks {
        let versions: Vec<String> = t.versions.iter().map(|v| esc(v)).collect();
        writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{:.2}</td><td class=\"n\">{:.2}</td><td class=\"n\">{}</td></tr>",
            esc(&t.task),
            versions.join(", "),
            t.first_done_s,
            t.last_done_s,
            t.ok
        )?;
    }
    writeln!(
        out,
        "</table><p class=\"note\">times of the response's completion on the run clock</p>"
    )
}

fn env_table(out: &mut impl Write, s: &Summary) -> io::Result<()> {
    writeln!(out, "<h2>Environment</h2>")?;
    if s.environment.is_empty() {
        return writeln!(out, "<p>No lab: the run did not query an engine.</p>");
    }
    writeln!(out, "<table>")?;
    for (k, v) in &s.environment {
        writeln!(out, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v))?;
    }
    writeln!(out, "</table>")
}

fn events_list(out: &mut impl Write, data: &RunData) -> io::Result<()> {
    writeln!(
        out,
        "<h2>Events</h2><details><summary>{} events (steps, Docker, tasks, services, nodes, harness)</summary>",
        data.events.len()
    )?;
    writeln!(
        out,
        "<table><tr><th>at (s)</th><th>source</th><th>kind</th><th>subject</th><th>detail</th></tr>"
    )?;
    for e in &data.events {
        writeln!(
            out,
            "<tr><td class=\"n\">{:.3}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            e.at_ms / 1e3,
            esc(&e.source),
            esc(&e.kind),
            esc(&e.subject),
            esc(&e.detail)
        )?;
    }
    writeln!(out, "</table></details>")
}

/// Several runs on one page: each run's latency and outcomes charts on a shared x axis that
/// starts at its first step (so "how long after the update began" lines up), and a table.
pub fn render_compare(runs: &[RunData], out: &mut impl Write) -> io::Result<()> {
    head(out, "rollcheck: compare runs")?;
    writeln!(out, "<h1>Comparing {} runs</h1>", runs.len())?;
    compare_table(out, runs)?;
    let mut start = 0.0f64;
    let mut end = 1.0f64;
    for r in runs {
        let origin = r.first_step_start_s().unwrap_or(0.0);
        let whole = TimeAxis::of_run(r);
        start = start.min(-origin);
        end = end.max(whole.end_s - origin);
    }
    // One y range for all, so equal heights mean equal latencies.
    let spans = runs.iter().map(charts::latency::y_span);
    let (lo, hi) = spans.fold((f64::INFINITY, 0.0f64), |(lo, hi), ((a, b), _)| {
        (lo.min(a), hi.max(b))
    });
    let y = (
        (lo.min(hi), hi),
        runs.iter().all(|r| charts::latency::y_span(r).1),
    );
    for (i, r) in runs.iter().enumerate() {
        let s = &r.summary;
        let axis = TimeAxis {
            origin_s: r.first_step_start_s().unwrap_or(0.0),
            start_s: start,
            end_s: end,
        };
        writeln!(
            out,
            "<h2>{}. {} <span class=\"verdict {}\">{}</span></h2><p class=\"meta\">{} · {} · {}</p>",
            i + 1,
            esc(&s.scenario.title),
            s.verdict.as_str(),
            esc(&s.verdict.as_str().to_uppercase()),
            esc(&s.run.id),
            esc(&s.run.model),
            esc(&s.scenario.file)
        )?;
        legend_outcomes(out, r, true)?;
        writeln!(out, "{}", charts::latency::render_with_y(r, axis, y)?)?;
        writeln!(out, "{}", charts::outcomes::render(r, axis)?)?;
    }
    writeln!(out, "</body></html>")
}

fn compare_table(out: &mut impl Write, runs: &[RunData]) -> io::Result<()> {
    let failure_classes: Vec<Outcome> = Outcome::ALL
        .into_iter()
        .filter(|&o| o != Outcome::Ok && runs.iter().any(|r| r.summary.outcomes.get(o) > 0))
        .collect();
    write!(
        out,
        "<table><tr><th>#</th><th>run</th><th>verdict</th><th>requests</th><th>dropped</th>"
    )?;
    for o in &failure_classes {
        write!(out, "<th>{o}</th>")?;
    }
    writeln!(
        out,
        "<th>p50 ms</th><th>p99 ms</th><th>convergence (first step, s)</th></tr>"
    )?;
    for (i, r) in runs.iter().enumerate() {
        let s = &r.summary;
        write!(
            out,
            "<tr{}><td class=\"n\">{}</td><td>{}<br><span class=\"note\">{}</span></td><td>{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td>",
            if s.requests.dropped > 0 {
                " class=\"bad\""
            } else {
                ""
            },
            i + 1,
            esc(&s.scenario.title),
            esc(&s.run.id),
            esc(s.verdict.as_str()),
            s.requests.total,
            s.requests.dropped
        )?;
        for &o in &failure_classes {
            write!(out, "<td class=\"n\">{}</td>", s.outcomes.get(o))?;
        }
        let convergence = s
            .steps
            .iter()
            .min_by(|a, b| a.start_s.total_cmp(&b.start_s))
            .map_or_else(|| "–".into(), |st| format!("{:.1}", st.end_s - st.start_s));
        writeln!(
            out,
            "<td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{convergence}</td></tr>",
            opt_ms(s.latency_ms.p50),
            opt_ms(s.latency_ms.p99)
        )?;
    }
    writeln!(out, "</table>")
}
