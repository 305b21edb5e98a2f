//! End-to-end: `herd up`'s Prometheus `/metrics` during and after a real run.

use herd_e2e::service::metric;
use herd_e2e::service::{plan, Service};
use herd_e2e::CountingTarget;
use serde_json::json;
use std::time::{Duration, Instant};

#[test]
fn metrics_show_runs_agents_frames_and_lag_moving_during_a_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = CountingTarget::start();
    let s = Service::start(dir.path(), &[]);
    let op = s.token("operator");
    let before = s.metrics(&op);
    assert_eq!(metric(&before, "herd_runs{state=\"running\"}"), 0.0);
    assert_eq!(metric(&before, "herd_agents_connected"), 0.0);
    assert_eq!(
        metric(&before, "herd_frames_total{outcome=\"aggregated\"}"),
        0.0
    );

    let body = json!({"plan": plan("m", &target.url(), 2, 2, 3, &[])});
    let (status, run) = s.request("POST", "/api/v1/runs", Some(&op), Some(&body));
    assert_eq!(status, 201, "{run}");
    let run_id = run["id"].as_str().expect("run id").to_string();

    // While it runs: one running run, two agents connected, frames flowing.
    let deadline = Instant::now() + Duration::from_secs(15);
    let during = loop {
        let m = s.metrics(&op);
        if metric(&m, "herd_runs{state=\"running\"}") == 1.0
            && metric(&m, "herd_frames_total{outcome=\"aggregated\"}") > 0.0
        {
            break m;
        }
        assert!(Instant::now() < deadline, "never saw the run running:\n{m}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(metric(&during, "herd_agents_connected"), 2.0);

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, r) = s.request("GET", &format!("/api/v1/runs/{run_id}"), Some(&op), None);
        if r["state"] == "completed" {
            break;
        }
        assert!(Instant::now() < deadline, "run did not complete: {r}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let after = s.metrics(&op);
    assert_eq!(metric(&after, "herd_runs{state=\"running\"}"), 0.0);
    assert_eq!(
        metric(&after, "herd_runs_ended_total{state=\"completed\"}"),
        1.0
    );
    assert_eq!(metric(&after, "herd_agents_connected"), 0.0);
    // 2 agents × at least 3 seconds of frames; each emitted second observed once for lag.
    assert!(metric(&after, "herd_frames_total{outcome=\"aggregated\"}") >= 6.0);
    let lagged = metric(&after, "herd_frame_lag_seconds_count");
    assert!(lagged >= 3.0, "{after}");
    assert!(metric(&after, "herd_frame_lag_seconds_bucket{le=\"+Inf\"}") == lagged);
    assert!(metric(&after, "herd_commands_total{outcome=\"done\"}") >= 1.0);
}
