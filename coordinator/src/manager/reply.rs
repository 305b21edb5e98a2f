//! What the one command path answers: a [`Reply`] (stored with the command id, so a repeat gets the
//! same answer) or a [`Rejection`] with a stable code and a message naming the field.

use crate::launcher::BoxFuture;
use crate::store::TestRecord;
use herd_protocol::command::CommandMessage;
use herd_protocol::event::ActiveRun;
use herd_protocol::plan::FieldError;
use serde::{Deserialize, Serialize};

/// What a command source (the SQS intake, the MQTT command topic) needs of the coordinator: the
/// one command path, and the active runs for `status`. The [`Manager`](super::Manager) is the
/// real one; a source holds only this, so it can be tested without actors.
pub trait CommandSink: Send + Sync + 'static {
    /// Carries out a command (or refuses it), as the HTTP API would.
    fn execute(&self, command: CommandMessage) -> BoxFuture<Result<Reply, Rejection>>;
    /// The runs that are active now.
    fn active_runs(&self) -> BoxFuture<Vec<ActiveRun>>;
}

/// The outcome of a command that was carried out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// A test was created, updated, scheduled or given a baseline: how it is now.
    Test {
        /// The test.
        test: Box<TestRecord>,
    },
    /// A test was deleted.
    Deleted {
        /// Its id.
        test_id: String,
    },
    /// A run was created and is starting.
    RunStarted {
        /// Its id.
        run_id: String,
        /// Its test, if it runs a stored one.
        test_id: Option<String>,
        /// Agents it uses.
        agents: u32,
    },
    /// A run was asked to stop.
    Stopping {
        /// Its id.
        run_id: String,
    },
    /// A run's load was given new stages.
    Ramping {
        /// Its id.
        run_id: String,
        /// When every agent begins the new stages (ms since the Unix epoch).
        at_ms: u64,
        /// When the load now ends, if nothing else changes it (ms since the Unix epoch).
        ends_at_ms: u64,
    },
}

/// Why a command was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    /// The command or its plan is invalid (HTTP 400).
    Invalid,
    /// An id names nothing (HTTP 404).
    NotFound,
    /// The state forbids it: a run of the test is active, the run already ended (HTTP 409).
    Conflict,
    /// Not enough agents left under the global cap (HTTP 429).
    Capacity,
    /// herd itself failed (store, …) (HTTP 500).
    Internal,
    /// The coordinator is shutting down (HTTP 503).
    Unavailable,
}

impl Code {
    /// The code as events and API bodies show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Invalid => "invalid",
            Code::NotFound => "not_found",
            Code::Conflict => "conflict",
            Code::Capacity => "capacity",
            Code::Internal => "internal",
            Code::Unavailable => "unavailable",
        }
    }
}

/// A refused command: nothing was done.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct Rejection {
    /// What kind of refusal.
    pub code: Code,
    /// What was wrong.
    pub message: String,
    /// The field at fault, when one is (`plan.load.stages[0].vus`).
    pub field: Option<String>,
    /// Every problem, when there are several (an invalid plan).
    pub errors: Vec<String>,
}

impl Rejection {
    /// A refusal without a field.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
            errors: Vec::new(),
        }
    }

    /// An invalid field.
    pub fn field(path: impl Into<String>, message: impl Into<String>) -> Self {
        let path = path.into();
        let message = message.into();
        Self {
            code: Code::Invalid,
            message: format!("{path}: {message}"),
            errors: vec![format!("{path}: {message}")],
            field: Some(path),
        }
    }

    /// Field errors found under `prefix` (`plan`; empty when their paths are complete), all of
    /// them listed.
    pub fn fields(prefix: &str, errors: &[FieldError]) -> Self {
        let path = |e: &FieldError| {
            if prefix.is_empty() {
                e.path.clone()
            } else if e.path.is_empty() {
                prefix.to_string()
            } else {
                format!("{prefix}.{}", e.path)
            }
        };
        let all: Vec<String> = errors
            .iter()
            .map(|e| format!("{}: {}", path(e), e.message))
            .collect();
        Self {
            code: Code::Invalid,
            message: all.join("; "),
            field: errors.first().map(path),
            errors: all,
        }
    }

    /// A store failure.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::new(Code::Internal, e.to_string())
    }
}
