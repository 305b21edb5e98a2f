//! The formats herd imports ([`Format`]) and their recognition by content ([`detect`]).
//!
//! Why a module of its own: the parent dispatches on the format, and the Taurus importer detects
//! the format of the scripts it names (a JMeter script is handed to the JMeter importer). Kept in
//! the parent, the Taurus importer imported the module that calls it (a cycle); here it sits below
//! both and imports only the text decoding it needs.

use super::text;

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
