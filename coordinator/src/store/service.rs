//! What the service mode (`herd up`) keeps beside runs: stored tests with their schedules and
//! baselines, API tokens (only their hashes), and the ids of commands already handled.
//!
//! Command ids are stored with the reply they got, so a command delivered twice (a client retry,
//! SQS's at-least-once delivery) gets the first reply back and does nothing new, even across a
//! restart of the coordinator.

use herd_protocol::command::Schedule;
use herd_protocol::RunId;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A stored test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestRecord {
    /// Its id.
    pub id: String,
    /// Human name.
    pub name: String,
    /// The plan, in its JSON form (validated when stored).
    pub plan: serde_json::Value,
    /// Labels for filtering.
    pub tags: Vec<String>,
    /// When it runs by itself.
    pub schedule: Option<Schedule>,
    /// The scheduler's next fire time (ms since the Unix epoch), kept so a restart resumes it.
    pub next_fire_ms: Option<u64>,
    /// The run its runs are compared with.
    pub baseline_run: Option<RunId>,
    /// Creation time (ms since the Unix epoch).
    pub created_at_ms: u64,
    /// Last change (ms since the Unix epoch).
    pub updated_at_ms: u64,
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Read everything.
    Viewer,
    /// Read and change: create, run, stop, schedule, delete.
    Operator,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            other => Err(format!("unknown role {other:?} (use viewer or operator)")),
        }
    }
}

/// An API token as stored: never the token itself, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// A public id for the token (shown in listings and logs).
    pub id: String,
    /// Hex SHA-256 of the token.
    pub hash: String,
    /// What it may do.
    pub role: Role,
    /// Creation time (ms since the Unix epoch).
    pub created_at_ms: u64,
    /// When it stops being accepted (ms since the Unix epoch); `None`: never.
    pub expires_at_ms: Option<u64>,
    /// When it was revoked (`herd token revoke`); a revoked token is refused from then on.
    pub revoked_at_ms: Option<u64>,
}

impl TokenRecord {
    /// Why the token is not accepted at `now_ms` (revoked, expired), if it is not.
    pub fn refusal(&self, now_ms: u64) -> Option<&'static str> {
        if self.revoked_at_ms.is_some_and(|at| at <= now_ms) {
            Some("the token was revoked")
        } else if self.expires_at_ms.is_some_and(|at| at <= now_ms) {
            Some("the token has expired")
        } else {
            None
        }
    }
}

/// One write, as the audit log keeps it: who did what, when, and how it ended. Written once per
/// write (a second append with the same `id` changes nothing), never updated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Unique per write (the command id the write became, or a random id).
    pub id: String,
    /// When (ms since the Unix epoch).
    pub at_ms: u64,
    /// Who: a token's id (`tok-…`), a JWT's user, or `cli:…` for `herd token` commands.
    pub actor: String,
    /// What: `POST /api/v1/runs`, `token.revoke tok-…`.
    pub action: String,
    /// The HTTP status it got (the CLI records 200 for a done change).
    pub status: u16,
}
