//! The OpenAPI 3.1 document served at `/openapi.json`: the routes, their parameters and their
//! responses. Kept beside the router so a route added there is added here in the same change.

use serde_json::{json, Value};

fn op(summary: &str, role: &str, responses: &[(&str, &str)]) -> Value {
    let mut r = serde_json::Map::new();
    for (code, description) in responses {
        r.insert((*code).into(), json!({"description": description}));
    }
    r.insert("401".into(), json!({"description": "no or unknown credential", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}));
    if role == "operator" {
        r.insert(
            "403".into(),
            json!({"description": "the credential is a viewer"}),
        );
    }
    json!({"summary": summary, "x-herd-role": role, "responses": r})
}

/// The document.
pub fn document() -> Value {
    let id = |name: &str| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}});
    let mut live = op("Server-Sent Events: `second` per aggregated second (`id:` its t), then `end`; first the stored seconds after `Last-Event-ID` (all without it), marked `replayed`", "viewer", &[("200", "text/event-stream"), ("404", "unknown"), ("409", "not active")]);
    live["parameters"] =
        json!([{"name": "Last-Event-ID", "in": "header", "schema": {"type": "integer"}}]);
    json!({
        "openapi": "3.1.0",
        "info": {"title": "herd coordinator API", "version": "1"},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "an API token from `herd token create`, or a Cognito JWT"}},
            "schemas": {
                "Error": {"type": "object", "required": ["code", "message"], "properties": {
                    "code": {"type": "string", "enum": ["invalid", "not_found", "conflict", "capacity", "internal", "unavailable", "unauthenticated", "forbidden"]},
                    "message": {"type": "string"}, "field": {"type": "string"}, "errors": {"type": "array", "items": {"type": "string"}}}},
                "TestInput": {"type": "object", "required": ["name", "plan"], "properties": {
                    "id": {"type": "string"}, "name": {"type": "string"}, "plan": {"type": "object"},
                    "tags": {"type": "array", "items": {"type": "string"}}, "schedule": {"type": "object"}}},
                "RunInput": {"type": "object", "properties": {
                    "agents": {"type": "integer"}, "duration": {"type": "string"}, "allow_concurrent": {"type": "boolean"}, "plan": {"type": "object"}}}
            }
        },
        "security": [{"bearer": []}],
        "paths": {
            "/healthz": {"get": {"summary": "liveness", "security": [], "responses": {"200": {"description": "alive"}}}},
            "/readyz": {"get": {"summary": "readiness", "security": [], "responses": {"200": {"description": "ready"}, "503": {"description": "shutting down"}}}},
            "/metrics": {"get": op("Prometheus metrics", "viewer", &[("200", "text exposition format")])},
            "/": {"get": {"summary": "the console (web UI); also at /login, /tests, /tests/{id}, /runs, /runs/{id} (history-API routing) and its files at /assets/…; gzip when accepted, ETag", "security": [], "responses": {"200": {"description": "text/html"}, "304": {"description": "not modified (If-None-Match)"}}}},
            "/api/v1/regions": {"get": op("the regions a plan's `regions:` may name: {regions: [NAME…] | null (any name: local agents take them as labels)}", "viewer", &[("200", "the configured regions")])},
            "/api/v1/auth/config": {"get": {"summary": "how a browser signs in: {cognito: {domain, client_id, scopes} | null}", "security": [], "responses": {"200": {"description": "the sign-in settings"}}}},
            "/api/v1/whoami": {"get": op("the credential's {role, subject}", "viewer", &[("200", "who")])},
            "/api/v1/audit": {"get": op("the audit log of writes, newest first (?limit=)", "operator", &[("200", "{entries: [{id, at_ms, actor, action, status}]}"), ("403", "viewer")])},
            "/api/v1/tests": {
                "post": op("create a test", "operator", &[("201", "the test"), ("400", "invalid body; `field` names it"), ("409", "id taken")]),
                "get": {"parameters": [{"name": "tag", "in": "query", "schema": {"type": "string"}}], "summary": "list tests", "responses": {"200": {"description": "{tests}"}}}
            },
            "/api/v1/tests/{id}": {
                "parameters": [id("id")],
                "get": op("a test", "viewer", &[("200", "the test"), ("404", "unknown")]),
                "put": op("replace a test", "operator", &[("200", "the test"), ("400", "invalid"), ("404", "unknown")]),
                "delete": op("delete a test", "operator", &[("200", "deleted"), ("404", "unknown"), ("409", "a run is active")])
            },
            "/api/v1/tests/{id}/runs": {
                "parameters": [id("id")],
                "post": {"summary": "run a test (optionally wait for its end)", "parameters": [{"name": "wait", "in": "query", "schema": {"type": "boolean"}}],
                    "responses": {"201": {"description": "the run"}, "200": {"description": "wait: passed, the summary"}, "422": {"description": "wait: a threshold failed, the summary"},
                        "500": {"description": "wait: the run did not complete, the summary"}, "404": {"description": "unknown test"}, "409": {"description": "a run of the test is active"}, "429": {"description": "agent cap reached"}}},
                "get": {"summary": "runs of a test, newest first", "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer"}}, {"name": "offset", "in": "query", "schema": {"type": "integer"}}], "responses": {"200": {"description": "{runs, limit, offset}"}}}
            },
            "/api/v1/tests/{id}/baseline": {"parameters": [id("id")], "put": op("set the baseline run ({run_id})", "operator", &[("200", "the test"), ("404", "unknown"), ("400", "not a run of this test")])},
            "/api/v1/import": {"post": op("convert a JMeter, Taurus, HAR or DLT file (the body) into a plan: {format, plan (YAML), report, schedule}; query: target, vus, ramp, hold, agents, include_static, set.NAME", "operator", &[("200", "plan and report"), ("400", "not a file herd can import, or no request in it"), ("413", "over 16 MiB")])},
            "/api/v1/runs": {
                "post": op("run an inline plan ({plan, agents?, duration?}; ?wait=true)", "operator", &[("201", "the run"), ("400", "invalid plan")]),
                "get": {"summary": "every run, newest first (state filter over the newest 5,000)", "parameters": [
                    {"name": "test", "in": "query", "schema": {"type": "string"}},
                    {"name": "state", "in": "query", "schema": {"type": "string", "description": "a run state, or `active` (not ended)"}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 500}},
                    {"name": "offset", "in": "query", "schema": {"type": "integer"}}],
                    "responses": {"200": {"description": "{runs, limit, offset, more}"}, "400": {"description": "a bad filter; `field` names it"}}}
            },
            "/api/v1/runs/{id}": {"parameters": [id("id")], "get": op("a run: state, live view, summary, thresholds", "viewer", &[("200", "the run"), ("404", "unknown")])},
            "/api/v1/runs/{id}/stop": {"parameters": [id("id")], "post": op("stop a run", "operator", &[("202", "stopping"), ("404", "unknown"), ("409", "not active")])},
            "/api/v1/runs/{id}/ramp": {"parameters": [id("id")], "post": op("give a running load new stages ({stages: [{duration, vus}] or [{duration, rps}]})", "operator", &[("202", "ramping: ramp_at_ms, ends_at_ms"), ("400", "stages invalid or of the other model"), ("404", "unknown"), ("409", "not running")])},
            "/api/v1/runs/{id}/seconds": {"parameters": [id("id")], "get": op("per-second aggregates", "viewer", &[("200", "{seconds}"), ("404", "unknown")])},
            "/api/v1/runs/{id}/live": {"parameters": [id("id")], "get": live},
            "/api/v1/runs/{id}/compare": {"parameters": [id("id")], "get": op("compare with the test's baseline", "viewer", &[("200", "metrics, regressions, verdict"), ("404", "unknown"), ("409", "no baseline")])},
            "/api/v1/schedules/preview": {"post": op("the next fires of a schedule, computed as the scheduler will ({schedule, count?, from_ms?}); stores nothing", "operator", &[("200", "{from_ms, next_fires_ms}"), ("400", "schedule invalid, naming its field")])},
            "/api/v1/runs/{id}/report.html": {"parameters": [id("id")], "get": op("the run's single-file HTML report (inline charts and data; opens offline)", "viewer", &[("200", "text/html"), ("404", "unknown"), ("409", "not ended")])}
        }
    })
}
