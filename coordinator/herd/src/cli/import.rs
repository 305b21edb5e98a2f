//! `herd import FILE`: a JMeter, Taurus, HAR or DLT test turned into a native plan, with a report
//! of what became of every element of the source (`herd_protocol::import` does the conversion;
//! this reads the files it names, relative to FILE, and writes what it returns).

use super::exit::Code;
use anyhow::Context as _;
use herd_protocol::import::{self, ImportFiles, ImportOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `herd import` arguments.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The file to import (.jmx, Taurus YAML/JSON, .har, DLT test JSON): detected by content.
    file: PathBuf,
    /// Where to write the plan (default: standard output).
    #[arg(short, long, value_name = "PLAN.yaml")]
    output: Option<PathBuf>,
    /// The target every request goes to (`http://host:port`), instead of the file's hosts.
    #[arg(long, value_name = "URL")]
    target: Option<String>,
    /// Total virtual users, instead of the file's (thread groups keep their ratio).
    #[arg(long, value_name = "N")]
    vus: Option<u32>,
    /// Ramp-up time, instead of the file's (`30s`, `2m`).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    ramp: Option<std::time::Duration>,
    /// Hold time after the ramp, instead of the file's duration.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    hold: Option<std::time::Duration>,
    /// Agents, instead of the file's.
    #[arg(long, value_name = "N")]
    agents: Option<u32>,
    /// A JMeter or Taurus property (`${__P(name,default)}`), repeatable.
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = name_value)]
    set: Vec<(String, String)>,
    /// Keep a HAR recording's static resources (images, CSS, scripts, fonts).
    #[arg(long)]
    include_static: bool,
    /// Also write the report as JSON.
    #[arg(long, value_name = "FILE.json")]
    report: Option<PathBuf>,
}

fn duration(s: &str) -> Result<std::time::Duration, String> {
    herd_protocol::duration::parse(s)
}

fn name_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .filter(|(n, _)| !n.is_empty())
        .ok_or_else(|| format!("{s:?} is not NAME=VALUE"))
}

/// Files named by the source, read relative to its folder.
struct Beside<'a>(&'a Path);

impl ImportFiles for Beside<'_> {
    fn read(&self, path: &str) -> Result<Vec<u8>, String> {
        let full = self.0.join(path);
        std::fs::read(&full).map_err(|e| format!("cannot read {}: {e}", full.display()))
    }
}

/// `herd import`.
pub fn run(args: ImportArgs) -> anyhow::Result<Code> {
    let bytes = match std::fs::read(&args.file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("herd: cannot read {}: {e}", args.file.display());
            return Ok(Code::Invalid);
        }
    };
    let options = ImportOptions {
        target: args.target,
        vus: args.vus,
        ramp: args.ramp,
        hold: args.hold,
        agents: args.agents,
        set: args.set.into_iter().collect::<BTreeMap<_, _>>(),
        include_static: args.include_static,
    };
    let dir = args.file.parent().unwrap_or(Path::new("."));
    let imported = match import::convert_with(&bytes, &options, &Beside(dir)) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("herd: {}: {e}", args.file.display());
            return Ok(Code::Invalid);
        }
    };
    match &args.output {
        Some(path) => std::fs::write(path, &imported.plan_yaml)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{}", imported.plan_yaml),
    }
    if let Some(path) = &args.report {
        let json = serde_json::to_string_pretty(&imported.report)?;
        std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))?;
    }
    eprintln!(
        "herd: imported {} ({:?})\n{}",
        args.file.display(),
        imported.format,
        imported.report
    );
    Ok(Code::Passed)
}
