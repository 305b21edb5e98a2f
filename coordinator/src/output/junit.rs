//! JUnit XML: one `<testsuite>` per run, one `<testcase>` per threshold, so a CI system's test
//! reporter shows a load test's verdict beside the unit tests. A failed threshold is a
//! `<failure>` whose message is the expression and the measured value; a run that did not
//! complete as planned (failed, cancelled, an agent lost) adds one `<testcase name="run">` with
//! an `<error>` giving the reason, since its thresholds alone would not say so.
//!
//! The element and attribute names are those of the common JUnit schema (the Ant / Jenkins
//! `junit-4.xsd`), which Jenkins, GitLab, GitHub test reporters and Azure DevOps all read.

use herd_protocol::plan::{Metric, Threshold};
use herd_protocol::summary::{RunState, Summary};
use std::fmt::Write as _;

/// The JUnit XML of a run.
pub(super) fn render(s: &Summary) -> String {
    let run_error = (s.run_state != RunState::Completed).then(|| {
        s.reason
            .clone()
            .unwrap_or_else(|| format!("the run ended {:?}", s.run_state).to_lowercase())
    });
    let tests = s.thresholds.len() + usize::from(run_error.is_some());
    let failures = s.thresholds.iter().filter(|t| !t.passed).count();
    let errors = usize::from(run_error.is_some());
    let suite = format!("herd.{}", s.name);
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"herd\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{:.3}\">",
        s.duration_s
    );
    let _ = writeln!(
        x,
        "  <testsuite name=\"{}\" id=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"0\" time=\"{:.3}\">",
        escape(&suite),
        escape(&s.run_id),
        s.duration_s
    );
    x.push_str("    <properties>\n");
    for (name, value) in [
        ("run_id", s.run_id.clone()),
        ("status", format!("{:?}", s.status).to_lowercase()),
        ("run_state", format!("{:?}", s.run_state).to_lowercase()),
        ("requests", s.requests.to_string()),
        ("errors", s.errors.to_string()),
        ("rps", s.rps.to_string()),
        ("p99_ms", s.latency_ms.p99.to_string()),
    ] {
        let _ = writeln!(
            x,
            "      <property name=\"{name}\" value=\"{}\"/>",
            escape(&value)
        );
    }
    x.push_str("    </properties>\n");
    for t in &s.thresholds {
        let _ = write!(
            x,
            "    <testcase name=\"{}\" classname=\"{}\" time=\"0\"",
            escape(&t.expr),
            escape(&suite)
        );
        if t.passed {
            x.push_str("/>\n");
        } else {
            let message = format!("{}: actual {}", t.expr, with_unit(&t.expr, t.actual));
            let _ = writeln!(
                x,
                ">\n      <failure message=\"{m}\" type=\"threshold\">{m}</failure>\n    </testcase>",
                m = escape(&message)
            );
        }
    }
    if let Some(reason) = run_error {
        let _ = writeln!(
            x,
            "    <testcase name=\"run\" classname=\"{}\" time=\"{:.3}\">\n      <error message=\"{r}\" type=\"run\">{r}</error>\n    </testcase>",
            escape(&suite),
            s.duration_s,
            r = escape(&reason)
        );
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

/// `actual` with the unit of the threshold's metric, when the expression says which.
fn with_unit(expr: &str, actual: f64) -> String {
    match Threshold::parse(expr).map(|t| t.metric) {
        Ok(Metric::Percentile(_) | Metric::Min | Metric::Mean | Metric::Max) => {
            format!("{actual} ms")
        }
        Ok(Metric::ErrorRate) => format!("{actual}%"),
        Ok(Metric::Rps) => format!("{actual}/s"),
        _ => actual.to_string(),
    }
}

/// Escapes text for an XML attribute or element; characters XML 1.0 cannot carry are dropped.
pub(super) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => {
                let _ = write!(out, "&#{};", c as u32);
            }
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}
