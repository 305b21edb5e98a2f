//! `GET /api/v1/runs/{id}/report.html`: a finished run's single-file HTML report
//! ([`crate::report`]), the same document `herd report RUN_ID --html FILE` writes. A run still
//! active has no report yet (409): its summary is what the report is built from.

use super::respond::{error, Body};
use crate::report::{render_html, ReportInput};
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
    let record = match store.get_run(&run).await {
        Ok(Some(r)) => r,
        Ok(None) => return error(StatusCode::NOT_FOUND, "not_found", format!("no run {id}")),
        Err(e) => return internal(e),
    };
    if !record.state.is_terminal() {
        return not_ended(id, record.state.as_str());
    }
    let summary = match store.get_summary(&run).await {
        Ok(Some(s)) => s,
        Ok(None) => return not_ended(id, record.state.as_str()),
        Err(e) => return internal(e),
    };
    let seconds = match store.list_seconds(&run).await {
        Ok(s) => s.iter().map(|s| s.to_summary()).collect::<Vec<_>>(),
        Err(e) => return internal(e),
    };
    let html = render_html(&ReportInput {
        summary: &summary,
        seconds: &seconds,
        plan: Some(&record.plan),
        created_at_ms: Some(record.created_at_ms),
        test_id: record.test.as_deref(),
        written_at_ms: herd_protocol::clock::Clock::new().unix_ms(),
    });
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

fn not_ended(id: &str, state: &str) -> Response<Body> {
    error(
        StatusCode::CONFLICT,
        "conflict",
        format!("run {id} has not ended (it is {state}): its report is written from its summary"),
    )
}

fn internal(e: impl std::fmt::Display) -> Response<Body> {
    tracing::error!(error = %e, "report request failed");
    error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
}
