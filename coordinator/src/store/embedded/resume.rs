//! Resuming runs after a coordinator restart (see `store::resume`): the start time of a run (and
//! its end, after a live ramp), the runs still in flight, ownership with a lease, and agents'
//! records.
//!
//! A claim is one conditional `UPDATE` (granted, or nothing changes), so two coordinators that
//! open the same file cannot both take a run, as with the shared DynamoDB tables.

use super::rows::{corrupt, int, run_from_row, to_json, unknown_run_if_missing, RUN_COLUMNS};
use crate::store::{AgentRecord, Claim, RunRecord, StoreError};
use herd_protocol::RunId;
use rusqlite::{params, Connection, OptionalExtension};

/// Which of a run's times [`set_run_time`] records.
#[derive(Debug, Clone, Copy)]
pub enum RunTime {
    /// When the load starts (`start_at_ms`).
    Start,
    /// When the load ends, after a live ramp (`ends_at_ms`).
    End,
}

pub fn set_run_time(
    conn: &mut Connection,
    run: &RunId,
    which: RunTime,
    at_ms: u64,
) -> Result<(), StoreError> {
    let (sql, what) = match which {
        RunTime::Start => (
            "UPDATE runs SET start_at_ms = ?2 WHERE id = ?1",
            "start time",
        ),
        RunTime::End => ("UPDATE runs SET ends_at_ms = ?2 WHERE id = ?1", "end time"),
    };
    let changed = conn.execute(sql, params![run.as_str(), int(what, at_ms)?])?;
    if changed == 0 {
        return Err(StoreError::UnknownRun(run.clone()));
    }
    Ok(())
}

pub fn list_unfinished_runs(conn: &mut Connection) -> Result<Vec<RunRecord>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {RUN_COLUMNS} FROM runs
         WHERE state NOT IN ('completed', 'degraded', 'failed', 'cancelled')
         ORDER BY created_at_ms, id"
    ))?;
    let mut rows = stmt.query([])?;
    let mut runs = Vec::new();
    while let Some(row) = rows.next()? {
        runs.push(run_from_row(row)?);
    }
    Ok(runs)
}

pub fn claim_run(
    conn: &mut Connection,
    run: &RunId,
    owner: &str,
    now_ms: u64,
    lease_ms: u64,
) -> Result<Claim, StoreError> {
    let now = int("claim time", now_ms)?;
    let until = int("lease end", now_ms.saturating_add(lease_ms))?;
    let changed = conn.execute(
        "UPDATE runs SET owner = ?2, lease_until_ms = ?4
         WHERE id = ?1 AND (owner IS NULL OR owner = ?2 OR lease_until_ms IS NULL
                            OR lease_until_ms < ?3)",
        params![run.as_str(), owner, now, until],
    )?;
    if changed > 0 {
        return Ok(Claim::Granted);
    }
    let holder: Option<(Option<String>, Option<i64>)> = conn
        .query_row(
            "SELECT owner, lease_until_ms FROM runs WHERE id = ?1",
            [run.as_str()],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    match holder {
        None => Err(StoreError::UnknownRun(run.clone())),
        Some((owner, until)) => Ok(Claim::HeldBy {
            owner: owner.unwrap_or_default(),
            until_ms: until.and_then(|u| u64::try_from(u).ok()).unwrap_or(0),
        }),
    }
}

pub fn put_agent(
    conn: &mut Connection,
    run: &RunId,
    agent: &AgentRecord,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO run_agents (run_id, agent_id, record) VALUES (?1, ?2, ?3)
         ON CONFLICT (run_id, agent_id) DO UPDATE SET record = excluded.record",
        params![
            run.as_str(),
            agent.agent.as_str(),
            to_json("agent record", agent)?
        ],
    )
    .map_err(unknown_run_if_missing(run))?;
    Ok(())
}

pub fn list_agents(conn: &mut Connection, run: &RunId) -> Result<Vec<AgentRecord>, StoreError> {
    let mut stmt =
        conn.prepare("SELECT record FROM run_agents WHERE run_id = ?1 ORDER BY agent_id")?;
    let mut rows = stmt.query([run.as_str()])?;
    let mut agents = Vec::new();
    while let Some(row) = rows.next()? {
        let text: String = row.get(0)?;
        agents.push(serde_json::from_str(&text).map_err(|e| corrupt("agent record", e))?);
    }
    Ok(agents)
}
