//! How handlers answer: the body type every route returns, JSON and JSON errors
//! (`{code, message, field?, errors?}`), refused commands in their HTTP form, and reading a JSON
//! body. A leaf: every handler module uses it, and it uses none of them.

// The error *response* is the `Err` of `body_json`: built once per failed request.
#![allow(clippy::result_large_err)]

use crate::manager::{Code, Rejection};
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use std::convert::Infallible;

/// The response body type of every route (SSE streams, the rest are whole).
pub type Body = BoxBody<Bytes, Infallible>;

/// A JSON response.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(bytes)).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

/// A JSON error `{code, message, field?, errors?}`.
pub fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response<Body> {
    json(
        status,
        &serde_json::json!({"code": code, "message": message.into()}),
    )
}

/// The HTTP form of a refused command.
pub fn rejection(r: &Rejection) -> Response<Body> {
    let status = match r.code {
        Code::Invalid => StatusCode::BAD_REQUEST,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::Conflict => StatusCode::CONFLICT,
        Code::Capacity => StatusCode::TOO_MANY_REQUESTS,
        Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    };
    let mut body = serde_json::json!({"code": r.code.as_str(), "message": r.message});
    if let Some(field) = &r.field {
        body["field"] = field.clone().into();
    }
    if r.errors.len() > 1 {
        body["errors"] = r.errors.clone().into();
    }
    json(status, &body)
}

/// The most a request's body may hold, put in its extensions by the route's guard
/// (`guard::body_limit`); 1 MiB when none was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimit(pub usize);

/// Reads a request body as JSON (at most its [`BodyLimit`]: 413 naming the limit beyond it); an
/// error response names the problem.
pub async fn body_json(req: Request<Incoming>) -> Result<serde_json::Value, Response<Body>> {
    let limit = req.extensions().get::<BodyLimit>().map_or(1 << 20, |l| l.0);
    let what = format!("{} {}", req.method(), req.uri().path());
    let limited = http_body_util::Limited::new(req.into_body(), limit);
    let bytes = limited
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                too_large(&what, limit)
            } else {
                error(
                    StatusCode::BAD_REQUEST,
                    "invalid",
                    format!("cannot read the body: {e}"),
                )
            }
        })?
        .to_bytes();
    if bytes.is_empty() {
        return Ok(serde_json::Value::Object(Default::default()));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            "invalid",
            format!("the body is not valid JSON: {e}"),
        )
    })
}

/// The 413 answer for a body over `limit` bytes on `what` (`POST /api/v1/runs`), naming the limit.
pub fn too_large(what: &str, limit: usize) -> Response<Body> {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!(
            "the body of {what} is larger than its limit of {} ({limit} bytes)",
            human(limit)
        ),
    )
}

/// A size as people read it: `16 KiB`, `1 MiB`.
pub fn human(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} bytes")
    }
}
