//! `herd up`: the coordinator as a long-running service, with the HTTP API, the scheduler, and a
//! graceful shutdown on SIGTERM or Ctrl-C (what ECS sends).
//!
//! Without `--config` every boundary is local (embedded broker, store and launcher). With
//! `--config herd.toml`, each boundary is chosen there ([`herd_coordinator::config`]) and built by
//! [`ServiceRuntime`]; flags given on the command line win over the file.
//!
//! Commands come from the API, the scheduler and the broker's `herd/commands` topic
//! ([`herd_coordinator::intake`]), all into the one manager.
//!
//! The file comes from `--config`, `HERD_CONFIG` or `HERD_CONFIG_TOML` ([`super::config`]).
//!
//! API tokens for it are made and revoked by `herd token` ([`super::token`]), in the same store.
//! Every write through the API is audited (store and events) and limited per credential
//! (`[api] writes_per_second`, `[api] write_burst`: [`api::limiter`]).

use super::config;
use super::exit::Code;
use anyhow::Context as _;
use herd::adapters::{AdapterPaths, Adapters};
use herd::local::coordinator_id;
use herd_coordinator::api::jwks::JwksClient;
use herd_coordinator::api::{self, auth};
#[cfg(feature = "aws")]
use herd_coordinator::aws::{sns::SnsEvents, sqs::SqsIntake};
#[cfg(feature = "aws")]
use herd_coordinator::events::Fanout;
use herd_coordinator::events::{EventSink, LocalEvents};
use herd_coordinator::manager::{Manager, ManagerConfig};
use herd_coordinator::run::Timeouts;
use herd_coordinator::scheduler;
use herd_coordinator::store::Store;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How long a shutdown waits for active runs: they may finish until the last
/// [`CANCEL_MARGIN`](herd_coordinator::manager::CANCEL_MARGIN) of it, then are cancelled.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(40);

/// Arguments of `herd up`.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// The service's configuration file (`herd.toml`): one adapter per boundary. Without it:
    /// the file named by `HERD_CONFIG`, else the TOML text in `HERD_CONFIG_TOML`, else all local.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where the HTTP API listens [default: 127.0.0.1:8787, or `[api] listen`].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Where the store and agent logs live.
    #[arg(long, env = "HERD_DATA_DIR", default_value = ".herd")]
    data_dir: PathBuf,
    /// Agents all active runs together may use [default: 32, or `[api] max_agents`].
    #[arg(long)]
    max_agents: Option<u32>,
    /// Accept JWTs signed by a key of this JWKS (https or http URL).
    #[arg(long, requires_all = ["jwt_issuer", "jwt_audience"])]
    jwks_url: Option<String>,
    /// Also trust this CA (PEM file) when fetching the JWKS over https.
    #[arg(long, requires = "jwks_url")]
    jwks_ca: Option<PathBuf>,
    /// The `iss` JWTs must carry.
    #[arg(long)]
    jwt_issuer: Option<String>,
    /// The `aud` JWTs must carry.
    #[arg(long)]
    jwt_audience: Option<String>,
    /// The Cognito Hosted UI (`https://NAME.auth.REGION.amazoncognito.com`) the console signs in
    /// through; its ID tokens must pass the JWT checks above.
    #[arg(long, requires = "jwks_url")]
    cognito_domain: Option<String>,
    /// The Cognito app client the console uses with the Hosted UI [default: --jwt-audience, the
    /// `aud` of its ID tokens].
    #[arg(long, requires = "cognito_domain")]
    cognito_client_id: Option<String>,
}

