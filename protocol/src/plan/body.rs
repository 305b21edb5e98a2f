//! Request bodies: text (`body:`), JSON (`json:`), the bytes of a file (`body_file:`), or a form
//! with files (`multipart:`, in `multipart`).
//!
//! A file is read once, by whoever loads the plan from disk (`herd run` reads it relative to the
//! plan's folder, through [`PlanFiles`](super::PlanFiles)), so agents on other hosts need no copy
//! of it and this crate does no I/O. In the plan as a value (the HTTP API, a queue, `to_json`) a
//! file is `{path, content_base64}`: such a plan must carry the content itself, and a bare path
//! there is refused, since the coordinator must not read files on a caller's behalf.
//!
//! A file may hold up to [`MAX_BODY_FILE_BYTES`] (16 MiB), all of a plan's files together up to
//! [`MAX_BODY_FILES_BYTES`] (64 MiB, as feeders). That is far more than one MQTT message carries,
//! so when a plan's files are larger than [`crate::body_data::INLINE_LIMIT`] the coordinator takes
//! their contents out of the start command and sends them in chunks before it
//! ([`crate::body_data`]): each file then reads `{path, chunked: {offset, bytes}}`, a slice of
//! the one buffer the agent reassembles, and only an agent's parse
//! ([`from_value_with_body_data`](super::from_value_with_body_data)) accepts that form. The
//! content is a [`Bytes`]: the agent holds each file once, and every request and every VU sends
//! the same buffer.

use super::cx::{join, kind, Cx, FieldError, PlanFiles};
use super::FormPart;
use base64::Engine as _;
use bytes::Bytes;
use serde_json::{json, Map, Value};

/// The most bytes one body file may hold (`body_file`, or a `multipart` file).
pub const MAX_BODY_FILE_BYTES: usize = 16 << 20;

/// The most bytes all of a plan's body files may hold together (a file named twice counts
/// twice): what an agent holds in memory for them, and what a plan sent to the API may carry.
pub const MAX_BODY_FILES_BYTES: usize = 64 << 20;

/// A request body read from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyFile {
    /// The path as the plan wrote it (for messages; the content is what is sent).
    pub path: String,
    /// The file's bytes, shared by every request that sends them.
    pub content: Bytes,
}

impl BodyFile {
    /// The loaded form, as the plan carries it.
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
            Value::Object(_) => self.object(v, path, &["path", "content_base64", "chunked"])?,
            other => {
                self.err(path, format!("must be a file path, got {}", kind(other)));
                return None;
            }
        };
        let file_path = self
            .required(m, path, "path")
            .and_then(|p| self.string(p, &join(path, "path")));
        let content = match m.get("chunked") {
            Some(c) if !m.contains_key("content_base64") => self.chunked(c, &join(path, "chunked")),
            _ => self
                .required(m, path, "content_base64")
                .and_then(|c| self.string(c, &join(path, "content_base64")))
                .and_then(|c| {
                    match base64::engine::general_purpose::STANDARD.decode(c.as_bytes()) {
                        Ok(bytes) => Some(Bytes::from(bytes)),
                        Err(e) => {
                            self.err(
                                &join(path, "content_base64"),
                                format!("is not valid base64: {e}"),
                            );
                            None
                        }
                    }
                }),
        }?;
        if content.len() > MAX_BODY_FILE_BYTES {
            self.err(path, too_big(content.len()));
            return None;
        }
        self.body_bytes += content.len();
        if self.body_bytes > MAX_BODY_FILES_BYTES {
            self.err(
                path,
                format!(
                    "the plan's body files hold {} bytes with this one, more than the limit of \
                     {MAX_BODY_FILES_BYTES} bytes (64 MiB) for all of them together",
                    self.body_bytes
                ),
            );
            return None;
        }
        Some(BodyFile {
            path: file_path?,
            content,
        })
    }

    /// `{offset, bytes}`: a slice of the body data the start command's chunks carried; only an
    /// agent has it.
    fn chunked(&mut self, v: &Value, path: &str) -> Option<Bytes> {
        let m = self.object(v, path, &["offset", "bytes"])?;
        let offset = self
            .required(m, path, "offset")
            .and_then(|o| self.count(o, &join(path, "offset")));
        let bytes = self
            .required(m, path, "bytes")
            .and_then(|b| self.count(b, &join(path, "bytes")));
        let (offset, bytes) = (offset?, bytes?);
        let Some(data) = &self.body_data else {
            self.err(
                path,
                "only a start command's plan carries body files beside it, in chunks; a plan \
                 sent as JSON must carry the content as {path, content_base64}",
            );
            return None;
        };
        match offset.checked_add(bytes) {
            Some(end) if end <= data.len() => Some(data.slice(offset..end)),
            _ => {
                let have = data.len();
                self.err(
                    path,
                    format!("bytes {offset}..+{bytes} lie beyond the {have} bytes of body data"),
                );
                None
            }
        }
    }

    /// A whole number that counts bytes.
    fn count(&mut self, v: &Value, path: &str) -> Option<usize> {
        match v.as_u64().and_then(|n| usize::try_from(n).ok()) {
            Some(n) => Some(n),
            None => {
                self.err(path, format!("must be a whole number, got {}", kind(v)));
                None
            }
        }
    }
}

