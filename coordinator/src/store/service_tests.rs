//! The service-mode half of the embedded store: tests, runs per test, command ids, tokens, and the
//! migration of a store written before they existed.

use super::*;
use herd_protocol::command::{Every, Schedule};

fn test(id: &str, name: &str, tags: &[&str]) -> TestRecord {
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

fn run(id: &str, test: Option<&str>, at: u64) -> RunRecord {
    RunRecord {
        id: RunId::new(id).expect("valid"),
        name: "n".into(),
        test: test.map(String::from),
        plan: serde_json::json!({}),
        state: RunStateName::Launching,
        agents: 1,
        created_at_ms: at,
        updated_at_ms: at,
        reason: None,
        start_at_ms: None,
    }
}

#[tokio::test]
async fn tests_are_created_filtered_updated_and_deleted() {
    let store = EmbeddedStore::in_memory().expect("store");
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
    assert!(matches!(
        store.update_test(test("zz", "x", &[])).await,
        Err(StoreError::UnknownTest(_))
    ));
    assert!(store.delete_test("a").await.expect("delete"));
    assert!(!store.delete_test("a").await.expect("delete"));
    assert_eq!(store.get_test("a").await.expect("get"), None);
}

#[tokio::test]
async fn runs_of_a_test_are_listed_newest_first_and_paged() {
    let store = EmbeddedStore::in_memory().expect("store");
    for (id, t, at) in [
        ("r1", Some("t"), 1),
        ("r2", Some("t"), 2),
        ("x", None, 3),
        ("r3", Some("t"), 4),
    ] {
        store.create_run(run(id, t, at)).await.expect("create");
    }
    let ids = |runs: Vec<RunRecord>| {
        runs.into_iter()
            .map(|r| r.id.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(store.list_test_runs("t", 2, 0).await.expect("page")),
        ["r3", "r2"]
    );
    assert_eq!(
        ids(store.list_test_runs("t", 2, 2).await.expect("page")),
        ["r1"]
    );
    assert_eq!(
        store
            .get_run(&RunId::new("r1").expect("valid"))
            .await
            .expect("get")
            .and_then(|r| r.test),
        Some("t".into())
    );
}

#[tokio::test]
async fn command_ids_keep_their_first_reply() {
    let store = EmbeddedStore::in_memory().expect("store");
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

#[tokio::test]
async fn tokens_are_found_by_hash() {
    let store = EmbeddedStore::in_memory().expect("store");
    let token = TokenRecord {
        id: "tok-1".into(),
        hash: "abc".into(),
        role: Role::Viewer,
        created_at_ms: 9,
    };
    store.create_token(token.clone()).await.expect("create");
    assert_eq!(store.find_token("abc").await.expect("find"), Some(token));
    assert_eq!(store.find_token("abd").await.expect("find"), None);
}

#[test]
fn a_version_1_store_is_migrated_and_keeps_its_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let conn = rusqlite::Connection::open(dir.path().join(embedded::FILE_NAME)).expect("open");
        // The version 1 schema, exactly as that herd wrote it.
        conn.execute_batch(embedded::MIGRATIONS[0])
            .expect("version 1 schema");
        conn.execute_batch(
            "INSERT INTO runs VALUES ('old', 'n', '{}', 'completed', 1, 1, 1, NULL);
             PRAGMA user_version = 1;",
        )
        .expect("version 1 data");
    }
    let store = EmbeddedStore::open(dir.path()).expect("migrated");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let old = runtime
        .block_on(store.get_run(&RunId::new("old").expect("valid")))
        .expect("read")
        .expect("kept");
    assert_eq!((old.state, old.test), (RunStateName::Completed, None));
    assert!(runtime
        .block_on(store.list_tests(None))
        .expect("tests table")
        .is_empty());
}
