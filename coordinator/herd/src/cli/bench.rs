//! `herd bench swarm`: the coordinator against thousands of simulated agents (see
//! [`herd::swarm`]); `herd bench swarm-agents` is the child process holding those agents.

use super::exit::Code;
use anyhow::Context as _;
use herd::swarm::{self, agents, BenchConfig};
use herd_protocol::broker::BrokerAddr;
use herd_protocol::msgauth::Credential;
use herd_protocol::{AgentId, RunId};
use std::io::BufRead as _;
use std::path::PathBuf;

/// The bench's subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// N simulated agents (MQTT sessions speaking the agent protocol) against a real coordinator:
    /// its CPU and memory, frames per second, live lag, start skew, frames lost or doubled.
    Swarm(SwarmArgs),
    /// The simulated agents' process (started by `herd bench swarm`): agent ids on stdin, one a
    /// line, then an empty line; runs until stdin closes, then prints its tally as JSON.
    #[command(hide = true)]
    SwarmAgents(SwarmAgentsArgs),
}

/// Arguments of `herd bench swarm`.
#[derive(Debug, clap::Args)]
pub struct SwarmArgs {
    /// Simulated agents.
    #[arg(long, default_value_t = 100)]
    pub agents: u32,
    /// Seconds of load.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// An external broker (`mqtt://127.0.0.1:1883`); without it, the embedded one.
    #[arg(long)]
    pub broker: Option<String>,
    /// Write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Where the store goes (a fresh temporary directory by default).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// Arguments of `herd bench swarm-agents`.
#[derive(Debug, clap::Args)]
pub struct SwarmAgentsArgs {
    /// The broker.
    #[arg(long)]
    pub broker: String,
    /// The run.
    #[arg(long)]
    pub run: String,
}

/// Runs a bench subcommand.
pub fn run(command: BenchCommand) -> anyhow::Result<Code> {
    match command {
        BenchCommand::Swarm(args) => bench(args),
        BenchCommand::SwarmAgents(args) => simulate(args),
    }
}

fn bench(args: SwarmArgs) -> anyhow::Result<Code> {
    if args.agents == 0 || args.seconds == 0 {
        eprintln!("herd: --agents and --seconds must be >= 1");
        return Ok(Code::Invalid);
    }
    let broker = match args.broker.as_deref().map(BrokerAddr::parse).transpose() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("herd: --broker: {e}");
            return Ok(Code::Invalid);
        }
    };
    let temp = std::env::temp_dir().join(format!("herd-swarm-{}", std::process::id()));
    let config = BenchConfig {
        agents: args.agents,
        seconds: args.seconds,
        broker,
        data_dir: args.data_dir.clone().unwrap_or_else(|| temp.clone()),
        program: std::env::current_exe().context("cannot find the herd executable")?,
    };
    let system = actix::System::new();
    let figures = system.block_on(swarm::run(config));
    if args.data_dir.is_none() {
        let _ = std::fs::remove_dir_all(&temp);
    }
    let figures = figures?;
    print!("{}", swarm::table(std::slice::from_ref(&figures)));
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&figures)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let exact = figures["frames_lost"] == 0
        && figures["frames_doubled"] == 0
        && figures["requests_sent"] == figures["requests_counted"]
        && figures["run_state"] == "completed";
    Ok(if exact { Code::Passed } else { Code::RunError })
}

fn simulate(args: SwarmAgentsArgs) -> anyhow::Result<Code> {
    let broker = BrokerAddr::parse(&args.broker).context("--broker")?;
    let run = RunId::new(args.run).context("--run")?;
    // Lines: `ID [PASSWORD]` per agent, optionally `@listener USER PASSWORD` and `@runkey KEY`
    // first; then an empty line. A password (the broker's per-run credential) signs that agent's
    // messages; the run key opens the sealed commands.
    let mut agents = Vec::new();
    let mut passwords = Vec::new();
    let mut listener = None;
    let mut run_key = None;
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let line = line.context("reading agent ids")?;
        if line.is_empty() {
            break;
        }
        let mut words = line.split(' ');
        let first = words.next().unwrap_or_default();
        if first == "@runkey" {
            let key = words.next().context("@runkey needs a key")?;
            run_key = Some(herd_protocol::cmdseal::RunKey::new(key));
            continue;
        }
        if first == "@listener" {
            let (Some(username), Some(password)) = (words.next(), words.next()) else {
                anyhow::bail!("@listener needs a user name and a password");
            };
            listener = Some(Credential {
                username: username.to_string(),
                password: password.to_string(),
            });
            continue;
        }
        agents.push(AgentId::new(first).context("an agent id")?);
        passwords.push(words.next().map(str::to_string));
    }
    let config = agents::AgentsConfig {
        broker,
        run,
        agents,
        passwords,
        listener,
        run_key,
        step: swarm::STEP.to_string(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let report = runtime.block_on(async move {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        // The bench closes stdin when its run is over.
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
            let _ = tx.send(());
        });
        agents::run(config, async move {
            let _ = rx.await;
        })
        .await
    })?;
    println!("{}", swarm::report_json(&report));
    Ok(Code::Passed)
}
