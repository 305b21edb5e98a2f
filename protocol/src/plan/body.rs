//! Request bodies: text (`body:`), JSON (`json:`), the bytes of a file (`body_file:`), or a form
//! with files (`multipart:`, in `multipart`).
//!
//! A file is read once, by whoever loads the plan from disk (`herd run` reads it relative to the
//! plan's folder, through [`PlanFiles`](super::PlanFiles)), and its bytes then travel *inside* the
//! plan (`body_file: {path, content_base64}`), so agents on other hosts need no copy of it and
//! this crate does no I/O. The plan reaches agents in one MQTT message (AWS IoT Core takes at most
//! 128 KB), hence [`MAX_BODY_FILE_BYTES`] for all of a plan's files together. A plan handed over
//! as a value (the HTTP API, a queue) must carry the content itself: a bare path there is refused,
//! since the coordinator must not read files on a caller's behalf.

use super::cx::{join, kind, Cx, FieldError, PlanFiles};
use super::{FormPart, FormValue, Step};
use base64::Engine as _;
use serde_json::{json, Map, Value};

/// The most bytes all of a plan's body files may hold together.
pub const MAX_BODY_FILE_BYTES: usize = 64 * 1024;

/// A request body read from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyFile {
    /// The path as the plan wrote it (for messages; the content is what is sent).
    pub path: String,
    /// The file's bytes.
    pub content: Vec<u8>,
}

impl BodyFile {
    /// The loaded form, as the plan carries it to agents.
    pub fn to_json(&self) -> Value {
        json!({
            "path": self.path,
            "content_base64": base64::engine::general_purpose::STANDARD.encode(&self.content),
        })
    }
}

/// A step's body, as parsed.
pub(super) struct StepBody {
    pub text: Option<String>,
    pub file: Option<BodyFile>,
    /// The text came from `json:`: the step gets `content-type: application/json` unless it
    /// sets a content type itself.
    pub json: bool,
    /// The parts of a `multipart:` body (empty for none).
    pub multipart: Vec<FormPart>,
}

impl Cx {
    /// At most one of `body`, `json`, `body_file`.
    pub(super) fn step_body(&mut self, m: &Map<String, Value>, path: &str) -> Option<StepBody> {
        let given: Vec<&str> = ["body", "json", "body_file", "multipart"]
            .into_iter()
            .filter(|k| m.contains_key(*k))
            .collect();
        if given.len() > 1 {
            self.err(
                path,
                format!(
                    "has {}: a request has at most one body",
                    given.join(" and ")
                ),
            );
            return None;
        }
        let mut body = StepBody {
            text: None,
            file: None,
            json: false,
            multipart: Vec::new(),
        };
        if let Some(v) = m.get("body") {
            body.text = Some(self.string(v, &join(path, "body"))?);
        } else if let Some(v) = m.get("json") {
            body.text = Some(v.to_string());
            body.json = true;
        } else if let Some(v) = m.get("body_file") {
            body.file = Some(self.body_file(v, &join(path, "body_file"))?);
        } else if let Some(v) = m.get("multipart") {
            body.multipart = self.multipart(v, &join(path, "multipart"))?;
        }
        Some(body)
    }

    pub(super) fn body_file(&mut self, v: &Value, path: &str) -> Option<BodyFile> {
        let m = match v {
            Value::String(p) => {
                self.err(
                    path,
                    format!(
                        "the file {p:?} was not read: `herd run` and `herd validate` read body files \
                         relative to the plan's folder; a plan sent as JSON (API, queue) must carry \
                         the content as {{path, content_base64}}"
                    ),
                );
                return None;
            }
            Value::Object(_) => self.object(v, path, &["path", "content_base64"])?,
            other => {
                self.err(path, format!("must be a file path, got {}", kind(other)));
                return None;
            }
        };
        let file_path = self
            .required(m, path, "path")
            .and_then(|p| self.string(p, &join(path, "path")));
        let content = self
            .required(m, path, "content_base64")
            .and_then(|c| self.string(c, &join(path, "content_base64")))
            .and_then(
                |c| match base64::engine::general_purpose::STANDARD.decode(c.as_bytes()) {
                    Ok(bytes) => Some(bytes),
                    Err(e) => {
                        self.err(
                            &join(path, "content_base64"),
                            format!("is not valid base64: {e}"),
                        );
                        None
                    }
                },
            );
        Some(BodyFile {
            path: file_path?,
            content: content?,
        })
    }

