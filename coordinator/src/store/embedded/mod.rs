//! The embedded store: one SQLite file (`herd.sqlite3`) in a directory, for the local modes.
//!
//! SQLite is bundled into the binary, so `herd run` needs nothing installed. The database runs in
//! WAL mode (readers do not block the writer, and a crash loses at most the last transaction), and
//! its schema is versioned ([`schema`]): opening applies the migrations the file lacks, and refuses
//! a file written by a newer herd instead of misreading it.
//!
//! SQLite calls block, so each operation runs on tokio's blocking pool with the one connection
//! behind a mutex; the async threads (and the actors on them) never wait on disk.
//!
//! The SQL is cut by table as the DynamoDB store's is: [`runs`], [`seconds`] (and summaries),
//! [`resume`], stored load tests ([`load_tests`]), [`tokens`], [`commands`], [`audit`]. Each is a set of functions over a
//! `Connection`, sharing the row helpers of [`rows`]; this module only owns the connection and
//! maps the [`Store`] trait onto them, so no table module depends on it.

mod audit;
mod commands;
mod load_tests;
mod resume;
mod rows;
mod runs;
mod schema;
mod seconds;
mod tokens;

pub use schema::FILE_NAME;
#[cfg(test)]
pub(crate) use schema::MIGRATIONS;

use crate::store::{
    AgentRecord, AuditEntry, Claim, RunRecord, RunStateName, SecondRecord, Store, StoreError,
    StoreFuture, TestRecord, TokenRecord,
};
use herd_protocol::summary::{SecondSummary, Summary};
use herd_protocol::RunId;
use rusqlite::Connection;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The SQLite-backed [`Store`]. Cloning shares the connection.
#[derive(Debug, Clone)]
pub struct EmbeddedStore {
    conn: Arc<Mutex<Connection>>,
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store in `dir`, creating the directory too.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Directory {
            path: dir.to_path_buf(),
            source,
        })?;
        let conn = Connection::open(dir.join(FILE_NAME))?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            // Some file systems cannot share memory for WAL; the default journal still works.
            tracing::warn!(dir = %dir.display(), %mode, "SQLite store is not in WAL mode");
        }
        // With WAL, NORMAL keeps the database consistent on a crash and only fsyncs at checkpoints.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Self::prepare(conn)
    }

    /// A store in memory, gone when the last clone is dropped (tests, dry runs).
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::prepare(Connection::open_in_memory()?)
    }

    fn prepare(mut conn: Connection) -> Result<Self, StoreError> {
        conn.pragma_update(None, "foreign_keys", true)?;
        schema::migrate(&mut conn)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `op` with the connection on the blocking pool.
    fn call<T, F>(&self, op: F) -> StoreFuture<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                // A panic while holding the lock cannot leave SQLite half-written: an unfinished
                // transaction rolls back when dropped. So a poisoned lock is still usable.
                let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
                op(&mut conn)
            })
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
        })
    }
}

impl Store for EmbeddedStore {
    fn create_run(&self, run: RunRecord) -> StoreFuture<()> {
        self.call(move |conn| runs::create_run(conn, &run))
    }

    fn set_run_state(
        &self,
        run: &RunId,
        state: RunStateName,
        at_ms: u64,
        reason: Option<String>,
    ) -> StoreFuture<()> {
        let run = run.clone();
        self.call(move |conn| runs::set_run_state(conn, &run, state, at_ms, reason.as_deref()))
    }

    fn put_second(&self, run: &RunId, second: SecondRecord) -> StoreFuture<()> {
        let run = run.clone();
        self.call(move |conn| seconds::put_second(conn, &run, &second))
    }

    fn put_summary(&self, run: &RunId, summary: &Summary) -> StoreFuture<()> {
        let run = run.clone();
        let json = rows::to_json("summary", summary);
        self.call(move |conn| seconds::put_summary(conn, &run, &json?))
    }

    fn get_run(&self, run: &RunId) -> StoreFuture<Option<RunRecord>> {
        let run = run.clone();
        self.call(move |conn| runs::get_run(conn, &run))
    }

    fn list_runs(&self, limit: usize) -> StoreFuture<Vec<RunRecord>> {
        self.call(move |conn| runs::list_runs(conn, limit))
    }

    fn list_seconds(&self, run: &RunId) -> StoreFuture<Vec<SecondRecord>> {
        let run = run.clone();
        self.call(move |conn| seconds::list_seconds(conn, &run, true))
    }

    fn list_second_summaries(&self, run: &RunId) -> StoreFuture<Vec<SecondSummary>> {
        let run = run.clone();
        self.call(move |conn| {
            let rows = seconds::list_seconds(conn, &run, false)?;
            Ok(rows.iter().map(SecondRecord::to_summary).collect())
        })
    }

