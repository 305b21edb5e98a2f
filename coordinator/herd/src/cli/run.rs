//! `herd run`: the embedded default, one distributed load test on this machine.

use super::exit::Code;
use super::{out, progress, report};
use anyhow::Context as _;
use herd::local::{LocalConfig, LocalRuntime};
use herd_coordinator::broker::LogWindow;
use herd_coordinator::output::RunResults;
use herd_coordinator::run::{Cancel, Timeouts};
use herd_protocol::plan::{self, Plan, PlanFiles};
use std::io::Read as _;
use std::path::{Path, PathBuf};

/// Arguments of `herd run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The plan (YAML or JSON).
    pub plan: PathBuf,
    /// Number of agents (overrides the plan's `agents`).
    #[arg(long)]
    pub agents: Option<u32>,
    /// Write the summary as JSON to this file (`-` for stdout).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write an output: `KIND=FILE[,KIND=FILE…]` with KIND junit, csv (one row per second),
    /// csv-steps (per second and step), json or html (`-` as FILE is stdout). Repeatable.
    #[arg(long = "out", value_name = "KIND=FILE")]
    pub out: Vec<String>,
    /// Where the store and agent logs live.
    #[arg(long, env = "HERD_DATA_DIR", default_value = ".herd")]
    pub data_dir: PathBuf,
    /// No live progress line.
    #[arg(long, short)]
    pub quiet: bool,
    /// Only let the run reach these hosts: comma-separated host globs and CIDRs
    /// (`*.staging.example.com,10.0.0.0/8`); requests elsewhere fail as `blocked`. Without it:
    /// any target.
    #[arg(long, value_delimiter = ',')]
    pub allowed_targets: Option<Vec<String>>,
    /// Run this many VUs for `--duration` instead of the plan's load.
    #[arg(long)]
    pub vus: Option<u32>,
    /// Run this many arrivals per second for `--duration` instead of the plan's load.
    #[arg(long, conflicts_with = "vus")]
    pub rps: Option<f64>,
    /// How long `--vus` or `--rps` runs (`30s`, `2m`).
    #[arg(long)]
    pub duration: Option<String>,
    /// A value for `${env.NAME}` in the plan, before the process environment (repeatable).
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// Set a field of the plan (`options.timeout=5s`, `load.stages[0].vus=3`; repeatable).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<String>,
    /// A `herd.toml` whose `[[outputs]]` this run also pushes to, with the plan's `outputs:`
    /// (the rest of the file configures `herd up`). Without it: `HERD_CONFIG`, else
    /// `HERD_CONFIG_TOML`, as `herd up` reads them, else `./herd.toml` when there is one.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// The `[[outputs]]` of the `herd.toml` `herd run` reads (see [`RunArgs::config`]); every problem
/// of the file is printed with its key, and gives the exit code.
fn config_outputs(flag: Option<&Path>) -> anyhow::Result<Result<Vec<plan::Output>, Code>> {
    let local = Path::new("herd.toml");
    let source = super::config::source(flag).or_else(|| {
        local
            .is_file()
            .then(|| super::config::Source::Flag(local.to_owned()))
    });
    Ok(super::config::load(source.as_ref())?.map(|config| config.outputs))
}

/// Reads and validates a plan; on failure prints every problem and returns the exit code.
pub fn load_plan(path: &Path) -> Result<Plan, Code> {
    load_plan_with(path, &plan::Overrides::default(), Vec::new()).map(|(plan, _)| plan)
}

/// Reads a plan, applies `overrides`, resolves `${env.NAME}` from `env` then the process
/// environment, and validates it; returns it with what was overridden.
fn load_plan_with(
    path: &Path,
    overrides: &plan::Overrides,
    env: Vec<(String, String)>,
) -> Result<(Plan, Vec<String>), Code> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("herd: cannot read plan {}: {e}", path.display());
            return Err(Code::Invalid);
        }
    };
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    // Feeders' CSV files and body files are read here, relative to the plan's folder, and
    // travel inside the plan.
    let mut shown: Vec<String> = env.iter().map(|(k, _)| format!("env {k}")).collect();
    let dir = PlanDir {
        dir: path.parent().unwrap_or(Path::new(".")),
        env,
    };
    let parsed = plan::value_from_text(&text, is_json).and_then(|mut value| {
        shown.splice(0..0, overrides.apply(&mut value)?);
        plan::from_value_with(&value, &dir)
    });
    parsed
        .map(|plan| (plan, shown))
        .map_err(|errors| invalid(path, &errors.0))
}

/// Prints a plan's problems; the exit code for them.
fn invalid(path: &Path, errors: &[plan::FieldError]) -> Code {
    eprintln!(
        "herd: invalid plan {} ({} problems):",
        path.display(),
        errors.len()
    );
    for e in errors {
        eprintln!("  {e}");
    }
    Code::Invalid
}

