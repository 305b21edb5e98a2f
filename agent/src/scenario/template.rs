//! Templates compiled against the variable table, and requests rendered from them.
//!
//! A template becomes literal parts and variable *indices*, so rendering is a walk that copies
//! strings into one buffer: no name lookups per request. A step whose path, headers and body
//! are all literal is never rendered at all (it keeps its [`PreparedRequest`] built at start).

use super::names::Names;
use crate::http::PreparedRequest;
use herd_protocol::plan::{Part, RequestStep, Template};
use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Var(usize),
}

/// A compiled template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tpl {
    pieces: Vec<Piece>,
}

impl Tpl {
    /// Compiles `text`; every variable must be in `names` (the plan was validated, so a miss
    /// means the plan and this agent disagree).
    pub(crate) fn compile(text: &str, names: &Names) -> Result<Self, String> {
        let template = Template::parse(text)?;
        let pieces = template
            .parts()
            .iter()
            .map(|part| match part {
                Part::Literal(s) => Ok(Piece::Literal(s.clone())),
                Part::Var(v) => names
                    .get(v)
                    .map(Piece::Var)
                    .ok_or_else(|| format!("unknown variable ${{{v}}}")),
            })
            .collect::<Result<_, String>>()?;
        Ok(Self { pieces })
    }

    /// The text, when the template has no variable.
    pub(crate) fn as_literal(&self) -> Option<String> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(s) => out.push_str(s),
                Piece::Var(_) => return None,
            }
        }
        Some(out)
    }

    /// Renders with `vars` (indexed as the table the template was compiled against).
    pub(crate) fn render(&self, vars: &[String]) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(s) => out.push_str(s),
                Piece::Var(i) => out.push_str(vars.get(*i).map_or("", String::as_str)),
            }
        }
        out
    }

    /// Renders a URL path and query: variable values are inserted as they are, except bytes a
    /// URL cannot carry (space, quotes, `#`, non-ASCII, …), which are percent-encoded. `/`, `?`,
    /// `&`, `=` and `%` pass, so a value may hold a path or a ready-encoded query.
    pub(crate) fn render_url(&self, vars: &[String]) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(s) => out.push_str(s),
                Piece::Var(i) => {
                    for b in vars.get(*i).map_or("", String::as_str).bytes() {
                        if b.is_ascii_alphanumeric() || b"-._~:/?[]@!$&'()*+,;=%".contains(&b) {
                            out.push(char::from(b));
                        } else {
                            let _ = write!(out, "%{b:02X}");
                        }
                    }
                }
            }
        }
        out
    }
}

/// A request step with variables: rendered into a [`PreparedRequest`] for every send.
#[derive(Debug)]
pub(crate) struct RequestTemplate {
    target: String,
    step: RequestStep,
    path: Tpl,
    headers: Vec<(String, Tpl)>,
    body: Option<Tpl>,
}

impl RequestTemplate {
    /// Compiles `step`'s path, header values and body; `Ok(None)` when none has a variable.
    pub(crate) fn compile(
        target: &str,
        step: &RequestStep,
        names: &Names,
    ) -> Result<Option<Self>, String> {
        let path = Tpl::compile(&step.path, names)?;
        let headers = step
            .headers
            .iter()
            .map(|(k, v)| Ok((k.clone(), Tpl::compile(v, names)?)))
            .collect::<Result<Vec<_>, String>>()?;
        let body = step
            .body
            .as_deref()
            .map(|b| Tpl::compile(b, names))
            .transpose()?;
        let literal = path.as_literal().is_some()
            && headers.iter().all(|(_, t)| t.as_literal().is_some())
            && body.as_ref().is_none_or(|b| b.as_literal().is_some());
        if literal {
            return Ok(None);
        }
        Ok(Some(Self {
            target: target.to_string(),
            step: RequestStep {
                checks: Vec::new(),
                extract: Vec::new(),
                ..step.clone()
            },
            path,
            headers,
            body,
        }))
    }

    /// The request with this VU's `vars`; the error says why it cannot be sent (a value that is
    /// not allowed in a header, a URL that does not parse).
    pub(crate) fn render(&self, vars: &[String]) -> Result<PreparedRequest, String> {
        let step = RequestStep {
            label: String::new(),
            named: false,
            method: self.step.method,
            path: self.path.render_url(vars),
            headers: self
                .headers
                .iter()
                .map(|(k, t)| (k.clone(), t.render(vars)))
                .collect(),
            body: self.body.as_ref().map(|b| b.render(vars)),
            body_file: self.step.body_file.clone(),
            checks: Vec::new(),
            extract: Vec::new(),
        };
        // The reason is logged and may reach the coordinator: no variable's value in it.
        PreparedRequest::new(&self.target, &step).map_err(|e| {
            let reason = match e {
                crate::AgentError::Request { reason, .. } => reason,
                other => other.to_string(),
            };
            super::masking::mask_values(&reason, vars)
        })
    }

    /// The step's label, for messages.
    pub(crate) fn label(&self) -> &str {
        &self.step.label
    }
}
