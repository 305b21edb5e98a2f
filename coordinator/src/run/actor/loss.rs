//! A lost agent's share of the load (`options.on_agent_loss`): run on without it (`continue`),
//! move it onto the agents still running (`redistribute`), hand it to a new agent (`replace`,
//! see `replace.rs`: the survivors carry it until the new agent is ready), or end the run
//! (`abort`).
//!
//! Only a loss while the load runs has a share to move: before the start a loss fails the run
//! (as it always did), and once the load is stopping there is nothing left to carry. The move
//! takes effect [`LEAD`] after the first loss, the time for the reassignment to reach every
//! agent, so all of them switch on the same instant. Losses that come together (a cascade, a
//! host with many agents going down, several silences found by one tick) are gathered for
//! [`BATCH`](super::pending::BATCH) and moved by one reassignment, which names only the lost agents (see
//! `herd_protocol::roster`): so a cascade costs a few small messages, not one list of every
//! survivor per loss to every agent.
//!
//! What was decided is kept on the agent's gap ([`ShareMove`]), stored with its record, so a
//! resumed run rebuilds the split (`Shares::restore`) and sends the reassignments again; should
//! the coordinator die before that write, the resumed run loses the agent again and sends a
//! reassignment under the same number, which agents take over the first (see the roster).

use super::machine::RunActor;
use super::pending::LEAD;
use super::stage::Stage;
use crate::run::shares::recorded;
use crate::store::ShareMove;
use actix::prelude::*;
use herd_protocol::agent::AgentCommand;
use herd_protocol::plan::OnAgentLoss;
use herd_protocol::AgentId;

impl RunActor {
    /// The load's start and now, while the load runs and has time left; `None` otherwise.
    pub(super) fn load_running(&self) -> Option<(u64, u64)> {
        let start_at_ms = match &self.stage {
            Stage::Running(load) if load.cancelled.is_none() => load.start_at_ms,
            _ => return None,
        };
        let now_ms = self.clock.unix_ms();
        let planned_ms = (self.view.borrow().planned_s * 1000.0) as u64;
        (now_ms < start_at_ms + planned_ms).then_some((start_at_ms, now_ms))
    }

    /// `agent` was just declared lost: apply the plan's policy to its share.
    pub(super) fn share_lost(&mut self, agent: &AgentId, ctx: &mut Context<Self>) {
        let Some((start_at_ms, now_ms)) = self.load_running() else {
            return;
        };
        let policy = self.spec.plan.options.on_agent_loss;
        let at_ms = (now_ms + LEAD.as_millis() as u64).max(start_at_ms);
        match policy {
            OnAgentLoss::Continue => self.record_move(agent, recorded("continue", at_ms, vec![])),
            OnAgentLoss::Abort => {
                let second = now_ms.saturating_sub(start_at_ms) / 1000;
                self.record_move(agent, recorded("abort", at_ms, vec![]));
                self.fail(
                    format!(
                        "agent {agent} was lost at second {second} of the load, and \
                         options.on_agent_loss is abort"
                    ),
                    ctx,
                );
            }
            OnAgentLoss::Redistribute | OnAgentLoss::Replace => {
                if self.losses.agents.is_empty() {
                    self.losses.at_ms = at_ms;
                    ctx.run_later(super::pending::BATCH, |act, ctx| act.move_shares(ctx));
                }
                if !self.losses.agents.contains(agent) {
                    self.losses.agents.push(agent.clone());
                }
            }
        }
    }

    /// Moves the gathered losses' shares onto the agents still carrying, in one reassignment;
    /// with `replace`, launches a new agent for each lost carrier.
    fn move_shares(&mut self, ctx: &mut Context<Self>) {
        let lost = std::mem::take(&mut self.losses.agents);
        let at_ms = self.losses.at_ms;
        if lost.is_empty() || self.load_running().is_none() {
            return;
        }
        let carried: Vec<AgentId> = lost
            .iter()
            .filter(|a| self.shares.carries(a))
            .cloned()
            .collect();
        let moved = self.shares.without(&lost, at_ms);
        let to = if moved.is_some() {
            self.shares.carriers().to_vec()
        } else {
            Vec::new()
        };
        tracing::info!(run = %self.spec.run, lost = lost.len(), at_ms, carriers = to.len(), "lost agents' share redistributed");
        for agent in &lost {
            self.record_move(agent, recorded("redistribute", at_ms, to.clone()));
        }
        let interim = moved.as_ref().map(|m| m.at_ms);
        if let Some(moved) = moved {
            self.send(AgentCommand::Reassign(moved), ctx);
        }
        if self.spec.plan.options.on_agent_loss == OnAgentLoss::Replace {
            for agent in carried {
                self.replace(agent, interim, ctx);
            }
        }
    }

    /// A lost agent was taken back: if its share moved, it is to be told (at the next tick,
    /// [`RunActor::retell`]) that it carries nothing now; the agents that took its share keep it
    /// (see [`crate::run::shares`]).
    pub(super) fn share_taken_back(&mut self, agent: &AgentId) {
        if !self.shares.carries(agent) && self.shares.removal_of(agent).is_some() {
            self.retell.insert(agent.clone());
        }
    }

    /// Sends again the reassignment that took out each lost agent that came back. Agents that
    /// follow it already ignore it.
    pub(super) fn retell(&mut self, ctx: &mut Context<Self>) {
        if self.retell.is_empty() || !matches!(self.stage, Stage::Running(_)) {
            return;
        }
        let mut told = std::collections::BTreeSet::new();
        for agent in std::mem::take(&mut self.retell) {
            if let Some(removal) = self.shares.removal_of(&agent).cloned() {
                if told.insert(removal.seq) {
                    self.send(AgentCommand::Reassign(removal), ctx);
                }
            }
        }
    }

    pub(super) fn record_move(&mut self, agent: &AgentId, share: ShareMove) {
        if let Some(gap) = self.agents.0.get_mut(agent).and_then(|t| t.gaps.last_mut()) {
            gap.share = Some(share);
            self.ledger.agent_changed(agent);
        }
    }
}
