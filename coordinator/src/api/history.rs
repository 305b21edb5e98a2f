//! `GET /api/v1/runs`: the history of every run (inline plans included), newest first, paged,
//! filtered by test and state — what the console's Runs page lists.
//!
//! The store pages runs only by creation time (all, or one test's), so a state filter is applied
//! here over the newest [`SCAN`] runs: enough for a history page, and bounded, so one request
//! cannot read a whole DynamoDB table.

use super::respond::{error, json, Body};
use crate::store::{RunRecord, RunStateName, Store};
use hyper::{Response, StatusCode};
use serde_json::{json as j, Value};
use std::collections::HashMap;

/// How many of the newest runs a state filter looks through.
pub const SCAN: usize = 5_000;

/// The JSON of a run in lists and in `GET /runs/{id}`.
pub fn run_json(r: &RunRecord) -> Value {
    j!({
        "id": r.id, "test_id": r.test, "name": r.name, "state": r.state.as_str(),
        "agents": r.agents, "created_at_ms": r.created_at_ms, "updated_at_ms": r.updated_at_ms,
        "reason": r.reason,
    })
}

/// A filter on run states.
type Keep = Box<dyn Fn(RunStateName) -> bool + Send + Sync>;

/// Which states `?state=` keeps: a stored state name, or `active` (any not yet ended).
fn state_filter(value: Option<&str>) -> Result<Option<Keep>, String> {
    match value {
        None | Some("") => Ok(None),
        Some("active") => Ok(Some(Box::new(|s: RunStateName| !s.is_terminal()))),
        Some(name) => {
            let wanted: RunStateName = name
                .parse()
                .map_err(|e| format!("state: {e} (a run state, or `active`)"))?;
            Ok(Some(Box::new(move |s| s == wanted)))
        }
    }
}

/// `GET /api/v1/runs?test=&state=&limit=&offset=` → `{runs, limit, offset, more}`.
pub async fn list(store: &dyn Store, query: &HashMap<String, String>) -> Response<Body> {
    let number = |name: &str, default: usize| match query.get(name) {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| format!("{name}: must be a whole number")),
    };
    let (limit, offset) = match (number("limit", 20), number("offset", 0)) {
        (Ok(l), Ok(o)) => (l.min(500), o),
        (Err(m), _) | (_, Err(m)) => return invalid(&m),
    };
    let keep = match state_filter(query.get("state").map(String::as_str)) {
        Ok(k) => k,
        Err(m) => return invalid(&m),
    };
    // One more than a page tells whether there is a next one.
    let wanted = offset.saturating_add(limit).saturating_add(1);
    let read = if keep.is_some() {
        SCAN.max(wanted)
    } else {
        wanted
    };
    let runs = match query.get("test").filter(|t| !t.is_empty()) {
        Some(test) => store.list_test_runs(test, read, 0).await,
        None => store.list_runs(read).await,
    };
    let runs = match runs {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot list runs");
            return error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string());
        }
    };
    let mut page: Vec<Value> = runs
        .iter()
        .filter(|r| keep.as_ref().is_none_or(|k| k(r.state)))
        .skip(offset)
        .take(limit + 1)
        .map(run_json)
        .collect();
    let more = page.len() > limit;
    page.truncate(limit);
    json(
        StatusCode::OK,
        &j!({"runs": page, "limit": limit, "offset": offset, "more": more}),
    )
}

fn invalid(message: &str) -> Response<Body> {
    let field = message.split(':').next().unwrap_or("query");
    json(
        StatusCode::BAD_REQUEST,
        &j!({"code": "invalid", "message": message, "field": field}),
    )
}
