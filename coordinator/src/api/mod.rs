//! The HTTP API of `herd up`: JSON under `/api/v1`, an OpenAPI document, health, readiness and
//! Prometheus metrics, on hyper 1 (already herd's HTTP stack, so no web framework is added).
//!
//! Writes become protocol commands for the [`Manager`] — the same path the scheduler and queues
//! use — and reads go to the store (plus the manager for runs still active). Every request but
//! `/healthz`, `/readyz`, `/api/v1/auth/config` and the console's files (`/`, `/assets/…`: the
//! web UI, [`console`]) needs a credential ([`auth`]). Errors are JSON:
//! `{"code": "invalid", "message": "plan.load.stages[0].vus: must be > 0", "field": "plan.load.stages[0].vus"}`.

// Handlers return the error *response* as their `Err`: it is built once per failed request, so
// its size does not matter, and boxing it would only add noise.
#![allow(clippy::result_large_err)]

pub mod auth;
mod compare;
mod console;
mod history;
mod import;
pub mod jwks;
mod openapi;
mod prometheus;
mod routes;
mod session;
mod sse;

use crate::manager::{Code, Manager, Rejection};
use crate::store::Store;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

/// The response body type of every route (SSE streams, the rest are whole).
pub type Body = BoxBody<Bytes, Infallible>;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The one command path.
    pub manager: Manager,
    /// Reads.
    pub store: Arc<dyn Store>,
    /// Who may do what.
    pub auth: Arc<auth::Auth>,
}

/// Serves the API on `listener` until `shutdown` resolves; connections in progress are dropped
/// after that (runs are the manager's to wind down).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
            () = &mut shutdown => return,
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(routes::handle(req, state).await) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
}

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

/// Reads a request body as JSON (at most 1 MiB); an error response names the problem.
pub async fn body_json(req: Request<Incoming>) -> Result<serde_json::Value, Response<Body>> {
    let limited = http_body_util::Limited::new(req.into_body(), 1 << 20);
    let bytes = limited
        .collect()
        .await
        .map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                "invalid",
                format!("cannot read the body: {e}"),
            )
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
