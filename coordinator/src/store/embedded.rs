//! The embedded store: one SQLite file (`herd.sqlite3`) in a directory, for the local modes.
//!
//! SQLite is bundled into the binary, so `herd run` needs nothing installed. The database runs in
//! WAL mode (readers do not block the writer, and a crash loses at most the last transaction), and
//! its schema is versioned with `PRAGMA user_version`: opening applies the migrations the file
//! lacks, and refuses a file written by a newer herd instead of misreading it.
//!
//! SQLite calls block, so each operation runs on tokio's blocking pool with the one connection
//! behind a mutex; the async threads (and the actors on them) never wait on disk.

use super::embedded_resume as resume;
use super::embedded_service as service;
use super::{
    AgentRecord, Claim, RunRecord, RunStateName, SecondRecord, Store, StoreError, StoreFuture,
    TestRecord, TokenRecord, UnknownRunState,
};
use herd_protocol::histogram::EncodedHistogram;
use herd_protocol::summary::Summary;
use herd_protocol::RunId;
use rusqlite::{ffi, params, Connection, ErrorCode, OptionalExtension, Row, TransactionBehavior};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The database file's name inside the store directory.
pub const FILE_NAME: &str = "herd.sqlite3";

/// Schema migrations; migration `i` takes the database from `user_version` `i` to `i + 1`.
pub(super) const MIGRATIONS: &[&str] = &[
    "CREATE TABLE runs (
        id TEXT PRIMARY KEY NOT NULL,
        name TEXT NOT NULL,
        plan TEXT NOT NULL,
        state TEXT NOT NULL,
        agents INTEGER NOT NULL,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        reason TEXT
    );
    CREATE INDEX runs_by_creation ON runs (created_at_ms DESC, id DESC);
    CREATE TABLE seconds (
        run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        t INTEGER NOT NULL,
        second INTEGER NOT NULL,
        requests INTEGER NOT NULL,
        errors INTEGER NOT NULL,
        p50_ms REAL NOT NULL,
        p99_ms REAL NOT NULL,
        agents_reported INTEGER NOT NULL,
        agents_expected INTEGER NOT NULL,
        status_codes TEXT NOT NULL,
        histogram TEXT NOT NULL,
        PRIMARY KEY (run_id, t)
    ) WITHOUT ROWID;
    CREATE TABLE summaries (
        run_id TEXT PRIMARY KEY NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        summary TEXT NOT NULL
    );",
    // 2: the service mode (`herd up`): stored tests with schedules and baselines, the runs of a
    // test, API token hashes, and the ids of commands already handled.
    "ALTER TABLE runs ADD COLUMN test_id TEXT;
    CREATE INDEX runs_by_test ON runs (test_id, created_at_ms DESC, id DESC);
    CREATE TABLE tests (
        id TEXT PRIMARY KEY NOT NULL,
        name TEXT NOT NULL,
        plan TEXT NOT NULL,
        tags TEXT NOT NULL,
        schedule TEXT,
        next_fire_ms INTEGER,
        baseline_run TEXT,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL
    );
    CREATE TABLE commands (
        id TEXT PRIMARY KEY NOT NULL,
        reply TEXT NOT NULL,
        at_ms INTEGER NOT NULL
    );
    CREATE TABLE tokens (
        id TEXT PRIMARY KEY NOT NULL,
        hash TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL
    );",
    // 3: resuming runs after a restart (see `store::resume`): the start time, an owner with a
    // lease, every second's merge state, and each agent's record.
    "ALTER TABLE runs ADD COLUMN start_at_ms INTEGER;
    ALTER TABLE runs ADD COLUMN owner TEXT;
    ALTER TABLE runs ADD COLUMN lease_until_ms INTEGER;
    CREATE INDEX runs_by_state ON runs (state, created_at_ms, id);
    ALTER TABLE seconds ADD COLUMN checkpoint TEXT;
    CREATE TABLE run_agents (
        run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        agent_id TEXT NOT NULL,
        record TEXT NOT NULL,
        PRIMARY KEY (run_id, agent_id)
    ) WITHOUT ROWID;",
    // 4: open-model arrivals dropped in each second (0 for seconds stored before).
    "ALTER TABLE seconds ADD COLUMN dropped INTEGER NOT NULL DEFAULT 0;",
    // 5: the end of the load when a live ramp moved it.
    "ALTER TABLE runs ADD COLUMN ends_at_ms INTEGER;",
];

