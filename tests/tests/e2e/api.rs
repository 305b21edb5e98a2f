//! End-to-end: `herd up` driven only through its HTTP API, with real agent processes against
//! counting targets.

use herd_e2e::service::{plan, Service};
use herd_e2e::CountingTarget;
use serde_json::{json, Value};
use std::io::BufRead;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

fn create(s: &Service, token: &str, id: &str, plan: Value) -> Value {
    let (status, body) = s.request(
        "POST",
        "/api/v1/tests",
        Some(token),
        Some(&json!({"id": id, "name": id, "plan": plan, "tags": ["e2e"]})),
    );
    assert_eq!(status, 201, "{body}");
    body
}

#[test]
fn create_run_wait_gives_the_summary_with_exact_counts_and_a_status_from_thresholds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = CountingTarget::start();
    let s = Service::start(dir.path(), &[]);
    let op = s.token("operator");
    create(
        &s,
        &op,
        "pass",
        plan("pass", &target.url(), 2, 4, 2, &["p99 < 5s"]),
    );
    let (status, summary) = s.request("POST", "/api/v1/tests/pass/runs?wait=true", Some(&op), None);
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["status"], "passed");
    let requests = summary["requests"].as_u64().expect("requests");
    assert!(requests > 10);
    assert_eq!(
        requests,
        target.received().total,
        "herd's count is the target's"
    );

    let run_id = summary["run_id"].as_str().expect("run id").to_string();
    let (status, run) = s.request("GET", &format!("/api/v1/runs/{run_id}"), Some(&op), None);
    assert_eq!(status, 200);
    assert_eq!(
        (run["state"].as_str(), run["test_id"].as_str()),
        (Some("completed"), Some("pass"))
    );
    let (_, seconds) = s.request(
        "GET",
        &format!("/api/v1/runs/{run_id}/seconds"),
        Some(&op),
        None,
    );
    let sum: u64 = seconds["seconds"]
        .as_array()
        .expect("seconds")
        .iter()
        .map(|x| x["requests"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(sum, requests);

    let before = target.received().total;
    create(
        &s,
        &op,
        "fail",
        plan("fail", &target.url(), 1, 2, 1, &["requests > 1000000"]),
    );
    let (status, summary) = s.request("POST", "/api/v1/tests/fail/runs?wait=true", Some(&op), None);
    assert_eq!(status, 422, "{summary}");
    assert_eq!(summary["status"], "failed");
    assert_eq!(
        summary["requests"].as_u64(),
        Some(target.received().total - before)
    );

    // Baseline and comparison; the runs of a test, paged.
    let (status, _) = s.request(
        "PUT",
        "/api/v1/tests/pass/baseline",
        Some(&op),
        Some(&json!({"run_id": run_id})),
    );
    assert_eq!(status, 200);
    let (status, cmp) = s.request(
        "GET",
        &format!("/api/v1/runs/{run_id}/compare"),
        Some(&op),
        None,
    );
    assert_eq!(status, 200, "{cmp}");
    assert_eq!(cmp["verdict"], "pass");
    let (_, runs) = s.request("GET", "/api/v1/tests/pass/runs?limit=5", Some(&op), None);
    assert_eq!(runs["runs"].as_array().map(Vec::len), Some(1));
    assert_eq!(s.stop(Duration::from_secs(20)).code(), Some(0));
}

#[test]
fn three_runs_of_different_tests_at_once_keep_their_own_counts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Service::start(dir.path(), &[]);
    let op = s.token("operator");
    let targets: Vec<CountingTarget> = (0..3).map(|_| CountingTarget::start()).collect();
    let mut runs = Vec::new();
    for (i, target) in targets.iter().enumerate() {
        let id = format!("t{i}");
        create(
            &s,
            &op,
            &id,
            plan(&id, &target.url(), 1, 2 + i as u32, 3, &[]),
        );
        let (status, run) = s.request("POST", &format!("/api/v1/tests/{id}/runs"), Some(&op), None);
        assert_eq!(status, 201, "{run}");
        runs.push(run["id"].as_str().expect("id").to_string());
    }
    // A second run of a test with an active run is refused unless asked for.
    let (status, body) = s.request("POST", "/api/v1/tests/t0/runs", Some(&op), None);
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("conflict")),
        "{body}"
    );
    for (run, target) in runs.iter().zip(&targets) {
        let summary = loop {
            let (_, r) = s.request("GET", &format!("/api/v1/runs/{run}"), Some(&op), None);
            if !r["summary"].is_null() {
                break r["summary"].clone();
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        assert_eq!(summary["run_state"], "completed");
        assert_eq!(summary["requests"].as_u64(), Some(target.received().total));
        let (_, seconds) = s.request(
            "GET",
            &format!("/api/v1/runs/{run}/seconds"),
            Some(&op),
            None,
        );
        let sum: u64 = seconds["seconds"]
            .as_array()
            .expect("seconds")
            .iter()
            .map(|x| x["requests"].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(sum, target.received().total, "no cross-talk between series");
    }
}

#[test]
fn the_agent_cap_refuses_a_run_that_would_exceed_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Service::start(dir.path(), &["--max-agents", "2"]);
    let op = s.token("operator");
    let (status, body) = s.request(
        "POST",
        "/api/v1/runs",
        Some(&op),
        Some(&json!({"plan": plan("big", "http://127.0.0.1:9", 3, 3, 1, &[])})),
    );
    assert_eq!(
        (status, body["code"].as_str()),
        (429, Some("capacity")),
        "{body}"
    );
    assert!(body["message"]
        .as_str()
        .unwrap_or("")
        .contains("needs 3 agents"));
}

#[test]
fn credentials_and_roles_are_enforced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Service::start(dir.path(), &[]);
    let viewer = s.token("viewer");
    let body = json!({"name": "x", "plan": plan("x", "http://127.0.0.1:9", 1, 1, 1, &[])});
    assert_eq!(s.request("GET", "/healthz", None, None).0, 200);
    assert_eq!(s.request("GET", "/readyz", None, None).0, 200);
    for path in ["/api/v1/tests", "/metrics", "/openapi.json"] {
        let (status, b) = s.request("GET", path, None, None);
        assert_eq!(
            (status, b["code"].as_str()),
            (401, Some("unauthenticated")),
            "{path}"
        );
        assert_eq!(
            s.request("GET", path, Some("herd_wrong"), None).0,
            401,
            "{path}"
        );
    }
    assert_eq!(
        s.request("GET", "/api/v1/tests", Some(&viewer), None).0,
        200
    );
    let (status, b) = s.request("POST", "/api/v1/tests", Some(&viewer), Some(&body));
    assert_eq!((status, b["code"].as_str()), (403, Some("forbidden")));
    let (status, doc) = s.request("GET", "/openapi.json", Some(&viewer), None);
    assert_eq!((status, doc["openapi"].as_str()), (200, Some("3.1.0")));
    // A JWT is refused when no JWKS is configured.
    assert_eq!(
        s.request("GET", "/api/v1/tests", Some("a.b.c"), None).0,
        401
    );
}

