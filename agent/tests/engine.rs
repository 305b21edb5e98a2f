//! The engine against a real HTTP server: every count herd reports must equal what the server
//! received, each request in exactly one frame, frames without gaps.

mod common;

use common::{plan_json, Target};
use herd_agent::engine::{run_load, Control, LoadIo, LoadReport, LoadSpec};
use herd_agent::recorder::FrameIdentity;
use herd_protocol::clock::Clock;
use herd_protocol::frame::Frame;
use herd_protocol::plan::{self, Plan};
use herd_protocol::{AgentId, RunId};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

fn spec(plan: Plan, count: u32, index: u32) -> LoadSpec {
    LoadSpec {
        plan,
        agent_count: count,
        agent_index: index,
        start: Instant::now(),
        clock: Clock::new(),
        identity: FrameIdentity {
            run: RunId::new("run-1").expect("valid"),
            agent: AgentId::numbered(index),
        },
        joins_later: false,
    }
}

/// Runs the load, optionally sending `stop_after` a stop; returns the report and the frames.
async fn run(spec: LoadSpec, stop: Option<(Duration, Duration)>) -> (LoadReport, Vec<Frame>) {
    let (control, control_rx) = mpsc::unbounded_channel();
    let (frames_tx, mut frames_rx) = mpsc::unbounded_channel();
    let io = LoadIo {
        control: control_rx,
        frames: frames_tx,
        vus: Rc::new(Cell::new(0)),
    };
    if let Some((after, graceful)) = stop {
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = control.send(Control::Stop { graceful });
        });
    }
    let report = run_load(spec, io).await.expect("load runs");
    let mut frames = Vec::new();
    while let Ok(frame) = frames_rx.try_recv() {
        frames.push(frame);
    }
    (report, frames)
}

/// Frames are numbered from 0 without gaps, one per consecutive second, only the last final.
fn check_sequence(frames: &[Frame], report: &LoadReport) {
    assert_eq!(frames.len() as u64, report.frames);
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(f.seq, i as u64);
        assert_eq!(f.second, frames[0].second + i as u64);
        assert_eq!(f.is_final, i + 1 == frames.len());
    }
    let total: u64 = frames.iter().map(|f| f.total.requests).sum();
    assert_eq!(total, report.requests);
}

fn sum(frames: &[Frame], pick: impl Fn(&Frame) -> u64) -> u64 {
    frames.iter().map(pick).sum()
}

#[tokio::test(flavor = "current_thread")]
async fn counts_equal_what_the_target_received() {
    let target = Target::start().await;
    let plan = plan::from_value(&plan_json(
        &target.url,
        "[{duration: 1s, vus: 12}, {duration: 1500ms, vus: 12}]",
        r#"[{name: home, get: /}, {post: /login, body: "{}", headers: {content-type: application/json}}, {think: 5ms}, {get: /missing}]"#,
        "{timeout: 2s, graceful_stop: 2s}",
    ))
    .expect("valid");
    // This agent is index 0 of 2: it runs 6 of the 12 VUs.
    let (report, frames) = run(spec(plan, 2, 0), None).await;
    check_sequence(&frames, &report);
    assert!(report.requests > 100, "only {} requests", report.requests);
    assert_eq!(report.requests, target.received());
    assert_eq!(frames.iter().map(|f| f.vus).max(), Some(6));

    let step = |label: &'static str| move |f: &Frame| f.steps.get(label).map_or(0, |s| s.requests);
    let (home, login, missing) = (
        sum(&frames, step("home")),
        sum(&frames, step("POST /login")),
        sum(&frames, step("GET /missing")),
    );
    assert_eq!(home + login + missing, report.requests);
    assert!(
        home >= missing && home - missing <= 6,
        "{home} vs {missing}"
    );
    let errors = sum(&frames, |f| f.total.errors);
    let ok = sum(&frames, |f| {
        f.total.status_codes.get(&200).copied().unwrap_or(0)
    });
    assert_eq!(errors, missing);
    assert_eq!(ok, home + login);
    assert_eq!(
        sum(&frames, |f| f
            .total
            .error_kinds
            .get("http_4xx")
            .copied()
            .unwrap_or(0)),
        missing
    );
    let latencies: u64 = frames
        .iter()
        .map(|f| f.total.latency.decode().expect("valid histogram").len())
        .sum();
    assert_eq!(latencies, report.requests);
}

#[tokio::test(flavor = "current_thread")]
async fn requests_still_in_flight_after_the_graceful_period_are_aborted_and_counted() {
    let target = Target::start().await;
    let plan = plan::from_value(&plan_json(
        &target.url,
        "[{duration: 300ms, vus: 4}]",
        "[{get: /slow}]",
        "{timeout: 30s, graceful_stop: 400ms}",
    ))
    .expect("valid");
    let started = Instant::now();
    let (report, frames) = run(spec(plan, 1, 0), None).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    check_sequence(&frames, &report);
    // Each VU that got to start sent exactly one request, which was aborted.
    assert!(report.requests >= 1 && report.requests <= 4);
    assert_eq!(report.requests, target.received());
    let aborted = sum(&frames, |f| {
        f.total.error_kinds.get("aborted").copied().unwrap_or(0)
    });
    assert_eq!(aborted, report.requests);
    assert_eq!(sum(&frames, |f| f.total.errors), report.requests);
}

