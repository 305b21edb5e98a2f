//! Commands to the coordinator: what the HTTP API, the scheduler and (in AWS mode) SQS all produce.
//!
//! There is one command path. Every source turns its input into a [`CommandMessage`] and hands it
//! to the same handler, so a run started by `curl`, by a cron schedule or by a message on a queue
//! behaves the same. Each message carries an `id` chosen by its sender: commands may be delivered
//! more than once (SQS is at-least-once, clients retry), and a repeated id does nothing new.
//!
//! The JSON shape is a contract with other systems:
//! `{"version": 1, "id": "<unique>", "type": "start_run", "plan": {…}}`. Plans travel as their JSON
//! form and are validated by the handler (see [`crate::plan::from_value`]), which names every bad
//! field; this crate only checks the envelope.
//!
//! [`json_schema`] is the JSON Schema of that contract, generated from these types (so it follows
//! every change to them); `docs/commands.schema.json` is a copy checked against it by a test.

use crate::plan::FieldError;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A command with its id and version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = require_version)]
pub struct CommandMessage {
    /// Protocol version: a message of another version is refused.
    #[serde(default = "crate::wire::current_version")]
    #[schemars(schema_with = "version_schema")]
    pub version: u32,
    /// Chosen by the sender, unique per intended action; a repeat is recognised and ignored.
    #[schemars(length(min = 1, max = 128))]
    pub id: String,
    /// What to do.
    #[serde(flatten)]
    pub command: Command,
}

/// What the coordinator is asked to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    /// Store a new test.
    CreateTest {
        /// The id to give it; the handler picks one when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        test_id: Option<String>,
        /// The test.
        #[serde(flatten)]
        test: TestSpec,
    },
    /// Replace a stored test's name, plan, tags and schedule.
    UpdateTest {
        /// The test.
        test_id: String,
        /// Its new definition.
        #[serde(flatten)]
        test: TestSpec,
    },
    /// Delete a stored test (refused while one of its runs is active).
    DeleteTest {
        /// The test.
        test_id: String,
    },
    /// Start a run: of a stored test (`test_id`), or of an inline plan (`plan`).
    StartRun {
        /// A stored test to run.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        test_id: Option<String>,
        /// An inline plan (its JSON form) to run; the coordinator validates it and names every
        /// bad field (`plan.load.stages[0].vus: must be > 0`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(schema_with = "plan_schema")]
        plan: Option<serde_json::Value>,
        /// Changes to the plan for this run only.
        #[serde(default, skip_serializing_if = "Overrides::is_empty")]
        overrides: Overrides,
        /// Run even if another run of the same test is active.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        allow_concurrent: bool,
    },
    /// Stop an active run (it ends as cancelled, with its partial results kept).
    StopRun {
        /// The run.
        run_id: String,
        /// Why, for the record.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Change an active run's load from now on: new stages that ramp from where the load is
    /// (`[{duration, vus}]` for a run of virtual users, `[{duration, rps}]` for an arrival
    /// rate), replacing the rest of its plan's stages; every agent switches at the same instant.
    RampRun {
        /// The run.
        run_id: String,
        /// The new stages, as a plan writes them.
        #[schemars(schema_with = "stages_schema")]
        stages: serde_json::Value,
    },
    /// Set (or with `null`, remove) a stored test's schedule.
    Schedule {
        /// The test.
        test_id: String,
        /// When to run it.
        schedule: Option<Schedule>,
    },
    /// Make a finished run the baseline its test's runs are compared with.
    SetBaseline {
        /// The test.
        test_id: String,
        /// A run of that test.
        run_id: String,
    },
}

/// A test as its author defines it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TestSpec {
    /// Human name.
    #[schemars(length(min = 1))]
    pub name: String,
    /// The plan, in its JSON form (validated by the coordinator, which names every bad field).
    #[schemars(schema_with = "plan_schema")]
    pub plan: serde_json::Value,
    /// Free labels, for filtering.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// When to run it on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
}

