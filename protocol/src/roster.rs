//! The list of agents carrying a run's load, kept by every agent and by the coordinator, and
//! changed by [`Reassignment`]s that carry only what changed.
//!
//! **Why a list on every agent.** A reassignment used to list every survivor's index and went to
//! every agent: O(N) bytes to each of N agents per loss, so a cascade of losses among 5,000
//! simulated agents put 104 KB per agent-second on the broker. Now each agent builds the list from
//! its start command (the numbered agents need no map: [`crate::agent::agent_index`]) and applies
//! the changes itself — lost agents leave, the others keep their order; a replacement joins at
//! the index it is given — so it computes its own new index by the same rule the coordinator uses
//! for its full re-split (the coordinator's `run::shares` applies the very same [`Roster::apply`]
//! steps; its proptests check an agent's list against the coordinator's after any sequence).
//!
//! **Order and repeats.** Changes are numbered (`seq`, from 1). One heard again is ignored; one
//! heard ahead of a missing one waits for it — unless it takes this agent out, which holds at
//! once (a lost agent taken back is sent only the change that took it out). A coordinator that died after sending a change but
//! before storing it may, once resumed, send a *different* change under the same number (built
//! from what it had stored): the newer one wins — the list is rebuilt from the start with it, and
//! the changes numbered after the old one are dropped (they were built on it). Every agent heard
//! the old one (the broker delivered it), so all of them make the same switch on the same
//! instants and the split stays exact.

use crate::agent::Reassignment;
use crate::AgentId;
use std::collections::BTreeMap;

/// An agent's place in the split from an instant on, after a change it applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    /// From when (ms since the Unix epoch).
    pub at_ms: u64,
    /// How many agents carry the load from then on.
    pub count: u32,
    /// The agent's index among them; `None`: it carries nothing.
    pub index: Option<u32>,
}

/// The carriers of a run's load as one agent (or the coordinator) knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roster {
    start: Vec<AgentId>,
    carriers: Vec<AgentId>,
    /// Every change heard, by `seq`; `applied` of them (1..=applied) are in `carriers`.
    heard: BTreeMap<u32, Reassignment>,
    applied: u32,
}

impl Roster {
    /// The start's list: `agents[i]` is index `i`.
    pub fn new(agents: Vec<AgentId>) -> Self {
        Self {
            start: agents.clone(),
            carriers: agents,
            heard: BTreeMap::new(),
            applied: 0,
        }
    }

    /// The start's list from a start command's `assignments` (compacted or not, see
    /// [`crate::agent::compact_assignments`]) and `agent_count`.
    pub fn from_start(assignments: &BTreeMap<AgentId, u32>, agent_count: u32) -> Self {
        let agents = if assignments.is_empty() {
            crate::agent::numbered_agents(agent_count)
        } else {
            let mut by_index: Vec<(&u32, &AgentId)> =
                assignments.iter().map(|(a, i)| (i, a)).collect();
            by_index.sort();
            by_index.into_iter().map(|(_, a)| a.clone()).collect()
        };
        Self::new(agents)
    }

    /// The agents carrying the load after the changes applied so far, in index order.
    pub fn carriers(&self) -> &[AgentId] {
        &self.carriers
    }

    /// `agent`'s index among the carriers now.
    pub fn index_of(&self, agent: &AgentId) -> Option<u32> {
        self.carriers
            .iter()
            .position(|c| c == agent)
            .and_then(|i| u32::try_from(i).ok())
    }

    /// How many changes are applied (the `seq` of the last one).
    pub fn applied(&self) -> u32 {
        self.applied
    }

    /// Hears a change; returns `me`'s place after each change it made apply, in order (none:
    /// a repeat, or a change waiting for an earlier one).
    pub fn hear(&mut self, change: Reassignment, me: &AgentId) -> Vec<Placed> {
        let seq = change.seq;
        if seq == 0 {
            return Vec::new();
        }
        match self.heard.get(&seq) {
            Some(known) if *known == change => return Vec::new(),
            Some(_) => {
                // A newer word for the same number: what was built on the old one goes too.
                self.heard.split_off(&seq);
                self.heard.insert(seq, change);
                if seq <= self.applied {
                    self.carriers = self.start.clone();
                    let upto = seq - 1;
                    self.applied = 0;
                    for n in 1..=upto {
                        if let Some(c) = self.heard.get(&n).cloned() {
                            apply(&mut self.carriers, &c);
                            self.applied = n;
                        }
                    }
                }
            }
            None => {
                if seq > self.applied + 1 && change.lost.contains(me) {
                    // Out of the list, whatever came between: an agent taken back after a loss
                    // is told only the change that took it out.
                    let out = Placed {
                        at_ms: change.at_ms,
                        count: change.agent_count,
                        index: None,
                    };
                    self.heard.insert(seq, change);
                    return vec![out];
                }
                self.heard.insert(seq, change);
            }
        }
        let mut placed = Vec::new();
        while let Some(next) = self.heard.get(&(self.applied + 1)).cloned() {
            apply(&mut self.carriers, &next);
            self.applied = next.seq;
            placed.push(Placed {
                at_ms: next.at_ms,
                count: u32::try_from(self.carriers.len()).unwrap_or(u32::MAX),
                index: self.index_of(me),
            });
        }
        placed
    }
}