    /// All body files of a scenario together stay within [`MAX_BODY_FILE_BYTES`].
    pub(super) fn body_files_fit(&mut self, steps: &[Step]) -> bool {
        let mut total = 0usize;
        super::walk(steps, "", &mut |_, s| {
            if let Step::Request(r) = s {
                total += r.body_file.as_ref().map_or(0, |f| f.content.len());
                total += r
                    .multipart
                    .iter()
                    .map(|p| match &p.value {
                        FormValue::File { file, .. } => file.content.len(),
                        FormValue::Text(_) => 0,
                    })
                    .sum::<usize>();
            }
        });
        if total > MAX_BODY_FILE_BYTES {
            self.err("scenario", too_big(total));
            return false;
        }
        true
    }
}

fn too_big(bytes: usize) -> String {
    format!(
        "body files hold {bytes} bytes; they may hold at most {MAX_BODY_FILE_BYTES} bytes in all \
         (the plan travels to agents in one message)"
    )
}

/// Replaces every `body_file: PATH` and multipart `file: PATH` by its loaded form (read through
/// `files`), before the plan is validated; a file that cannot be read is returned as an error at
/// its field, and stands in empty so the field is not reported twice.
pub(super) fn load_body_files(value: &mut Value, files: &dyn PlanFiles) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Some(steps) = value.get_mut("scenario") {
        load_in(steps, "scenario", files, &mut errors);
    }
    if let Some(Value::Object(scenarios)) = value.get_mut("scenarios") {
        for (name, scenario) in scenarios.iter_mut() {
            if let Some(steps) = scenario.get_mut("steps") {
                load_in(
                    steps,
                    &format!("scenarios.{name}.steps"),
                    files,
                    &mut errors,
                );
            }
        }
    }
    errors
}

fn load_in(steps: &mut Value, at: &str, files: &dyn PlanFiles, errors: &mut Vec<FieldError>) {
    let Value::Array(steps) = steps else {
        return;
    };
    for (i, step) in steps.iter_mut().enumerate() {
        let here = format!("{at}[{i}]");
        if let Some(m) = step.as_object_mut() {
            for key in ["steps", "then", "else", "parallel"] {
                if let Some(inner) = m.get_mut(key) {
                    load_in(inner, &format!("{here}.{key}"), files, errors);
                }
            }
            if let Some(Value::Array(branches)) = m.get_mut("choose") {
                for (b, branch) in branches.iter_mut().enumerate() {
                    if let Some(inner) = branch.get_mut("steps") {
                        load_in(inner, &format!("{here}.choose[{b}].steps"), files, errors);
                    }
                }
            }
        }
        if let Some(m) = step.as_object_mut() {
            load_file(m, "body_file", &here, files, errors);
        }
        if let Some(Value::Array(parts)) = step.get_mut("multipart") {
            for (p, part) in parts.iter_mut().enumerate() {
                if let Some(m) = part.as_object_mut() {
                    load_file(m, "file", &format!("{here}.multipart[{p}]"), files, errors);
                }
            }
        }
    }
}

/// Replaces `m[key]`, when it is a path, by the file's loaded form; an error (and an empty
/// stand-in) when the file cannot be read.
fn load_file(
    m: &mut Map<String, Value>,
    key: &str,
    here: &str,
    files: &dyn PlanFiles,
    errors: &mut Vec<FieldError>,
) {
    let Some(Value::String(path)) = m.get(key).cloned() else {
        return;
    };
    let read = files.read(&path, MAX_BODY_FILE_BYTES).and_then(|content| {
        if content.len() > MAX_BODY_FILE_BYTES {
            Err(format!("is too large: {}", too_big(content.len())))
        } else {
            Ok(content)
        }
    });
    match read {
        Ok(content) => {
            m.insert(key.into(), BodyFile { path, content }.to_json());
        }
        Err(e) => {
            // An empty stand-in, so the field is not reported a second time as missing or
            // unread; the plan is refused for the error anyway.
            let content = Vec::new();
            m.insert(
                key.into(),
                BodyFile {
                    path: path.clone(),
                    content,
                }
                .to_json(),
            );
            errors.push(FieldError {
                path: format!("{here}.{key}"),
                message: format!("{path}: {e}"),
            });
        }
    }
}
