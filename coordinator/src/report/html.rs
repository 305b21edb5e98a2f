//! The single-file HTML report of a run: one HTML string with everything inline — the console's
//! CSS, the vendored uPlot, the console's chart and table modules ([`super::bundle`]) and the
//! run's data as JSON — so it opens from `file://`, offline, years later, and shows what the
//! console's result page shows: requests/s and errors/s, p50/p90/p99/p99.9 per second from the
//! merged histograms, VUs and agents k of N, status codes per second, the summary, thresholds,
//! per-step and per-agent tables.
//!
//! [`render_html`] is pure: the caller reads the store (or has the summary of a run it just
//! finished) and writes the string where it wants.

use super::bundle::{bundle, BundleError};
use herd_protocol::summary::{SecondSummary, Summary};
use serde_json::{json, Value};
use std::sync::OnceLock;

/// The console's modules the report runs, in dependency order.
const MODULES: &[(&str, &str)] = &[
    (
        "vendor/uPlot.esm.js",
        include_str!("../../../console/assets/vendor/uPlot.esm.js"),
    ),
    ("util.js", include_str!("../../../console/assets/util.js")),
    ("plan.js", include_str!("../../../console/assets/plan.js")),
    (
        "charts.js",
        include_str!("../../../console/assets/charts.js"),
    ),
    (
        "results.js",
        include_str!("../../../console/assets/results.js"),
    ),
    (
        "report.js",
        include_str!("../../../console/report/report.js"),
    ),
];

const STYLES: &[&str] = &[
    include_str!("../../../console/assets/vendor/uPlot.min.css"),
    include_str!("../../../console/assets/app.css"),
    include_str!("../../../console/report/report.css"),
];

const UPLOT_LICENSE: &str = include_str!("../../../console/assets/vendor/uPlot.LICENSE");

/// What a report is made of.
#[derive(Debug, Clone, Copy)]
pub struct ReportInput<'a> {
    /// The run's summary (stored with its final state, or just built by `herd run`).
    pub summary: &'a Summary,
    /// Its seconds, ordered by `t`: the store's (`Store::list_seconds`, `to_summary`), or the
    /// summary's own `seconds`.
    pub seconds: &'a [SecondSummary],
    /// The plan as JSON (`Plan::to_json`, `RunRecord::plan`): threshold lines and the planned
    /// load profile on the charts. `None` draws neither.
    pub plan: Option<&'a Value>,
    /// When the run was created (ms since the Unix epoch), if known.
    pub created_at_ms: Option<u64>,
    /// The stored test it ran, if any.
    pub test_id: Option<&'a str>,
    /// When the report is written (ms since the Unix epoch), shown at its foot.
    pub written_at_ms: u64,
}

impl<'a> ReportInput<'a> {
    /// The report of `summary` alone: its own seconds, no plan, no creation time.
    pub fn of_summary(summary: &'a Summary, written_at_ms: u64) -> Self {
        Self {
            summary,
            seconds: &summary.seconds,
            plan: None,
            created_at_ms: None,
            test_id: None,
            written_at_ms,
        }
    }
}

/// The report as one self-contained HTML document (no request leaves it: no link, no font, no
/// script or style from elsewhere).
pub fn render_html(input: &ReportInput<'_>) -> String {
    let data = json!({
        "summary": input.summary,
        "seconds": input.seconds,
        "plan": input.plan,
        "run": {"created_at_ms": input.created_at_ms, "test_id": input.test_id},
        "written_at_ms": input.written_at_ms,
        "herd_version": env!("CARGO_PKG_VERSION"),
    });
    let script = match script() {
        Ok(s) => s.as_str(),
        // The bundle is checked by a unit test; were it ever broken the report still carries its
        // data, and says why there are no charts.
        Err(e) => {
            tracing::error!(error = %e, "cannot bundle the report's script");
            "document.getElementById('main').textContent = 'The report script could not be built.';"
        }
    };
    let title = escape_text(&format!(
        "herd report · {} · {}",
        input.summary.name, input.summary.run_id
    ));
    let mut out = String::with_capacity(script.len() + 64 * 1024);
    out.push_str("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str("<meta name=\"color-scheme\" content=\"light dark\">\n");
    out.push_str(&format!("<title>{title}</title>\n<style>\n"));
    for css in STYLES {
        out.push_str(css);
        out.push('\n');
    }
    out.push_str("</style>\n</head>\n<body>\n<main id=\"main\"></main>\n");
    out.push_str("<div id=\"toast\" role=\"status\" aria-live=\"polite\"></div>\n");
    out.push_str("<script type=\"application/json\" id=\"herd-report-data\">");
    out.push_str(&script_safe_json(&data));
    out.push_str("</script>\n<script type=\"module\">\n/* uPlot: ");
    out.push_str(&UPLOT_LICENSE.replace("*/", "* /"));
    out.push_str("*/\n");
    out.push_str(script);
    out.push_str("</script>\n</body>\n</html>\n");
    out
}

/// The modules bundled once per process.
fn script() -> Result<&'static String, &'static BundleError> {
    static SCRIPT: OnceLock<Result<String, BundleError>> = OnceLock::new();
    SCRIPT
        .get_or_init(|| {
            bundle(MODULES).map(|s| {
                // Inside <script>, only "</script" and "<!--" are markup; the sources are checked
                // to contain neither (a test), and this keeps it so.
                s.replace("</script", "<\\/script")
                    .replace("<!--", "<\\!--")
            })
        })
        .as_ref()
}

/// JSON that cannot end the `<script>` element it sits in: `<`, `>` and `&` escaped as `\u00XX`
/// (still the same JSON once parsed).
fn script_safe_json(value: &Value) -> String {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

fn escape_text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
#[path = "html_tests.rs"]
mod tests;
