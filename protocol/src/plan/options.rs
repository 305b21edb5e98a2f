//! The plan's `options`: timeouts, the HTTP version, TLS leniency, the redirect policy, the
//! cookie jar, and the target's certificates and proxy (`tls`, `proxy`: `target_tls`).
//!
//! Every option has a default, so a plan without `options` runs like k6 would: a 30 s request
//! timeout, redirects followed (at most 10), HTTP/2 when a TLS server offers it by ALPN,
//! certificates verified against the Mozilla roots, a cookie jar per VU.

use super::agent_loss::OnAgentLoss;
use super::cx::{join, kind, Cx};
use super::target_tls::{Proxy, TargetTls};
use crate::duration;
use serde_json::{json, Value};
use std::time::Duration;

/// Which HTTP version the agent speaks to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpVersion {
    /// HTTP/1.1 on `http://`; on `https://`, HTTP/2 if the server picks it by ALPN, else HTTP/1.1.
    #[default]
    Auto,
    /// HTTP/1.1 only (ALPN offers only `http/1.1`).
    Http1,
    /// HTTP/2 only: by prior knowledge (h2c) on `http://`, by ALPN (`h2` only) on `https://`.
    Http2,
}

impl HttpVersion {
    /// Every version, with the plan value that selects it.
    pub const ALL: [(HttpVersion, &'static str); 3] = [
        (HttpVersion::Auto, "auto"),
        (HttpVersion::Http1, "http1"),
        (HttpVersion::Http2, "http2"),
    ];

    /// The plan value (`auto`, `http1`, `http2`).
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(v, _)| *v == self)
            .map_or("auto", |(_, k)| k)
    }
}

/// Timeouts, protocol and limits; every field has a default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Per request: from the send (including connecting, when a connection has to be opened)
    /// to the end of the response body. Each followed redirect is a request with its own
    /// timeout. Default 30 s.
    pub timeout: Duration,
    /// Opening a connection: TCP connect plus the TLS handshake. A connection that cannot be
    /// opened in time fails as `connect` (unless the request's `timeout` ends first). Default 10 s.
    pub connect_timeout: Duration,
    /// How long in-flight iterations may take to finish after the load ends or a stop. Default 30 s.
    pub graceful_stop: Duration,
    /// HTTP/1.1, HTTP/2, or whichever the server offers over TLS. Default `auto`.
    pub http: HttpVersion,
    /// Accept any server certificate (self-signed, expired, wrong name): for test environments
    /// only. Default `false`: certificates are verified against the Mozilla roots.
    pub insecure_tls: bool,
    /// How many redirects (301, 302, 303, 307, 308 with a `Location`) a request follows; 0 follows
    /// none. Each hop is counted as a request of its step, as k6 does, so herd's count equals the
    /// servers'. When the limit is reached the last redirect response is the step's response.
    /// Default 10 (k6's default).
    pub redirects: u32,
    /// What happens to a lost agent's share of the load. Default `redistribute`.
    pub on_agent_loss: OnAgentLoss,
    /// Each VU keeps the cookies its responses set (RFC 6265) and sends them back, as a
    /// browser would; `false` sends only the `Cookie` headers the plan writes. Default `true`
    /// (as in k6).
    pub cookies: bool,
    /// A private CA, a client certificate (`tls: {ca, client_cert, client_key}`). Default: none.
    pub tls: TargetTls,
    /// An HTTP proxy for every request (`proxy: http://host:port`). Default: none.
    pub proxy: Option<Proxy>,
    /// How long `setup:` may take, all its steps together. Default 60 s (k6's `setupTimeout`).
    pub setup_timeout: Duration,
    /// How long `teardown:` may take, all its steps together. Default 60 s.
    pub teardown_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            graceful_stop: Duration::from_secs(30),
            http: HttpVersion::Auto,
            insecure_tls: false,
            redirects: 10,
            on_agent_loss: OnAgentLoss::default(),
            cookies: true,
            tls: TargetTls::default(),
            proxy: None,
            setup_timeout: super::DEFAULT_ONCE_TIMEOUT,
            teardown_timeout: super::DEFAULT_ONCE_TIMEOUT,
        }
    }
}