#[test]
fn every_route_names_its_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = CountingTarget::start();
    let s = Service::start(dir.path(), &[]);
    let op = s.token("operator");
    let code = |(status, body): (u16, Value)| {
        (
            status,
            body["code"].as_str().unwrap_or("").to_string(),
            body["field"].as_str().unwrap_or("").to_string(),
        )
    };
    for (method, path) in [
        ("GET", "/api/v1/tests/nope"),
        ("DELETE", "/api/v1/tests/nope"),
        ("POST", "/api/v1/tests/nope/runs"),
        ("GET", "/api/v1/tests/nope/runs"),
        ("GET", "/api/v1/runs/nope"),
        ("POST", "/api/v1/runs/nope/stop"),
        ("GET", "/api/v1/runs/nope/seconds"),
        ("GET", "/api/v1/runs/nope/live"),
        ("GET", "/api/v1/runs/nope/compare"),
        ("GET", "/api/v1/nothing"),
    ] {
        assert_eq!(
            code(s.request(method, path, Some(&op), None)).0,
            404,
            "{method} {path}"
        );
    }
    let put = s.request(
        "PUT",
        "/api/v1/tests/nope",
        Some(&op),
        Some(&json!({"name": "n", "plan": plan("n", &target.url(), 1, 1, 1, &[])})),
    );
    assert_eq!(code(put).0, 404);
    // Invalid bodies name the field.
    let bad_plan = json!({"name": "x", "plan": {"version": 1, "name": "x", "target": target.url(), "load": {"stages": [{"duration": "1s", "vus": 0}]}, "scenario": [{"get": "/ok"}]}});
    assert_eq!(
        code(s.request("POST", "/api/v1/tests", Some(&op), Some(&bad_plan))),
        (400, "invalid".into(), "plan.load.stages".into())
    );
    assert_eq!(
        code(s.request(
            "POST",
            "/api/v1/tests",
            Some(&op),
            Some(&json!({"name": "x"}))
        ))
        .2,
        "plan"
    );
    assert_eq!(
        code(s.request("POST", "/api/v1/runs", Some(&op), Some(&json!({})))).2,
        "plan"
    );
    let bad_schedule = json!({"name": "x", "plan": plan("x", &target.url(), 1, 1, 1, &[]), "schedule": {"kind": "cron", "expr": "* *", "tz": "UTC"}});
    assert_eq!(
        code(s.request("POST", "/api/v1/tests", Some(&op), Some(&bad_schedule))).2,
        "schedule.expr"
    );
    // Deleting a test with an active run is refused; stopping it cancels the run.
    create(&s, &op, "busy", plan("busy", &target.url(), 1, 2, 20, &[]));
    let (_, run) = s.request(
        "POST",
        "/api/v1/tests/busy/runs",
        Some(&op),
        Some(&json!({"duration": "20s"})),
    );
    let run = run["id"].as_str().expect("run id").to_string();
    assert_eq!(
        code(s.request("DELETE", "/api/v1/tests/busy", Some(&op), None)).0,
        409
    );
    let (_, cmp) = s.request(
        "GET",
        &format!("/api/v1/runs/{run}/compare"),
        Some(&op),
        None,
    );
    assert_eq!(cmp["code"], "conflict");
    assert_eq!(
        s.request("POST", &format!("/api/v1/runs/{run}/stop"), Some(&op), None)
            .0,
        202
    );
    let state = loop {
        let (_, r) = s.request("GET", &format!("/api/v1/runs/{run}"), Some(&op), None);
        if !r["summary"].is_null() {
            break r["state"].clone();
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(state, "cancelled");
    assert_eq!(
        code(s.request("POST", &format!("/api/v1/runs/{run}/stop"), Some(&op), None)).0,
        409
    );
    assert_eq!(
        code(s.request("DELETE", "/api/v1/tests/busy", Some(&op), None)).0,
        200
    );
}

#[test]
fn sse_delivers_each_second_within_1500ms_of_its_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = CountingTarget::start();
    let s = Service::start(dir.path(), &[]);
    let op = s.token("operator");
    create(&s, &op, "live", plan("live", &target.url(), 2, 4, 4, &[]));
    let (_, run) = s.request("POST", "/api/v1/tests/live/runs", Some(&op), None);
    let run = run["id"].as_str().expect("run id").to_string();
    let mut reader = s.sse(&format!("/api/v1/runs/{run}/live"), &op);
    let mut seconds = Vec::new();
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap_or(0) > 0 {
        let received = now_ms();
        if let Some(data) = line.trim().strip_prefix("data: ") {
            let v: Value = serde_json::from_str(data).expect("json data");
            if v.get("status").is_some() {
                break;
            }
            if v["replayed"] == true {
                line.clear();
                continue; // stored before the connection: its delay says nothing
            }
            seconds.push((
                v["second"]["t"].as_u64().expect("t"),
                v["second_end_ms"].as_u64().expect("end"),
                received,
            ));
        }
        line.clear();
    }
    assert!(seconds.len() >= 3, "{seconds:?}");
    // The last second ends with the load, not on a boundary: check the full ones.
    for (t, end, received) in &seconds[..seconds.len() - 1] {
        assert!(
            received.saturating_sub(*end) <= 1500,
            "second {t} arrived {} ms after its end",
            received - end
        );
    }
}

