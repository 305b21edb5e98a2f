//! End-to-end: `herd up`'s Prometheus `/metrics` during and after a real run.

use herd_e2e::service::{plan, Service};
use herd_e2e::CountingTarget;
use serde_json::json;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// `/metrics` as text (it is not JSON, so the JSON helper cannot read it).
fn metrics(s: &Service, token: &str) -> String {
    let mut stream = std::net::TcpStream::connect(s.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    text
}

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

#[test]
fn metrics_show_runs_agents_frames_and_lag_moving_during_a_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = CountingTarget::start();
    let s = Service::start(dir.path(), &[]);
    let op = s.token("operator");
    let before = metrics(&s, &op);
    assert_eq!(value(&before, "herd_runs{state=\"running\"}"), 0.0);
    assert_eq!(value(&before, "herd_agents_connected"), 0.0);
    assert_eq!(
        value(&before, "herd_frames_total{outcome=\"aggregated\"}"),
        0.0
    );

    let body = json!({"plan": plan("m", &target.url(), 2, 2, 3, &[])});
    let (status, run) = s.request("POST", "/api/v1/runs", Some(&op), Some(&body));
    assert_eq!(status, 201, "{run}");
    let run_id = run["id"].as_str().expect("run id").to_string();

    // While it runs: one running run, two agents connected, frames flowing.
    let deadline = Instant::now() + Duration::from_secs(15);
    let during = loop {
        let m = metrics(&s, &op);
        if value(&m, "herd_runs{state=\"running\"}") == 1.0
            && value(&m, "herd_frames_total{outcome=\"aggregated\"}") > 0.0
        {
            break m;
        }
        assert!(Instant::now() < deadline, "never saw the run running:\n{m}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(value(&during, "herd_agents_connected"), 2.0);

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, r) = s.request("GET", &format!("/api/v1/runs/{run_id}"), Some(&op), None);
        if r["state"] == "completed" {
            break;
        }
        assert!(Instant::now() < deadline, "run did not complete: {r}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let after = metrics(&s, &op);
    assert_eq!(value(&after, "herd_runs{state=\"running\"}"), 0.0);
    assert_eq!(
        value(&after, "herd_runs_ended_total{state=\"completed\"}"),
        1.0
    );
    assert_eq!(value(&after, "herd_agents_connected"), 0.0);
    // 2 agents × at least 3 seconds of frames; each emitted second observed once for lag.
    assert!(value(&after, "herd_frames_total{outcome=\"aggregated\"}") >= 6.0);
    let lagged = value(&after, "herd_frame_lag_seconds_count");
    assert!(lagged >= 3.0, "{after}");
    assert!(value(&after, "herd_frame_lag_seconds_bucket{le=\"+Inf\"}") == lagged);
    assert!(value(&after, "herd_commands_total{outcome=\"done\"}") >= 1.0);
}
