//! The report's tables: percentiles, failures, the cluster, phases, steps, tasks, the
//! environment and the event list, each from the report model.

use super::*;

/// The same HdrHistogram figures as summary.txt: overall, then per phase.
pub(super) fn percentile_table(out: &mut impl Write, s: &Summary) -> io::Result<()> {
    writeln!(
        out,
        "<table><tr><th></th><th>count</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>"
    )?;
    let rows = std::iter::once(("all", &s.latency_ms))
        .chain(s.phases.iter().map(|p| (p.name.as_str(), &p.latency_ms)))
        .chain(s.tls_handshake_ms.iter().map(|t| ("TLS handshake", t)));
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
        "</table><p class=\"note\">ms, from scheduled start (HdrHistogram, 3 significant digits); the TLS handshake row is the handshake alone, every request that finished one</p>"
    )
}

/// `[load] generators` > 1: each agent's node, share, failures, clock and loss.
pub(super) fn generator_table(
    out: &mut impl Write,
    g: &crate::report::GeneratorsOut,
) -> io::Result<()> {
    writeln!(out, "<h2>Generators</h2>")?;
    writeln!(
        out,
        "<table><tr><th>shard</th><th>node</th><th>requests</th><th>not ok</th><th>clock offset</th><th>±</th><th>lost at</th><th>CPU</th><th>peak RSS</th></tr>"
    )?;
    for a in &g.agents {
        writeln!(
            out,
            "<tr><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{:+.2} ms</td><td class=\"n\">{:.2} ms</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            a.shard,
            esc(&a.node),
            a.requests,
            a.failed,
            a.clock_offset_ms,
            a.clock_uncertainty_ms,
            a.lost_at_s.map(|t| format!("{t:.1} s")).unwrap_or_default(),
            a.cpu_s.map(|c| format!("{c:.2} s")).unwrap_or_default(),
            a.peak_rss_mb
                .map(|m| format!("{m:.1} MB"))
                .unwrap_or_default()
        )?;
    }
    writeln!(
        out,
        "</table><p class=\"note\">Every figure above is computed on the {} agents' merged records. Two agents' instants (or an agent's and a step's) are within ±{:.2} ms of each other (the largest |offset| + its uncertainty); the agents' histograms added give p50 {:.1} ms, p99 {:.1} ms. Merging them cost this process {:.2} s of CPU (peak RSS {:.1} MB).</p>",
        g.count,
        g.timing_error_bound_ms,
        g.histograms.p50_ms,
        g.histograms.p99_ms,
        g.coordinator.cpu_s,
        g.coordinator.peak_rss_mb
    )
}

/// Per `[[load.request]]` entry: requests, ok, dropped and ok latency.
pub(super) fn entry_table(out: &mut impl Write, s: &Summary) -> io::Result<()> {
    if s.requests_by_entry.is_empty() {
        return Ok(());
    }
    writeln!(out, "<h2>Per request entry</h2>")?;
    writeln!(
        out,
        "<table><tr><th>entry</th><th>requests</th><th>ok</th><th>dropped</th><th>p50</th><th>p99</th><th>max</th></tr>"
    )?;
    for e in &s.requests_by_entry {
        write!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>",
            esc(&e.name),
            e.requests,
            e.ok,
            e.dropped
        )?;
        for v in [e.latency_ms.p50, e.latency_ms.p99, e.latency_ms.max] {
            write!(out, "<td class=\"n\">{}</td>", opt_ms(v))?;
        }
        writeln!(out, "</tr>")?;
    }
    writeln!(
        out,
        "</table><p class=\"note\">ms, ok requests from scheduled start; dropped counts the gate's classes</p>"
    )
}

