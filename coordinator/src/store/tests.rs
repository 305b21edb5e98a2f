//! The embedded store, exercised through the [`Store`] trait as the actors use it.

use super::*;
use crate::aggregate::Aggregator;
use herd_protocol::frame::{Frame, Stats};
use herd_protocol::histogram::{new_latency, record_us, LatencyMs};
use herd_protocol::summary::{AgentSummary, RunState, Verdict};
use herd_protocol::AgentId;
use std::time::Duration;

const ALL_STATES: [RunStateName; 8] = [
    RunStateName::Launching,
    RunStateName::WaitingReady,
    RunStateName::Running,
    RunStateName::Stopping,
    RunStateName::Completed,
    RunStateName::Degraded,
    RunStateName::Failed,
    RunStateName::Cancelled,
];

fn id(s: &str) -> RunId {
    RunId::new(s).expect("valid id")
}

fn record(run: &str, created_at_ms: u64) -> RunRecord {
    RunRecord {
        id: id(run),
        name: format!("plan of {run}"),
        test: None,
        plan: serde_json::json!({ "name": run, "agents": 2, "load": { "stages": [] } }),
        state: RunStateName::Launching,
        agents: 2,
        created_at_ms,
        updated_at_ms: created_at_ms,
        reason: None,
        start_at_ms: None,
    }
}

fn second(t: u64, requests: u64, latency_us: u64) -> SecondRecord {
    let mut h = new_latency();
    for _ in 0..requests {
        record_us(&mut h, latency_us);
    }
    SecondRecord {
        t,
        second: 1_700_000_000 + t,
        requests,
        errors: 1,
        p50_ms: latency_us as f64 / 1000.0,
        p99_ms: latency_us as f64 / 1000.0,
        agents_reported: 2,
        agents_expected: 3,
        status_codes: [(200, requests - 1), (503, 1)].into_iter().collect(),
        histogram: EncodedHistogram::encode(&h),
        checkpoint: None,
    }
}

fn summary(run: &str, requests: u64) -> Summary {
    Summary {
        run_id: run.into(),
        name: "checkout".into(),
        status: Verdict::Error,
        run_state: RunState::Degraded,
        reason: Some("agents lost: agent-1: no heartbeat".into()),
        requests,
        errors: 2,
        error_rate: 2.0,
        rps: 50.5,
        duration_s: 2.0,
        latency_ms: LatencyMs {
            p99: 12.5,
            ..LatencyMs::default()
        },
        status_codes: [("200".to_string(), requests - 2)].into_iter().collect(),
        error_kinds: [("timeout".to_string(), 2)].into_iter().collect(),
        steps: BTreeMap::new(),
        agents: vec![AgentSummary {
            id: "agent-0".into(),
            pid: Some(42),
            requests,
            errors: 2,
            lost: false,
        }],
        start_skew_ms: 3.5,
        thresholds: vec![],
        seconds: vec![second(0, 10, 1_000).to_summary()],
        lost_agents: vec!["agent-1".into()],
        service_latency_ms: Default::default(),
        dropped: 0,
        checks: Default::default(),
        bottlenecks: vec![],
    }
}

#[tokio::test]
async fn runs_are_created_read_and_listed_newest_first() {
    let store = EmbeddedStore::in_memory().expect("store");
    for (run, at) in [("a", 1_000), ("c", 3_000), ("b", 2_000)] {
        store.create_run(record(run, at)).await.expect("created");
    }
    assert_eq!(
        store.get_run(&id("b")).await.expect("read"),
        Some(record("b", 2_000))
    );
    assert_eq!(store.get_run(&id("zzz")).await.expect("read"), None);
    let ids = |runs: Vec<RunRecord>| {
        runs.into_iter()
            .map(|r| r.id.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(store.list_runs(10).await.expect("list")),
        ["c", "b", "a"]
    );
    assert_eq!(ids(store.list_runs(2).await.expect("list")), ["c", "b"]);
    assert!(store.list_runs(0).await.expect("list").is_empty());
}

#[tokio::test]
async fn a_duplicate_run_id_is_refused() {
    let store = EmbeddedStore::in_memory().expect("store");
    store.create_run(record("r", 1)).await.expect("created");
    let again = store.create_run(record("r", 2)).await;
    assert!(matches!(again, Err(StoreError::RunExists(run)) if run == id("r")));
    assert_eq!(
        store
            .get_run(&id("r"))
            .await
            .expect("read")
            .map(|r| r.created_at_ms),
        Some(1)
    );
}

#[tokio::test]
async fn state_transitions_persist_across_reopening() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("nested").join("store");
    {
        let store = EmbeddedStore::open(&path).expect("opened");
        store.create_run(record("r", 10)).await.expect("created");
        store
            .set_run_state(&id("r"), RunStateName::Running, 20, None)
            .await
            .expect("running");
        store
            .set_run_state(
                &id("r"),
                RunStateName::Degraded,
                30,
                Some("agent-1 lost".into()),
            )
            .await
            .expect("degraded");
        store
            .put_second(&id("r"), second(0, 5, 900))
            .await
            .expect("second");
    }
    assert!(path.join(embedded::FILE_NAME).is_file());
    let store = EmbeddedStore::open(&path).expect("reopened");
    let run = store
        .get_run(&id("r"))
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(run.state, RunStateName::Degraded);
    assert_eq!(run.reason.as_deref(), Some("agent-1 lost"));
    assert_eq!((run.created_at_ms, run.updated_at_ms), (10, 30));
    assert_eq!(run.plan, record("r", 10).plan);
    assert_eq!(
        store.list_seconds(&id("r")).await.expect("seconds").len(),
        1
    );
}

