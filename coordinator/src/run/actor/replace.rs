//! `options.on_agent_loss: replace`: a new agent takes a lost agent's place.
//!
//! The new agent is launched through the run's launcher (a local process, an ECS task) with an
//! id of its own (`agent-1-r1`: frames are numbered per agent, so it cannot reuse the lost one's),
//! in the lost agent's region, and takes its *slot*: its index in the split, its feeder rows, its
//! VU numbers. **Until it is ready, the surviving agents carry the share** (the loss is moved as
//! with `redistribute`, `loss.rs`): an ECS task takes tens of seconds to start, and the target
//! should not see less than planned meanwhile. When it says ready, one reassignment takes it into
//! the list at its slot, [`LEAD`] ahead, and it gets the start command, with every reassignment
//! so far, from which it finds its place; it carries nothing before that instant. The
//! aggregator expects its frames from that second on; what the lost agent sent stays counted.
//!
//! If it cannot be launched, or is not ready within the launch and ready timeouts, the share
//! stays with the survivors (as `redistribute`), and the gap's `note` says why. A replacement is
//! not tracked across a coordinator restart until it joined: a resumed run keeps the share
//! redistributed (a replacement process left waiting is stopped with the run's agents).

use super::machine::RunActor;
use super::pending::{Pending, LEAD};
use crate::launcher::{LaunchError, LaunchSpec, Launched};
use crate::run::agents::AgentTrack;
use crate::run::liveness::Heard;
use crate::store::ShareMove;
use actix::prelude::*;
use herd_protocol::agent::AgentCommand;
use herd_protocol::AgentId;
use std::collections::BTreeMap;
use tokio::time::Instant;

impl RunActor {
    /// Launches a new agent for `lost`, whose share the survivors carry from `interim_at_ms`.
    pub(super) fn replace(
        &mut self,
        lost: AgentId,
        interim_at_ms: Option<u64>,
        ctx: &mut Context<Self>,
    ) {
        let base = self
            .shares
            .slot_of(&lost)
            .and_then(|s| self.shares.roster().get(s as usize))
            .cloned()
            .unwrap_or_else(|| lost.clone());
        self.replacing.launched += 1;
        let new = match AgentId::new(format!("{base}-r{}", self.replacing.launched)) {
            Ok(id) => id,
            Err(e) => return self.not_replaced(&lost, &format!("no id for it: {e}")),
        };
        let Some(exits) = self.exits.clone() else {
            return self.not_replaced(&lost, "the launcher's channel is closed");
        };
        let t = &self.spec.timeouts;
        self.replacing.pending.insert(
            new.clone(),
            Pending {
                in_place_of: lost.clone(),
                interim_at_ms,
                deadline: Instant::now() + t.launch + t.ready,
            },
        );
        let regions = self
            .spec
            .plan
            .agent_regions()
            .get(&base)
            .map(|r| BTreeMap::from([(new.clone(), r.clone())]))
            .unwrap_or_default();
        let spec = LaunchSpec {
            run: self.spec.run.clone(),
            agents: vec![new.clone()],
            broker_url: self.deps.broker_url.clone(),
            regions,
        };
        tracing::info!(run = %self.spec.run, %lost, %new, "launching a replacement");
        let launcher = self.deps.launcher.clone();
        ctx.spawn(
            async move { launcher.launch(spec, exits).await }
                .into_actor(self)
                .map(move |result, act, _| act.replacement_launched(new, result)),
        );
    }

    fn replacement_launched(&mut self, new: AgentId, result: Result<Vec<Launched>, LaunchError>) {
        if !self.replacing.pending.contains_key(&new) {
            return;
        }
        match result {
            Ok(launched) => {
                let now = self.clock.unix_ms();
                let track = self.agents.0.entry(new.clone()).or_insert(AgentTrack {
                    heard: Heard::new(now),
                    ..AgentTrack::default()
                });
                track.handle = launched.into_iter().next().map(|l| l.handle);
                self.ledger.agent_changed(&new);
                self.publish_view();
            }
            Err(e) => self.replacement_failed(&new, &format!("could not launch it: {e}")),
        }
    }

    /// At a tick: replacements not ready in time are given up.
    pub(super) fn check_replacements(&mut self, _: &mut Context<Self>) {
        let now = Instant::now();
        let late: Vec<AgentId> = self
            .replacing
            .pending
            .iter()
            .filter(|(_, p)| now >= p.deadline)
            .map(|(id, _)| id.clone())
            .collect();
        let limit = self.spec.timeouts.launch + self.spec.timeouts.ready;
        for new in late {
            self.replacement_failed(&new, &format!("{new} was not ready within {limit:?}"));
        }
    }

    /// A replacement said it is ready: it takes its slot from [`LEAD`] ahead.
    pub(super) fn replacement_ready(&mut self, new: &AgentId, ctx: &mut Context<Self>) {
        let Some(pending) = self.replacing.pending.remove(new) else {
            return;
        };
        let Some((_, now_ms)) = self.load_running() else {
            self.agents.0.remove(new);
            return self.noted(
                &pending.in_place_of,
                "the load ended before the replacement was ready",
            );
        };
        let at_ms = now_ms + LEAD.as_millis() as u64;
        let Some(change) = self.shares.join(new.clone(), &pending.in_place_of, at_ms) else {
            self.agents.0.remove(new);
            return self.noted(&pending.in_place_of, "its place was taken");
        };
        let region = self
            .shares
            .slot_of(new)
            .and_then(|s| self.shares.roster().get(s as usize))
            .and_then(|base| self.spec.plan.agent_regions().get(base).cloned());
        self.aggregator
            .agent_joins(new, change.at_ms / 1000, region.as_deref());
        tracing::info!(run = %self.spec.run, lost = %pending.in_place_of, %new, at_ms = change.at_ms, "replacement takes the lost agent's share");
        self.record_move(
            &pending.in_place_of,
            ShareMove {
                action: "replace".into(),
                at_ms: change.at_ms,
                to: vec![new.clone()],
                interim_at_ms: pending.interim_at_ms,
                note: None,
            },
        );
        // The start goes to every agent (those running ignore it); the replacement finds its
        // place in the reassignments it carries. The others hear the change itself.
        self.send_start(ctx);
        self.send(AgentCommand::Reassign(change), ctx);
    }

    fn replacement_failed(&mut self, new: &AgentId, why: &str) {
        let Some(pending) = self.replacing.pending.remove(new) else {
            return;
        };
        tracing::warn!(run = %self.spec.run, lost = %pending.in_place_of, %new, %why, "no replacement");
        // Not an agent of the run: nothing of it is counted or awaited.
        self.agents.0.remove(new);
        self.not_replaced(&pending.in_place_of, why);
    }

    /// The share of `lost` stays where the loss put it; its gap says why.
    fn not_replaced(&mut self, lost: &AgentId, why: &str) {
        let kept = if self.shares.carriers().contains(lost) {
            "the share was not played"
        } else {
            "the share stays redistributed"
        };
        self.noted(lost, &format!("replace failed: {why}; {kept}"));
    }

    fn noted(&mut self, lost: &AgentId, note: &str) {
        if let Some(gap) = self.agents.0.get_mut(lost).and_then(|t| t.gaps.last_mut()) {
            if let Some(share) = &mut gap.share {
                share.note = Some(note.to_string());
                self.ledger.agent_changed(lost);
            }
        }
    }
}