pub(super) const RUN_COLUMNS: &str =
    "id, name, plan, state, agents, created_at_ms, updated_at_ms, reason, test_id, start_at_ms, \
     ends_at_ms";

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
        migrate(&mut conn)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `op` with the connection on the blocking pool.
    pub(super) fn call<T, F>(&self, op: F) -> StoreFuture<T>
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

/// Brings the schema up to date, in one transaction.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let supported = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found > supported {
        return Err(StoreError::SchemaTooNew { found, supported });
    }
    let done = usize::try_from(found).unwrap_or(0);
    for migration in MIGRATIONS.iter().skip(done) {
        tx.execute_batch(migration)?;
    }
    tx.pragma_update(None, "user_version", supported)?;
    tx.commit()?;
    Ok(())
}

/// The extended result code of a constraint violation.
pub(super) fn constraint(e: &rusqlite::Error) -> Option<i32> {
    e.sqlite_error()
        .filter(|e| e.code == ErrorCode::ConstraintViolation)
        .map(|e| e.extended_code)
}

/// Maps a write's error, naming the run when it does not exist.
pub(super) fn unknown_run_if_missing(
    run: &RunId,
) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
    move |e| match constraint(&e) {
        Some(ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => StoreError::UnknownRun(run.clone()),
        _ => StoreError::Sqlite(e),
    }
}

pub(super) fn corrupt(what: &'static str, detail: impl ToString) -> StoreError {
    StoreError::Corrupt {
        what,
        detail: detail.to_string(),
    }
}

pub(super) fn to_json<T: serde::Serialize>(
    what: &'static str,
    value: &T,
) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|source| StoreError::Encode { what, source })
}

/// A `u64` as an SQLite integer (`i64`); herd's counts and times stay far below `i64::MAX`.
pub(super) fn int(what: &'static str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::TooLarge { what, value })
}

/// Reads a column written by [`int`].
pub(super) fn uint(row: &Row<'_>, index: usize, what: &'static str) -> Result<u64, StoreError> {
    let value: i64 = row.get(index)?;
    u64::try_from(value).map_err(|_| corrupt(what, format!("negative value {value}")))
}

pub(super) fn run_from_row(row: &Row<'_>) -> Result<RunRecord, StoreError> {
    let id: String = row.get(0)?;
    let plan: String = row.get(2)?;
    let state: String = row.get(3)?;
    Ok(RunRecord {
        id: RunId::new(id).map_err(|e| corrupt("run id", e))?,
        name: row.get(1)?,
        plan: serde_json::from_str(&plan).map_err(|e| corrupt("plan", e))?,
        state: state
            .parse()
            .map_err(|e: UnknownRunState| corrupt("run state", e))?,
        agents: row.get(4)?,
        created_at_ms: uint(row, 5, "creation time")?,
        updated_at_ms: uint(row, 6, "update time")?,
        reason: row.get(7)?,
        test: row.get(8)?,
        start_at_ms: opt_uint(row, 9, "start time")?,
        ends_at_ms: opt_uint(row, 10, "end time")?,
    })
}

fn opt_uint(row: &Row<'_>, column: usize, what: &'static str) -> Result<Option<u64>, StoreError> {
    row.get::<_, Option<i64>>(column)?
        .map(|v| u64::try_from(v).map_err(|_| corrupt(what, format!("negative value {v}"))))
        .transpose()
}

