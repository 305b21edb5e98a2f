//! An agent asks for the run to end (`AgentStatus::EndRun`): a `unique` feeder with
//! `on_exhausted: end_run` ran out of rows on it. The load stops on every agent at once,
//! gracefully, as a cancel does; the run is not failed for it (its verdict is still the
//! thresholds'), and the summary's reason says which agent ended it and why. Only a request
//! while the load runs counts: by the time another agent runs out, the run is stopping already.

use super::machine::RunActor;
use crate::run::phase::Phase;
use actix::prelude::*;
use herd_protocol::AgentId;

impl RunActor {
    /// Ends the running load on every agent, with `reason` for the summary.
    pub(super) fn end_run(&mut self, agent: &AgentId, reason: &str, ctx: &mut Context<Self>) {
        let reason = crate::run::secrets::redact(&self.spec.plan, reason);
        // Stopping already (the planned end, a cancel, another agent's request): the run ends
        // anyway, and not early because of this.
        if self.phase() != Phase::Running {
            tracing::info!(run = %self.spec.run, %agent, %reason, "end of the run asked while it is not running: ignored");
            return;
        }
        let Some(load) = self.stage.load_mut() else {
            return;
        };
        tracing::info!(run = %self.spec.run, %agent, %reason, "an agent ended the run");
        load.ended = Some(format!("ended early by {agent}: {reason}"));
        self.stop_agents(ctx);
    }
}
