//! What the run actor knows of the plan's setup and teardown (see `once.rs`, which drives
//! them): a leaf, so the actor's struct can hold it without `once` and the actor importing each
//! other.

use herd_protocol::once::PhaseSummary;
use herd_protocol::plan::OncePhase;
use herd_protocol::AgentId;
use std::collections::BTreeMap;
use tokio::time::Instant;

/// Where one phase is.
#[derive(Debug, Default)]
pub(super) enum Progress {
    /// Not sent (a plan without the phase stays here).
    #[default]
    NotRun,
    /// Sent to `agent`; its answer is due by `deadline`.
    Running { agent: AgentId, deadline: Instant },
    /// Over: what it did.
    Done(PhaseSummary),
}

/// The run's setup and teardown, and setup's variables.
#[derive(Debug, Default)]
pub(super) struct OncePhases {
    pub(super) setup: Progress,
    pub(super) teardown: Progress,
    /// What setup extracted, by name: every VU starts with them. Values are never logged.
    pub(super) vars: BTreeMap<String, String>,
}

impl OncePhases {
    /// Setup's variables, for the start command.
    pub(super) fn setup_vars(&self) -> BTreeMap<String, String> {
        self.vars.clone()
    }

    pub(super) fn progress(&mut self, phase: OncePhase) -> &mut Progress {
        match phase {
            OncePhase::Setup => &mut self.setup,
            OncePhase::Teardown => &mut self.teardown,
        }
    }
}
