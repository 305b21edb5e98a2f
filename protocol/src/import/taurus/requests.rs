//! Taurus requests and their blocks (`transaction`, `loop`, `if`/`while`/`foreach`/`once`,
//! `include-scenario`), extractions and assertions, into request steps.

use super::{scalar, think_time, Cx};
use crate::import::draft::{method_key, Draft, DraftStep, Req};
use crate::import::jmeter::rules::unregex;
use crate::import::jmeter::samplers::{is_header_name, relative_file};
use crate::import::text::{form_encode, split_url, var_name};
use crate::plan::JsonPath;
use serde_json::{Map, Value};
use std::time::Duration;

impl Cx<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn requests(
        &mut self,
        items: &[Value],
        at: &str,
        base: &Req,
        think: Option<(Duration, Duration)>,
        tx: Option<&str>,
        draft: &mut Draft,
    ) {
        for (i, item) in items.iter().enumerate() {
            let path = format!("{at}[{i}]");
            let Some(m) = item.as_object() else {
                if let Some(url) = item.as_str() {
                    let mut m = Map::new();
                    m.insert("url".into(), Value::String(url.into()));
                    self.request(&m, &path, base, think, tx, draft);
                }
                continue;
            };
            let block = |k: &str| m.get(k).is_some();
            if block("transaction") {
                let name = m.get("transaction").map(scalar);
                self.report.approx(
                    &path,
                    "transaction",
                    "herd reports its requests per step; their total is not computed",
                );
                let inner = m
                    .get("do")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                self.requests(
                    &inner,
                    &format!("{path}.do"),
                    base,
                    think,
                    name.as_deref(),
                    draft,
                );
            } else if block("loop") {
                let inner = m
                    .get("do")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let n = m.get("loop").and_then(Value::as_u64);
                let before = draft.steps.len();
                let item_at = self.report.items.len();
                self.report.converted(&path, "loop");
                self.requests(&inner, &format!("{path}.do"), base, think, tx, draft);
                let body: Vec<DraftStep> = draft.steps[before..].to_vec();
                match n {
                    Some(n @ 2..=10) if body.len() * n as usize <= 100 => {
                        for _ in 1..n {
                            draft.steps.extend(body.iter().cloned());
                        }
                        self.report.items[item_at].outcome =
                            crate::import::report::Outcome::Approximated(format!(
                                "unrolled {n} times"
                            ));
                    }
                    Some(1) => {}
                    _ => {
                        self.report.items[item_at].outcome =
                            crate::import::report::Outcome::Approximated(
                                "herd has no loops: its requests run once per iteration".into(),
                            )
                    }
                }
            } else if block("if") || block("while") || block("foreach") || block("once") {
                let kind = ["if", "while", "foreach", "once"]
                    .into_iter()
                    .find(|k| block(k))
                    .unwrap_or("if");
                self.report.approx(
                    &path,
                    kind,
                    "the condition is not evaluated: its requests always run, once",
                );
                let key = if kind == "if" {
                    "then"
                } else if kind == "once" {
                    "once"
                } else {
                    "do"
                };
                let inner = m
                    .get(key)
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                self.requests(&inner, &format!("{path}.{key}"), base, think, tx, draft);
            } else if let Some(name) = m.get("include-scenario").and_then(Value::as_str) {
                let inner = self
                    .scenarios
                    .get(name)
                    .and_then(|s| s.get("requests"))
                    .and_then(Value::as_array)
                    .cloned();
                match inner {
                    Some(inner) if self.depth < 8 => {
                        self.report.converted(&path, "include-scenario");
                        self.depth += 1;
                        self.requests(
                            &inner,
                            &format!("scenarios.{name}.requests"),
                            base,
                            think,
                            tx,
                            draft,
                        );
                        self.depth -= 1;
                    }
                    _ => self.report.skipped(
                        &path,
                        "include-scenario",
                        format!("no scenario {name} with requests"),
                    ),
                }
            } else if block("url") {
                self.request(m, &path, base, think, tx, draft);
            } else {
                let kind = m.keys().next().cloned().unwrap_or_default();
                self.report.skipped(&path, &kind, "not supported by herd");
            }
        }
    }

    fn request(
        &mut self,
        m: &Map<String, Value>,
        path: &str,
        base: &Req,
        think: Option<(Duration, Duration)>,
        tx: Option<&str>,
        draft: &mut Draft,
    ) {
        let raw = m.get("url").map(scalar).unwrap_or_default();
        let method = m
            .get("method")
            .map(scalar)
            .unwrap_or_else(|| "GET".into())
            .to_ascii_uppercase();
        let label = m.get("label").map(scalar);
        let path = format!(
            "{path} {}",
            label.clone().unwrap_or_else(|| format!("{method} {raw}"))
        );
        let mut notes = Vec::new();
        let (origin, rel) = match raw.split_once("://") {
            Some((scheme, rest)) => {
                let end = rest.find(['/', '?']).unwrap_or(rest.len());
                let (authority, p) = (&rest[..end], &rest[end..]);
                let p = if p.is_empty() {
                    "/".to_string()
                } else {
                    p.to_string()
                };
                match self
                    .expr
                    .eval_static(&format!("{scheme}://{authority}"))
                    .as_deref()
                    .and_then(split_url)
                {
                    Some(u) => (Some(u.origin()), p),
                    None => {
                        notes.push(format!(
                            "the host of {raw} is set at run time: sent to the plan's target"
                        ));
                        (None, p)
                    }
                }
            }
            None => (
                None,
                if raw.starts_with('/') || raw.starts_with("${") {
                    raw.clone()
                } else {
                    format!("/{raw}")
                },
            ),
        };
        if self.target.is_none() {
            self.target = origin.clone();
        }
        if !self.forced_target && origin.is_some() && origin != self.target {
            self.report.skipped(
                &path,
                "request",
                "its host is not the plan's target (herd plans have one target)",
            );
            return;
        }
        let Some(key) = method_key(&method) else {
            self.report
                .skipped(&path, "request", format!("herd does not send {method}"));
            return;
        };
        let mut req = base.clone();
        req.method = key;
        req.path = self.expr.template(&rel);
        if !req.path.starts_with('/') {
            req.path.insert(0, '/');
        }
        req.name = match (tx, &label) {
            (Some(t), Some(l)) => Some(format!("{t} / {l}")),
            (Some(t), None) => Some(t.to_string()),
            (None, l) => l.clone(),
        };
        if let Some(Value::Object(h)) = m.get("headers") {
            for (k, v) in h {
                if is_header_name(k) {
                    let v = self.expr.template(&scalar(v));
                    req.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(k));
                    req.headers.push((k.clone(), v));
                }
            }
        }
        match m.get("body") {
            Some(Value::Object(form)) => {
                let json = req
                    .headers
                    .iter()
                    .any(|(k, v)| k.eq_ignore_ascii_case("content-type") && v.contains("json"));
                if json {
                    req.body = Some(self.expr.template(&Value::Object(form.clone()).to_string()));
                } else {
                    let pairs: Vec<String> = form
                        .iter()
                        .map(|(k, v)| {
                            format!(
                                "{}={}",
                                form_encode(&self.expr.template(k)),
                                form_encode(&self.expr.template(&scalar(v)))
                            )
                        })
                        .collect();
                    req.body = Some(pairs.join("&"));
                    req.default_header("content-type", "application/x-www-form-urlencoded");
                }
            }
            Some(Value::Null) | None => {}
            Some(other) => req.body = Some(self.expr.template(&scalar(other))),
        }
        if let Some(f) = m.get("body-file").map(scalar) {
            req.body_file = Some(relative_file(&f, &mut notes));
        }
        self.extractions(m, &mut req, &mut notes, draft);
        self.assertions(m, &mut req, &mut notes);
        for key in [
            "jsr223",
            "extract-xpath",
            "extract-css-jquery",
            "assert-xpath",
            "upload-files",
        ] {
            if m.get(key).is_some() {
                notes.push(format!("{key} left out (not supported by herd)"));
            }
        }
        let think = m
            .get("think-time")
            .and_then(|t| think_time(t, &mut notes))
            .or(think);
        notes.extend(self.expr.take_notes());
        req.origin = origin;
        req.notes = notes.clone();
        if notes.is_empty() {
            self.report.converted(&path, "request")
        } else {
            self.report.approx(&path, "request", notes.join("; "))
        }
        draft.steps.push(DraftStep::Request(Box::new(req)));
        if let Some((a, b)) = think.filter(|t| !t.1.is_zero()) {
            draft.steps.push(DraftStep::Think {
                min: a,
                max: b,
                note: None,
            });
        }
    }

    fn extractions(
        &mut self,
        m: &Map<String, Value>,
        req: &mut Req,
        notes: &mut Vec<String>,
        draft: &mut Draft,
    ) {
        for (kind, key) in [
            ("regex", "extract-regexp"),
            ("json", "extract-jsonpath"),
            ("regex", "extract-boundary"),
        ] {
            let Some(Value::Object(ex)) = m.get(key) else {
                continue;
            };
            for (var, spec) in ex {
                let var = var_name(var);
                let (expr, default, subject) = match spec {
                    Value::String(s) => (s.clone(), None, None),
                    Value::Object(o) => {
                        let e = if key == "extract-boundary" {
                            format!(
                                "(?s){}(.*?){}",
                                regex_lite::escape(&o.get("left").map(scalar).unwrap_or_default()),
                                regex_lite::escape(&o.get("right").map(scalar).unwrap_or_default())
                            )
                        } else {
                            o.get("regexp")
                                .or(o.get("jsonpath"))
                                .map(scalar)
                                .unwrap_or_default()
                        };
                        (
                            e,
                            o.get("default").map(scalar),
                            o.get("subject").map(scalar),
                        )
                    }
                    _ => continue,
                };
                if subject.as_deref().is_some_and(|s| s != "body") {
                    notes.push(format!(
                        "{var}: extraction from the {} left out (herd reads the body)",
                        subject.unwrap_or_default()
                    ));
                    continue;
                }
                let ok = if kind == "json" {
                    JsonPath::parse(&expr)
                        .map(|p| p.as_str().to_string())
                        .map_err(|e| e.to_string())
                } else {
                    regex_lite::Regex::new(&expr)
                        .map(|_| expr.clone())
                        .map_err(|e| e.to_string())
                };
                match ok {
                    Ok(e) => {
                        req.extract.push((var.clone(), kind, e));
                        if let Some(d) = default {
                            draft.define(&var, &d);
                        }
                    }
                    Err(e) => notes.push(format!("{var}: {expr:?} left out ({e})")),
                }
            }
        }
    }

    fn assertions(&mut self, m: &Map<String, Value>, req: &mut Req, notes: &mut Vec<String>) {
        for a in m
            .get("assert")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (texts, subject, regexp, not) = match a {
                Value::String(s) => (vec![s.clone()], "body".to_string(), true, false),
                Value::Object(o) => (
                    match o.get("contains") {
                        Some(Value::Array(a)) => a.iter().map(scalar).collect(),
                        Some(v) => vec![scalar(v)],
                        None => Vec::new(),
                    },
                    o.get("subject")
                        .map(scalar)
                        .unwrap_or_else(|| "body".into()),
                    o.get("regexp").and_then(Value::as_bool).unwrap_or(true),
                    o.get("not").and_then(Value::as_bool).unwrap_or(false),
                ),
                _ => continue,
            };
            if not {
                notes.push("a negated assertion left out".into());
                continue;
            }
            for t in texts {
                match subject.as_str() {
                    "http-code" => match t.trim().parse::<u16>() {
                        Ok(c) if (100..=599).contains(&c) => req.status = Some(c),
                        _ => notes.push(format!("status pattern {t:?} left out")),
                    },
                    "body" => match if regexp { unregex(&t) } else { Some(t.clone()) } {
                        Some(lit) if !lit.is_empty() => {
                            req.body_contains.push(self.expr.template(&lit))
                        }
                        _ => notes.push(format!("the regular expression {t:?} left out")),
                    },
                    other => notes.push(format!("an assertion on the {other} left out")),
                }
            }
        }
        for a in m
            .get("assert-jsonpath")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (p, expected, validate, invert) = match a {
                Value::String(s) => (s.clone(), None, false, false),
                Value::Object(o) => (
                    o.get("jsonpath").map(scalar).unwrap_or_default(),
                    o.get("expected-value").cloned(),
                    o.get("validate").and_then(Value::as_bool).unwrap_or(false),
                    o.get("invert").and_then(Value::as_bool).unwrap_or(false),
                ),
                _ => continue,
            };
            let Ok(jp) = JsonPath::parse(&p) else {
                notes.push(format!("the JSON path {p:?} left out (not one herd reads)"));
                continue;
            };
            if invert {
                notes.push("an inverted JSON assertion left out".into());
            } else if let (true, Some(v)) = (validate, expected) {
                let v = match v {
                    Value::String(s) => serde_json::from_str(&s).unwrap_or(Value::String(s)),
                    other => other,
                };
                req.json_checks.push((jp.as_str().to_string(), v));
            } else {
                self.counter += 1;
                req.extract.push((
                    format!("assert_{}", self.counter),
                    "json",
                    jp.as_str().to_string(),
                ));
                notes.push(
                    "a JSON path's existence is checked by an extraction (found = passed)".into(),
                );
            }
        }
    }
}
