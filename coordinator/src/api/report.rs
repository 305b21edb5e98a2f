//! `GET /api/v1/runs/{id}/report.html`: a finished run's single-file HTML report
//! ([`crate::report`]), the same document `herd report RUN_ID --html FILE` writes. A run still
//! active has no report yet (409): its summary is what the report is built from.

use super::respond::{error, Body};
use crate::report::{stored_report, StoredReportError};
use crate::store::Store;
use bytes::Bytes;
use herd_protocol::RunId;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use hyper::{Response, StatusCode};

/// The report of run `id`, read from `store`.
pub async fn handle(store: &dyn Store, id: &str) -> Response<Body> {
    let run = match RunId::new(id) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::NOT_FOUND, "not_found", e.to_string()),
    };
    let now = herd_protocol::clock::Clock::new().unix_ms();
    let html = match stored_report(store, &run, now).await {
        Ok(html) => html,
        Err(e @ StoredReportError::NotFound(_)) => {
            return error(StatusCode::NOT_FOUND, "not_found", e.to_string())
        }
        Err(e @ StoredReportError::NotEnded { .. }) => {
            return error(StatusCode::CONFLICT, "conflict", e.to_string())
        }
        Err(e) => {
            tracing::error!(error = %e, "report request failed");
            return error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string());
        }
    };
    let mut response = Response::new(Full::new(Bytes::from(html)).boxed());
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html;charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"{run}.report.html\"")) {
        headers.insert(CONTENT_DISPOSITION, v);
    }
    response
}
