//! The embedded default: everything a run needs on one machine, no cloud, no setup.
//!
//! [`LocalRuntime::start`] brings up the embedded broker (rumqttd on loopback; or connects to an
//! external one, durably, so runs survive a coordinator restart), the coordinator's MQTT
//! session, the embedded store under a data directory and the local process launcher; then
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
    /// An external MQTT broker (`mqtt://HOST:PORT`) instead of the embedded one. The coordinator's
    /// session on it is durable (see [`MqttLink::connect_durable`]), so runs in flight survive a
    /// restart of the coordinator; the embedded broker dies with the coordinator.
    pub broker_url: Option<String>,
    /// This coordinator's stable identity ([`RunDeps::owner`]; see [`coordinator_id`]); `None`
    /// for a one-shot coordinator (`herd run`), which gets one of its own process.
    pub owner: Option<String>,
}

/// The embedded (or external) broker, store and launcher, ready to run plans.
pub struct LocalRuntime {
    broker: Option<EmbeddedBroker>,
    deps: RunDeps,
}

impl LocalRuntime {
    /// Starts the embedded pieces. Must be called inside an actix system.
    pub async fn start(config: LocalConfig) -> Result<Self, LocalError> {
        let owner = config
            .owner
            .unwrap_or_else(|| format!("herd-coordinator-{}", std::process::id()));
        let (broker, link, url) = match config.broker_url {
            Some(url) => {
                let link = MqttLink::connect_durable(&url, &owner).await?;
                (None, link, url)
            }
            None => {
                let broker = tokio::task::spawn_blocking(EmbeddedBroker::start)
                    .await
                    .map_err(|e| BrokerError::Io(std::io::Error::other(e.to_string())))??;
                let link = MqttLink::connect(&broker.url(), &owner).await?;
                let url = broker.url();
                (Some(broker), link, url)
            }
        };
        let store = EmbeddedStore::open(&config.data_dir)?;
        let launcher = LocalLauncher::new(config.agent_program, Some(config.data_dir.join("logs")));
        let deps = RunDeps {
            launcher: Arc::new(launcher),
            bus: Arc::new(link),
            store: Arc::new(store),
            broker_url: url,
            owner,
        };
        Ok(Self { broker, deps })
    }

    /// The broker's URL (agents on other hosts of the loopback can join with it).
    pub fn broker_url(&self) -> String {
        self.deps.broker_url.clone()
    }

    /// Whether the broker is the embedded one (it stops with this process).
    pub fn embedded_broker(&self) -> bool {
        self.broker.is_some()
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

/// A new run id: time-ordered, with random bits so concurrent coordinators do not collide.
pub fn new_run_id() -> RunId {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let random = RandomState::new().hash_one(std::process::id()) & 0xffff_ffff;
    RunId::new(format!("run-{ms:x}-{random:08x}")).expect("run ids are built from [a-z0-9-]")
}
