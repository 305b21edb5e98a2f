//! Secrets a plan uses without containing them, and redaction of credentials.
//!
//! A plan names its secrets and where the coordinator finds them:
//! `secrets: {API_TOKEN: {env: HERD_API_TOKEN}, CERT_PIN: {file: pin.txt}}`. The plan (stored,
//! shown, sent around) only ever holds these references; the coordinator resolves the values when
//! the run starts ([`resolve`]: its environment, or a file it reads) and hands them to agents in
//! the start command, where they become variables usable as `${API_TOKEN}`. Encryption in transit
//! is the broker connection's (`mqtts`/`wss`): the start command is not encrypted on its own.
//!
//! Whatever the plan writes in a credential header ([`SENSITIVE_HEADERS`]: `Authorization`,
//! `Cookie`, …) and every secret's value are shown as [`MASK`]: [`redact_plan_json`] masks the
//! headers of a plan's JSON (what is stored with a run and shown by the API), and a [`Redactor`]
//! masks known values inside any text (error messages, log lines).

use super::cx::Cx;
use super::cx::FieldError;
use super::template::is_var_name;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// What a redacted value is shown as.
pub const MASK: &str = "***";

/// Headers whose values are credentials (compared without regard to case).
pub const SENSITIVE_HEADERS: [&str; 5] = [
    "authorization",
    "cookie",
    "set-cookie",
    "proxy-authorization",
    "x-api-key",
];

/// Whether `name` is one of the [`SENSITIVE_HEADERS`].
pub fn is_sensitive_header(name: &str) -> bool {
    SENSITIVE_HEADERS
        .iter()
        .any(|h| h.eq_ignore_ascii_case(name.trim()))
}

/// Where the coordinator finds a secret's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable of the coordinator.
    Env(String),
    /// A file the coordinator reads (its whole text, without the final newline).
    File(String),
}

/// One secret of a plan: its name (a variable name) and where its value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    /// The variable it is used as: `${NAME}`.
    pub name: String,
    /// Where its value is.
    pub source: SecretSource,
}

impl Secret {
    /// The plan's JSON form: `{"env": VAR}` or `{"file": PATH}`.
    pub fn to_json(&self) -> Value {
        match &self.source {
            SecretSource::Env(var) => serde_json::json!({ "env": var }),
            SecretSource::File(path) => serde_json::json!({ "file": path }),
        }
    }
}

/// The plan's `secrets` as JSON: a map of names to sources.
pub fn secrets_json(secrets: &[Secret]) -> Value {
    Value::Object(
        secrets
            .iter()
            .map(|s| (s.name.clone(), s.to_json()))
            .collect::<Map<String, Value>>(),
    )
}

