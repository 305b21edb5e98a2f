//! What the run actor knows only in some of its phases, held by the phase itself ([`Stage`]).
//!
//! A start time exists once the load is started, a settle time only while the load runs, a
//! pending resume only until the started actor takes it up; kept as fields of the actor, each was
//! an `Option` that every reader had to trust the phase about. As data of [`Stage`]'s variants,
//! a value cannot be read in a phase where it means nothing, and leaving a phase drops what
//! belonged to it. [`Phase`] stays the plain name the view, the store and the logs show:
//! [`Stage::phase`] gives it.
//!
//! This module imports nothing of the actor, so the actor's struct can hold a [`Stage`].

use crate::run::phase::Phase;
use crate::store::RunStateName;
use herd_protocol::summary::RunState;
use tokio::time::Instant;

/// The run actor's tick: every deadline is checked at it, and its lateness measures the actor's
/// own lag.
pub(super) const TICK: std::time::Duration = std::time::Duration::from_millis(100);

/// Where the run is, with what only that phase knows.
#[derive(Debug)]
pub(super) enum Stage {
    /// A new run: recording it, subscribing to its topics, starting agents.
    Launching,
    /// A stored run, until the started actor takes it up (shown as launching until then).
    Resuming(Resumed),
    /// Waiting for every agent to report ready.
    WaitingReady {
        /// A cancellation stored with a stop whose start time never made it to the store: only a
        /// resumed run can wait with one, and it ends as cancelled.
        cancelled: Option<String>,
    },
    /// The load is running (start command sent).
    Running(Load),
    /// Stop sent (or planned end reached): waiting for agents to finish and frames to drain.
    Stopping(Load),
    /// Storing the summary.
    Finalizing {
        /// When the load started, if it did.
        start_at_ms: Option<u64>,
    },
    /// Over, in one of the terminal states.
    Ended {
        /// The final state.
        state: RunState,
        /// When the load started, if it did.
        start_at_ms: Option<u64>,
    },
}

/// A started load: what the running and stopping phases share.
#[derive(Debug)]
pub(super) struct Load {
    /// When the load starts or started (ms since the Unix epoch).
    pub(super) start_at_ms: u64,
    /// When every agent had finished or been lost: the drain runs from there.
    pub(super) settled_at: Option<Instant>,
    /// Why the run fails although its load started (every agent was lost).
    pub(super) failure: Option<String>,
    /// Why the run was cancelled: set with the stop it causes (a running load is only cancelled
    /// already when a resumed run started its load after a stored cancellation).
    pub(super) cancelled: Option<String>,
    /// Why an agent ended the run early, if one did (`end_run.rs`): not a failure.
    pub(super) ended: Option<String>,
}

impl Load {
    /// A load starting at `start_at_ms`, nothing settled or failed yet.
    pub(super) fn new(start_at_ms: u64, cancelled: Option<String>) -> Self {
        Self {
            start_at_ms,
            settled_at: None,
            failure: None,
            cancelled,
            ended: None,
        }
    }
}

/// What a resumed actor knows of the run's stored state until it has resumed it.
#[derive(Debug)]
pub(super) struct Resumed {
    /// The stored state.
    pub(super) state: RunStateName,
    /// When the run entered it (ms since the Unix epoch).
    pub(super) since_ms: u64,
    /// When the load started, if the start was stored.
    pub(super) start_at_ms: Option<u64>,
    /// When the load ends, if a live ramp moved the end.
    pub(super) ends_at_ms: Option<u64>,
    /// The reason stored with a stop: the run was cancelled.
    pub(super) cancelled: Option<String>,
    /// Why the run cannot be carried on, if it cannot (its stored data does not rebuild).
    pub(super) problem: Option<String>,
}

/// Why the run is finalized, besides what its stage holds.
#[derive(Debug)]
pub(super) enum EndCause {
    /// The load is over: every agent settled and the frames drained, or the stop deadline passed.
    Over,
    /// It failed (the first failure recorded is kept).
    Failed(String),
    /// It was cancelled before its load started.
    Cancelled(String),
}

/// What decides a run's final state, taken from its stage when it ends.
#[derive(Debug)]
pub(super) struct Ending {
    /// When the load started, if it did (a run that never started fails).
    pub(super) start_at_ms: Option<u64>,
    /// Why it failed.
    pub(super) failure: Option<String>,
    /// Why it was cancelled.
    pub(super) cancelled: Option<String>,
    /// Why an agent ended it early.
    pub(super) ended: Option<String>,
}

impl Stage {
    /// The observable name of the phase.
    pub(super) fn phase(&self) -> Phase {
        match self {
            Stage::Launching | Stage::Resuming(_) => Phase::Launching,
            Stage::WaitingReady { .. } => Phase::WaitingReady,
            Stage::Running(_) => Phase::Running,
            Stage::Stopping(_) => Phase::Stopping,
            Stage::Finalizing { .. } => Phase::Finalizing,
            Stage::Ended { state, .. } => Phase::Ended(*state),
        }
    }

    /// When the load starts or started, once known.
    pub(super) fn start_at_ms(&self) -> Option<u64> {
        match self {
            Stage::Launching | Stage::WaitingReady { .. } => None,
            Stage::Resuming(resumed) => resumed.start_at_ms,
            Stage::Running(load) | Stage::Stopping(load) => Some(load.start_at_ms),
            Stage::Finalizing { start_at_ms } | Stage::Ended { start_at_ms, .. } => *start_at_ms,
        }
    }

    /// The started load, while it runs or stops.
    pub(super) fn load_mut(&mut self) -> Option<&mut Load> {
        match self {
            Stage::Running(load) | Stage::Stopping(load) => Some(load),
            _ => None,
        }
    }

    /// Why the run was cancelled, if it was and has not ended yet.
    pub(super) fn cancelled(&self) -> Option<&str> {
        match self {
            Stage::WaitingReady { cancelled } => cancelled.as_deref(),
            Stage::Running(load) | Stage::Stopping(load) => load.cancelled.as_deref(),
            _ => None,
        }
    }

    /// The pending resume, leaving the run launching (as it is shown until it is resumed).
    pub(super) fn take_resumed(&mut self) -> Option<Resumed> {
        match std::mem::replace(self, Stage::Launching) {
            Stage::Resuming(resumed) => Some(resumed),
            other => {
                *self = other;
                None
            }
        }
    }

    /// The stopping stage of a running load (any other stage is kept as it is).
    pub(super) fn into_stopping(self) -> Stage {
        match self {
            Stage::Running(load) => Stage::Stopping(load),
            other => other,
        }
    }

    /// Moves to finalizing, returning what decides the final state.
    pub(super) fn finish(&mut self) -> Ending {
        let start_at_ms = self.start_at_ms();
        match std::mem::replace(self, Stage::Finalizing { start_at_ms }) {
            Stage::Running(load) | Stage::Stopping(load) => Ending {
                start_at_ms,
                failure: load.failure,
                cancelled: load.cancelled,
                ended: load.ended,
            },
            Stage::WaitingReady { cancelled } => Ending {
                start_at_ms,
                failure: None,
                cancelled,
                ended: None,
            },
            _ => Ending {
                start_at_ms,
                failure: None,
                cancelled: None,
                ended: None,
            },
        }
    }
}
