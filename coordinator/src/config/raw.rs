//! `herd.toml` as written: serde structs that refuse unknown fields, so a typo is an error rather
//! than a silently ignored setting. [`super::ServiceConfig::from_toml`] validates them.

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub version: Option<i64>,
    #[serde(default)]
    pub aws: RawAws,
    #[serde(default)]
    pub api: RawApi,
    pub commands: Option<RawCommands>,
    pub events: Option<RawEvents>,
    #[serde(default)]
    pub store: RawStore,
    #[serde(default)]
    pub broker: RawBroker,
    #[serde(default)]
    pub launcher: RawLauncher,
    /// `[[outputs]]`: validated by the plan's own `outputs` parser.
    pub outputs: Option<toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAws {
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApi {
    pub listen: Option<String>,
    pub max_agents: Option<i64>,
    pub writes_per_second: Option<f64>,
    pub write_burst: Option<i64>,
    pub allowed_targets: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCommands {
    pub sqs_queue_url: Option<String>,
    pub wait_time_s: Option<i64>,
    pub visibility_timeout_s: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEvents {
    pub sns_topic_arn: Option<String>,
    pub format: Option<String>,
    pub progress_interval_s: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStore {
    pub kind: Option<String>,
    pub data_dir: Option<String>,
    pub table_prefix: Option<String>,
    pub create_tables: Option<bool>,
    pub grace_s: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBroker {
    pub url: Option<String>,
    pub auth: Option<String>,
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub agent_url: Option<String>,
    pub commands_via: Option<String>,
    pub iot_endpoint_url: Option<String>,
    pub frames_via: Option<String>,
    pub frames_queue_url: Option<String>,
    pub mosquitto_password_file: Option<String>,
    pub mosquitto_acl_file: Option<String>,
    pub mosquitto_pid_file: Option<String>,
    pub embedded_log_mib: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLauncher {
    pub kind: Option<String>,
    pub cluster: Option<String>,
    pub task_definition: Option<String>,
    pub container_name: Option<String>,
    pub subnets: Option<Vec<String>>,
    pub security_groups: Option<Vec<String>>,
    pub assign_public_ip: Option<bool>,
    pub regions: Option<Vec<RawRegion>>,
}

/// One `[[launcher.regions]]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRegion {
    pub region: Option<String>,
    pub cluster: Option<String>,
    pub task_definition: Option<String>,
    pub container_name: Option<String>,
    pub subnets: Option<Vec<String>>,
    pub security_groups: Option<Vec<String>>,
    pub assign_public_ip: Option<bool>,
}