pub(super) fn second_from_row(row: &Row<'_>) -> Result<SecondRecord, StoreError> {
    let codes: String = row.get(8)?;
    let checkpoint: Option<String> = row.get(10)?;
    Ok(SecondRecord {
        t: uint(row, 0, "t")?,
        second: uint(row, 1, "second")?,
        requests: uint(row, 2, "requests")?,
        errors: uint(row, 3, "errors")?,
        p50_ms: row.get(4)?,
        p99_ms: row.get(5)?,
        agents_reported: row.get(6)?,
        agents_expected: row.get(7)?,
        status_codes: serde_json::from_str(&codes).map_err(|e| corrupt("status codes", e))?,
        histogram: EncodedHistogram(row.get(9)?),
        checkpoint: checkpoint
            .map(|c| serde_json::from_str(&c).map_err(|e| corrupt("second checkpoint", e)))
            .transpose()?,
        dropped: uint(row, 11, "dropped")?,
    })
}

impl Store for EmbeddedStore {
    fn create_run(&self, run: RunRecord) -> StoreFuture<()> {
        self.call(move |conn| {
            let plan = to_json("plan", &run.plan)?;
            conn.execute(
                &format!(
                    "INSERT INTO runs ({RUN_COLUMNS})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
                ),
                params![
                    run.id.as_str(),
                    run.name,
                    plan,
                    run.state.as_str(),
                    run.agents,
                    int("creation time", run.created_at_ms)?,
                    int("update time", run.updated_at_ms)?,
                    run.reason,
                    run.test,
                    run.start_at_ms
                        .map(|ms| int("start time", ms))
                        .transpose()?,
                    run.ends_at_ms.map(|ms| int("end time", ms)).transpose()?,
                ],
            )
            .map_err(|e| match constraint(&e) {
                Some(ffi::SQLITE_CONSTRAINT_PRIMARYKEY) => StoreError::RunExists(run.id.clone()),
                _ => StoreError::Sqlite(e),
            })?;
            Ok(())
        })
    }

    fn set_run_state(
        &self,
        run: &RunId,
        state: RunStateName,
        at_ms: u64,
        reason: Option<String>,
    ) -> StoreFuture<()> {
        let run = run.clone();
        self.call(move |conn| {
            let changed = conn.execute(
                "UPDATE runs SET state = ?2, updated_at_ms = ?3, reason = ?4 WHERE id = ?1",
                params![
                    run.as_str(),
                    state.as_str(),
                    int("update time", at_ms)?,
                    reason
                ],
            )?;
            if changed == 0 {
                return Err(StoreError::UnknownRun(run));
            }
            Ok(())
        })
    }

