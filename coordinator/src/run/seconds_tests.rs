//! A long run's summary rows: those that can no longer change leave memory once stored, and the
//! summary still has every second, read back from the store.

use super::*;
use crate::aggregate::LATE_HORIZON_S;
use crate::run::actor::SecondsInMemory;

#[actix::test]
async fn a_long_runs_settled_seconds_leave_memory_and_the_summary_still_has_every_one() {
    tokio::time::pause();
    let mut h = start_run(plan(2, 300));
    let s0 = h.start_all(2).await;
    let feeds = (feed(&h, 0, s0), feed(&h, 1, s0));
    tokio::time::sleep(Duration::from_secs(150)).await;
    let held = h.handle.addr.send(SecondsInMemory).await.expect("alive");
    // About the late horizon's worth of seconds, not the 150 of the run so far.
    assert!(
        held <= LATE_HORIZON_S as usize + 5,
        "{held} seconds held in memory after 150 s"
    );
    let sent = finish_feed(&h, 0, s0, feeds.0).await + finish_feed(&h, 1, s0, feeds.1).await;
    let summary = h.handle.outcome.await.expect("summary");
    assert_eq!(
        summary.run_state,
        RunState::Completed,
        "{:?}",
        summary.reason
    );
    assert_eq!(summary.requests, sent);
    let ts: Vec<u64> = summary.seconds.iter().map(|s| s.t).collect();
    assert!(ts.len() > 150, "{} seconds in the summary", ts.len());
    assert_eq!(
        ts,
        (0..ts.len() as u64).collect::<Vec<_>>(),
        "every second, in order"
    );
    assert_eq!(
        summary.seconds.iter().map(|s| s.requests).sum::<u64>(),
        sent,
        "the seconds read back add up to the run's count"
    );
}
