//! `--out KIND=FILE`: the outputs of `herd run` and `herd report`, rendered by the coordinator
//! library's `output` module and written here (the library renders; the binary writes files).

use herd_coordinator::output::{self, OutputSpec, RunResults};
use std::path::Path;

/// Parses every `--out` value; on a mistake, the message to print (exit 2, nothing started).
pub fn parse(values: &[String]) -> Result<Vec<OutputSpec>, String> {
    let mut specs = Vec::new();
    for value in values {
        specs.extend(OutputSpec::parse_list(value).map_err(|e| e.to_string())?);
    }
    Ok(specs)
}

/// Writes each output; every failure is reported, and the first makes the result an error.
pub fn write_all(specs: &[OutputSpec], results: &RunResults) -> anyhow::Result<()> {
    let mut failed = Vec::new();
    for spec in specs {
        let written = output::render(spec.kind, results)
            .map_err(anyhow::Error::from)
            .and_then(|text| write(&spec.path, &text));
        if let Err(e) = written {
            eprintln!("herd: --out {}={}: {e:#}", spec.kind, spec.path.display());
            failed.push(spec.kind.as_str());
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("could not write the {} output(s)", failed.join(", "))
    }
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if path == Path::new("-") {
        print!("{text}");
        return Ok(());
    }
    std::fs::write(path, text).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}
