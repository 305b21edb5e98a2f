//! A lost agent's share of the load (`options.on_agent_loss`): run on without it (`continue`),
//! move it onto the agents still running (`redistribute`), or end the run (`abort`).
//!
//! Only a loss while the load runs has a share to move: before the start a loss fails the run
//! (as it always did), and once the load is stopping there is nothing left to carry. The move
//! takes effect [`LEAD`] ahead, the time for the reassignment to reach every agent, so all of
//! them switch on the same instant. What was decided is kept on the agent's gap ([`ShareMove`]),
//! stored with its record, so a resumed run rebuilds the split (`Shares::restore`); should the
//! coordinator die before that write, the resumed run loses the agent again and sends a newer
//! reassignment over the same carriers, which supersedes the first. `replace` is applied as
//! `redistribute` for now (launching a replacement is not built yet: see `README.md`); the gap
//! records the action applied.

use super::machine::RunActor;
use super::stage::Stage;
use crate::store::ShareMove;
use actix::prelude::*;
use herd_protocol::agent::AgentCommand;
use herd_protocol::plan::OnAgentLoss;
use herd_protocol::AgentId;
use std::time::Duration;

/// How far ahead of now a reassignment begins: time for the command to reach every agent.
pub(super) const LEAD: Duration = Duration::from_millis(300);

impl RunActor {
    /// `agent` was just declared lost: apply the plan's policy to its share.
    pub(super) fn share_lost(&mut self, agent: &AgentId, ctx: &mut Context<Self>) {
        let start_at_ms = match &self.stage {
            Stage::Running(load) if load.cancelled.is_none() => load.start_at_ms,
            _ => return,
        };
        let now_ms = self.clock.unix_ms();
        let planned_ms = (self.view.borrow().planned_s * 1000.0) as u64;
        if now_ms >= start_at_ms + planned_ms {
            return;
        }
        let policy = self.spec.plan.options.on_agent_loss;
        let at_ms = (now_ms + LEAD.as_millis() as u64).max(start_at_ms);
        let applied = match policy {
            OnAgentLoss::Replace => OnAgentLoss::Redistribute,
            other => other,
        };
        let record = |to| ShareMove {
            action: applied.as_str().to_string(),
            at_ms,
            to,
        };
        match policy {
            OnAgentLoss::Continue => self.record_move(agent, record(vec![])),
            OnAgentLoss::Abort => {
                let second = now_ms.saturating_sub(start_at_ms) / 1000;
                self.record_move(agent, record(vec![]));
                self.fail(
                    format!(
                        "agent {agent} was lost at second {second} of the load, and \
                         options.on_agent_loss is abort"
                    ),
                    ctx,
                );
            }
            OnAgentLoss::Redistribute | OnAgentLoss::Replace => {
                let Some(moved) = self.shares.without(agent, at_ms) else {
                    self.record_move(agent, record(vec![]));
                    return;
                };
                let to = self.shares.carriers().to_vec();
                tracing::info!(run = %self.spec.run, %agent, at_ms, carriers = to.len(), "lost agent's share redistributed");
                self.record_move(agent, record(to));
                self.send(AgentCommand::Reassign(moved), ctx);
            }
        }
    }

    /// A lost agent was taken back: if its share moved, it is to be told (at the next tick,
    /// [`RunActor::retell`]) that it carries nothing now; the agents that took its share keep it
    /// (see [`crate::run::shares`]).
    pub(super) fn share_taken_back(&mut self, agent: &AgentId) {
        if !self.shares.carries(agent) && self.shares.latest().is_some() {
            self.retell = true;
        }
    }

    /// Sends the latest reassignment again if an agent that missed it came back. Agents that
    /// follow it already ignore it.
    pub(super) fn retell(&mut self, ctx: &mut Context<Self>) {
        if !std::mem::take(&mut self.retell) || !matches!(self.stage, Stage::Running(_)) {
            return;
        }
        if let Some(latest) = self.shares.latest().cloned() {
            self.send(AgentCommand::Reassign(latest), ctx);
        }
    }

    fn record_move(&mut self, agent: &AgentId, share: ShareMove) {
        if let Some(gap) = self.agents.0.get_mut(agent).and_then(|t| t.gaps.last_mut()) {
            gap.share = Some(share);
            self.ledger.agent_changed(agent);
        }
    }
}
