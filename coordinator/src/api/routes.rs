//! Routing and the handlers of `/api/v1`. Writes are turned into protocol commands for the
//! manager; reads come from the store, or from the manager for runs still active.

use super::history::run_json;
use super::respond::{body_json, error, json, rejection, Body};
use super::state::ApiState;
use super::{
    audit, compare, console, guard, history, import, openapi, prometheus, report, schedule,
    session, sse,
};
use crate::manager::{Reply, RunWatch};
use crate::store::{Role, RunRecord};
use herd_protocol::command::{Command, CommandMessage, Overrides, TestSpec};
use herd_protocol::plan::secrets::redact_plan_json;
use herd_protocol::summary::Verdict;
use herd_protocol::{RunId, PROTOCOL_VERSION};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json as j, Value};
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

/// Handles one request.
pub async fn handle(mut req: Request<Incoming>, state: ApiState) -> Response<Body> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    match (&method, path.as_str()) {
        (&Method::GET, "/healthz") => return json(StatusCode::OK, &j!({"status": "ok"})),
        (&Method::GET, "/api/v1/auth/config") => return session::config(&state.auth),
        (&Method::GET, "/readyz") => {
            return if state.manager.view().shutting_down {
                error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "shutting down",
                )
            } else {
                json(StatusCode::OK, &j!({"status": "ready"}))
            };
        }
        _ => {}
    }
    if let Some(response) = console::serve(&method, &path, req.headers()) {
        return response;
    }
    let header = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let identity = match state.auth.identify(header).await {
        Ok(identity) => identity,
        Err(denied) => {
            let mut response = error(StatusCode::UNAUTHORIZED, "unauthenticated", denied.message);
            response.headers_mut().insert(
                hyper::header::WWW_AUTHENTICATE,
                hyper::header::HeaderValue::from_static("Bearer"),
            );
            return response;
        }
    };
    let write = !matches!(method, Method::GET | Method::HEAD);
    if write && identity.role < Role::Operator {
        return error(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("{method} {path} needs the operator role; this credential is a viewer"),
        );
    }
    let query = query(req.uri().query());
    let segments: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(String::from)
        .collect();
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    if write {
        if let Err(refused) = guard::admit(&mut req, &state, &identity, &method, &s) {
            return refused;
        }
    }
    let response = match (&method, s.as_slice()) {
        (&Method::GET, ["openapi.json"]) => json(StatusCode::OK, &openapi::document()),
        (&Method::GET, ["metrics"]) => prometheus::metrics(&state).await,
        (&Method::GET, ["api", "v1", "whoami"]) => session::whoami(&identity),
        (&Method::GET, ["api", "v1", "regions"]) => session::regions(state.manager.view().regions),
        (&Method::GET, ["api", "v1", "audit"]) if identity.role >= Role::Operator => {
            audit::list(&state, &query).await
        }
        (&Method::GET, ["api", "v1", "audit"]) => error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the audit log needs the operator role; this credential is a viewer",
        ),
        (_, ["api", "v1", rest @ ..]) => {
            let viewer = identity.role < Role::Operator;
            api(req, &state, (&method, viewer), rest, &query).await
        }
        _ => not_found(&path),
    };
    if write {
        audit::record(&state, &identity, &method, &path, response.status()).await;
    }
    response
}