    fn put_second(&self, run: &RunId, second: SecondRecord) -> StoreFuture<()> {
        let run = run.clone();
        self.call(move |conn| {
            let codes = to_json("status codes", &second.status_codes)?;
            let checkpoint = second
                .checkpoint
                .as_ref()
                .map(|c| to_json("second checkpoint", c))
                .transpose()?;
            conn.execute(
                "INSERT INTO seconds (run_id, t, second, requests, errors, p50_ms, p99_ms,
                     agents_reported, agents_expected, status_codes, histogram, checkpoint,
                     dropped)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                 ON CONFLICT (run_id, t) DO UPDATE SET
                     second = excluded.second, requests = excluded.requests,
                     errors = excluded.errors, p50_ms = excluded.p50_ms, p99_ms = excluded.p99_ms,
                     agents_reported = excluded.agents_reported,
                     agents_expected = excluded.agents_expected,
                     status_codes = excluded.status_codes, histogram = excluded.histogram,
                     checkpoint = excluded.checkpoint, dropped = excluded.dropped",
                params![
                    run.as_str(),
                    int("t", second.t)?,
                    int("second", second.second)?,
                    int("requests", second.requests)?,
                    int("errors", second.errors)?,
                    second.p50_ms,
                    second.p99_ms,
                    second.agents_reported,
                    second.agents_expected,
                    codes,
                    second.histogram.0,
                    checkpoint,
                    int("dropped", second.dropped)?,
                ],
            )
            .map_err(unknown_run_if_missing(&run))?;
            Ok(())
        })
    }

    fn put_summary(&self, run: &RunId, summary: &Summary) -> StoreFuture<()> {
        let run = run.clone();
        let json = to_json("summary", summary);
        self.call(move |conn| {
            conn.execute(
                "INSERT INTO summaries (run_id, summary) VALUES (?1, ?2)
                 ON CONFLICT (run_id) DO UPDATE SET summary = excluded.summary",
                params![run.as_str(), json?],
            )
            .map_err(unknown_run_if_missing(&run))?;
            Ok(())
        })
    }

    fn get_run(&self, run: &RunId) -> StoreFuture<Option<RunRecord>> {
        let run = run.clone();
        self.call(move |conn| {
            let mut stmt =
                conn.prepare(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"))?;
            let mut rows = stmt.query([run.as_str()])?;
            rows.next()?.map(run_from_row).transpose()
        })
    }

    fn list_runs(&self, limit: usize) -> StoreFuture<Vec<RunRecord>> {
        self.call(move |conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {RUN_COLUMNS} FROM runs ORDER BY created_at_ms DESC, id DESC LIMIT ?1"
            ))?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let mut rows = stmt.query([limit])?;
            let mut runs = Vec::new();
            while let Some(row) = rows.next()? {
                runs.push(run_from_row(row)?);
            }
            Ok(runs)
        })
    }

    fn list_seconds(&self, run: &RunId) -> StoreFuture<Vec<SecondRecord>> {
        let run = run.clone();
        self.call(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT t, second, requests, errors, p50_ms, p99_ms, agents_reported,
                     agents_expected, status_codes, histogram, checkpoint, dropped
                 FROM seconds WHERE run_id = ?1 ORDER BY t",
            )?;
            let mut rows = stmt.query([run.as_str()])?;
            let mut seconds = Vec::new();
            while let Some(row) = rows.next()? {
                seconds.push(second_from_row(row)?);
            }
            Ok(seconds)
        })
    }

    fn get_summary(&self, run: &RunId) -> StoreFuture<Option<Summary>> {
        let run = run.clone();
        self.call(move |conn| {
            let json: Option<String> = conn
                .query_row(
                    "SELECT summary FROM summaries WHERE run_id = ?1",
                    [run.as_str()],
                    |row| row.get(0),
                )
                .optional()?;
            json.map(|j| serde_json::from_str(&j).map_err(|e| corrupt("summary", e)))
                .transpose()
        })
    }

    fn list_test_runs(
        &self,
        test: &str,
        limit: usize,
        offset: usize,
    ) -> StoreFuture<Vec<RunRecord>> {
        let test = test.to_string();
        self.call(move |conn| service::list_test_runs(conn, &test, limit, offset))
    }

    fn create_test(&self, test: TestRecord) -> StoreFuture<()> {
        self.call(move |conn| service::create_test(conn, &test))
    }

    fn update_test(&self, test: TestRecord) -> StoreFuture<()> {
        self.call(move |conn| service::update_test(conn, &test))
    }

    fn delete_test(&self, test: &str) -> StoreFuture<bool> {
        let test = test.to_string();
        self.call(move |conn| service::delete_test(conn, &test))
    }

    fn get_test(&self, test: &str) -> StoreFuture<Option<TestRecord>> {
        let test = test.to_string();
        self.call(move |conn| service::get_test(conn, &test))
    }

    fn list_tests(&self, tag: Option<String>) -> StoreFuture<Vec<TestRecord>> {
        self.call(move |conn| service::list_tests(conn, tag.as_deref()))
    }

    fn set_next_fire(&self, test: &str, next_fire_ms: Option<u64>) -> StoreFuture<()> {
        let test = test.to_string();
        self.call(move |conn| service::set_next_fire(conn, &test, next_fire_ms))
    }

    fn get_command(&self, id: &str) -> StoreFuture<Option<serde_json::Value>> {
        let id = id.to_string();
        self.call(move |conn| service::get_command(conn, &id))
    }

    fn put_command(&self, id: &str, reply: serde_json::Value, at_ms: u64) -> StoreFuture<()> {
        let id = id.to_string();
        self.call(move |conn| service::put_command(conn, &id, &reply, at_ms))
    }

    fn create_token(&self, token: TokenRecord) -> StoreFuture<()> {
        self.call(move |conn| service::create_token(conn, &token))
    }

    fn find_token(&self, hash: &str) -> StoreFuture<Option<TokenRecord>> {
        let hash = hash.to_string();
        self.call(move |conn| service::find_token(conn, &hash))
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
