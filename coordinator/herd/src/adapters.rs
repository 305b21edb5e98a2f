//! The service's adapters, built from `herd.toml`: one per boundary, local or AWS.
//!
//! [`Adapters::start`] is where a [`ServiceConfig`] becomes the [`RunDeps`] the run actors use
//! (broker, bus, store, launcher), plus the sources and sinks around the manager (SQS intake,
//! SNS events). Each boundary is chosen on its own, so a local coordinator can keep results in
//! DynamoDB, or an AWS one can launch local agents for a test. The actors never see the choice.
//!
//! The AWS adapters exist only with the `aws` feature (on by default). Without it a config that
//! asks for one is refused at start with the feature named ([`AdaptersError::NeedsAws`]), and
//! nothing of the AWS SDK is compiled.

#[cfg(feature = "aws")]
use herd_coordinator::aws::{
    self,
    dynamo::DynamoStore,
    ecs::EcsLauncher,
    frames_sqs::FramesViaSqs,
    iot::{Inbound, IotDataBus},
};
use herd_coordinator::broker::auth::BrokerKeys;
use herd_coordinator::broker::{BrokerError, EmbeddedBroker};
use herd_coordinator::bus::AgentBus;
use herd_coordinator::config::{
    AwsSettings, BrokerAuth, CommandsVia, FramesVia, LauncherConfig, ServiceConfig, StoreConfig,
};
use herd_coordinator::launcher::local::LocalLauncher;
use herd_coordinator::launcher::Launcher;
use herd_coordinator::mqtt::{BrokerEndpoint, MqttError, MqttLink};
use herd_coordinator::run::RunDeps;
use herd_coordinator::store::embedded::EmbeddedStore;
use herd_coordinator::store::{Store, StoreError};
use herd_protocol::broker::BrokerAddr;
use herd_protocol::mqtt_ws::SigV4;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The AWS SDK's shared configuration; in a build without the `aws` feature there is none.
#[cfg(feature = "aws")]
pub type Sdk = aws_config::SdkConfig;
/// The AWS SDK's shared configuration; in a build without the `aws` feature there is none.
#[cfg(not(feature = "aws"))]
#[derive(Debug, Clone)]
pub enum Sdk {}

/// The SDK configuration `config` needs, if any boundary uses AWS.
pub async fn sdk_for(config: &ServiceConfig) -> Result<Option<Sdk>, AdaptersError> {
    if !config.uses_aws() {
        return Ok(None);
    }
    #[cfg(feature = "aws")]
    {
        Ok(Some(aws::sdk_config(&config.aws).await))
    }
    #[cfg(not(feature = "aws"))]
    {
        Err(AdaptersError::NeedsAws(config.aws_keys().join(", ")))
    }
}

