//! Command-line parsing and the subcommands' entry points.

mod agent;
mod bench;
mod config;
mod demo;
pub mod exit;
mod import;
mod init;
mod out;
mod progress;
mod report;
mod run;
mod stored;
mod token;
mod up;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// herd: distributed load testing with exact numbers.
#[derive(Debug, Parser)]
#[command(name = "herd", version, about)]
pub struct Cli {
    /// More log output on stderr (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a plan as a distributed load test on this machine.
    Run(run::RunArgs),
    /// Check a plan and report every mistake, without sending any load.
    Validate {
        /// The plan (YAML or JSON).
        plan: PathBuf,
    },
    /// Run one agent (normally launched by the coordinator).
    Agent(agent::AgentArgs),
    /// Start a built-in counting target and run the smoke plan against it.
    Demo(demo::DemoArgs),
    /// Turn a JMeter, Taurus, HAR or DLT test into a plan, reporting what became of each element.
    Import(import::ImportArgs),
    /// Show a stored run again, or write its outputs (`--out KIND=FILE`, `--html FILE`).
    Report(stored::ReportArgs),
    /// Run the coordinator as a service: HTTP API, scheduler, concurrent runs.
    Up(up::UpArgs),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Write `herd.toml` from a deployment.
    #[command(subcommand)]
    Init(InitCommand),
    /// Check `herd.toml`.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Measure herd itself (`swarm`: the coordinator against thousands of simulated agents).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Print a JSON Schema of herd's wire formats, for systems that send herd commands.
    #[command(subcommand)]
    Schema(SchemaCommand),
}

#[derive(Debug, Subcommand)]
enum SchemaCommand {
    /// The commands accepted on SQS, MQTT and the API (`start_run`, `stop_run`, …); the same
    /// schema is checked in as `docs/commands.schema.json`.
    Commands,
    /// The live message of `herd/runs/{run}/live` (MQTT) and of each SSE `second` event of
    /// `GET /api/v1/runs/{id}/live`, for other dashboards; checked in as `docs/live.schema.json`.
    Live,
}

#[derive(Debug, Subcommand)]
enum InitCommand {
    /// From the outputs of a hub stack (infra/cloudformation/herd.yaml), read with
    /// CloudFormation's DescribeStacks; every output the file needs must be there (exit 2).
    Aws(init::InitAwsArgs),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Parse and validate `herd.toml` as `herd up` would: exit 0 with what it chooses, or 2
    /// naming every problem with its key.
    Check(config::CheckArgs),
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token; it is printed once and only its hash is stored.
    Create(token::CreateArgs),
    /// Revoke a token by its id: it is refused (401) from the next request on.
    Revoke(token::RevokeArgs),
    /// List tokens: id, role and whether each is active, expired or revoked.
    List(token::StoreArgs),
}

/// Sets up logging: warnings by default, `-v` for info, `-vv` for debug; `RUST_LOG` wins. The
/// embedded broker (rumqttd) logs every ordinary disconnect as an error, so it is silenced unless
/// asked for.
///
/// On a terminal the lines are for people; otherwise (a service under systemd or ECS, an agent's
/// log file, CI) each line is one JSON object whose fields (`run`, `agent`, `error`, …) sit at the
/// top level beside `timestamp`, `level`, `target` and `message`, so log tools can filter by run.
pub fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn,rumqttd=off",
        1 => "info,rumqttd=warn",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        builder.try_init()
    } else {
        builder.json().flatten_event(true).try_init()
    };
}

/// Runs the chosen subcommand.
pub fn dispatch(cli: Cli) -> anyhow::Result<exit::Code> {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Validate { plan } => Ok(match run::load_plan(&plan) {
            Ok(plan) => {
                if plan.has_scenarios() {
                    println!(
                        "{}: valid ({} agents, {} scenarios, {:.1}s)",
                        plan.name,
                        plan.agents,
                        plan.scenarios.len(),
                        plan.duration().as_secs_f64()
                    );
                } else {
                    println!(
                        "{}: valid ({} agents, {} stages, {} steps, {:.1}s)",
                        plan.name,
                        plan.agents,
                        plan.load.stages.len(),
                        plan.scenario.len(),
                        plan.duration().as_secs_f64()
                    );
                }
                for s in &plan.scenarios {
                    println!("  scenario {}", s.describe());
                }
                for line in plan.describe_once() {
                    println!("  {line}");
                }
                for t in &plan.thresholds {
                    println!("  threshold {:?} applies to {}", t.expr, t.applies_to());
                }
                exit::Code::Passed
            }
            Err(code) => code,
        }),
        Command::Agent(args) => agent::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Report(args) => stored::run(args),
        Command::Import(args) => import::run(args),
        Command::Up(args) => up::up(args),
        Command::Bench(command) => bench::run(command),
        Command::Token(TokenCommand::Create(args)) => token::create(args),
        Command::Token(TokenCommand::Revoke(args)) => token::revoke(args),
        Command::Token(TokenCommand::List(args)) => token::list(args),
        Command::Init(InitCommand::Aws(args)) => init::aws(args),
        Command::Config(ConfigCommand::Check(args)) => config::check(args),
        Command::Schema(SchemaCommand::Commands) => {
            let schema = herd_protocol::command::json_schema();
            println!("{}", serde_json::to_string_pretty(&schema)?);
            Ok(exit::Code::Passed)
        }
        Command::Schema(SchemaCommand::Live) => {
            let schema = herd_protocol::summary::live_json_schema();
            println!("{}", serde_json::to_string_pretty(&schema)?);
            Ok(exit::Code::Passed)
        }
    }
}
