//! `junit.xml`: the verdict in the form CI systems read. One test case for the run itself
//! (inconclusive → error) and one per gate threshold (exceeded → failure naming threshold,
//! limit and value).

use super::Summary;
use crate::escape::markup as esc;
use std::io::{self, Write};

pub fn render(s: &Summary, out: &mut impl Write) -> io::Result<()> {
    let failures = s.gate.iter().filter(|g| !g.passed).count();
    let errors = usize::from(s.verdict == crate::gate::Verdict::Inconclusive);
    let tests = s.gate.len() + 1;
    let class = format!("rollcheck.{}", s.scenario.slug);
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<testsuites name="rollcheck" tests="{tests}" failures="{failures}" errors="{errors}" time="{:.3}">"#,
        s.run.duration_s
    )?;
    writeln!(
        out,
        r#"  <testsuite name="{}" tests="{tests}" failures="{failures}" errors="{errors}" timestamp="{}" time="{:.3}">"#,
        esc(&format!("rollcheck: {}", s.scenario.title)),
        esc(&s.run.started_utc),
        s.run.duration_s
    )?;
    writeln!(
        out,
        r#"    <testcase classname="{}" name="run" time="{:.3}">"#,
        esc(&class),
        s.run.duration_s
    )?;
    if errors > 0 {
        let message = if s.problems.is_empty() {
            "inconclusive".to_string()
        } else {
            s.problems.join("; ")
        };
        writeln!(
            out,
            r#"      <error type="inconclusive" message="{}"/>"#,
            esc(&message)
        )?;
    }
    writeln!(
        out,
        "      <system-out>{}</system-out>",
        esc(&format!(
            "{} requests, {} dropped ({}), verdict {}",
            s.requests.total,
            s.requests.dropped,
            s.outcomes
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(o, n)| format!("{o}: {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            s.verdict
        ))
    )?;
    writeln!(out, "    </testcase>")?;
    for g in &s.gate {
        write!(
            out,
            r#"    <testcase classname="{}.gate" name="{}" time="0">"#,
            esc(&class),
            esc(&g.threshold)
        )?;
        if g.passed {
            writeln!(out, "</testcase>")?;
        } else {
            writeln!(out)?;
            writeln!(
                out,
                r#"      <failure type="threshold" message="{}"/>"#,
                esc(&g.text)
            )?;
            writeln!(out, "    </testcase>")?;
        }
    }
    writeln!(out, "  </testsuite>")?;
    writeln!(out, "</testsuites>")
}
