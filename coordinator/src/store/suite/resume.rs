//! The resume half of the store's behaviour (start times, unfinished runs, claims, agents'
//! records, seconds' merge state), run against every store by `store_suite!`.

use super::{id, record, Subject};
use crate::aggregate::Aggregator;
use crate::store::{
    AgentGap, AgentRecord, Claim, RunStateName, SecondRecord, ShareMove, StoreError,
};
use herd_protocol::frame::{Frame, Stats};
use herd_protocol::histogram::{new_latency, record_us, EncodedHistogram};
use herd_protocol::AgentId;
use std::time::Duration;

fn agent(i: u32, frames: Option<u64>) -> AgentRecord {
    AgentRecord {
        agent: AgentId::numbered(i),
        handle: Some(format!("pid {}", 100 + i)),
        pid: Some(100 + i),
        ready: true,
        started_at_us: Some(1_000_000),
        finished_frames: frames,
        finished_at_ms: frames.map(|_| 9_000),
        lost: None,
        last_error: None,
        // A finished agent that was once lost and came back: the gap survives the store.
        gaps: frames
            .map(|_| AgentGap {
                silent_from_ms: 2_000,
                lost_at_ms: 7_000,
                back_at_ms: Some(8_000),
                reason: "no message sent for 5s".into(),
                // Where its share went survives too: a resumed run rebuilds the split from it.
                share: Some(ShareMove {
                    action: "redistribute".into(),
                    at_ms: 7_300,
                    to: vec![AgentId::numbered(0), AgentId::numbered(2)],
                    interim_at_ms: None,
                    note: Some("kept".into()),
                }),
            })
            .into_iter()
            .collect(),
    }
}

pub(crate) async fn claims_are_exclusive_until_the_lease_ends(subject: Subject) {
    let store = subject.store;
    store.create_run(record("r", 1)).await.expect("created");
    let r = id("r");
    let claim = |owner: &'static str, now: u64| {
        let (store, r) = (store.clone(), r.clone());
        async move { store.claim_run(&r, owner, now, 100).await.ok() }
    };
    let held = |owner: &str, until_ms| {
        Some(Claim::HeldBy {
            owner: owner.into(),
            until_ms,
        })
    };
    assert_eq!(claim("a", 0).await, Some(Claim::Granted));
    assert_eq!(claim("b", 50).await, held("a", 100));
    // The owner renews: its lease now ends at 160.
    assert_eq!(claim("a", 60).await, Some(Claim::Granted));
    assert_eq!(claim("b", 160).await, held("a", 160));
    // Once it ran out, another coordinator takes the run over, and the first cannot renew.
    assert_eq!(claim("b", 161).await, Some(Claim::Granted));
    assert_eq!(claim("a", 170).await, held("b", 261));
    assert!(matches!(
        store.claim_run(&id("nobody"), "a", 0, 1).await,
        Err(StoreError::UnknownRun(run)) if run == id("nobody")
    ));
}

pub(crate) async fn unfinished_runs_are_listed_oldest_first_with_their_start_and_end(
    subject: Subject,
) {
    let store = subject.store;
    for (run, at, state) in [
        ("done", 1, RunStateName::Completed),
        ("stopping", 4, RunStateName::Stopping),
        ("running", 2, RunStateName::Running),
        ("failed", 3, RunStateName::Failed),
        ("launching", 5, RunStateName::Launching),
    ] {
        let mut r = record(run, at);
        r.state = state;
        store.create_run(r).await.expect("created");
    }
    store
        .set_run_start(&id("running"), 1_234)
        .await
        .expect("start");
    // A live ramp moved the end of the load.
    store.set_run_end(&id("running"), 9_876).await.expect("end");
    let unfinished = store.list_unfinished_runs().await.expect("list");
    let names: Vec<&str> = unfinished.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(names, ["running", "stopping", "launching"]);
    assert_eq!(
        (unfinished[0].start_at_ms, unfinished[0].ends_at_ms),
        (Some(1_234), Some(9_876))
    );
    assert_eq!(
        (unfinished[1].start_at_ms, unfinished[1].ends_at_ms),
        (None, None)
    );
    assert_eq!(
        store
            .get_run(&id("running"))
            .await
            .expect("read")
            .map(|r| (r.start_at_ms, r.ends_at_ms)),
        Some((Some(1_234), Some(9_876)))
    );
    assert!(matches!(
        store.set_run_start(&id("nobody"), 1).await,
        Err(StoreError::UnknownRun(_))
    ));
    assert!(matches!(
        store.set_run_end(&id("nobody"), 1).await,
        Err(StoreError::UnknownRun(_))
    ));
}

pub(crate) async fn an_agent_record_is_replaced_whole(subject: Subject) {
    let store = subject.store;
    store.create_run(record("r", 1)).await.expect("created");
    let r = id("r");
    for a in [agent(1, None), agent(0, None), agent(1, Some(7))] {
        store.put_agent(&r, a).await.expect("stored");
    }
    assert_eq!(
        store.list_agents(&r).await.expect("list"),
        vec![agent(0, None), agent(1, Some(7))]
    );
    store.create_run(record("other", 2)).await.expect("created");
    assert!(store
        .list_agents(&id("other"))
        .await
        .expect("list")
        .is_empty());
    assert!(matches!(
        store.put_agent(&id("nobody"), agent(0, None)).await,
        Err(StoreError::UnknownRun(_))
    ));
}

pub(crate) async fn a_second_keeps_its_merge_state(subject: Subject) {
    let store = subject.store;
    store.create_run(record("r", 1)).await.expect("created");
    let run = id("r");
    let mut aggregator = Aggregator::new(run.clone(), vec![AgentId::numbered(0)], Duration::ZERO);
    aggregator.set_start_second(100);
    let mut h = new_latency();
    for us in [1_500, 2_500, 90_000] {
        record_us(&mut h, us);
    }
    let total = Stats {
        requests: 3,
        status_codes: [(200, 3)].into_iter().collect(),
        latency: EncodedHistogram::encode(&h),
        service_latency: EncodedHistogram::encode(&h),
        ..Stats::default()
    };
    let frame = Frame {
        version: 1,
        run: run.clone(),
        agent: AgentId::numbered(0),
        seq: 0,
        second: 100,
        is_final: true,
        vus: 1,
        steps: [("home".to_string(), total.clone())].into_iter().collect(),
        total,
        dropped: 2,
        health: Default::default(),
        sent_ms: 0,
    };
    aggregator.ingest(&frame).expect("accepted");
    let dirty = aggregator.take_dirty().remove(0);
    let second = SecondRecord::from_aggregate(&dirty.aggregate, Some(dirty.checkpoint.clone()));
    assert_eq!(&second.histogram, dirty.checkpoint.latency());
    store
        .put_second(&run, second.clone())
        .await
        .expect("stored");
    let stored = store.list_seconds(&run).await.expect("list");
    assert_eq!(stored, vec![second]);
    let checkpoint = stored[0].checkpoint.clone().expect("merge state");
    assert_eq!(checkpoint, dirty.checkpoint);
    assert!(checkpoint.frames[0].is_final);
    assert_eq!((checkpoint.dropped, checkpoint.steps.len()), (2, 1));
}