#[tokio::test]
async fn the_file_store_runs_in_wal_mode() {
    let dir = tempfile::tempdir().expect("temp dir");
    drop(EmbeddedStore::open(dir.path()).expect("opened"));
    let conn = rusqlite::Connection::open(dir.path().join(embedded::FILE_NAME)).expect("sqlite");
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .expect("journal mode");
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn a_database_from_a_newer_herd_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    drop(EmbeddedStore::open(dir.path()).expect("opened"));
    let conn = rusqlite::Connection::open(dir.path().join(embedded::FILE_NAME)).expect("sqlite");
    conn.pragma_update(None, "user_version", 99)
        .expect("set version");
    drop(conn);
    let err = EmbeddedStore::open(dir.path()).expect_err("refused");
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 99, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn writes_to_an_unknown_run_name_it() {
    let store = EmbeddedStore::in_memory().expect("store");
    let nobody = id("nobody");
    let unknown = |r: Result<(), StoreError>| matches!(r, Err(StoreError::UnknownRun(run)) if run == id("nobody"));
    assert!(unknown(
        store
            .set_run_state(&nobody, RunStateName::Running, 1, None)
            .await
    ));
    assert!(unknown(store.put_second(&nobody, second(0, 1, 1)).await));
    assert!(unknown(
        store.put_summary(&nobody, &summary("nobody", 3)).await
    ));
}

#[tokio::test]
async fn a_second_stored_again_replaces_the_first() {
    let store = EmbeddedStore::in_memory().expect("store");
    store.create_run(record("r", 1)).await.expect("created");
    store
        .put_second(&id("r"), second(1, 4, 2_000))
        .await
        .expect("t=1");
    store
        .put_second(&id("r"), second(0, 3, 1_000))
        .await
        .expect("t=0");
    // A late frame changed second 0.
    store
        .put_second(&id("r"), second(0, 7, 5_000))
        .await
        .expect("t=0 again");
    let seconds = store.list_seconds(&id("r")).await.expect("seconds");
    assert_eq!(seconds, vec![second(0, 7, 5_000), second(1, 4, 2_000)]);
    let h = seconds[0].histogram.decode().expect("histogram");
    assert_eq!(h.len(), 7);
    assert!(store
        .list_seconds(&id("other"))
        .await
        .expect("none")
        .is_empty());
}

#[tokio::test]
async fn summaries_round_trip_and_are_replaced() {
    let store = EmbeddedStore::in_memory().expect("store");
    store.create_run(record("r", 1)).await.expect("created");
    assert_eq!(store.get_summary(&id("r")).await.expect("read"), None);
    store
        .put_summary(&id("r"), &summary("r", 100))
        .await
        .expect("stored");
    assert_eq!(
        store.get_summary(&id("r")).await.expect("read"),
        Some(summary("r", 100))
    );
    store
        .put_summary(&id("r"), &summary("r", 200))
        .await
        .expect("replaced");
    assert_eq!(
        store
            .get_summary(&id("r"))
            .await
            .expect("read")
            .map(|s| s.requests),
        Some(200)
    );
}

#[test]
fn run_state_names_round_trip() {
    for state in ALL_STATES {
        assert_eq!(state.as_str().parse::<RunStateName>(), Ok(state));
        assert_eq!(
            serde_json::to_value(state).ok(),
            Some(serde_json::Value::String(state.to_string()))
        );
    }
    assert_eq!(
        "paused".parse::<RunStateName>(),
        Err(UnknownRunState("paused".into()))
    );
}

#[test]
fn a_second_record_is_made_from_an_aggregate() {
    let run = id("r");
    let mut aggregator = Aggregator::new(run.clone(), vec![AgentId::numbered(0)], Duration::ZERO);
    aggregator.set_start_second(1_000);
    let mut h = new_latency();
    for us in [1_000, 2_000, 3_000, 40_000] {
        record_us(&mut h, us);
    }
    let total = Stats {
        requests: 4,
        errors: 0,
        status_codes: [(200, 4)].into_iter().collect(),
        error_kinds: BTreeMap::new(),
        latency: EncodedHistogram::encode(&h),
        ..Stats::default()
    };
    let frame = Frame {
        version: 1,
        run,
        agent: AgentId::numbered(0),
        seq: 0,
        second: 1_002,
        is_final: false,
        vus: 1,
        total,
        steps: BTreeMap::new(),
        dropped: 0,
        health: Default::default(),
    };
    aggregator.ingest(&frame).expect("accepted");
    let aggregates = aggregator.flush_all();
    let rec = SecondRecord::from_aggregate(&aggregates[0], None);
    assert_eq!(
        (rec.t, rec.second, rec.requests, rec.errors),
        (2, 1_002, 4, 0)
    );
    assert_eq!((rec.agents_reported, rec.agents_expected), (1, 1));
    assert!((rec.p50_ms - 2.0).abs() < 0.01);
    assert!((rec.p99_ms - 40.0).abs() < 0.05);
    assert_eq!(rec.status_codes, [(200, 4)].into_iter().collect());
    assert_eq!(rec.histogram.decode().map(|h| h.len()).ok(), Some(4));
    assert_eq!(rec.to_summary(), aggregates[0].to_summary());
}