    fn get_summary(&self, run: &RunId) -> StoreFuture<Option<Summary>> {
        let run = run.clone();
        self.call(move |conn| seconds::get_summary(conn, &run))
    }

    fn list_test_runs(
        &self,
        test: &str,
        limit: usize,
        offset: usize,
    ) -> StoreFuture<Vec<RunRecord>> {
        let test = test.to_string();
        self.call(move |conn| runs::list_test_runs(conn, &test, limit, offset))
    }

    fn create_test(&self, test: TestRecord) -> StoreFuture<()> {
        self.call(move |conn| load_tests::create_test(conn, &test))
    }

    fn update_test(&self, test: TestRecord) -> StoreFuture<()> {
        self.call(move |conn| load_tests::update_test(conn, &test))
    }

    fn delete_test(&self, test: &str) -> StoreFuture<bool> {
        let test = test.to_string();
        self.call(move |conn| load_tests::delete_test(conn, &test))
    }

    fn get_test(&self, test: &str) -> StoreFuture<Option<TestRecord>> {
        let test = test.to_string();
        self.call(move |conn| load_tests::get_test(conn, &test))
    }

    fn list_tests(&self, tag: Option<String>) -> StoreFuture<Vec<TestRecord>> {
        self.call(move |conn| load_tests::list_tests(conn, tag.as_deref()))
    }

    fn set_next_fire(&self, test: &str, next_fire_ms: Option<u64>) -> StoreFuture<()> {
        let test = test.to_string();
        self.call(move |conn| load_tests::set_next_fire(conn, &test, next_fire_ms))
    }

    fn get_command(&self, id: &str) -> StoreFuture<Option<serde_json::Value>> {
        let id = id.to_string();
        self.call(move |conn| commands::get_command(conn, &id))
    }

    fn put_command(&self, id: &str, reply: serde_json::Value, at_ms: u64) -> StoreFuture<()> {
        let id = id.to_string();
        self.call(move |conn| commands::put_command(conn, &id, &reply, at_ms))
    }

    fn create_token(&self, token: TokenRecord) -> StoreFuture<()> {
        self.call(move |conn| tokens::create_token(conn, &token))
    }

    fn find_token(&self, hash: &str) -> StoreFuture<Option<TokenRecord>> {
        let hash = hash.to_string();
        self.call(move |conn| tokens::find_token(conn, &hash))
    }

    fn list_tokens(&self) -> StoreFuture<Vec<TokenRecord>> {
        self.call(tokens::list_tokens)
    }

    fn revoke_token(&self, id: &str, at_ms: u64) -> StoreFuture<bool> {
        let id = id.to_string();
        self.call(move |conn| tokens::revoke_token(conn, &id, at_ms))
    }

    fn append_audit(&self, entry: AuditEntry) -> StoreFuture<()> {
        self.call(move |conn| audit::append_audit(conn, &entry))
    }

    fn list_audit(&self, limit: usize) -> StoreFuture<Vec<AuditEntry>> {
        self.call(move |conn| audit::list_audit(conn, limit))
    }

    fn set_run_start(&self, run: &RunId, start_at_ms: u64) -> StoreFuture<()> {
        let run = run.clone();
        self.call(move |conn| resume::set_run_time(conn, &run, resume::RunTime::Start, start_at_ms))
    }

    fn set_run_end(&self, run: &RunId, ends_at_ms: u64) -> StoreFuture<()> {
        let run = run.clone();
        self.call(move |conn| resume::set_run_time(conn, &run, resume::RunTime::End, ends_at_ms))
    }

    fn list_unfinished_runs(&self) -> StoreFuture<Vec<RunRecord>> {
        self.call(resume::list_unfinished_runs)
    }

    fn claim_run(
        &self,
        run: &RunId,
        owner: &str,
        now_ms: u64,
        lease_ms: u64,
    ) -> StoreFuture<Claim> {
        let (run, owner) = (run.clone(), owner.to_string());
        self.call(move |conn| resume::claim_run(conn, &run, &owner, now_ms, lease_ms))
    }

    fn put_agent(&self, run: &RunId, agent: AgentRecord) -> StoreFuture<()> {
        let run = run.clone();
        self.call(move |conn| resume::put_agent(conn, &run, &agent))
    }

    fn list_agents(&self, run: &RunId) -> StoreFuture<Vec<AgentRecord>> {
        let run = run.clone();
        self.call(move |conn| resume::list_agents(conn, &run))
    }
}
