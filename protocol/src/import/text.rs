//! Text helpers of the importers: decoding files in other encodings, positions for messages,
//! URLs, and the translation of JMeter expressions (`${var}`, `${__P(name,default)}`,
//! `${__Random(1,10)}`…) into herd templates.
//!
//! Why one translator: Taurus writes JMeter's expression syntax too (it generates JMX), so both
//! importers share it. `${__Random(a,b)}`, `${__UUID()}` and `${__time()}` become herd's own
//! template functions; the functions herd lacks are approximated and reported.

use super::draft::DraftFeeder;
use crate::plan::Func;
use std::collections::BTreeMap;

/// Decodes a file: a UTF-8 (or UTF-16) byte-order mark is honoured; an XML declaration's
/// `encoding` is used; bytes that are not UTF-8 as declared are read as windows-1252. The
/// second value is a warning when the file was not what it declared.
pub(crate) fn decode_text(bytes: &[u8]) -> (String, Option<String>) {
    if let Some((enc, bom_len)) = encoding_rs::Encoding::for_bom(bytes) {
        let (text, _, errors) = enc.decode(&bytes[bom_len..]);
        let warn = errors.then(|| format!("the file has bytes that are not {}", enc.name()));
        return (text.into_owned(), warn);
    }
    let declared = declared_encoding(bytes);
    if let Some(label) = &declared {
        if let Some(enc) = encoding_rs::Encoding::for_label(label.as_bytes()) {
            if enc != encoding_rs::UTF_8 {
                let (text, _, errors) = enc.decode(bytes);
                let warn = errors
                    .then(|| format!("the file has bytes that are not {label} as it declares"));
                return (text.into_owned(), warn);
            }
        }
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_string(), None),
        Err(_) => {
            let (text, _, _) = encoding_rs::WINDOWS_1252.decode(bytes);
            let was = declared.unwrap_or_else(|| "UTF-8".into());
            (
                text.into_owned(),
                Some(format!(
                    "the file is not {was} as it declares: read as windows-1252 (check accented \
                     characters in the plan)"
                )),
            )
        }
    }
}

/// The `encoding="…"` of an XML declaration at the start of the bytes.
fn declared_encoding(bytes: &[u8]) -> Option<String> {
    let head = &bytes[..bytes.len().min(200)];
    let head = String::from_utf8_lossy(head);
    if !head.trim_start().starts_with("<?xml") {
        return None;
    }
    let decl = head.split("?>").next()?;
    let at = decl.find("encoding")?;
    let rest = decl[at + "encoding".len()..]
        .trim_start()
        .strip_prefix('=')?;
    let rest = rest.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = rest[1..].split(quote).next()?;
    Some(value.to_string())
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Escapes literal text for a herd template: `${` becomes `$${`.
pub(crate) fn literal(text: &str) -> String {
    text.replace("${", "$${")
}

/// A variable name herd accepts for a source's name (`user-id` → `user_id`); `__` names are
/// reserved for built-ins, so a leading `__` gets a `v` before it.
pub(crate) fn var_name(name: &str) -> String {
    let mut out: String = name
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) || out.starts_with("__") {
        out.insert(0, 'v');
    }
    out
}

/// The parts of an absolute URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Url {
    /// `http` or `https` (lower case).
    pub scheme: String,
    /// Host (and `:port` when not the scheme's default).
    pub authority: String,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Url {
    /// `scheme://authority`.
    pub fn origin(&self) -> String {
        format!("{}://{}", self.scheme, self.authority)
    }
}

/// Splits `http(s)://host[:port]/path?query#fragment` (the fragment is dropped).
pub(crate) fn split_url(url: &str) -> Option<Url> {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = rest[..end].rsplit('@').next().unwrap_or_default();
    if authority.is_empty() {
        return None;
    }
    let mut path = rest[end..]
        .split('#')
        .next()
        .unwrap_or_default()
        .to_string();
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    Some(Url {
        authority: normalize_authority(&scheme, authority),
        scheme,
        path,
    })
}

/// Host and port as an origin writes them: the default port of the scheme is left out.
pub(crate) fn normalize_authority(scheme: &str, authority: &str) -> String {
    let lower = authority.to_ascii_lowercase();
    let default = if scheme == "https" { "443" } else { "80" };
    match lower.rsplit_once(':') {
        Some((host, port)) if port == default && (!host.contains(':') || host.ends_with(']')) => {
            host.to_string()
        }
        _ => lower,
    }
}

