//! What the converter carries down the JMX tree: the [`Scope`] of one level (headers, HTTP
//! Request Defaults, rules and the enclosing transaction) and the state [`Cx`] of one conversion.
//!
//! A leaf of its own so that the walk (`walk`, which adds the tree-walking methods to `Cx`), the
//! samplers it calls (`samplers`) and the driver (`mod.rs`) all take these types from one place
//! that imports none of them: the samplers never reach back into the walk or the driver.

use super::rules::Rule;
use crate::import::draft::DraftFeeder;
use crate::import::options::ImportFiles;
use crate::import::report::Report;
use crate::import::text::Expr;

/// What HTTP Request Defaults set.
#[derive(Debug, Clone, Default)]
pub(crate) struct Defaults {
    pub protocol: Option<String>,
    pub domain: Option<String>,
    pub port: Option<String>,
    pub path: Option<String>,
    /// (name, value, always encode).
    pub args: Vec<(String, String, bool)>,
}

/// What applies to the samplers of one level of the tree.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scope {
    pub headers: Vec<(String, String)>,
    pub defaults: Defaults,
    pub rules: Vec<Rule>,
    /// The enclosing Transaction Controller's name, prefixed to step names.
    pub tx: Option<String>,
}

/// The state of one conversion.
pub(crate) struct Cx<'a> {
    pub expr: Expr<'a>,
    pub report: &'a mut Report,
    pub files: &'a dyn ImportFiles,
    pub vars: Vec<(String, String)>,
    pub feeders: Vec<DraftFeeder>,
    /// A Constant/Precise Throughput Timer: (samples per minute, calcMode, path, class, unit).
    pub throughput: Option<(f64, String, String, String, &'static str)>,
    pub counter: usize,
    pub first_hostless: Option<String>,
}
