//! Emitted seconds are kept for late frames only within [`LATE_HORIZON_S`]: memory stays bounded
//! over a long run, and a frame later than that still counts in the totals without replacing
//! its stored second.

use super::*;

#[test]
fn emitted_seconds_are_dropped_after_the_horizon_and_later_frames_still_count() {
    let mut a = aggregator(2);
    let seconds_run = LATE_HORIZON_S + 100;
    // Agent 0 reports every second; agent 1 is cut off after second 100 and delivers its
    // backlog at the end.
    for i in 0..seconds_run {
        ingest(&mut a, &frame(0, i, 100 + i, &[1_000, 2_000]));
        if i == 0 {
            ingest(&mut a, &frame(1, 0, 100, &[1_000]));
        }
        a.poll_ready(deadline(100 + i));
        a.take_dirty();
    }
    assert!(
        a.emitted.len() as u64 <= LATE_HORIZON_S + 1,
        "{} seconds kept",
        a.emitted.len()
    );
    let before = a.totals().all.requests;
    // Within the horizon: merged into its second, which is stored again.
    let recent = 100 + seconds_run - 10;
    assert_eq!(
        ingest(&mut a, &frame(1, 1, recent, &[3_000; 5])),
        Ingest::Late
    );
    assert_eq!(dirty(&mut a), vec![(recent, true)]);
    // Beyond it: in the totals (all, per step, per agent), not in a second of its own.
    assert_eq!(ingest(&mut a, &frame(1, 2, 101, &[3_000; 7])), Ingest::Late);
    assert!(
        dirty(&mut a).is_empty(),
        "its stored second is left as it was"
    );
    let t = a.totals();
    assert_eq!(t.all.requests, before + 5 + 7);
    assert_eq!(t.steps["home"].requests, before + 5 + 7);
    assert_eq!(t.per_agent[&agent(1)].0, 1 + 5 + 7);
    assert_eq!(t.beyond_horizon, (1, 7));
    // A repeat of it is still a duplicate, not counted twice.
    assert_eq!(
        ingest(&mut a, &frame(1, 2, 101, &[3_000; 7])),
        Ingest::Duplicate
    );
    assert_eq!(a.totals().all.requests, before + 12);
}

#[test]
fn a_changed_second_stays_until_it_is_handed_out() {
    let mut a = aggregator(1);
    for i in 0..=LATE_HORIZON_S {
        ingest(&mut a, &frame(0, i, 100 + i, &[1_000]));
        a.poll_ready(deadline(100 + i));
    }
    // Nothing was handed out: the oldest changed second is still there.
    assert!(a.emitted.contains_key(&100));
    let handed = dirty(&mut a);
    assert_eq!(handed.len() as u64, LATE_HORIZON_S + 1);
    ingest(
        &mut a,
        &frame(0, LATE_HORIZON_S + 1, 100 + LATE_HORIZON_S + 1, &[1_000]),
    );
    a.poll_ready(deadline(100 + LATE_HORIZON_S + 1));
    assert!(!a.emitted.contains_key(&100), "handed out, then dropped");
}

#[test]
fn a_second_being_written_stays_past_the_horizon_until_its_write_is_done() {
    let mut a = aggregator(1);
    ingest(&mut a, &frame(0, 0, 100, &[1_000, 2_000]));
    a.poll_ready(deadline(100));
    // The flush takes second 100 and its write is under way (slow: the store is failing)...
    assert_eq!(dirty(&mut a), vec![(100, true)]);
    a.hold([100]);
    // ...while the run goes on past the horizon.
    for i in 1..=LATE_HORIZON_S + 5 {
        ingest(&mut a, &frame(0, i, 100 + i, &[1_000]));
        a.poll_ready(deadline(100 + i));
    }
    // The write failed: the second is handed out again, whole.
    a.release();
    a.mark_dirty(100);
    let again = a.take_dirty();
    let first = again.iter().find(|d| d.aggregate.second == 100);
    assert_eq!(
        first.map(|d| d.aggregate.stats.requests),
        Some(2),
        "second 100 is written again"
    );
    // Once written, it goes at the next emission.
    a.release();
    ingest(
        &mut a,
        &frame(0, LATE_HORIZON_S + 6, 106 + LATE_HORIZON_S, &[1_000]),
    );
    a.poll_ready(deadline(106 + LATE_HORIZON_S));
    assert!(!a.emitted.contains_key(&100));
}