impl Options {
    /// The options as written in a plan.
    pub fn to_json(&self) -> Value {
        let mut options = json!({
            "timeout": duration::format(self.timeout),
            "connect_timeout": duration::format(self.connect_timeout),
            "graceful_stop": duration::format(self.graceful_stop),
            "http": self.http.as_str(),
            "insecure_tls": self.insecure_tls,
            "redirects": self.redirects,
            "on_agent_loss": self.on_agent_loss.as_str(),
            "cookies": self.cookies,
        });
        // Only when set: a plain plan's start command stays as it was.
        if !self.tls.is_empty() {
            options["tls"] = self.tls.to_json();
        }
        if let Some(p) = &self.proxy {
            options["proxy"] = Value::String(p.url.clone());
        }
        for (key, d) in [
            ("setup_timeout", self.setup_timeout),
            ("teardown_timeout", self.teardown_timeout),
        ] {
            if d != super::DEFAULT_ONCE_TIMEOUT {
                options[key] = Value::String(duration::format(d));
            }
        }
        options
    }
}

const OPTION_KEYS: &[&str] = &[
    "timeout",
    "connect_timeout",
    "graceful_stop",
    "http",
    "insecure_tls",
    "redirects",
    "on_agent_loss",
    "cookies",
    "tls",
    "proxy",
    "setup_timeout",
    "teardown_timeout",
];

impl Cx {
    pub(super) fn options(&mut self, v: &Value) -> Option<Options> {
        let m = self.object(v, "options", OPTION_KEYS)?;
        let mut o = Options::default();
        let mut ok = true;
        for (key, field) in [
            ("timeout", &mut o.timeout),
            ("connect_timeout", &mut o.connect_timeout),
            ("setup_timeout", &mut o.setup_timeout),
            ("teardown_timeout", &mut o.teardown_timeout),
        ] {
            if let Some(t) = m.get(key) {
                let path = join("options", key);
                match self.duration(t, &path) {
                    Some(d) if d.is_zero() => {
                        self.err(&path, "must be > 0");
                        ok = false;
                    }
                    Some(d) => *field = d,
                    None => ok = false,
                }
            }
        }
        if let Some(g) = m.get("graceful_stop") {
            match self.duration(g, "options.graceful_stop") {
                Some(d) => o.graceful_stop = d,
                None => ok = false,
            }
        }
        if let Some(h) = m.get("http") {
            match self.http_version(h) {
                Some(h) => o.http = h,
                None => ok = false,
            }
        }
        for (key, field) in [
            ("insecure_tls", &mut o.insecure_tls),
            ("cookies", &mut o.cookies),
        ] {
            match m.get(key) {
                None => {}
                Some(Value::Bool(b)) => *field = *b,
                Some(other) => {
                    self.err(
                        &join("options", key),
                        format!("must be true or false, got {}", kind(other)),
                    );
                    ok = false;
                }
            }
        }
        if let Some(r) = m.get("redirects") {
            match self.integer(r, "options.redirects", 0, "must be >= 0 (0 follows none)") {
                Some(n) => o.redirects = n,
                None => ok = false,
            }
        }
        if let Some(p) = m.get("on_agent_loss") {
            match self.on_agent_loss(p) {
                Some(p) => o.on_agent_loss = p,
                None => ok = false,
            }
        }
        if let Some(t) = m.get("tls") {
            match self.target_tls(t) {
                Some(t) => o.tls = t,
                None => ok = false,
            }
        }
        if let Some(p) = m.get("proxy") {
            match self.proxy(p) {
                Some(p) => o.proxy = Some(p),
                None => ok = false,
            }
        }
        ok.then_some(o)
    }

    fn http_version(&mut self, v: &Value) -> Option<HttpVersion> {
        let s = self.string(v, "options.http")?;
        let found = HttpVersion::ALL.iter().find(|(_, k)| *k == s);
        if found.is_none() {
            self.err(
                "options.http",
                format!(
                    "unknown HTTP version {s:?}: expected auto, http1 or http2 (http2 on an \
                     http:// target is h2c with prior knowledge)"
                ),
            );
        }
        found.map(|(v, _)| *v)
    }
}
