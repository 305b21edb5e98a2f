//! The load side of a second — VUs and the agents' own health — as the agents' frames tell it.
//! A leaf: the slot, the checkpoint and the emitted [`super::SecondAggregate`] all carry it.

use herd_protocol::frame::Health;
use herd_protocol::summary::{AgentHealth, SecondHealth};
use serde::{Deserialize, Serialize};

/// What the agents said about their load in one second: the VUs they ran and their own health,
/// added up over the frames of that second (kept with its checkpoint, so a restarted coordinator
/// stores the second again with them).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SecondLoad {
    /// Virtual users running at the second's end, summed over agents.
    pub vus: u64,
    /// The agents' health in the second.
    pub health: SecondHealth,
    /// The worst agents' own health, for the live view only: neither stored with the second nor
    /// kept in its checkpoint (a second restored after a restart is no longer live).
    #[serde(skip)]
    pub agents: Vec<AgentHealth>,
}

impl SecondLoad {
    /// Adds one agent's frame.
    pub fn add(&mut self, agent: &str, vus: u32, health: &Health) {
        self.vus = self.vus.saturating_add(u64::from(vus));
        self.health.add(agent, health);
        AgentHealth::keep_worst(&mut self.agents, agent, health);
    }
}

/// Equal when what is kept is equal: the live-only `agents` list is not part of a second's
/// state (a checkpoint read back has none).
impl PartialEq for SecondLoad {
    fn eq(&self, other: &Self) -> bool {
        self.vus == other.vus && self.health == other.health
    }
}
