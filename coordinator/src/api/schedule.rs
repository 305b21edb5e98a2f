//! `POST /api/v1/schedules/preview`: the next fires of a schedule that is not saved yet, computed
//! by the same [`crate::calendar`] functions the scheduler runs, so the test editor shows exactly
//! when the server will start the test. Validates and computes only: nothing is stored.
//!
//! Body `{"schedule": {…}, "count": 5, "from_ms": …}` (`count` 1..=20, default 5; `from_ms`
//! default now) → `{"from_ms", "next_fires_ms": [...]}`; a bad schedule is a 400 naming its
//! field (`schedule.tz`), as saving the test would be.

use super::respond::{json, Body};
use crate::calendar::next_fires;
use herd_protocol::command::Schedule;
use hyper::{Response, StatusCode};
use serde_json::{json as j, Value};

/// How many fires a preview may ask for.
const MAX_COUNT: u64 = 20;

/// The preview of `body`'s schedule, from `now_ms` unless the body says `from_ms`.
pub fn preview(body: &Value, now_ms: u64) -> Response<Body> {
    let Some(schedule) = body.get("schedule").filter(|s| !s.is_null()) else {
        return invalid("schedule", "is required ({kind: at | recurring | cron, …})");
    };
    let schedule: Schedule = match serde_json::from_value(schedule.clone()) {
        Ok(s) => s,
        Err(e) => return invalid("schedule", &e.to_string()),
    };
    let count = match body.get("count") {
        None | Some(Value::Null) => 5,
        Some(v) => match v.as_u64().filter(|c| (1..=MAX_COUNT).contains(c)) {
            Some(c) => c,
            None => {
                return invalid(
                    "count",
                    &format!("must be a whole number from 1 to {MAX_COUNT}"),
                )
            }
        },
    };
    let from_ms = match body.get("from_ms") {
        None | Some(Value::Null) => now_ms,
        Some(v) => match v.as_u64() {
            Some(f) => f,
            None => return invalid("from_ms", "must be ms since the Unix epoch"),
        },
    };
    match next_fires(&schedule, from_ms, usize::try_from(count).unwrap_or(5)) {
        Ok(fires) => json(
            StatusCode::OK,
            &j!({"from_ms": from_ms, "next_fires_ms": fires}),
        ),
        Err(e) => invalid(&e.path, &e.message),
    }
}

fn invalid(field: &str, message: &str) -> Response<Body> {
    json(
        StatusCode::BAD_REQUEST,
        &j!({"code": "invalid", "message": format!("{field}: {message}"), "field": field}),
    )
}
