//! Importers: JMeter (`.jmx`), Taurus (YAML/JSON), HAR recordings and DLT test definitions,
//! converted into a native herd plan.
//!
//! Why here: users arrive with tests written for other tools, and rewriting them by hand is the
//! first thing that stops them. The conversion is a pure function of the file's bytes (and of the
//! files it names, read through [`ImportFiles`], which the caller implements), so the CLI
//! (`herd import`) and the HTTP API (`POST /api/v1/import`) share it, and it can be tested on real
//! files without I/O.
//!
//! The output is plan YAML text, not a [`Plan`](crate::plan::Plan): it carries `# comments`
//! where something was approximated, and it names CSV and body files by path, as a user would. It
//! is always checked with herd's own parser before it is returned (an importer bug is an error,
//! never a broken plan). Beside it, a [`Report`] lists every source element as converted,
//! approximated (how) or skipped (why), with its path in the source. Unknown elements are never
//! fatal: the only errors ([`ImportError`]) are files that cannot be read at all, files with no
//! request herd can send, and requests with no host to send them to.

mod dlt;
mod draft;
mod finish;
mod har;
mod jmeter;
mod report;
mod taurus;
mod text;
mod xml;
mod yaml;

pub use report::{Outcome, Report, ReportItem};

use std::collections::BTreeMap;
use std::time::Duration;

/// The formats herd imports, recognised by content (never by file name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// An Apache JMeter test plan (`.jmx`, XML with a `jmeterTestPlan` root).
    Jmeter,
    /// A Taurus (bzt) configuration, YAML or JSON, with `execution` and/or `scenarios`.
    Taurus,
    /// An HTTP Archive (browser recording), JSON with `log.entries`.
    Har,
    /// The JSON body of DLT's (Distributed Load Testing on AWS) create-test API.
    Dlt,
    /// None of the above.
    Unknown,
}

impl Format {
    /// The format's name as the report and messages write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Jmeter => "jmeter",
            Format::Taurus => "taurus",
            Format::Har => "har",
            Format::Dlt => "dlt",
            Format::Unknown => "unknown",
        }
    }
}

/// What the caller may change in the conversion (the flags of `herd import`).
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The plan's target (`http://host:port`), replacing the file's hosts: every request is sent
    /// there, whatever host the file named.
    pub target: Option<String>,
    /// Total virtual users, replacing the file's (thread groups keep their ratio, as DLT does).
    pub vus: Option<u32>,
    /// Ramp-up time, replacing the file's.
    pub ramp: Option<Duration>,
    /// Hold time after the ramp, replacing the file's duration (and its iteration limits).
    pub hold: Option<Duration>,
    /// Agents, replacing the file's (DLT's task count); default 1.
    pub agents: Option<u32>,
    /// JMeter properties (`${__P(name,default)}`) and Taurus properties, by name (`--set`).
    pub set: BTreeMap<String, String>,
    /// Keep static resources (images, CSS, scripts, fonts) of a HAR recording.
    pub include_static: bool,
    /// The current time in milliseconds since the Unix epoch, used for `${__time()}` (herd has
    /// no such built-in yet: the value is fixed at import). `None` writes 0 and says so.
    pub now_ms: Option<u64>,
}

/// Files a source file names (CSV data, a Taurus `script:`, a DLT JMeter script), read by the
/// caller relative to the imported file. This crate does no I/O.
pub trait ImportFiles {
    /// The bytes of the file at `path` as the source wrote it; the error says why not.
    fn read(&self, path: &str) -> Result<Vec<u8>, String>;
}

/// A reader that has no files: every named file is reported as not read.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFiles;

impl ImportFiles for NoFiles {
    fn read(&self, path: &str) -> Result<Vec<u8>, String> {
        Err(format!(
            "{path} was not read (no files are available to this import)"
        ))
    }
}

/// The result of a conversion.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Imported {
    /// The format the file was recognised as.
    pub format: Format,
    /// The plan, as YAML text with comments; herd's parser accepts it.
    pub plan_yaml: String,
    /// What became of every element of the source.
    pub report: Report,
    /// A schedule in the form of herd's test `schedule` (`{"kind": "at", …}`), when the source
    /// had one (DLT).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<serde_json::Value>,
}

