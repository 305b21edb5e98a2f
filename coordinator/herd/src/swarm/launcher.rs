//! A launcher that starts nothing: the run's agents are started by someone else.
//!
//! The run actor asks its launcher for agents and then waits for each to say `ready` on the
//! broker. [`ExternalLauncher`] hands the launch request (run id, agent ids, broker URL) to
//! whoever holds the other end of its channel — the swarm bench, which starts simulated agents
//! with exactly those ids — and reports them launched. Exits are never reported: the run finds a
//! missing agent by its heartbeat, as it would an ECS task it cannot watch.

use herd_coordinator::launcher::{
    AgentExited, BoxFuture, LaunchError, LaunchSpec, Launched, Launcher,
};
use herd_protocol::RunId;
use tokio::sync::mpsc;

/// See the module docs.
#[derive(Debug, Clone)]
pub struct ExternalLauncher {
    requests: mpsc::UnboundedSender<LaunchSpec>,
}

impl ExternalLauncher {
    /// A launcher that forwards each launch request to the returned receiver.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<LaunchSpec>) {
        let (requests, rx) = mpsc::unbounded_channel();
        (Self { requests }, rx)
    }
}

impl Launcher for ExternalLauncher {
    fn launch(
        &self,
        spec: LaunchSpec,
        _events: mpsc::UnboundedSender<AgentExited>,
    ) -> BoxFuture<Result<Vec<Launched>, LaunchError>> {
        let launched = spec
            .agents
            .iter()
            .map(|agent| Launched {
                agent: agent.clone(),
                handle: "external".into(),
            })
            .collect();
        let refused = self
            .requests
            .send(spec)
            .err()
            .map(|e| LaunchError::Refused {
                started: 0,
                requested: e.0.agents.len(),
                reason: "nobody starts the external agents any more".into(),
            });
        Box::pin(async move { refused.map_or(Ok(launched), Err) })
    }

    fn stop(&self, _run: &RunId) -> BoxFuture<()> {
        Box::pin(async {})
    }
}
