//! The audit log (`audit`): one row per write, appended and never changed. `seq` keeps the order
//! of writes in the same millisecond; the unique `id` makes a repeated append a no-op.

use super::rows::int;
use crate::store::{AuditEntry, StoreError};
use rusqlite::{params, Connection};

pub fn append_audit(conn: &mut Connection, entry: &AuditEntry) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO audit (id, at_ms, actor, action, status) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (id) DO NOTHING",
        params![
            entry.id,
            int("audit time", entry.at_ms)?,
            entry.actor,
            entry.action,
            entry.status
        ],
    )?;
    Ok(())
}

pub fn list_audit(conn: &mut Connection, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
    let mut statement = conn.prepare(
        "SELECT id, at_ms, actor, action, status FROM audit ORDER BY at_ms DESC, seq DESC LIMIT ?1",
    )?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = statement.query_map([limit], |row| {
        Ok(AuditEntry {
            id: row.get(0)?,
            at_ms: u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
            actor: row.get(2)?,
            action: row.get(3)?,
            status: row.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
