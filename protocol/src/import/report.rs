//! The import report: what became of every element of the source, so a user can trust the plan
//! (or see exactly what to finish by hand) without reading the converter.

use serde::Serialize;
use std::fmt;

/// What became of one source element.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", content = "detail", rename_all = "lowercase")]
pub enum Outcome {
    /// Converted with the same meaning.
    Converted,
    /// Converted, but not exactly: how it was approximated.
    Approximated(String),
    /// Left out: why.
    Skipped(String),
}

/// One element of the source and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportItem {
    /// Where the element is in the source, such as `Thread Group "Users" > HTTP Request "Login"`.
    pub path: String,
    /// Its kind, such as `HTTPSamplerProxy` or `extract-jsonpath`.
    pub element: String,
    /// What became of it.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// Every element's outcome, in source order, and general warnings (encoding, variables).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// One item per source element (listeners and other elements without effect on the load are
    /// left out silently).
    pub items: Vec<ReportItem>,
    /// Remarks that belong to no single element.
    pub warnings: Vec<String>,
}

impl Report {
    /// Adds an item.
    pub fn push(&mut self, path: &str, element: &str, outcome: Outcome) {
        self.items.push(ReportItem {
            path: path.to_string(),
            element: element.to_string(),
            outcome,
        });
    }

    pub(crate) fn converted(&mut self, path: &str, element: &str) {
        self.push(path, element, Outcome::Converted);
    }

    pub(crate) fn approx(&mut self, path: &str, element: &str, how: impl Into<String>) {
        self.push(path, element, Outcome::Approximated(how.into()));
    }

    pub(crate) fn skipped(&mut self, path: &str, element: &str, why: impl Into<String>) {
        self.push(path, element, Outcome::Skipped(why.into()));
    }

    pub(crate) fn warn(&mut self, warning: impl Into<String>) {
        let w = warning.into();
        if !self.warnings.contains(&w) {
            self.warnings.push(w);
        }
    }

    /// How many items were converted, approximated and skipped.
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for item in &self.items {
            match item.outcome {
                Outcome::Converted => c.0 += 1,
                Outcome::Approximated(_) => c.1 += 1,
                Outcome::Skipped(_) => c.2 += 1,
            }
        }
        c
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Converted => f.write_str("converted"),
            Outcome::Approximated(how) => write!(f, "approximated ({how})"),
            Outcome::Skipped(why) => write!(f, "skipped ({why})"),
        }
    }
}

impl fmt::Display for Report {
    /// One line per item (`PATH [ELEMENT]: OUTCOME`), then the warnings and the counts.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for item in &self.items {
            writeln!(f, "{} [{}]: {}", item.path, item.element, item.outcome)?;
        }
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        let (c, a, s) = self.counts();
        write!(f, "{c} converted, {a} approximated, {s} skipped")
    }
}
