use super::*;
use herd_protocol::frame::Stats;
use herd_protocol::histogram::{new_latency, record_us, EncodedHistogram};

mod horizon;
mod restore;

const GRACE_MS: u64 = 2000;

fn run() -> RunId {
    RunId::new("run-1").expect("valid id")
}

fn agent(i: u32) -> AgentId {
    AgentId::numbered(i)
}

fn aggregator(agents: u32) -> Aggregator {
    let mut a = Aggregator::new(
        run(),
        (0..agents).map(agent).collect(),
        Duration::from_millis(GRACE_MS),
    );
    a.set_start_second(100);
    a
}

/// Stats of requests with these latencies (µs), all answered 200.
fn stats(latencies_us: &[u64]) -> Stats {
    let mut h = new_latency();
    for &us in latencies_us {
        record_us(&mut h, us);
    }
    let n = latencies_us.len() as u64;
    Stats {
        requests: n,
        errors: 0,
        status_codes: [(200, n)].into_iter().collect(),
        error_kinds: BTreeMap::new(),
        latency: EncodedHistogram::encode(&h),
        ..Stats::default()
    }
}

fn frame(agent_index: u32, seq: u64, second: u64, latencies_us: &[u64]) -> Frame {
    let total = stats(latencies_us);
    Frame {
        version: 1,
        run: run(),
        agent: agent(agent_index),
        seq,
        second,
        is_final: false,
        vus: 1,
        steps: [("home".to_string(), total.clone())].into_iter().collect(),
        dropped: 0,
        health: Default::default(),
        sent_ms: 0,
        total,
    }
}

fn ingest(a: &mut Aggregator, f: &Frame) -> Ingest {
    a.ingest(f).expect("frame accepted")
}

/// The end of second `s`'s grace period, in ms.
fn deadline(s: u64) -> u64 {
    (s + 1) * 1000 + GRACE_MS
}

fn seconds(aggregates: &[SecondAggregate]) -> Vec<u64> {
    aggregates.iter().map(|a| a.second).collect()
}

/// The changed seconds, and whether each was emitted.
fn dirty(a: &mut Aggregator) -> Vec<(u64, bool)> {
    a.take_dirty()
        .iter()
        .map(|d| (d.aggregate.second, d.emitted))
        .collect()
}

#[test]
fn two_agents_merge_counts_and_histograms_not_averaged_percentiles() {
    let mut a = aggregator(2);
    // Agent 0: 99 requests at 1 ms; agent 1: one at 1 s. Each agent's own p99 is 1 ms and 1 s;
    // their average (500.5 ms) is wrong: 99 of the 100 requests took 1 ms.
    assert_eq!(
        ingest(&mut a, &frame(0, 0, 100, &[1_000; 99])),
        Ingest::Accepted
    );
    assert_eq!(
        ingest(&mut a, &frame(1, 0, 100, &[1_000_000])),
        Ingest::Accepted
    );
    let ready = a.poll_ready(100_500);
    assert_eq!(seconds(&ready), vec![100]);
    let s = &ready[0];
    assert_eq!(s.stats.requests, 100);
    assert_eq!(s.stats.status_codes.get(&200), Some(&100));
    assert_eq!((s.agents_reported, s.agents_expected), (2, 2));
    let summary = s.to_summary();
    assert!(
        (summary.p99_ms - 1.0).abs() < 0.01,
        "p99 {}",
        summary.p99_ms
    );
    assert!((summary.p50_ms - 1.0).abs() < 0.01);
    assert!((s.stats.latency_ms().max - 1000.0).abs() < 1.0);
    assert_eq!(s.steps["home"].requests, 100);
    let totals = a.totals();
    assert_eq!(totals.all.requests, 100);
    assert!((totals.all.latency_ms().p99 - 1.0).abs() < 0.01);
    assert_eq!(totals.per_agent[&agent(0)], (99, 0));
    assert_eq!(totals.per_agent[&agent(1)], (1, 0));
}

