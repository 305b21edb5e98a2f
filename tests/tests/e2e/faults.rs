//! End-to-end faults: real processes broken on purpose mid-run, with exact counts afterwards.
//!
//! - the external broker (Mosquitto, persisting sessions) SIGKILLed mid-run and restarted on the
//!   same port 5 s later:
//!   agents and coordinator reconnect, the frames agents buffered meanwhile are delivered, and the
//!   run's total is the target's own count (nothing lost, nothing doubled).
//! - the same with a broker that forgets sessions: the coordinator subscribes again, and frames
//!   that went to nobody meanwhile are reported, not hidden.
//!
//! (Agents frozen with SIGSTOP are covered in `many.rs`; a coordinator killed mid-run in
//! `resume.rs`.)

use herd_e2e::aws::Mosquitto;
use herd_e2e::service::{free_port, plan, Service};
use herd_e2e::CountingTarget;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

fn run_body(s: &Service, token: &str, run: &str) -> Value {
    let (status, body) = s.request("GET", &format!("/api/v1/runs/{run}"), Some(token), None);
    assert_eq!(status, 200, "{body}");
    body
}

/// Waits for `run` to reach a terminal state with its summary, within `limit`.
fn ended(s: &Service, token: &str, run: &str, limit: Duration) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let body = run_body(s, token, run);
        if matches!(
            body["state"].as_str(),
            Some("completed" | "degraded" | "failed" | "cancelled")
        ) && body.get("summary").is_some()
        {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "the run did not end: {body}\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A Mosquitto configuration that keeps sessions across a restart, even a SIGKILL: persistence
/// saved every second. The coordinator's durable session (its subscriptions, and what agents
/// publish for it while it reconnects) must outlive the broker, or frames that agents resend
/// before the coordinator has subscribed again go to nobody (herd then reports them as never
/// delivered; README "External broker").
fn mosquitto_conf(dir: &Path, port: u16, persistent: bool) -> std::path::PathBuf {
    let conf = dir.join("mosquitto.conf");
    let persistence = if persistent {
        format!(
            "persistence true\npersistence_location {}/\nautosave_interval 1\n",
            dir.display()
        )
    } else {
        "persistence false\n".to_string()
    };
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\nuser root\n{persistence}"),
    )
    .expect("write mosquitto.conf");
    conf
}

/// What a run through a broker restart ended with.
struct Outcome {
    /// The run's record, with its summary.
    body: Value,
    /// What the target received in all.
    received: u64,
    /// What the coordinator had counted live when the broker died.
    counted_before: u64,
    /// The stored seconds' requests, summed.
    stored: u64,
}

/// A 16 s run of 3 agents through a broker SIGKILLed 2 s into the load and started again on the
/// same port 5 s later.
fn through_a_broker_restart(persistent: bool) -> Outcome {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let conf = mosquitto_conf(dir.path(), port, persistent);
    let mut broker = Mosquitto::spawn(&conf, &[port]);
    let config = dir.path().join("herd.toml");
    std::fs::write(
        &config,
        format!("[broker]\nurl = \"mqtt://127.0.0.1:{port}\"\n"),
    )
    .expect("write herd.toml");
    let target = CountingTarget::start();
    let service = Service::start(
        &dir.path().join("data"),
        &["--config", config.to_str().expect("utf-8 path")],
    );
    let op = service.token("operator");
    let (status, reply) = service.request(
        "POST",
        "/api/v1/runs",
        Some(&op),
        Some(&json!({"plan": plan("broker-fault", &target.url(), 3, 6, 16, &[])})),
    );
    assert!((200..=202).contains(&status), "{status} {reply}");
    let run = reply["id"].as_str().expect("run id").to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body = run_body(&service, &op, &run);
        if body["state"] == "running" && body["live"]["requests"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the run never got going: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    let counted_before = run_body(&service, &op, &run)["live"]["requests"]
        .as_u64()
        .unwrap_or(0);
    broker.kill().expect("SIGKILL mosquitto");
    let _ = broker.wait();
    let before_outage = target.received().total;
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        target.received().total > before_outage,
        "the agents go on loading the target while the broker is away"
    );
    let mut broker = Mosquitto::spawn(&conf, &[port]);

    let body = ended(&service, &op, &run, Duration::from_secs(90));
    let stored = service.stored_requests(&op, &run);
    assert_eq!(service.stop(Duration::from_secs(20)).code(), Some(0));
    let _ = broker.kill();
    let _ = broker.wait();
    Outcome {
        body,
        received: target.received().total,
        counted_before,
        stored,
    }
}

fn requests(summary: &Value) -> u64 {
    summary["requests"].as_u64().expect("requests")
}

fn per_agent(summary: &Value) -> u64 {
    summary["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .map(|a| a["requests"].as_u64().unwrap_or(0))
        .sum()
}

#[test]
fn a_broker_killed_mid_run_and_back_after_5s_loses_and_doubles_nothing() {
    let o = through_a_broker_restart(true);
    let summary = &o.body["summary"];
    assert_eq!(
        requests(summary),
        o.received,
        "herd's count is the target's across the outage: {summary}"
    );
    assert_eq!(per_agent(summary), o.received, "{summary}");
    assert_eq!(
        o.stored, o.received,
        "the stored seconds add up to the total"
    );
    assert_eq!(o.body["state"], "completed", "{}", o.body);
}

/// A broker that forgets sessions when it restarts (no persistence) also forgets the
/// coordinator's subscriptions: the coordinator subscribes again, so the run hears its agents
/// after the restart, and what agents resent before that went to nobody is reported as never
/// delivered, never passed off as the whole count.
#[test]
fn a_broker_that_forgets_sessions_is_subscribed_again_and_gaps_are_reported() {
    let o = through_a_broker_restart(false);
    let summary = &o.body["summary"];
    let counted = requests(summary);
    assert_eq!(per_agent(summary), counted, "{summary}");
    assert_eq!(o.stored, counted, "the stored seconds add up to the total");
    assert!(
        summary["lost_agents"].as_array().is_some_and(Vec::is_empty),
        "the agents are heard again after the restart: {summary}"
    );
    assert!(
        counted > o.counted_before,
        "frames after the restart are counted ({counted} > {})",
        o.counted_before
    );
    assert!(counted <= o.received, "nothing doubled: {summary}");
    if counted < o.received {
        let reason = summary["reason"].as_str().unwrap_or("");
        assert!(
            reason.contains("never delivered"),
            "a shortfall is said: {summary}"
        );
    }
}
