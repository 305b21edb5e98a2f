//! Launchers start a run's agents somewhere and report when one of them exits.
//!
//! The run actor holds a `dyn Launcher` and never knows whether agents are child processes on
//! this machine ([`local::LocalLauncher`]) or tasks elsewhere. Agents find their way back over MQTT;
//! the launcher's only other duty is to tell the run when an agent's process ends (a crash is
//! noticed even before the broker's last will or the heartbeat timeout), and to stop leftovers.
//! Agents outlive a crash of the coordinator that launched them, so a restarted coordinator can
//! [`Launcher::adopt`] them and carry their run on.

pub mod local;

use herd_protocol::plan::{FieldError, Plan};
use herd_protocol::{AgentId, RunId};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use tokio::sync::mpsc;

/// A boxed future, as the boundary traits return them.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What to launch.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    /// The run the agents serve.
    pub run: RunId,
    /// The agents to start.
    pub agents: Vec<AgentId>,
    /// The broker URL the agents connect to.
    pub broker_url: String,
    /// The region of each agent the plan places in one (`regions:`); agents without an entry
    /// run where the launcher puts agents by default.
    pub regions: BTreeMap<AgentId, String>,
}

/// A launched agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launched {
    /// Which agent.
    pub agent: AgentId,
    /// Where it runs: a process id, a task ARN, …
    pub handle: String,
}

/// Something that happened to a launched agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentExited {
    /// Which agent.
    pub agent: AgentId,
    /// Whether it exited successfully.
    pub success: bool,
    /// Exit code or signal, for the report.
    pub detail: String,
}

/// Why agents could not be launched or stopped.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The agent program could not be started.
    #[error("could not start agent {agent}: {source}")]
    Spawn {
        /// Which agent.
        agent: AgentId,
        /// Why.
        source: std::io::Error,
    },
    /// The agent program is missing.
    #[error("agent program {0} not found")]
    Program(String),
    /// Where agents run refused to start some of them (ECS: no capacity, a bad task definition).
    #[error("only {started} of {requested} agents could be started: {reason}")]
    Refused {
        /// How many did start (they are stopped again).
        started: usize,
        /// How many were asked for.
        requested: usize,
        /// Why the others did not.
        reason: String,
    },
}

/// Starts and stops agents.
pub trait Launcher: Send + Sync + 'static {
    /// Starts every agent of `spec`; exits are reported on `events`.
    fn launch(
        &self,
        spec: LaunchSpec,
        events: mpsc::UnboundedSender<AgentExited>,
    ) -> BoxFuture<Result<Vec<Launched>, LaunchError>>;

    /// The regions this launcher can place agents in, or `None` when any name will do (local
    /// agents take a plan's regions as labels).
    fn regions(&self) -> Option<Vec<String>> {
        None
    }

    /// Stops whatever is still running of a run's agents.
    fn stop(&self, run: &RunId) -> BoxFuture<()>;

    /// Takes over agents that an earlier coordinator process launched for `run` (the run is being
    /// resumed after a restart; `agents` carry the handles [`Launcher::launch`] returned then):
    /// from now on [`Launcher::stop`] reaches them, and their exits are reported on `events` as
    /// far as the launcher can see them. Resolves with the agents that are still running.
    ///
    /// The default, for a launcher that cannot look its agents up, reports them all as running
    /// and watches none: the run's heartbeat timeout then finds the ones that are gone.
    fn adopt(
        &self,
        run: &RunId,
        agents: Vec<Launched>,
        events: mpsc::UnboundedSender<AgentExited>,
    ) -> BoxFuture<Vec<AgentId>> {
        let _ = (run, events);
        let running = agents.into_iter().map(|a| a.agent).collect();
        Box::pin(async move { running })
    }
}

/// The plan's regions that `launcher` cannot place agents in, each named by its field.
pub fn check_regions(plan: &Plan, launcher: &dyn Launcher) -> Vec<FieldError> {
    let Some(known) = launcher.regions() else {
        return Vec::new();
    };
    plan.regions
        .iter()
        .enumerate()
        .filter(|(_, r)| !known.contains(&r.region))
        .map(|(i, r)| FieldError {
            path: format!("regions[{i}].region"),
            message: format!(
                "{:?} is not configured in herd.toml (configured: {}): add a [[launcher.regions]] \
                 table for it",
                r.region,
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ),
        })
        .collect()
}
