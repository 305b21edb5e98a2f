//! `options.on_agent_loss`: what a run does with the share of the load a lost agent carried.
//!
//! DLT and Locust drop a failed worker's share silently, and the run then tests less than
//! planned. herd's default moves it onto the agents still running (`redistribute`), keeping the
//! exact split; `replace` launches a new agent for it; `continue` runs on with fewer agents (the
//! behaviour before this option); `abort` ends the run failed. Kept apart from `options.rs` so
//! the policy's names and parsing live in one place.

use super::cx::{kind, Cx};
use serde_json::Value;

/// What to do with a lost agent's share of the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnAgentLoss {
    /// Run on with fewer agents: the lost share is not carried by anyone.
    Continue,
    /// The surviving agents split the whole load between them from the next instant on.
    #[default]
    Redistribute,
    /// A new agent is launched in the lost one's place and given its share.
    Replace,
    /// End the run, failed, naming the agent and the second.
    Abort,
}

impl OnAgentLoss {
    /// Every policy, with the plan value that selects it.
    pub const ALL: [(OnAgentLoss, &'static str); 4] = [
        (OnAgentLoss::Continue, "continue"),
        (OnAgentLoss::Redistribute, "redistribute"),
        (OnAgentLoss::Replace, "replace"),
        (OnAgentLoss::Abort, "abort"),
    ];

    /// The plan value (`continue`, `redistribute`, `replace`, `abort`).
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(v, _)| *v == self)
            .map_or("redistribute", |(_, k)| k)
    }
}

impl Cx {
    pub(super) fn on_agent_loss(&mut self, v: &Value) -> Option<OnAgentLoss> {
        const PATH: &str = "options.on_agent_loss";
        let Value::String(s) = v else {
            self.err(
                PATH,
                format!(
                    "must be one of continue, redistribute, replace, abort; got {}",
                    kind(v)
                ),
            );
            return None;
        };
        let found = OnAgentLoss::ALL.iter().find(|(_, k)| k == s);
        if found.is_none() {
            self.err(
                PATH,
                format!("unknown policy {s:?}: expected continue, redistribute, replace or abort"),
            );
        }
        found.map(|(v, _)| *v)
    }
}
