//! MQTT topic names. One place builds them, so agents, coordinator and dashboards cannot disagree.
//!
//! - `herd/runs/{run}/cmd` — coordinator → every agent of the run (start, ramp, stop);
//! - `herd/runs/{run}/agents/{agent}/status` — agent → coordinator (ready, started, heartbeat,
//!   finished, error; `lost` is the agent's MQTT last will);
//! - `herd/runs/{run}/agents/{agent}/frames` — agent → coordinator, one result frame per second;
//! - `herd/runs/{run}/live` — coordinator → anyone: the aggregate of each second, as it is known;
//! - `herd/commands` — anyone → coordinator: protocol `CommandMessage`s, one of its command
//!   sources (outside `herd/runs/`, so no run's topics and no agent's permissions cover it).

use crate::{AgentId, RunId};

/// Prefix of every herd topic.
pub const ROOT: &str = "herd/runs";

/// Commands for the coordinator (create a test, start or stop a run, …).
pub const COORDINATOR_COMMANDS: &str = "herd/commands";

/// Commands for every agent of a run.
pub fn commands(run: &RunId) -> String {
    format!("{ROOT}/{run}/cmd")
}

/// Status messages of one agent.
pub fn status(run: &RunId, agent: &AgentId) -> String {
    format!("{ROOT}/{run}/agents/{agent}/status")
}

/// Result frames of one agent.
pub fn frames(run: &RunId, agent: &AgentId) -> String {
    format!("{ROOT}/{run}/agents/{agent}/frames")
}

/// Filter matching every agent's status and frames of a run.
pub fn agents_filter(run: &RunId) -> String {
    format!("{ROOT}/{run}/agents/+/+")
}

/// Live per-second aggregates of a run.
pub fn live(run: &RunId) -> String {
    format!("{ROOT}/{run}/live")
}

/// What an agent-side topic carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentTopic {
    /// `…/agents/{agent}/status`
    Status(RunId, AgentId),
    /// `…/agents/{agent}/frames`
    Frames(RunId, AgentId),
}

/// Parses an agent-side topic; `None` for anything else.
pub fn parse_agent_topic(topic: &str) -> Option<AgentTopic> {
    let rest = topic.strip_prefix(ROOT)?.strip_prefix('/')?;
    let mut parts = rest.split('/');
    let run = RunId::new(parts.next()?).ok()?;
    if parts.next()? != "agents" {
        return None;
    }
    let agent = AgentId::new(parts.next()?).ok()?;
    let kind = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    match kind {
        "status" => Some(AgentTopic::Status(run, agent)),
        "frames" => Some(AgentTopic::Frames(run, agent)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_topics_parse_back() {
        let run = RunId::new("r1").expect("valid");
        let agent = AgentId::numbered(2);
        assert_eq!(
            parse_agent_topic(&status(&run, &agent)),
            Some(AgentTopic::Status(run.clone(), agent.clone()))
        );
        assert_eq!(
            parse_agent_topic(&frames(&run, &agent)),
            Some(AgentTopic::Frames(run.clone(), agent))
        );
        assert_eq!(parse_agent_topic(&commands(&run)), None);
        assert_eq!(parse_agent_topic("herd/runs/r1/agents/a/frames/x"), None);
    }
}
