//! Who carries the load, and the reassignments made when agents were lost
//! (`options.on_agent_loss`).
//!
//! The start splits the load over every agent by its index. When an agent is lost while the
//! load runs and its share is moved (`redistribute`), a [`Reassignment`] splits it from an
//! instant just ahead over the agents still carrying it, in their order; every agent follows it
//! on the same instant, so the split stays exact ([`herd_protocol::split`]). The history is kept
//! because an agent that joins later (a replacement) follows it from its start command, and it is
//! rebuilt on resume from the agents' stored gaps ([`ShareMove`]).
//!
//! **Take-back.** A lost agent that speaks again after its share moved does not get it back: the
//! agents that took it over keep it (moving it again would cost another instant of imprecision,
//! and an agent that fell silent once may again). It is sent the latest reassignment, in which
//! it is not listed, so it carries nothing from then on: the load is not doubled. Its requests
//! between the reassignment's instant and the moment it hears it are extra load, and are counted.
//!
//! This module imports nothing of the actor.

use crate::store::{AgentGap, ShareMove};
use herd_protocol::agent::Reassignment;
use herd_protocol::AgentId;

/// The carriers of the load now, and the reassignments so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shares {
    /// In index order: `carriers[i]` is index `i` of `carriers.len()`.
    carriers: Vec<AgentId>,
    /// Oldest first.
    history: Vec<Reassignment>,
}

impl Shares {
    /// The start's split: every agent, in id order (as the start command numbers them).
    pub fn new(agents: impl IntoIterator<Item = AgentId>) -> Self {
        Self {
            carriers: agents.into_iter().collect(),
            history: Vec::new(),
        }
    }

    /// Rebuilt from stored gaps: the moves that changed the split, replayed in time order.
    pub fn restore<'a>(
        agents: impl IntoIterator<Item = AgentId>,
        gaps: impl IntoIterator<Item = &'a AgentGap>,
    ) -> Self {
        let mut shares = Self::new(agents);
        let mut moves: Vec<&ShareMove> = gaps
            .into_iter()
            .filter_map(|g| g.share.as_ref())
            .filter(|m| !m.to.is_empty())
            .collect();
        moves.sort_by_key(|m| m.at_ms);
        for m in moves {
            shares.split_over(m.at_ms, m.to.clone());
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

    /// The reassignments so far, oldest first.
    pub fn history(&self) -> &[Reassignment] {
        &self.history
    }

    /// The latest reassignment, if any.
    pub fn latest(&self) -> Option<&Reassignment> {
        self.history.last()
    }

    /// `agent` is lost: from `at_ms` on, the others carry the whole load. Returns the
    /// reassignment to send, or `None` when `agent` carried nothing or nobody is left to carry.
    pub fn without(&mut self, agent: &AgentId, at_ms: u64) -> Option<Reassignment> {
        if !self.carries(agent) {
            return None;
        }
        let rest: Vec<AgentId> = self
            .carriers
            .iter()
            .filter(|c| *c != agent)
            .cloned()
            .collect();
        if rest.is_empty() {
            return None;
        }
        Some(self.split_over(at_ms, rest))
    }

    fn split_over(&mut self, at_ms: u64, carriers: Vec<AgentId>) -> Reassignment {
        let moved = Reassignment {
            at_ms,
            assignments: carriers
                .iter()
                .enumerate()
                .map(|(i, a)| (a.clone(), i as u32))
                .collect(),
            agent_count: carriers.len() as u32,
        };
        self.carriers = carriers;
        self.history.retain(|r| r.at_ms < at_ms);
        self.history.push(moved.clone());
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u32) -> Vec<AgentId> {
        (0..n).map(AgentId::numbered).collect()
    }

    #[test]
    fn a_lost_carrier_leaves_the_others_in_their_order() {
        let mut s = Shares::new(ids(3));
        let moved = s.without(&AgentId::numbered(1), 5_000).expect("moved");
        assert_eq!(moved.agent_count, 2);
        assert_eq!(moved.assignments.get(&AgentId::numbered(0)), Some(&0));
        assert_eq!(moved.assignments.get(&AgentId::numbered(2)), Some(&1));
        assert!(!s.carries(&AgentId::numbered(1)));
        // Lost again (taken back, then lost): it carries nothing, nothing moves.
        assert_eq!(s.without(&AgentId::numbered(1), 6_000), None);
        // The last carrier has nobody to hand its share to.
        s.without(&AgentId::numbered(0), 7_000).expect("moved");
        assert_eq!(s.without(&AgentId::numbered(2), 8_000), None);
        assert_eq!(s.carriers(), &[AgentId::numbered(2)]);
        assert_eq!(s.history().len(), 2);
    }

    #[test]
    fn the_split_is_rebuilt_from_the_stored_gaps() {
        let mut live = Shares::new(ids(4));
        live.without(&AgentId::numbered(0), 4_000);
        live.without(&AgentId::numbered(3), 9_000);
        let gap = |at_ms, to: &[AgentId]| AgentGap {
            silent_from_ms: 0,
            lost_at_ms: at_ms,
            back_at_ms: None,
            reason: "r".into(),
            share: Some(ShareMove {
                action: "redistribute".into(),
                at_ms,
                to: to.to_vec(),
            }),
        };
        let gaps = [
            gap(9_000, live.carriers()),
            gap(4_000, &ids(4)[1..]),
            // A loss under `continue` moved nothing.
            AgentGap {
                share: Some(ShareMove {
                    action: "continue".into(),
                    at_ms: 1_000,
                    to: vec![],
                }),
                ..gap(1_000, &[])
            },
        ];
        let restored = Shares::restore(ids(4), gaps.iter());
        assert_eq!(restored.carriers(), live.carriers());
        assert_eq!(restored.latest(), live.latest());
    }
}
