//! `GET /runs/{id}/compare`: a run against its test's baseline, metric by metric, with a verdict
//! from regression limits the caller may tune in the query string:
//! `max_p95_increase_pct` (default 10), `max_p99_increase_pct` (default 10),
//! `max_rps_decrease_pct` (default 10), `max_error_rate_increase` (percentage points, default 1).

use super::respond::{error, json, Body};
use super::state::ApiState;
use herd_protocol::summary::Summary;
use herd_protocol::RunId;
use hyper::{Response, StatusCode};
use serde_json::{json as j, Value};
use std::collections::HashMap;

/// Handles the comparison.
pub async fn handle(state: &ApiState, id: &str, query: &HashMap<String, String>) -> Response<Body> {
    let limit = |name: &str, default: f64| -> Result<f64, Response<Body>> {
        match query.get(name) {
            None => Ok(default),
            Some(v) => v.parse::<f64>().ok().filter(|v| *v >= 0.0).ok_or_else(|| {
                json(
                    StatusCode::BAD_REQUEST,
                    &j!({"code": "invalid", "field": name, "message": format!("{name}: must be a number >= 0")}),
                )
            }),
        }
    };
    let limits = match (|| {
        Ok::<_, Response<Body>>([
            limit("max_p95_increase_pct", 10.0)?,
            limit("max_p99_increase_pct", 10.0)?,
            limit("max_rps_decrease_pct", 10.0)?,
            limit("max_error_rate_increase", 1.0)?,
        ])
    })() {
        Ok(l) => l,
        Err(r) => return r,
    };
    let Ok(run) = RunId::new(id) else {
        return error(StatusCode::NOT_FOUND, "not_found", format!("no run {id}"));
    };
    let record = match state.store.get_run(&run).await {
        Ok(Some(r)) => r,
        Ok(None) => return error(StatusCode::NOT_FOUND, "not_found", format!("no run {id}")),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    };
    let Some(test_id) = record.test else {
        return error(
            StatusCode::CONFLICT,
            "conflict",
            format!("run {id} is not a run of a stored test, so it has no baseline"),
        );
    };
    let baseline = match state.store.get_test(&test_id).await {
        Ok(Some(t)) => t.baseline_run,
        Ok(None) => None,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    };
    let Some(baseline) = baseline else {
        return error(
            StatusCode::CONFLICT,
            "conflict",
            format!("test {test_id} has no baseline: PUT /api/v1/tests/{test_id}/baseline"),
        );
    };
    let (Ok(Some(now)), Ok(Some(base))) = (
        state.store.get_summary(&run).await,
        state.store.get_summary(&baseline).await,
    ) else {
        return error(
            StatusCode::CONFLICT,
            "conflict",
            format!("run {id} or its baseline {baseline} has no summary yet"),
        );
    };
    json(StatusCode::OK, &compare(&now, &base, limits))
}

fn compare(now: &Summary, base: &Summary, [p95, p99, rps, err]: [f64; 4]) -> Value {
    let pct = |a: f64, b: f64| if b == 0.0 { 0.0 } else { (a - b) / b * 100.0 };
    let rows = [
        ("p50_ms", now.latency_ms.p50, base.latency_ms.p50, None),
        (
            "p95_ms",
            now.latency_ms.p95,
            base.latency_ms.p95,
            Some(pct(now.latency_ms.p95, base.latency_ms.p95) > p95),
        ),
        (
            "p99_ms",
            now.latency_ms.p99,
            base.latency_ms.p99,
            Some(pct(now.latency_ms.p99, base.latency_ms.p99) > p99),
        ),
        (
            "rps",
            now.rps,
            base.rps,
            Some(pct(now.rps, base.rps) < -rps),
        ),
        (
            "error_rate",
            now.error_rate,
            base.error_rate,
            Some(now.error_rate - base.error_rate > err),
        ),
        ("requests", now.requests as f64, base.requests as f64, None),
    ];
    let mut metrics = serde_json::Map::new();
    let mut regressions = Vec::new();
    for (name, a, b, regressed) in rows {
        metrics.insert(
            name.into(),
            j!({"run": a, "baseline": b, "delta": a - b, "delta_pct": pct(a, b)}),
        );
        if regressed == Some(true) {
            regressions.push(name);
        }
    }
    j!({
        "run_id": now.run_id, "baseline_run_id": base.run_id, "metrics": metrics,
        "regressions": regressions,
        "verdict": if regressions.is_empty() { "pass" } else { "regression" },
        "limits": {"max_p95_increase_pct": p95, "max_p99_increase_pct": p99, "max_rps_decrease_pct": rps, "max_error_rate_increase": err},
    })
}
