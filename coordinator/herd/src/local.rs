//! The embedded default: everything a run needs on one machine, no cloud, no setup.
//!
//! [`LocalRuntime::start`] brings up the embedded broker (rumqttd on loopback), the coordinator's
//! MQTT session, the embedded store under a data directory and the local process launcher; then
//! [`LocalRuntime::start_run`] starts run actors on them. Agents are still separate OS processes
//! that talk MQTT, and frames are still aggregated by the coordinator: the same code paths as the
//! AWS mode, with local adapters.

use crate::adapters::{AdapterPaths, Adapters, AdaptersError};
use herd_coordinator::broker::LogWindow;
use herd_coordinator::config::{BrokerConfig, ServiceConfig};
use herd_coordinator::manager::new_run_id;
use herd_coordinator::mqtt::BrokerEndpoint;
use herd_coordinator::run::{self, RunDeps, RunHandle, RunSpec, Timeouts};
use herd_protocol::plan::Plan;
use std::path::PathBuf;

/// Where the local runtime keeps things and which program runs agents.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// Data directory: the store and agents' logs live under it.
    pub data_dir: PathBuf,
    /// The program launched as `PROGRAM agent …` (normally the running `herd`).
    pub agent_program: PathBuf,
    /// Host globs and CIDRs runs may reach (`herd run --allowed-targets`); `None`: any.
    pub allowed_targets: Option<Vec<String>>,
    /// Outputs every run pushes to besides its plan's (`herd.toml`'s `[[outputs]]`).
    pub outputs: Vec<herd_protocol::plan::Output>,
    /// How much the embedded broker keeps of each topic filter (sized from the run's plan).
    pub broker_log: LogWindow,
}

/// The embedded broker, store and launcher, ready to run plans.
pub struct LocalRuntime {
    runtime: Adapters,
}

impl LocalRuntime {
    /// Starts the embedded pieces. Must be called inside an actix system.
    pub async fn start(config: LocalConfig) -> Result<Self, AdaptersError> {
        let runtime = Adapters::start(
            &ServiceConfig {
                allowed_targets: config.allowed_targets,
                outputs: config.outputs,
                broker: BrokerConfig {
                    embedded_log: config.broker_log,
                    ..BrokerConfig::default()
                },
                ..ServiceConfig::default()
            },
            AdapterPaths {
                data_dir: config.data_dir,
                agent_program: config.agent_program,
                owner: None,
            },
        )
        .await?;
        Ok(Self { runtime })
    }

    /// The broker's URL (agents on other hosts of the loopback can join with it).
    pub fn broker_url(&self) -> String {
        self.runtime.broker().to_string()
    }

    /// The broker the coordinator uses.
    pub fn broker(&self) -> &BrokerEndpoint {
        self.runtime.broker()
    }

    /// The adapters runs are started with (the service's manager starts its own runs on them).
    pub fn deps(&self) -> RunDeps {
        self.runtime.deps()
    }

    /// Starts a run of `plan` with a fresh run id.
    pub fn start_run(&self, plan: Plan, timeouts: Timeouts) -> RunHandle {
        run::start(
            RunSpec {
                run: new_run_id(),
                test: None,
                plan,
                timeouts,
            },
            self.runtime.deps(),
        )
    }
}

/// The stable identity of the coordinator whose store is in `data_dir`: the same at every start
/// on that directory (so a restarted `herd up` claims its runs back at once and gets its durable
/// MQTT session back), different for another directory (two services on one broker).
pub fn coordinator_id(data_dir: &std::path::Path) -> String {
    // Created first, so the canonical path (what identifies it) is the same at every start.
    let _ = std::fs::create_dir_all(data_dir);
    let dir = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    let digest = ring::digest::digest(&ring::digest::SHA256, dir.to_string_lossy().as_bytes());
    let hex: String = digest.as_ref()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("herd-up-{hex}")
}
