//! Events the coordinator emits: what happened to runs, schedules and commands.
//!
//! Replies and failures of the one command path become events, so a system that sent a command
//! over a queue learns its outcome the same way a log reader or an SSE client does. Locally they
//! go to the log and an in-memory broadcast; in AWS mode to SNS, with `event`, `test` and `run`
//! as message attributes. The `type` names (`run.completed`) are a contract with subscribers.

use crate::summary::{SecondSummary, Summary, ThresholdResult};
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
    /// How a running run is doing: sent as each second is aggregated (sinks may rate-limit it).
    #[serde(rename = "run.progress")]
    RunProgress {
        /// The run.
        run: String,
        /// Its test.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        test: Option<String>,
        /// Seconds since the load started.
        elapsed_s: f64,
        /// Planned duration of the load, in seconds.
        planned_s: f64,
        /// Agents neither lost nor finished.
        agents_live: u32,
        /// Requests so far.
        requests: u64,
        /// Errors so far.
        errors: u64,
        /// The last aggregated second.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_second: Option<Box<SecondSummary>>,
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
    /// The runs active on this coordinator (the answer to a chat `status`).
    #[serde(rename = "runs.active")]
    ActiveRuns {
        /// Each active run.
        runs: Vec<ActiveRun>,
    },
    /// A command was refused; nothing was done.
    #[serde(rename = "command.rejected")]
    CommandRejected {
        /// A stable code (`invalid`, `not_found`, `conflict`, `capacity`, …).
        code: String,
        /// What was wrong, naming the field when one was.
        message: String,
    },
    /// A write was made through the API: the audit log's entry, also kept in the store.
    #[serde(rename = "audit.write")]
    AuditWrite {
        /// The entry's id (unique per write).
        id: String,
        /// Who: a token's id (`tok-…`) or a JWT's user; never the credential.
        actor: String,
        /// What: `POST /api/v1/runs`.
        action: String,
        /// The HTTP status it got.
        status: u16,
    },
}

impl Event {
    /// The event's `type` name.
    pub fn name(&self) -> &'static str {
        match self {
            Event::RunCreated { .. } => "run.created",
            Event::RunStarted { .. } => "run.started",
            Event::RunProgress { .. } => "run.progress",
            Event::RunCompleted { .. } => "run.completed",
            Event::RunFailed { .. } => "run.failed",
            Event::RunCancelled { .. } => "run.cancelled",
            Event::ThresholdBreached { .. } => "threshold.breached",
            Event::AgentLost { .. } => "agent.lost",
            Event::ScheduleSkipped { .. } => "schedule.skipped",
            Event::ActiveRuns { .. } => "runs.active",
            Event::CommandRejected { .. } => "command.rejected",
            Event::AuditWrite { .. } => "audit.write",
        }
    }

    /// The run it concerns, if any (an SNS message attribute in AWS mode).
    pub fn run(&self) -> Option<&str> {
        match self {
            Event::RunCreated { run, .. }
            | Event::RunStarted { run, .. }
            | Event::RunProgress { run, .. }
            | Event::RunCompleted { run, .. }
            | Event::RunFailed { run, .. }
            | Event::RunCancelled { run, .. }
            | Event::ThresholdBreached { run, .. }
            | Event::AgentLost { run, .. } => Some(run),
            Event::ScheduleSkipped { .. }
            | Event::ActiveRuns { .. }
            | Event::CommandRejected { .. }
            | Event::AuditWrite { .. } => None,
        }
    }

    /// The stored test it concerns, if any (an SNS message attribute in AWS mode).
    pub fn test(&self) -> Option<&str> {
        match self {
            Event::RunCreated { test, .. }
            | Event::RunStarted { test, .. }
            | Event::RunProgress { test, .. }
            | Event::RunCompleted { test, .. }
            | Event::RunFailed { test, .. }
            | Event::RunCancelled { test, .. }
            | Event::ThresholdBreached { test, .. } => test.as_deref(),
            Event::ScheduleSkipped { test, .. } => Some(test),
            Event::AgentLost { .. }
            | Event::ActiveRuns { .. }
            | Event::CommandRejected { .. }
            | Event::AuditWrite { .. } => None,
        }
    }

    /// Whether it is the last event of its run (`run.completed`, `run.failed`, `run.cancelled`).
    pub fn ends_run(&self) -> bool {
        matches!(
            self,
            Event::RunCompleted { .. } | Event::RunFailed { .. } | Event::RunCancelled { .. }
        )
    }
}

/// One active run, as `runs.active` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveRun {
    /// The run.
    pub run: String,
    /// Its test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<String>,
    /// Its phase (`launching`, `waiting_ready`, `running`, `stopping`, `finalizing`).
    pub phase: String,
    /// Agents it uses.
    pub agents: u32,
    /// Seconds since the load started (0 before).
    pub elapsed_s: f64,
    /// Planned duration of the load, in seconds.
    pub planned_s: f64,
    /// Requests so far.
    pub requests: u64,
    /// Errors so far.
    pub errors: u64,
}
