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

mod audit;
pub mod auth;
mod compare;
mod console;
pub mod guard;
mod history;
mod import;
pub mod jwks;
pub mod limiter;
mod openapi;
mod prometheus;
mod report;
mod respond;
mod routes;
mod schedule;
mod session;
mod sse;
mod state;

pub use respond::{body_json, error, json, rejection, Body, BodyLimit};
pub use state::ApiState;

use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;

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
