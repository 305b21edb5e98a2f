//! From a value tree to a [`Plan`], collecting every error with its field path.

use super::{Check, Load, Method, Options, Plan, RequestStep, Step, Threshold};
use crate::duration;
use serde_json::{Map, Value};
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

/// Parses a YAML plan (JSON is YAML too, but see [`from_json_str`] for JSON-specific messages).
pub fn from_yaml_str(text: &str) -> Result<Plan, PlanErrors> {
    let value: Value =
        serde_yaml::from_str(text).map_err(|e| single(format!("not valid YAML: {e}")))?;
    from_value(&value)
}

/// Parses a JSON plan.
pub fn from_json_str(text: &str) -> Result<Plan, PlanErrors> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| single(format!("not valid JSON: {e}")))?;
    from_value(&value)
}

/// Validates a plan given as a value tree.
pub fn from_value(value: &Value) -> Result<Plan, PlanErrors> {
    let mut cx = Cx::default();
    let plan = cx.plan(value);
    match plan {
        Some(plan) if cx.errors.is_empty() => Ok(plan),
        _ => Err(PlanErrors(cx.errors)),
    }
}

#[derive(Default)]
pub(super) struct Cx {
    pub(super) errors: Vec<FieldError>,
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

const TOP_KEYS: &[&str] = &[
    "version",
    "name",
    "target",
    "agents",
    "load",
    "scenario",
    "thresholds",
    "options",
];

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

