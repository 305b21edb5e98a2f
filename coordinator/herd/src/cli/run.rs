//! `herd run`: the embedded default, one distributed load test on this machine.

use super::exit::Code;
use super::{out, progress, report};
use anyhow::Context as _;
use herd::local::{LocalConfig, LocalRuntime};
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
}

/// Reads and validates a plan; on failure prints every problem and returns the exit code.
pub fn load_plan(path: &Path) -> Result<Plan, Code> {
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
    let dir = PlanDir(path.parent().unwrap_or(Path::new(".")));
    let parsed = if is_json {
        plan::from_json_str_with(&text, &dir)
    } else {
        plan::from_yaml_str_with(&text, &dir)
    };
    parsed.map_err(|errors| invalid(path, &errors.0))
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
struct PlanDir<'a>(&'a Path);

impl PlanFiles for PlanDir<'_> {
    fn read(&self, path: &str, limit: usize) -> Result<Vec<u8>, String> {
        let file = std::fs::File::open(self.0.join(path)).map_err(|e| e.to_string())?;
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
    let mut plan = match load_plan(&args.plan) {
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
    let results = run_plan(plan, &args.data_dir, args.quiet, args.allowed_targets)?;
    report::print(&results.summary);
    if let Some(path) = &args.json {
        report::write_json(&results.summary, path)?;
    }
    out::write_all(&outputs, &results)?;
    Ok(results.summary.status.into())
}

/// Runs a validated plan on the embedded runtime and returns its summary and stored seconds.
pub fn run_plan(
    plan: Plan,
    data_dir: &Path,
    quiet: bool,
    allowed_targets: Option<Vec<String>>,
) -> anyhow::Result<RunResults> {
    let config = LocalConfig {
        data_dir: data_dir.to_path_buf(),
        agent_program: std::env::current_exe().context("cannot find the herd executable")?,
        allowed_targets,
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