#[test]
fn schedules_fire_on_time_and_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = CountingTarget::start();
    let s = Service::start(dir.path(), &[]);
    let op = s.token("operator");
    // Cron: the next fire is shown, on the next minute boundary.
    let cron = json!({"id": "cron", "name": "cron", "plan": plan("c", &target.url(), 1, 1, 1, &[]), "schedule": {"kind": "cron", "expr": "* * * * *", "tz": "Europe/Paris"}});
    let (status, test) = s.request("POST", "/api/v1/tests", Some(&op), Some(&cron));
    assert_eq!(status, 201, "{test}");
    let next = test["next_fire_ms"].as_u64().expect("next fire shown");
    assert_eq!(next % 60_000, 0);
    assert!(next > now_ms() && next <= now_ms() + 60_000);
    let (status, _) = s.request("DELETE", "/api/v1/tests/cron", Some(&op), None);
    assert_eq!(status, 200);
    // One-time, 4 s ahead; the service restarts before it is due.
    let at = now_ms() + 4_000;
    let at_text = rfc3339(at);
    let body = json!({"id": "once", "name": "once", "plan": plan("o", &target.url(), 1, 1, 1, &[]), "schedule": {"kind": "at", "at": at_text}});
    assert_eq!(
        s.request("POST", "/api/v1/tests", Some(&op), Some(&body)).0,
        201
    );
    assert_eq!(s.stop(Duration::from_secs(20)).code(), Some(0));
    let s = Service::start(dir.path(), &[]);
    let runs = loop {
        let (_, runs) = s.request("GET", "/api/v1/tests/once/runs", Some(&op), None);
        let runs = runs["runs"].as_array().cloned().unwrap_or_default();
        if !runs.is_empty() {
            break runs;
        }
        assert!(now_ms() < at + 10_000, "the schedule did not fire");
        std::thread::sleep(Duration::from_millis(100));
    };
    let created = runs[0]["created_at_ms"].as_u64().expect("created");
    assert!(
        created >= at && created <= at + 1_500,
        "fired {} ms after its time",
        created.saturating_sub(at)
    );
    let (_, test) = s.request("GET", "/api/v1/tests/once", Some(&op), None);
    assert!(
        test["next_fire_ms"].is_null(),
        "a one-time schedule fires once"
    );
}

/// `ms` since the epoch as an RFC 3339 UTC time with milliseconds, without a date library.
fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}
