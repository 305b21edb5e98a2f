//! The run's states. Every non-terminal state has a deadline: a run always ends.

use herd_protocol::summary::RunState;

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Recording the run, subscribing to its topics, starting agents.
    Launching,
    /// Waiting for every agent to report ready.
    WaitingReady,
    /// The load is running (start command sent).
    Running,
    /// Stop sent (or planned end reached): waiting for agents to finish and frames to drain.
    Stopping,
    /// Storing the summary.
    Finalizing,
    /// Over, in one of the terminal states.
    Ended(RunState),
}

impl Phase {
    /// The name used in the store, views and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Launching => "launching",
            Phase::WaitingReady => "waiting_ready",
            Phase::Running => "running",
            Phase::Stopping => "stopping",
            Phase::Finalizing => "finalizing",
            Phase::Ended(RunState::Completed) => "completed",
            Phase::Ended(RunState::Degraded) => "degraded",
            Phase::Ended(RunState::Failed) => "failed",
            Phase::Ended(RunState::Cancelled) => "cancelled",
        }
    }

    /// Whether the load has been started (agents may be sending frames).
    pub fn load_started(self) -> bool {
        matches!(self, Phase::Running | Phase::Stopping)
    }

    /// Whether the run is past the point of no return.
    pub fn is_over(self) -> bool {
        matches!(self, Phase::Finalizing | Phase::Ended(_))
    }

    /// Whether the run has ended: its summary and final state are stored and its agents stopped.
    pub fn is_ended(self) -> bool {
        matches!(self, Phase::Ended(_))
    }
}
