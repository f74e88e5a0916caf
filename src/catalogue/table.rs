//! The catalogue's one table, as Markdown (stdout, catalogue.md, the README's section), as
//! JSON, and as the head of the HTML page whose pairs' charts come from `compare`.

use super::{ModeOutcome, Results, TwinResult};
use crate::escape::markup as esc;
use std::io::{self, Write};
use std::path::Path;

/// The README's catalogue section lies between these lines; `--readme` replaces it.
const BEGIN: &str = "<!-- catalogue:begin (rollcheck catalogue --readme README.md writes this) -->";
const END: &str = "<!-- catalogue:end -->";

/// One row per twin: (mode cell, twin cell, verdict, requests, dropped, p99, converged,
/// as expected).
fn rows(r: &Results) -> Vec<[String; 8]> {
    let mut rows = Vec::new();
    for m in &r.modes {
        let ModeOutcome::Measured {
            fix,
            fails_with,
            bad,
            fixed,
            as_expected,
            why,
        } = &m.outcome
        else {
            continue;
        };
        let verdict = if *as_expected {
            "yes".to_string()
        } else {
            format!("**no**: {}", why.join("; "))
        };
        rows.push(twin_row(
            format!("**{}**: {}", m.id, m.title),
            format!("bad (expected: fails with {fails_with})"),
            bad,
            verdict,
        ));
        rows.push(twin_row(
            String::new(),
            format!("fixed: {fix}"),
            fixed,
            String::new(),
        ));
    }
    rows
}

fn twin_row(mode: String, twin: String, t: &TwinResult, expected: String) -> [String; 8] {
    let dropped = if t.dropped_by_class.is_empty() {
        t.dropped.to_string()
    } else {
        let classes: Vec<String> = t
            .dropped_by_class
            .iter()
            .map(|(c, n)| format!("{c} {n}"))
            .collect();
        format!("{} ({})", t.dropped, classes.join(", "))
    };
    [
        mode,
        twin,
        t.verdict
            .map_or("did not run".into(), |v| v.as_str().to_uppercase()),
        t.requests.to_string(),
        dropped,
        t.p99_ms.map_or("–".into(), |p| format!("{p:.0}")),
        t.converge_s.map_or("–".into(), |c| format!("{c:.1} s")),
        expected,
    ]
}

const HEADER: [&str; 8] = [
    "mode",
    "twin",
    "verdict",
    "requests",
    "dropped (by class)",
    "p99 ms",
    "converged in",
    "as expected",
];

/// Where the figures were measured, in a line.
fn measured_on(r: &Results) -> String {
    let e = |k: &str| r.environment.get(k).map_or("?", String::as_str);
    // A catalogue of cluster modes only has its nodes' engines (`... engine 20.10.24`).
    let engine = r.environment.get("docker.server").map_or_else(
        || {
            r.environment
                .values()
                .find_map(|v| v.rsplit_once("engine ").map(|(_, e)| e))
                .unwrap_or("?")
        },
        String::as_str,
    );
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "Measured {} by rollcheck {} on Docker engine {} (API {}), kernel {}, {}; {cores} cores.",
        &r.measured_utc[..10.min(r.measured_utc.len())],
        r.rollcheck_version,
        engine,
        e("docker.api"),
        e("docker.kernel"),
        e("docker.os"),
    )
}

pub fn markdown(r: &Results, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "| {} |", HEADER.join(" | "))?;
    writeln!(out, "|{}", "---|".repeat(HEADER.len()))?;
    for row in rows(r) {
        let cells: Vec<String> = row.iter().map(|c| c.replace('|', "\\|")).collect();
        writeln!(out, "| {} |", cells.join(" | "))?;
    }
    let written: Vec<String> = r
        .modes
        .iter()
        .filter_map(|m| match &m.outcome {
            ModeOutcome::NotReproducible { reason } => Some(format!(
                "- **{}**: {}. Not reproducible here: {reason}",
                m.id, m.title
            )),
            ModeOutcome::Measured { .. } => None,
        })
        .collect();
    if !written.is_empty() {
        writeln!(out)?;
        for w in written {
            writeln!(out, "{w}")?;
        }
    }
    writeln!(out)?;
    writeln!(out, "{}", measured_on(r))?;
    if r.interrupted {
        writeln!(
            out,
            "\n(Interrupted: the modes after the last row were not run.)"
        )?;
    }
    Ok(())
}

fn html_table(r: &Results) -> String {
    let mut s = String::from("<table><tr>");
    for h in HEADER {
        s.push_str(&format!("<th>{}</th>", esc(h)));
    }
    s.push_str("</tr>");
    for row in rows(r) {
        let bad = row[7].starts_with("**no**");
        s.push_str(if bad { "<tr class=\"bad\">" } else { "<tr>" });
        for (i, cell) in row.iter().enumerate() {
            let text = esc(&cell.replace("**", ""));
            let class = if (3..=6).contains(&i) {
                " class=\"n\""
            } else {
                ""
            };
            s.push_str(&format!("<td{class}>{text}</td>"));
        }
        s.push_str("</tr>");
    }
    s.push_str("</table>");
    for m in &r.modes {
        if let ModeOutcome::NotReproducible { reason } = &m.outcome {
            s.push_str(&format!(
                "<p class=\"note\"><b>{}</b>: {}. Not reproducible here: {}</p>",
                esc(&m.id),
                esc(&m.title),
                esc(reason)
            ));
        }
    }
    s.push_str(&format!("<p class=\"meta\">{}</p>", esc(&measured_on(r))));
    s
}

/// catalogue.md, catalogue.json and catalogue.html in `dir`.
pub fn write_files(r: &Results, dir: &Path) -> io::Result<()> {
    let mut md = io::BufWriter::new(std::fs::File::create(dir.join("catalogue.md"))?);
    markdown(r, &mut md)?;
    md.flush()?;
    let json = serde_json::to_string_pretty(r).map_err(io::Error::other)?;
    std::fs::write(dir.join("catalogue.json"), json + "\n")?;
    let mut html = io::BufWriter::new(std::fs::File::create(dir.join("catalogue.html"))?);
    crate::report::render_pairs(
        "rollcheck: failure-mode catalogue",
        &html_table(r),
        &super::pairs(r),
        &mut html,
    )?;
    html.flush()
}

/// Checks that the README has the section `--readme` replaces, before any run.
pub fn readme_section(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    splice(&text, "").map(drop)
}

fn splice(text: &str, table: &str) -> Result<String, String> {
    let (Some(b), Some(e)) = (text.find(BEGIN), text.find(END)) else {
        return Err(format!(
            "no catalogue section: add the lines\n{BEGIN}\n{END}\nwhere the table goes"
        ));
    };
    if e < b {
        return Err(format!("{END} comes before {BEGIN}"));
    }
    Ok(format!("{}{BEGIN}\n{table}{}", &text[..b], &text[e..]))
}

pub fn update_readme(path: &Path, r: &Results) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let mut table = Vec::new();
    markdown(r, &mut table).map_err(|e| e.to_string())?;
    let new = splice(&text, &String::from_utf8_lossy(&table))?;
    std::fs::write(path, new).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_section_is_replaced_and_nothing_else() {
        let text = format!("intro\n{BEGIN}\nold table\n{END}\nafter\n");
        assert_eq!(
            splice(&text, "| new |\n").unwrap(),
            format!("intro\n{BEGIN}\n| new |\n{END}\nafter\n")
        );
        let err = splice("no markers\n", "").unwrap_err();
        assert!(err.contains(BEGIN) && err.contains(END), "{err}");
    }
}
