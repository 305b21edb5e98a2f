//! Events the coordinator emits: what happened to runs, schedules and commands.
//!
//! Replies and failures of the one command path become events, so a system that sent a command
//! over a queue learns its outcome the same way a log reader or an SSE client does. Locally they
//! go to the log and an in-memory broadcast; in AWS mode to SNS, with `event`, `test` and `run`
//! as message attributes. The `type` names (`run.completed`) are a contract with subscribers.

use crate::summary::{Summary, ThresholdResult};
use serde::{Deserialize, Serialize};

/// An event with its envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventMessage {
    /// Protocol version.
    #[serde(default = "crate::wire::current_version")]
    pub version: u32,
    /// When it happened, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The command that caused it, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_id: Option<String>,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Event {
    /// A run was accepted and its agents are being launched.
    #[serde(rename = "run.created")]
    RunCreated {
        /// The run.
        run: String,
        /// Its test, when it runs a stored one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        test: Option<String>,
        /// Agents it uses.
        agents: u32,
    },
    /// The load began.
    #[serde(rename = "run.started")]
    RunStarted {
        /// The run.
        run: String,
        /// Its test.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        test: Option<String>,
    },
    /// The run reached its end (completed or degraded); the summary says whether it passed.
    #[serde(rename = "run.completed")]
    RunCompleted {
        /// The run.
        run: String,
        /// Its test.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        test: Option<String>,
        /// The same object `herd run --json` writes.
        summary: Box<Summary>,
    },
    /// The run could not start or finish.
    #[serde(rename = "run.failed")]
    RunFailed {
        /// The run.
        run: String,
        /// Its test.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        test: Option<String>,
        /// Why.
        reason: String,
        /// What was measured before the failure.
        summary: Box<Summary>,
    },
    /// The run was stopped on request.
    #[serde(rename = "run.cancelled")]
    RunCancelled {
        /// The run.
        run: String,
        /// Its test.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        test: Option<String>,
        /// What was measured until the stop.
        summary: Box<Summary>,
    },
    /// A finished run failed at least one threshold.
    #[serde(rename = "threshold.breached")]
    ThresholdBreached {
        /// The run.
        run: String,
        /// Its test.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        test: Option<String>,
        /// The thresholds that failed.
        failed: Vec<ThresholdResult>,
    },
    /// An agent of a run was lost.
    #[serde(rename = "agent.lost")]
    AgentLost {
        /// The run.
        run: String,
        /// The agent.
        agent: String,
    },
    /// A scheduled run did not start (its previous run is still going, or the start was refused).
    #[serde(rename = "schedule.skipped")]
    ScheduleSkipped {
        /// The test.
        test: String,
        /// The fire time skipped, in milliseconds since the Unix epoch.
        due_ms: u64,
        /// Why.
        reason: String,
    },
    /// A command was refused; nothing was done.
    #[serde(rename = "command.rejected")]
    CommandRejected {
        /// A stable code (`invalid`, `not_found`, `conflict`, `capacity`, …).
        code: String,
        /// What was wrong, naming the field when one was.
        message: String,
    },
}

impl Event {
    /// The event's `type` name.
    pub fn name(&self) -> &'static str {
        match self {
            Event::RunCreated { .. } => "run.created",
            Event::RunStarted { .. } => "run.started",
            Event::RunCompleted { .. } => "run.completed",
            Event::RunFailed { .. } => "run.failed",
            Event::RunCancelled { .. } => "run.cancelled",
            Event::ThresholdBreached { .. } => "threshold.breached",
            Event::AgentLost { .. } => "agent.lost",
            Event::ScheduleSkipped { .. } => "schedule.skipped",
            Event::CommandRejected { .. } => "command.rejected",
        }
    }

    /// The run it concerns, if any (an SNS message attribute in AWS mode).
    pub fn run(&self) -> Option<&str> {
        match self {
            Event::RunCreated { run, .. }
            | Event::RunStarted { run, .. }
            | Event::RunCompleted { run, .. }
            | Event::RunFailed { run, .. }
            | Event::RunCancelled { run, .. }
            | Event::ThresholdBreached { run, .. }
            | Event::AgentLost { run, .. } => Some(run),
            Event::ScheduleSkipped { .. } | Event::CommandRejected { .. } => None,
        }
    }
}
