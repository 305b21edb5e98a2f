//! Requests prepared once per run, and the requests that following a redirect makes of them.
//!
//! Everything that can be checked or computed ahead is: the URL, method, header names and values,
//! the body's bytes, and the whole HTTP/1.1 request as it goes on the wire (request line, `Host`,
//! headers, `Content-Length`, body), so sending it over HTTP/1.1 is one write of bytes made once.
//! A body over [`INLINE_BODY`] (a file of up to 16 MiB) is not copied into that request: it stays
//! the one shared buffer the plan's file is (`Bytes`, held once per agent), written after the head,
//! so no request, VU or redirect makes a copy of it. For HTTP/2, the request's header block is
//! encoded once too (`h2_frame::request_block`), and its body sent from the same shared buffer.
//!
//! Redirects follow what browsers, Go's client and so k6 do: 301, 302 and 303 turn into a `GET`
//! without a body (except a `HEAD`, which stays one), 307 and 308 repeat the method and the body;
//! `Authorization` and `Cookie` are not sent to another host.

use super::connector::Origin;
use crate::error::AgentError;
use bytes::Bytes;
use herd_protocol::plan::{self, RequestStep};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Uri};
use std::rc::Rc;

/// Where one request goes.
#[derive(Debug, Clone)]
pub(super) struct Target {
    pub origin: Rc<Origin>,
    /// Absolute (`https://host/path?q`): the base for relative redirects, and HTTP/2's URI.
    pub absolute: Uri,
    /// Origin-form (`/path?q`): what HTTP/1.1 sends.
    pub path: String,
    /// The `Host` header HTTP/1.1 needs.
    pub host: HeaderValue,
}

impl Target {
    fn new(absolute: Uri, origin: Rc<Origin>) -> Result<Self, String> {
        let path = absolute
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let authority = absolute.authority().ok_or("the URL has no host")?;
        let host =
            HeaderValue::from_str(authority.as_str()).map_err(|e| format!("invalid host: {e}"))?;
        Ok(Self {
            origin,
            absolute,
            path,
            host,
        })
    }

    fn parse(absolute: Uri) -> Result<Self, String> {
        let origin = Rc::new(Origin::of(&absolute)?);
        Self::new(absolute, origin)
    }
}

/// A request step, ready to send.
#[derive(Debug, Clone)]
pub struct PreparedRequest {
    pub(super) hop: Hop,
    /// The step's own `timeout`, instead of the plan's.
    pub(super) timeout: Option<std::time::Duration>,
}

impl PreparedRequest {
    /// Validates `step` against `target` (the plan's base URL).
    pub fn new(target: &str, step: &RequestStep) -> Result<Self, AgentError> {
        let bad = |reason: String| AgentError::Request {
            step: step.label.clone(),
            reason,
        };
        let uri: Uri = format!("{target}{}", step.path)
            .parse()
            .map_err(|e| bad(format!("invalid URL: {e}")))?;
        let target = Target::parse(uri).map_err(bad)?;
        let method = match step.method {
            plan::Method::Get => Method::GET,
            plan::Method::Post => Method::POST,
            plan::Method::Put => Method::PUT,
            plan::Method::Patch => Method::PATCH,
            plan::Method::Delete => Method::DELETE,
            plan::Method::Head => Method::HEAD,
        };
        let mut headers = HeaderMap::with_capacity(step.headers.len());
        for (name, value) in &step.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| bad(format!("invalid header name {name:?}: {e}")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|e| bad(format!("invalid value of header {name}: {e}")))?;
            headers.append(name, value);
        }
        let body = if step.multipart.is_empty() {
            match (&step.body, &step.body_file) {
                (_, Some(file)) => file.content.clone(),
                (Some(text), None) => Bytes::from(text.clone()),
                (None, None) => Bytes::new(),
            }
        } else {
            let (body, content_type) = super::multipart::encode(&step.multipart);
            let value = HeaderValue::from_str(&content_type)
                .map_err(|e| bad(format!("invalid multipart content type: {e}")))?;
            headers.insert(header::CONTENT_TYPE, value);
            Bytes::from(body)
        };
        Ok(Self {
            hop: Hop::new(method, target, headers, body),
            timeout: step.timeout,
        })
    }
}

