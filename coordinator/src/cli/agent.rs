//! `herd agent`: one agent process.

use super::exit::Code;
use anyhow::Context as _;
use herd_agent::AgentConfig;
use herd_protocol::{AgentId, RunId};

/// Arguments of `herd agent`.
#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    /// The MQTT broker, `mqtt://HOST:PORT`.
    #[arg(long)]
    broker: String,
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
