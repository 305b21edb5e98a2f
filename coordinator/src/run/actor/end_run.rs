//! An agent asks for the run to end (`AgentStatus::EndRun`): a `unique` feeder with
//! `on_exhausted: end_run` ran out of rows on it. The load stops on every agent at once,
//! gracefully, as a cancel does; the run is not failed for it (its verdict is still the
//! thresholds'), and the summary's reason says which agent ended it and why. Only the first
//! request is kept: by the time another agent runs out, the stop is already on its way.

use super::machine::RunActor;
use crate::run::phase::Phase;
use actix::prelude::*;
use herd_protocol::AgentId;

impl RunActor {
    /// Ends the running load on every agent, with `reason` for the summary.
    pub(super) fn end_run(&mut self, agent: &AgentId, reason: &str, ctx: &mut Context<Self>) {
        let reason = crate::run::secrets::redact(&self.spec.plan, reason);
        let running = self.phase() == Phase::Running;
        let Some(load) = self.stage.load_mut() else {
            tracing::info!(run = %self.spec.run, %agent, %reason, "end of the run asked outside the load: ignored");
            return;
        };
        if load.ended.is_some() {
            return;
        }
        tracing::info!(run = %self.spec.run, %agent, %reason, "an agent ended the run");
        load.ended = Some(format!("ended early by {agent}: {reason}"));
        if running {
            self.stop_agents(ctx);
        }
    }
}
