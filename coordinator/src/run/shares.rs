//! Who carries the load, and the reassignments made when agents were lost or replaced
//! (`options.on_agent_loss`).
//!
//! The start splits the load over every agent by its index. When agents are lost while the load
//! runs and their share is moved (`redistribute`, or `replace` until the replacement is ready),
//! a [`Reassignment`] takes them out of the list of carriers from an instant just ahead; a
//! replacement joins the list at the place of the agent it replaces (its *slot*, the lost
//! agent's start index, among the carriers ordered by slot). A reassignment names only the agents
//! that leave and join: every agent keeps the list itself and applies the change with the same
//! function as here ([`herd_protocol::roster::apply`]), so the split stays exact without a list
//! of N indices going to each of N agents ([`herd_protocol::roster`] says why). The history is
//! kept because a replacement follows it from its start command, a lost agent taken back is
//! told again the change that took it out, and a resumed coordinator sends it all again; it is
//! rebuilt on resume from the agents' stored gaps ([`ShareMove`]).
//!
//! **Take-back.** A lost agent that speaks again after its share moved does not get it back: the
//! agents that took it over keep it (moving it again would cost another instant of imprecision,
//! and an agent that fell silent once may again). It is sent the reassignment that took it out,
//! so it carries nothing from then on: the load is not doubled. Its requests between the
//! reassignment's instant and the moment it hears it are extra load, and are counted.
//!
//! This module imports nothing of the actor.

use crate::store::{AgentGap, ShareMove};
use herd_protocol::agent::{Joined, Reassignment};
use herd_protocol::roster;
use herd_protocol::AgentId;
use std::collections::BTreeMap;

/// The carriers of the load now, and the reassignments so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shares {
    /// The start's list: `roster[i]` is index `i` of the start command.
    roster: Vec<AgentId>,
    /// In index order: `carriers[i]` is index `i` of `carriers.len()`; always ordered by slot.
    carriers: Vec<AgentId>,
    /// Every agent's slot: its start index, or the one of the agent it replaced.
    slots: BTreeMap<AgentId, u32>,
    /// Oldest first; `history[i].seq == i + 1`.
    history: Vec<Reassignment>,
}

impl Shares {
    /// The start's split: every agent, in id order (as the start command numbers them).
    pub fn new(agents: impl IntoIterator<Item = AgentId>) -> Self {
        let roster: Vec<AgentId> = agents.into_iter().collect();
        Self {
            slots: roster.iter().cloned().zip(0..).collect(),
            carriers: roster.clone(),
            roster,
            history: Vec::new(),
        }
    }

