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
mod error;
mod finish;
mod format;
mod har;
mod jmeter;
mod options;
mod report;
mod taurus;
mod text;
mod xml;
mod yaml;

pub use error::ImportError;
pub use format::{detect, Format};
pub use options::{ImportFiles, ImportOptions, NoFiles};
pub use report::{Outcome, Report, ReportItem};

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
    let mut draft = draft;
    draft.drop_missing_body_files(files, &mut report);
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
