//! Where `herd.toml` comes from, and `herd config check`.
//!
//! `herd up`, `herd token create` and `herd config check` read the file from `--config FILE`,
//! else from the environment: `HERD_CONFIG` (a file's path), else `HERD_CONFIG_TOML` (the TOML
//! text itself: how the hub stack hands the coordinator its configuration, since a `FROM
//! scratch` image has no shell to write a file). Without any of them every boundary is local.
//! Every problem is printed with the source and the key (`herd: HERD_CONFIG_TOML: broker.auth:
//! …`) and the command exits 2.

use super::exit::Code;
use anyhow::Context as _;
use herd_coordinator::config::{
    CommandsVia, FramesVia, LauncherConfig, ServiceConfig, StoreConfig,
};
use std::fmt;
use std::path::{Path, PathBuf};

/// The variable holding a `herd.toml` path.
pub const PATH_ENV: &str = "HERD_CONFIG";
/// The variable holding `herd.toml`'s text.
pub const TEXT_ENV: &str = "HERD_CONFIG_TOML";

/// Where the configuration was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `--config FILE`.
    Flag(PathBuf),
    /// `HERD_CONFIG=FILE`.
    PathEnv(PathBuf),
    /// `HERD_CONFIG_TOML`.
    TextEnv,
    /// Rendered by `herd init aws` from this stack's outputs.
    Stack(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flag(path) => write!(f, "{}", path.display()),
            Self::PathEnv(path) => write!(f, "{PATH_ENV}={}", path.display()),
            Self::TextEnv => f.write_str(TEXT_ENV),
            Self::Stack(stack) => write!(f, "herd.toml rendered from stack {stack}"),
        }
    }
}

/// The source `herd` reads: the flag, else `HERD_CONFIG`, else `HERD_CONFIG_TOML` (empty
/// variables count as unset); `None`: no configuration (all local).
pub fn source(flag: Option<&Path>) -> Option<Source> {
    let set = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(path) = flag {
        Some(Source::Flag(path.to_owned()))
    } else if let Some(path) = set(PATH_ENV) {
        Some(Source::PathEnv(PathBuf::from(path)))
    } else {
        set(TEXT_ENV).map(|_| Source::TextEnv)
    }
}

/// Reads and validates the configuration of `source`: every problem is printed with the
/// source and its key, and gives [`Code::Invalid`]. The default (all local) without a source.
pub fn load(source: Option<&Source>) -> anyhow::Result<Result<ServiceConfig, Code>> {
    let Some(source) = source else {
        return Ok(Ok(ServiceConfig::default()));
    };
    let text = match source {
        Source::Flag(path) | Source::PathEnv(path) => std::fs::read_to_string(path)
            .with_context(|| format!("{source}: cannot read the configuration file"))?,
        Source::TextEnv => {
            std::env::var(TEXT_ENV).with_context(|| format!("{TEXT_ENV} is not valid UTF-8"))?
        }
        Source::Stack(_) => anyhow::bail!("{source}: nothing to read (a bug)"),
    };
    Ok(parse(source, &text))
}

/// Validates `text` read from `source`, printing every problem (see [`load`]).
pub fn parse(source: &Source, text: &str) -> Result<ServiceConfig, Code> {
    let config = match ServiceConfig::from_toml(text) {
        Ok(config) => config,
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("herd: {source}: {}: {}", e.key, e.problem);
            }
            return Err(Code::Invalid);
        }
    };
    if !cfg!(feature = "aws") && config.uses_aws() {
        eprintln!(
            "herd: {source}: {} need the AWS adapters, and this herd was built without the `aws` feature (rebuild with `--features aws`, the default)",
            config.aws_keys().join(", ")
        );
        return Err(Code::Invalid);
    }
    Ok(config)
}

/// Arguments of `herd config check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The file [default: what `herd up` would read: `HERD_CONFIG`, else `HERD_CONFIG_TOML`].
    file: Option<PathBuf>,
}

/// `herd config check`: exit 0 and one line on what the file chooses, or 2 and every problem.
pub fn check(args: CheckArgs) -> anyhow::Result<Code> {
    let Some(source) = source(args.file.as_deref()) else {
        eprintln!("herd config check: no file given, and neither {PATH_ENV} nor {TEXT_ENV} is set");
        return Ok(Code::Invalid);
    };
    let config = match load(Some(&source))? {
        Ok(config) => config,
        Err(code) => return Ok(code),
    };
    println!("{source}: valid ({})", describe(&config));
    Ok(Code::Passed)
}

/// One line on the adapters a configuration chooses.
fn describe(c: &ServiceConfig) -> String {
    let store = match &c.store {
        StoreConfig::Embedded { .. } => "embedded store".to_owned(),
        StoreConfig::DynamoDb { table_prefix, .. } => format!("DynamoDB store {table_prefix}*"),
    };
    let broker = match &c.broker.url {
        None => "embedded broker".to_owned(),
        Some(url) => format!("broker {url} (auth {})", c.broker.auth.as_str()),
    };
    let commands = match c.broker.commands_via {
        CommandsVia::Mqtt => "commands over MQTT",
        CommandsVia::IotData { .. } => "commands through the IoT data plane",
    };
    let frames = match c.broker.frames_via {
        FramesVia::Mqtt => "frames over MQTT",
        FramesVia::Sqs { .. } => "frames from SQS",
    };
    let launcher = match &c.launcher {
        LauncherConfig::Local => "local agents".to_owned(),
        LauncherConfig::Ecs(ecs) => format!("agents on ECS cluster {}", ecs.cluster),
    };
    let intake = if c.commands.is_some() {
        ", SQS commands"
    } else {
        ""
    };
    let events = if c.events.is_some() {
        ", SNS events"
    } else {
        ""
    };
    format!("{store}, {broker}, {commands}, {frames}, {launcher}{intake}{events}")
}