/// Per-run changes to a plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Overrides {
    /// Number of agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub agents: Option<u32>,
    /// Total duration of the load (`"30s"`): the stages are scaled to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
}

impl Overrides {
    /// Whether nothing is overridden.
    pub fn is_empty(&self) -> bool {
        self.agents.is_none() && self.duration.is_none()
    }
}

/// When a stored test runs by itself. Times are RFC 3339; zones are IANA names (`Europe/Paris`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schedule {
    /// Once.
    At {
        /// When (`2026-03-01T09:00:00Z`).
        at: String,
    },
    /// At `start`, then every period after it, at the same wall-clock time in `tz`.
    Recurring {
        /// How often.
        every: Every,
        /// The first run.
        start: String,
        /// The zone whose wall clock the recurrence keeps (default `UTC`).
        #[serde(default = "utc")]
        tz: String,
        /// No run after this instant.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<String>,
    },
    /// A 5-field cron expression (`minute hour day-of-month month day-of-week`) in a zone.
    Cron {
        /// The expression (`*/5 9-17 * * mon-fri`).
        expr: String,
        /// The zone it is read in (default `UTC`).
        #[serde(default = "utc")]
        tz: String,
        /// No run after this instant.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<String>,
    },
}

fn utc() -> String {
    "UTC".into()
}

/// Recurrence periods, as the AWS solution offers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Every {
    /// Every day.
    Daily,
    /// Every 7 days.
    Weekly,
    /// Every 14 days.
    Biweekly,
    /// The same day each month (clamped to the month's last day).
    Monthly,
}

impl CommandMessage {
    /// Checks what the envelope alone can tell: the id, and that a start names exactly one of a
    /// test or a plan. Plans and schedules are checked by the handler, which knows the clock.
    pub fn check(&self) -> Result<(), FieldError> {
        if self.id.is_empty() || self.id.len() > 128 {
            return Err(field("id", "must be 1-128 characters"));
        }
        match &self.command {
            Command::StartRun { test_id, plan, .. } => match (test_id, plan) {
                (Some(_), Some(_)) => Err(field("plan", "give either test_id or plan, not both")),
                (None, None) => Err(field("plan", "give a test_id or a plan")),
                _ => Ok(()),
            },
            Command::CreateTest { test, .. } | Command::UpdateTest { test, .. } => {
                if test.name.trim().is_empty() {
                    Err(field("name", "must not be empty"))
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }
}

/// The JSON Schema (draft 2020-12) of a [`CommandMessage`], as other systems send it: the body of
/// an SQS message, of a message on the `herd/commands` topic, of an SNS notification's `Message`.
///
/// Plans appear as objects: their format is validated by the coordinator's plan parser, which
/// names every bad field (see the README's plan reference), not by this schema.
pub fn json_schema() -> serde_json::Value {
    schemars::schema_for!(CommandMessage).to_value()
}

pub(crate) fn version_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "integer", "const": crate::PROTOCOL_VERSION})
}

fn plan_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "object"})
}

fn stages_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "minItems": 1,
        "items": {
            "type": "object",
            "required": ["duration"],
            "properties": {
                "duration": {"type": "string", "description": "`30s`, `1m30s`, `500ms`"},
                "vus": {"type": "integer", "minimum": 0},
                "rps": {"type": "number", "minimum": 0}
            }
        }
    })
}

/// `version` has a serde default for herd's own use, but the wire refuses a message without it
/// ([`crate::wire::decode`]): the schema says what the wire accepts.
fn require_version(schema: &mut schemars::Schema) {
    if let Some(required) = schema
        .ensure_object()
        .entry("required")
        .or_insert_with(|| serde_json::Value::Array(Vec::new()))
        .as_array_mut()
    {
        if !required.iter().any(|v| v == "version") {
            required.insert(0, "version".into());
        }
    }
}

fn field(path: &str, message: &str) -> FieldError {
    FieldError {
        path: path.into(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests;