impl Cx {
    /// `secrets: {NAME: {env: VAR} | {file: PATH}}`.
    pub(super) fn secrets(&mut self, v: &Value) -> Option<Vec<Secret>> {
        let Value::Object(m) = v else {
            self.err(
                "secrets",
                "must be a map of names to {env: VARIABLE} or {file: PATH}",
            );
            return None;
        };
        let mut out = Vec::with_capacity(m.len());
        let mut ok = true;
        for (name, source) in m {
            let path = format!("secrets.{name}");
            if !is_var_name(name) {
                self.err(
                    &path,
                    "a secret's name must be a variable name (letters, digits, _)",
                );
                ok = false;
                continue;
            }
            let source = match source {
                Value::Object(s) if s.len() == 1 => match s.iter().next() {
                    Some((k, Value::String(x))) if k == "env" && !x.is_empty() => {
                        Some(SecretSource::Env(x.clone()))
                    }
                    Some((k, Value::String(x))) if k == "file" && !x.is_empty() => {
                        Some(SecretSource::File(x.clone()))
                    }
                    _ => None,
                },
                _ => None,
            };
            match source {
                Some(source) => out.push(Secret {
                    name: name.clone(),
                    source,
                }),
                None => {
                    self.err(
                        &path,
                        "must be {env: VARIABLE} or {file: PATH} (one of them, a non-empty string)",
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }
}

/// The plan's variables with its secrets' names added (values unknown until the run starts), for
/// the check that every `${name}` is defined; a secret named like a variable is an error.
pub(super) fn with_secret_names(
    vars: &[(String, String)],
    secrets: &[Secret],
    errors: &mut Vec<FieldError>,
) -> Vec<(String, String)> {
    let mut all = vars.to_vec();
    for s in secrets {
        if vars.iter().any(|(k, _)| *k == s.name) {
            errors.push(FieldError {
                path: format!("secrets.{}", s.name),
                message: format!("{} is also defined in `vars`: use one name once", s.name),
            });
        }
        all.push((s.name.clone(), String::new()));
    }
    all
}

/// Resolves every secret: `env` reads the coordinator's environment, `file` reads a file. A
/// problem names the secret (`plan.secrets.NAME`), never a value.
pub fn resolve(
    secrets: &[Secret],
    env: impl Fn(&str) -> Option<String>,
    read: impl Fn(&str) -> Result<String, String>,
) -> Result<BTreeMap<String, String>, FieldError> {
    let mut values = BTreeMap::new();
    for s in secrets {
        let path = format!("secrets.{}", s.name);
        let value = match &s.source {
            SecretSource::Env(var) => env(var).ok_or_else(|| FieldError {
                path: path.clone(),
                message: format!("the coordinator has no environment variable {var}"),
            })?,
            SecretSource::File(file) => read(file)
                .map(|text| text.trim_end_matches(['\r', '\n']).to_string())
                .map_err(|e| FieldError {
                    path: path.clone(),
                    message: format!("cannot read {file}: {e}"),
                })?,
        };
        if value.is_empty() {
            return Err(FieldError {
                path,
                message: "is empty".into(),
            });
        }
        values.insert(s.name.clone(), value);
    }
    Ok(values)
}

/// Masks the values of [`SENSITIVE_HEADERS`] in a plan's JSON, in place: every `headers` object
/// at any depth (nested steps, scenarios, defaults). A value that only references secrets or
/// variables ([`is_reference_only`], `Bearer ${TOKEN}`) is kept: it holds no credential, and a
/// run resumed from its stored plan resolves it again, where a masked one would be sent as `***`.
pub fn redact_plan_json(plan: &mut Value) {
    match plan {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if key == "headers" {
                    if let Value::Object(headers) = value {
                        for (name, value) in headers.iter_mut() {
                            let keep = value.as_str().is_some_and(is_reference_only);
                            if is_sensitive_header(name) && !keep {
                                *value = Value::String(MASK.into());
                            }
                        }
                    }
                }
                redact_plan_json(value);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_plan_json),
        _ => {}
    }
}

/// Whether a plan's JSON has a credential header [`redact_plan_json`] masked: a plan read back
/// from the store that cannot be sent to agents as it was written.
pub fn has_masked_headers(plan: &Value) -> bool {
    match plan {
        Value::Object(map) => map.iter().any(|(key, value)| {
            let masked = key == "headers"
                && value.as_object().is_some_and(|h| {
                    h.iter()
                        .any(|(name, v)| is_sensitive_header(name) && v.as_str() == Some(MASK))
                });
            masked || has_masked_headers(value)
        }),
        Value::Array(items) => items.iter().any(has_masked_headers),
        _ => false,
    }
}

/// Authentication schemes that may precede a reference in a credential header.
const SCHEMES: [&str; 6] = ["bearer", "basic", "token", "digest", "negotiate", "apikey"];

/// Whether a credential header's value is made only of references (`${NAME}`), an
/// authentication scheme and parameter names (`Bearer ${TOKEN}`, `session=${SESSION}`): nothing
/// in it is a credential itself.
pub fn is_reference_only(value: &str) -> bool {
    let mut rest = String::new();
    let mut text = value;
    let mut references = 0;
    while let Some(at) = text.find("${") {
        let Some(len) = text[at..].find('}') else {
            return false;
        };
        rest.push_str(&text[..at]);
        rest.push(' ');
        text = &text[at + len + 1..];
        references += 1;
    }
    rest.push_str(text);
    references > 0
        && rest
            .split(|c: char| c.is_whitespace() || c == ';' || c == ',')
            .filter(|t| !t.is_empty())
            .all(|t| {
                SCHEMES.iter().any(|s| s.eq_ignore_ascii_case(t))
                    || t.strip_suffix('=').is_some_and(|name| {
                        !name.is_empty()
                            && name
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
                    })
            })
}

/// Masks known secret values inside text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redactor {
    /// Longest first, so a value containing another is masked whole.
    values: Vec<String>,
}

impl Redactor {
    /// A redactor for `values` (empty ones are ignored: they would match everywhere).
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let mut values: Vec<String> = values
            .into_iter()
            .filter(|v| !v.is_empty())
            .map(String::from)
            .collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Self { values }
    }

    /// Adds the literal values of credential headers (those without a `${…}`), such as a plan's
    /// steps' `headers`.
    pub fn with_headers<'a>(
        mut self,
        headers: impl IntoIterator<Item = &'a (String, String)>,
    ) -> Self {
        for (name, value) in headers {
            if is_sensitive_header(name) && !value.is_empty() && !value.contains("${") {
                self.values.push(value.clone());
            }
        }
        self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        self.values.dedup();
        self
    }

    /// `text` with every known value replaced by [`MASK`].
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), MASK);
            }
        }
        out
    }

    /// Whether there is nothing to mask.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}