#[test]
fn duplicates_are_dropped() {
    let mut a = aggregator(1);
    let f = frame(0, 0, 100, &[1_000, 2_000]);
    assert_eq!(ingest(&mut a, &f), Ingest::Accepted);
    assert_eq!(ingest(&mut a, &f), Ingest::Duplicate);
    // Same (agent, seq), other content: still the same frame redelivered.
    assert_eq!(ingest(&mut a, &frame(0, 0, 101, &[5])), Ingest::Duplicate);
    assert_eq!(a.totals().all.requests, 2);
    assert_eq!(a.totals().all.latency.len(), 2);
    let ready = a.flush_all();
    assert_eq!(seconds(&ready), vec![100]);
    assert_eq!(ready[0].stats.requests, 2);
}

#[test]
fn frames_of_other_runs_and_unknown_agents_are_rejected() {
    let mut a = aggregator(1);
    let mut other_run = frame(0, 0, 100, &[1_000]);
    other_run.run = RunId::new("run-2").expect("valid id");
    assert!(matches!(
        a.ingest(&other_run),
        Err(AggregateError::WrongRun { .. })
    ));
    assert!(matches!(
        a.ingest(&frame(7, 0, 100, &[1_000])),
        Err(AggregateError::UnknownAgent(id)) if id == agent(7)
    ));
    assert_eq!(a.totals().all.requests, 0);
    assert!(a.flush_all().is_empty());
}

#[test]
fn a_bad_histogram_rejects_the_whole_frame() {
    let mut a = aggregator(1);
    let mut bad = frame(0, 0, 100, &[1_000]);
    bad.steps.get_mut("home").expect("step").latency = EncodedHistogram("not base64!".into());
    let err = a.ingest(&bad).expect_err("rejected");
    assert!(err.to_string().contains("step \"home\""), "{err}");
    // Nothing merged, not even the valid total, and the sequence number is still free.
    assert_eq!(a.totals().all.requests, 0);
    assert!(a.totals().steps.is_empty());
    assert_eq!(
        ingest(&mut a, &frame(0, 0, 100, &[1_000])),
        Ingest::Accepted
    );
    assert_eq!(a.totals().all.requests, 1);
}

#[test]
fn late_frame_is_merged_into_totals_and_its_second_is_updated() {
    let mut a = aggregator(2);
    ingest(&mut a, &frame(0, 0, 100, &[1_000; 99]));
    assert!(a.poll_ready(deadline(100) - 1).is_empty());
    let live = a.poll_ready(deadline(100));
    assert_eq!(seconds(&live), vec![100]);
    assert_eq!((live[0].agents_reported, live[0].agents_expected), (1, 2));
    // Changed (a frame, then emitted): to be stored, once.
    assert_eq!(dirty(&mut a), vec![(100, true)]);
    assert!(a.take_dirty().is_empty());

    assert_eq!(
        ingest(&mut a, &frame(1, 0, 100, &[1_000_000])),
        Ingest::Late
    );
    assert_eq!(a.totals().all.requests, 100);
    assert_eq!(a.totals().per_agent[&agent(1)], (1, 0));
    let updated = a.take_dirty();
    assert_eq!(updated.len(), 1);
    assert!(updated[0].emitted);
    assert_eq!(updated[0].checkpoint.frames.len(), 2);
    let s = &updated[0].aggregate;
    assert_eq!(s.t, 0);
    assert_eq!(s.stats.requests, 100);
    assert_eq!(s.steps["home"].requests, 100);
    assert_eq!((s.agents_reported, s.agents_expected), (2, 2));
    // The re-merged second reads the same percentiles as a direct merge.
    assert!((s.stats.latency_ms().p99 - 1.0).abs() < 0.01);
    assert!((s.stats.latency_ms().max - 1000.0).abs() < 1.0);
    assert_eq!(s.stats.latency.len(), 100);
    assert!(a.take_dirty().is_empty());
    // A late second is never emitted live again.
    assert!(a.poll_ready(u64::MAX).is_empty());
    assert!(a.flush_all().is_empty());
}

#[test]
fn a_late_frame_for_a_second_nobody_reported_in_time_is_an_update() {
    let mut a = aggregator(1);
    ingest(&mut a, &frame(0, 0, 100, &[1_000]));
    ingest(&mut a, &frame(0, 2, 102, &[1_000]));
    assert_eq!(seconds(&a.flush_all()), vec![100, 102]);
    assert_eq!(dirty(&mut a), vec![(100, true), (102, true)]);
    assert_eq!(ingest(&mut a, &frame(0, 1, 101, &[1_000])), Ingest::Late);
    let updated = a.take_dirty();
    assert_eq!(updated.len(), 1);
    assert_eq!(updated[0].aggregate.second, 101);
    assert_eq!(updated[0].aggregate.stats.requests, 1);
    assert_eq!(a.totals().all.requests, 3);
}

