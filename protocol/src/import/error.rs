//! [`ImportError`]: why nothing could be imported.
//!
//! Why a module of its own: the importers and the XML reader return it, and the parent module
//! calls them. Kept in the parent, they imported the module that calls them (a cycle); here it
//! sits below all of them and imports no sibling.

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