/// One request on the wire: the step's own, or one a redirect made of it.
#[derive(Debug, Clone)]
pub(super) struct Hop {
    pub method: Method,
    pub target: Target,
    /// The step's headers.
    headers: HeaderMap,
    body: Bytes,
    /// The request as HTTP/1.1 sends it: the whole of it, or its head when the body is sent
    /// from its own buffer ([`Hop::h1_body`]).
    pub h1_wire: Bytes,
    /// Its header block as HTTP/2 sends it (HPACK, no table state: the same on any connection).
    pub h2_block: Bytes,
}

/// The largest body copied into a request's HTTP/1.1 bytes (so it goes in one write); a larger
/// one is written from its own, shared buffer after the head.
pub(super) const INLINE_BODY: usize = 64 * 1024;

impl Hop {
    fn new(method: Method, target: Target, headers: HeaderMap, body: Bytes) -> Self {
        let h1_wire = h1_wire(&method, &target, &headers, &body);
        let h2_block = super::h2_frame::request_block(
            &method,
            target.origin.tls,
            target.host.as_bytes(),
            &target.path,
            &headers,
            body.len(),
        );
        Self {
            method,
            target,
            headers,
            body,
            h1_wire,
            h2_block,
        }
    }

    /// What HTTP/1.1 writes after [`Hop::h1_wire`]: the body, when it is too large to be copied
    /// into it; else nothing.
    pub fn h1_body(&self) -> &[u8] {
        if self.body.len() > INLINE_BODY {
            &self.body
        } else {
            &[]
        }
    }

    /// The step's own `Cookie` header, if it writes one.
    pub fn cookie(&self) -> Option<&HeaderValue> {
        self.headers.get(header::COOKIE)
    }

    /// This request with `cookie` as its `Cookie` header (the jar's cookies merged with the
    /// step's own): made per request, only when the VU's jar has cookies for it.
    pub fn with_cookie(&self, cookie: HeaderValue) -> Hop {
        let mut headers = self.headers.clone();
        headers.insert(header::COOKIE, cookie);
        Hop::new(
            self.method.clone(),
            self.target.clone(),
            headers,
            self.body.clone(),
        )
    }

    /// The body as HTTP/2 sends it (in DATA frames, from this shared buffer).
    pub fn h2_body(&self) -> &[u8] {
        &self.body
    }