#[test]
fn many_late_frames_into_one_second_are_handed_out_once_with_all_of_them() {
    // A coordinator that fell behind gets most frames late: they are merged into their emitted
    // second as it is, and the second is packed and handed out once per `take_dirty`.
    let mut a = aggregator(4);
    ingest(&mut a, &frame(0, 0, 100, &[1_000]));
    assert_eq!(seconds(&a.flush_all()), vec![100]);
    assert_eq!(dirty(&mut a), vec![(100, true)]);
    for i in 1..3 {
        assert_eq!(ingest(&mut a, &frame(i, 0, 100, &[2_000; 2])), Ingest::Late);
    }
    let updated = a.take_dirty();
    assert_eq!(updated.len(), 1);
    assert_eq!(updated[0].checkpoint.frames.len(), 3);
    let s = &updated[0].aggregate;
    assert_eq!(
        (s.stats.requests, s.agents_reported, s.agents_expected),
        (5, 3, 4)
    );
    assert_eq!(s.stats.latency.len(), 5);
    assert!(a.take_dirty().is_empty());
    // One more after it was handed out builds on everything merged before.
    assert_eq!(ingest(&mut a, &frame(3, 0, 100, &[3_000])), Ingest::Late);
    assert_eq!(
        ingest(&mut a, &frame(3, 0, 100, &[3_000])),
        Ingest::Duplicate
    );
    let updated = a.take_dirty();
    assert_eq!(updated[0].checkpoint.frames.len(), 4);
    let s = &updated[0].aggregate;
    assert_eq!((s.stats.requests, s.agents_reported), (6, 4));
    assert_eq!(s.steps["home"].requests, 6);
    assert!((s.stats.latency_ms().max - 3.0).abs() < 0.01);
    assert_eq!(a.totals().all.requests, 6);
}

#[test]
fn a_lost_agent_is_no_longer_awaited_but_its_frames_count() {
    let mut a = aggregator(2);
    ingest(&mut a, &frame(0, 0, 100, &[1_000]));
    assert!(a.poll_ready(100_900).is_empty(), "agent 1 is still awaited");
    a.agent_lost(&agent(1));
    let ready = a.poll_ready(100_900);
    assert_eq!(seconds(&ready), vec![100]);
    assert_eq!((ready[0].agents_reported, ready[0].agents_expected), (1, 1));
    // Frames it still sends are counted, without making it awaited again.
    assert_eq!(
        ingest(&mut a, &frame(1, 0, 101, &[2_000])),
        Ingest::Accepted
    );
    assert_eq!(
        ingest(&mut a, &frame(0, 1, 101, &[2_000])),
        Ingest::Accepted
    );
    let ready = a.poll_ready(101_100);
    assert_eq!(seconds(&ready), vec![101]);
    assert_eq!((ready[0].agents_reported, ready[0].agents_expected), (2, 2));
    assert_eq!(a.totals().per_agent[&agent(1)], (1, 0));
}

#[test]
fn a_replacement_joins_mid_run_awaited_from_its_second_and_counted_once() {
    let mut a = aggregator(2);
    ingest(&mut a, &frame(0, 0, 100, &[1_000]));
    ingest(&mut a, &frame(1, 0, 100, &[1_000]));
    a.agent_lost(&agent(1));
    let new = AgentId::new("agent-1-r1").expect("valid");
    a.agent_joins(&new, 102, None);
    // Second 101 does not wait for it; second 102 does.
    ingest(&mut a, &frame(0, 1, 101, &[1_000]));
    ingest(&mut a, &frame(0, 2, 102, &[1_000]));
    let ready = a.poll_ready(102_900);
    assert_eq!(seconds(&ready), vec![100, 101]);
    assert_eq!((ready[1].agents_reported, ready[1].agents_expected), (1, 1));
    for (seq, second) in [(0, 102), (0, 102), (1, 103)] {
        let mut f = frame(0, seq, second, &[3_000, 3_000]);
        f.agent = new.clone();
        ingest(&mut a, &f);
    }
    let ready = a.poll_ready(102_950);
    assert_eq!(seconds(&ready), vec![102]);
    assert_eq!((ready[0].agents_reported, ready[0].agents_expected), (2, 2));
    assert_eq!(
        a.totals().per_agent[&new],
        (4, 0),
        "its repeated frame counts once"
    );
    assert_eq!(
        a.totals().per_agent[&agent(1)],
        (1, 0),
        "the lost agent's count is kept"
    );
    assert_eq!(a.totals().all.requests, 1 + 1 + 1 + 1 + 4);
}

