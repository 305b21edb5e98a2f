//! Timers, extractors and assertions: the elements that apply to every sampler in their scope,
//! converted once into [`Rule`]s that the walk attaches to each request.
//!
//! Why rules: JMeter resolves these by scope at run time (a timer beside two samplers delays
//! both); herd has no scopes, so each sampler gets its own copy, which is what JMeter does.

use super::props::{collection, El};
use crate::import::draft::Req;
use crate::import::text::{var_name, Expr};
use crate::plan::JsonPath;
use serde_json::Value;
use std::time::Duration;

/// What a scoped element does to each request in its scope.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Rule {
    /// A pause before the request (timers add up).
    Think(Duration, Duration),
    /// An extraction; `default` is the variable's value before the first extraction.
    Extract {
        var: String,
        kind: &'static str,
        expr: String,
        default: Option<String>,
    },
    Status(u16),
    MaxLatency(Duration),
    Contains(String),
    Json(String, Value),
}

/// The outcome of converting a scoped element.
pub(super) enum Converted {
    Rules(Vec<Rule>, Vec<String>),
    Skip(String),
}

impl Rule {
    /// Applies the rule to a request (think times are applied by the walk).
    pub fn apply(&self, req: &mut Req) {
        match self {
            Rule::Think(..) => {}
            Rule::Extract {
                var, kind, expr, ..
            } => {
                req.extract.retain(|e| e.0 != *var);
                req.extract.push((var.clone(), kind, expr.clone()));
            }
            Rule::Status(s) => req.status = Some(*s),
            Rule::MaxLatency(d) => req.max_latency = Some(*d),
            Rule::Contains(t) => {
                if !req.body_contains.contains(t) {
                    req.body_contains.push(t.clone());
                }
            }
            Rule::Json(p, v) => {
                req.json_checks.retain(|c| c.0 != *p);
                req.json_checks.push((p.clone(), v.clone()));
            }
        }
    }
}

fn millis(el: &El<'_>, expr: &mut Expr<'_>, name: &str) -> Option<f64> {
    let raw = el.prop(name)?;
    expr.eval_static(raw)?.trim().parse::<f64>().ok()
}

fn ms(x: f64) -> Duration {
    Duration::from_millis(x.clamp(0.0, 86_400_000.0) as u64)
}

/// A timer (a pause before each sampler in scope).
pub(super) fn timer(el: &El<'_>, expr: &mut Expr<'_>) -> Converted {
    let delay = millis(el, expr, "ConstantTimer.delay");
    let range = millis(el, expr, "RandomTimer.range").unwrap_or(0.0);
    let dynamic = || Converted::Skip("its delay is computed at run time".into());
    match el.short_class() {
        "ConstantTimer" => match delay {
            Some(d) => Converted::Rules(vec![Rule::Think(ms(d), ms(d))], Vec::new()),
            None => dynamic(),
        },
        "UniformRandomTimer" => match delay {
            Some(d) => Converted::Rules(vec![Rule::Think(ms(d), ms(d + range))], Vec::new()),
            None => dynamic(),
        },
        "GaussianRandomTimer" => match delay {
            Some(d) => Converted::Rules(
                vec![Rule::Think(ms(d - range), ms(d + range))],
                vec![format!(
                    "a Gaussian delay ({d} ms ± {range} ms) drawn uniformly from ±1 deviation"
                )],
            ),
            None => dynamic(),
        },
        "PoissonRandomTimer" => match delay {
            Some(d) => Converted::Rules(
                vec![Rule::Think(ms(d), ms(d + 2.0 * range))],
                vec![format!(
                    "a Poisson delay (λ {range} ms) drawn uniformly from its mean's range"
                )],
            ),
            None => dynamic(),
        },
        other => Converted::Skip(format!("{other} has no herd equivalent")),
    }
}

/// Whether JSON path text is one herd reads (keys and indices, no wildcards or filters).
fn json_path(path: &str) -> Result<String, String> {
    JsonPath::parse(path.trim())
        .map(|p| p.as_str().to_string())
        .map_err(|e| format!("the JSON path {path:?} is not one herd reads ({e})"))
}