/// Percent-encodes a query or form component (`application/x-www-form-urlencoded`: space as
/// `+`), leaving `${…}` references as they are.
pub(crate) fn form_encode(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        encode_into(&rest[..i], &mut out);
        let after = &rest[i..];
        let end = after.find('}').map_or(after.len(), |e| e + 1);
        out.push_str(&after[..end]);
        rest = &after[end..];
    }
    encode_into(rest, &mut out);
    out
}

fn encode_into(text: &str, out: &mut String) {
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
}

/// Translates JMeter expressions into herd templates, collecting what had to be approximated.
pub(crate) struct Expr<'a> {
    /// `--set` values, for `${__P(name)}`.
    props: &'a BTreeMap<String, String>,
    /// Values known at import time (user-defined variables), for hosts and ports, which must be
    /// static in a plan.
    pub statics: BTreeMap<String, String>,
    /// Feeders made for functions herd lacks (`__RandomString`).
    pub generated: Vec<DraftFeeder>,
    /// Variables that stand for functions herd cannot evaluate (empty, reported).
    pub fixed: Vec<(String, String)>,
    /// What the last translations approximated (drained by [`Expr::take_notes`]).
    notes: Vec<String>,
    seed: u64,
}

impl<'a> Expr<'a> {
    pub fn new(props: &'a BTreeMap<String, String>) -> Self {
        Self {
            props,
            statics: BTreeMap::new(),
            generated: Vec::new(),
            fixed: Vec::new(),
            notes: Vec::new(),
            seed: 0x9E37_79B9_7F4A_7C15,
        }
    }

    /// The notes of the translations since the last call.
    pub fn take_notes(&mut self) -> Vec<String> {
        let mut notes = std::mem::take(&mut self.notes);
        notes.dedup();
        notes
    }

    /// A herd template for JMeter text.
    pub fn template(&mut self, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(i) = rest.find("${") {
            out.push_str(&literal(&rest[..i]));
            let inner_start = &rest[i + 2..];
            let Some(close) = find_close(inner_start) else {
                out.push_str(&literal(&rest[i..]));
                return out;
            };
            let inner = &inner_start[..close];
            out.push_str(&self.reference(inner));
            rest = &inner_start[close + 1..];
        }
        out.push_str(&literal(rest));
        out
    }

