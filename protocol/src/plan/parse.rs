//! From a value tree to a [`Plan`], collecting every error with its field path.
//!
//! This module drives the walk (the plan's top keys, its steps and their headers); the context
//! and its basic checks live in `cx`, and the other parts of the walk (`parse_load`,
//! `parse_scenario`, `options`, `body`) extend that context without importing this module.

use super::cx::{join, kind, single, Cx, FieldError, PlanErrors, PlanFiles};
use super::parse_flow::FLOW_KEYS;
use super::threshold_rule::ThresholdRule;
use super::{Method, OncePhase, Options, Plan, RampStages, RequestStep, Step};
use serde_json::Value;

/// Parses a YAML plan (JSON is YAML too, but see [`from_json_str`] for JSON-specific messages).
/// Feeders and bodies must carry their data inline; see [`from_yaml_str_with`] for files.
pub fn from_yaml_str(text: &str) -> Result<Plan, PlanErrors> {
    parse_value(&yaml(text)?, None)
}

/// Parses a YAML plan whose feeders and body files may name files, read through `files`.
pub fn from_yaml_str_with(text: &str, files: &dyn PlanFiles) -> Result<Plan, PlanErrors> {
    parse_with_files(yaml(text)?, files)
}

/// Parses a JSON plan.
pub fn from_json_str(text: &str) -> Result<Plan, PlanErrors> {
    parse_value(&json(text)?, None)
}

/// Parses a JSON plan whose feeders and body files may name files, read through `files`.
pub fn from_json_str_with(text: &str, files: &dyn PlanFiles) -> Result<Plan, PlanErrors> {
    parse_with_files(json(text)?, files)
}

/// Validates a plan given as a value tree (data inline only).
pub fn from_value(value: &Value) -> Result<Plan, PlanErrors> {
    parse_value(value, None)
}

/// Validates the plan of a start command, whose body files may be slices of the `body_data` its
/// chunks carried (`{path, chunked: {offset, bytes}}`, see [`crate::body_data`]).
pub fn from_value_with_body_data(
    value: &Value,
    body_data: bytes::Bytes,
) -> Result<Plan, PlanErrors> {
    let mut cx = Cx {
        body_data: Some(body_data),
        ..Cx::default()
    };
    finish(&mut cx, value)
}

/// Validates a plan given as a value tree whose feeders and body files may name files.
pub fn from_value_with(value: &Value, files: &dyn PlanFiles) -> Result<Plan, PlanErrors> {
    parse_with_files(value.clone(), files)
}

/// A plan's text as a value tree (JSON when `is_json`, else YAML), for changes such as
/// [`Overrides`](super::Overrides) before [`from_value_with`].
pub fn value_from_text(text: &str, is_json: bool) -> Result<Value, PlanErrors> {
    if is_json {
        json(text)
    } else {
        yaml(text)
    }
}

fn yaml(text: &str) -> Result<Value, PlanErrors> {
    serde_yaml::from_str(text).map_err(|e| single(format!("not valid YAML: {e}")))
}

fn json(text: &str) -> Result<Value, PlanErrors> {
    serde_json::from_str(text).map_err(|e| single(format!("not valid JSON: {e}")))
}

/// Loads body files into the value (a file that cannot be read is reported at its step), then
/// parses it with feeders' files, reporting every problem of both passes together.
fn parse_with_files(mut value: Value, files: &dyn PlanFiles) -> Result<Plan, PlanErrors> {
    let mut errors = super::overrides::resolve_env(&mut value, &|name| files.env(name));
    errors.extend(super::body::load_body_files(&mut value, files));
    errors.extend(super::target_tls::load_tls_files(&mut value, files));
    errors.extend(super::setup::load_once_body_files(&mut value, files));
    match parse_value(&value, Some(files)) {
        Ok(plan) if errors.is_empty() => Ok(plan),
        Ok(_) => Err(PlanErrors(errors)),
        Err(PlanErrors(more)) => {
            errors.extend(more);
            Err(PlanErrors(errors))
        }
    }
}

fn parse_value(value: &Value, files: Option<&dyn PlanFiles>) -> Result<Plan, PlanErrors> {
    let mut cx = Cx::default();
    if let Some(files) = files {
        cx.read_feeder_files(value, files);
        cx.read_script_file(value, files);
    }
    finish(&mut cx, value)
}

fn finish(cx: &mut Cx, value: &Value) -> Result<Plan, PlanErrors> {
    let plan = cx.plan(value);
    match plan {
        Some(plan) if cx.errors.is_empty() => Ok(plan),
        _ => Err(PlanErrors(std::mem::take(&mut cx.errors))),
    }
}

