//! One run of a test plan, driven by a [`RunActor`](actor::RunActor).
//!
//! [`start`] spawns the actor on the current actix system and returns a [`RunHandle`]: an address
//! to cancel it, an observable [`RunView`] (what a progress line or a console shows) and the final
//! [`Summary`]. The actor's states and their deadlines are in [`phase`]; the agents' bookkeeping in
//! [`agents`]; turning aggregates into the summary in [`summary`]; carrying a run on after a
//! coordinator restart in [`resume`].

mod actor;
pub mod agents;
pub mod phase;
pub mod resume;
pub mod summary;

pub use actor::{Cancel, Ramp, RampRefused, Ramped, RunActor};
pub use phase::Phase;

use crate::bus::AgentBus;
use crate::launcher::Launcher;
use crate::store::Store;
use actix::{Actor, Addr};
use herd_protocol::plan::Plan;
use herd_protocol::summary::{SecondSummary, Summary};
use herd_protocol::{AgentId, RunId};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, watch};

/// How long each phase may take, and other timing knobs. Defaults suit a local run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// From creation until every agent is launched and the bus is subscribed.
    pub launch: Duration,
    /// From launch until every agent reported ready.
    pub ready: Duration,
    /// Lead time between the start command and the absolute start time it names, so every agent
    /// has received it before the start instant.
    pub start_delay: Duration,
    /// Silence after which an agent is declared lost.
    pub heartbeat: Duration,
    /// After every agent finished or was lost, how long to wait for frames still in flight.
    pub drain: Duration,
    /// How long after a second's end it is emitted live even if some agent has not reported it.
    pub aggregate_grace: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            launch: Duration::from_secs(30),
            ready: Duration::from_secs(30),
            start_delay: Duration::from_millis(200),
            heartbeat: Duration::from_secs(5),
            drain: Duration::from_secs(5),
            aggregate_grace: Duration::from_secs(2),
        }
    }
}

/// How long a coordinator's claim on a run lasts without renewal (the run actor renews it every
/// third of that): after a crash, another coordinator may take the run over once it ran out.
pub const LEASE: Duration = Duration::from_secs(30);

/// What the run actor needs from the outside world; the actor never knows which adapters these are.
#[derive(Clone)]
pub struct RunDeps {
    /// Starts and stops agents.
    pub launcher: Arc<dyn Launcher>,
    /// Commands out, agent messages in.
    pub bus: Arc<dyn AgentBus>,
    /// Where the run and its results are kept.
    pub store: Arc<dyn Store>,
    /// The broker URL handed to launched agents.
    pub broker_url: String,
    /// This coordinator's identity: the owner of the runs it drives (see [`LEASE`]). It must be
    /// the same at every start of the coordinator so that a restarted one can resume its runs
    /// at once (and is its durable MQTT session's client id).
    pub owner: String,
}

/// A run to perform.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// Its id.
    pub run: RunId,
    /// The stored test it runs, if any (recorded with the run, so a test's runs can be listed).
    pub test: Option<String>,
    /// The validated plan; `plan.agents` agents are launched.
    pub plan: Plan,
    /// Phase deadlines.
    pub timeouts: Timeouts,
}

/// What a run looks like right now.
#[derive(Debug, Clone, PartialEq)]
pub struct RunView {
    /// Current phase.
    pub phase: Phase,
    /// Seconds since the load started (0 before).
    pub elapsed_s: f64,
    /// When the load starts or started (ms since the Unix epoch), once the start is sent: second
    /// `t` of the run ends at `(start_at_ms / 1000 + t + 1) * 1000`.
    pub start_at_ms: Option<u64>,
    /// Planned duration of the load, in seconds.
    pub planned_s: f64,
    /// Agents the run uses.
    pub agents_expected: u32,
    /// Agents that reported ready.
    pub agents_ready: u32,
    /// Agents neither lost nor finished.
    pub agents_live: u32,
    /// Requests so far (as emitted seconds show).
    pub requests: u64,
    /// Errors so far.
    pub errors: u64,
    /// The last second emitted, with its requests, p50 and p99.
    pub last_second: Option<SecondSummary>,
    /// Agents declared lost so far: a follower can announce each loss when it happens, not only
    /// in the summary.
    pub lost_agents: Vec<AgentId>,
}

/// A running run.
pub struct RunHandle {
    /// The actor, to cancel it.
    pub addr: Addr<RunActor>,
    /// Its observable state.
    pub view: watch::Receiver<RunView>,
    /// Resolves with the summary when the run has ended and is stored.
    pub outcome: oneshot::Receiver<Summary>,
}

/// Starts a run actor on the current actix system.
pub fn start(spec: RunSpec, deps: RunDeps) -> RunHandle {
    let (actor, view, outcome) = RunActor::new(spec, deps);
    RunHandle {
        addr: actor.start(),
        view,
        outcome,
    }
}

#[cfg(test)]
mod resume_tests;
#[cfg(test)]
mod tests;
