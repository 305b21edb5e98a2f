//! `options.tls` and `options.proxy`: how agents reach a target that wants more than a plain
//! connection — a private CA's server certificates, a client certificate (mTLS), an HTTP proxy.
//!
//! PEM files are read like body files: by whoever loads the plan from disk, relative to the
//! plan's folder (through [`PlanFiles`]), and their text then travels *inside* the plan
//! (`{path, pem}`), so agents on other hosts need no copy and this crate does no I/O. The parser
//! checks that each holds what its field says (a certificate, a private key); the agent builds
//! the TLS configuration from them when its load starts (`herd_protocol::tls`).

use super::cx::{join, kind, Cx, FieldError, PlanFiles};
use serde_json::{json, Map, Value};

/// The most bytes one PEM file of `options.tls` may hold (a CA bundle of a few dozen
/// certificates; the plan travels to agents in one message).
pub const MAX_PEM_BYTES: usize = 64 * 1024;

/// A PEM file named by the plan, read next to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemFile {
    /// The path as the plan wrote it (for messages).
    pub path: String,
    /// The file's text.
    pub pem: String,
}

impl PemFile {
    fn to_json(&self) -> Value {
        json!({"path": self.path, "pem": self.pem})
    }
}

/// `options.tls`: certificates for https targets. Empty by default (the Mozilla roots, no client
/// certificate).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetTls {
    /// Server certificates are verified against these CA certificates instead of the Mozilla
    /// roots.
    pub ca: Option<PemFile>,
    /// The client certificate (chain) presented to servers that ask for one.
    pub client_cert: Option<PemFile>,
    /// Its private key.
    pub client_key: Option<PemFile>,
}

const TLS_KEYS: [&str; 3] = ["ca", "client_cert", "client_key"];

impl TargetTls {
    /// Whether the plan set none of it.
    pub fn is_empty(&self) -> bool {
        self.ca.is_none() && self.client_cert.is_none() && self.client_key.is_none()
    }

    /// The loaded form, as the plan carries it to agents.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        for (key, file) in TLS_KEYS.iter().zip(self.files()) {
            if let Some(f) = file {
                m.insert((*key).into(), f.to_json());
            }
        }
        Value::Object(m)
    }

    fn files(&self) -> [Option<&PemFile>; 3] {
        [
            self.ca.as_ref(),
            self.client_cert.as_ref(),
            self.client_key.as_ref(),
        ]
    }
}

/// `options.proxy`: an HTTP proxy every request goes through (`http://[user:pass@]host:port`):
/// plain-HTTP requests in absolute form, https ones through a `CONNECT` tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    /// The URL as written (without a trailing slash).
    pub url: String,
    /// Host name or IP address (without an IPv6 literal's brackets).
    pub host: String,
    /// Port (default 80).
    pub port: u16,
    /// `user:password` for `Proxy-Authorization: Basic`, when the URL has it.
    pub credentials: Option<String>,
}

impl Proxy {
    /// The `Proxy-Authorization` value for the URL's `user:password`, if it has one.
    pub fn authorization(&self) -> Option<String> {
        use base64::Engine as _;
        self.credentials.as_ref().map(|c| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(c)
            )
        })
    }
}

impl Cx {
    /// `options.tls: {ca, client_cert, client_key}`, each in its loaded form `{path, pem}`.
    pub(super) fn target_tls(&mut self, v: &Value) -> Option<TargetTls> {
        let path = "options.tls";
        let m = self.object(v, path, &TLS_KEYS)?;
        let mut ok = true;
        let mut files: [Option<PemFile>; 3] = [None, None, None];
        for (key, slot) in TLS_KEYS.iter().zip(files.iter_mut()) {
            let Some(value) = m.get(*key) else { continue };
            let field = join(path, key);
            match self.pem_file(value, &field) {
                Some(f) => {
                    let (marker, what) = if *key == "client_key" {
                        ("PRIVATE KEY-----", "private key")
                    } else {
                        ("-----BEGIN CERTIFICATE-----", "certificate")
                    };
                    if f.pem.contains(marker) {
                        *slot = Some(f);
                    } else {
                        self.err(&field, format!("{}: holds no PEM {what}", f.path));
                        ok = false;
                    }
                }
                None => ok = false,
            }
        }
        let [ca, client_cert, client_key] = files;
        match (m.contains_key("client_cert"), m.contains_key("client_key")) {
            (true, false) => {
                self.err(&join(path, "client_key"), "is required with client_cert");
                ok = false;
            }
            (false, true) => {
                self.err(&join(path, "client_cert"), "is required with client_key");
                ok = false;
            }
            _ => {}
        }
        ok.then_some(TargetTls {
            ca,
            client_cert,
            client_key,
        })
    }

