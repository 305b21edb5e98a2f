//! The script hook's grammar: the plan's `scripts: FILE` and the step `script: NAME`.
//!
//! A plan may name one file of [Rhai](https://rhai.rs) functions; a `script: NAME` step calls
//! function `NAME()` of it, on the agent, for logic YAML cannot say (a signature over a nonce the
//! target returns, a loop until a job is done). Like body files and feeders, the file is read
//! once, relative to the plan, by whoever loads the plan from disk (`herd run`, `herd validate`),
//! and its text then travels *inside* the plan (`scripts: {file, source, call_timeout}`), so agents
//! on other hosts need no copy and this crate does no I/O.
//!
//! The text is compiled here, when the plan is parsed, so a syntax error is reported by
//! `herd validate` with the file and line, and a step naming a function the file does not define
//! is refused before anything starts. Compiling needs only Rhai's parser (no packages, no
//! functions registered): what scripts may call at run time is the agent's sandbox
//! (`agent/src/script/`). A plan without `scripts` never touches Rhai.

use super::cx::{join, kind, Cx, PlanFiles};
use super::{walk, Step};
use crate::duration;
use serde_json::{json, Map, Value};
use std::time::Duration;

/// The most bytes a plan's script file may hold: it travels to agents inside the plan, in one
/// message (AWS IoT Core takes at most 128 KB), beside body files and feeder rows.
pub const MAX_SCRIPT_BYTES: usize = 32 * 1024;

/// How long one call of a script function may compute, by default (time spent waiting on its
/// HTTP requests does not count).
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(1);

/// The plan's script file, loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scripts {
    /// The path as the plan wrote it (for messages).
    pub file: String,
    /// The file's text (Rhai).
    pub source: String,
    /// How long one call may compute before it is stopped and counted as a failed check; time
    /// spent waiting on the script's HTTP requests is not counted. Default 1 s.
    pub call_timeout: Duration,
}

impl Scripts {
    /// The loaded form, as the plan carries it to agents.
    pub fn to_json(&self) -> Value {
        json!({
            "file": self.file,
            "source": self.source,
            "call_timeout": duration::format(self.call_timeout),
        })
    }
}

/// A `script: NAME` step: calls function `NAME()` of the plan's script file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptStep {
    /// The label its checks and its requests are counted under: its `name`, or `script NAME`.
    pub label: String,
    /// Whether the label was written by the user (`name:`).
    pub named: bool,
    /// The function it calls (no parameters).
    pub function: String,
}

impl ScriptStep {
    /// The step as a plan writes it.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        if self.named {
            m.insert("name".into(), Value::String(self.label.clone()));
        }
        m.insert("script".into(), Value::String(self.function.clone()));
        Value::Object(m)
    }
}

/// Compiles `source` (the text of `file`), as the agent will: a syntax error names the file,
/// line and column. Returns the names of the functions it defines without parameters.
pub fn compile(file: &str, source: &str) -> Result<Vec<String>, String> {
    let mut engine = rhai::Engine::new_raw();
    // As the agent's sandbox: `eval` is not part of the language scripts get.
    engine.disable_symbol("eval");
    let ast = engine.compile(source).map_err(|e| {
        let at = e.position();
        match (at.line(), at.position()) {
            (Some(line), Some(col)) => {
                format!("{file} line {line}, column {col}: {}", e.err_type())
            }
            (Some(line), None) => format!("{file} line {line}: {}", e.err_type()),
            _ => format!("{file}: {}", e.err_type()),
        }
    })?;
    Ok(ast
        .iter_functions()
        .filter(|f| f.params.is_empty())
        .map(|f| f.name.to_string())
        .collect())
}

impl Cx {
    /// A `script: NAME` step.
    pub(super) fn script_step(&mut self, v: &Value, path: &str) -> Option<Step> {
        let m = self.object(v, path, &["script", "name"])?;
        let p = join(path, "script");
        let function = self.string(&m["script"], &p)?;
        if !is_identifier(&function) {
            self.err(
                &p,
                format!("{function:?} is not a function name (letters, digits, `_`)"),
            );
            return None;
        }
        let name = match m.get("name") {
            Some(v) => {
                let at = join(path, "name");
                match self.string(v, &at) {
                    Some(n) if n.trim().is_empty() => {
                        self.err(&at, "must not be empty");
                        return None;
                    }
                    Some(n) if !self.step_name_free(&n, &at) => return None,
                    Some(n) => Some(n),
                    None => return None,
                }
            }
            None => None,
        };
        Some(Step::Script(ScriptStep {
            named: name.is_some(),
            label: name.unwrap_or_else(|| format!("script {function}")),
            function,
        }))
    }