#[test]
fn a_second_is_emitted_at_its_grace_deadline_without_missing_agents() {
    let mut a = aggregator(3);
    ingest(&mut a, &frame(0, 0, 100, &[1_000]));
    ingest(&mut a, &frame(1, 0, 100, &[1_000]));
    assert!(a.poll_ready(deadline(100) - 1).is_empty());
    let ready = a.poll_ready(deadline(100));
    assert_eq!(seconds(&ready), vec![100]);
    assert_eq!((ready[0].agents_reported, ready[0].agents_expected), (2, 3));
    assert!(a.poll_ready(u64::MAX).is_empty(), "emitted once");
}

#[test]
fn seconds_are_emitted_in_order() {
    let mut a = aggregator(2);
    // Second 101 is complete before 100; 102 is incomplete.
    ingest(&mut a, &frame(0, 2, 102, &[1_000]));
    ingest(&mut a, &frame(0, 1, 101, &[1_000]));
    ingest(&mut a, &frame(1, 1, 101, &[1_000]));
    ingest(&mut a, &frame(0, 0, 100, &[1_000]));
    assert!(a.poll_ready(101_500).is_empty(), "101 waits for 100");
    ingest(&mut a, &frame(1, 0, 100, &[1_000]));
    let ready = a.poll_ready(101_500);
    assert_eq!(seconds(&ready), vec![100, 101]);
    assert_eq!(ready.iter().map(|s| s.t).collect::<Vec<_>>(), vec![0, 1]);
    let rest = a.poll_ready(deadline(102));
    assert_eq!(seconds(&rest), vec![102]);
    assert_eq!(rest[0].t, 2);
}

#[test]
fn flush_all_emits_what_is_left_in_order() {
    let mut a = aggregator(2);
    ingest(&mut a, &frame(0, 1, 101, &[1_000]));
    ingest(&mut a, &frame(0, 0, 100, &[1_000]));
    assert!(a.poll_ready(100_000).is_empty());
    assert_eq!(seconds(&a.flush_all()), vec![100, 101]);
    assert!(a.flush_all().is_empty());
}

#[test]
fn a_finished_agent_is_not_awaited_after_its_final_second() {
    let mut a = aggregator(2);
    let mut last = frame(0, 0, 100, &[1_000]);
    last.is_final = true;
    ingest(&mut a, &last);
    ingest(&mut a, &frame(1, 0, 100, &[1_000]));
    ingest(&mut a, &frame(1, 1, 101, &[1_000]));
    let ready = a.poll_ready(101_100);
    assert_eq!(seconds(&ready), vec![100, 101]);
    assert_eq!((ready[1].agents_reported, ready[1].agents_expected), (1, 1));
}

#[test]
fn the_final_second_is_learned_from_the_finished_count() {
    let mut a = aggregator(2);
    ingest(&mut a, &frame(0, 0, 100, &[1_000]));
    ingest(&mut a, &frame(1, 0, 100, &[1_000]));
    ingest(&mut a, &frame(1, 1, 101, &[1_000]));
    assert_eq!(seconds(&a.poll_ready(101_100)), vec![100]);
    a.agent_finished(&agent(0), 1);
    assert_eq!(seconds(&a.poll_ready(101_100)), vec![101]);
}

#[test]
fn a_finished_agent_with_a_gap_is_reported_missing() {
    let mut a = aggregator(2);
    for seq in [0, 1, 3] {
        ingest(&mut a, &frame(0, seq, 100 + seq, &[1_000]));
    }
    a.agent_finished(&agent(0), 5);
    a.agent_lost(&agent(1));
    assert!(!a.is_complete());
    assert_eq!(a.missing_frames(), vec![(agent(0), 2..3), (agent(0), 4..5)]);
    ingest(&mut a, &frame(0, 4, 104, &[1_000]));
    ingest(&mut a, &frame(0, 2, 102, &[1_000]));
    assert!(a.missing_frames().is_empty());
    assert!(a.is_complete());
}