const TOP_KEYS: &[&str] = &[
    "version",
    "name",
    "target",
    "agents",
    "load",
    "vars",
    "feeders",
    "scenario",
    "thresholds",
    "options",
    "secrets",
    "outputs",
    "regions",
    "hosts",
    "scenarios",
    "scripts",
    "setup",
    "teardown",
];

impl Cx {
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
        let written = m
            .get("agents")
            .map(|v| self.integer(v, "agents", 1, "must be >= 1"));
        let (regions, agents) = match m.get("regions") {
            Some(v) => match self.regions(v, written) {
                Some((regions, total)) => (Some(regions), Some(total)),
                None => (None, None),
            },
            None => (Some(Vec::new()), written.unwrap_or(Some(1))),
        };
        let several = m.contains_key("scenarios");
        if several {
            for key in ["load", "scenario"] {
                if m.contains_key(key) {
                    self.err(
                        key,
                        "a plan with `scenarios` gives each scenario its own load and steps: \
                         use either `scenarios` or `load` + `scenario`, not both",
                    );
                }
            }
        }
        let load = if several {
            Some(super::Load::default())
        } else {
            self.required(m, "", "load").and_then(|v| self.load(v))
        };
        let vars = match m.get("vars") {
            Some(v) => self.vars(v),
            None => Some(Vec::new()),
        };
        let feeders = match m.get("feeders") {
            Some(v) => self.feeders(v),
            None => Some(Vec::new()),
        };
        let scenario = if several {
            Some(Vec::new())
        } else {
            self.required(m, "", "scenario")
                .and_then(|v| self.scenario_steps(v, "scenario"))
        };
        if let (Some(vars), Some(feeders)) = (&vars, &feeders) {
            self.check_clashes(vars, feeders);
        }
        let secrets = match m.get("secrets") {
            Some(v) => self.secrets(v),
            None => Some(Vec::new()),
        };
        let defined = vars.as_ref().zip(secrets.as_ref()).map(|(vars, secrets)| {
            super::secrets::with_secret_names(vars, secrets, &mut self.errors)
        });
        let setup = self.once_steps(m, OncePhase::Setup);
        let teardown = self.once_steps(m, OncePhase::Teardown);
        if let (Some(defined), Some(feeders), Some(setup), Some(teardown)) =
            (&defined, &feeders, &setup, &teardown)
        {
            self.check_once_variables(defined, feeders, setup, teardown);
        }
        // Every VU starts with what setup extracts.
        let defined = match (defined, &setup) {
            (Some(defined), Some(setup)) => Some(super::setup::with_setup_vars(&defined, setup)),
            (defined, _) => defined,
        };
        if let Some(scenario) = &scenario {
            self.check_variables(defined.as_deref(), feeders.as_deref(), scenario);
        }
        let thresholds = match m.get("thresholds") {
            Some(v) => self.thresholds(v),
            None => Some(Vec::new()),
        };
        let scenarios = match m.get("scenarios") {
            Some(v) => self.scenarios(v, defined.as_deref(), feeders.as_deref()),
            None => Some(Vec::new()),
        };
        if let (Some(scenario), Some(scenarios), Some(thresholds)) =
            (&scenario, &scenarios, &thresholds)
        {
            let mut all: Vec<&[Step]> = vec![scenario];
            all.extend(scenarios.iter().map(|s| &s.steps[..]));
            self.check_selectors(&all, thresholds);
        }
        let options = match m.get("options") {
            Some(v) => self.options(v),
            None => Some(Options::default()),
        };
        let outputs = match m.get("outputs") {
            Some(v) => self.outputs(v),
            None => Some(Vec::new()),
        };
        let hosts = match m.get("hosts") {
            Some(v) => self.hosts(v),
            None => Some(Vec::new()),
        };
        let scripts = match (&scenario, &scenarios, &setup, &teardown) {
            (Some(scenario), Some(scenarios), Some(setup), Some(teardown)) => {
                let mut all: Vec<(String, &[Step])> = vec![("scenario".into(), &scenario[..])];
                all.extend(
                    scenarios
                        .iter()
                        .map(|s| (format!("scenarios.{}.steps", s.name), &s.steps[..])),
                );
                all.push(("setup".into(), setup));
                all.push(("teardown".into(), teardown));
                self.scripts(m.get("scripts"), &all)
            }
            _ => None,
        };
        let plan = Plan {
            name: name?,
            target: target?,
            agents: agents?,
            load: load?,
            vars: vars?,
            feeders: feeders?,
            scenario: scenario?,
            thresholds: thresholds?,
            options: options?,
            secrets: secrets?,
            outputs: outputs?,
            regions: regions?,
            hosts: hosts?,
            scenarios: scenarios?,
            scripts: scripts?,
            setup: setup?,
            teardown: teardown?,
        };
        self.errors.extend(plan.check_agents(plan.agents));
        Some(plan)
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

