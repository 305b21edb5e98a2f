//! Rebuilding an aggregator from stored checkpoints, as a restarted coordinator does: the same
//! totals, nothing counted twice, nothing lost.

use super::*;
use crate::aggregate::SecondCheckpoint;

/// The store, as far as the aggregator is concerned: each second's last stored merge state.
#[derive(Default)]
struct Stored(BTreeMap<u64, SecondCheckpoint>);

impl Stored {
    /// What the run actor's flush does: store every changed second.
    fn save(&mut self, a: &mut Aggregator) {
        for d in a.take_dirty() {
            self.0.insert(d.aggregate.second, d.checkpoint);
        }
    }

    fn restore(&self) -> Aggregator {
        Aggregator::restore(
            run(),
            (0..3).map(agent).collect(),
            Duration::from_millis(GRACE_MS),
            Some(100),
            self.0.clone(),
        )
        .expect("restored")
    }
}

/// Three agents over four seconds, with errors, a second step, drops and a bottleneck.
fn frames() -> Vec<Frame> {
    let mut frames = Vec::new();
    for second in 0..4u64 {
        for i in 0..3u32 {
            let latencies: Vec<u64> = (0..=second + u64::from(i))
                .map(|k| 1_000 + 250 * k + 10_000 * u64::from(i))
                .collect();
            let mut f = frame(i, second, 100 + second, &latencies);
            if i == 1 {
                f.total.errors = 1;
                f.total.error_kinds = [("timeout".to_string(), 1)].into_iter().collect();
                f.steps.insert("login".into(), stats(&[7_000]));
                f.dropped = second;
            }
            if (i, second) == (2, 2) {
                f.health.cpu_percent = 99.0;
            }
            f.is_final = second == 3;
            frames.push(f);
        }
    }
    frames
}

fn assert_same_totals(a: &Totals, b: &Totals) {
    assert_eq!(
        (a.all.requests, a.all.errors),
        (b.all.requests, b.all.errors)
    );
    assert_eq!(a.all.status_codes, b.all.status_codes);
    assert_eq!(a.all.error_kinds, b.all.error_kinds);
    assert_eq!(a.all.latency, b.all.latency, "merged histograms are equal");
    assert_eq!(a.all.service_latency, b.all.service_latency);
    assert_eq!(a.per_agent, b.per_agent);
    assert_eq!(
        a.steps.keys().collect::<Vec<_>>(),
        b.steps.keys().collect::<Vec<_>>()
    );
    for (label, s) in &a.steps {
        assert_eq!(s.requests, b.steps[label].requests, "step {label}");
        assert_eq!(s.latency, b.steps[label].latency, "step {label}");
    }
    assert_eq!(a.dropped, b.dropped);
    assert_eq!(a.bottlenecks.len(), b.bottlenecks.len());
    assert_eq!(
        (a.first_second, a.last_second),
        (b.first_second, b.last_second)
    );
}

#[test]
fn a_restored_aggregator_counts_every_frame_exactly_once() {
    let frames = frames();
    let mut reference = aggregator(3);
    for f in &frames {
        ingest(&mut reference, f);
    }

    // The first coordinator: frames arrive, seconds are emitted and stored as they go…
    let mut first = aggregator(3);
    let mut stored = Stored::default();
    let crash_at = 7;
    for (k, f) in frames.iter().enumerate().take(crash_at) {
        ingest(&mut first, f);
        if k == 3 {
            assert_eq!(seconds(&first.poll_ready(deadline(100))), vec![100]);
        }
        stored.save(&mut first);
    }
    // …and one more frame is merged but the coordinator dies before storing it.
    ingest(&mut first, &frames[crash_at]);

    // The restarted coordinator rebuilds from the store; the broker delivers again every frame
    // that was not acknowledged (the unstored one), and some that were (a QoS1 duplicate).
    let mut second = stored.restore();
    for f in &frames[crash_at - 2..crash_at] {
        assert_eq!(ingest(&mut second, f), Ingest::Duplicate);
    }
    for f in &frames[crash_at..] {
        assert_eq!(ingest(&mut second, f), Ingest::Accepted);
    }
    assert_same_totals(reference.totals(), second.totals());
    assert_eq!(second.totals().bottlenecks.len(), 1);
    for i in 0..3 {
        second.agent_finished(&agent(i), 4);
    }
    assert!(second.is_complete());
    let all = second.flush_all();
    assert_eq!(seconds(&all), vec![100, 101, 102, 103]);
    assert_eq!(
        all.iter().map(|s| s.stats.requests).sum::<u64>(),
        reference.totals().all.requests
    );
    assert!(all.iter().all(|s| s.agents_reported == 3));
}

#[test]
fn restored_seconds_are_emitted_again_once_complete_or_late() {
    let frames = frames();
    let mut first = aggregator(3);
    let mut stored = Stored::default();
    for f in &frames[..5] {
        ingest(&mut first, f);
    }
    stored.save(&mut first);
    let mut second = stored.restore();
    // Second 100 is complete: it is emitted at once; 101 still awaits agent 2.
    assert_eq!(seconds(&second.poll_ready(100_500)), vec![100]);
    assert!(second.poll_ready(deadline(101) - 1).is_empty());
    assert_eq!(seconds(&second.poll_ready(deadline(101))), vec![101]);
    assert!(second.take_dirty().iter().all(|d| d.emitted));
}

#[test]
fn a_checkpoint_naming_a_stranger_is_refused() {
    let mut first = aggregator(3);
    let mut stored = Stored::default();
    ingest(&mut first, &frame(2, 0, 100, &[1_000]));
    stored.save(&mut first);
    let err = Aggregator::restore(
        run(),
        vec![agent(0), agent(1)],
        Duration::ZERO,
        Some(100),
        stored.0,
    )
    .expect_err("agent-2 is not part of this run");
    assert!(err.to_string().contains("agent-2"), "{err}");
}
