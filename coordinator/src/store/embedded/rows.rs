//! What every table of the embedded store shares: turning herd's values into SQLite's and back
//! (`u64` as `i64`, JSON text, constraint errors as store errors), and the run row, which the runs,
//! the stored tests' run listing and the resume queries all read.
//!
//! This module imports none of its siblings: each table's module depends on it, never the
//! reverse, so the store's files form no cycle.

use crate::store::{RunRecord, StoreError, UnknownRunState};
use herd_protocol::RunId;
use rusqlite::{ffi, ErrorCode, Row};

/// The columns of a run row, in the order [`run_from_row`] reads them.
pub const RUN_COLUMNS: &str =
    "id, name, plan, state, agents, created_at_ms, updated_at_ms, reason, test_id, start_at_ms, \
     ends_at_ms";

/// The extended result code of a constraint violation.
pub fn constraint(e: &rusqlite::Error) -> Option<i32> {
    e.sqlite_error()
        .filter(|e| e.code == ErrorCode::ConstraintViolation)
        .map(|e| e.extended_code)
}

/// Maps a write's error, naming the run when it does not exist.
pub fn unknown_run_if_missing(run: &RunId) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
    move |e| match constraint(&e) {
        Some(ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => StoreError::UnknownRun(run.clone()),
        _ => StoreError::Sqlite(e),
    }
}

/// Stored data that does not read back as `what`.
pub fn corrupt(what: &'static str, detail: impl ToString) -> StoreError {
    StoreError::Corrupt {
        what,
        detail: detail.to_string(),
    }
}

/// A value as the JSON text a column keeps.
pub fn to_json<T: serde::Serialize>(what: &'static str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|source| StoreError::Encode { what, source })
}

/// A `u64` as an SQLite integer (`i64`); herd's counts and times stay far below `i64::MAX`.
pub fn int(what: &'static str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::TooLarge { what, value })
}

/// An optional `u64` as an SQLite integer or `NULL`.
pub fn opt_int(what: &'static str, value: Option<u64>) -> Result<Option<i64>, StoreError> {
    value.map(|v| int(what, v)).transpose()
}

/// Reads a column written by [`int`].
pub fn uint(row: &Row<'_>, index: usize, what: &'static str) -> Result<u64, StoreError> {
    let value: i64 = row.get(index)?;
    u64::try_from(value).map_err(|_| corrupt(what, format!("negative value {value}")))
}

/// Reads a column written by [`opt_int`].
pub fn opt_uint(
    row: &Row<'_>,
    index: usize,
    what: &'static str,
) -> Result<Option<u64>, StoreError> {
    row.get::<_, Option<i64>>(index)?
        .map(|v| u64::try_from(v).map_err(|_| corrupt(what, format!("negative value {v}"))))
        .transpose()
}

/// Reads a run row selected as [`RUN_COLUMNS`].
pub fn run_from_row(row: &Row<'_>) -> Result<RunRecord, StoreError> {
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
