//! `herd agent`: one agent process.

use super::exit::Code;
use anyhow::Context as _;
use herd_agent::AgentConfig;
use herd_protocol::tls::{PemSource, TlsOptions};
use herd_protocol::{AgentId, RunId};

/// Arguments of `herd agent`.
#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    /// The MQTT broker, `mqtt://HOST:PORT`, or `mqtts://HOST:PORT` for MQTT over TLS (AWS IoT
    /// Core: port 8883, or 443, where the agent asks for ALPN `x-amzn-mqtt-ca`), or MQTT over
    /// WebSocket: `ws://HOST:PORT/PATH`, `wss://ENDPOINT/mqtt`.
    #[arg(long)]
    broker: String,
    /// How the agent proves who it is: `none`, `certificate` (`--mqtt-cert`/`--mqtt-key`), or
    /// `sigv4` (IoT Core over `wss://`: each connection presigned with the credentials of the
    /// environment or the ECS task role).
    #[arg(long, env = "HERD_MQTT_AUTH", value_enum, default_value_t = MqttAuth::None)]
    mqtt_auth: MqttAuth,
    /// The region for `--mqtt-auth sigv4` when the broker's host does not name one
    /// (`…iot.REGION.amazonaws.com` does).
    #[arg(long, env = "AWS_REGION")]
    aws_region: Option<String>,
    /// For `mqtts://`: CA certificate(s) the broker must chain to (default: the built-in Mozilla
    /// roots, which include Amazon's). A PEM file, or the PEM text itself.
    #[arg(long, env = "HERD_MQTT_CA", value_name = "PEM_FILE|PEM")]
    mqtt_ca: Option<PemSource>,
    /// For `mqtts://`: this agent's X.509 certificate (IoT Core authenticates agents by it).
    /// A PEM file, or the PEM text itself (an ECS secret in an environment variable).
    #[arg(
        long,
        env = "HERD_MQTT_CERT",
        value_name = "PEM_FILE|PEM",
        requires = "mqtt_key"
    )]
    mqtt_cert: Option<PemSource>,
    /// For `mqtts://`: the private key of `--mqtt-cert`. A PEM file, or the PEM text itself.
    #[arg(
        long,
        env = "HERD_MQTT_KEY",
        value_name = "PEM_FILE|PEM",
        requires = "mqtt_cert",
        hide_env_values = true
    )]
    mqtt_key: Option<PemSource>,
    /// The broker user name (the coordinator gives each agent its own, per run).
    #[arg(long, env = "HERD_MQTT_USERNAME", requires = "mqtt_password")]
    mqtt_username: Option<String>,
    /// The broker password of `--mqtt-username`; every message is signed with it, so the
    /// coordinator knows who sent it. Give it through the environment: the command line is
    /// readable by any local user.
    #[arg(
        long,
        env = "HERD_MQTT_PASSWORD",
        requires = "mqtt_username",
        hide_env_values = true
    )]
    mqtt_password: Option<String>,
    /// The run's command key (the coordinator gives it to the run's agents with their
    /// credential): commands not sealed with it are refused. Give it through the environment.
    #[arg(long, env = "HERD_RUN_KEY", hide_env_values = true)]
    run_key: Option<String>,
    /// How long to wait for the start command once ready before giving up (`30s`, `10m`): an
    /// agent whose coordinator died while launching does not run for ever.
    #[arg(long, env = "HERD_START_WAIT", value_parser = herd_protocol::duration::parse, default_value = "10m")]
    start_wait: std::time::Duration,
    /// The run to serve.
    #[arg(long)]
    run: RunId,
    /// This agent's id within the run.
    #[arg(long)]
    agent: AgentId,
}

/// `--mqtt-auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MqttAuth {
    /// No client authentication (or a certificate, when `--mqtt-cert` is given).
    None,
    /// An X.509 client certificate (`--mqtt-cert`, `--mqtt-key`).
    Certificate,
    /// SigV4-presigned WebSocket URLs (AWS IoT Core with IAM credentials).
    Sigv4,
}

/// Runs the agent until its run ends, or SIGTERM / Ctrl-C stops it gracefully.
pub fn run(args: AgentArgs) -> anyhow::Result<Code> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the agent's runtime")?;
    if args.mqtt_auth == MqttAuth::Certificate && args.mqtt_cert.is_none() {
        anyhow::bail!("--mqtt-auth certificate needs --mqtt-cert and --mqtt-key");
    }
    let sigv4_region = match args.mqtt_auth {
        MqttAuth::Sigv4 => {
            let host = herd_protocol::broker::BrokerAddr::parse(&args.broker)?.host;
            Some(
                herd_protocol::mqtt_ws::SigV4::region_for(&host, args.aws_region).with_context(
                    || format!("--mqtt-auth sigv4: {host} names no region; give --aws-region (or AWS_REGION)"),
                )?,
            )
        }
        _ => None,
    };
    let config = AgentConfig {
        broker: args.broker,
        sigv4_region,
        tls: TlsOptions {
            ca: args.mqtt_ca,
            cert: args.mqtt_cert,
            key: args.mqtt_key,
        },
        run: args.run,
        agent: args.agent,
        credentials: args
            .mqtt_username
            .zip(args.mqtt_password)
            .map(|(username, password)| herd_protocol::msgauth::Credential { username, password }),
        command_key: args.run_key.map(herd_protocol::cmdseal::RunKey::new),
        start_wait: args.start_wait,
    };
    let report = runtime.block_on(async move {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(herd_agent::run_agent(config, shutdown_signal()))
            .await
    })?;
    tracing::info!(
        requests = report.requests,
        frames = report.frames,
        "agent done"
    );
    Ok(Code::Passed)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
