//! The embedded store's migration to the resume schema (version 3). What every store does with
//! the resume data is in [`super::suite`].

use super::*;
use herd_protocol::AgentId;

fn id(s: &str) -> RunId {
    RunId::new(s).expect("valid id")
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
        gaps: vec![],
    }
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
        (
            seconds[0].requests,
            seconds[0].checkpoint.is_none(),
            seconds[0].dropped
        ),
        (5, true, 0)
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
    assert_eq!(version, embedded::MIGRATIONS.len() as i64);
}
