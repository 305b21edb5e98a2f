//! The behaviour every [`Store`] must have, written once over `Arc<dyn Store>` and run against
//! each store: `store_suite!(subject())` in a store's test module expands into one `#[tokio::test]`
//! per check below, each on a fresh [`Subject`] (the embedded store in a temporary directory, the
//! DynamoDB store on its own moto server).

mod resume;

pub(crate) use resume::*;

use super::*;
use herd_protocol::command::{Every, Schedule};
use herd_protocol::histogram::{new_latency, record_us, LatencyMs};
use herd_protocol::summary::{AgentSummary, RunState, Verdict};
use std::any::Any;
use std::sync::Arc;

/// A store under test.
pub(crate) struct Subject {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Opens the same data again, as a restarted coordinator would.
    pub reopen: Box<dyn Fn() -> StoreFuture<Arc<dyn Store>> + Send + Sync>,
    /// What must live as long as the store (a temporary directory, an emulator).
    pub _guard: Box<dyn Any + Send>,
}

/// One `#[tokio::test]` per check of the suite, each on a fresh subject made by `$subject`
/// (an expression giving a `Future<Output = Subject>`).
macro_rules! store_suite {
    ($subject:expr) => {
        $crate::store::suite::store_suite!(@each $subject;
            runs_are_created_read_and_listed_newest_first,
            a_duplicate_run_id_is_refused,
            state_transitions_persist_across_reopening,
            writes_to_an_unknown_run_name_it,
            a_second_stored_again_replaces_the_first,
            summaries_round_trip_and_are_replaced,
            tests_are_created_filtered_updated_and_deleted,
            runs_of_a_test_are_listed_newest_first_and_paged,
            command_ids_keep_their_first_reply,
            tokens_are_found_by_hash,
            tokens_are_listed_and_revoked_once,
            audit_entries_are_kept_once_newest_first,
            claims_are_exclusive_until_the_lease_ends,
            unfinished_runs_are_listed_oldest_first_with_their_start_and_end,
            an_agent_record_is_replaced_whole,
            a_second_keeps_its_merge_state,
        );
    };
    (@each $subject:expr; $($check:ident,)*) => {
        $(
            #[tokio::test]
            async fn $check() {
                $crate::store::suite::$check($subject.await).await;
            }
        )*
    };
}
pub(crate) use store_suite;

pub(crate) fn id(s: &str) -> RunId {
    RunId::new(s).expect("valid id")
}

pub(crate) fn record(run: &str, created_at_ms: u64) -> RunRecord {
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
        ends_at_ms: None,
    }
}

pub(crate) fn second(t: u64, requests: u64, latency_us: u64) -> SecondRecord {
    let mut h = new_latency();
    for _ in 0..requests {
        record_us(&mut h, latency_us);
    }
    SecondRecord {
        t,
        second: 1_700_000_000 + t,
        requests,
        errors: 1,
        dropped: t % 3,
        p50_ms: latency_us as f64 / 1000.0,
        p99_ms: latency_us as f64 / 1000.0,
        agents_reported: 2,
        agents_expected: 3,
        status_codes: [(200, requests - 1), (503, 1)].into_iter().collect(),
        histogram: EncodedHistogram::encode(&h),
        detail: SecondDetail {
            p90_ms: Some(latency_us as f64 / 1000.0),
            p999_ms: Some(latency_us as f64 / 500.0),
            vus: Some(10 + t),
            error_kinds: [("timeout".to_string(), 1)].into_iter().collect(),
            health: Some(SecondHealth {
                cpu_max_percent: 42.5,
                cpu_max_agent: "agent-1".into(),
                loop_lag_max_ms: 3.25,
                in_flight: 7,
                bottlenecks: 0,
            }),
            regions: [(
                "eu-west-1".to_string(),
                herd_protocol::summary::RegionSecond {
                    requests,
                    errors: 1,
                    p50_ms: 1.5,
                    p99_ms: 2.5,
                },
            )]
            .into_iter()
            .collect(),
            scenarios: [(
                "browse".to_string(),
                herd_protocol::summary::RegionSecond {
                    requests,
                    errors: 1,
                    p50_ms: 1.25,
                    p99_ms: 2.75,
                },
            )]
            .into_iter()
            .collect(),
        },
        checkpoint: None,
    }
}

pub(crate) fn summary(run: &str, requests: u64) -> Summary {
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
        groups: BTreeMap::new(),
        regions: [(
            "eu-west-1".to_string(),
            herd_protocol::summary::StepSummary {
                requests,
                errors: 2,
                ..Default::default()
            },
        )]
        .into_iter()
        .collect(),
        agents: vec![AgentSummary {
            id: "agent-0".into(),
            pid: Some(42),
            requests,
            errors: 2,
            lost: false,
            gaps: vec![],
        }],
        start_skew_ms: 3.5,
        start_late_ms: 1.5,
        start_lead_ms: 200.0,
        thresholds: vec![],
        seconds: vec![second(0, 10, 1_000).to_summary()],
        lost_agents: vec!["agent-1".into()],
        overrides: Vec::new(),
        outputs: Vec::new(),
        service_latency_ms: Default::default(),
        dropped: 0,
        checks: Default::default(),
        bottlenecks: vec![],
        scenarios: BTreeMap::new(),
        setup: None,
        teardown: None,
    }
}

