//! The embedded default: everything a run needs on one machine, no cloud, no setup.
//!
//! [`LocalRuntime::start`] brings up the embedded broker (rumqttd on loopback), the coordinator's
//! MQTT session, the embedded store under a data directory and the local process launcher; then
//! [`LocalRuntime::start_run`] starts run actors on them. Agents are still separate OS processes
//! that talk MQTT, and frames are still aggregated by the coordinator: the same code paths as the
//! AWS mode, with local adapters.

use crate::broker::{BrokerError, EmbeddedBroker};
use crate::launcher::local::LocalLauncher;
use crate::mqtt::{MqttError, MqttLink};
use crate::run::{self, RunDeps, RunHandle, RunSpec, Timeouts};
use crate::store::embedded::EmbeddedStore;
use crate::store::StoreError;
use herd_protocol::plan::Plan;
use herd_protocol::RunId;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::path::PathBuf;
use std::sync::Arc;

/// Why the local runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The embedded broker.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// The coordinator's MQTT session.
    #[error(transparent)]
    Mqtt(#[from] MqttError),
    /// The embedded store.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where the local runtime keeps things and which program runs agents.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// Data directory: the store and agents' logs live under it.
    pub data_dir: PathBuf,
    /// The program launched as `PROGRAM agent …` (normally the running `herd`).
    pub agent_program: PathBuf,
}

/// The embedded broker, store and launcher, ready to run plans.
pub struct LocalRuntime {
    broker: EmbeddedBroker,
    deps: RunDeps,
}

impl LocalRuntime {
    /// Starts the embedded pieces. Must be called inside an actix system.
    pub async fn start(config: LocalConfig) -> Result<Self, LocalError> {
        let broker = tokio::task::spawn_blocking(EmbeddedBroker::start)
            .await
            .map_err(|e| BrokerError::Io(std::io::Error::other(e.to_string())))??;
        let link = MqttLink::connect(
            &broker.url(),
            &format!("herd-coordinator-{}", std::process::id()),
        )
        .await?;
        let store = EmbeddedStore::open(&config.data_dir)?;
        let launcher = LocalLauncher::new(config.agent_program, Some(config.data_dir.join("logs")));
        let deps = RunDeps {
            launcher: Arc::new(launcher),
            bus: Arc::new(link),
            store: Arc::new(store),
            broker_url: broker.url(),
        };
        Ok(Self { broker, deps })
    }

    /// The broker's URL (agents on other hosts of the loopback can join with it).
    pub fn broker_url(&self) -> String {
        self.broker.url()
    }

    /// The adapters runs are started with (the service's manager starts its own runs on them).
    pub fn deps(&self) -> RunDeps {
        self.deps.clone()
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
            self.deps.clone(),
        )
    }
}

/// A new run id: time-ordered, with random bits so concurrent coordinators do not collide.
pub fn new_run_id() -> RunId {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let random = RandomState::new().hash_one(std::process::id()) & 0xffff_ffff;
    RunId::new(format!("run-{ms:x}-{random:08x}")).expect("run ids are built from [a-z0-9-]")
}
