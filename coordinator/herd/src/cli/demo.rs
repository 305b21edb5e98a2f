//! `herd demo`: the README's first command. Starts a small HTTP target that counts what it
//! receives, runs the smoke plan against it with the embedded default, and prints the target's own
//! count beside herd's, so a newcomer sees a distributed run and its exactness in one go.

use super::exit::Code;
use super::{report, run};
use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const SMOKE_PLAN: &str = include_str!("../../../../examples/smoke.yaml");

/// Arguments of `herd demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Where the demo target listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Number of agents.
    #[arg(long, default_value_t = 3)]
    agents: u32,
    /// Write the summary as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Where the store and agent logs live.
    #[arg(long, env = "HERD_DATA_DIR", default_value = ".herd")]
    data_dir: PathBuf,
}

#[derive(Default)]
struct Counts {
    total: AtomicU64,
    mix: AtomicU64,
    login: AtomicU64,
}

/// Runs the demo.
pub fn run(args: DemoArgs) -> anyhow::Result<Code> {
    let counts = Arc::new(Counts::default());
    let listener = std::net::TcpListener::bind(args.listen).with_context(|| {
        format!(
            "cannot listen on {} (use --listen to pick another address)",
            args.listen
        )
    })?;
    let addr = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    let served = counts.clone();
    std::thread::Builder::new()
        .name("demo-target".into())
        .spawn(move || serve(listener, served))?;

    let mut plan = herd_protocol::plan::from_yaml_str(SMOKE_PLAN)
        .map_err(|e| anyhow::anyhow!("built-in smoke plan is invalid: {e}"))?;
    plan.target = format!("http://{addr}");
    plan.agents = args.agents;
    eprintln!(
        "herd demo: target on http://{addr}, {} agents, {:.0}s",
        plan.agents,
        plan.duration().as_secs_f64()
    );
    let summary = run::run_plan(plan, &args.data_dir, false, None, Vec::new())?.summary;
    report::print(&summary);
    if let Some(path) = &args.json {
        report::write_json(&summary, path)?;
    }
    let target_total = counts.total.load(Ordering::SeqCst);
    let step = |label: &str| summary.steps.get(label).map_or(0, |s| s.requests);
    println!();
    println!("  {:<10} {:>10} {:>10}", "count", "target", "herd");
    println!(
        "  {:<10} {:>10} {:>10}",
        "requests", target_total, summary.requests
    );
    println!(
        "  {:<10} {:>10} {:>10}",
        "mix",
        counts.mix.load(Ordering::SeqCst),
        step("mix")
    );
    println!(
        "  {:<10} {:>10} {:>10}",
        "login",
        counts.login.load(Ordering::SeqCst),
        step("login")
    );
    if target_total != summary.requests {
        eprintln!(
            "herd demo: the target counted {target_total} requests but herd reported {}",
            summary.requests
        );
        return Ok(Code::RunError);
    }
    Ok(summary.status.into())
}

fn serve(listener: std::net::TcpListener, counts: Arc<Counts>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("herd demo: cannot start the target: {e}");
            return;
        }
    };
    runtime.block_on(async move {
        let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
            eprintln!("herd demo: cannot use the target's socket");
            return;
        };
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let counts = counts.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| respond(req, counts.clone()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

async fn respond(
    req: Request<Incoming>,
    counts: Arc<Counts>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    counts.total.fetch_add(1, Ordering::SeqCst);
    let (parts, body) = req.into_parts();
    body.collect().await?;
    let (status, text) = match (parts.method.as_str(), parts.uri.path()) {
        ("GET", "/mix") => {
            counts.mix.fetch_add(1, Ordering::SeqCst);
            (200, "mixed\n")
        }
        ("POST", "/login") => {
            counts.login.fetch_add(1, Ordering::SeqCst);
            (200, "{\"token\":\"demo\"}\n")
        }
        _ => (404, "not found\n"),
    };
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    Ok(response)
}
