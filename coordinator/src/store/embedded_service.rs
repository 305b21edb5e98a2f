//! The SQL behind the service-mode half of [`super::Store`] for the embedded store: tests,
//! schedules' next fire times, command ids and token hashes. Each function runs on the store's
//! one connection, on the blocking pool (see [`super::embedded`]).

use super::embedded::{constraint, corrupt, int, run_from_row, to_json, RUN_COLUMNS};
use super::{RunRecord, StoreError, TestRecord, TokenRecord};
use herd_protocol::RunId;
use rusqlite::{ffi, params, Connection, OptionalExtension, Row};

const TEST_COLUMNS: &str =
    "id, name, plan, tags, schedule, next_fire_ms, baseline_run, created_at_ms, updated_at_ms";

fn opt_uint(row: &Row<'_>, index: usize, what: &'static str) -> Result<Option<u64>, StoreError> {
    let value: Option<i64> = row.get(index)?;
    value
        .map(|v| u64::try_from(v).map_err(|_| corrupt(what, format!("negative value {v}"))))
        .transpose()
}

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
    let next = test
        .next_fire_ms
        .map(|ms| int("next fire time", ms))
        .transpose()?;
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
    let next = next_fire_ms
        .map(|ms| int("next fire time", ms))
        .transpose()?;
    let changed = conn.execute(
        "UPDATE tests SET next_fire_ms = ?2 WHERE id = ?1",
        params![test, next],
    )?;
    if changed == 0 {
        return Err(StoreError::UnknownTest(test.to_string()));
    }
    Ok(())
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

pub fn get_command(
    conn: &mut Connection,
    id: &str,
) -> Result<Option<serde_json::Value>, StoreError> {
    let reply: Option<String> = conn
        .query_row("SELECT reply FROM commands WHERE id = ?1", [id], |row| {
            row.get(0)
        })
        .optional()?;
    reply
        .map(|r| serde_json::from_str(&r).map_err(|e| corrupt("command reply", e)))
        .transpose()
}

pub fn put_command(
    conn: &mut Connection,
    id: &str,
    reply: &serde_json::Value,
    at_ms: u64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO commands (id, reply, at_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT (id) DO NOTHING",
        params![
            id,
            to_json("command reply", reply)?,
            int("command time", at_ms)?
        ],
    )?;
    Ok(())
}

pub fn create_token(conn: &mut Connection, token: &TokenRecord) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO tokens (id, hash, role, created_at_ms) VALUES (?1, ?2, ?3, ?4)",
        params![
            token.id,
            token.hash,
            token.role.as_str(),
            int("creation time", token.created_at_ms)?
        ],
    )?;
    Ok(())
}

pub fn find_token(conn: &mut Connection, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
    let row: Option<(String, String, String, i64)> = conn
        .query_row(
            "SELECT id, hash, role, created_at_ms FROM tokens WHERE hash = ?1",
            [hash],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )
        .optional()?;
    row.map(|(id, hash, role, created)| {
        Ok(TokenRecord {
            id,
            hash,
            role: role.parse().map_err(|e: String| corrupt("token role", e))?,
            created_at_ms: u64::try_from(created).unwrap_or(0),
        })
    })
    .transpose()
}