    /// This request as a proxy takes it: the request line names the absolute URL, and the proxy's
    /// `authorization` line (possibly empty) joins the headers. Made per request, on proxied plain
    /// HTTP connections only.
    pub fn absolute_form(&self, authorization: &[u8]) -> Vec<u8> {
        let wire = &self.h1_wire[..];
        let line_end = wire
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(wire.len(), |i| i + 2);
        let absolute = self.target.absolute.to_string();
        let mut out = Vec::with_capacity(wire.len() + absolute.len() + authorization.len());
        out.extend_from_slice(self.method.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(absolute.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        out.extend_from_slice(authorization);
        out.extend_from_slice(&wire[line_end..]);
        out
    }

    /// The request a redirect response (`status`, `Location`) asks for, if it is one to follow.
    pub fn redirected(&self, status: u16, location: Option<&HeaderValue>) -> Option<Hop> {
        let keep_method = match status {
            301..=303 => false,
            307 | 308 => true,
            _ => return None,
        };
        let location = location?.to_str().ok()?;
        let absolute = resolve(&self.target.absolute, location)?;
        let target = match Origin::of(&absolute).ok()? {
            same if same == *self.target.origin => {
                Target::new(absolute, Rc::clone(&self.target.origin)).ok()?
            }
            other => Target::new(absolute, Rc::new(other)).ok()?,
        };
        let mut headers = self.headers.clone();
        if target.origin.host != self.target.origin.host {
            headers.remove(header::AUTHORIZATION);
            headers.remove(header::COOKIE);
        }
        let (method, body) = if keep_method || self.method == Method::HEAD {
            (self.method.clone(), self.body.clone())
        } else {
            for h in [
                header::CONTENT_TYPE,
                header::CONTENT_LENGTH,
                header::CONTENT_ENCODING,
                header::TRANSFER_ENCODING,
            ] {
                headers.remove(h);
            }
            (Method::GET, Bytes::new())
        };
        // A `Host` the step sets applies to its own URL; the new one names its own host.
        headers.remove(header::HOST);
        Some(Hop::new(method, target, headers, body))
    }
}

/// Serializes a request for HTTP/1.1: `Host` unless the step sets one, and a `Content-Length`
/// for a body, or for an empty one where a body is expected (`POST`, `PUT`, `PATCH`); the body
/// too, unless it is over [`INLINE_BODY`].
fn h1_wire(method: &Method, target: &Target, headers: &HeaderMap, body: &Bytes) -> Bytes {
    let inline = if body.len() > INLINE_BODY {
        0
    } else {
        body.len()
    };
    let mut wire = Vec::with_capacity(64 + target.path.len() + headers.len() * 32 + inline);
    for part in [method.as_str(), " ", &target.path, " HTTP/1.1\r\n"] {
        wire.extend_from_slice(part.as_bytes());
    }
    let mut line = |name: &[u8], value: &[u8]| {
        wire.extend_from_slice(name);
        wire.extend_from_slice(b": ");
        wire.extend_from_slice(value);
        wire.extend_from_slice(b"\r\n");
    };
    if !headers.contains_key(header::HOST) {
        line(b"host", target.host.as_bytes());
    }
    for (name, value) in headers {
        if name != header::CONTENT_LENGTH {
            line(name.as_str().as_bytes(), value.as_bytes());
        }
    }
    if !body.is_empty() || matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
        line(b"content-length", body.len().to_string().as_bytes());
    }
    wire.extend_from_slice(b"\r\n");
    wire.extend_from_slice(&body[..inline]);
    Bytes::from(wire)
}

/// Resolves a `Location` against the URL of the request it answered (RFC 3986, section 5.2),
/// without the fragment. `None` for what cannot be followed (another scheme, a malformed URL).
pub(super) fn resolve(base: &Uri, location: &str) -> Option<Uri> {
    let location = location.split('#').next().unwrap_or_default().trim();
    let scheme = base.scheme_str()?;
    let authority = base.authority()?.as_str();
    let absolute = if let Some(other) = scheme_of(location) {
        if !(other.eq_ignore_ascii_case("http") || other.eq_ignore_ascii_case("https")) {
            // Another scheme (`ftp:`, `mailto:`): nothing an HTTP client follows.
            return None;
        }
        location.to_string()
    } else if let Some(rest) = location.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        let (path, query) = split_query(location);
        format!("{scheme}://{authority}{}{query}", remove_dots(path))
    } else {
        let base_path = base.path();
        let (path, query) = if location.is_empty() {
            (
                base_path.to_string(),
                base.query().map(|q| format!("?{q}")).unwrap_or_default(),
            )
        } else if location.starts_with('?') {
            (base_path.to_string(), location.to_string())
        } else {
            let dir = &base_path[..base_path.rfind('/').map_or(0, |i| i + 1)];
            let (rel, query) = split_query(location);
            (
                format!("{}{rel}", if dir.is_empty() { "/" } else { dir }),
                query.to_string(),
            )
        };
        format!("{scheme}://{authority}{}{query}", remove_dots(&path))
    };
    absolute.parse().ok()
}

