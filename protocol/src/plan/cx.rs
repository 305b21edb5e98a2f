//! The parser's context and the checks every plan field goes through.
//!
//! [`Cx`] collects every problem of a plan with its field path; the parsing modules (`parse`
//! for the plan's top and its steps, `parse_load`, `parse_scenario`, `options`, `body`) each add
//! their part of the walk to it as an `impl Cx` block. They all take `Cx` and its basic checks
//! (a map, a string, a whole number, a duration, a required key) from here, a leaf that imports
//! none of them, so no parsing module imports another's context: `parse` drives the walk and
//! the others only extend it.

use crate::duration;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// One problem in a plan: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field, such as `load.stages[1].vus`; empty for the whole document.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in a plan, in document order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PlanErrors(pub Vec<FieldError>);

impl fmt::Display for PlanErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

pub(super) fn single(message: String) -> PlanErrors {
    PlanErrors(vec![FieldError {
        path: String::new(),
        message,
    }])
}

/// Reads the files a plan names (feeders' CSV files, request body files) for the parser. The
/// coordinator reads them relative to the plan's folder, once; their contents then travel to the
/// agents inside the plan, so this crate does no I/O. Where a plan does not come from a file (the
/// HTTP API, a queue, agents) there is no reader, and the plan must carry the contents itself.
pub trait PlanFiles {
    /// The bytes of the file at `path` (as written in the plan), refusing files over `limit`
    /// bytes; the error is shown after the field's path.
    fn read(&self, path: &str, limit: usize) -> Result<Vec<u8>, String>;

    /// The value of environment variable `name` for `${env.NAME}` references; none by default.
    fn env(&self, _name: &str) -> Option<String> {
        None
    }
}

#[derive(Default)]
pub(super) struct Cx {
    pub(super) errors: Vec<FieldError>,
    /// Records of the CSV files feeders name, by feeder, read before parsing (`None`: the read
    /// failed and was reported).
    pub(super) file_rows: BTreeMap<String, Option<Vec<Vec<String>>>>,
    /// The text of the file `scripts:` names, read before parsing (`Some(None)`: the read
    /// failed and was reported).
    pub(super) script_read: Option<Option<String>>,
    /// The body data a start command's chunks carried (agents only): body files read
    /// `{path, chunked: {offset, bytes}}` out of it.
    pub(super) body_data: Option<bytes::Bytes>,
    /// Bytes of the body files parsed so far, against the plan's limit.
    pub(super) body_bytes: usize,
}

pub(super) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

impl Cx {
    pub(super) fn err(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(FieldError {
            path: path.to_string(),
            message: message.into(),
        });
    }

    pub(super) fn object<'v>(
        &mut self,
        v: &'v Value,
        path: &str,
        allowed: &[&str],
    ) -> Option<&'v Map<String, Value>> {
        let Value::Object(m) = v else {
            self.err(path, format!("must be a map, got {}", kind(v)));
            return None;
        };
        for key in m.keys() {
            if !allowed.contains(&key.as_str()) {
                self.err(
                    &join(path, key),
                    format!("unknown field (expected one of: {})", allowed.join(", ")),
                );
            }
        }
        Some(m)
    }

    pub(super) fn string(&mut self, v: &Value, path: &str) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            other => {
                self.err(path, format!("must be a string, got {}", kind(other)));
                None
            }
        }
    }

    pub(super) fn integer(&mut self, v: &Value, path: &str, min: i64, msg: &str) -> Option<u32> {
        let Some(n) = v
            .as_i64()
            .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
        else {
            self.err(path, format!("must be a whole number, got {}", kind(v)));
            return None;
        };
        if n < min {
            self.err(path, msg.to_string());
            return None;
        }
        match u32::try_from(n) {
            Ok(n) => Some(n),
            Err(_) => {
                self.err(path, "is too large");
                None
            }
        }
    }

    pub(super) fn duration(&mut self, v: &Value, path: &str) -> Option<std::time::Duration> {
        if let Value::Number(n) = v {
            self.err(
                path,
                format!("must be a duration with a unit (us, ms, s, m, h), like \"{n}ms\" or \"{n}s\"; got the bare number {n}"),
            );
            return None;
        }
        let s = self.string(v, path)?;
        match duration::parse(&s) {
            Ok(d) => Some(d),
            Err(e) => {
                self.err(path, e);
                None
            }
        }
    }

    pub(super) fn required<'v>(
        &mut self,
        m: &'v Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Option<&'v Value> {
        let v = m.get(key);
        if v.is_none() {
            self.err(&join(path, key), "is required");
        }
        v
    }
}