/// `herd up`.
pub fn up(args: UpArgs) -> anyhow::Result<Code> {
    let config = match config::load(config::source(args.config.as_deref()).as_ref())? {
        Ok(config) => config,
        Err(code) => return Ok(code),
    };
    let paths = AdapterPaths {
        data_dir: args.data_dir.clone(),
        agent_program: std::env::current_exe().context("cannot find the herd executable")?,
        owner: Some(coordinator_id(&args.data_dir)),
    };
    let listen = args
        .listen
        .or(config.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8787)));
    let max_agents = args.max_agents.or(config.max_agents).unwrap_or(32);
    let hosted_ui = match (
        args.cognito_domain,
        args.cognito_client_id.or(args.jwt_audience.clone()),
    ) {
        (Some(domain), Some(client_id)) => {
            if !domain.starts_with("https://") && !domain.starts_with("http://") {
                eprintln!("herd: --cognito-domain: {domain:?} must be a URL (https://NAME.auth.REGION.amazoncognito.com)");
                return Ok(Code::Invalid);
            }
            Some(auth::HostedUi { domain, client_id })
        }
        _ => None,
    };
    let jwt = match (args.jwks_url, args.jwt_issuer, args.jwt_audience) {
        (Some(jwks_url), Some(issuer), Some(audience)) => Some(auth::JwtConfig {
            jwks_url,
            client: JwksClient::new(args.jwks_ca.as_deref())?,
            issuer,
            audience,
        }),
        _ => None,
    };
    let system = actix::System::new();
    system.block_on(async move {
        let runtime = Adapters::start(&config, paths).await?;
        let deps = runtime.deps();
        let store: Arc<dyn Store> = deps.store.clone();
        let events = Arc::new(LocalEvents::new());
        #[cfg(feature = "aws")]
        let sns = match (&config.events, runtime.sdk()) {
            (Some(cfg), Some(sdk)) => Some(Arc::new(SnsEvents::new(sdk, cfg))),
            _ => None,
        };
        #[cfg(feature = "aws")]
        let sink: Arc<dyn EventSink> = match &sns {
            Some(sns) => Arc::new(Fanout(vec![events.clone(), sns.clone()])),
            None => events.clone(),
        };
        #[cfg(not(feature = "aws"))]
        let sink: Arc<dyn EventSink> = events.clone();
        let manager = Manager::start(
            ManagerConfig {
                max_agents,
                timeouts: Timeouts {
                    store_grace: config.store_grace,
                    ..Timeouts::default()
                },
            },
            deps,
            sink.clone(),
        );
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let scheduler = actix::spawn(scheduler::task::run(
            store.clone(),
            manager.clone(),
            sink.clone(),
            stopped(stop_rx.clone()),
        ));
        let intake = runtime.serves_command_topic().then(|| {
            let (broker, manager, sink) = (runtime.broker().clone(), manager.clone(), sink.clone());
            let keys = runtime.broker_keys();
            let stop = stopped(stop_rx.clone());
            actix::spawn(async move {
                if let Err(e) =
                    herd_coordinator::intake::run(&broker, keys, manager, sink, stop).await
                {
                    tracing::error!(error = %e, "the MQTT command topic is not served");
                }
            })
        });
        #[cfg(feature = "aws")]
        let sqs = match (&config.commands, runtime.sdk()) {
            (Some(cfg), Some(sdk)) => {
                let intake = SqsIntake::new(sdk, cfg);
                Some(actix::spawn(intake.run(
                    manager.clone(),
                    sink.clone(),
                    stopped(stop_rx.clone()),
                )))
            }
            _ => None,
        };
        let defaults = api::limiter::WriteRate::default();
        let rate = api::limiter::WriteRate {
            per_second: config.writes_per_second.unwrap_or(defaults.per_second),
            burst: config.write_burst.unwrap_or(defaults.burst),
        };
        let state = api::ApiState {
            manager: manager.clone(),
            store: store.clone(),
            auth: Arc::new(auth::Auth::new(store, jwt).with_hosted_ui(hosted_ui)),
            events: sink.clone(),
            writes: Arc::new(api::limiter::WriteLimiter::new(rate)),
            clock: herd_protocol::clock::Clock::new(),
        };
        eprintln!(
            "herd up: console on http://{addr}/, API on http://{addr}/api/v1 (broker {}, data in {})",
            runtime.broker(),
            args.data_dir.display()
        );
        let server = tokio::spawn(api::serve(listener, state, stopped(stop_rx)));
        shutdown_signal().await;
        eprintln!("herd up: shutting down: stopping active runs…");
        let _ = stop_tx.send(true);
        let _ = scheduler.await;
        if let Some(intake) = intake {
            let _ = intake.await;
        }
        #[cfg(feature = "aws")]
        if let Some(sqs) = sqs {
            let _ = sqs.await;
        }
        manager.shutdown(SHUTDOWN_LIMIT).await;
        let _ = server.await;
        #[cfg(feature = "aws")]
        if let Some(sns) = sns {
            if !sns.flush(Duration::from_secs(5)).await {
                eprintln!("herd up: some events were not published to SNS before the exit");
            }
        }
        eprintln!("herd up: stopped");
        Ok(Code::Passed)
    })
}

/// Resolves on Ctrl-C or SIGTERM (what ECS and systemd send).
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
