//! `multipart: [parts]`: a `multipart/form-data` request body (RFC 7578), as an HTML form with
//! fields and file uploads sends it — `{name, value}` for a text field (a [`Template`]),
//! `{name, file, filename?, content_type?}` for a file.
//!
//! Files are read like `body_file` (by whoever loads the plan, relative to its folder) and travel
//! as the plan's other body files do (`{path, content_base64}`, or in chunks beside a large
//! plan); each may hold [`MAX_BODY_FILE_BYTES`], and they count with the plan's body files. The
//! agent chooses the boundary and writes the body and its
//! `content-type: multipart/form-data; boundary=…` header, so the step may not set a content type.
//!
//! [`Template`]: super::Template
//! [`MAX_BODY_FILE_BYTES`]: super::MAX_BODY_FILE_BYTES

use super::cx::{join, kind, Cx};
use super::BodyFile;
use serde_json::{json, Map, Value};

/// One part of a multipart body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormPart {
    /// The form field's name.
    pub name: String,
    /// What it holds.
    pub value: FormValue,
}

/// What a part holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormValue {
    /// A text field (a [`Template`](super::Template)).
    Text(String),
    /// A file.
    File {
        /// Its bytes.
        file: BodyFile,
        /// The name the server is told (default: the path's last segment).
        filename: String,
        /// Its media type (default `application/octet-stream`).
        content_type: String,
    },
}

impl FormPart {
    /// The part as a plan writes it (a file in its loaded form).
    pub fn to_json(&self) -> Value {
        match &self.value {
            FormValue::Text(t) => json!({"name": self.name, "value": t}),
            FormValue::File {
                file,
                filename,
                content_type,
            } => json!({
                "name": self.name,
                "file": file.to_json(),
                "filename": filename,
                "content_type": content_type,
            }),
        }
    }
}

const PART_KEYS: &[&str] = &["name", "value", "file", "filename", "content_type"];

impl Cx {
    /// `multipart: [{name, value} | {name, file, filename?, content_type?}, …]`.
    pub(super) fn multipart(&mut self, v: &Value, path: &str) -> Option<Vec<FormPart>> {
        let Value::Array(items) = v else {
            self.err(
                path,
                format!(
                    "must be a list of parts like {{name: user, value: alice}} or {{name: doc, \
                     file: doc.pdf}}, got {}",
                    kind(v)
                ),
            );
            return None;
        };
        if items.is_empty() {
            self.err(path, "must have at least one part");
            return None;
        }
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match self.form_part(item, &format!("{path}[{i}]")) {
                Some(p) => out.push(p),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn form_part(&mut self, v: &Value, path: &str) -> Option<FormPart> {
        let m: &Map<String, Value> = self.object(v, path, PART_KEYS)?;
        let name = self
            .required(m, path, "name")
            .and_then(|n| self.string(n, &join(path, "name")));
        let name = match name {
            Some(n) if n.is_empty() => {
                self.err(&join(path, "name"), "must not be empty");
                None
            }
            other => other,
        };
        let value = match (m.get("value"), m.get("file")) {
            (Some(_), Some(_)) => {
                self.err(path, "has value and file: a part holds one of them");
                None
            }
            (None, None) => {
                self.err(path, "needs value: TEXT or file: PATH");
                None
            }
            (Some(v), None) => {
                for key in ["filename", "content_type"] {
                    if m.contains_key(key) {
                        self.err(&join(path, key), "belongs to a file part");
                    }
                }
                match v {
                    Value::String(s) => Some(FormValue::Text(s.clone())),
                    Value::Number(n) => Some(FormValue::Text(n.to_string())),
                    Value::Bool(b) => Some(FormValue::Text(b.to_string())),
                    other => {
                        self.err(
                            &join(path, "value"),
                            format!("must be a string, number or boolean, got {}", kind(other)),
                        );
                        None
                    }
                }
            }
            (None, Some(f)) => {
                let file = self.body_file(f, &join(path, "file"));
                let text = |cx: &mut Cx, key: &str| {
                    m.get(key).and_then(|v| {
                        let p = join(path, key);
                        let s = cx.string(v, &p)?;
                        if s.is_empty() || s.bytes().any(|b| b == b'\r' || b == b'\n') {
                            cx.err(&p, "must be one line of text");
                            return None;
                        }
                        Some(s)
                    })
                };
                let filename = text(self, "filename");
                let content_type = text(self, "content_type");
                let bad = ["filename", "content_type"]
                    .iter()
                    .zip([&filename, &content_type])
                    .any(|(k, got)| m.contains_key(*k) && got.is_none());
                let file = file?;
                if bad {
                    return None;
                }
                let filename = filename.unwrap_or_else(|| {
                    file.path
                        .rsplit(['/', '\\'])
                        .next()
                        .unwrap_or(&file.path)
                        .to_string()
                });
                Some(FormValue::File {
                    file,
                    filename,
                    content_type: content_type
                        .unwrap_or_else(|| "application/octet-stream".to_string()),
                })
            }
        };
        Some(FormPart {
            name: name?,
            value: value?,
        })
    }
}