    fn pem_file(&mut self, v: &Value, path: &str) -> Option<PemFile> {
        let m = match v {
            Value::String(p) => {
                self.err(
                    path,
                    format!(
                        "the file {p:?} was not read: `herd run` and `herd validate` read it \
                         relative to the plan's folder; a plan sent as JSON (API, queue) must \
                         carry the text as {{path, pem}}"
                    ),
                );
                return None;
            }
            Value::Object(_) => self.object(v, path, &["path", "pem"])?,
            other => {
                self.err(path, format!("must be a file path, got {}", kind(other)));
                return None;
            }
        };
        let file = self
            .required(m, path, "path")
            .and_then(|p| self.string(p, &join(path, "path")));
        let pem = self
            .required(m, path, "pem")
            .and_then(|p| self.string(p, &join(path, "pem")));
        Some(PemFile {
            path: file?,
            pem: pem?,
        })
    }

    /// `options.proxy: http://[user:pass@]host[:port]`.
    pub(super) fn proxy(&mut self, v: &Value) -> Option<Proxy> {
        let path = "options.proxy";
        let url = self.string(v, path)?;
        let parsed = parse_proxy(url.trim_end_matches('/'));
        parsed.map_err(|e| self.err(path, e)).ok()
    }
}

fn parse_proxy(url: &str) -> Result<Proxy, String> {
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(format!(
            "{url:?} must be an http:// URL such as \"http://proxy.local:3128\" (https targets \
             go through it by CONNECT)"
        ));
    };
    let (credentials, authority) = match rest.rsplit_once('@') {
        Some((user, authority)) if !user.is_empty() => (Some(user.to_string()), authority),
        Some(_) => return Err("has an empty user before '@'".into()),
        None => (None, rest),
    };
    if authority.is_empty() || authority.contains(['/', '?', '#', ' ']) {
        return Err(format!(
            "{url:?} must be just http://host:port (no path, query or fragment)"
        ));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !authority.ends_with(']') => {
            let port = port
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("port {port:?} is not a number from 1 to 65535"))?;
            (host, port)
        }
        _ => (authority, 80),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("{url:?} names no host"));
    }
    Ok(Proxy {
        url: url.to_string(),
        host: host.to_string(),
        port,
        credentials,
    })
}

/// Replaces every file path of `options.tls` by its loaded form (read through `files`), before
/// the plan is validated; a file that cannot be read is an error at its field, and its key is
/// removed so the field is not reported twice.
pub(super) fn load_tls_files(value: &mut Value, files: &dyn PlanFiles) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let Some(Value::Object(tls)) = value.get_mut("options").and_then(|o| o.get_mut("tls")) else {
        return errors;
    };
    for key in TLS_KEYS {
        let Some(Value::String(path)) = tls.get(key).cloned() else {
            continue;
        };
        let read = files.read(&path, MAX_PEM_BYTES).and_then(|bytes| {
            if bytes.len() > MAX_PEM_BYTES {
                Err(format!(
                    "is too large: {} bytes, at most {MAX_PEM_BYTES}",
                    bytes.len()
                ))
            } else {
                String::from_utf8(bytes).map_err(|_| "is not PEM text".to_string())
            }
        });
        match read {
            Ok(pem) => {
                tls.insert(key.into(), PemFile { path, pem }.to_json());
            }
            Err(e) => {
                tls.remove(key);
                errors.push(FieldError {
                    path: format!("options.tls.{key}"),
                    message: format!("{path}: {e}"),
                });
            }
        }
    }
    errors
}
