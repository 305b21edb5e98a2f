//! The service's adapters, built from `herd.toml`: one per boundary, local or AWS.
//!
//! [`ServiceRuntime::start`] is where a [`ServiceConfig`] becomes the [`RunDeps`] the run actors
//! use (broker, bus, store, launcher), plus the sources and sinks around the manager (SQS intake,
//! SNS events). Each boundary is chosen on its own, so a local coordinator can keep results in
//! DynamoDB, or an AWS one can launch local agents for a test. The actors never see the choice.

use crate::aws::dynamo::DynamoStore;
use crate::aws::ecs::EcsLauncher;
use crate::aws::frames_sqs::FramesViaSqs;
use crate::aws::iot::{Inbound, IotDataBus};
use crate::aws::{self, AwsSettings};
use crate::broker::{BrokerError, EmbeddedBroker};
use crate::bus::AgentBus;
use crate::config::{CommandsVia, FramesVia, LauncherConfig, ServiceConfig, StoreConfig};
use crate::launcher::local::LocalLauncher;
use crate::launcher::Launcher;
use crate::mqtt::{MqttError, MqttLink};
use crate::run::RunDeps;
use crate::store::embedded::EmbeddedStore;
use crate::store::{Store, StoreError};
use aws_config::SdkConfig;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why the service's adapters could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The embedded broker.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// The coordinator's MQTT session.
    #[error(transparent)]
    Mqtt(#[from] MqttError),
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An AWS adapter was asked for without an SDK config (a bug: `uses_aws` decides it).
    #[error("an AWS adapter needs the [aws] settings")]
    NoSdk,
    /// A boundary this build cannot serve.
    #[error("{0} is not available in this build")]
    Unsupported(&'static str),
}

/// Where local things live and which program runs local agents.
#[derive(Debug, Clone)]
pub struct RuntimePaths {
    /// Data directory: the embedded store and agents' logs (`[store] data_dir` wins for the store).
    pub data_dir: PathBuf,
    /// The program launched as `PROGRAM agent …` (normally the running `herd`).
    pub agent_program: PathBuf,
    /// This coordinator's stable identity ([`RunDeps::owner`], and its MQTT client id): the same
    /// at every start, so a restarted coordinator resumes its runs (`herd up`:
    /// [`crate::local::coordinator_id`]). `None` for a one-shot coordinator (`herd run`).
    pub owner: Option<String>,
}

/// The store `config` names: SQLite under `data_dir` (or `[store] data_dir`), or DynamoDB through
/// `sdk`, acting as `owner` where runs are claimed. `herd up` and `herd token create` both open
/// their store here, so a token is created where the service will look for it.
pub async fn open_store(
    config: &ServiceConfig,
    sdk: Option<&SdkConfig>,
    data_dir: &Path,
    owner: &str,
) -> Result<Arc<dyn Store>, RuntimeError> {
    Ok(match &config.store {
        StoreConfig::Embedded { data_dir: own } => {
            Arc::new(EmbeddedStore::open(own.as_deref().unwrap_or(data_dir))?)
        }
        StoreConfig::DynamoDb {
            table_prefix,
            create_tables,
        } => {
            let sdk = sdk.ok_or(RuntimeError::NoSdk)?;
            Arc::new(
                DynamoStore::connect(sdk, table_prefix, *create_tables)
                    .await?
                    .with_owner(owner),
            )
        }
    })
}

/// The adapters of a running coordinator.
pub struct ServiceRuntime {
    embedded: Option<EmbeddedBroker>,
    broker_url: String,
    deps: RunDeps,
    sdk: Option<SdkConfig>,
}

impl ServiceRuntime {
    /// Builds every adapter `config` asks for. Must be called inside an actix system.
    pub async fn start(config: &ServiceConfig, paths: RuntimePaths) -> Result<Self, RuntimeError> {
        let sdk = if config.uses_aws() {
            Some(aws::sdk_config(&config.aws).await)
        } else {
            None
        };
        let (embedded, broker_url) = match &config.broker.url {
            Some(url) => (None, url.clone()),
            None => {
                let broker = tokio::task::spawn_blocking(EmbeddedBroker::start)
                    .await
                    .map_err(|e| BrokerError::Io(std::io::Error::other(e.to_string())))??;
                let url = broker.url();
                (Some(broker), url)
            }
        };
        let owner = paths
            .owner
            .clone()
            .unwrap_or_else(|| format!("herd-coordinator-{}", std::process::id()));
        // An external broker outlives the coordinator: a durable session there keeps what agents
        // send while it restarts (runs resume); the embedded broker ends with the process.
        let link = if embedded.is_some() {
            MqttLink::connect(&broker_url, &owner).await?
        } else {
            MqttLink::connect_durable(&broker_url, &owner).await?
        };
        let store = open_store(config, sdk.as_ref(), &paths.data_dir, &owner).await?;
        let bus: Arc<dyn AgentBus> = match (&config.broker.commands_via, &config.broker.frames_via)
        {
            (CommandsVia::Mqtt, FramesVia::Mqtt) => Arc::new(link),
            (CommandsVia::Mqtt, FramesVia::Sqs { .. }) => {
                return Err(RuntimeError::Unsupported(
                    "broker.frames_via = sqs with commands_via = mqtt (use iot-data)",
                ))
            }
            (CommandsVia::IotData { endpoint_url }, frames) => {
                let sdk = sdk.as_ref().ok_or(RuntimeError::NoSdk)?;
                let inbound = match frames {
                    FramesVia::Mqtt => Inbound::Mqtt(link),
                    FramesVia::Sqs { queue_url } => {
                        Inbound::Sqs(FramesViaSqs::start(sdk, queue_url))
                    }
                };
                Arc::new(IotDataBus::new(sdk, endpoint_url.as_deref(), inbound))
            }
        };
        let launcher: Arc<dyn Launcher> = match &config.launcher {
            LauncherConfig::Local => Arc::new(LocalLauncher::new(
                paths.agent_program.clone(),
                Some(paths.data_dir.join("logs")),
            )),
            LauncherConfig::Ecs(settings) => {
                let sdk = sdk.as_ref().ok_or(RuntimeError::NoSdk)?;
                Arc::new(EcsLauncher::new(sdk, settings.clone()))
            }
        };
        let agent_url = config
            .broker
            .agent_url
            .clone()
            .unwrap_or_else(|| broker_url.clone());
        let deps = RunDeps {
            launcher,
            bus,
            store,
            broker_url: agent_url,
            owner,
        };
        Ok(Self {
            embedded,
            broker_url,
            deps,
            sdk,
        })
    }

    /// The broker the coordinator itself uses (the embedded one's, or `[broker] url`).
    pub fn broker_url(&self) -> &str {
        &self.broker_url
    }

    /// Whether the broker is the embedded one (it ends with this process).
    pub fn embedded_broker(&self) -> bool {
        self.embedded.is_some()
    }

    /// The adapters runs are started with.
    pub fn deps(&self) -> RunDeps {
        self.deps.clone()
    }

    /// The AWS SDK config, when any boundary uses AWS.
    pub fn sdk(&self) -> Option<&SdkConfig> {
        self.sdk.as_ref()
    }
}

/// The `[aws]` settings as the SDK will see them (for the startup line).
pub fn describe_aws(settings: &AwsSettings) -> String {
    format!(
        "region {}, endpoint {}",
        settings.region.as_deref().unwrap_or("from environment"),
        settings.endpoint_url.as_deref().unwrap_or("AWS")
    )
}
