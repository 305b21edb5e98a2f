//! End-to-end: a live ramp through the API. A running closed-model run gets new stages; every
//! agent switches at one instant, the load rises, the run lasts as long as the ramp says, and
//! herd's count is still the target's. Ramps of the wrong model, malformed stages and ramps of
//! an ended run are refused by name.

use herd_e2e::service::Service;
use herd_e2e::CountingTarget;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn wait_for(s: &Service, token: &str, run: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = s.request("GET", &format!("/api/v1/runs/{run}"), Some(token), None);
        assert_eq!(status, 200, "{body}");
        if done(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "waited too long: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_live_ramp_raises_the_load_on_every_agent_and_the_count_stays_exact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = CountingTarget::start();
    let s = Service::start(&dir.path().join("data"), &[]);
    let op = s.token("operator");
    let plan = json!({
        "version": 1, "name": "ramped", "target": target.url(), "agents": 2,
        "load": {"stages": [{"duration": "3s", "vus": 2}]},
        "scenario": [{"get": "/ok"}, {"think": "20ms"}],
    });
    let (status, reply) = s.request(
        "POST",
        "/api/v1/runs",
        Some(&op),
        Some(&json!({"plan": plan})),
    );
    assert_eq!(status, 201, "{reply}");
    let run = reply["id"].as_str().expect("run id").to_string();
    wait_for(&s, &op, &run, |b| {
        b["state"] == "running" && b["live"]["requests"].as_u64().unwrap_or(0) > 0
    });

    let ramp = format!("/api/v1/runs/{run}/ramp");
    // Stages of the other model, and malformed ones, are refused with the field named.
    let (status, body) = s.request(
        "POST",
        &ramp,
        Some(&op),
        Some(&json!({"stages": [{"duration": "1s", "rps": 50}]})),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("virtual users"), "{body}");
    let (status, body) = s.request(
        "POST",
        &ramp,
        Some(&op),
        Some(&json!({"stages": [{"duration": "soon", "vus": 6}]})),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("stages[0].duration"), "{body}");

    // 2 VUs → 8 VUs over 1 s, held for 3 s: the run now ends about 4.5 s from here, later
    // than its plan's 3 s.
    let (status, body) = s.request(
        "POST",
        &ramp,
        Some(&op),
        Some(&json!({"stages": [{"duration": "1s", "vus": 8}, {"duration": "3s", "vus": 8}]})),
    );
    assert_eq!(status, 202, "{body}");
    let at_ms = body["ramp_at_ms"].as_u64().expect("ramp_at_ms");
    let ends_at_ms = body["ends_at_ms"].as_u64().expect("ends_at_ms");
    assert_eq!(ends_at_ms - at_ms, 4000);

    let done = wait_for(&s, &op, &run, |b| b.get("summary").is_some());
    assert_eq!(done["state"], "completed", "{done}");
    let summary = &done["summary"];
    let requests = summary["requests"].as_u64().expect("requests");
    assert_eq!(
        requests,
        target.received().total,
        "herd's count is the target's"
    );
    let seconds: Vec<u64> = summary["seconds"]
        .as_array()
        .expect("seconds")
        .iter()
        .map(|s| s["requests"].as_u64().unwrap_or(0))
        .collect();
    // The plan said 3 s; the ramp began after the first requests and lasted 4 s.
    let duration_s = summary["duration_s"].as_f64().expect("duration_s");
    assert!(
        duration_s >= 4.0 && seconds.len() >= 4,
        "the run lasted as the ramp said: {duration_s} s, {seconds:?}"
    );
    let first = seconds.first().copied().unwrap_or(0);
    let peak = seconds.iter().copied().max().unwrap_or(0);
    assert!(peak >= 3 * first, "8 VUs load far more than 2: {seconds:?}");

    // The run is over: a ramp now is a conflict.
    let (status, body) = s.request(
        "POST",
        &ramp,
        Some(&op),
        Some(&json!({"stages": [{"duration": "1s", "vus": 1}]})),
    );
    assert_eq!(status, 409, "{body}");
}