/// The scheme of a URI reference (`scheme:` as RFC 3986 spells it), if it has one.
fn scheme_of(s: &str) -> Option<&str> {
    let scheme = &s[..s.find(':')?];
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    valid.then_some(scheme)
}

fn split_query(s: &str) -> (&str, &str) {
    match s.find('?') {
        Some(i) => s.split_at(i),
        None => (s, ""),
    }
}

/// Removes `.` and `..` segments from an absolute path (RFC 3986, section 5.2.4).
fn remove_dots(path: &str) -> String {
    if !path.split('/').any(|s| s == "." || s == "..") {
        return path.to_string();
    }
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *segment {
            "." => {
                if last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Uri {
        "https://example.com:8443/a/b/c?q=1"
            .parse()
            .expect("valid URI")
    }

    fn resolved(location: &str) -> Option<String> {
        resolve(&base(), location).map(|u| u.to_string())
    }

    #[test]
    fn locations_resolve_as_rfc_3986_says() {
        for (location, want) in [
            ("http://other/x", "http://other/x"),
            ("HTTPS://other:1/x?y#frag", "https://other:1/x?y"),
            ("//other/x", "https://other/x"),
            ("/x/y", "https://example.com:8443/x/y"),
            ("d", "https://example.com:8443/a/b/d"),
            ("./d?z=2", "https://example.com:8443/a/b/d?z=2"),
            ("../d", "https://example.com:8443/a/d"),
            ("../../../../d", "https://example.com:8443/d"),
            ("..", "https://example.com:8443/a/"),
            ("?z", "https://example.com:8443/a/b/c?z"),
            ("", "https://example.com:8443/a/b/c?q=1"),
            ("/x/./y/../z", "https://example.com:8443/x/z"),
        ] {
            assert_eq!(resolved(location).as_deref(), Some(want), "{location:?}");
        }
    }

    #[test]
    fn other_schemes_and_malformed_locations_are_not_followed() {
        assert_eq!(resolved("ftp://files/x"), None);
        assert_eq!(resolved("mailto:a@b"), None);
        assert_eq!(resolved("http://bad host/"), None);
    }

    fn hop(method: Method, headers: &[(&str, &'static str)], body: &'static str) -> Hop {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(
                HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_static(v),
            );
        }
        let target = Target::parse("http://a.test/form".parse().expect("URI")).expect("target");
        Hop::new(method, target, map, Bytes::from_static(body.as_bytes()))
    }

    fn wire(hop: &Hop) -> String {
        String::from_utf8(hop.h1_wire.to_vec()).expect("text")
    }

    #[test]
    fn an_http1_request_is_serialized_once_with_host_and_length() {
        let post = hop(Method::POST, &[("x-a", "1")], "data");
        assert_eq!(
            wire(&post),
            "POST /form HTTP/1.1\r\nhost: a.test\r\nx-a: 1\r\ncontent-length: 4\r\n\r\ndata"
        );
        assert_eq!(
            wire(&hop(Method::PUT, &[], "")),
            "PUT /form HTTP/1.1\r\nhost: a.test\r\ncontent-length: 0\r\n\r\n"
        );
        assert_eq!(
            wire(&hop(Method::GET, &[("host", "h")], "")),
            "GET /form HTTP/1.1\r\nhost: h\r\n\r\n"
        );
    }

    #[test]
    fn a_large_body_is_written_from_its_shared_buffer_never_copied() {
        let file = Bytes::from(vec![7u8; INLINE_BODY + 1]);
        let target = Target::parse("http://a.test/up".parse().expect("URI")).expect("target");
        let put = Hop::new(Method::PUT, target, HeaderMap::new(), file.clone());
        assert_eq!(
            wire(&put),
            format!(
                "PUT /up HTTP/1.1\r\nhost: a.test\r\ncontent-length: {}\r\n\r\n",
                INLINE_BODY + 1
            )
        );
        // The bytes written after the head are the file's own buffer, in the request, in one
        // with the jar's cookies, and in a 307's repeat.
        assert_eq!(put.h1_body().as_ptr(), file.as_ptr());
        assert_eq!(put.h1_body().len(), file.len());
        let cookied = put.with_cookie(HeaderValue::from_static("a=1"));
        assert_eq!(cookied.h1_body().as_ptr(), file.as_ptr());
        let again = follow(&put, 307, "/again").expect("followed");
        assert_eq!(again.h1_body().as_ptr(), file.as_ptr());
        // A small body still goes in the one write of the whole request.
        let small = hop(Method::POST, &[], "data");
        assert!(small.h1_body().is_empty());
    }

    #[test]
    fn through_a_proxy_the_request_line_names_the_absolute_url() {
        let post = hop(Method::POST, &[("x-a", "1")], "data");
        let wire = post.absolute_form(b"proxy-authorization: Basic eA==\r\n");
        assert_eq!(
            String::from_utf8(wire).expect("text"),
            "POST http://a.test/form HTTP/1.1\r\nproxy-authorization: Basic eA==\r\n\
             host: a.test\r\nx-a: 1\r\ncontent-length: 4\r\n\r\ndata"
        );
    }

    fn follow(from: &Hop, status: u16, location: &'static str) -> Option<Hop> {
        from.redirected(status, Some(&HeaderValue::from_static(location)))
    }

    #[test]
    fn a_303_or_302_post_becomes_a_bodiless_get_and_307_308_repeat_it() {
        let post = hop(
            Method::POST,
            &[("content-type", "text/plain"), ("x-keep", "1")],
            "data",
        );
        for status in [301, 302, 303] {
            let next = follow(&post, status, "/next").expect("followed");
            assert_eq!(next.method, Method::GET);
            assert!(next.body.is_empty());
            assert!(!next.headers.contains_key(header::CONTENT_TYPE));
            assert!(next.headers.contains_key("x-keep"));
            assert_eq!(next.target.path, "/next");
            assert!(wire(&next).starts_with("GET /next HTTP/1.1\r\nhost: a.test\r\n"));
        }
        for status in [307, 308] {
            let next = follow(&post, status, "/next").expect("followed");
            assert_eq!(next.method, Method::POST);
            assert_eq!(next.body, "data");
            assert!(next.headers.contains_key(header::CONTENT_TYPE));
        }
        let head = hop(Method::HEAD, &[], "");
        assert_eq!(
            follow(&head, 302, "/n").expect("followed").method,
            Method::HEAD
        );
        assert!(follow(&post, 304, "/n").is_none());
        assert!(follow(&post, 300, "/n").is_none());
        assert!(post.redirected(302, None).is_none());
    }

    #[test]
    fn credentials_stay_with_their_host_and_the_new_host_is_named() {
        let get = hop(
            Method::GET,
            &[
                ("authorization", "Bearer t"),
                ("cookie", "c=1"),
                ("host", "custom"),
            ],
            "",
        );
        let same = follow(&get, 302, "/x").expect("followed");
        assert!(Rc::ptr_eq(&same.target.origin, &get.target.origin));
        assert!(same.headers.contains_key(header::AUTHORIZATION));
        assert!(wire(&same).contains("\r\nhost: a.test\r\n"));
        assert!(wire(&get).contains("\r\nhost: custom\r\n"));
        let away = follow(&get, 302, "https://b.test:444/y").expect("followed");
        assert_eq!(
            *away.target.origin,
            Origin {
                tls: true,
                host: "b.test".into(),
                port: 444
            }
        );
        assert!(!away.headers.contains_key(header::AUTHORIZATION));
        assert!(!away.headers.contains_key(header::COOKIE));
        assert!(wire(&away).contains("\r\nhost: b.test:444\r\n"));
        assert_eq!(away.target.absolute, "https://b.test:444/y");
    }
}
