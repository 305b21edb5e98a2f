//! Parsing of what makes a scenario realistic: variables (`vars`), extractions (`extract`) and
//! checks (`checks`), and the pass that checks every `${name}` a step references is defined
//! somewhere. Split from `parse` so each file stays about one part of the plan (feeders are in
//! `parse_feeder`).

use super::cx::{join, kind, Cx, FieldError};
use super::{
    walk, Check, Extract, ExtractFrom, Feeder, If, JsonPath, Plan, RequestStep, Step, Template,
    BUILTINS, FUNCTIONS, STATUS,
};
use serde_json::Value;
use std::collections::BTreeSet;

impl Cx {
    /// `vars: {name: value, …}`: scalars, kept as text.
    pub(super) fn vars(&mut self, v: &Value) -> Option<Vec<(String, String)>> {
        let Value::Object(m) = v else {
            self.err(
                "vars",
                format!("must be a map of names to values, got {}", kind(v)),
            );
            return None;
        };
        let mut out = Vec::with_capacity(m.len());
        let mut ok = true;
        for (name, value) in m {
            let path = join("vars", name);
            ok &= self.var_name(name, &path);
            match scalar(value) {
                Some(text) => out.push((name.clone(), text)),
                None => {
                    self.err(
                        &path,
                        format!("must be a string, number or boolean, got {}", kind(value)),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// A name a plan defines: a variable name, and not one of the reserved `__` built-ins.
    pub(super) fn var_name(&mut self, name: &str, path: &str) -> bool {
        if !super::is_var_name(name) {
            self.err(
                path,
                "is not a variable name (letters, digits and _, not starting with a digit)",
            );
            false
        } else if name.starts_with("__") {
            self.err(
                path,
                format!(
                    "names starting with __ are reserved for built-ins ({}) and functions ({})",
                    BUILTINS.join(", "),
                    FUNCTIONS.join(", ")
                ),
            );
            false
        } else {
            true
        }
    }

    /// `checks: {status: 200, max_latency: 100ms, body_contains: TEXT | [TEXT…], json: {PATH: VALUE}}`.
    pub(super) fn checks(&mut self, v: &Value, path: &str) -> Option<Vec<Check>> {
        let m = self.object(v, path, &["status", "max_latency", "body_contains", "json"])?;
        let mut out = Vec::new();
        let mut ok = true;
        if let Some(s) = m.get("status") {
            let p = join(path, "status");
            match self.integer(s, &p, 100, "must be an HTTP status (100..=599)") {
                Some(code @ 100..=599) => out.push(Check::Status(code as u16)),
                Some(_) => {
                    self.err(&p, "must be an HTTP status (100..=599)");
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
        if let Some(c) = m.get("body_contains") {
            let p = join(path, "body_contains");
            let texts = match c {
                Value::String(s) => Some(vec![s.clone()]),
                Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().map(str::to_string))
                    .collect(),
                _ => None,
            };
            match texts {
                Some(texts) if !texts.is_empty() && texts.iter().all(|t| !t.is_empty()) => {
                    out.extend(texts.into_iter().map(Check::BodyContains));
                }
                _ => {
                    self.err(&p, "must be a non-empty text, or a list of them");
                    ok = false;
                }
            }
        }
        if let Some(j) = m.get("json") {
            let p = join(path, "json");
            match j {
                Value::Object(pairs) if !pairs.is_empty() => {
                    for (jp, value) in pairs {
                        match JsonPath::parse(jp) {
                            Ok(jp) => out.push(Check::JsonEquals {
                                path: jp,
                                value: value.clone(),
                            }),
                            Err(e) => {
                                self.err(&join(&p, jp), e);
                                ok = false;
                            }
                        }
                    }
                }
                _ => {
                    self.err(
                        &p,
                        "must be a map of JSON paths to the values expected there, like {\"$.ok\": true}",
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// `extract: {VAR: {json: PATH} | {regex: RE} | {header: NAME}}`.
    pub(super) fn extract(&mut self, v: &Value, path: &str) -> Option<Vec<Extract>> {
        let Value::Object(m) = v else {
            self.err(
                path,
                format!(
                    "must be a map of variable names to sources ({{json: PATH}}, {{regex: RE}} \
                     or {{header: NAME}}), got {}",
                    kind(v)
                ),
            );
            return None;
        };
        let mut out = Vec::with_capacity(m.len());
        let mut ok = true;
        for (var, source) in m {
            let p = join(path, var);
            let named = self.var_name(var, &p);
            match self.extract_source(source, &p) {
                Some(from) if named => out.push(Extract {
                    var: var.clone(),
                    from,
                }),
                _ => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn extract_source(&mut self, v: &Value, path: &str) -> Option<ExtractFrom> {
        let m = self.object(v, path, &["json", "regex", "header"])?;
        let mut keys = m.iter();
        let (Some((key, value)), None) = (keys.next(), keys.next()) else {
            self.err(path, "needs exactly one of json, regex, header");
            return None;
        };
        let p = join(path, key);
        let text = self.string(value, &p)?;
        let parsed = match key.as_str() {
            "json" => JsonPath::parse(&text).map(ExtractFrom::Json),
            "regex" => regex_lite::Regex::new(&text)
                .map(|_| ExtractFrom::Regex(text.clone()))
                .map_err(|e| format!("not a valid regular expression: {e}")),
            _ if is_header_name(&text) => Ok(ExtractFrom::Header(text.to_ascii_lowercase())),
            _ => Err("is not a valid header name".to_string()),
        };
        parsed.map_err(|e| self.err(&p, e)).ok()
    }

    /// A name defined both by `vars` and by a feeder's columns is ambiguous: which wins?
    pub(super) fn check_clashes(&mut self, vars: &[(String, String)], feeders: &[Feeder]) {
        for (name, _) in vars {
            if let Some(f) = feeders.iter().find(|f| f.columns.contains(name)) {
                self.err(
                    &join("vars", name),
                    format!(
                        "is defined by `vars` and by the columns of feeders.{}",
                        f.name
                    ),
                );
            }
        }
    }

    /// Checks every template of the scenario; with `vars` and `feeders` parsed, also that each
    /// variable it references is defined.
    pub(super) fn check_variables(
        &mut self,
        vars: Option<&[(String, String)]>,
        feeders: Option<&[Feeder]>,
        scenario: &[Step],
    ) {
        let mut requests: Vec<(String, &RequestStep)> = Vec::new();
        let mut conditions: Vec<(String, &If)> = Vec::new();
        walk(scenario, "scenario", &mut |at, s| match s {
            Step::Request(r) => requests.push((at.to_string(), r)),
            Step::If(c) => conditions.push((join(at, "if"), c)),
            _ => {}
        });
        let defined: Option<BTreeSet<&str>> = vars.zip(feeders).map(|(vars, feeders)| {
            let extracted = requests
                .iter()
                .flat_map(|(_, r)| r.extract.iter().map(|e| e.var.as_str()));
            vars.iter()
                .map(|(k, _)| k.as_str())
                .chain(
                    feeders
                        .iter()
                        .flat_map(|f| f.columns.iter().map(String::as_str)),
                )
                .chain(extracted)
                .chain(BUILTINS)
                .collect()
        });
        let mut problems = Vec::new();
        let unknown = |field: &str, name: &str, defined: &BTreeSet<&str>| {
            let known: Vec<&str> = defined.iter().copied().collect();
            FieldError {
                path: field.to_string(),
                message: format!(
                    "unknown variable ${{{name}}}: define it in `vars`, a feeder's columns or an \
                     `extract` (defined: {})",
                    known.join(", ")
                ),
            }
        };
        for (field, c) in &conditions {
            let Some(defined) = &defined else { continue };
            for name in c.cond.vars() {
                if name != STATUS && !defined.contains(name.as_str()) {
                    problems.push(unknown(field, name, defined));
                }
            }
        }
        for (at, r) in requests {
            let at = at.as_str();
            let mut fields: Vec<(String, &str)> = vec![(join(at, r.method.key()), &r.path)];
            for (name, value) in &r.headers {
                fields.push((format!("{at}.headers.{name}"), value));
            }
            if let Some(body) = &r.body {
                fields.push((join(at, "body"), body));
            }
            for (i, part) in r.multipart.iter().enumerate() {
                if let super::FormValue::Text(t) = &part.value {
                    fields.push((format!("{at}.multipart[{i}].value"), t));
                }
            }
            for check in &r.checks {
                match check {
                    Check::BodyContains(t) => {
                        fields.push((format!("{at}.checks.body_contains"), t))
                    }
                    Check::JsonEquals {
                        path,
                        value: Value::String(t),
                    } => fields.push((format!("{at}.checks.json.{}", path.as_str()), t)),
                    _ => {}
                }
            }
            for (field, text) in fields {
                match Template::parse(text) {
                    Err(e) => problems.push(FieldError {
                        path: field,
                        message: e,
                    }),
                    Ok(t) => {
                        let Some(defined) = &defined else { continue };
                        for name in t.vars().filter(|n| !defined.contains(n)) {
                            problems.push(unknown(&field, name, defined));
                        }
                    }
                }
            }
        }
        self.errors.extend(problems);
    }
}

/// A YAML/JSON scalar as text; `None` for null, lists and maps.
pub(super) fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(super) fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl Plan {
    /// Problems with running this plan on `agents` agents: every agent needs at least one row
    /// of every feeder, since rows are split between agents; a plan with `regions` runs exactly
    /// their agents.
    pub fn check_agents(&self, agents: u32) -> Vec<FieldError> {
        let regions = self.check_region_agents(agents);
        self.feeders
            .iter()
            .filter(|f| f.rows.len() < agents as usize)
            .map(|f| FieldError {
                path: join("feeders", &f.name),
                message: format!(
                    "has {} rows but the run has {agents} agents: each agent uses its own rows, \
                     so every agent needs at least one",
                    f.rows.len()
                ),
            })
            .chain(regions)
            .collect()
    }
}