/// The files a plan names (feeders' CSV files, body files), relative to the plan's own
/// directory. The coordinator reads them once, and their contents travel to the agents inside
/// the plan.
/// `${env.NAME}` comes from `--env` first, then from the process environment.
struct PlanDir<'a> {
    dir: &'a Path,
    env: Vec<(String, String)>,
}

impl PlanFiles for PlanDir<'_> {
    fn env(&self, name: &str) -> Option<String> {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var(name).ok())
    }

    fn read(&self, path: &str, limit: usize) -> Result<Vec<u8>, String> {
        let file = std::fs::File::open(self.dir.join(path)).map_err(|e| e.to_string())?;
        let mut bytes = Vec::new();
        // One byte past the limit tells a file that is too large, without reading all of it.
        file.take(limit as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| e.to_string())?;
        if bytes.len() > limit {
            return Err(format!(
                "is larger than the limit of {limit} bytes (the data travels to the agents \
                 inside the plan)"
            ));
        }
        Ok(bytes)
    }
}

/// Runs `herd run`.
pub fn run(args: RunArgs) -> anyhow::Result<Code> {
    let outputs = match out::parse(&args.out) {
        Ok(o) => o,
        Err(message) => {
            eprintln!("herd: {message}");
            return Ok(Code::Invalid);
        }
    };
    let pairs = |flag: &str, items: &[String]| -> Result<Vec<(String, String)>, String> {
        items
            .iter()
            .map(|item| match item.split_once('=') {
                Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
                _ => Err(format!("{flag} {item:?}: write it as NAME=VALUE")),
            })
            .collect()
    };
    let (env, set) = match (pairs("--env", &args.env), pairs("--set", &args.set)) {
        (Ok(env), Ok(set)) => (env, set),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("herd: {e}");
            return Ok(Code::Invalid);
        }
    };
    let overrides = plan::Overrides {
        vus: args.vus,
        rps: args.rps,
        duration: args.duration.clone(),
        set,
    };
    let (mut plan, overridden) = match load_plan_with(&args.plan, &overrides, env) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    // Secrets are read when the run starts; one that cannot be is named now, before anything runs.
    if let Err(e) = herd_coordinator::run::secrets::values(&plan) {
        return Ok(invalid(&args.plan, &[e]));
    }
    if let Some(n) = args.agents {
        if n == 0 {
            eprintln!("herd: --agents must be >= 1");
            return Ok(Code::Invalid);
        }
        plan.agents = n;
        let problems = plan.check_agents(n);
        if !problems.is_empty() {
            return Ok(invalid(&args.plan, &problems));
        }
    }
    if let Err(e) = herd_coordinator::run::targets::check(&plan, args.allowed_targets.as_deref()) {
        return Ok(invalid(&args.plan, &[e]));
    }
    let defaults = match config_outputs(args.config.as_deref())? {
        Ok(outputs) => outputs,
        Err(code) => return Ok(code),
    };
    let mut results = run_plan(
        plan,
        &args.data_dir,
        args.quiet,
        args.allowed_targets,
        defaults,
    )?;
    results.summary.overrides = overridden;
    report::print(&results.summary);
    if let Some(path) = &args.json {
        report::write_json(&results.summary, path)?;
    }
    out::write_all(&outputs, &results)?;
    Ok(results.summary.status.into())
}

/// Runs a validated plan on the embedded runtime and returns its summary and stored seconds.
/// `outputs`: `herd.toml`'s, pushed to besides the plan's own.
pub fn run_plan(
    plan: Plan,
    data_dir: &Path,
    quiet: bool,
    allowed_targets: Option<Vec<String>>,
    outputs: Vec<plan::Output>,
) -> anyhow::Result<RunResults> {
    let config = LocalConfig {
        data_dir: data_dir.to_path_buf(),
        agent_program: std::env::current_exe().context("cannot find the herd executable")?,
        allowed_targets,
        outputs,
        broker_log: LogWindow::for_run(&plan),
    };
    let system = actix::System::new();
    system.block_on(async move {
        let runtime = LocalRuntime::start(config).await?;
        let store = runtime.deps().store;
        let mut handle = runtime.start_run(plan, Timeouts::default());
        let view = handle.view.clone();
        let printer = (!quiet).then(|| actix::spawn(progress::follow(view)));
        let summary = loop {
            tokio::select! {
                outcome = &mut handle.outcome => break outcome.context("the run actor stopped without a summary")?,
                _ = tokio::signal::ctrl_c() => {
                    eprintln!("\nherd: stopping (Ctrl-C again to abort)…");
                    handle.addr.do_send(Cancel { reason: "interrupted (Ctrl-C)".into() });
                }
            }
        };
        if let Some(p) = printer {
            p.abort();
            progress::clear();
        }
        let run = herd_protocol::RunId::new(summary.run_id.clone())
            .context("the summary's run id is not valid")?;
        let seconds = store
            .list_seconds(&run)
            .await
            .context("cannot read the run's seconds from the store")?;
        let record = store
            .get_run(&run)
            .await
            .context("cannot read the run from the store")?;
        Ok(RunResults {
            summary,
            seconds,
            record,
        })
    })
}
