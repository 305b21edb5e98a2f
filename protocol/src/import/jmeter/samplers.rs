//! HTTP Request samplers to request steps: host and port (with HTTP Request Defaults), path,
//! arguments as query or form body, raw bodies, multipart text fields, files as `body_file`,
//! and headers by scope.

use super::props::{arguments, collection, element_prop, El};
use super::scope::{Cx, Defaults, Scope};
use crate::import::draft::{method_key, Req};
use crate::import::text::{form_encode, normalize_authority, split_url};

/// Headers herd sets itself or that make no sense to replay.
const DROPPED_HEADERS: [&str; 6] = [
    "content-length",
    "host",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
];

/// A header name as HTTP allows it (a token).
pub(crate) fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// One argument of a sampler or of the defaults.
struct Arg {
    name: String,
    value: String,
    encode: bool,
    equals: bool,
}

fn args_of(node: &crate::import::xml::Node) -> Vec<Arg> {
    let Some(el) = element_prop(node, "HTTPsampler.Arguments") else {
        return Vec::new();
    };
    arguments(el)
        .into_iter()
        .map(|(name, value, a)| Arg {
            name: name.to_string(),
            value: value.to_string(),
            encode: super::props::prop(a, "HTTPArgument.always_encode") == Some("true"),
            equals: super::props::prop(a, "HTTPArgument.use_equals") != Some("false"),
        })
        .collect()
}

/// The defaults an HTTP Request Defaults element sets.
pub(super) fn defaults(el: &El<'_>, base: &Defaults) -> Defaults {
    let pick = |name: &str, old: &Option<String>| {
        el.prop(name)
            .filter(|v| !v.trim().is_empty())
            .map(|v| v.trim().to_string())
            .or_else(|| old.clone())
    };
    let mut args: Vec<(String, String, bool)> = args_of(el.node)
        .into_iter()
        .map(|a| (a.name, a.value, a.encode))
        .collect();
    for old in &base.args {
        if !args.iter().any(|a| a.0 == old.0) {
            args.push(old.clone());
        }
    }
    Defaults {
        protocol: pick("HTTPSampler.protocol", &base.protocol),
        domain: pick("HTTPSampler.domain", &base.domain),
        port: pick("HTTPSampler.port", &base.port),
        path: pick("HTTPSampler.path", &base.path),
        args,
    }
}

