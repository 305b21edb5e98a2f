//! API tokens (`tokens`): only their SHA-256 is stored, unique, so a token is found by hashing
//! what a client presents; the token itself is shown once, when it is made, and never kept.

use super::rows::{corrupt, int};
use crate::store::{StoreError, TokenRecord};
use rusqlite::{params, Connection, OptionalExtension};

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