    /// The plan's `scripts` (loaded: `{file, source, call_timeout}`), compiled; and every
    /// `script` step of `scenario` names a function the file defines.
    pub(super) fn scripts(
        &mut self,
        v: Option<&Value>,
        scenarios: &[(String, &[Step])],
    ) -> Option<Option<Scripts>> {
        let mut steps = Vec::new();
        for (path, scenario) in scenarios {
            walk(scenario, path, &mut |at, s| {
                if let Step::Script(s) = s {
                    steps.push((format!("{at}.script"), s.function.clone()));
                }
            });
        }
        let Some(v) = v else {
            for (at, function) in &steps {
                self.err(
                    at,
                    format!("calls {function}() but the plan has no `scripts: FILE` to define it"),
                );
            }
            return steps.is_empty().then_some(None);
        };
        let scripts = self.scripts_value(v)?;
        let functions = match compile(&scripts.file, &scripts.source) {
            Ok(f) => f,
            Err(e) => {
                self.err("scripts", e);
                return None;
            }
        };
        let mut ok = true;
        for (at, function) in &steps {
            if !functions.contains(function) {
                ok = false;
                let defined = if functions.is_empty() {
                    "none".to_string()
                } else {
                    functions.join(", ")
                };
                self.err(
                    at,
                    format!(
                        "{} defines no function {function}() without parameters (it defines: \
                         {defined})",
                        scripts.file
                    ),
                );
            }
        }
        ok.then_some(Some(scripts))
    }

    fn scripts_value(&mut self, v: &Value) -> Option<Scripts> {
        let read = self.script_read.take();
        let short;
        let m = match v {
            Value::String(p) => {
                short = Map::from_iter([("file".to_string(), Value::String(p.clone()))]);
                &short
            }
            Value::Object(_) => self.object(v, "scripts", &["file", "source", "call_timeout"])?,
            other => {
                self.err(
                    "scripts",
                    format!("must be a file path, got {}", kind(other)),
                );
                return None;
            }
        };
        let file = self
            .required(m, "scripts", "file")
            .and_then(|f| self.string(f, "scripts.file"));
        let source = match (m.get("source"), read) {
            (Some(s), _) => self.string(s, "scripts.source"),
            // Read before parsing; a failed read was reported then.
            (None, Some(read)) => read,
            (None, None) => {
                self.err(
                    "scripts",
                    "the file was not read: `herd run` and `herd validate` read script files \
                     relative to the plan's folder; a plan sent as JSON (API, queue) must carry \
                     the text as {file, source}",
                );
                None
            }
        };
        if source.as_ref().is_some_and(|s| s.len() > MAX_SCRIPT_BYTES) {
            self.err(
                "scripts.source",
                too_big(source.as_ref().map_or(0, String::len)),
            );
            return None;
        }
        let call_timeout = match m.get("call_timeout") {
            Some(t) => match self.duration(t, "scripts.call_timeout") {
                Some(d) if d.is_zero() => {
                    self.err("scripts.call_timeout", "must be > 0");
                    None
                }
                other => other,
            },
            None => Some(DEFAULT_CALL_TIMEOUT),
        };
        Some(Scripts {
            file: file?,
            source: source?,
            call_timeout: call_timeout?,
        })
    }
}

fn too_big(bytes: usize) -> String {
    format!(
        "the script file holds {bytes} bytes; it may hold at most {MAX_SCRIPT_BYTES} (the plan \
         travels to agents in one message)"
    )
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Cx {
    /// Reads the file `scripts:` names (the short form `scripts: FILE`, or `{file: FILE}`
    /// without `source`) through `files`, before the plan is parsed; a failed read is reported
    /// here, once.
    pub(super) fn read_script_file(&mut self, value: &Value, files: &dyn PlanFiles) {
        let path = match value.get("scripts") {
            Some(Value::String(p)) => p,
            Some(Value::Object(m)) if !m.contains_key("source") => match m.get("file") {
                Some(Value::String(p)) => p,
                _ => return,
            },
            _ => return,
        };
        let read = files.read(path, MAX_SCRIPT_BYTES).and_then(|bytes| {
            if bytes.len() > MAX_SCRIPT_BYTES {
                return Err(format!("is too large: {}", too_big(bytes.len())));
            }
            String::from_utf8(bytes).map_err(|_| "is not UTF-8 text".to_string())
        });
        if let Err(e) = &read {
            self.err("scripts", format!("{path}: {e}"));
        }
        self.script_read = Some(read.ok());
    }
}
