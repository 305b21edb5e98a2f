//! `herd report RUN_ID`: a stored run's summary table again, and its outputs (`--out`, and
//! `--html FILE` for the single-file report, the document `GET /api/v1/runs/{id}/report.html`
//! serves), read from the embedded store under the data directory. The run may be one `herd run`
//! or `herd up` drove on this data directory.

use super::exit::Code;
use super::{out, report};
use anyhow::Context as _;
use herd_coordinator::output::RunResults;
use herd_coordinator::store::embedded::EmbeddedStore;
use herd_coordinator::store::Store as _;
use herd_protocol::RunId;
use std::path::PathBuf;

/// Arguments of `herd report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The run's id (as `herd run` printed it).
    pub run: String,
    /// Write an output: `KIND=FILE[,KIND=FILE…]` with KIND junit, csv, csv-steps, json or html
    /// (`-` as FILE is stdout). Repeatable.
    #[arg(long = "out", value_name = "KIND=FILE")]
    pub out: Vec<String>,
    /// Write the single-file HTML report here (`-` is stdout): the same as `--out html=FILE`.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Where the store lives.
    #[arg(long, env = "HERD_DATA_DIR", default_value = ".herd")]
    pub data_dir: PathBuf,
}

/// Runs `herd report`.
pub fn run(args: ReportArgs) -> anyhow::Result<Code> {
    let mut outs = args.out.clone();
    if let Some(html) = &args.html {
        outs.push(format!("html={}", html.display()));
    }
    let specs = match out::parse(&outs) {
        Ok(s) => s,
        Err(message) => {
            eprintln!("herd: {message}");
            return Ok(Code::Invalid);
        }
    };
    let Ok(run) = RunId::new(args.run.clone()) else {
        eprintln!("herd: {:?} is not a run id", args.run);
        return Ok(Code::Invalid);
    };
    let store = EmbeddedStore::open(&args.data_dir)
        .with_context(|| format!("cannot open the store in {}", args.data_dir.display()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start a runtime")?;
    let (summary, seconds, record) = runtime.block_on(async {
        let summary = store.get_summary(&run).await?;
        let seconds = store.list_seconds(&run).await?;
        let record = store.get_run(&run).await?;
        Ok::<_, herd_coordinator::store::StoreError>((summary, seconds, record))
    })?;
    let Some(summary) = summary else {
        let why = match &record {
            None => format!("no run {run}"),
            Some(r) => format!(
                "run {run} has not ended (it is {}): its outputs are written from its summary",
                r.state.as_str()
            ),
        };
        eprintln!("herd: {why} (store at {})", args.data_dir.display());
        return Ok(Code::Invalid);
    };
    let results = RunResults {
        summary,
        seconds,
        record,
    };
    if specs.is_empty() {
        report::print(&results.summary);
    } else {
        out::write_all(&specs, &results)?;
    }
    Ok(results.summary.status.into())
}