/// Why the service's adapters could not be built.
#[derive(Debug, thiserror::Error)]
pub enum AdaptersError {
    /// The embedded broker.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// The coordinator's MQTT session.
    #[error(transparent)]
    Mqtt(#[from] MqttError),
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An MQTT adapter was asked for without a session (a bug: `needs_session` decides it).
    #[error("an MQTT adapter needs the coordinator's broker session")]
    NoSession,
    /// An AWS adapter was asked for without an SDK config (a bug: `uses_aws` decides it).
    #[error("an AWS adapter needs the [aws] settings")]
    NoSdk,
    /// A boundary this build cannot serve.
    #[error("{0} is not available in this build")]
    Unsupported(&'static str),
    /// The config asks for AWS adapters and this build has none.
    #[error("{0} need the AWS adapters, and this herd was built without the `aws` feature (build it with `--features aws`, the default)")]
    NeedsAws(String),
}

/// `[broker] auth = "sigv4"`: the region to sign for, from the IoT endpoint's name, else
/// `[aws] region`, else `AWS_REGION`.
fn sigv4_region(config: &ServiceConfig, url: &BrokerAddr) -> Result<Option<String>, AdaptersError> {
    if config.broker.auth != BrokerAuth::SigV4 {
        return Ok(None);
    }
    let fallback = config
        .aws
        .region
        .clone()
        .or_else(|| std::env::var("AWS_REGION").ok());
    SigV4::region_for(&url.host, fallback)
        .map(Some)
        .ok_or_else(|| {
            AdaptersError::Mqtt(MqttError::Transport(
                url.to_string(),
                "broker.auth = \"sigv4\" needs a region: the endpoint names none, so set [aws] region (or AWS_REGION)".into(),
            ))
        })
}

/// Where local things live and which program runs local agents.
#[derive(Debug, Clone)]
pub struct AdapterPaths {
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
    sdk: Option<&Sdk>,
    data_dir: &Path,
    owner: &str,
) -> Result<Arc<dyn Store>, AdaptersError> {
    Ok(match &config.store {
        StoreConfig::Embedded { data_dir: own } => {
            Arc::new(EmbeddedStore::open(own.as_deref().unwrap_or(data_dir))?)
        }
        #[cfg(feature = "aws")]
        StoreConfig::DynamoDb {
            table_prefix,
            create_tables,
        } => {
            let sdk = sdk.ok_or(AdaptersError::NoSdk)?;
            Arc::new(
                DynamoStore::connect(sdk, table_prefix, *create_tables)
                    .await?
                    .with_owner(owner),
            )
        }
        #[cfg(not(feature = "aws"))]
        StoreConfig::DynamoDb { .. } => {
            let _ = (sdk, owner);
            return Err(AdaptersError::NeedsAws("store.kind = \"dynamodb\"".into()));
        }
    })
}

/// The adapters of a running coordinator.
pub struct Adapters {
    embedded: Option<EmbeddedBroker>,
    keys: Option<Arc<BrokerKeys>>,
    broker: BrokerEndpoint,
    serves_command_topic: bool,
    deps: RunDeps,
    sdk: Option<Sdk>,
}

impl Adapters {
    /// Builds every adapter `config` asks for. Must be called inside an actix system.
    pub async fn start(config: &ServiceConfig, paths: AdapterPaths) -> Result<Self, AdaptersError> {
        let sdk = sdk_for(config).await?;
        let (embedded, broker, external_keys) = match &config.broker.url {
            Some(url) => {
                // A Mosquitto whose users and ACLs herd writes: per-run agent credentials there
                // too, from a master key kept in the data directory (runs resume with it).
                let keys = match &config.broker.mosquitto {
                    Some(files) => {
                        let keys = BrokerKeys::load_or_create(&paths.data_dir.join(KEY_FILE))
                            .map_err(BrokerError::Io)?
                            .with_mosquitto(files.clone());
                        keys.sync_at_start()
                            .map_err(|e| BrokerError::Io(std::io::Error::other(e.to_string())))?;
                        write_commander_file(&paths.data_dir, &url.to_string(), &keys)
                            .map_err(BrokerError::Io)?;
                        Some(Arc::new(keys))
                    }
                    None => None,
                };
                (
                    None,
                    BrokerEndpoint {
                        addr: url.clone(),
                        tls: config.broker.tls.clone(),
                        sigv4_region: sigv4_region(config, url)?,
                        credentials: keys.as_ref().map(|k| k.coordinator().clone()),
                    },
                    keys,
                )
            }
            None => {
                let keys = Arc::new(
                    BrokerKeys::generate()
                        .map_err(|e| BrokerError::Io(std::io::Error::other(e.to_string())))?,
                );
                let start = {
                    let keys = Arc::clone(&keys);
                    let log = config.broker.embedded_log;
                    move || EmbeddedBroker::start(keys, log)
                };
                let embedded = tokio::task::spawn_blocking(start)
                    .await
                    .map_err(|e| BrokerError::Io(std::io::Error::other(e.to_string())))??;
                let addr = BrokerAddr::parse(&embedded.url())
                    .map_err(|e| BrokerError::Io(std::io::Error::other(e.to_string())))?;
                write_commander_file(&paths.data_dir, &embedded.url(), &keys)
                    .map_err(BrokerError::Io)?;
                let mut endpoint = BrokerEndpoint::plain(addr);
                endpoint.credentials = Some(keys.coordinator().clone());
                (Some(embedded), endpoint, None)
            }
        };
        let keys = embedded
            .as_ref()
            .map(|e| Arc::clone(e.auth()))
            .or(external_keys);
        let owner = paths
            .owner
            .clone()
            .unwrap_or_else(|| format!("herd-coordinator-{}", std::process::id()));
        // An external broker outlives the coordinator: a durable session there keeps what agents
        // send while it restarts (runs resume); the embedded broker ends with the process. With
        // commands through the IoT data plane and frames from SQS the coordinator needs no
        // session at all (IoT Core would want a client certificate for one).
        let needs_session = config.broker.commands_via == CommandsVia::Mqtt
            || config.broker.frames_via == FramesVia::Mqtt;
        let link = match (needs_session, embedded.is_some()) {
            (false, _) => None,
            (true, true) => Some(MqttLink::connect(&broker, &owner).await?),
            (true, false) => Some(MqttLink::connect_durable(&broker, &owner).await?),
        };
        if let (Some(link), Some(keys)) = (&link, &keys) {
            link.authenticate_with(Arc::clone(keys));
        }
        let serves_command_topic = link.is_some();
        let store = open_store(config, sdk.as_ref(), &paths.data_dir, &owner).await?;
        let bus: Arc<dyn AgentBus> = match (&config.broker.commands_via, &config.broker.frames_via)
        {
            (CommandsVia::Mqtt, FramesVia::Mqtt) => Arc::new(link.ok_or(AdaptersError::NoSession)?),
            (CommandsVia::Mqtt, FramesVia::Sqs { .. }) => {
                return Err(AdaptersError::Unsupported(
                    "broker.frames_via = sqs with commands_via = mqtt (use iot-data)",
                ))
            }
            #[cfg(not(feature = "aws"))]
            (CommandsVia::IotData { .. }, _) => {
                return Err(AdaptersError::NeedsAws(
                    "broker.commands_via = \"iot-data\"".into(),
                ))
            }
            #[cfg(feature = "aws")]
            (CommandsVia::IotData { endpoint_url }, frames) => {
                let sdk = sdk.as_ref().ok_or(AdaptersError::NoSdk)?;
                let inbound = match frames {
                    FramesVia::Mqtt => Inbound::Mqtt(link.ok_or(AdaptersError::NoSession)?),
                    FramesVia::Sqs { queue_url } => {
                        Inbound::Sqs(FramesViaSqs::start(sdk, queue_url).with_keys(keys.clone()))
                    }
                };
                Arc::new(IotDataBus::new(sdk, endpoint_url.as_deref(), inbound))
            }
        };
        let launcher: Arc<dyn Launcher> = match &config.launcher {
            LauncherConfig::Local => {
                let launcher = LocalLauncher::new(
                    paths.agent_program.clone(),
                    Some(paths.data_dir.join("logs")),
                );
                let launcher = match &keys {
                    Some(keys) => launcher.with_agent_credentials(Arc::clone(keys)),
                    None => launcher,
                };
                // Agents on the coordinator's own broker need its CA (and certificate) too, and
                // sign their connections as it does.
                Arc::new(if config.broker.agent_url.is_none() {
                    launcher
                        .with_broker_tls(config.broker.tls.clone())
                        .with_sigv4(broker.sigv4_region.clone())
                } else {
                    launcher
                })
            }
            #[cfg(feature = "aws")]
            LauncherConfig::Ecs(settings) => {
                let sdk = sdk.as_ref().ok_or(AdaptersError::NoSdk)?;
                Arc::new(EcsLauncher::new(sdk, settings.clone()))
            }
            #[cfg(not(feature = "aws"))]
            LauncherConfig::Ecs(_) => {
                return Err(AdaptersError::NeedsAws("launcher.kind = \"ecs\"".into()))
            }
        };
        let agent_url = config
            .broker
            .agent_url
            .as_ref()
            .map_or_else(|| broker.addr.to_string(), BrokerAddr::to_string);
        let deps = RunDeps {
            launcher,
            bus,
            store,
            broker_url: agent_url,
            owner,
            allowed_targets: config.allowed_targets.clone(),
            outputs: config.outputs.clone(),
            fallback_dir: Some(paths.data_dir.join("summaries")),
        };
        Ok(Self {
            embedded,
            keys,
            broker,
            serves_command_topic,
            deps,
            sdk,
        })
    }

    /// The broker the coordinator itself uses (the embedded one, or `[broker] url`).
    pub fn broker(&self) -> &BrokerEndpoint {
        &self.broker
    }

    /// Whether the coordinator has its own broker session, and so serves `herd/commands` (not
    /// with commands through the IoT data plane and frames from SQS).
    pub fn serves_command_topic(&self) -> bool {
        self.serves_command_topic
    }

    /// The credentials the broker admits: the embedded one's, or those herd writes for an
    /// external Mosquitto (none with another external broker).
    pub fn broker_keys(&self) -> Option<Arc<BrokerKeys>> {
        self.keys.clone()
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
    pub fn sdk(&self) -> Option<&Sdk> {
        self.sdk.as_ref()
    }
}

/// File in the data directory with the master key of an external Mosquitto's credentials.
pub const KEY_FILE: &str = "broker.key";

/// File in the data directory with the embedded broker's address and the commander's
/// credential (for `herd/commands` and the live topics).
pub const COMMANDER_FILE: &str = "broker-credentials.json";

/// Writes [`COMMANDER_FILE`], readable by its owner only: the password must not be in a log.
fn write_commander_file(dir: &Path, url: &str, keys: &BrokerKeys) -> std::io::Result<()> {
    let c = keys.commander();
    let text = serde_json::json!({
        "url": url,
        "username": c.username,
        "password": c.password,
    })
    .to_string();
    std::fs::create_dir_all(dir)?;
    let path = dir.join(COMMANDER_FILE);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(&path)?, text.as_bytes())
}

/// The `[aws]` settings as the SDK will see them (for the startup line).
pub fn describe_aws(settings: &AwsSettings) -> String {
    format!(
        "region {}, endpoint {}",
        settings.region.as_deref().unwrap_or("from environment"),
        settings.endpoint_url.as_deref().unwrap_or("AWS")
    )
}