/// A post-processor that extracts a value.
pub(super) fn extractor(el: &El<'_>) -> Converted {
    match el.short_class() {
        "RegexExtractor" => {
            let var = var_name(el.prop_or("RegexExtractor.refname", ""));
            let regex = el.prop_or("RegexExtractor.regex", "");
            let template = el.prop_or("RegexExtractor.template", "$1$").trim();
            let scope = el.prop_or("RegexExtractor.useHeaders", "false");
            if scope != "false" && !scope.is_empty() {
                return Converted::Skip(format!(
                    "it reads {}: herd's regex extraction reads the body",
                    match scope {
                        "true" => "the response headers",
                        "code" => "the status code",
                        "message" => "the status message",
                        "URL" => "the URL",
                        _ => "something other than the body",
                    }
                ));
            }
            if let Err(e) = regex_lite::Regex::new(regex) {
                return Converted::Skip(format!(
                    "the regular expression is not one herd reads: {e}"
                ));
            }
            let mut notes = Vec::new();
            if template != "$1$" {
                notes.push(format!("template {template}: herd takes the first group"));
            }
            let n = el
                .prop_or("RegexExtractor.match_number", "1")
                .trim()
                .to_string();
            if n != "1" && !n.is_empty() {
                notes.push(format!("match number {n}: herd takes the first match"));
            }
            let default = el.prop("RegexExtractor.default").filter(|d| !d.is_empty());
            Converted::Rules(
                vec![Rule::Extract {
                    var,
                    kind: "regex",
                    expr: regex.to_string(),
                    default: default.map(str::to_string),
                }],
                notes,
            )
        }
        "BoundaryExtractor" => {
            let var = var_name(el.prop_or("BoundaryExtractor.refname", ""));
            let left = el.prop_or("BoundaryExtractor.lboundary", "");
            let right = el.prop_or("BoundaryExtractor.rboundary", "");
            let scope = el.prop_or("BoundaryExtractor.useHeaders", "false");
            if scope != "false" && !scope.is_empty() {
                return Converted::Skip("it reads the headers: herd's regex reads the body".into());
            }
            let regex = format!(
                "(?s){}(.*?){}",
                regex_lite::escape(left),
                regex_lite::escape(right)
            );
            let default = el
                .prop("BoundaryExtractor.default")
                .filter(|d| !d.is_empty());
            Converted::Rules(
                vec![Rule::Extract {
                    var,
                    kind: "regex",
                    expr: regex,
                    default: default.map(str::to_string),
                }],
                vec!["the boundaries became a regular expression".into()],
            )
        }
        "JSONPostProcessor" => {
            let names = el.prop_or("JSONPostProcessor.referenceNames", "");
            let paths = el.prop_or("JSONPostProcessor.jsonPathExprs", "");
            let defaults = el.prop_or("JSONPostProcessor.defaultValues", "");
            let defaults: Vec<&str> = defaults.split(';').collect();
            let mut rules = Vec::new();
            let mut notes = Vec::new();
            for (i, (name, path)) in names.split(';').zip(paths.split(';')).enumerate() {
                match json_path(path) {
                    Ok(p) => rules.push(Rule::Extract {
                        var: var_name(name),
                        kind: "json",
                        expr: p,
                        default: defaults
                            .get(i)
                            .filter(|d| !d.is_empty())
                            .map(|d| d.to_string()),
                    }),
                    Err(e) => notes.push(format!("{name} left out: {e}")),
                }
            }
            if rules.is_empty() {
                return Converted::Skip(notes.join("; "));
            }
            Converted::Rules(rules, notes)
        }
        "JSONPathExtractor" => {
            let path = el.prop_or("JSONPATH", "");
            match json_path(path) {
                Ok(p) => Converted::Rules(
                    vec![Rule::Extract {
                        var: var_name(el.prop_or("VAR", "")),
                        kind: "json",
                        expr: p,
                        default: el
                            .prop("DEFAULT")
                            .filter(|d| !d.is_empty())
                            .map(str::to_string),
                    }],
                    Vec::new(),
                ),
                Err(e) => Converted::Skip(e),
            }
        }
        other => Converted::Skip(format!(
            "{other} has no herd equivalent (herd extracts by JSON path, regex or header)"
        )),
    }
}

