//! The resume half of the store (start times, unfinished runs, claims, agents' records, seconds'
//! merge state), through the [`Store`] trait, and the schema migration that added it.

use super::*;
use crate::aggregate::Aggregator;
use herd_protocol::frame::{Frame, Stats};
use herd_protocol::histogram::{new_latency, record_us};
use herd_protocol::AgentId;
use std::time::Duration;

fn id(s: &str) -> RunId {
    RunId::new(s).expect("valid id")
}

fn record(run: &str, created_at_ms: u64, state: RunStateName) -> RunRecord {
    RunRecord {
        id: id(run),
        name: run.into(),
        test: None,
        plan: serde_json::json!({ "name": run }),
        state,
        agents: 2,
        created_at_ms,
        updated_at_ms: created_at_ms,
        reason: None,
        start_at_ms: None,
    }
}

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
    }
}

#[tokio::test]
async fn claims_are_exclusive_until_the_lease_ends() {
    let store = EmbeddedStore::in_memory().expect("store");
    store
        .create_run(record("r", 1, RunStateName::Running))
        .await
        .expect("created");
    let r = id("r");
    assert_eq!(
        store.claim_run(&r, "a", 0, 100).await.ok(),
        Some(Claim::Granted)
    );
    let held = |owner: &str, until_ms| {
        Some(Claim::HeldBy {
            owner: owner.into(),
            until_ms,
        })
    };
    assert_eq!(store.claim_run(&r, "b", 50, 100).await.ok(), held("a", 100));
    // The owner renews: its lease now ends at 160.
    assert_eq!(
        store.claim_run(&r, "a", 60, 100).await.ok(),
        Some(Claim::Granted)
    );
    assert_eq!(
        store.claim_run(&r, "b", 160, 100).await.ok(),
        held("a", 160)
    );
    // Once it ran out, another coordinator takes the run over, and the first one cannot renew.
    assert_eq!(
        store.claim_run(&r, "b", 161, 100).await.ok(),
        Some(Claim::Granted)
    );
    assert_eq!(
        store.claim_run(&r, "a", 170, 100).await.ok(),
        held("b", 261)
    );
    assert!(matches!(
        store.claim_run(&id("nobody"), "a", 0, 1).await,
        Err(StoreError::UnknownRun(run)) if run == id("nobody")
    ));
}

#[tokio::test]
async fn unfinished_runs_are_listed_oldest_first_with_their_start() {
    let store = EmbeddedStore::in_memory().expect("store");
    for (run, at, state) in [
        ("done", 1, RunStateName::Completed),
        ("stopping", 4, RunStateName::Stopping),
        ("running", 2, RunStateName::Running),
        ("failed", 3, RunStateName::Failed),
        ("launching", 5, RunStateName::Launching),
    ] {
        store
            .create_run(record(run, at, state))
            .await
            .expect("created");
    }
    store
        .set_run_start(&id("running"), 1_234)
        .await
        .expect("start");
    let unfinished = store.list_unfinished_runs().await.expect("list");
    let names: Vec<&str> = unfinished.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(names, ["running", "stopping", "launching"]);
    assert_eq!(unfinished[0].start_at_ms, Some(1_234));
    assert_eq!(unfinished[1].start_at_ms, None);
    assert!(matches!(
        store.set_run_start(&id("nobody"), 1).await,
        Err(StoreError::UnknownRun(_))
    ));
}

#[tokio::test]
async fn an_agent_record_is_replaced_whole() {
    let store = EmbeddedStore::in_memory().expect("store");
    store
        .create_run(record("r", 1, RunStateName::Running))
        .await
        .expect("created");
    let r = id("r");
    for a in [agent(1, None), agent(0, None), agent(1, Some(7))] {
        store.put_agent(&r, a).await.expect("stored");
    }
    assert_eq!(
        store.list_agents(&r).await.expect("list"),
        vec![agent(0, None), agent(1, Some(7))]
    );
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

#[tokio::test]
async fn a_second_keeps_its_merge_state() {
    let store = EmbeddedStore::in_memory().expect("store");
    store
        .create_run(record("r", 1, RunStateName::Running))
        .await
        .expect("created");
    let run = id("r");
    let mut aggregator = Aggregator::new(run.clone(), vec![AgentId::numbered(0)], Duration::ZERO);
    aggregator.set_start_second(100);
    let mut h = new_latency();
    record_us(&mut h, 1_500);
    let total = Stats {
        requests: 1,
        status_codes: [(200, 1)].into_iter().collect(),
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
    assert_eq!(checkpoint.frames.len(), 1);
    assert!(checkpoint.frames[0].is_final);
    assert_eq!((checkpoint.dropped, checkpoint.steps.len()), (2, 1));
}

#[tokio::test]
async fn a_version_2_store_is_migrated_and_its_runs_can_be_resumed() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let conn = rusqlite::Connection::open(dir.path().join(embedded::FILE_NAME)).expect("open");
        for migration in &embedded::MIGRATIONS[..2] {
            conn.execute_batch(migration).expect("version 2 schema");
        }
        conn.execute_batch(
            "INSERT INTO runs (id, name, plan, state, agents, created_at_ms, updated_at_ms)
                 VALUES ('old', 'n', '{}', 'running', 2, 1, 2);
             INSERT INTO seconds VALUES ('old', 0, 100, 5, 0, 1.0, 1.0, 2, 2, '{\"200\":5}', '');
             PRAGMA user_version = 2;",
        )
        .expect("version 2 data");
    }
    let store = EmbeddedStore::open(dir.path()).expect("migrated");
    let old = id("old");
    let run = store.get_run(&old).await.expect("read").expect("kept");
    assert_eq!((run.state, run.start_at_ms), (RunStateName::Running, None));
    let seconds = store.list_seconds(&old).await.expect("seconds");
    assert_eq!(seconds.len(), 1);
    assert_eq!(
        (seconds[0].requests, seconds[0].checkpoint.is_none()),
        (5, true)
    );
    assert_eq!(
        store
            .list_unfinished_runs()
            .await
            .expect("unfinished")
            .len(),
        1
    );
    assert_eq!(
        store.claim_run(&old, "me", 10, 5).await.ok(),
        Some(Claim::Granted)
    );
    store.set_run_start(&old, 99).await.expect("start");
    store.put_agent(&old, agent(0, None)).await.expect("agent");
    assert_eq!(store.list_agents(&old).await.expect("agents").len(), 1);
    drop(store);
    let conn = rusqlite::Connection::open(dir.path().join(embedded::FILE_NAME)).expect("open");
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .expect("version");
    assert_eq!(version, 3);
}