/// Converts a sampler; `None` when it cannot be sent (the reason is returned).
pub(super) fn http(el: &El<'_>, scope: &Scope, cx: &mut Cx<'_>) -> Result<Req, String> {
    let raw_method = el.prop_or("HTTPSampler.method", "GET");
    let method = cx
        .expr
        .eval_static(raw_method)
        .unwrap_or_else(|| raw_method.to_string())
        .trim()
        .to_ascii_uppercase();
    let Some(key) = method_key(&method) else {
        return Err(format!(
            "herd sends GET, POST, PUT, PATCH, DELETE and HEAD, not {method}"
        ));
    };
    let mut notes: Vec<String> = Vec::new();
    let d = &scope.defaults;
    let field = |name: &str, default: &Option<String>| {
        el.prop(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .or_else(|| default.clone())
    };
    let mut domain = field("HTTPSampler.domain", &d.domain);
    let mut protocol = field("HTTPSampler.protocol", &d.protocol);
    let mut port = field("HTTPSampler.port", &d.port);
    let mut raw_path = el
        .prop("HTTPSampler.path")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .or_else(|| d.path.clone())
        .unwrap_or_else(|| "/".into());
    let lower = raw_path.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        let (scheme, rest) = raw_path.split_once("://").unwrap_or(("http", &raw_path));
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..end];
        protocol = Some(scheme.to_ascii_lowercase());
        match authority.rsplit_once(':') {
            Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => {
                domain = Some(h.to_string());
                port = Some(p.to_string());
            }
            _ => {
                domain = Some(authority.to_string());
                port = None;
            }
        }
        raw_path = rest[end..].to_string();
    }
    let origin = origin(
        &mut cx.expr,
        domain.as_deref(),
        protocol.as_deref(),
        port.as_deref(),
        &mut notes,
    );
    let mut path = cx.expr.template(&raw_path);
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    let mut args = args_of(el.node);
    for (name, value, encode) in &d.args {
        if !args.iter().any(|a| a.name == *name) {
            args.push(Arg {
                name: name.clone(),
                value: value.clone(),
                encode: *encode,
                equals: true,
            });
        }
    }
    let mut req = Req {
        name: Some(match &scope.tx {
            Some(tx) if !el.name().is_empty() => format!("{tx} / {}", el.name()),
            Some(tx) => tx.clone(),
            None => el.name().to_string(),
        })
        .filter(|n| !n.trim().is_empty()),
        method: key,
        origin,
        ..Req::default()
    };
    for (k, v) in &scope.headers {
        if DROPPED_HEADERS.contains(&k.to_ascii_lowercase().as_str()) {
            notes.push(format!("header {k} left out (herd sets it)"));
            continue;
        }
        if !is_header_name(k) {
            notes.push(format!("header {k:?} is not a valid header name: left out"));
            continue;
        }
        let value = cx.expr.template(v);
        if value.contains(['\r', '\n']) {
            notes.push(format!("header {k} has a line break: left out"));
            continue;
        }
        req.headers.retain(|(h, _)| !h.eq_ignore_ascii_case(k));
        req.headers.push((k.clone(), value));
    }
    let raw_body = el.bool("HTTPSampler.postBodyRaw");
    let multipart = el.bool("HTTPSampler.DO_MULTIPART_POST");
    let files = element_prop(el.node, "HTTPsampler.Files")
        .map(|f| collection(f, "HTTPFileArgs.files"))
        .unwrap_or_default();
    let body_method = matches!(method.as_str(), "POST" | "PUT" | "PATCH");
    if raw_body {
        let text: String = args.iter().map(|a| a.value.as_str()).collect();
        req.body = Some(cx.expr.template(&text));
    } else if multipart && body_method {
        let boundary = "herd-import-boundary-7MA4YWxkTrZu0gW";
        let mut body = String::new();
        for a in &args {
            body.push_str(&format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\n{}\r\n",
                a.name, a.value
            ));
        }
        body.push_str(&format!("--{boundary}--\r\n"));
        req.body = Some(cx.expr.template(&body));
        req.default_header(
            "content-type",
            &format!("multipart/form-data; boundary={boundary}"),
        );
        notes.push("a multipart body written out with a fixed boundary".into());
        if !files.is_empty() {
            notes.push(format!(
                "{} file part(s) left out (herd sends no file parts)",
                files.len()
            ));
        }
    } else if body_method && !args.is_empty() {
        let form: Vec<String> = args.iter().map(|a| pair(&mut cx.expr, a)).collect();
        req.body = Some(form.join("&"));
        req.default_header("content-type", "application/x-www-form-urlencoded");
    } else if !args.is_empty() {
        let query: Vec<String> = args.iter().map(|a| pair(&mut cx.expr, a)).collect();
        path.push(if path.contains('?') { '&' } else { '?' });
        path.push_str(&query.join("&"));
    }
    if !multipart && req.body.is_none() && !files.is_empty() {
        let file = &files[0];
        let file_path = super::props::prop(file, "File.path").unwrap_or_default();
        let mime = super::props::prop(file, "File.mimetype").unwrap_or_default();
        if files.len() > 1 {
            notes.push("several files: only the first is sent".into());
        }
        let relative = relative_file(file_path, &mut notes);
        if !relative.is_empty() {
            req.body_file = Some(relative);
            if !mime.is_empty() {
                req.default_header("content-type", mime);
            }
        }
    }
    if el.bool("HTTPSampler.image_parser") {
        notes.push("embedded resources (images, scripts, styles) are not downloaded".into());
    }
    req.path = path;
    req.notes = notes;
    Ok(req)
}

fn pair(expr: &mut crate::import::text::Expr<'_>, a: &Arg) -> String {
    let (name, value) = (expr.template(&a.name), expr.template(&a.value));
    let (name, value) = if a.encode {
        (form_encode(&name), form_encode(&value))
    } else {
        (name, value)
    };
    if value.is_empty() && !a.equals {
        name
    } else {
        format!("{name}={value}")
    }
}

/// A file path as herd reads it: relative to the plan. An absolute path from another machine
/// becomes its file name, with a note.
pub(crate) fn relative_file(path: &str, notes: &mut Vec<String>) -> String {
    let p = path.trim();
    let absolute = p.starts_with('/')
        || p.starts_with('\\')
        || p.get(1..3) == Some(":\\")
        || p.get(1..3) == Some(":/");
    if !absolute {
        return p.to_string();
    }
    let base = p.rsplit(['/', '\\']).next().unwrap_or(p).to_string();
    notes.push(format!(
        "the absolute path {p} became {base}: put the file beside the plan"
    ));
    base
}

/// The origin of a request, when host and port are known at import time.
fn origin(
    expr: &mut crate::import::text::Expr<'_>,
    domain: Option<&str>,
    protocol: Option<&str>,
    port: Option<&str>,
    notes: &mut Vec<String>,
) -> Option<String> {
    let domain = domain?;
    let Some(host) = expr.eval_static(domain).filter(|h| !h.trim().is_empty()) else {
        notes.push(format!(
            "the host {domain} is set at run time: sent to the plan's target"
        ));
        return None;
    };
    let port = port
        .and_then(|p| expr.eval_static(p))
        .filter(|p| !p.trim().is_empty());
    let scheme = protocol
        .and_then(|p| expr.eval_static(p))
        .map(|p| p.trim().to_ascii_lowercase())
        .filter(|p| p == "http" || p == "https")
        .unwrap_or_else(|| {
            if port.as_deref() == Some("443") {
                "https".into()
            } else {
                "http".into()
            }
        });
    let authority = match port {
        Some(p) => format!("{}:{}", host.trim(), p.trim()),
        None => host.trim().to_string(),
    };
    let url = format!("{scheme}://{}", normalize_authority(&scheme, &authority));
    split_url(&url).map(|u| u.origin())
}
