//! Stored load tests (the service mode's `tests` table, not unit tests): one row each, keyed by
//! id, with the plan, tags and schedule as JSON, and the scheduler's next fire time as a column so
//! that it survives a restart.
//!
//! Listing by tag filters here, after reading every row: a deployment keeps tens or hundreds of
//! tests, so a tag index would cost more on every write than it saves on a listing.

use super::rows::{constraint, corrupt, int, opt_int, opt_uint, to_json};
use crate::store::{StoreError, TestRecord};
use herd_protocol::RunId;
use rusqlite::{ffi, params, Connection, Row};

const TEST_COLUMNS: &str =
    "id, name, plan, tags, schedule, next_fire_ms, baseline_run, created_at_ms, updated_at_ms";

fn test_from_row(row: &Row<'_>) -> Result<TestRecord, StoreError> {
    let plan: String = row.get(2)?;
    let tags: String = row.get(3)?;
    let schedule: Option<String> = row.get(4)?;
    let baseline: Option<String> = row.get(6)?;
    Ok(TestRecord {
        id: row.get(0)?,
        name: row.get(1)?,
        plan: serde_json::from_str(&plan).map_err(|e| corrupt("plan", e))?,
        tags: serde_json::from_str(&tags).map_err(|e| corrupt("tags", e))?,
        schedule: schedule
            .map(|s| serde_json::from_str(&s).map_err(|e| corrupt("schedule", e)))
            .transpose()?,
        next_fire_ms: opt_uint(row, 5, "next fire time")?,
        baseline_run: baseline
            .map(|b| RunId::new(b).map_err(|e| corrupt("baseline run", e)))
            .transpose()?,
        created_at_ms: opt_uint(row, 7, "creation time")?.unwrap_or(0),
        updated_at_ms: opt_uint(row, 8, "update time")?.unwrap_or(0),
    })
}

/// The values of a test's columns, in [`TEST_COLUMNS`] order.
fn test_values(test: &TestRecord) -> Result<[Box<dyn rusqlite::ToSql>; 9], StoreError> {
    let schedule = test
        .schedule
        .as_ref()
        .map(|s| to_json("schedule", s))
        .transpose()?;
    let next = opt_int("next fire time", test.next_fire_ms)?;
    Ok([
        Box::new(test.id.clone()),
        Box::new(test.name.clone()),
        Box::new(to_json("plan", &test.plan)?),
        Box::new(to_json("tags", &test.tags)?),
        Box::new(schedule),
        Box::new(next),
        Box::new(test.baseline_run.as_ref().map(|r| r.to_string())),
        Box::new(int("creation time", test.created_at_ms)?),
        Box::new(int("update time", test.updated_at_ms)?),
    ])
}

pub fn create_test(conn: &mut Connection, test: &TestRecord) -> Result<(), StoreError> {
    let values = test_values(test)?;
    conn.execute(
        &format!("INSERT INTO tests ({TEST_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
        rusqlite::params_from_iter(values.iter()),
    )
    .map_err(|e| match constraint(&e) {
        Some(ffi::SQLITE_CONSTRAINT_PRIMARYKEY) => StoreError::TestExists(test.id.clone()),
        _ => StoreError::Sqlite(e),
    })?;
    Ok(())
}

pub fn update_test(conn: &mut Connection, test: &TestRecord) -> Result<(), StoreError> {
    let values = test_values(test)?;
    let changed = conn.execute(
        "UPDATE tests SET name = ?2, plan = ?3, tags = ?4, schedule = ?5, next_fire_ms = ?6,
             baseline_run = ?7, created_at_ms = ?8, updated_at_ms = ?9
         WHERE id = ?1",
        rusqlite::params_from_iter(values.iter()),
    )?;
    if changed == 0 {
        return Err(StoreError::UnknownTest(test.id.clone()));
    }
    Ok(())
}

pub fn delete_test(conn: &mut Connection, test: &str) -> Result<bool, StoreError> {
    Ok(conn.execute("DELETE FROM tests WHERE id = ?1", [test])? > 0)
}

pub fn get_test(conn: &mut Connection, test: &str) -> Result<Option<TestRecord>, StoreError> {
    let mut stmt = conn.prepare(&format!("SELECT {TEST_COLUMNS} FROM tests WHERE id = ?1"))?;
    let mut rows = stmt.query([test])?;
    rows.next()?.map(test_from_row).transpose()
}

pub fn list_tests(conn: &mut Connection, tag: Option<&str>) -> Result<Vec<TestRecord>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {TEST_COLUMNS} FROM tests ORDER BY name, id"
    ))?;
    let mut rows = stmt.query([])?;
    let mut tests = Vec::new();
    while let Some(row) = rows.next()? {
        let test = test_from_row(row)?;
        if tag.is_none_or(|tag| test.tags.iter().any(|t| t == tag)) {
            tests.push(test);
        }
    }
    Ok(tests)
}

pub fn set_next_fire(
    conn: &mut Connection,
    test: &str,
    next_fire_ms: Option<u64>,
) -> Result<(), StoreError> {
    let next = opt_int("next fire time", next_fire_ms)?;
    let changed = conn.execute(
        "UPDATE tests SET next_fire_ms = ?2 WHERE id = ?1",
        params![test, next],
    )?;
    if changed == 0 {
        return Err(StoreError::UnknownTest(test.to_string()));
    }
    Ok(())
}
