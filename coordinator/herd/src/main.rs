//! `herd`: the one user-facing binary.
//!
//! - `herd run PLAN` — a distributed load test on this machine (embedded broker, store and agents
//!   as separate processes), with live progress, a summary, `--json`, and an exit code;
//! - `herd validate PLAN` — check a plan and name every mistake, sending no load;
//! - `herd agent …` — one agent process (launched by the coordinator, or started by hand on
//!   another host);
//! - `herd demo` — a built-in counting HTTP target plus the smoke plan against it.
//!
//! Exit codes are documented in the README and in [`cli::exit`].

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    cli::init_tracing(args.verbose);
    match cli::dispatch(args) {
        Ok(code) => code.into(),
        Err(e) => {
            eprintln!("herd: error: {e:#}");
            cli::exit::Code::Internal.into()
        }
    }
}
