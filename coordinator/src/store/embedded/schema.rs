//! The embedded store's schema and how a file is brought up to it.
//!
//! The schema is versioned with SQLite's `PRAGMA user_version`, one migration per version, so
//! opening a file written by any older herd upgrades it in place (in one transaction: a crash
//! mid-upgrade leaves the old version), and a file written by a newer herd is refused rather than
//! misread. Migrations are only ever appended: a released one never changes.

use crate::store::StoreError;
use rusqlite::{Connection, TransactionBehavior};

/// The database file's name inside the store directory.
pub const FILE_NAME: &str = "herd.sqlite3";

/// Schema migrations; migration `i` takes the database from `user_version` `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
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
    // 6: the rest of each second's figures (p90, p99.9, VUs, error kinds, agents' health), as
    // JSON (`store::SecondDetail`); NULL for seconds stored before.
    "ALTER TABLE seconds ADD COLUMN detail TEXT;",
    // 7: tokens that expire or are revoked, and the audit log of writes.
    "ALTER TABLE tokens ADD COLUMN expires_at_ms INTEGER;
    ALTER TABLE tokens ADD COLUMN revoked_at_ms INTEGER;
    CREATE TABLE audit (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        at_ms INTEGER NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        status INTEGER NOT NULL
    );
    CREATE INDEX audit_by_time ON audit (at_ms DESC, seq DESC);",
];

/// Brings the schema up to date, in one transaction.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
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
