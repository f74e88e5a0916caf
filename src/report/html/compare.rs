//! compare.html: saved runs side by side, a table and their charts aligned on the first step.

use super::*;

/// Several runs on one page: each run's latency and outcomes charts on a shared x axis that
/// starts at its first step (so "how long after the update began" lines up), and a table.
pub fn render_compare(runs: &[RunData], out: &mut impl Write) -> io::Result<()> {
    head(out, "rollcheck: compare runs")?;
    writeln!(out, "<h1>Comparing {} runs</h1>", runs.len())?;
    compare_table(out, runs)?;
    aligned_charts(out, runs, false)?;
    writeln!(out, "</body></html>")
}

/// One page for the failure-mode catalogue: `intro` (its own table, already HTML), then each
/// pair's compare table and its charts side by side, aligned on the first step.
pub fn render_pairs(
    title: &str,
    intro: &str,
    pairs: &[(String, Vec<RunData>)],
    out: &mut impl Write,
) -> io::Result<()> {
    head(out, title)?;
    writeln!(out, "<h1>{}</h1>{intro}", esc(title))?;
    for (heading, runs) in pairs {
        writeln!(out, "<h2>{}</h2>", esc(heading))?;
        compare_table(out, runs)?;
        aligned_charts(out, runs, true)?;
    }
    writeln!(out, "</body></html>")
}

/// Each run's latency and outcomes charts, on one x axis (seconds from its first step) and
/// one y range; one below the other, or in columns.
fn aligned_charts(out: &mut impl Write, runs: &[RunData], side_by_side: bool) -> io::Result<()> {
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
    if side_by_side {
        writeln!(
            out,
            "<div style=\"display:grid;grid-template-columns:repeat({},1fr);gap:12px\">",
            runs.len()
        )?;
    }
    for (i, r) in runs.iter().enumerate() {
        let s = &r.summary;
        let axis = TimeAxis {
            origin_s: r.first_step_start_s().unwrap_or(0.0),
            start_s: start,
            end_s: end,
        };
        // Under a pair's own heading in the catalogue.
        let h = if side_by_side { "h3" } else { "h2" };
        if side_by_side {
            writeln!(out, "<div>")?;
        }
        writeln!(
            out,
            "<{h}>{}. {} <span class=\"verdict {}\">{}</span></{h}><p class=\"meta\">{} · {} · {}</p>",
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
        if side_by_side {
            writeln!(out, "</div>")?;
        }
    }
    if side_by_side {
        writeln!(out, "</div>")?;
    }
    Ok(())
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
