//! `herd.toml`: the service's configuration, choosing an adapter per boundary.
//!
//! Like the plan, the file is read in two passes: [`raw`] structs that refuse unknown fields
//! (a misspelt key is an error, not a silently ignored setting), then [`ServiceConfig::from_toml`]
//! validates them into typed settings and reports *every* problem at once, each with its key
//! (`launcher.subnets: required when launcher.kind = "ecs"`). Anything absent means the local
//! default of that boundary, so an empty file is the embedded mode of `herd up`.

mod broker;
mod errors;
mod launcher;
mod raw;
#[cfg(test)]
mod tests;

pub use broker::{BrokerAuth, BrokerConfig, CommandsVia, FramesVia};
use errors::{url_with_scheme, Errors};
pub use errors::{ConfigError, ConfigErrors};
pub use launcher::{EcsRegion, EcsSettings, LauncherConfig};
use raw::RawConfig;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The `[aws]` section of `herd.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsSettings {
    /// The region (otherwise the SDK's usual chain: `AWS_REGION`, profile, …).
    pub region: Option<String>,
    /// An endpoint every client uses instead of AWS's (an emulator); `AWS_ENDPOINT_URL` works too.
    pub endpoint_url: Option<String>,
}

/// A validated `herd.toml`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceConfig {
    /// `[aws]`: region and endpoint override shared by every AWS client.
    pub aws: AwsSettings,
    /// `[api] listen`: where the HTTP API listens (the `--listen` flag wins).
    pub listen: Option<SocketAddr>,
    /// `[api] max_agents`: agents all active runs together may use (the flag wins).
    pub max_agents: Option<u32>,
    /// `[api] writes_per_second`: each credential's writes refilled per second.
    pub writes_per_second: Option<f64>,
    /// `[api] write_burst`: each credential's writes allowed back to back.
    pub write_burst: Option<u32>,
    /// `[api] allowed_targets`: host globs and CIDRs runs may reach; `None`: any.
    pub allowed_targets: Option<Vec<String>>,
    /// `[commands]`: the SQS queue commands arrive on, if any.
    pub commands: Option<SqsCommands>,
    /// `[events]`: the SNS topic events go to, if any (they are always logged).
    pub events: Option<SnsSettings>,
    /// `[store]`.
    pub store: StoreConfig,
    /// `[store] grace_s`: how long a run's last writes are retried while the store fails
    /// (default 30 s; [`crate::run::Timeouts::store_grace`]).
    pub store_grace: Duration,
    /// `[broker]`.
    pub broker: BrokerConfig,
    /// `[launcher]`.
    pub launcher: LauncherConfig,
    /// `[[outputs]]`: outputs every run pushes to, besides its plan's (`outputs:`).
    pub outputs: Vec<herd_protocol::plan::Output>,
}

impl Default for ServiceConfig {
    /// The embedded mode: embedded broker and store, local agents, no AWS.
    fn default() -> Self {
        Self {
            aws: AwsSettings::default(),
            listen: None,
            max_agents: None,
            writes_per_second: None,
            write_burst: None,
            allowed_targets: None,
            commands: None,
            events: None,
            store: StoreConfig::Embedded { data_dir: None },
            store_grace: crate::run::Timeouts::default().store_grace,
            broker: BrokerConfig::default(),
            launcher: LauncherConfig::Local,
            outputs: Vec::new(),
        }
    }
}

/// Commands from an SQS queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsCommands {
    /// The queue URL.
    pub queue_url: String,
    /// Long-polling wait per receive (1–20 s; default 20).
    pub wait_time: Duration,
    /// Visibility timeout of received messages, extended while a command is in progress
    /// (default 30 s).
    pub visibility_timeout: Duration,
}

/// How events are written to SNS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventFormat {
    /// herd's own JSON event messages.
    Json,
    /// AWS Chatbot custom notifications, readable in a chat channel.
    Chatbot,
}

/// Events to an SNS topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnsSettings {
    /// The topic ARN.
    pub topic_arn: String,
    /// The body format.
    pub format: EventFormat,
    /// Publish `run.progress` at most this often (`None`: never).
    pub progress_interval: Option<Duration>,
}

/// Where runs and tests are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// SQLite under a data directory (`None`: the `--data-dir` flag's).
    Embedded {
        /// Overrides `--data-dir`.
        data_dir: Option<PathBuf>,
    },
    /// DynamoDB tables named `<prefix>…`.
    DynamoDb {
        /// Prefix of every table name.
        table_prefix: String,
        /// Create missing tables at start (default true).
        create_tables: bool,
    },
}

impl ServiceConfig {
    /// Parses and validates `herd.toml`'s text.
    pub fn from_toml(text: &str) -> Result<Self, ConfigErrors> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                key: "herd.toml".to_owned(),
                problem: e.to_string().trim_end().replace('\n', " "),
            }])
        })?;
        let mut errors = Errors(Vec::new());
        if let Some(v) = raw.version {
            if v != 1 {
                errors.push(
                    "version",
                    format!("{v} is not supported (this herd reads 1)"),
                );
            }
        }
        if let Some(url) = &raw.aws.endpoint_url {
            url_with_scheme(&mut errors, "aws.endpoint_url", url, &["http", "https"]);
        }
        let aws = AwsSettings {
            region: raw.aws.region,
            endpoint_url: raw.aws.endpoint_url,
        };
        let listen = raw.api.listen.and_then(|l| match l.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                errors.push(
                    "api.listen",
                    format!("{l:?} is not an address like 127.0.0.1:8787"),
                );
                None
            }
        });
        let max_agents = raw.api.max_agents.and_then(|n| match u32::try_from(n) {
            Ok(n) if n > 0 => Some(n),
            _ => {
                errors.push("api.max_agents", "must be > 0");
                None
            }
        });
        let writes_per_second = raw.api.writes_per_second.and_then(|r| {
            if r.is_finite() && r > 0.0 {
                Some(r)
            } else {
                errors.push("api.writes_per_second", "must be a number > 0");
                None
            }
        });
        let write_burst = raw.api.write_burst.and_then(|n| match u32::try_from(n) {
            Ok(n) if n > 0 => Some(n),
            _ => {
                errors.push("api.write_burst", "must be a whole number > 0");
                None
            }
        });
        if let Some(list) = &raw.api.allowed_targets {
            if let Err((i, e)) = herd_protocol::allow::AllowList::parse(list) {
                errors.push(&format!("api.allowed_targets[{i}]"), e);
            }
        }
        let allowed_targets = raw.api.allowed_targets;
        let outputs = raw.outputs.map_or_else(Vec::new, |v| {
            let tree = serde_json::to_value(&v).unwrap_or_default();
            herd_protocol::plan::parse_outputs(&tree, "outputs").unwrap_or_else(|problems| {
                for p in problems {
                    errors.push(&p.path, p.message);
                }
                Vec::new()
            })
        });
        let commands = raw.commands.map(|c| {
            let queue_url =
                errors.required("commands.sqs_queue_url", c.sqs_queue_url, "in [commands]");
            if !queue_url.is_empty() {
                url_with_scheme(
                    &mut errors,
                    "commands.sqs_queue_url",
                    &queue_url,
                    &["http", "https"],
                );
            }
            SqsCommands {
                queue_url,
                wait_time: Duration::from_secs(errors.seconds(
                    "commands.wait_time_s",
                    c.wait_time_s,
                    (1, 20),
                    20,
                )),
                visibility_timeout: Duration::from_secs(errors.seconds(
                    "commands.visibility_timeout_s",
                    c.visibility_timeout_s,
                    (5, 43_200),
                    30,
                )),
            }
        });
        let events = raw.events.map(|e| {
            let topic_arn = errors.required("events.sns_topic_arn", e.sns_topic_arn, "in [events]");
            if !topic_arn.is_empty() && !topic_arn.starts_with("arn:") {
                errors.push(
                    "events.sns_topic_arn",
                    format!("{topic_arn:?} is not an ARN"),
                );
            }
            let format = match e.format.as_deref() {
                None | Some("json") => EventFormat::Json,
                Some("chatbot") => EventFormat::Chatbot,
                Some(other) => {
                    errors.push("events.format", format!("{other:?} is not json or chatbot"));
                    EventFormat::Json
                }
            };
            let progress_interval = e.progress_interval_s.and_then(|s| {
                let s = errors.seconds("events.progress_interval_s", Some(s), (1, 3600), 0);
                (s > 0).then(|| Duration::from_secs(s))
            });
            SnsSettings {
                topic_arn,
                format,
                progress_interval,
            }
        });
        let store_grace = Duration::from_secs(errors.seconds(
            "store.grace_s",
            raw.store.grace_s,
            (1, 3600),
            crate::run::Timeouts::default().store_grace.as_secs(),
        ));
        let store = store(&mut errors, raw.store);
        let broker = broker::broker(&mut errors, raw.broker);
        let launcher = launcher::launcher(&mut errors, raw.launcher);
        if errors.0.is_empty() {
            Ok(Self {
                aws,
                listen,
                max_agents,
                writes_per_second,
                write_burst,
                allowed_targets,
                commands,
                events,
                store,
                store_grace,
                broker,
                launcher,
                outputs,
            })
        } else {
            Err(ConfigErrors(errors.0))
        }
    }

    /// Whether any boundary uses AWS (and so needs an SDK config).
    pub fn uses_aws(&self) -> bool {
        !self.aws_keys().is_empty()
    }

    /// The settings that ask for an AWS adapter, as the file spells them.
    pub fn aws_keys(&self) -> Vec<&'static str> {
        [
            ("[commands] sqs_queue_url", self.commands.is_some()),
            ("[events] sns_topic_arn", self.events.is_some()),
            (
                "store.kind = \"dynamodb\"",
                matches!(self.store, StoreConfig::DynamoDb { .. }),
            ),
            (
                "broker.commands_via = \"iot-data\"",
                matches!(self.broker.commands_via, CommandsVia::IotData { .. }),
            ),
            (
                "broker.frames_via = \"sqs\"",
                matches!(self.broker.frames_via, FramesVia::Sqs { .. }),
            ),
            (
                "launcher.kind = \"ecs\"",
                matches!(self.launcher, LauncherConfig::Ecs(_)),
            ),
        ]
        .into_iter()
        .filter_map(|(key, used)| used.then_some(key))
        .collect()
    }
}

fn store(errors: &mut Errors, raw: raw::RawStore) -> StoreConfig {
    match raw.kind.as_deref() {
        None | Some("embedded") => {
            if raw.table_prefix.is_some() || raw.create_tables.is_some() {
                errors.push(
                    "store.kind",
                    "table_prefix and create_tables need kind = \"dynamodb\"",
                );
            }
            StoreConfig::Embedded {
                data_dir: raw.data_dir.map(PathBuf::from),
            }
        }
        Some("dynamodb") => {
            if raw.data_dir.is_some() {
                errors.push("store.data_dir", "only for kind = \"embedded\"");
            }
            let table_prefix = raw.table_prefix.unwrap_or_else(|| "herd-".to_owned());
            if !table_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                errors.push(
                    "store.table_prefix",
                    format!("{table_prefix:?} may only hold letters, digits, '-', '_' and '.'"),
                );
            }
            StoreConfig::DynamoDb {
                table_prefix,
                create_tables: raw.create_tables.unwrap_or(true),
            }
        }
        Some(other) => {
            errors.push(
                "store.kind",
                format!("{other:?} is not embedded or dynamodb"),
            );
            StoreConfig::Embedded { data_dir: None }
        }
    }
}
