//! The HTTP side of a virtual user: requests prepared once per run, one shared keep-alive client,
//! and the mapping of every way a request can fail onto herd's error kinds.
//!
//! Requests are parsed and validated when the load starts (URI, method, header names and values),
//! so the hot path only clones cheap handles (`Uri`, `HeaderMap`, `Bytes`). The body of each
//! response is read to the end (that is part of the latency) and counted, never kept — except by
//! [`execute_capture`], for the steps that extract from or check a response.

use crate::clock::micros;
use crate::error::AgentError;
use crate::recorder::{FailureKind, Outcome};
use bytes::Bytes;
use herd_protocol::plan::{self, RequestStep};
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::error::Error as StdError;
use std::io;
use std::time::Duration;
use tokio::time::Instant;

/// The client every virtual user of an agent shares (one connection pool).
pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A keep-alive client: connections are pooled without limit, Nagle is off.
pub fn client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(usize::MAX)
        .pool_timer(TokioTimer::new())
        .build(connector)
}

/// A request step, ready to send.
#[derive(Debug, Clone)]
pub struct PreparedRequest {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
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
        let body = step
            .body
            .as_ref()
            .map_or_else(Bytes::new, |b| Bytes::from(b.clone()));
        Ok(Self {
            method,
            uri,
            headers,
            body,
        })
    }

    fn request(&self) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(self.body.clone()));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        if !self.headers.is_empty() {
            *request.headers_mut() = self.headers.clone();
        }
        request
    }
}

/// Sends one request, reads the whole response, and says how it went. Latency runs from just
/// before sending to the end of the body.
pub async fn execute(client: &HttpClient, request: &PreparedRequest, timeout: Duration) -> Outcome {
    let started = Instant::now();
    let exchange = async {
        let response = client
            .request(request.request())
            .await
            .map_err(|e| classify_client(&e))?;
        let status = response.status().as_u16();
        let mut body = response.into_body();
        let mut bytes = 0usize;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| classify(&e))?;
            if let Some(data) = frame.data_ref() {
                bytes += data.len();
            }
        }
        tracing::trace!(status, bytes, "response");
        Ok::<u16, FailureKind>(status)
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(status)) => {
            let us = micros(started.elapsed());
            Outcome::Response {
                status,
                latency_us: us,
                service_us: us,
            }
        }
        Ok(Err(kind)) => Outcome::Failure(kind),
        Err(_) => Outcome::Failure(FailureKind::Timeout),
    }
}

/// A response kept for a step's extractions and checks: its headers, and its body when asked.
#[derive(Debug)]
pub struct Captured {
    /// The response headers.
    pub headers: HeaderMap,
    /// The body (its first [`MAX_CAPTURED_BODY`] bytes), or empty when not asked for.
    pub body: Vec<u8>,
}

/// The most bytes of a response body kept for extraction and checks; the rest is read (and
/// timed) but not kept, so one huge response cannot exhaust the agent's memory.
pub const MAX_CAPTURED_BODY: usize = 4 << 20;

/// Like [`execute`], but keeps the response's headers, and its body if `keep_body`: only steps
/// that extract or check a response use it, so plain steps stay allocation-free.
pub async fn execute_capture(
    client: &HttpClient,
    request: &PreparedRequest,
    timeout: Duration,
    keep_body: bool,
) -> (Outcome, Option<Captured>) {
    let started = Instant::now();
    let exchange = async {
        let response = client
            .request(request.request())
            .await
            .map_err(|e| classify_client(&e))?;
        let status = response.status().as_u16();
        let (parts, mut body) = response.into_parts();
        let mut kept = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| classify(&e))?;
            if let Some(data) = frame.data_ref().filter(|_| keep_body) {
                let room = MAX_CAPTURED_BODY.saturating_sub(kept.len());
                kept.extend_from_slice(&data[..data.len().min(room)]);
            }
        }
        Ok::<_, FailureKind>((
            status,
            Captured {
                headers: parts.headers,
                body: kept,
            },
        ))
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok((status, captured))) => {
            let us = micros(started.elapsed());
            let outcome = Outcome::Response {
                status,
                latency_us: us,
                service_us: us,
            };
            (outcome, Some(captured))
        }
        Ok(Err(kind)) => (Outcome::Failure(kind), None),
        Err(_) => (Outcome::Failure(FailureKind::Timeout), None),
    }
}

/// Classifies an error of the legacy client: connection failures first, then by cause.
fn classify_client(error: &hyper_util::client::legacy::Error) -> FailureKind {
    if error.is_connect() {
        // A connect timeout is still a failure to connect.
        return FailureKind::Connect;
    }
    classify(error)
}

/// Classifies any error by walking its source chain: the most specific cause wins.
pub(crate) fn classify(error: &(dyn StdError + 'static)) -> FailureKind {
    let mut current = Some(error);
    let mut kind = FailureKind::Io;
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return match io.kind() {
                io::ErrorKind::TimedOut => FailureKind::Timeout,
                io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe => FailureKind::Reset,
                io::ErrorKind::UnexpectedEof => FailureKind::Closed,
                io::ErrorKind::ConnectionRefused => FailureKind::Connect,
                _ => FailureKind::Io,
            };
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_timeout() {
                kind = FailureKind::Timeout;
            } else if h.is_incomplete_message() || h.is_closed() || h.is_canceled() {
                kind = FailureKind::Closed;
            }
        }
        current = e.source();
    }
    kind
}

#[cfg(test)]
mod tests;