/// An assertion.
pub(super) fn assertion(el: &El<'_>, expr: &mut Expr<'_>, counter: &mut usize) -> Converted {
    match el.short_class() {
        "DurationAssertion" => match millis(el, expr, "DurationAssertion.duration") {
            Some(d) if d > 0.0 => Converted::Rules(vec![Rule::MaxLatency(ms(d))], Vec::new()),
            _ => Converted::Skip("no duration".into()),
        },
        "ResponseAssertion" => response_assertion(el, expr),
        "JSONPathAssertion" => {
            let path = match json_path(el.prop_or("JSON_PATH", "")) {
                Ok(p) => p,
                Err(e) => return Converted::Skip(e),
            };
            if el.bool("INVERT") {
                return Converted::Skip("an inverted JSON assertion has no herd check".into());
            }
            if el.bool("EXPECT_NULL") {
                return Converted::Skip("expecting null has no herd check".into());
            }
            if !el.bool("JSONVALIDATION") {
                *counter += 1;
                let var = format!("assert_{counter}");
                return Converted::Rules(
                    vec![Rule::Extract {
                        var: var.clone(),
                        kind: "json",
                        expr: path,
                        default: None,
                    }],
                    vec![format!(
                        "the path's existence is checked by an extraction into {var} (found = passed)"
                    )],
                );
            }
            let expected = el.prop_or("EXPECTED_VALUE", "");
            let regex = el.prop("ISREGEX").is_none_or(|v| v == "true");
            if regex && expected.chars().any(|c| "\\^$.|?*+()[]{}".contains(c)) {
                return Converted::Skip(format!("the expected value {expected:?} is a regular expression; herd compares values"));
            }
            let value: Value = serde_json::from_str(expected)
                .unwrap_or_else(|_| Value::String(expr.template(expected)));
            Converted::Rules(vec![Rule::Json(path, value)], Vec::new())
        }
        other => Converted::Skip(format!(
            "{other} has no herd equivalent (herd checks status, latency, body text and JSON values)"
        )),
    }
}

/// Response Assertion: `Assertion.test_type` is a bit set (1 matches, 2 contains, 4 not,
/// 8 equals, 16 substring, 32 or).
fn response_assertion(el: &El<'_>, expr: &mut Expr<'_>) -> Converted {
    let field = el.prop_or("Assertion.test_field", "Assertion.response_data");
    let kind: u32 = el
        .prop_or("Assertion.test_type", "16")
        .trim()
        .parse()
        .unwrap_or(16);
    let strings: Vec<&str> = collection(el.node, "Asserion.test_strings")
        .iter()
        .chain(collection(el.node, "Assertion.test_strings"))
        .map(|n| n.text.as_str())
        .collect();
    if kind & 4 != 0 {
        return Converted::Skip("a negated (NOT) assertion has no herd check".into());
    }
    if strings.is_empty() {
        return Converted::Skip("no pattern to test".into());
    }
    let mut notes = Vec::new();
    if kind & 32 != 0 && strings.len() > 1 {
        notes.push("OR of several patterns: all of them are required".into());
    }
    let regex_kind = kind & (1 | 2) != 0;
    match field {
        "Assertion.response_code" => {
            let codes: Vec<u16> = strings
                .iter()
                .filter_map(|s| {
                    s.trim()
                        .parse::<u16>()
                        .ok()
                        .filter(|c| (100..=599).contains(c))
                })
                .collect();
            match codes.as_slice() {
                [] => Converted::Skip(format!(
                    "the status pattern {:?} is not one status code",
                    strings.join(" ")
                )),
                [one] => Converted::Rules(vec![Rule::Status(*one)], notes),
                [first, ..] => {
                    notes.push(format!("several status codes: {first} is checked"));
                    Converted::Rules(vec![Rule::Status(*first)], notes)
                }
            }
        }
        "Assertion.response_data" | "Assertion.response_data_as_document" => {
            let mut rules = Vec::new();
            for s in strings {
                if s.is_empty() {
                    continue;
                }
                let literal_text = if regex_kind {
                    unregex(s)
                } else {
                    Some(s.to_string())
                };
                match literal_text {
                    Some(t) if !t.is_empty() => rules.push(Rule::Contains(expr.template(&t))),
                    _ => notes.push(format!(
                        "the pattern {s:?} is a regular expression: left out"
                    )),
                }
            }
            if kind & 8 != 0 {
                notes.push("equality became \"the body contains\"".into());
            }
            if rules.is_empty() {
                return Converted::Skip(notes.join("; "));
            }
            Converted::Rules(rules, notes)
        }
        other => Converted::Skip(format!(
            "it tests {}: herd checks the status and the body",
            other.trim_start_matches("Assertion.")
        )),
    }
}

/// The literal text a regular expression matches, if it is a literal (escapes allowed).
pub(crate) fn unregex(pattern: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let next = chars.next()?;
                if next.is_ascii_alphanumeric() {
                    return None;
                }
                out.push(next);
            }
            '^' | '$' | '.' | '|' | '?' | '*' | '+' | '(' | ')' | '[' | ']' | '{' | '}' => {
                return None
            }
            _ => out.push(c),
        }
    }
    Some(out)
}