    /// A scenario's steps (`scenario`, or `scenarios.NAME.steps` at `path`).
    pub(super) fn scenario_steps(&mut self, v: &Value, path: &str) -> Option<Vec<Step>> {
        let steps = self.step_list(v, path, true);
        let ok = steps.is_some();
        let steps = steps.unwrap_or_default();
        let mut any_request = false;
        super::walk(&steps, "", &mut |_, s| {
            any_request |= matches!(s, Step::Request(_) | Step::Script(_));
        });
        if ok && !any_request {
            self.err(
                path,
                "must have at least one request step (get, post, …) or script step",
            );
            return None;
        }
        ok.then_some(steps)
    }

    pub(super) fn step(&mut self, v: &Value, path: &str) -> Option<Step> {
        if let Value::Object(m) = v {
            if m.contains_key("script") {
                return self.script_step(v, path);
            }
            if let Some(key) = FLOW_KEYS.iter().find(|k| m.contains_key(**k)) {
                return self.flow_step(key, m, v, path);
            }
        }
        let mut allowed: Vec<&str> = vec![
            "name",
            "headers",
            "body",
            "json",
            "body_file",
            "multipart",
            "think",
            "checks",
            "extract",
            "timeout",
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
                self.err(path, "needs a request (get, post, put, patch, delete, head: PATH), think: DURATION, or one of group, choose, repeat, if, pace, parallel");
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
                Some(n) if !self.step_name_free(&n, &join(path, "name")) => None,
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
        let extract = match m.get("extract") {
            Some(v) => self.extract(v, &join(path, "extract")),
            None => Some(Vec::new()),
        };
        let timeout = match m.get("timeout") {
            Some(v) => {
                let p = join(path, "timeout");
                match self.duration(v, &p) {
                    Some(d) if d.is_zero() => {
                        self.err(&p, "must be > 0");
                        ok = false;
                        None
                    }
                    Some(d) => Some(d),
                    None => {
                        ok = false;
                        None
                    }
                }
            }
            None => None,
        };
        if m.get("name").is_some() && name.is_none() {
            ok = false;
        }
        let req_path = req_path?;
        let (mut headers, body, checks, extract) = (headers?, body?, checks?, extract?);
        if !ok {
            return None;
        }
        if !body.multipart.is_empty() {
            if let Some((k, _)) = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            {
                self.err(
                    &format!("{path}.headers.{k}"),
                    "a multipart body sets its own content type (with its boundary)",
                );
                return None;
            }
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
            extract,
            timeout,
            multipart: body.multipart,
        }))
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
            if !super::parse_scenario::is_header_name(k) {
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

    fn thresholds(&mut self, v: &Value) -> Option<Vec<ThresholdRule>> {
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
            match self.threshold_rule(item, &format!("thresholds[{i}]")) {
                Some(t) => out.push(t),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }
}

/// Validates the stages of a live ramp: `[{duration, vus}]` for a closed-model run, or
/// `[{duration, rps}]` for an open-model one (told apart by the first stage's keys). Errors are
/// named from `stages` (`stages[1].vus: must be > 0`).
pub fn ramp_from_value(stages: &Value) -> Result<RampStages, PlanErrors> {
    let open = stages
        .as_array()
        .and_then(|a| a.first())
        .is_some_and(|s| s.get("rps").is_some());
    let mut cx = Cx::default();
    let load = if open {
        cx.load(&serde_json::json!({ "arrival": stages }))
    } else {
        cx.load(&serde_json::json!({ "stages": stages }))
    };
    match load {
        Some(load) if cx.errors.is_empty() => Ok(match load.arrival {
            Some(arrival) => RampStages::Rate(arrival.stages),
            None => RampStages::Vus(load.stages),
        }),
        _ => Err(PlanErrors(
            cx.errors
                .into_iter()
                .map(|e| FieldError {
                    path: e.path.replacen("load.arrival", "stages", 1).replacen(
                        "load.stages",
                        "stages",
                        1,
                    ),
                    message: e.message,
                })
                .collect(),
        )),
    }
}
