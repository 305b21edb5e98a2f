//! `herd run`: the embedded default, one distributed load test on this machine.

use super::exit::Code;
use super::{progress, report};
use anyhow::Context as _;
use herd_coordinator::local::{LocalConfig, LocalRuntime};
use herd_coordinator::run::{Cancel, Timeouts};
use herd_protocol::plan::{self, Plan};
use herd_protocol::summary::Summary;
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
    /// Where the store and agent logs live.
    #[arg(long, env = "HERD_DATA_DIR", default_value = ".herd")]
    pub data_dir: PathBuf,
    /// No live progress line.
    #[arg(long, short)]
    pub quiet: bool,
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
    // Body files are read here, relative to the plan's folder, and travel inside the plan.
    let folder = path.parent().unwrap_or_else(|| Path::new("."));
    let mut read = |file: &str| std::fs::read(folder.join(file)).map_err(|e| e.to_string());
    let parsed = if is_json {
        plan::from_json_str_with_files(&text, &mut read)
    } else {
        plan::from_yaml_str_with_files(&text, &mut read)
    };
    parsed.map_err(|errors| {
        eprintln!(
            "herd: invalid plan {} ({} problems):",
            path.display(),
            errors.0.len()
        );
        for e in &errors.0 {
            eprintln!("  {e}");
        }
        Code::Invalid
    })
}

/// Runs `herd run`.
pub fn run(args: RunArgs) -> anyhow::Result<Code> {
    let mut plan = match load_plan(&args.plan) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    if let Some(n) = args.agents {
        if n == 0 {
            eprintln!("herd: --agents must be >= 1");
            return Ok(Code::Invalid);
        }
        plan.agents = n;
    }
    let summary = run_plan(plan, &args.data_dir, args.quiet)?;
    report::print(&summary);
    if let Some(path) = &args.json {
        report::write_json(&summary, path)?;
    }
    Ok(summary.status.into())
}

/// Runs a validated plan on the embedded runtime and returns its summary.
pub fn run_plan(plan: Plan, data_dir: &Path, quiet: bool) -> anyhow::Result<Summary> {
    let config = LocalConfig {
        data_dir: data_dir.to_path_buf(),
        agent_program: std::env::current_exe().context("cannot find the herd executable")?,
    };
    let system = actix::System::new();
    system.block_on(async move {
        let runtime = LocalRuntime::start(config).await?;
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
        Ok(summary)
    })
}