/// Applies one change to a list of carriers: the lost leave (the others keep their order), then
/// the joined are put at their indices, lowest first (an index past the end appends).
pub fn apply(carriers: &mut Vec<AgentId>, change: &Reassignment) {
    carriers.retain(|c| !change.lost.contains(c));
    let mut joined: Vec<_> = change.joined.iter().collect();
    joined.sort_by_key(|j| j.index);
    for j in joined {
        if carriers.contains(&j.agent) {
            continue;
        }
        let at = (j.index as usize).min(carriers.len());
        carriers.insert(at, j.agent.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::Joined;

    fn ids(n: u32) -> Vec<AgentId> {
        (0..n).map(AgentId::numbered).collect()
    }

    fn change(
        seq: u32,
        at_ms: u64,
        lost: &[u32],
        joined: &[(&str, u32)],
        count: u32,
    ) -> Reassignment {
        Reassignment {
            seq,
            at_ms,
            lost: lost.iter().map(|i| AgentId::numbered(*i)).collect(),
            joined: joined
                .iter()
                .map(|(a, i)| Joined {
                    agent: AgentId::new(*a).expect("valid"),
                    index: *i,
                    slot: *i,
                })
                .collect(),
            agent_count: count,
        }
    }

    #[test]
    fn the_start_list_is_the_same_compacted_or_not() {
        let full = crate::agent::numbered_assignments(12);
        assert_eq!(
            Roster::from_start(&BTreeMap::new(), 12),
            Roster::from_start(&full, 12)
        );
        let r = Roster::from_start(&BTreeMap::new(), 12);
        for (agent, index) in &full {
            assert_eq!(r.index_of(agent), Some(*index));
        }
    }

    #[test]
    fn changes_apply_in_order_once_and_a_gap_waits() {
        let me = AgentId::numbered(3);
        let mut r = Roster::new(ids(4));
        // The second change arrives first: it waits for the first.
        let second = change(2, 9_000, &[], &[("agent-1-r1", 1)], 3);
        assert!(r.hear(second.clone(), &me).is_empty());
        let placed = r.hear(change(1, 5_000, &[1], &[], 2), &me);
        assert_eq!(
            placed,
            vec![
                Placed {
                    at_ms: 5_000,
                    count: 3,
                    index: Some(2)
                },
                Placed {
                    at_ms: 9_000,
                    count: 4,
                    index: Some(3)
                },
            ]
        );
        assert!(r.hear(second, &me).is_empty(), "a repeat changes nothing");
        assert_eq!(r.carriers()[1].as_str(), "agent-1-r1");
        // A lost agent's own view: it carries nothing from the change on, even when it missed
        // the changes before.
        let mut lost = Roster::new(ids(4));
        let placed = lost.hear(change(2, 5_000, &[1], &[], 2), &AgentId::numbered(1));
        assert_eq!(
            placed,
            vec![Placed {
                at_ms: 5_000,
                count: 2,
                index: None
            }]
        );
    }

    /// One loss among 5,000 agents is a message of about 120 bytes to each agent (the full list
    /// of survivors' indices it replaced was 88 KB: 440 MB through the broker per loss).
    #[test]
    fn a_reassignment_is_small_whatever_the_agent_count() {
        let message = crate::agent::AgentCommandMessage {
            version: crate::PROTOCOL_VERSION,
            run: crate::RunId::new("r-0123456789").expect("valid"),
            command: crate::agent::AgentCommand::Reassign(change(
                1,
                1_765_000_000_000,
                &[1234],
                &[],
                4_999,
            )),
        };
        let bytes = crate::wire::encode(&message);
        assert!(bytes.len() < 160, "{} bytes", bytes.len());
    }

    #[test]
    fn a_newer_word_for_the_same_number_replaces_the_old_and_what_followed_it() {
        let me = AgentId::numbered(0);
        let mut r = Roster::new(ids(4));
        r.hear(change(1, 5_000, &[1], &[], 3), &me);
        r.hear(change(2, 6_000, &[2], &[], 2), &me);
        let placed = r.hear(change(1, 8_000, &[1, 3], &[], 2), &me);
        assert_eq!(
            placed,
            vec![Placed {
                at_ms: 8_000,
                count: 2,
                index: Some(0)
            }]
        );
        assert_eq!(r.carriers(), &[AgentId::numbered(0), AgentId::numbered(2)]);
        assert_eq!(r.applied(), 1);
    }
}