/// Like `ab`'s "Failed requests" block: each class with its count, share, first and last
/// time, and its most frequent error text.
pub(super) fn failure_table(out: &mut impl Write, s: &Summary) -> io::Result<()> {
    writeln!(out, "<h2>Failed requests</h2>")?;
    let sent = s.requests.total - s.requests.late;
    if s.failures.is_empty() {
        let failed = sent.saturating_sub(s.requests.ok);
        return if failed > 0 {
            // A summary.json written before the failures table existed.
            writeln!(
                out,
                "<p>{failed} of {sent} sent requests failed; this summary.json has no per-class \
                 detail (written by an older rollcheck): see the outcome counts above.</p>"
            )
        } else {
            writeln!(
                out,
                "<p>None: every one of {sent} sent requests got a 2xx/3xx.</p>"
            )
        };
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

/// A docker lab: what the edge proxied to, from when, and how long nginx's old workers
/// lived after each reload.
pub(super) fn upstream_table(
    out: &mut impl Write,
    c: &crate::report::ContainersOut,
) -> io::Result<()> {
    writeln!(out, "<h2>Upstream</h2>")?;
    writeln!(
        out,
        "<p class=\"note\">What the edge proxied to. Container and upstream lanes are drawn \
         above the latency chart.</p>"
    )?;
    writeln!(out, "<table><tr><th>from (s)</th><th>upstream</th></tr>")?;
    for u in &c.upstream {
        writeln!(
            out,
            "<tr><td class=\"n\">{:.2}</td><td>{}</td></tr>",
            u.start_s,
            esc(&u.describe())
        )?;
    }
    writeln!(out, "</table>")
}

/// A multi-node lab: control-plane outages, what happened to a lost node's tasks, and which
/// nodes served the requests.
pub(super) fn cluster_table(out: &mut impl Write, c: &crate::report::ClusterOut) -> io::Result<()> {
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

pub(super) fn phase_table(out: &mut impl Write, s: &Summary) -> io::Result<()> {
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

pub(super) fn step_table(out: &mut impl Write, s: &Summary) -> io::Result<()> {
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
pub(super) fn task_table(out: &mut impl Write, s: &Summary) -> io::Result<()> {
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

pub(super) fn env_table(out: &mut impl Write, s: &Summary) -> io::Result<()> {
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

pub(super) fn events_list(out: &mut impl Write, data: &RunData) -> io::Result<()> {
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

/// Health probes against the baseline, as summary.txt has them, with what was left out.
pub(super) fn probe_table(out: &mut impl Write, s: &Summary) -> io::Result<()> {
    let Some(h) = &s.health_probes else {
        return Ok(());
    };
    writeln!(out, "<h2>Health probes</h2>")?;
    writeln!(
        out,
        "<table><tr><th>ok requests</th><th>count</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>"
    )?;
    for (name, l) in [("in probe", &h.in_probe_ms), ("outside", &h.outside_ms)] {
        write!(out, "<tr><td>{name}</td><td class=\"n\">{}</td>", l.count)?;
        for v in [l.p50, l.p90, l.p99, l.p999, l.max] {
            write!(out, "<td class=\"n\">{}</td>", opt_ms(v))?;
        }
        writeln!(out, "</tr>")?;
    }
    let ratio = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("×{v:.2}"));
    let mut notes = vec![format!(
        "in probe / outside: p50 {}, p99 {}; {} spike(s) above ×{} the outside p99",
        ratio(h.p50_ratio),
        ratio(h.p99_ratio),
        h.spikes.len(),
        h.spike_factor_k
    )];
    if h.left_out_during_steps > 0 {
        notes.push(format!(
            "{} requests in flight during steps or node faults left out (their latency is the step's)",
            h.left_out_during_steps
        ));
    }
    if h.left_out_slow_connect > 0 {
        notes.push(format!(
            "{} requests whose connect needed a SYN retransmit (≥ 1 s) left out (their latency is the network's)",
            h.left_out_slow_connect
        ));
    }
    writeln!(
        out,
        "</table><p class=\"note\">{}</p>",
        esc(&notes.join(" · "))
    )
}
