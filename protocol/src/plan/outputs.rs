//! `outputs:`: where a run's merged seconds are pushed while it goes.
//!
//! Two sinks, each written as a one-key map so the list reads like k6's `--out`:
//! `outputs: [{prometheus: {url, labels?}}, {otlp: {url, headers?}}]`. Prometheus receives
//! remote-write native histograms, an OTLP/HTTP collector exponential histograms; the
//! coordinator's `export` module does the pushing. The same list is the `[[outputs]]` section of
//! `herd.toml` (every run's default), read by [`parse_outputs`] so both say the same errors.

use super::cx::{join, kind, Cx, FieldError};
use serde_json::{json, Map, Value};

/// One sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Prometheus remote write (1.0, native histograms).
    Prometheus {
        /// The receiver, e.g. `http://127.0.0.1:9090/api/v1/write`.
        url: String,
        /// Extra labels on every series (names checked against Prometheus' label syntax).
        labels: Vec<(String, String)>,
    },
    /// OTLP over HTTP with protobuf bodies.
    Otlp {
        /// The collector's metrics endpoint, e.g. `http://127.0.0.1:4318/v1/metrics`.
        url: String,
        /// Extra request headers (an API key, a tenant).
        headers: Vec<(String, String)>,
    },
}

/// Labels herd sets itself; a plan may not set them too.
pub const RESERVED_LABELS: &[&str] = &["run", "test", "step", "status", "__name__"];

impl Output {
    /// `prometheus` or `otlp`: the key the output is written with.
    pub fn kind(&self) -> &'static str {
        match self {
            Output::Prometheus { .. } => "prometheus",
            Output::Otlp { .. } => "otlp",
        }
    }

    /// The URL pushes go to.
    pub fn url(&self) -> &str {
        match self {
            Output::Prometheus { url, .. } | Output::Otlp { url, .. } => url,
        }
    }

    /// The output as written in a plan.
    pub fn to_json(&self) -> Value {
        let pairs = |p: &[(String, String)]| -> Map<String, Value> {
            p.iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect()
        };
        match self {
            Output::Prometheus { url, labels } => {
                json!({"prometheus": {"url": url, "labels": pairs(labels)}})
            }
            Output::Otlp { url, headers } => {
                json!({"otlp": {"url": url, "headers": pairs(headers)}})
            }
        }
    }
}

/// Validates an `outputs` list (the plan's key, or `herd.toml`'s `[[outputs]]` as a value tree);
/// every problem names its field under `path`.
pub fn parse_outputs(v: &Value, path: &str) -> Result<Vec<Output>, Vec<FieldError>> {
    let mut cx = Cx::default();
    match cx.outputs_at(v, path) {
        Some(outputs) if cx.errors.is_empty() => Ok(outputs),
        _ => Err(cx.errors),
    }
}

impl Cx {
    pub(super) fn outputs(&mut self, v: &Value) -> Option<Vec<Output>> {
        self.outputs_at(v, "outputs")
    }

