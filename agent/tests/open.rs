//! The open model against a real HTTP server: the planned number of arrivals at a flat rate,
//! a live ramp of the rate, and a pause of the target that shows in the corrected latency but not
//! in the service time.

mod common;

use common::{plan_with_load, Target};
use herd_agent::engine::{run_load, Control, LoadIo, LoadReport, LoadSpec};
use herd_agent::recorder::FrameIdentity;
use herd_protocol::clock::{Clock, US_PER_SEC};
use herd_protocol::frame::Frame;
use herd_protocol::histogram::{new_latency, Latency};
use herd_protocol::plan::{self, Plan, RampStages};
use herd_protocol::{AgentId, RunId};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Runs `plan` as agent `index` of `count`, starting on the next whole second (so frames are
/// whole seconds of load).
async fn run(plan: Plan, count: u32, index: u32) -> (LoadReport, Vec<Frame>) {
    run_ramped(plan, count, index, None).await
}

/// The same, with a live ramp sent at the start to begin `after` it.
async fn run_ramped(
    plan: Plan,
    count: u32,
    index: u32,
    ramp: Option<(Duration, RampStages)>,
) -> (LoadReport, Vec<Frame>) {
    run_controlled(plan, count, index, ramp, None).await
}

/// The same, with a reassignment `(after, count, index)` sent at the start too.
async fn run_controlled(
    plan: Plan,
    count: u32,
    index: u32,
    ramp: Option<(Duration, RampStages)>,
    reassign: Option<(Duration, u32, Option<u32>)>,
) -> (LoadReport, Vec<Frame>) {
    let clock = Clock::new();
    let start_us = (clock.now_us() / US_PER_SEC + 1) * US_PER_SEC;
    let spec = LoadSpec {
        plan,
        agent_count: count,
        agent_index: index,
        start: clock.instant_at_us(start_us),
        clock,
        identity: FrameIdentity {
            run: RunId::new("run-1").expect("valid"),
            agent: AgentId::numbered(index),
        },
        joins_later: false,
    };
    let (control, control_rx) = mpsc::unbounded_channel();
    if let Some((after, stages)) = ramp {
        control
            .send(Control::Ramp {
                at: spec.start + after,
                stages,
            })
            .expect("the engine listens");
    }
    if let Some((after, count, index)) = reassign {
        control
            .send(Control::Reassign {
                at: spec.start + after,
                count,
                index,
            })
            .expect("the engine listens");
    }
    let (frames_tx, mut frames_rx) = mpsc::unbounded_channel();
    let io = LoadIo {
        control: control_rx,
        frames: frames_tx,
        vus: Rc::new(Cell::new(0)),
    };
    let report = run_load(spec, io).await.expect("load runs");
    let mut frames = Vec::new();
    while let Ok(frame) = frames_rx.try_recv() {
        frames.push(frame);
    }
    (report, frames)
}

fn merged(
    frames: &[Frame],
    pick: impl Fn(&Frame) -> &herd_protocol::histogram::EncodedHistogram,
) -> Latency {
    let mut all = new_latency();
    for f in frames {
        all.add(pick(f).decode().expect("valid histogram"))
            .expect("same bounds");
    }
    all
}

#[tokio::test(flavor = "current_thread")]
async fn a_fixed_rate_sends_the_planned_count_at_a_flat_rate() {
    let target = Target::start().await;
    let plan = plan::from_value(&plan_with_load(
        &target.url,
        "{arrival: [{duration: 3s, rps: 600}], start_rps: 600, max_in_flight: 64}",
        "[{get: /}]",
        "{timeout: 2s, graceful_stop: 2s}",
    ))
    .expect("valid");
    // Agent 0 of 2 plays every other arrival: 900 of the plan's 1800.
    let (report, frames) = run(plan, 2, 0).await;
    assert_eq!(report.dropped, 0);
    assert_eq!(report.requests, 900, "the planned count, exactly");
    assert_eq!(report.requests, target.received());
    let per_second: Vec<u64> = frames.iter().map(|f| f.total.requests).collect();
    // Three whole seconds of load (a response finishing just after a boundary may move by one).
    for (i, n) in per_second.iter().take(3).enumerate() {
        assert!((297..=303).contains(n), "second {i}: {n} in {per_second:?}");
    }
    let lat = merged(&frames, |f| &f.total.latency);
    assert_eq!(lat.len(), 900);
}

#[tokio::test(flavor = "current_thread")]
async fn a_live_ramp_changes_the_rate_from_where_it_is_and_the_count_stays_exact() {
    let target = Target::start().await;
    let plan = plan::from_value(&plan_with_load(
        &target.url,
        "{arrival: [{duration: 4s, rps: 200}], start_rps: 200, max_in_flight: 64}",
        "[{get: /}]",
        "{timeout: 2s, graceful_stop: 2s}",
    ))
    .expect("valid");
    // At 1 s: ramp to 400/s over 1 s, hold 1 s, end. 200 + 300 + 400 = 900 arrivals in 3 s
    // instead of 800 in 4 s; agent 0 of 2 plays every other one.
    let ramp = plan::ramp_from_value(&serde_json::json!([
        {"duration": "1s", "rps": 400}, {"duration": "1s", "rps": 400}
    ]))
    .expect("valid ramp");
    let (report, frames) = run_ramped(plan, 2, 0, Some((Duration::from_secs(1), ramp))).await;
    assert_eq!(report.dropped, 0);
    assert_eq!(report.requests, 450, "half the ramped schedule, exactly");
    assert_eq!(report.requests, target.received());
    let per_second: Vec<u64> = frames.iter().map(|f| f.total.requests).collect();
    for (i, want) in [100u64, 150, 200].into_iter().enumerate() {
        let n = per_second.get(i).copied().unwrap_or(0);
        assert!(n.abs_diff(want) <= 3, "second {i}: {n} in {per_second:?}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_lost_agents_arrivals_move_to_the_survivors_and_the_plan_is_played_exactly() {
    let target = Target::start().await;
    let plan = plan::from_value(&plan_with_load(
        &target.url,
        "{arrival: [{duration: 3s, rps: 300}], start_rps: 300, max_in_flight: 64}",
        "[{get: /}]",
        "{timeout: 2s, graceful_stop: 2s}",
    ))
    .expect("valid");
    // Three agents; at 1 s agent 1 is left out and agents 0 and 2 become 0 and 1 of 2. Each
    // agent is run on its own (one after the other): each plays its part of the same schedule.
    let at = Duration::from_secs(1);
    let (a0, f0) = run_controlled(plan.clone(), 3, 0, None, Some((at, 2, Some(0)))).await;
    let (a1, _) = run_controlled(plan.clone(), 3, 1, None, Some((at, 2, None))).await;
    let (a2, _) = run_controlled(plan, 3, 2, None, Some((at, 2, Some(1)))).await;
    // Agent 1 played its 100 of the first second; the other two split the other 800.
    assert_eq!(a1.requests, 100);
    assert_eq!((a0.requests, a2.requests), (100 + 300, 100 + 300));
    assert_eq!(
        a0.requests + a1.requests + a2.requests,
        900,
        "the plan, exactly"
    );
    assert_eq!(target.received(), 900);
    let per_second: Vec<u64> = f0.iter().map(|f| f.total.requests).collect();
    for (i, want) in [100u64, 150, 150].into_iter().enumerate() {
        let n = per_second.get(i).copied().unwrap_or(0);
        assert!(n.abs_diff(want) <= 3, "second {i}: {n} in {per_second:?}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_paused_target_shows_in_corrected_latency_not_in_service_time() {
    let target = Target::start().await;
    let plan = plan::from_value(&plan_with_load(
        &target.url,
        "{arrival: [{duration: 4s, rps: 400}], start_rps: 400, max_in_flight: 4}",
        "[{get: /}]",
        "{timeout: 10s, graceful_stop: 3s}",
    ))
    .expect("valid");
    let pauser = async {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        target.pause_for(Duration::from_secs(1));
    };
    let ((report, frames), ()) = tokio::join!(run(plan, 1, 0), pauser);
    assert_eq!(report.dropped, 0);
    assert_eq!(report.requests, 1600);
    assert_eq!(report.requests, target.received());
    let corrected = merged(&frames, |f| &f.total.latency);
    let service = merged(&frames, |f| &f.total.service_latency);
    assert_eq!((corrected.len(), service.len()), (1600, 1600));
    let p99 = |h: &Latency| h.value_at_quantile(0.99) as f64 / 1000.0;
    // ~400 arrivals waited up to a second behind the 4 stuck requests: a quarter of the run.
    assert!(
        p99(&corrected) > 800.0,
        "corrected p99 {} ms",
        p99(&corrected)
    );
    assert!(corrected.value_at_quantile(0.9) > 500_000);
    // Only the 4 requests on the wire during the pause took long to serve.
    assert!(p99(&service) < 100.0, "service p99 {} ms", p99(&service));
    assert!(service.max() > 800_000);
}

#[tokio::test(flavor = "current_thread")]
async fn arrivals_that_cannot_start_in_time_are_dropped_and_counted() {
    let target = Target::start().await;
    // One worker, and /slow answers after 10 s: the first arrival holds it, the others wait in
    // vain (timeout 300 ms) and are dropped; none is lost.
    let plan = plan::from_value(&plan_with_load(
        &target.url,
        "{arrival: [{duration: 1s, rps: 50}], start_rps: 50, max_in_flight: 1}",
        "[{get: /slow}]",
        "{timeout: 300ms, graceful_stop: 500ms}",
    ))
    .expect("valid");
    let (report, frames) = run(plan, 1, 0).await;
    let dropped: u64 = frames.iter().map(|f| f.dropped).sum();
    assert_eq!(dropped, report.dropped);
    assert_eq!(report.requests, target.received());
    assert_eq!(report.requests + report.dropped, 50, "{report:?}");
    assert!(report.dropped >= 40, "{report:?}");
}
