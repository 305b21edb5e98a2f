//! The embedded store: the behaviour every store shares ([`suite`]), and what is its own (a file
//! in WAL mode, schema versions).

use super::suite::{id, store_suite, Subject};
use super::*;
use crate::aggregate::Aggregator;
use herd_protocol::frame::{Frame, Stats};
use herd_protocol::histogram::{new_latency, record_us};
use herd_protocol::AgentId;
use std::sync::Arc;
use std::time::Duration;

/// An embedded store in a fresh temporary directory, reopened from the same file.
async fn subject() -> Subject {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("nested").join("store");
    let store = EmbeddedStore::open(&path).expect("opened");
    Subject {
        store: Arc::new(store),
        reopen: Box::new(move || {
            let path = path.clone();
            Box::pin(async move {
                assert!(path.join(embedded::FILE_NAME).is_file());
                Ok(Arc::new(EmbeddedStore::open(&path)?) as Arc<dyn Store>)
            })
        }),
        _guard: Box::new(dir),
    }
}

store_suite!(subject());

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
        sent_ms: 0,
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