    fn plan(&mut self, v: &Value) -> Option<Plan> {
        let m = self.object(v, "", TOP_KEYS)?;
        match self.required(m, "", "version") {
            Some(v) if v.as_u64() == Some(u64::from(crate::PROTOCOL_VERSION)) => {}
            Some(v) => self.err(
                "version",
                format!(
                    "unsupported plan version {v} (this herd reads version {})",
                    crate::PROTOCOL_VERSION
                ),
            ),
            None => {}
        }
        let name = self
            .required(m, "", "name")
            .and_then(|v| self.string(v, "name"));
        if name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            self.err("name", "must not be empty");
        }
        let target = self.required(m, "", "target").and_then(|v| self.target(v));
        let agents = match m.get("agents") {
            Some(v) => self.integer(v, "agents", 1, "must be >= 1"),
            None => Some(1),
        };
        let load = self.required(m, "", "load").and_then(|v| self.load(v));
        let scenario = self
            .required(m, "", "scenario")
            .and_then(|v| self.scenario(v));
        let thresholds = match m.get("thresholds") {
            Some(v) => self.thresholds(v),
            None => Some(Vec::new()),
        };
        let options = match m.get("options") {
            Some(v) => self.options(v),
            None => Some(Options::default()),
        };
        Some(Plan {
            name: name?,
            target: target?,
            agents: agents?,
            load: load?,
            scenario: scenario?,
            thresholds: thresholds?,
            options: options?,
        })
    }

    fn target(&mut self, v: &Value) -> Option<String> {
        let s = self.string(v, "target")?;
        let Some(rest) = s
            .strip_prefix("http://")
            .or_else(|| s.strip_prefix("https://"))
        else {
            self.err(
                "target",
                "must be an http:// or https:// URL such as \"http://127.0.0.1:8080\"",
            );
            return None;
        };
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.is_empty() || authority.contains(['?', '#', '@', ' ']) {
            self.err(
                "target",
                "must name a host, such as \"http://127.0.0.1:8080\"",
            );
            return None;
        }
        if let Some((_, port)) = authority.rsplit_once(':') {
            if !authority.ends_with(']') && port.parse::<u16>().is_err() {
                self.err(
                    "target",
                    format!("port {port:?} is not a number from 0 to 65535"),
                );
                return None;
            }
        }
        Some(s.trim_end_matches('/').to_string())
    }

    fn scenario(&mut self, v: &Value) -> Option<Vec<Step>> {
        let Value::Array(items) = v else {
            self.err(
                "scenario",
                format!("must be a list of steps, got {}", kind(v)),
            );
            return None;
        };
        let mut steps = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match self.step(item, &format!("scenario[{i}]")) {
                Some(s) => steps.push(s),
                None => ok = false,
            }
        }
        if ok && !self.body_files_fit(&steps) {
            return None;
        }
        if ok && !steps.iter().any(|s| matches!(s, Step::Request(_))) {
            self.err(
                "scenario",
                "must have at least one request step (get, post, …)",
            );
            return None;
        }
        ok.then_some(steps)
    }

    fn step(&mut self, v: &Value, path: &str) -> Option<Step> {
        let mut allowed: Vec<&str> = vec![
            "name",
            "headers",
            "body",
            "json",
            "body_file",
            "think",
            "checks",
        ];
        allowed.extend(Method::ALL.iter().map(|(_, k)| *k));
        let m = self.object(v, path, &allowed)?;
        if let Some(t) = m.get("think") {
            if m.len() > 1 {
                self.err(path, "a think step has only `think`");
                return None;
            }
            return self.think(t, &join(path, "think")).map(Step::Think);
        }
        let methods: Vec<(Method, &str)> = Method::ALL
            .iter()
            .filter(|(_, k)| m.contains_key(*k))
            .copied()
            .collect();
        let (method, key) = match methods.as_slice() {
            [one] => *one,
            [] => {
                self.err(path, "needs a request (get, post, put, patch, delete, head: PATH) or think: DURATION");
                return None;
            }
            _ => {
                self.err(
                    path,
                    "has more than one request method; use one step per request",
                );
                return None;
            }
        };
        let mut ok = true;
        let req_path = m.get(key).and_then(|v| self.string(v, &join(path, key)));
        if let Some(p) = &req_path {
            if !p.starts_with('/') {
                self.err(&join(path, key), "must be a path starting with '/'");
                ok = false;
            }
        }
        let name = match m.get("name") {
            Some(v) => match self.string(v, &join(path, "name")) {
                Some(n) if n.trim().is_empty() => {
                    self.err(&join(path, "name"), "must not be empty");
                    None
                }
                other => other,
            },
            None => None,
        };
        let headers = match m.get("headers") {
            Some(v) => self.headers(v, &join(path, "headers")),
            None => Some(Vec::new()),
        };
        let body = self.step_body(m, path);
        let checks = match m.get("checks") {
            Some(v) => self.checks(v, &join(path, "checks")),
            None => Some(Vec::new()),
        };
        if m.get("name").is_some() && name.is_none() {
            ok = false;
        }
        let req_path = req_path?;
        let (mut headers, body, checks) = (headers?, body?, checks?);
        if !ok {
            return None;
        }
        if body.json
            && !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            headers.push(("content-type".into(), "application/json".into()));
        }
        let named = name.is_some();
        let label = name.unwrap_or_else(|| format!("{} {}", method.as_str(), req_path));
        Some(Step::Request(RequestStep {
            label,
            named,
            method,
            path: req_path,
            headers,
            body: body.text,
            body_file: body.file,
            checks,
        }))
    }

    /// `checks: {status: 200, max_latency: 100ms}`.
    fn checks(&mut self, v: &Value, path: &str) -> Option<Vec<Check>> {
        let m = self.object(v, path, &["status", "max_latency"])?;
        let mut out = Vec::new();
        let mut ok = true;
        if let Some(s) = m.get("status") {
            match self.integer(
                s,
                &join(path, "status"),
                100,
                "must be an HTTP status (100..=599)",
            ) {
                Some(code @ 100..=599) => out.push(Check::Status(code as u16)),
                Some(_) => {
                    self.err(&join(path, "status"), "must be an HTTP status (100..=599)");
                    ok = false;
                }
                None => ok = false,
            }
        }
        if let Some(d) = m.get("max_latency") {
            match self.duration(d, &join(path, "max_latency")) {
                Some(d) => out.push(Check::MaxLatency(d)),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn headers(&mut self, v: &Value, path: &str) -> Option<Vec<(String, String)>> {
        let Value::Object(m) = v else {
            self.err(
                path,
                format!("must be a map of header names to values, got {}", kind(v)),
            );
            return None;
        };
        let mut out = Vec::with_capacity(m.len());
        let mut ok = true;
        for (k, val) in m {
            let p = join(path, k);
            if k.is_empty()
                || !k
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
            {
                self.err(&p, "is not a valid header name");
                ok = false;
                continue;
            }
            let value = match val {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                Value::Bool(b) => Some(b.to_string()),
                other => {
                    self.err(&p, format!("must be a string, got {}", kind(other)));
                    None
                }
            };
            match value {
                Some(s) if s.bytes().any(|b| b == b'\r' || b == b'\n') => {
                    self.err(&p, "must not contain line breaks");
                    ok = false;
                }
                Some(s) => out.push((k.clone(), s)),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn thresholds(&mut self, v: &Value) -> Option<Vec<Threshold>> {
        let Value::Array(items) = v else {
            self.err(
                "thresholds",
                format!("must be a list of expressions, got {}", kind(v)),
            );
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let path = format!("thresholds[{i}]");
            match self.string(item, &path).map(|s| Threshold::parse(&s)) {
                Some(Ok(t)) => out.push(t),
                Some(Err(e)) => {
                    self.err(&path, e);
                    ok = false;
                }
                None => ok = false,
            }
        }
        ok.then_some(out)
    }
}

/// Validates a list of ramp stages (as in `load.stages`), for a live ramp command.
pub fn stages_from_value(stages: &Value) -> Result<Load, PlanErrors> {
    let mut cx = Cx::default();
    let load = cx.load(&serde_json::json!({ "stages": stages }));
    match load {
        Some(load) if cx.errors.is_empty() => Ok(load),
        _ => Err(PlanErrors(cx.errors)),
    }
}
