//! Templates compiled against the variable table, and requests rendered from them.
//!
//! A template becomes literal parts and variable *indices*, so rendering is a walk that copies
//! strings into one buffer: no name lookups per request. A step whose path, headers and body
//! are all literal is never rendered at all (it keeps its [`PreparedRequest`] built at start).
//! Template functions (`${__random(A,B)}`, `${__uuid}`, `${__time}`) are computed at each render
//! from a per-thread generator (an agent runs its VUs on one thread), so a step that holds one
//! is rendered per request like a step with variables.

use super::names::Names;
use crate::http::PreparedRequest;
use herd_protocol::plan::{FormPart, FormValue, Func, Part, RequestStep, Template};
use std::cell::Cell;
use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Var(usize),
    Func(Func),
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
                Part::Func(f) => Ok(Piece::Func(*f)),
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
                Piece::Var(_) | Piece::Func(_) => return None,
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
                Piece::Func(f) => call(*f, &mut out),
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
                // Digits, hex and `-` only: nothing to encode.
                Piece::Func(f) => call(*f, &mut out),
            }
        }
        out
    }
}

thread_local! {
    /// The template functions' generator: one per thread, seeded from the clock and the
    /// thread's own address so two agents on one host draw different values.
    static RNG: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let here = &nanos as *const u64 as u64;
    (nanos ^ here.rotate_left(32)) | 1
}

/// A number in `0..n` (`n` > 0) from the same generator (a `random` feeder's draw).
pub(super) fn random_below(n: u64) -> u64 {
    next_u64() % n.max(1)
}

/// The next 64 random bits (xorshift64*).
fn next_u64() -> u64 {
    RNG.with(|rng| {
        let mut x = rng.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        rng.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

/// Appends the value of `f` to `out`.
fn call(f: Func, out: &mut String) {
    match f {
        Func::Random { min, max } => {
            // The span of i64::MIN..=i64::MAX is 2^64: every u64 is then in range.
            let span = max.wrapping_sub(min) as u64;
            let offset = match span.checked_add(1) {
                Some(n) => next_u64() % n,
                None => next_u64(),
            };
            let _ = write!(out, "{}", min.wrapping_add(offset as i64));
        }
        Func::Uuid => {
            let (a, b) = (next_u64(), next_u64());
            let _ = write!(
                out,
                "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
                a >> 32,
                (a >> 16) & 0xffff,
                a & 0xfff,
                0x8000 | ((b >> 48) & 0x3fff),
                b & 0xffff_ffff_ffff
            );
        }
        Func::Time => {
            let ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            let _ = write!(out, "{ms}");
        }
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
    /// The templates of the multipart text fields, by part (`None` for files).
    fields: Vec<Option<Tpl>>,
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
        let fields = step
            .multipart
            .iter()
            .map(|p| match &p.value {
                FormValue::Text(t) => Tpl::compile(t, names).map(Some),
                FormValue::File { .. } => Ok(None),
            })
            .collect::<Result<Vec<_>, String>>()?;
        let literal = path.as_literal().is_some()
            && headers.iter().all(|(_, t)| t.as_literal().is_some())
            && body.as_ref().is_none_or(|b| b.as_literal().is_some())
            && fields.iter().flatten().all(|t| t.as_literal().is_some());
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
            fields,
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
            timeout: self.step.timeout,
            multipart: self
                .step
                .multipart
                .iter()
                .zip(&self.fields)
                .map(|(part, field)| match field {
                    Some(t) => FormPart {
                        name: part.name.clone(),
                        value: FormValue::Text(t.render(vars)),
                    },
                    None => part.clone(),
                })
                .collect(),
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