    /// Rebuilt from stored gaps: the moves that changed the split, replayed in time order
    /// (losses before joins of the same instant).
    pub fn restore<'a>(
        agents: impl IntoIterator<Item = AgentId>,
        gaps: impl IntoIterator<Item = (&'a AgentId, &'a AgentGap)>,
    ) -> Self {
        let mut shares = Self::new(agents);
        // (at_ms, 0: lost | 1: joined, agent, the agent it replaces)
        let mut events: Vec<(u64, u8, AgentId, Option<AgentId>)> = Vec::new();
        for (agent, gap) in gaps {
            let Some(m) = &gap.share else { continue };
            match m.action.as_str() {
                "redistribute" if !m.to.is_empty() => {
                    events.push((m.at_ms, 0, agent.clone(), None))
                }
                "replace" => {
                    if let Some(at) = m.interim_at_ms {
                        events.push((at, 0, agent.clone(), None));
                    }
                    if let Some(new) = m.to.first() {
                        events.push((m.at_ms, 1, new.clone(), Some(agent.clone())));
                    }
                }
                _ => {}
            }
        }
        events.sort();
        let mut i = 0;
        while i < events.len() {
            let (at_ms, kind) = (events[i].0, events[i].1);
            let same: Vec<_> = events[i..]
                .iter()
                .take_while(|e| e.0 == at_ms && e.1 == kind)
                .cloned()
                .collect();
            i += same.len();
            if kind == 0 {
                let lost: Vec<AgentId> = same.into_iter().map(|e| e.2).collect();
                shares.without(&lost, at_ms);
            } else {
                for (_, _, new, old) in same {
                    if let Some(old) = old {
                        shares.join(new, &old, at_ms);
                    }
                }
            }
        }
        shares
    }

    /// Whether `agent` carries part of the load now.
    pub fn carries(&self, agent: &AgentId) -> bool {
        self.carriers.contains(agent)
    }

    /// The agents carrying the load now, in index order.
    pub fn carriers(&self) -> &[AgentId] {
        &self.carriers
    }

    /// The start's agents, by index.
    pub fn roster(&self) -> &[AgentId] {
        &self.roster
    }

    /// `agent`'s slot: its start index, or the one of the agent it replaced.
    pub fn slot_of(&self, agent: &AgentId) -> Option<u32> {
        self.slots.get(agent).copied()
    }

    /// The replacements that joined, each with the agent whose place it took.
    pub fn replacements(&self) -> impl Iterator<Item = &AgentId> {
        self.history
            .iter()
            .flat_map(|r| r.joined.iter().map(|j| &j.agent))
    }

    /// The reassignments so far, oldest first.
    pub fn history(&self) -> &[Reassignment] {
        &self.history
    }

    /// The reassignment that took `agent` out of the carriers, if one did.
    pub fn removal_of(&self, agent: &AgentId) -> Option<&Reassignment> {
        self.history.iter().rev().find(|r| r.lost.contains(agent))
    }

    /// `lost` agents are gone (all in the same instant): from `at_ms` on, the others carry the
    /// whole load. Returns the reassignment to send, or `None` when none of them carried
    /// anything or nobody is left to carry.
    pub fn without(&mut self, lost: &[AgentId], at_ms: u64) -> Option<Reassignment> {
        // In the carriers' order, so the same losses make the same change however they came
        // (a resumed run rebuilds them from the store in another order).
        let lost: Vec<AgentId> = self
            .carriers
            .iter()
            .filter(|c| lost.contains(c))
            .cloned()
            .collect();
        if lost.is_empty() || lost.len() >= self.carriers.len() {
            return None;
        }
        Some(self.push(at_ms, lost, Vec::new()))
    }

    /// `agent` takes `in_place_of`'s slot from `at_ms` on (if `in_place_of` still carries — its
    /// share was not moved meanwhile — it leaves in the same change). `None` when `agent`
    /// carries already or `in_place_of` has no slot.
    pub fn join(
        &mut self,
        agent: AgentId,
        in_place_of: &AgentId,
        at_ms: u64,
    ) -> Option<Reassignment> {
        let slot = *self.slots.get(in_place_of)?;
        if self.carries(&agent) {
            return None;
        }
        let lost: Vec<AgentId> = self
            .carries(in_place_of)
            .then(|| in_place_of.clone())
            .into_iter()
            .collect();
        let index = self
            .carriers
            .iter()
            .filter(|c| !lost.contains(c) && self.slots.get(*c).is_some_and(|s| *s < slot))
            .count();
        self.slots.insert(agent.clone(), slot);
        let joined = vec![Joined {
            agent,
            index: u32::try_from(index).unwrap_or(u32::MAX),
            slot,
        }];
        Some(self.push(at_ms, lost, joined))
    }

    fn push(&mut self, at_ms: u64, lost: Vec<AgentId>, joined: Vec<Joined>) -> Reassignment {
        let at_ms = self.history.last().map_or(at_ms, |r| r.at_ms.max(at_ms));
        let mut change = Reassignment {
            seq: u32::try_from(self.history.len() + 1).unwrap_or(u32::MAX),
            at_ms,
            lost,
            joined,
            agent_count: 0,
        };
        roster::apply(&mut self.carriers, &change);
        change.agent_count = u32::try_from(self.carriers.len()).unwrap_or(u32::MAX);
        self.history.push(change.clone());
        change
    }
}

/// A move as stored on a lost agent's gap.
pub fn recorded(action: &str, at_ms: u64, to: Vec<AgentId>) -> ShareMove {
    ShareMove {
        action: action.to_string(),
        at_ms,
        to,
        ..ShareMove::default()
    }
}

#[cfg(test)]
#[path = "shares_tests.rs"]
mod tests;
