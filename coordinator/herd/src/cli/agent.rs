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
    /// Core: port 8883, or 443, where the agent asks for ALPN `x-amzn-mqtt-ca`).
    #[arg(long)]
    broker: String,
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
    /// The run to serve.
    #[arg(long)]
    run: RunId,
    /// This agent's id within the run.
    #[arg(long)]
    agent: AgentId,
}

/// Runs the agent until its run ends, or SIGTERM / Ctrl-C stops it gracefully.
pub fn run(args: AgentArgs) -> anyhow::Result<Code> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the agent's runtime")?;
    let config = AgentConfig {
        broker: args.broker,
        tls: TlsOptions {
            ca: args.mqtt_ca,
            cert: args.mqtt_cert,
            key: args.mqtt_key,
        },
        run: args.run,
        agent: args.agent,
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