    /// The value of JMeter text known at import time, or `None` when it depends on the run.
    pub fn eval_static(&mut self, text: &str) -> Option<String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(i) = rest.find("${") {
            out.push_str(&rest[..i]);
            let inner_start = &rest[i + 2..];
            let close = find_close(inner_start)?;
            let inner = &inner_start[..close];
            let (name, args) = split_function(inner);
            match name.as_str() {
                "__P" | "__property" => out.push_str(&self.property(&args)),
                _ if !inner.contains('(') => out.push_str(self.statics.get(inner.trim())?),
                _ => return None,
            }
            rest = &inner_start[close + 1..];
        }
        out.push_str(rest);
        Some(out)
    }

    fn property(&mut self, args: &[String]) -> String {
        let name = args
            .first()
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        if let Some(v) = self.props.get(&name) {
            return v.clone();
        }
        match args.get(1) {
            Some(default) => self.eval_static(default).unwrap_or_default(),
            None => {
                self.notes.push(format!(
                    "property {name} is not set (give --set {name}=VALUE): left empty"
                ));
                String::new()
            }
        }
    }

    /// One `${…}` reference: a variable, or a function.
    fn reference(&mut self, inner: &str) -> String {
        let trimmed = inner.trim();
        if !trimmed.starts_with("__") || !trimmed.contains('(') && !is_bare_function(trimmed) {
            return self.variable(trimmed);
        }
        let (name, args) = split_function(trimmed);
        match name.as_str() {
            "__P" | "__property" => literal(&self.property(&args)),
            "__threadNum" => {
                self.notes.push(
                    "${__threadNum} (per thread group, from 1) became ${__vu} (the VU's number in \
                     the whole run)"
                        .into(),
                );
                "${__vu}".into()
            }
            "__counter" => {
                self.notes
                    .push("${__counter} became ${__iteration} (the VU's iteration count)".into());
                "${__iteration}".into()
            }
            "__V" => {
                let inner = args.first().cloned().unwrap_or_default();
                self.variable(inner.trim())
            }
            "__Random" => {
                let bound = |i: usize| args.get(i).and_then(|a| a.trim().parse::<i64>().ok());
                let (Some(a), Some(b)) = (bound(0), bound(1)) else {
                    return self.unevaluated(&name);
                };
                let (lo, hi) = (a.min(b), a.max(b));
                if args.get(2).is_some_and(|v| !v.trim().is_empty()) {
                    self.notes.push(format!(
                        "${{__Random({lo},{hi},{})}}: the value is not also stored in a variable",
                        args[2].trim()
                    ));
                }
                Func::Random { min: lo, max: hi }.format()
            }
            "__RandomString" => {
                let len = args
                    .first()
                    .and_then(|a| a.trim().parse::<usize>().ok())
                    .unwrap_or(8)
                    .min(256);
                let chars: Vec<char> = match args.get(1).map(|c| c.trim()) {
                    Some(c) if !c.is_empty() => c.chars().collect(),
                    _ => "abcdefghijklmnopqrstuvwxyz".chars().collect(),
                };
                let column = format!("random_string_{len}");
                let mut values = Vec::with_capacity(100);
                for _ in 0..100 {
                    let s: String = (0..len)
                        .map(|_| chars[(self.next() % chars.len() as u64) as usize])
                        .collect();
                    values.push(s);
                }
                self.generated_feeder(&column, values, "${__RandomString}")
            }
            "__UUID" => Func::Uuid.format(),
            "__time" => {
                let format = args.first().map(|f| f.trim()).unwrap_or_default();
                if !format.is_empty() {
                    self.notes.push(format!(
                        "${{__time({format})}} became ${{__time}}: milliseconds since the epoch \
                         (the format is not applied)"
                    ));
                }
                Func::Time.format()
            }
            _ => self.unevaluated(&name),
        }
    }

    /// A function herd cannot evaluate: an empty variable stands for it, reported.
    fn unevaluated(&mut self, name: &str) -> String {
        let base = var_name(name.trim_start_matches('_'));
        let var = format!("fn_{base}");
        if !self.fixed.iter().any(|(n, _)| *n == var) {
            self.fixed.push((var.clone(), String::new()));
        }
        self.notes.push(format!(
            "the function {name} is not evaluated: the variable {var} stands for it, empty \
             (set it in `vars`)"
        ));
        format!("${{{var}}}")
    }

    fn variable(&mut self, name: &str) -> String {
        let herd = var_name(name);
        if herd != name {
            self.notes
                .push(format!("the variable {name} is named {herd} in the plan"));
        }
        format!("${{{herd}}}")
    }

    fn generated_feeder(&mut self, column: &str, values: Vec<String>, what: &str) -> String {
        if !self.generated.iter().any(|f| f.name == column) {
            let mut rows = vec![vec![column.to_string()]];
            rows.extend(values.into_iter().map(|v| vec![v]));
            self.generated.push(DraftFeeder::inline(
                column,
                rows,
                Some(format!("100 values drawn at import time for {what}")),
            ));
        }
        self.notes.push(format!(
            "{what}: herd has no such function yet; each iteration takes the next of 100 values \
             drawn at import time (feeder {column})"
        ));
        format!("${{{column}}}")
    }

    /// xorshift64*: deterministic, so the same file always imports to the same plan.
    fn next(&mut self) -> u64 {
        let mut x = self.seed;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.seed = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn is_bare_function(name: &str) -> bool {
    matches!(name, "__threadNum" | "__UUID" | "__time" | "__counter")
}

/// The index of the `}` that closes a `${`, with nested `${…}` and parentheses.
fn find_close(s: &str) -> Option<usize> {
    let (mut braces, mut parens) = (0usize, 0usize);
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                braces += 1;
                i += 1;
            }
            b'\\' => i += 1,
            b'(' => parens += 1,
            b')' => parens = parens.saturating_sub(1),
            b'}' if parens == 0 || braces > 0 => {
                if braces == 0 {
                    return Some(i);
                }
                braces -= 1;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// `__name(a,b)` → (`__name`, [a, b]); commas inside nested references or parentheses, and
/// `\,`, do not split.
fn split_function(inner: &str) -> (String, Vec<String>) {
    let Some(open) = inner.find('(') else {
        return (inner.trim().to_string(), Vec::new());
    };
    let name = inner[..open].trim().to_string();
    let body = inner[open + 1..]
        .strip_suffix(')')
        .unwrap_or(&inner[open + 1..]);
    let mut args = Vec::new();
    let mut cur = String::new();
    let (mut depth, mut chars) = (0usize, body.chars().peekable());
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&',') => {
                cur.push(',');
                chars.next();
            }
            '(' | '{' => {
                depth += 1;
                cur.push(c);
            }
            ')' | '}' => {
                depth = depth.saturating_sub(1);
                cur.push(c);
            }
            ',' if depth == 0 => args.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() || !args.is_empty() {
        args.push(cur);
    }
    (name, args)
}
