//! The embedded store's own service-mode behaviour: a store written before tests, tokens and
//! command ids existed is migrated. (What every store does with them is in [`super::suite`].)

use super::*;

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
