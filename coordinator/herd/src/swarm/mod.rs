//! `herd bench swarm`: thousands of simulated agents against one real coordinator.
//!
//! The coordinator is the one `herd run` uses — the run actor on the embedded broker (or an
//! external one), the MQTT session, the SQLite store — except for its launcher: an
//! [`launcher::ExternalLauncher`] starts nothing and hands the launch request to the bench, which
//! starts one child process (`herd bench swarm-agents`) holding every simulated agent
//! ([`agents`]), each a real MQTT session with the agent's client id speaking the agent protocol
//! with the protocol crate's own types. The child runs in another process so that the CPU and
//! memory read from `/proc/self` ([`stats`]) are the coordinator's (with the embedded broker's
//! threads counted apart).
//!
//! The bench then checks the coordinator against what the agents sent: every frame counted once
//! (the summary's per-second `agents_reported` summed, and the requests of every frame summed,
//! must equal what the agents published), and reports throughput, live lag, start fan-out skew
//! and bytes on the broker.

pub mod agents;
pub mod connect;
pub mod frames;
pub mod launcher;
pub mod stats;

use crate::adapters::{AdapterPaths, Adapters, AdaptersError};
use herd_coordinator::config::{BrokerConfig, ServiceConfig};
use herd_coordinator::manager::new_run_id;
use herd_coordinator::run::{self, RunSpec, Timeouts};
use herd_protocol::broker::BrokerAddr;
use herd_protocol::summary::Summary;
use serde_json::{json, Value};
use stats::Distribution;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The label of the bench plan's one step.
pub const STEP: &str = "home";

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Simulated agents.
    pub agents: u32,
    /// Seconds of load.
    pub seconds: u64,
    /// An external broker; `None`: the embedded one.
    pub broker: Option<BrokerAddr>,
    /// Where the store goes.
    pub data_dir: PathBuf,
    /// The `herd` program that runs `bench swarm-agents`.
    pub program: PathBuf,
}