pub(crate) fn test(id: &str, name: &str, tags: &[&str]) -> TestRecord {
    TestRecord {
        id: id.into(),
        name: name.into(),
        plan: serde_json::json!({"name": name}),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        schedule: Some(Schedule::Recurring {
            every: Every::Biweekly,
            start: "2026-03-01T09:00:00Z".into(),
            tz: "Europe/Paris".into(),
            until: None,
        }),
        next_fire_ms: Some(42),
        baseline_run: None,
        created_at_ms: 1,
        updated_at_ms: 2,
    }
}

fn ids(runs: Vec<RunRecord>) -> Vec<String> {
    runs.into_iter().map(|r| r.id.to_string()).collect()
}

pub(crate) async fn runs_are_created_read_and_listed_newest_first(subject: Subject) {
    let store = subject.store;
    for (run, at) in [("a", 1_000), ("c", 3_000), ("b", 2_000)] {
        store.create_run(record(run, at)).await.expect("created");
    }
    assert_eq!(
        store.get_run(&id("b")).await.expect("read"),
        Some(record("b", 2_000))
    );
    assert_eq!(store.get_run(&id("zzz")).await.expect("read"), None);
    assert_eq!(
        ids(store.list_runs(10).await.expect("list")),
        ["c", "b", "a"]
    );
    assert_eq!(ids(store.list_runs(2).await.expect("list")), ["c", "b"]);
    assert!(store.list_runs(0).await.expect("list").is_empty());
}

