//! What a step does with its response: checks, then extractions into the VU's variables.
//!
//! Each check and each extraction is one check outcome of its step: a check that holds, or an
//! extraction that finds its value, is `passed`; otherwise `failed`. Failed checks are counted
//! apart from errors, which are transport failures and HTTP statuses >= 400. Checks see the
//! variables as they were before this response; extractions then update them. An extraction that
//! finds nothing leaves its variable as it was (its previous value, or its default).
//!
//! The response body is parsed at most once: as text for `body_contains` and `regex`, as JSON for
//! JSON paths, and only when a rule needs it.

use super::names::Names;
use super::template::Tpl;
use crate::http::decode::decoded_body;
use crate::http::Captured;
use herd_protocol::clock::micros;
use herd_protocol::plan::{Check, Extract, ExtractFrom, JsonPath};
use hyper::header::HeaderName;
use serde_json::Value;
use std::borrow::Cow;
use std::cell::OnceCell;

/// How much of a response a step needs to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Capture {
    /// Nothing: the body is read and dropped, as for a plain step.
    Nothing,
    /// The headers.
    Headers,
    /// The headers and the body.
    Body,
}

#[derive(Debug)]
enum Expected {
    Value(Value),
    Text(Tpl),
}

#[derive(Debug)]
enum CheckRule {
    Status(u16),
    MaxLatencyUs(u64),
    BodyContains(Tpl),
    JsonEquals(JsonPath, Expected),
}

#[derive(Debug)]
enum Source {
    Json(JsonPath),
    Regex(regex_lite::Regex),
    Header(HeaderName),
}

#[derive(Debug)]
struct ExtractRule {
    var: usize,
    source: Source,
}

/// A step's checks and extractions, compiled.
#[derive(Debug)]
pub(crate) struct Rules {
    checks: Vec<CheckRule>,
    extract: Vec<ExtractRule>,
    capture: Capture,
}

/// The parts of a response the rules look at, each decoded at most once.
struct View<'a> {
    status: u16,
    service_us: u64,
    captured: Option<&'a Captured>,
    text: OnceCell<Cow<'a, str>>,
    json: OnceCell<Option<Value>>,
}

impl<'a> View<'a> {
    fn text(&self) -> &str {
        self.text.get_or_init(|| match self.captured {
            Some(c) => match decoded_body(c) {
                Cow::Borrowed(b) => String::from_utf8_lossy(b),
                // Decoded bytes are ours already: no second copy when they are UTF-8.
                Cow::Owned(b) => Cow::Owned(
                    String::from_utf8(b)
                        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
                ),
            },
            None => Cow::Borrowed(""),
        })
    }

    fn json(&self) -> Option<&Value> {
        self.json
            .get_or_init(|| {
                self.captured
                    .and_then(|c| serde_json::from_slice(&decoded_body(c)).ok())
            })
            .as_ref()
    }
}

impl Rules {
    /// Compiles a step's checks and extractions against the variable table.
    pub(crate) fn compile(
        checks: &[Check],
        extract: &[Extract],
        names: &Names,
    ) -> Result<Self, String> {
        let mut capture = Capture::Nothing;
        let mut compiled = Vec::with_capacity(checks.len());
        for check in checks {
            if check.needs_body() {
                capture = Capture::Body;
            }
            compiled.push(match check {
                Check::Status(s) => CheckRule::Status(*s),
                Check::MaxLatency(d) => CheckRule::MaxLatencyUs(micros(*d)),
                Check::BodyContains(t) => CheckRule::BodyContains(Tpl::compile(t, names)?),
                Check::JsonEquals { path, value } => {
                    let expected = match value {
                        Value::String(t) => Expected::Text(Tpl::compile(t, names)?),
                        other => Expected::Value(other.clone()),
                    };
                    CheckRule::JsonEquals(path.clone(), expected)
                }
            });
        }
        let mut rules = Vec::with_capacity(extract.len());
        for e in extract {
            let var = names
                .get(&e.var)
                .ok_or_else(|| format!("unknown variable {}", e.var))?;
            capture = capture.max(if e.from.needs_body() {
                Capture::Body
            } else {
                Capture::Headers
            });
            let source = match &e.from {
                ExtractFrom::Json(p) => Source::Json(p.clone()),
                ExtractFrom::Regex(r) => Source::Regex(
                    regex_lite::Regex::new(r).map_err(|e| format!("invalid regex {r:?}: {e}"))?,
                ),
                ExtractFrom::Header(h) => Source::Header(
                    HeaderName::from_bytes(h.as_bytes())
                        .map_err(|e| format!("invalid header name {h:?}: {e}"))?,
                ),
            };
            rules.push(ExtractRule { var, source });
        }
        Ok(Self {
            checks: compiled,
            extract: rules,
            capture,
        })
    }

    /// How much of the response these rules need.
    pub(crate) fn capture(&self) -> Capture {
        self.capture
    }

    /// Evaluates every check, then every extraction, on a response; `record` gets each outcome.
    pub(crate) fn apply(
        &self,
        status: u16,
        service_us: u64,
        captured: Option<&Captured>,
        vars: &mut [String],
        mut record: impl FnMut(bool),
    ) {
        let view = View {
            status,
            service_us,
            captured,
            text: OnceCell::new(),
            json: OnceCell::new(),
        };
        for check in &self.checks {
            record(passes(check, &view, vars));
        }
        for rule in &self.extract {
            match extract(&rule.source, &view) {
                Some(value) => {
                    if let Some(slot) = vars.get_mut(rule.var) {
                        *slot = value;
                    }
                    record(true);
                }
                None => record(false),
            }
        }
    }
}

fn passes(check: &CheckRule, view: &View<'_>, vars: &[String]) -> bool {
    match check {
        CheckRule::Status(want) => view.status == *want,
        CheckRule::MaxLatencyUs(max) => view.service_us <= *max,
        CheckRule::BodyContains(t) => view.text().contains(t.render(vars).as_str()),
        CheckRule::JsonEquals(path, expected) => {
            match (view.json().and_then(|doc| path.get(doc)), expected) {
                (Some(Value::String(s)), Expected::Text(t)) => *s == t.render(vars),
                (Some(Value::Number(a)), Expected::Value(Value::Number(b))) => {
                    a == b || a.as_f64().zip(b.as_f64()).is_some_and(|(x, y)| x == y)
                }
                (Some(actual), Expected::Value(want)) => actual == want,
                _ => false,
            }
        }
    }
}

/// The extracted text: a JSON string as it is, other JSON values (not null) as JSON text; the
/// first capture group of a regex (or its whole match without groups); a header's first value.
fn extract(source: &Source, view: &View<'_>) -> Option<String> {
    match source {
        Source::Json(path) => match view.json().and_then(|doc| path.get(doc))? {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        },
        Source::Regex(re) => {
            let caps = re.captures(view.text())?;
            let group = if caps.len() > 1 { 1 } else { 0 };
            caps.get(group).map(|m| m.as_str().to_string())
        }
        Source::Header(name) => view
            .captured?
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    }
}
