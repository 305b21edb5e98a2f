//! What a run is given: its plan and timing knobs ([`RunSpec`], [`Timeouts`]) and the adapters it
//! talks to ([`RunDeps`]).
//!
//! These are plain data that the actor, the resume path and the callers (CLI, manager) all name, so
//! they live in a module that depends on nothing of the run: the actor imports them, never the
//! other way round.

use crate::bus::AgentBus;
use crate::launcher::Launcher;
use crate::store::Store;
use herd_protocol::plan::Plan;
use herd_protocol::RunId;
use std::sync::Arc;
use std::time::Duration;

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
    /// At the end of a run, how long its last writes are retried while the store fails; a store
    /// that is not back by then fails the run (its summary goes to [`RunDeps::fallback_dir`]).
    pub store_grace: Duration,
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
            store_grace: Duration::from_secs(30),
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
    /// Host globs and CIDRs runs may reach (`[api] allowed_targets`, `herd run
    /// --allowed-targets`); `None`: any. Checked before a run starts and by agents on every
    /// connection.
    pub allowed_targets: Option<Vec<String>>,
    /// Outputs every run pushes to (`herd.toml`'s `[[outputs]]`), besides its plan's own.
    pub outputs: Vec<herd_protocol::plan::Output>,
    /// Where a run's summary is written as `{run}.json` when the store fails at its end (the
    /// data directory's `summaries/`); `None`: nowhere but the outcome.
    pub fallback_dir: Option<std::path::PathBuf>,
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
