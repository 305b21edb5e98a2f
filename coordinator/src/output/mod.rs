//! A finished run's results in the formats other tools read: JUnit XML for CI test reporters,
//! CSV per second (and per step and second) for spreadsheets and plotting, the summary as JSON.
//!
//! Why a module of the library and not of the CLI: `herd run --out`, `herd report RUN --out` and
//! (later) the API all render the same stored run, so the renderers take what the store holds —
//! the [`Summary`] and the stored [`SecondRecord`]s with their merged histograms — and return
//! text. Writing files is the caller's business. One file per kind; [`OutputKind`] is the one
//! place a new kind is added (`html` is the single-file report of [`crate::report`], the same
//! document the API serves).
//!
//! The `--out` syntax is `KIND=FILE[,KIND=FILE…]`, repeatable; `FILE` may be `-` for stdout.

mod csv;
mod junit;

use crate::report::{render_html, ReportInput};
use crate::store::{RunRecord, SecondRecord};
use herd_protocol::summary::Summary;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// The kinds of output `--out` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    /// JUnit XML: one test suite per run, one test case per threshold.
    Junit,
    /// CSV, one row per second of the run.
    Csv,
    /// CSV, one row per second and scenario step.
    CsvSteps,
    /// The summary as pretty JSON (what `--json` writes).
    Json,
    /// The single-file HTML report.
    Html,
}

impl OutputKind {
    /// Every kind, in the order the help names them.
    pub const ALL: [OutputKind; 5] = [
        OutputKind::Junit,
        OutputKind::Csv,
        OutputKind::CsvSteps,
        OutputKind::Json,
        OutputKind::Html,
    ];

    /// The name written before `=`.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputKind::Junit => "junit",
            OutputKind::Csv => "csv",
            OutputKind::CsvSteps => "csv-steps",
            OutputKind::Json => "json",
            OutputKind::Html => "html",
        }
    }
}

impl fmt::Display for OutputKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OutputKind {
    type Err = OutputError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OutputKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s.trim())
            .ok_or_else(|| OutputError::UnknownKind(s.trim().to_string()))
    }
}

/// One requested output: a kind and where it goes (`-` is stdout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSpec {
    /// What to write.
    pub kind: OutputKind,
    /// Where.
    pub path: PathBuf,
}

impl OutputSpec {
    /// Parses one `--out` value: `KIND=FILE[,KIND=FILE…]`.
    pub fn parse_list(value: &str) -> Result<Vec<OutputSpec>, OutputError> {
        value
            .split(',')
            .map(|part| {
                let (kind, path) = part
                    .split_once('=')
                    .ok_or_else(|| OutputError::Syntax(part.to_string()))?;
                let kind: OutputKind = kind.parse()?;
                if path.trim().is_empty() {
                    return Err(OutputError::Syntax(part.to_string()));
                }
                Ok(OutputSpec {
                    kind,
                    path: PathBuf::from(path.trim()),
                })
            })
            .collect()
    }
}

/// What the renderers read: a run as the store keeps it.
#[derive(Debug, Clone)]
pub struct RunResults {
    /// The final summary.
    pub summary: Summary,
    /// The stored seconds, with their merged histograms and checkpoints.
    pub seconds: Vec<SecondRecord>,
    /// The run's record (its plan, creation time, test), for the HTML report's threshold lines
    /// and planned load; `None` draws neither.
    pub record: Option<RunRecord>,
}

/// Why an output cannot be parsed or rendered.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// `--out` with an unknown kind.
    #[error(
        "--out: unknown output kind {0:?} (use junit, csv, csv-steps, json or html, as KIND=FILE)"
    )]
    UnknownKind(String),
    /// `--out` without `KIND=FILE`.
    #[error("--out: {0:?} is not KIND=FILE (for example junit=results.xml)")]
    Syntax(String),
    /// The summary does not serialize (cannot happen with herd's own types).
    #[error("cannot serialize the summary: {0}")]
    Json(#[from] serde_json::Error),
}

/// Renders `results` as `kind`.
pub fn render(kind: OutputKind, results: &RunResults) -> Result<String, OutputError> {
    Ok(match kind {
        OutputKind::Junit => junit::render(&results.summary),
        OutputKind::Csv => csv::per_second(&results.seconds),
        OutputKind::CsvSteps => csv::per_step(&results.seconds),
        OutputKind::Json => serde_json::to_string_pretty(&results.summary)? + "\n",
        OutputKind::Html => {
            let seconds: Vec<_> = results.seconds.iter().map(|s| s.to_summary()).collect();
            let written_at_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            let record = results.record.as_ref();
            render_html(&ReportInput {
                summary: &results.summary,
                seconds: &seconds,
                plan: record.map(|r| &r.plan),
                created_at_ms: record.map(|r| r.created_at_ms),
                test_id: record.and_then(|r| r.test.as_deref()),
                written_at_ms,
            })
        }
    })
}

#[cfg(test)]
mod tests;