#[test]
fn gaps_of_a_running_agent_are_those_below_its_latest_frame() {
    let mut a = aggregator(1);
    ingest(&mut a, &frame(0, 0, 100, &[1_000]));
    ingest(&mut a, &frame(0, 3, 103, &[1_000]));
    assert_eq!(a.missing_frames(), vec![(agent(0), 1..3)]);
}

#[test]
fn completeness_needs_every_agent_lost_or_fully_received() {
    let mut a = aggregator(2);
    assert!(!a.is_complete());
    ingest(&mut a, &frame(0, 0, 100, &[1_000]));
    ingest(&mut a, &frame(0, 1, 101, &[1_000]));
    a.agent_finished(&agent(0), 2);
    assert!(!a.is_complete(), "agent 1 has not finished");
    a.agent_finished(&agent(1), 0);
    assert!(a.is_complete());
    assert!(a.missing_frames().is_empty());

    let mut b = aggregator(1);
    b.agent_lost(&agent(0));
    assert!(b.is_complete());
}

#[test]
fn frames_before_the_start_second_count_in_the_start_second() {
    let mut a = aggregator(1);
    ingest(&mut a, &frame(0, 0, 99, &[1_000]));
    ingest(&mut a, &frame(0, 1, 100, &[1_000]));
    let ready = a.flush_all();
    assert_eq!(seconds(&ready), vec![100]);
    assert_eq!((ready[0].t, ready[0].stats.requests), (0, 2));
    assert_eq!(a.totals().first_second, Some(100));
}

#[test]
fn totals_cover_steps_agents_and_the_span_of_seconds() {
    let mut a = aggregator(2);
    let mut f = frame(0, 0, 100, &[1_000, 3_000]);
    f.total.errors = 1;
    f.total.status_codes = [(200, 1), (500, 1)].into_iter().collect();
    f.total.error_kinds = [("http_5xx".to_string(), 1)].into_iter().collect();
    f.steps.insert("login".into(), stats(&[3_000]));
    ingest(&mut a, &f);
    ingest(&mut a, &frame(1, 0, 102, &[2_000]));
    let t = a.totals();
    assert_eq!((t.all.requests, t.all.errors), (3, 1));
    assert_eq!(
        t.all.status_codes,
        [(200, 2), (500, 1)].into_iter().collect()
    );
    assert_eq!(t.all.error_kinds["http_5xx"], 1);
    assert_eq!(t.steps["home"].requests, 3);
    assert_eq!(t.steps["login"].requests, 1);
    assert_eq!(t.per_agent[&agent(0)], (2, 1));
    assert_eq!((t.first_second, t.last_second), (Some(100), Some(102)));
}

#[test]
fn step_summaries_use_string_status_keys_and_the_given_duration() {
    let mut a = aggregator(1);
    ingest(&mut a, &frame(0, 0, 100, &[1_000, 2_000, 3_000, 4_000]));
    let step = a.totals().all.to_step_summary(2.0);
    assert_eq!(step.requests, 4);
    assert_eq!(step.rps, 2.0);
    assert_eq!(step.status_codes.get("200"), Some(&4));
    assert!((step.latency_ms.max - 4.0).abs() < 0.01);
    assert_eq!(a.totals().all.to_step_summary(0.0).rps, 0.0);
}

#[test]
fn without_a_start_second_agents_are_expected_from_their_first_frame() {
    let mut a = Aggregator::new(run(), vec![agent(0), agent(1)], Duration::ZERO);
    ingest(&mut a, &frame(0, 0, 100, &[1_000]));
    // Agent 1 has not sent anything: it is not expected yet.
    let ready = a.poll_ready(100_100);
    assert_eq!(seconds(&ready), vec![100]);
    assert_eq!((ready[0].t, ready[0].agents_expected), (0, 1));
}