/// `viewer`: the caller may only read, and is shown plans with credential headers masked.
async fn api(
    req: Request<Incoming>,
    state: &ApiState,
    (method, viewer): (&Method, bool),
    route: &[&str],
    query: &HashMap<String, String>,
) -> Response<Body> {
    match (method, route) {
        (&Method::POST, ["tests"]) => {
            let body = match body_json(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let test_id = body.get("id").and_then(Value::as_str).map(String::from);
            match spec(body) {
                Ok(test) => {
                    command(
                        state,
                        Command::CreateTest { test_id, test },
                        StatusCode::CREATED,
                    )
                    .await
                }
                Err(r) => r,
            }
        }
        (&Method::GET, ["tests"]) => {
            match state.store.list_tests(query.get("tag").cloned()).await {
                Ok(mut tests) => {
                    if viewer {
                        tests.iter_mut().for_each(|t| redact_plan_json(&mut t.plan));
                    }
                    json(StatusCode::OK, &j!({"tests": tests}))
                }
                Err(e) => internal(e),
            }
        }
        (&Method::GET, ["tests", id]) => match state.store.get_test(id).await {
            Ok(Some(mut test)) => {
                if viewer {
                    redact_plan_json(&mut test.plan);
                }
                json(StatusCode::OK, &j!(test))
            }
            Ok(None) => error(StatusCode::NOT_FOUND, "not_found", format!("no test {id}")),
            Err(e) => internal(e),
        },
        (&Method::PUT, ["tests", id]) => {
            let body = match body_json(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            match spec(body) {
                Ok(test) => {
                    let command_ = Command::UpdateTest {
                        test_id: id.to_string(),
                        test,
                    };
                    command(state, command_, StatusCode::OK).await
                }
                Err(r) => r,
            }
        }
        (&Method::DELETE, ["tests", id]) => {
            command(
                state,
                Command::DeleteTest {
                    test_id: id.to_string(),
                },
                StatusCode::OK,
            )
            .await
        }
        (&Method::PUT, ["tests", id, "baseline"]) => {
            let body = match body_json(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let Some(run_id) = body.get("run_id").and_then(Value::as_str) else {
                return field_error("run_id", "is required (the run to use as the baseline)");
            };
            let command_ = Command::SetBaseline {
                test_id: id.to_string(),
                run_id: run_id.into(),
            };
            command(state, command_, StatusCode::OK).await
        }
        (&Method::POST, ["tests", id, "runs"]) => {
            let body = match body_json(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            start(state, Some(id.to_string()), None, body, query).await
        }
        (&Method::GET, ["tests", id, "runs"]) => {
            let limit = query
                .get("limit")
                .and_then(|l| l.parse().ok())
                .unwrap_or(20usize)
                .min(500);
            let offset = query
                .get("offset")
                .and_then(|l| l.parse().ok())
                .unwrap_or(0usize);
            match state.store.get_test(id).await {
                Ok(Some(_)) => {}
                Ok(None) => {
                    return error(StatusCode::NOT_FOUND, "not_found", format!("no test {id}"))
                }
                Err(e) => return internal(e),
            }
            match state.store.list_test_runs(id, limit, offset).await {
                Ok(runs) => {
                    let runs: Vec<Value> = runs.iter().map(run_json).collect();
                    json(
                        StatusCode::OK,
                        &j!({"runs": runs, "limit": limit, "offset": offset}),
                    )
                }
                Err(e) => internal(e),
            }
        }
        (&Method::POST, ["import"]) => import::handle(req, query).await,
        (&Method::POST, ["schedules", "preview"]) => match body_json(req).await {
            Ok(body) => schedule::preview(&body, herd_protocol::clock::Clock::new().unix_ms()),
            Err(r) => r,
        },
        (&Method::POST, ["runs"]) => {
            let mut body = match body_json(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let Some(plan) = body.get_mut("plan").map(Value::take) else {
                return field_error("plan", "is required (the plan as JSON)");
            };
            start(state, None, Some(plan), body, query).await
        }
        (&Method::GET, ["runs"]) => history::list(&*state.store, query).await,
        (&Method::GET, ["runs", id]) => get_run(state, id).await,
        (&Method::POST, ["runs", id, "stop"]) => {
            let command_ = Command::StopRun {
                run_id: id.to_string(),
                reason: None,
            };
            command(state, command_, StatusCode::ACCEPTED).await
        }
        (&Method::POST, ["runs", id, "ramp"]) => {
            let mut body = match body_json(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let Some(stages) = body.get_mut("stages").map(Value::take) else {
                return field_error(
                    "stages",
                    "is required ([{duration, vus}] or [{duration, rps}])",
                );
            };
            let command_ = Command::RampRun {
                run_id: id.to_string(),
                stages,
            };
            command(state, command_, StatusCode::ACCEPTED).await
        }
        (&Method::GET, ["runs", id, "seconds"]) => {
            let run = match known_run(state, id).await {
                Ok(r) => r,
                Err(r) => return r,
            };
            match state.store.list_second_summaries(&run.id).await {
                Ok(seconds) => {
                    let seconds: Vec<Value> = seconds.iter().map(|s| j!(s)).collect();
                    json(StatusCode::OK, &j!({"run_id": run.id, "seconds": seconds}))
                }
                Err(e) => internal(e),
            }
        }
        (&Method::GET, ["runs", id, "live"]) => {
            let run = match RunId::new(*id) {
                Ok(r) => r,
                Err(e) => return error(StatusCode::NOT_FOUND, "not_found", e.to_string()),
            };
            // The last second the client has (`id:` of its last event), for the replay.
            let last_event_id = req
                .headers()
                .get("last-event-id")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            match state.manager.watch(run.clone()).await {
                Some(watch) => sse::stream(run, watch, state.store.clone(), last_event_id),
                None => match known_run(state, id).await {
                    Ok(r) => error(
                        StatusCode::CONFLICT,
                        "conflict",
                        format!(
                            "run {id} is not active (it is {}); read /api/v1/runs/{id}/seconds",
                            r.state
                        ),
                    ),
                    Err(r) => r,
                },
            }
        }
        (&Method::GET, ["runs", id, "compare"]) => compare::handle(state, id, query).await,
        (&Method::GET, ["runs", id, "report.html"]) => report::handle(&*state.store, id).await,
        _ => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no route {method} /api/v1/{}", route.join("/")),
        ),
    }
}

fn not_found(path: &str) -> Response<Body> {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route {path}"),
    )
}

fn internal(e: impl std::fmt::Display) -> Response<Body> {
    tracing::error!(error = %e, "API request failed");
    error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
}

fn field_error(field: &str, message: &str) -> Response<Body> {
    json(
        StatusCode::BAD_REQUEST,
        &j!({"code": "invalid", "message": format!("{field}: {message}"), "field": field}),
    )
}

fn query(q: Option<&str>) -> HashMap<String, String> {
    q.unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A test definition from a request body, naming the field that is wrong.
fn spec(body: Value) -> Result<TestSpec, Response<Body>> {
    if !body.is_object() {
        return Err(field_error("body", "must be a JSON object"));
    }
    if body.get("plan").is_none_or(Value::is_null) {
        return Err(field_error("plan", "is required (the plan as JSON)"));
    }
    serde_json::from_value::<TestSpec>(body).map_err(|e| {
        let message = e.to_string();
        let field = ["name", "tags", "schedule", "plan"]
            .into_iter()
            .find(|f| message.contains(&format!("`{f}`")) || message.contains(f))
            .unwrap_or("body");
        field_error(field, &message)
    })
}

fn command_id() -> String {
    let random = RandomState::new().hash_one(std::time::SystemTime::now());
    format!("http-{random:016x}")
}

async fn command(state: &ApiState, command: Command, ok: StatusCode) -> Response<Body> {
    let message = CommandMessage {
        version: PROTOCOL_VERSION,
        id: command_id(),
        command,
    };
    match state.manager.execute(message).await {
        Ok(reply) => reply_json(ok, &reply),
        Err(r) => rejection(&r),
    }
}

fn reply_json(status: StatusCode, reply: &Reply) -> Response<Body> {
    match reply {
        Reply::Test { test } => json(status, &j!(test)),
        Reply::Deleted { test_id } => json(status, &j!({"id": test_id, "deleted": true})),
        Reply::RunStarted {
            run_id,
            test_id,
            agents,
        } => json(
            status,
            &j!({"id": run_id, "test_id": test_id, "agents": agents, "state": "launching"}),
        ),
        Reply::Stopping { run_id } => json(status, &j!({"id": run_id, "state": "stopping"})),
        Reply::Ramping {
            run_id,
            at_ms,
            ends_at_ms,
        } => json(
            status,
            &j!({"id": run_id, "ramp_at_ms": at_ms, "ends_at_ms": ends_at_ms}),
        ),
    }
}

async fn start(
    state: &ApiState,
    test_id: Option<String>,
    plan: Option<Value>,
    body: Value,
    query: &HashMap<String, String>,
) -> Response<Body> {
    let agents = match body.get("agents") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64().and_then(|a| u32::try_from(a).ok()) {
            Some(a) => Some(a),
            None => return field_error("agents", "must be a whole number"),
        },
    };
    let duration = match body.get("duration") {
        None | Some(Value::Null) => None,
        Some(Value::String(d)) => Some(d.clone()),
        Some(_) => return field_error("duration", "must be a duration such as \"30s\""),
    };
    let allow_concurrent = body
        .get("allow_concurrent")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let message = CommandMessage {
        version: PROTOCOL_VERSION,
        id: command_id(),
        command: Command::StartRun {
            test_id,
            plan,
            overrides: Overrides { agents, duration },
            allow_concurrent,
        },
    };
    let reply = match state.manager.execute(message).await {
        Ok(reply) => reply,
        Err(r) => return rejection(&r),
    };
    let Reply::RunStarted { run_id, .. } = &reply else {
        return reply_json(StatusCode::CREATED, &reply);
    };
    if query.get("wait").is_none_or(|w| w != "true") {
        return reply_json(StatusCode::CREATED, &reply);
    }
    let run = match RunId::new(run_id) {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    if let Some(watch) = state.manager.watch(run.clone()).await {
        wait(watch).await;
    }
    match state.store.get_summary(&run).await {
        Ok(Some(summary)) => {
            let status = match summary.status {
                Verdict::Passed => StatusCode::OK,
                Verdict::Failed => StatusCode::UNPROCESSABLE_ENTITY,
                Verdict::Error => StatusCode::INTERNAL_SERVER_ERROR,
            };
            json(status, &j!(summary))
        }
        Ok(None) => internal(format!("run {run} ended without a stored summary")),
        Err(e) => internal(e),
    }
}

async fn wait(mut watch: RunWatch) {
    while watch.done.borrow_and_update().is_none() {
        if watch.done.changed().await.is_err() {
            return;
        }
    }
}

async fn known_run(state: &ApiState, id: &str) -> Result<RunRecord, Response<Body>> {
    let run =
        RunId::new(id).map_err(|e| error(StatusCode::NOT_FOUND, "not_found", e.to_string()))?;
    match state.store.get_run(&run).await {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err(error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no run {id}"),
        )),
        Err(e) => Err(internal(e)),
    }
}

async fn get_run(state: &ApiState, id: &str) -> Response<Body> {
    let run = match RunId::new(id) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::NOT_FOUND, "not_found", e.to_string()),
    };
    let watch = state.manager.watch(run.clone()).await;
    let record = match state.store.get_run(&run).await {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let mut body = match (&record, &watch) {
        (Some(r), _) => run_json(r),
        // Active but not yet recorded by its actor.
        (None, Some(w)) => j!({"id": id, "test_id": w.test, "state": "launching"}),
        (None, None) => return error(StatusCode::NOT_FOUND, "not_found", format!("no run {id}")),
    };
    if let Some(w) = &watch {
        let v = w.view.borrow().clone();
        body["state"] = v.phase.as_str().into();
        body["live"] = j!({
            "elapsed_s": v.elapsed_s, "planned_s": v.planned_s, "agents_expected": v.agents_expected,
            "agents_ready": v.agents_ready, "agents_live": v.agents_live, "requests": v.requests,
            "errors": v.errors, "last_second": v.last_second,
        });
    }
    // The summary is stored a moment before the run's final state: while the run finalizes
    // it is not shown, so a summary always comes with the state it ended in.
    let ended = watch
        .as_ref()
        .is_none_or(|w| w.view.borrow().phase.is_ended());
    match state.store.get_summary(&run).await {
        Ok(Some(summary)) if ended => {
            body["thresholds"] = j!(summary.thresholds);
            body["summary"] = j!(summary);
        }
        Ok(_) => {}
        Err(e) => return internal(e),
    }
    json(StatusCode::OK, &body)
}
