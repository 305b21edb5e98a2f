//! Command ids already handled, with the reply each got (`commands`), so that a command delivered
//! twice (a client retry, SQS's at-least-once delivery) gets its first reply back and does nothing
//! new, even across a restart. The first reply stored for an id is the one kept.

use super::rows::{corrupt, int, to_json};
use crate::store::StoreError;
use rusqlite::{params, Connection, OptionalExtension};

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