/// Why nothing could be imported (`herd import` exits with code 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// The file's format was not recognised.
    #[error("not a JMeter, Taurus, HAR or DLT file: {0}")]
    UnknownFormat(String),
    /// The file is not well-formed XML, JSON or YAML.
    #[error("{format} file is malformed at line {line}, column {column}: {message}")]
    Malformed {
        /// `XML`, `JSON` or `YAML`.
        format: &'static str,
        /// 1-based line.
        line: usize,
        /// 1-based column (in characters).
        column: usize,
        /// What the parser said.
        message: String,
    },
    /// The file is well-formed but not what its format requires.
    #[error("{0}")]
    Invalid(String),
    /// No HTTP request could be converted.
    #[error("no request converted: {0}")]
    NoRequest(String),
    /// A request has no host: no `HTTPSampler.domain`, no HTTP Request Defaults, no full URL,
    /// and no `--target`.
    #[error(
        "{path}: the request has no host (no domain, no HTTP Request Defaults); give --target URL"
    )]
    NoHost {
        /// The element's path in the source.
        path: String,
    },
    /// The plan the importer wrote does not pass herd's parser: an importer bug.
    #[error("the converted plan does not validate (an importer bug, please report it): {0}")]
    InvalidPlan(String),
}

/// Recognises the format by content. Leading byte-order marks and whitespace are skipped.
pub fn detect(bytes: &[u8]) -> Format {
    let (text, _) = text::decode_text(bytes);
    let trimmed = text.trim_start();
    if trimmed.starts_with('<') {
        return if trimmed.contains("<jmeterTestPlan") {
            Format::Jmeter
        } else {
            Format::Unknown
        };
    }
    let value: Option<serde_json::Value> = if trimmed.starts_with('{') {
        serde_json::from_str(trimmed)
            .ok()
            .or_else(|| serde_yaml::from_str(trimmed).ok())
    } else {
        serde_yaml::from_str(trimmed).ok()
    };
    let Some(serde_json::Value::Object(m)) = value else {
        return Format::Unknown;
    };
    if m.get("log").and_then(|l| l.get("entries")).is_some() {
        Format::Har
    } else if m.contains_key("testName") || m.contains_key("testScenario") {
        Format::Dlt
    } else if m.contains_key("execution") || m.contains_key("scenarios") {
        Format::Taurus
    } else {
        Format::Unknown
    }
}

/// Converts `bytes` (a file in any of the [`Format`]s) into a plan; named files are read
/// through `files`. See the module documentation for what is converted.
pub fn convert_with(
    bytes: &[u8],
    options: &ImportOptions,
    files: &dyn ImportFiles,
) -> Result<Imported, ImportError> {
    let format = detect(bytes);
    let mut report = Report::default();
    let (draft, schedule) =
        match format {
            Format::Jmeter => (jmeter::convert(bytes, options, files, &mut report)?, None),
            Format::Taurus => (taurus::convert(bytes, options, files, &mut report)?, None),
            Format::Har => (har::convert(bytes, options, &mut report)?, None),
            Format::Dlt => dlt::convert(bytes, options, files, &mut report)?,
            Format::Unknown => return Err(ImportError::UnknownFormat(
                "expected a <jmeterTestPlan> XML document, a Taurus YAML/JSON with `execution` \
                 or `scenarios`, a HAR with `log.entries`, or a DLT test with `testName` and \
                 `testScenario`"
                    .into(),
            )),
        };
    let plan_yaml = draft.finish(options, &mut report)?;
    Ok(Imported {
        format,
        plan_yaml,
        report,
        schedule,
    })
}

/// [`convert_with`] without files: CSV files and scripts the source names are reported as not
/// read (their feeders still name them).
pub fn convert(bytes: &[u8], options: &ImportOptions) -> Result<Imported, ImportError> {
    convert_with(bytes, options, &NoFiles)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_fixtures;
#[cfg(test)]
mod tests_jmeter;
#[cfg(test)]
mod tests_others;
