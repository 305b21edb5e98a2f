//! `herd report RUN_ID --html FILE`: a stored run's single-file HTML report
//! ([`herd_coordinator::report::stored_report`]), read from the store `herd run` or `herd up`
//! kept it in (the data directory, or the store `herd.toml` names) — the same document as
//! `GET /api/v1/runs/{id}/report.html`.

use super::config;
use super::exit::Code;
use anyhow::Context as _;
use herd::adapters::{open_store, sdk_for};
use herd::local::coordinator_id;
use herd_coordinator::report::{stored_report, StoredReportError};
use herd_protocol::RunId;
use std::path::PathBuf;

/// Arguments of `herd report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The run (its id, as `herd run` and the API print it).
    run: String,
    /// Write the single-file HTML report here (`-` is stdout).
    #[arg(long, value_name = "FILE")]
    html: PathBuf,
    /// The store's data directory (where `herd run` / `herd up` kept the run)…
    #[arg(long, env = "HERD_DATA_DIR", default_value = ".herd")]
    data_dir: PathBuf,
    /// …or the configuration file naming the store (else `HERD_CONFIG`, else `HERD_CONFIG_TOML`).
    #[arg(long)]
    config: Option<PathBuf>,
}

/// `herd report`.
pub fn run(args: ReportArgs) -> anyhow::Result<Code> {
    let run = match RunId::new(&args.run) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("herd: RUN_ID: {e}");
            return Ok(Code::Invalid);
        }
    };
    let config = match config::load(config::source(args.config.as_deref()).as_ref())? {
        Ok(config) => config,
        Err(code) => return Ok(code),
    };
    let now = herd_protocol::clock::Clock::new().unix_ms();
    let html = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let sdk = sdk_for(&config).await?;
            let owner = coordinator_id(&args.data_dir);
            let store = open_store(&config, sdk.as_ref(), &args.data_dir, &owner).await?;
            anyhow::Ok(stored_report(&*store, &run, now).await)
        })?;
    let html = match html {
        Ok(html) => html,
        Err(e @ (StoredReportError::NotFound(_) | StoredReportError::NotEnded { .. })) => {
            eprintln!("herd: {e} (store at {})", args.data_dir.display());
            return Ok(Code::Invalid);
        }
        Err(e) => return Err(e.into()),
    };
    if args.html == std::path::Path::new("-") {
        print!("{html}");
    } else {
        std::fs::write(&args.html, html)
            .with_context(|| format!("cannot write {}", args.html.display()))?;
        eprintln!(
            "herd: wrote the report of run {run} to {}",
            args.html.display()
        );
    }
    Ok(Code::Passed)
}
