//! Runs: one row each in `runs`, listed newest first (`runs_by_creation`), or newest first among
//! a stored test's runs (`runs_by_test`).
//!
//! The embedded store belongs to one coordinator, so unlike the shared DynamoDB tables it needs no
//! owner check on a state change: the run actor is the only writer of its run.

use super::rows::{constraint, int, opt_int, run_from_row, to_json, RUN_COLUMNS};
use crate::store::{RunRecord, RunStateName, StoreError};
use herd_protocol::RunId;
use rusqlite::{ffi, params, Connection};

pub fn create_run(conn: &mut Connection, run: &RunRecord) -> Result<(), StoreError> {
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
            opt_int("start time", run.start_at_ms)?,
            opt_int("end time", run.ends_at_ms)?,
        ],
    )
    .map_err(|e| match constraint(&e) {
        Some(ffi::SQLITE_CONSTRAINT_PRIMARYKEY) => StoreError::RunExists(run.id.clone()),
        _ => StoreError::Sqlite(e),
    })?;
    Ok(())
}

pub fn set_run_state(
    conn: &mut Connection,
    run: &RunId,
    state: RunStateName,
    at_ms: u64,
    reason: Option<&str>,
) -> Result<(), StoreError> {
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
        return Err(StoreError::UnknownRun(run.clone()));
    }
    Ok(())
}

pub fn get_run(conn: &mut Connection, run: &RunId) -> Result<Option<RunRecord>, StoreError> {
    let mut stmt = conn.prepare(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"))?;
    let mut rows = stmt.query([run.as_str()])?;
    rows.next()?.map(run_from_row).transpose()
}

pub fn list_runs(conn: &mut Connection, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
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
}

pub fn list_test_runs(
    conn: &mut Connection,
    test: &str,
    limit: usize,
    offset: usize,
) -> Result<Vec<RunRecord>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {RUN_COLUMNS} FROM runs WHERE test_id = ?1
         ORDER BY created_at_ms DESC, id DESC LIMIT ?2 OFFSET ?3"
    ))?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let offset = i64::try_from(offset).unwrap_or(i64::MAX);
    let mut rows = stmt.query(params![test, limit, offset])?;
    let mut runs = Vec::new();
    while let Some(row) = rows.next()? {
        runs.push(run_from_row(row)?);
    }
    Ok(runs)
}