    fn outputs_at(&mut self, v: &Value, path: &str) -> Option<Vec<Output>> {
        let Value::Array(items) = v else {
            self.err(path, format!("must be a list, got {}", kind(v)));
            return None;
        };
        let before = self.errors.len();
        let outputs: Vec<Output> = items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| self.output(item, &format!("{path}[{i}]")))
            .collect();
        (self.errors.len() == before).then_some(outputs)
    }

    fn output(&mut self, v: &Value, path: &str) -> Option<Output> {
        let m = self.object(v, path, &["prometheus", "otlp"])?;
        if m.len() != 1 {
            self.err(
                path,
                "must have exactly one key: `prometheus` or `otlp` (one sink per list item)",
            );
            return None;
        }
        let (key, body) = m.iter().next()?;
        let path = join(path, key);
        match key.as_str() {
            "prometheus" => {
                let m = self.object(body, &path, &["url", "labels"])?;
                let url = self.output_url(m, &path);
                let labels = self.pairs(m.get("labels"), &join(&path, "labels"), true);
                Some(Output::Prometheus {
                    url: url?,
                    labels: labels?,
                })
            }
            "otlp" => {
                let m = self.object(body, &path, &["url", "headers"])?;
                let url = self.output_url(m, &path);
                let headers = self.pairs(m.get("headers"), &join(&path, "headers"), false);
                Some(Output::Otlp {
                    url: url?,
                    headers: headers?,
                })
            }
            _ => None,
        }
    }

    fn output_url(&mut self, m: &Map<String, Value>, path: &str) -> Option<String> {
        let path = join(path, "url");
        let v = m.get("url");
        if v.is_none() {
            self.err(&path, "is required");
        }
        let url = self.string(v?, &path)?;
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"));
        match rest {
            Some(rest) if !rest.is_empty() && !rest.starts_with('/') => Some(url),
            _ => {
                self.err(
                    &path,
                    "must be an http:// or https:// URL with a host, such as \"http://127.0.0.1:9090/api/v1/write\"",
                );
                None
            }
        }
    }

    /// A map of strings; `labels` also checks Prometheus' label-name syntax and refuses the
    /// labels herd sets itself.
    fn pairs(
        &mut self,
        v: Option<&Value>,
        path: &str,
        labels: bool,
    ) -> Option<Vec<(String, String)>> {
        let Some(v) = v else {
            return Some(Vec::new());
        };
        let Value::Object(m) = v else {
            self.err(path, format!("must be a map of strings, got {}", kind(v)));
            return None;
        };
        let before = self.errors.len();
        let mut out = Vec::new();
        for (k, v) in m {
            let field = join(path, k);
            if labels && !is_label_name(k) {
                self.err(
                    &field,
                    "is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)",
                );
            } else if labels && RESERVED_LABELS.contains(&k.as_str()) {
                self.err(
                    &field,
                    format!(
                        "is set by herd itself ({})",
                        RESERVED_LABELS[..4].join(", ")
                    ),
                );
            } else if !labels && (k.is_empty() || !k.bytes().all(is_token_byte)) {
                self.err(&field, "is not a valid HTTP header name");
            }
            match v {
                Value::String(s) if !labels && s.contains(['\r', '\n']) => {
                    self.err(&field, "must not contain a line break");
                }
                Value::String(s) => out.push((k.clone(), s.clone())),
                other => self.err(&field, format!("must be a string, got {}", kind(other))),
            }
        }
        (self.errors.len() == before).then_some(out)
    }
}

fn is_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    first_ok && !name.starts_with("__") && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::from_yaml_str;

    const BASE: &str = "version: 1\nname: t\ntarget: http://127.0.0.1:1\nload: {vus: 1, duration: 1s}\nscenario: [{get: /}]\n";

    #[test]
    fn outputs_parse_and_survive_the_plans_json() {
        let plan = from_yaml_str(&format!(
            "{BASE}outputs:\n  - prometheus: {{url: 'http://p:9090/api/v1/write', labels: {{team: a}}}}\n  - otlp: {{url: 'https://c/v1/metrics', headers: {{x-key: k}}}}\n"
        ))
        .expect("valid");
        assert_eq!(
            plan.outputs,
            vec![
                Output::Prometheus {
                    url: "http://p:9090/api/v1/write".into(),
                    labels: vec![("team".into(), "a".into())],
                },
                Output::Otlp {
                    url: "https://c/v1/metrics".into(),
                    headers: vec![("x-key".into(), "k".into())],
                },
            ]
        );
        let again = crate::plan::from_value(&plan.to_json()).expect("round trip");
        assert_eq!(again.outputs, plan.outputs);
        let none = from_yaml_str(BASE).expect("valid");
        assert!(none.outputs.is_empty());
        assert!(none.to_json().get("outputs").is_none());
    }

    #[test]
    fn every_bad_output_field_is_named() {
        let errors = from_yaml_str(&format!(
            "{BASE}outputs:\n  - prometheus: {{url: 'ftp://x', labels: {{run: a, '9x': b, ok: 3}}}}\n  - otlp: {{headers: {{'bad header': x}}}}\n  - {{prometheus: {{url: 'http://a'}}, otlp: {{url: 'http://b'}}}}\n  - influx: {{}}\n"
        ))
        .expect_err("invalid")
        .to_string();
        for needle in [
            "outputs[0].prometheus.url: must be an http",
            "outputs[0].prometheus.labels.run: is set by herd itself",
            "outputs[0].prometheus.labels.9x: is not a Prometheus label name",
            "outputs[0].prometheus.labels.ok: must be a string",
            "outputs[1].otlp.url: is required",
            "outputs[1].otlp.headers.bad header: is not a valid HTTP header name",
            "outputs[2]: must have exactly one key",
            "outputs[3].influx: unknown field",
        ] {
            assert!(errors.contains(needle), "{needle} not in:\n{errors}");
        }
        let top = parse_outputs(&serde_json::json!({"prometheus": {}}), "outputs")
            .expect_err("not a list");
        assert_eq!(top[0].to_string(), "outputs: must be a list, got a map");
    }
}