pub(crate) async fn a_duplicate_run_id_is_refused(subject: Subject) {
    let store = subject.store;
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

pub(crate) async fn state_transitions_persist_across_reopening(subject: Subject) {
    {
        let store = &subject.store;
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
    let store = (subject.reopen)().await.expect("reopened");
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
        store.list_seconds(&id("r")).await.expect("seconds"),
        [second(0, 5, 900)]
    );
}

pub(crate) async fn writes_to_an_unknown_run_name_it(subject: Subject) {
    let store = subject.store;
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

pub(crate) async fn a_second_stored_again_replaces_the_first(subject: Subject) {
    let store = subject.store;
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
    // The summaries' read gives the same rows, whatever it leaves unread.
    assert_eq!(
        store
            .list_second_summaries(&id("r"))
            .await
            .expect("summaries"),
        seconds
            .iter()
            .map(SecondRecord::to_summary)
            .collect::<Vec<_>>()
    );
    assert!(store
        .list_seconds(&id("other"))
        .await
        .expect("none")
        .is_empty());
}

pub(crate) async fn summaries_round_trip_and_are_replaced(subject: Subject) {
    let store = subject.store;
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

pub(crate) async fn tests_are_created_filtered_updated_and_deleted(subject: Subject) {
    let store = subject.store;
    store
        .create_test(test("b", "beta", &["nightly"]))
        .await
        .expect("create");
    store
        .create_test(test("a", "alpha", &["smoke", "nightly"]))
        .await
        .expect("create");
    assert!(matches!(
        store.create_test(test("a", "again", &[])).await,
        Err(StoreError::TestExists(id)) if id == "a"
    ));
    let names = |tests: Vec<TestRecord>| tests.into_iter().map(|t| t.name).collect::<Vec<_>>();
    assert_eq!(
        names(store.list_tests(None).await.expect("list")),
        ["alpha", "beta"]
    );
    assert_eq!(
        names(store.list_tests(Some("smoke".into())).await.expect("list")),
        ["alpha"]
    );
    assert!(store
        .list_tests(Some("none".into()))
        .await
        .expect("list")
        .is_empty());

    let mut changed = test("a", "alpha2", &[]);
    changed.baseline_run = Some(RunId::new("r1").expect("valid"));
    changed.schedule = None;
    store.update_test(changed.clone()).await.expect("update");
    assert_eq!(store.get_test("a").await.expect("get"), Some(changed));
    store.set_next_fire("b", None).await.expect("next fire");
    assert_eq!(
        store
            .get_test("b")
            .await
            .expect("get")
            .and_then(|t| t.next_fire_ms),
        None
    );
    store.set_next_fire("b", Some(77)).await.expect("next fire");
    assert_eq!(
        store
            .get_test("b")
            .await
            .expect("get")
            .and_then(|t| t.next_fire_ms),
        Some(77)
    );
    assert!(matches!(
        store.set_next_fire("zz", Some(1)).await,
        Err(StoreError::UnknownTest(id)) if id == "zz"
    ));
    assert!(matches!(
        store.update_test(test("zz", "x", &[])).await,
        Err(StoreError::UnknownTest(_))
    ));
    assert!(store.delete_test("a").await.expect("delete"));
    assert!(!store.delete_test("a").await.expect("delete"));
    assert_eq!(store.get_test("a").await.expect("get"), None);
}

pub(crate) async fn runs_of_a_test_are_listed_newest_first_and_paged(subject: Subject) {
    let store = subject.store;
    for (run, t, at) in [
        ("r1", Some("t"), 1),
        ("r2", Some("t"), 2),
        ("x", None, 3),
        ("r3", Some("t"), 4),
    ] {
        let mut rec = record(run, at);
        rec.test = t.map(String::from);
        store.create_run(rec).await.expect("create");
    }
    assert_eq!(
        ids(store.list_test_runs("t", 2, 0).await.expect("page")),
        ["r3", "r2"]
    );
    assert_eq!(
        ids(store.list_test_runs("t", 2, 2).await.expect("page")),
        ["r1"]
    );
    assert!(store
        .list_test_runs("t", 0, 0)
        .await
        .expect("page")
        .is_empty());
    assert!(store
        .list_test_runs("other", 5, 0)
        .await
        .expect("page")
        .is_empty());
    assert_eq!(
        store
            .get_run(&id("r1"))
            .await
            .expect("get")
            .and_then(|r| r.test),
        Some("t".into())
    );
}

pub(crate) async fn command_ids_keep_their_first_reply(subject: Subject) {
    let store = subject.store;
    assert_eq!(store.get_command("c1").await.expect("get"), None);
    store
        .put_command("c1", serde_json::json!({"run": "r1"}), 5)
        .await
        .expect("put");
    store
        .put_command("c1", serde_json::json!({"run": "r2"}), 6)
        .await
        .expect("put again");
    assert_eq!(
        store.get_command("c1").await.expect("get"),
        Some(serde_json::json!({"run": "r1"}))
    );
}

pub(crate) async fn tokens_are_found_by_hash(subject: Subject) {
    let store = subject.store;
    let token = TokenRecord {
        id: "tok-1".into(),
        hash: "abc".into(),
        role: Role::Viewer,
        created_at_ms: 9,
        expires_at_ms: Some(1_000),
        revoked_at_ms: None,
    };
    store.create_token(token.clone()).await.expect("create");
    assert_eq!(store.find_token("abc").await.expect("find"), Some(token));
    assert_eq!(store.find_token("abd").await.expect("find"), None);
}

pub(crate) async fn tokens_are_listed_and_revoked_once(subject: Subject) {
    let store = subject.store;
    for (id, hash) in [("tok-b", "h2"), ("tok-a", "h1")] {
        let token = TokenRecord {
            id: id.into(),
            hash: hash.into(),
            role: Role::Operator,
            created_at_ms: 1,
            expires_at_ms: None,
            revoked_at_ms: None,
        };
        store.create_token(token).await.expect("create");
    }
    let ids: Vec<String> = store
        .list_tokens()
        .await
        .expect("list")
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(ids, ["tok-a", "tok-b"]);
    assert!(store.revoke_token("tok-a", 50).await.expect("revoke"));
    assert!(store.revoke_token("tok-a", 70).await.expect("revoke again"));
    assert!(!store.revoke_token("tok-x", 50).await.expect("unknown"));
    let a = store.find_token("h1").await.expect("find").expect("a");
    assert_eq!(a.revoked_at_ms, Some(50), "the first revocation stays");
    assert_eq!(a.refusal(49), None);
    assert_eq!(a.refusal(50), Some("the token was revoked"));
    let b = store.find_token("h2").await.expect("find").expect("b");
    assert_eq!(b.revoked_at_ms, None, "only the named token is revoked");
}

pub(crate) async fn audit_entries_are_kept_once_newest_first(subject: Subject) {
    let store = subject.store;
    let entry = |id: &str, at_ms: u64| AuditEntry {
        id: id.into(),
        at_ms,
        actor: "tok-1".into(),
        action: format!("POST /api/v1/runs ({id})"),
        status: 201,
    };
    assert!(store.list_audit(10).await.expect("empty").is_empty());
    store.append_audit(entry("w1", 10)).await.expect("w1");
    store.append_audit(entry("w2", 20)).await.expect("w2");
    store.append_audit(entry("w1", 10)).await.expect("w1 again");
    store.append_audit(entry("w3", 30)).await.expect("w3");
    let all = store.list_audit(10).await.expect("list");
    assert_eq!(all, vec![entry("w3", 30), entry("w2", 20), entry("w1", 10)]);
    let newest = store.list_audit(2).await.expect("list 2");
    assert_eq!(newest, vec![entry("w3", 30), entry("w2", 20)]);
}