fn too_big(bytes: usize) -> String {
    format!(
        "the file holds {bytes} bytes, more than the limit of {MAX_BODY_FILE_BYTES} bytes (16 MiB) \
         per body file"
    )
}

/// Replaces every `body_file: PATH` and multipart `file: PATH` by its loaded form (read through
/// `files`), before the plan is validated; a file that cannot be read is returned as an error at
/// its field, and stands in empty so the field is not reported twice.
pub(super) fn load_body_files(value: &mut Value, files: &dyn PlanFiles) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for_each_file(value, &mut |here, field| {
        load_file(field, &here, files, &mut errors);
    });
    errors
}

/// Visits every body file field of a plan's value tree (`body_file`, and multipart `file`), in
/// every scenario and every step that holds steps, with its field path
/// (`scenario[0].multipart[1].file`).
pub(crate) fn for_each_file(value: &mut Value, f: &mut dyn FnMut(String, &mut Value)) {
    if let Some(steps) = value.get_mut("scenario") {
        files_in(steps, "scenario", f);
    }
    if let Some(Value::Object(scenarios)) = value.get_mut("scenarios") {
        for (name, scenario) in scenarios.iter_mut() {
            if let Some(steps) = scenario.get_mut("steps") {
                files_in(steps, &format!("scenarios.{name}.steps"), f);
            }
        }
    }
}

fn files_in(steps: &mut Value, at: &str, f: &mut dyn FnMut(String, &mut Value)) {
    let Value::Array(steps) = steps else {
        return;
    };
    for (i, step) in steps.iter_mut().enumerate() {
        let here = format!("{at}[{i}]");
        let Some(m) = step.as_object_mut() else {
            continue;
        };
        for key in ["steps", "then", "else", "parallel"] {
            if let Some(inner) = m.get_mut(key) {
                files_in(inner, &format!("{here}.{key}"), f);
            }
        }
        if let Some(Value::Array(branches)) = m.get_mut("choose") {
            for (b, branch) in branches.iter_mut().enumerate() {
                if let Some(inner) = branch.get_mut("steps") {
                    files_in(inner, &format!("{here}.choose[{b}].steps"), f);
                }
            }
        }
        if let Some(file) = m.get_mut("body_file") {
            f(format!("{here}.body_file"), file);
        }
        if let Some(Value::Array(parts)) = m.get_mut("multipart") {
            for (p, part) in parts.iter_mut().enumerate() {
                if let Some(file) = part.get_mut("file") {
                    f(format!("{here}.multipart[{p}].file"), file);
                }
            }
        }
    }
}

/// Replaces `field`, when it is a path, by the file's loaded form; an error (and an empty
/// stand-in) when the file cannot be read.
fn load_file(field: &mut Value, here: &str, files: &dyn PlanFiles, errors: &mut Vec<FieldError>) {
    let Value::String(path) = field.clone() else {
        return;
    };
    let read = files.read(&path, MAX_BODY_FILE_BYTES).and_then(|content| {
        if content.len() > MAX_BODY_FILE_BYTES {
            Err(too_big(content.len()))
        } else {
            Ok(content)
        }
    });
    let content = match read {
        Ok(content) => Bytes::from(content),
        Err(e) => {
            // An empty stand-in, so the field is not reported a second time as missing or
            // unread; the plan is refused for the error anyway.
            errors.push(FieldError {
                path: here.to_string(),
                message: format!("{path}: {e}"),
            });
            Bytes::new()
        }
    };
    *field = BodyFile { path, content }.to_json();
}
