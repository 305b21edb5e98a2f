//! A run's results: one row per second in `seconds` (keyed by run and `t`, so a run's seconds
//! read back ordered), and its summary in `summaries`, both deleted with the run.
//!
//! A second keeps its counts as columns, its status codes and merge state as JSON, and its merged
//! histogram as the wire's base64 text; a second stored again (a late frame changed it) replaces
//! the row, so the store always holds the latest merge.

use super::rows::{corrupt, int, to_json, uint, unknown_run_if_missing};
use crate::store::{SecondRecord, StoreError};
use herd_protocol::histogram::EncodedHistogram;
use herd_protocol::summary::Summary;
use herd_protocol::RunId;
use rusqlite::{params, Connection, OptionalExtension, Row};

pub fn put_second(
    conn: &mut Connection,
    run: &RunId,
    second: &SecondRecord,
) -> Result<(), StoreError> {
    let codes = to_json("status codes", &second.status_codes)?;
    let checkpoint = second
        .checkpoint
        .as_ref()
        .map(|c| to_json("second checkpoint", c))
        .transpose()?;
    let detail = to_json("second detail", &second.detail)?;
    conn.execute(
        "INSERT INTO seconds (run_id, t, second, requests, errors, p50_ms, p99_ms,
             agents_reported, agents_expected, status_codes, histogram, checkpoint,
             dropped, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
         ON CONFLICT (run_id, t) DO UPDATE SET
             second = excluded.second, requests = excluded.requests,
             errors = excluded.errors, p50_ms = excluded.p50_ms, p99_ms = excluded.p99_ms,
             agents_reported = excluded.agents_reported,
             agents_expected = excluded.agents_expected,
             status_codes = excluded.status_codes, histogram = excluded.histogram,
             checkpoint = excluded.checkpoint, dropped = excluded.dropped,
             detail = excluded.detail",
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
            detail,
        ],
    )
    .map_err(unknown_run_if_missing(run))?;
    Ok(())
}

/// A run's seconds in order; with `checkpoints` false their merge state is not read (it is
/// by far the largest column, and only a resumed run needs it).
pub fn list_seconds(
    conn: &mut Connection,
    run: &RunId,
    checkpoints: bool,
) -> Result<Vec<SecondRecord>, StoreError> {
    let mut stmt = conn.prepare(if checkpoints {
        "SELECT t, second, requests, errors, p50_ms, p99_ms, agents_reported,
             agents_expected, status_codes, histogram, checkpoint, dropped, detail
         FROM seconds WHERE run_id = ?1 ORDER BY t"
    } else {
        "SELECT t, second, requests, errors, p50_ms, p99_ms, agents_reported,
             agents_expected, status_codes, histogram, NULL, dropped, detail
         FROM seconds WHERE run_id = ?1 ORDER BY t"
    })?;
    let mut rows = stmt.query([run.as_str()])?;
    let mut seconds = Vec::new();
    while let Some(row) = rows.next()? {
        seconds.push(second_from_row(row)?);
    }
    Ok(seconds)
}

fn second_from_row(row: &Row<'_>) -> Result<SecondRecord, StoreError> {
    let codes: String = row.get(8)?;
    let checkpoint: Option<String> = row.get(10)?;
    let detail: Option<String> = row.get(12)?;
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
        detail: detail
            .map(|d| serde_json::from_str(&d).map_err(|e| corrupt("second detail", e)))
            .transpose()?
            .unwrap_or_default(),
    })
}

/// Stores the summary, already encoded: encoding happens on the caller's thread, before the
/// blocking pool is involved.
pub fn put_summary(
    conn: &mut Connection,
    run: &RunId,
    summary_json: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO summaries (run_id, summary) VALUES (?1, ?2)
         ON CONFLICT (run_id) DO UPDATE SET summary = excluded.summary",
        params![run.as_str(), summary_json],
    )
    .map_err(unknown_run_if_missing(run))?;
    Ok(())
}

pub fn get_summary(conn: &mut Connection, run: &RunId) -> Result<Option<Summary>, StoreError> {
    let json: Option<String> = conn
        .query_row(
            "SELECT summary FROM summaries WHERE run_id = ?1",
            [run.as_str()],
            |row| row.get(0),
        )
        .optional()?;
    json.map(|j| serde_json::from_str(&j).map_err(|e| corrupt("summary", e)))
        .transpose()
}