#[tokio::test(flavor = "current_thread")]
async fn a_stop_ends_a_long_load_and_counts_stay_exact() {
    let target = Target::start().await;
    let plan = plan::from_value(&plan_json(
        &target.url,
        "[{duration: 100ms, vus: 5}, {duration: 60s, vus: 5}]",
        "[{get: /}, {get: /fail}]",
        "{graceful_stop: 30s}",
    ))
    .expect("valid");
    let started = Instant::now();
    let stop = (Duration::from_millis(1200), Duration::from_secs(1));
    let (report, frames) = run(spec(plan, 1, 0), Some(stop)).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    check_sequence(&frames, &report);
    assert!(report.requests > 10);
    assert_eq!(report.requests, target.received());
    let fails = sum(&frames, |f| {
        f.total.error_kinds.get("http_5xx").copied().unwrap_or(0)
    });
    assert_eq!(fails, sum(&frames, |f| f.total.errors));
    assert!(fails * 2 >= report.requests - 5 && fails * 2 <= report.requests + 5);
}

#[tokio::test(flavor = "current_thread")]
async fn an_iteration_limit_ends_the_load_early_with_exact_counts() {
    let target = Target::start().await;
    let mut json = plan_json(
        &target.url,
        "[{duration: 100ms, vus: 6}, {duration: 10s, vus: 6}]",
        "[{get: /}, {think: 1ms..3ms}, {get: /missing}]",
        "{timeout: 2s, graceful_stop: 2s}",
    );
    json["load"]["iterations_per_vu"] = 5.into();
    let plan = plan::from_value(&json).expect("valid");
    let started = Instant::now();
    // Agent 1 of 2: 3 VUs × 5 iterations × 2 requests, once the ramp has started all three.
    let (report, frames) = run(spec(plan, 2, 1), None).await;
    assert!(started.elapsed() < Duration::from_secs(8), "ended early");
    check_sequence(&frames, &report);
    assert_eq!(report.requests, 30);
    assert_eq!(target.received(), 30);
}

#[tokio::test(flavor = "current_thread")]
async fn the_runs_iterations_are_split_exactly_between_agents() {
    // 10 iterations on 3 agents are 4 + 3 + 3, whatever the number of VUs.
    for (index, share) in [(0u32, 4u64), (1, 3), (2, 3)] {
        let target = Target::start().await;
        let mut json = plan_json(
            &target.url,
            "[{duration: 0s, vus: 5}, {duration: 10s, vus: 5}]",
            "[{get: /}, {get: /missing}]",
            "{timeout: 2s, graceful_stop: 2s}",
        );
        json["load"]["iterations"] = 10.into();
        let plan = plan::from_value(&json).expect("valid");
        let started = Instant::now();
        let (report, frames) = run(spec(plan, 3, index), None).await;
        assert!(started.elapsed() < Duration::from_secs(8), "ended early");
        check_sequence(&frames, &report);
        assert_eq!(report.requests, 2 * share, "agent {index}");
        assert_eq!(target.received(), 2 * share);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn failed_checks_are_counted_per_step_and_are_not_errors() {
    let target = Target::start().await;
    let plan = plan::from_value(&plan_json(
        &target.url,
        "[{duration: 10ms, vus: 3}, {duration: 1s, vus: 3}]",
        "[{name: want201, get: /, checks: {status: 201}}, {name: fine, get: /, checks: {status: 200, max_latency: 10s}}]",
        "{timeout: 2s, graceful_stop: 2s}",
    ))
    .expect("valid");
    let (report, frames) = run(spec(plan, 1, 0), None).await;
    check_sequence(&frames, &report);
    assert_eq!(report.requests, target.received());
    let step = |label: &'static str, pick: fn(&herd_protocol::frame::Stats) -> u64| {
        sum(&frames, move |f| f.steps.get(label).map_or(0, pick))
    };
    let want201 = step("want201", |s| s.requests);
    let fine = step("fine", |s| s.requests);
    assert_eq!(want201 + fine, report.requests);
    assert_eq!(step("want201", |s| s.checks.failed), want201);
    assert_eq!(step("want201", |s| s.checks.passed), 0);
    assert_eq!(step("fine", |s| s.checks.passed), 2 * fine);
    assert_eq!(sum(&frames, |f| f.total.checks.failed), want201);
    assert_eq!(
        sum(&frames, |f| f.total.errors),
        0,
        "a failed check is not an error"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_request_its_variables_cannot_build_is_not_sent_and_counts_as_a_failed_check() {
    let target = Target::start().await;
    // A value with a line break cannot go into a header; the plan cannot know it in advance
    // when the value comes from data.
    let yaml = format!(
        "version: 1\nname: t\ntarget: {}\nload: {{vus: 2, iterations: 20}}\n\
         vars: {{v: \"line\\nbreak\"}}\noptions: {{timeout: 2s, graceful_stop: 2s}}\n\
         scenario: [{{name: broken, get: /, headers: {{x-value: \"${{v}}\"}}}}, {{name: fine, get: /}}]\n",
        target.url
    );
    let plan = plan::from_yaml_str(&yaml).expect("valid");
    assert_eq!(plan.vars, [("v".to_string(), "line\nbreak".to_string())]);
    let (report, frames) = run(spec(plan, 1, 0), None).await;
    check_sequence(&frames, &report);
    let step = |label: &'static str, pick: fn(&herd_protocol::frame::Stats) -> u64| {
        sum(&frames, move |f| f.steps.get(label).map_or(0, pick))
    };
    assert_eq!(report.requests, 20);
    assert_eq!(target.received(), 20);
    assert_eq!(step("fine", |s| s.requests), 20);
    assert_eq!(step("broken", |s| s.requests), 0);
    assert_eq!(step("broken", |s| s.checks.failed), 20);
    assert_eq!(sum(&frames, |f| f.total.errors), 0);
}