#[test]
fn drops_service_times_checks_and_bottlenecks_are_merged() {
    let mut a = aggregator(2);
    let mut f0 = frame(0, 0, 100, &[1_000, 2_000]);
    f0.dropped = 3;
    f0.total.service_latency = f0.total.latency.clone();
    f0.total.checks = herd_protocol::frame::Checks {
        passed: 2,
        failed: 1,
    };
    f0.health.cpu_percent = 97.0;
    let mut f1 = frame(1, 0, 100, &[5_000]);
    f1.dropped = 2;
    f1.health.loop_lag_ms = 1.0;
    ingest(&mut a, &f0);
    ingest(&mut a, &f1);
    let second = a.poll_ready(0).remove(0);
    assert_eq!(second.dropped, 5);
    assert_eq!(second.to_summary().dropped, 5);
    let totals = a.totals();
    assert_eq!(totals.dropped, 5);
    assert_eq!(totals.all.service_latency.len(), 2);
    assert_eq!(totals.all.latency.len(), 3);
    assert_eq!((totals.all.checks.passed, totals.all.checks.failed), (2, 1));
    // Only agent 0 was saturated.
    assert_eq!(totals.bottlenecks.len(), 1);
    assert_eq!(totals.bottlenecks[0].0, 100);
    assert_eq!(totals.bottlenecks[0].1, agent(0));
}

#[test]
fn regions_are_merged_apart_and_survive_a_restore() {
    // Agents 0 and 1 in eu-west-1, agent 2 in us-east-1.
    let regions: BTreeMap<AgentId, String> = [(0, "eu-west-1"), (1, "eu-west-1"), (2, "us-east-1")]
        .into_iter()
        .map(|(i, r)| (agent(i), r.to_string()))
        .collect();
    let mut a = aggregator(3).with_regions(&regions);
    ingest(&mut a, &frame(0, 0, 100, &[1_000; 99]));
    ingest(&mut a, &frame(1, 0, 100, &[1_000_000]));
    ingest(&mut a, &frame(2, 0, 100, &[5_000; 10]));
    let ready = a.poll_ready(100_500);
    let second = ready[0].to_summary();
    let eu = &second.regions["eu-west-1"];
    // Merged, not averaged: 99 of eu-west-1's 100 requests took 1 ms.
    assert_eq!((eu.requests, eu.errors), (100, 0));
    assert!((eu.p99_ms - 1.0).abs() < 0.01, "p99 {}", eu.p99_ms);
    let us = &second.regions["us-east-1"];
    assert_eq!(us.requests, 10);
    assert!((us.p50_ms - 5.0).abs() < 0.01, "p50 {}", us.p50_ms);
    assert_eq!(eu.requests + us.requests, second.requests);
    let totals = a.totals();
    assert_eq!(totals.steps["region:eu-west-1"].requests, 100);
    assert_eq!(totals.steps["region:us-east-1"].requests, 10);
    assert_eq!(totals.steps["home"].requests, 110, "steps are untouched");

    // A restarted coordinator rebuilds the regions' figures from the stored checkpoints.
    let checkpoints: Vec<(u64, SecondCheckpoint)> = a
        .take_dirty()
        .into_iter()
        .map(|d| (d.aggregate.second, d.checkpoint))
        .collect();
    let restored = Aggregator::restore(
        run(),
        (0..3).map(agent).collect(),
        Duration::from_millis(GRACE_MS),
        Some(100),
        checkpoints,
    )
    .expect("restores")
    .with_regions(&regions);
    assert_eq!(restored.totals().steps["region:eu-west-1"].requests, 100);
    assert_eq!(restored.totals().steps["region:us-east-1"].requests, 10);
}

#[test]
fn a_histogram_a_frame_carries_several_times_is_inflated_once() {
    // A one-step frame whose service times equal its latencies: four copies of one histogram.
    let mut f = frame(0, 0, 100, &[1_000, 2_000, 3_000]);
    f.total.service_latency = f.total.latency.clone();
    for stats in f.steps.values_mut() {
        stats.service_latency = f.total.latency.clone();
    }
    let (_, inflated) = slot::DecodedFrame::decode_counting(&f).expect("decodes");
    assert_eq!(inflated, 1);
    // Service times that differ are inflated on their own, once for the total and the step.
    let late = stats(&[9_000]).latency;
    f.total.service_latency = late.clone();
    for stats in f.steps.values_mut() {
        stats.service_latency = late.clone();
    }
    let (decoded, inflated) = slot::DecodedFrame::decode_counting(&f).expect("decodes");
    assert_eq!(inflated, 2);
    let mut a = aggregator(1);
    a.ingest(&f).expect("accepted");
    let merged = decoded.total;
    assert_eq!(merged.requests(), 3);
}