/// Why the bench could not measure.
#[derive(Debug, thiserror::Error)]
pub enum SwarmError {
    /// The bench plan did not validate (a bug).
    #[error("the bench plan is invalid: {0}")]
    Plan(String),
    /// The coordinator's adapters.
    #[error(transparent)]
    Adapters(#[from] AdaptersError),
    /// The simulated agents' process.
    #[error("the simulated agents: {0}")]
    Agents(String),
    /// The run ended without a summary.
    #[error("the run actor stopped without a summary")]
    NoSummary,
}

/// The plan the bench runs: one VU per agent, one step, for `seconds`. The target is never
/// contacted (the agents are simulated).
pub fn plan(agents: u32, seconds: u64) -> Result<herd_protocol::plan::Plan, SwarmError> {
    let yaml = format!(
        "version: 1\nname: swarm\ntarget: http://127.0.0.1:9\nagents: {agents}\n\
         load:\n  stages:\n    - {{ duration: {seconds}s, vus: {agents} }}\n\
         scenario:\n  - name: {STEP}\n    get: /\n"
    );
    herd_protocol::plan::from_yaml_str(&yaml).map_err(|e| SwarmError::Plan(format!("{e:?}")))
}

/// Runs the bench: the coordinator here, the agents in a child process. Call inside an actix
/// system. Returns the figures as the `--json` contract names them.
pub async fn run(config: BenchConfig) -> Result<Value, SwarmError> {
    let plan = plan(config.agents, config.seconds)?;
    let service = ServiceConfig {
        broker: BrokerConfig {
            url: config.broker.clone(),
            ..BrokerConfig::default()
        },
        ..ServiceConfig::default()
    };
    let adapters = Adapters::start(
        &service,
        AdapterPaths {
            data_dir: config.data_dir.clone(),
            agent_program: config.program.clone(),
            owner: None,
        },
    )
    .await?;
    let keys = adapters.broker_keys();
    let (external, mut launches) = launcher::ExternalLauncher::new();
    let mut deps = adapters.deps();
    deps.launcher = Arc::new(external);
    let timeouts = Timeouts {
        // Thousands of sessions connecting on a loaded host take longer than a few real agents.
        ready: Duration::from_secs(180),
        ..Timeouts::default()
    };
    let mut handle = run::start(
        RunSpec {
            run: new_run_id(),
            test: None,
            plan,
            timeouts,
        },
        deps,
    );
    let spec = launches
        .recv()
        .await
        .ok_or_else(|| SwarmError::Agents("the run never asked for its agents".into()))?;
    let mut child = tokio::process::Command::new(&config.program)
        .args([
            "bench",
            "swarm-agents",
            "--broker",
            &spec.broker_url,
            "--run",
        ])
        .arg(spec.run.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            SwarmError::Agents(format!("cannot start {}: {e}", config.program.display()))
        })?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| SwarmError::Agents("no stdin".into()))?;
    // The agents' per-run credentials, as a launcher that starts real agents hands them out
    // (and the broker admits them from now on), and the commander's for the live listener.
    let mut ids = String::new();
    if let Some(keys) = &keys {
        keys.launched(&spec.run, &spec.agents);
        let c = keys.commander();
        ids.push_str(&format!("@listener {} {}\n", c.username, c.password));
        ids.push_str(&format!("@runkey {}\n", keys.run_key(&spec.run).expose()));
    }
    for a in &spec.agents {
        match &keys {
            Some(keys) => ids.push_str(&format!("{a} {}\n", keys.agent(&spec.run, a).password)),
            None => ids.push_str(&format!("{a}\n")),
        }
    }
    stdin
        .write_all(format!("{ids}\n").as_bytes())
        .await
        .map_err(|e| SwarmError::Agents(format!("cannot hand over the agent ids: {e}")))?;
    let child_pid = child.id().unwrap_or(0);
    let (broker0, cpu0) = stats::cpu_seconds();
    let swarm0 = stats::process_cpu_seconds(child_pid);
    let started = Instant::now();
    // Resident memory once a second while the run goes (is state per agent-second bounded?).
    let samples = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sampler = tokio::spawn({
        let samples = samples.clone();
        async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Ok(mut s) = samples.lock() {
                    s.push(stats::rss_mb());
                }
            }
        }
    });
    let summary = (&mut handle.outcome)
        .await
        .map_err(|_| SwarmError::NoSummary);
    sampler.abort();
    let rss = samples
        .lock()
        .map(|s| stats::RssTrend::of(&s))
        .unwrap_or_default();
    let summary = summary?;
    let wall = started.elapsed().as_secs_f64();
    let (broker1, cpu1) = stats::cpu_seconds();
    let swarm1 = stats::process_cpu_seconds(child_pid);
    // Closing stdin tells the agents the run is over; they report on stdout.
    drop(stdin);
    let mut out = String::new();
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| SwarmError::Agents("no stdout".into()))?;
    tokio::time::timeout(Duration::from_secs(60), stdout.read_to_string(&mut out))
        .await
        .map_err(|_| SwarmError::Agents("no report within 60 s".into()))?
        .map_err(|e| SwarmError::Agents(e.to_string()))?;
    let _ = child.wait().await;
    let sent: Value = serde_json::from_str(&out)
        .map_err(|e| SwarmError::Agents(format!("unreadable report ({e}): {out}")))?;
    Ok(figures(
        &config,
        &summary,
        &sent,
        wall,
        Cpu {
            coordinator: cpu1 - cpu0,
            broker: broker1 - broker0,
            swarm: swarm1 - swarm0,
        },
        &rss,
    ))
}

/// CPU seconds used during the run, by whom. On one machine the simulated agents and the broker
/// take cores the coordinator would otherwise have, so each is reported apart.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    /// The coordinator (this process without the embedded broker's threads).
    pub coordinator: f64,
    /// The embedded broker's threads (0 with an external broker).
    pub broker: f64,
    /// The simulated agents' process.
    pub swarm: f64,
}

