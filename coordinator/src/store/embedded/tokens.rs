//! API tokens (`tokens`): only their SHA-256 is stored, unique, so a token is found by hashing
//! what a client presents; the token itself is shown once, when it is made, and never kept.
//! A token may carry an expiry and a revocation time; the API refuses it from then on.

use super::rows::{corrupt, int};
use crate::store::{StoreError, TokenRecord};
use rusqlite::{params, Connection, OptionalExtension, Row};

const COLUMNS: &str = "id, hash, role, created_at_ms, expires_at_ms, revoked_at_ms";

pub fn create_token(conn: &mut Connection, token: &TokenRecord) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO tokens (id, hash, role, created_at_ms, expires_at_ms, revoked_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            token.id,
            token.hash,
            token.role.as_str(),
            int("creation time", token.created_at_ms)?,
            token
                .expires_at_ms
                .map(|at| int("expiry time", at))
                .transpose()?,
            token
                .revoked_at_ms
                .map(|at| int("revocation time", at))
                .transpose()?,
        ],
    )?;
    Ok(())
}

type TokenRow = (String, String, String, i64, Option<i64>, Option<i64>);

fn read_row(row: &Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
    ))
}

fn record(
    (id, hash, role, created, expires, revoked): TokenRow,
) -> Result<TokenRecord, StoreError> {
    let time = |t: i64| u64::try_from(t).unwrap_or(0);
    Ok(TokenRecord {
        id,
        hash,
        role: role.parse().map_err(|e: String| corrupt("token role", e))?,
        created_at_ms: time(created),
        expires_at_ms: expires.map(time),
        revoked_at_ms: revoked.map(time),
    })
}

pub fn find_token(conn: &mut Connection, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM tokens WHERE hash = ?1"),
        [hash],
        read_row,
    )
    .optional()?
    .map(record)
    .transpose()
}

pub fn list_tokens(conn: &mut Connection) -> Result<Vec<TokenRecord>, StoreError> {
    let mut statement = conn.prepare(&format!("SELECT {COLUMNS} FROM tokens ORDER BY id"))?;
    let rows = statement.query_map([], read_row)?;
    rows.map(|row| record(row?)).collect()
}

pub fn revoke_token(conn: &mut Connection, id: &str, at_ms: u64) -> Result<bool, StoreError> {
    let exists: Option<i64> = conn
        .query_row("SELECT 1 FROM tokens WHERE id = ?1", [id], |row| row.get(0))
        .optional()?;
    conn.execute(
        "UPDATE tokens SET revoked_at_ms = ?2 WHERE id = ?1 AND revoked_at_ms IS NULL",
        params![id, int("revocation time", at_ms)?],
    )?;
    Ok(exists.is_some())
}