/// The bench's figures: the `--json` contract's names first, then the rest.
fn figures(
    config: &BenchConfig,
    summary: &Summary,
    sent: &Value,
    wall: f64,
    cpu: Cpu,
    rss: &stats::RssTrend,
) -> Value {
    let get = |k: &str| sent.get(k).and_then(Value::as_u64).unwrap_or(0);
    let frames_sent = get("frames");
    let frames_counted: u64 = summary
        .seconds
        .iter()
        .map(|s| u64::from(s.agents_reported))
        .sum();
    let agent_seconds = (u64::from(config.agents) * config.seconds).max(1) as f64;
    let bytes = get("bytes_published") + get("bytes_received");
    let live = Distribution::from_json(sent.get("live_lag_ms").unwrap_or(&Value::Null));
    let skew = Distribution::from_json(sent.get("start_skew_ms").unwrap_or(&Value::Null));
    let round = |v: f64, d: f64| (v * d).round() / d;
    json!({
        "agents": config.agents,
        "seconds": config.seconds,
        "coordinator_cpu_cores": round(cpu.coordinator / wall, 1000.0),
        "coordinator_rss_mb": round(stats::peak_rss_mb(), 10.0),
        "frames": frames_counted,
        "frames_lost": frames_sent.saturating_sub(frames_counted),
        "frames_doubled": frames_counted.saturating_sub(frames_sent),
        "live_lag_ms": live.to_json(),
        "start_skew_ms": skew.to_json(),
        "broker": config.broker.as_ref().map_or_else(|| "embedded".to_string(), ToString::to_string),
        "embedded_broker_cpu_cores": round(cpu.broker / wall, 1000.0),
        "swarm_cpu_cores": round(cpu.swarm / wall, 1000.0),
        // The coordinator's whole cost (connections, start, frames, statuses, stores, end) per
        // frame it counted: what "≤ 1 core at 10,000 agents" is judged by when the swarm and the
        // broker share the coordinator's machine (10,000 frames/s × this ≤ 1 s).
        "coordinator_cpu_us_per_frame": round(cpu.coordinator * 1e6 / (frames_counted.max(1) as f64), 10.0),
        "frames_sent": frames_sent,
        "frames_per_s": round(frames_counted as f64 / (config.seconds.max(1) as f64), 10.0),
        "requests_sent": get("requests"),
        "requests_counted": summary.requests,
        "agents_started": get("started"),
        "agents_finished": get("finished"),
        "live_seconds": get("live_seconds"),
        // How late the swarm's frames reached the broker (end of their second → the broker's
        // acknowledgement): the part of the live lag that is the simulation's and the broker's.
        "swarm_frame_ack_lag_ms": Distribution::from_json(sent.get("frame_ack_lag_ms").unwrap_or(&Value::Null)).to_json(),
        "start_command_bytes": get("start_command_bytes"),
        "broker_bytes_per_agent_second": round(bytes as f64 / agent_seconds, 1.0),
        "run_state": summary.run_state,
        "lost_agents": summary.lost_agents.len(),
        "wall_s": round(wall, 10.0),
        "coordinator_rss_mb_after_first_minute": round(rss.after_first_minute_mb, 10.0),
        "coordinator_rss_mb_end": round(rss.end_mb, 10.0),
        "coordinator_rss_growth_mb_per_min": round(rss.growth_mb_per_min, 100.0),
        "coordinator_rss_mb_every_30s": rss.every_30s_mb.iter().map(|m| round(*m, 10.0)).collect::<Vec<_>>(),
    })
}

/// The simulated agents' report as the child writes it on stdout.
pub fn report_json(report: &agents::AgentsReport) -> Value {
    json!({
        "frames": report.frames,
        "requests": report.requests,
        "finished": report.finished,
        "started": report.started,
        "start_skew_ms": report.start_skew_ms.to_json(),
        "start_command_bytes": report.start_command_bytes,
        "live_lag_ms": report.live_lag_ms.to_json(),
        "live_seconds": report.live_seconds,
        "frame_ack_lag_ms": report.frame_ack_lag_ms.to_json(),
        "bytes_published": report.bytes_published,
        "bytes_received": report.bytes_received,
    })
}

/// A table of bench results, one row each.
pub fn table(rows: &[Value]) -> String {
    let mut out = format!(
        "{:>6} {:>5} {:<22} {:>6} {:>6} {:>6} {:>7} {:>7} {:>8} {:>5}/{:<5} {:>20} {:>20} {:>8} {:>10}\n",
        "agents",
        "secs",
        "broker",
        "cpu",
        "brkcpu",
        "swarm",
        "us/frm",
        "rss_mb",
        "frames/s",
        "lost",
        "doubl",
        "live lag p50/p99/max",
        "start skew p50/p99/max",
        "B/agt-s",
        "state"
    );
    for r in rows {
        let f = |k: &str| match r.get(k) {
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => String::new(),
        };
        let d = |k: &str| {
            let v = &r[k];
            format!("{}/{}/{}", v["p50"], v["p99"], v["max"])
        };
        out.push_str(&format!(
            "{:>6} {:>5} {:<22} {:>6} {:>6} {:>6} {:>7} {:>7} {:>8} {:>5}/{:<5} {:>20} {:>20} {:>8} {:>10}\n",
            f("agents"),
            f("seconds"),
            f("broker"),
            f("coordinator_cpu_cores"),
            f("embedded_broker_cpu_cores"),
            f("swarm_cpu_cores"),
            f("coordinator_cpu_us_per_frame"),
            f("coordinator_rss_mb"),
            f("frames_per_s"),
            f("frames_lost"),
            f("frames_doubled"),
            d("live_lag_ms"),
            d("start_skew_ms"),
            f("broker_bytes_per_agent_second"),
            f("run_state")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_bench_plan_is_valid_with_one_vu_per_agent() {
        let plan = super::plan(7, 3).expect("valid");
        assert_eq!(plan.agents, 7);
        assert_eq!(plan.scenario.len(), 1);
    }
}
